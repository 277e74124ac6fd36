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

/// The spec that renders `record`'s file again: its recorded fields, the source and preview URL
/// the file holds, the artifact it pins, and its recorded lifecycle.
pub fn spec_of(record: &EnvRecord, content: &str, settings: &Settings) -> EnvSpec {
    let docs = docs(content);
    let source_url = docs
        .iter()
        .find_map(|d| str_at(d, &["spec", "url"]))
        .unwrap_or_default()
        .to_string();
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
    }
}
