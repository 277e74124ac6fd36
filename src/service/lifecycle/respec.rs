//! An environment's spec recovered from its sync file, so the lifecycle (sleep, wake, extend,
//! the warning mark) can render it again with only its life changed: what it previews (branch,
//! commit or artifact, source URL, preview URL) and who owns it are kept as recorded.

use serde_yaml_ng::Value;

use crate::model::{ArtifactRef, EnvRecord, EnvSpec};
use crate::settings::Settings;

fn docs(content: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(content)
        .filter_map(|d| <Value as serde::Deserialize>::deserialize(d).ok())
        .collect()
}

fn str_at<'a>(doc: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = doc;
    for key in path {
        v = v.get(*key)?;
    }
    v.as_str()
}

fn preview_url_in(docs: &[Value]) -> Option<&str> {
    docs.iter().find_map(|d| {
        str_at(d, &["spec", "postBuild", "substitute", "preview_url"]).or_else(|| {
            str_at(
                d,
                &[
                    "metadata",
                    "annotations",
                    "event.toolkit.fluxcd.io/preview-url",
                ],
            )
        })
    })
}

/// The preview URL a sync file holds (the Kustomization's substitution, or the HelmRelease's
/// annotation).
pub fn preview_url_of(content: &str) -> Option<String> {
    preview_url_in(&docs(content))
        .filter(|u| !u.is_empty())
        .map(str::to_string)
}

/// The source URL `record` was rendered with: what the bot recorded; for files of earlier
/// versions, the GitRepository's URL (a custom template may render other objects with a
/// `spec.url` first, e.g. a HelmRepository).
fn recorded_source_url(record: &EnvRecord, docs: &[Value]) -> Option<String> {
    record.source_url.clone().or_else(|| {
        docs.iter()
            .filter(|d| d.get("kind").and_then(Value::as_str) == Some("GitRepository"))
            .find_map(|d| str_at(d, &["spec", "url"]))
            .map(str::to_string)
    })
}

/// [`recorded_source_url`] of a sync file.
pub fn source_url_of(record: &EnvRecord, content: &str) -> Option<String> {
    recorded_source_url(record, &docs(content))
}

/// The spec that renders `record`'s file again: its recorded fields, the source and preview URL
/// the file holds, the artifact it pins, and its recorded lifecycle.
pub fn spec_of(record: &EnvRecord, content: &str, settings: &Settings) -> EnvSpec {
    let docs = docs(content);
    let source_url = recorded_source_url(record, &docs).unwrap_or_default();
    let preview_url = preview_url_in(&docs);
    let artifact = record.artifact.as_deref().and_then(|pinned| {
        let (url, digest) = pinned.rsplit_once('@')?;
        let insecure = docs.iter().any(|d| {
            d.get("kind").and_then(Value::as_str) == Some("OCIRepository")
                && d.get("spec")
                    .and_then(|s| s.get("insecure"))
                    .and_then(Value::as_bool)
                    == Some(true)
        });
        Some(ArtifactRef {
            url: url.to_string(),
            digest: digest.to_string(),
            insecure,
        })
    });
    EnvSpec {
        slug: record.slug.clone(),
        key: crate::model::slug_of_file_name(&record.file)
            .filter(|k| *k != record.slug)
            .map(str::to_string),
        app: record.app.clone(),
        forge: record.forge.clone(),
        repository: record.repository.clone(),
        branch: record.branch.clone(),
        sha: record.sha.clone(),
        id: record.id.clone(),
        author: record.author.clone(),
        title: record.title.clone(),
        environment: record.environment.clone(),
        source_url: if artifact.is_some() {
            settings.source_url.clone().unwrap_or_default()
        } else {
            source_url
        },
        ttl: record
            .ttl
            .as_deref()
            .and_then(|t| humantime::parse_duration(t.trim()).ok())
            .map(|t| t.min(settings.max_ttl)),
        preview_url: preview_url.filter(|u| !u.is_empty()).map(str::to_string),
        artifact,
        refresh: false,
        lifecycle: record.lifecycle(),
        keep_deployed_at: true,
        cluster: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A custom template that renders a HelmRepository (with its own `spec.url`) before the
    /// GitRepository: sleep, wake and extend keep the source the bot recorded.
    #[test]
    fn the_source_is_read_back_as_recorded_not_from_the_first_url() {
        let content = "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nspec:\n  url: oci://charts.example.com/org\n---\n\
                       apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nspec:\n  url: https://git.example.com/org/app.git\n";
        let settings = Settings::resolve(Default::default()).unwrap();
        let mut record = EnvRecord {
            slug: "s".into(),
            file: "sync-s.yaml".into(),
            branch: "b".into(),
            ..EnvRecord::default()
        };
        // A file of an earlier version: the GitRepository's URL.
        assert_eq!(
            spec_of(&record, content, &settings).source_url,
            "https://git.example.com/org/app.git"
        );
        // What the bot recorded wins.
        record.source_url = Some("https://git.example.com/org/recorded.git".into());
        assert_eq!(
            spec_of(&record, content, &settings).source_url,
            "https://git.example.com/org/recorded.git"
        );
    }
}
