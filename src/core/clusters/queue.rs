//! The queue: requests waiting for room, in the order they came, kept in one file of the GitOps
//! repository so every CLI run, CI job and `serve` replica sees the same order; the same
//! compare-and-swap push as the sync files keeps it consistent.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{format_time, ArtifactRef, EnvSpec};

/// One request waiting for room: what renders its sync file when its turn comes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waiting {
    /// The sync file's key.
    pub key: String,
    pub slug: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Pull/merge request number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub branch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<String>,
    /// `oci://HOST/REPOSITORY@sha256:…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub artifact_insecure: bool,
    /// The cluster asked for, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub queued_at: String,
}

impl Waiting {
    pub fn of(spec: &EnvSpec, now: SystemTime) -> Waiting {
        Waiting {
            key: spec.key().to_string(),
            slug: spec.slug.clone(),
            app: spec.app.clone(),
            forge: spec.forge.clone(),
            repository: spec.repository.clone(),
            id: spec.id.clone(),
            branch: spec.branch.clone(),
            sha: spec.sha.clone(),
            author: spec.author.clone(),
            title: spec.title.as_ref().map(|t| t.chars().take(200).collect()),
            environment: spec.environment.clone(),
            source_url: spec.source_url.clone(),
            ttl: spec.ttl.map(|t| humantime::format_duration(t).to_string()),
            preview_url: spec.preview_url.clone(),
            artifact: spec.artifact.as_ref().map(ArtifactRef::pinned),
            artifact_insecure: spec.artifact.as_ref().is_some_and(|a| a.insecure),
            cluster: spec.cluster.clone(),
            queued_at: format_time(now),
        }
    }

    /// The deploy this request asked for, to render when it is admitted.
    pub fn spec(&self) -> EnvSpec {
        let artifact = self.artifact.as_deref().and_then(|pinned| {
            let (url, digest) = pinned.rsplit_once('@')?;
            Some(ArtifactRef {
                url: url.into(),
                digest: digest.into(),
                insecure: self.artifact_insecure,
            })
        });
        EnvSpec {
            slug: self.slug.clone(),
            key: Some(self.key.clone()).filter(|k| *k != self.slug),
            app: self.app.clone(),
            forge: self.forge.clone(),
            repository: self.repository.clone(),
            branch: self.branch.clone(),
            sha: self.sha.clone(),
            id: self.id.clone(),
            author: self.author.clone(),
            title: self.title.clone(),
            environment: self.environment.clone(),
            source_url: self.source_url.clone(),
            ttl: self
                .ttl
                .as_deref()
                .and_then(|t| humantime::parse_duration(t).ok()),
            preview_url: self.preview_url.clone(),
            artifact,
            cluster: self.cluster.clone(),
            ..EnvSpec::default()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueFile {
    #[serde(default)]
    queue: Vec<Waiting>,
}

const HEADER: &str = "# Written by flux-ephemeral: preview requests waiting for room, in order.\n\
# The first is admitted when a preview goes away. Do not edit by hand while it runs.\n";

/// The waiting requests, first come first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Queue {
    pub entries: Vec<Waiting>,
}

impl Queue {
    /// Read the queue's file (`path` names it in errors).
    pub fn parse(text: &str, path: &str) -> Result<Queue> {
        if text.trim().is_empty() {
            return Ok(Queue::default());
        }
        let file: QueueFile = serde_yaml_ng::from_str(text).map_err(|e| {
            Error::config(format!(
                "{path} in the GitOps repository is not a flux-ephemeral queue ({e}); fix or delete it"
            ))
        })?;
        // Read from Git, so data: a key or slug that is not a DNS label would name a file or
        // namespace flux-ephemeral never writes (or one outside its directories).
        let mut keys = std::collections::HashSet::new();
        for w in &file.queue {
            let fine = crate::slug::is_dns_label(&w.key) && crate::slug::is_dns_label(&w.slug);
            if !fine || !keys.insert(w.key.as_str()) {
                return Err(Error::config(format!(
                    "{path} in the GitOps repository names a request flux-ephemeral did not write (key `{}`); fix or delete it",
                    crate::redact::remote_text(&w.key, 80)
                )));
            }
        }
        Ok(Queue {
            entries: file.queue,
        })
    }

    /// The file's text; `None` when the queue is empty (the file is deleted).
    pub fn render(&self) -> Option<String> {
        if self.entries.is_empty() {
            return None;
        }
        let file = QueueFile {
            queue: self.entries.clone(),
        };
        let body = serde_yaml_ng::to_string(&file).unwrap_or_default();
        Some(format!("{HEADER}{body}"))
    }

    /// 1-based position of `key`.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|w| w.key == key)
            .map(|i| i + 1)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Queue `w`, or update the request already waiting under its key in its place (asking
    /// again keeps the place). Its position.
    pub fn upsert(&mut self, w: Waiting) -> usize {
        match self.entries.iter_mut().position(|e| e.key == w.key) {
            Some(i) => {
                let queued_at = std::mem::take(&mut self.entries[i].queued_at);
                self.entries[i] = Waiting { queued_at, ..w };
                i + 1
            }
            None => {
                self.entries.push(w);
                self.entries.len()
            }
        }
    }

    /// The requests of `repository`'s changes that are not among `open` (numbers).
    pub fn closed(
        &self,
        open: &std::collections::BTreeSet<String>,
        repository: &str,
    ) -> Vec<&Waiting> {
        self.entries
            .iter()
            .filter(|w| {
                w.repository
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case(repository))
                    && w.id.as_ref().is_some_and(|id| !open.contains(id))
            })
            .collect()
    }

    /// Take `key` out of the queue; whether it was there.
    pub fn remove(&mut self, key: &str) -> Option<Waiting> {
        let i = self.entries.iter().position(|e| e.key == key)?;
        Some(self.entries.remove(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(slug: &str) -> EnvSpec {
        EnvSpec {
            slug: slug.into(),
            key: Some(format!("web-{slug}")),
            app: Some("web".into()),
            branch: format!("feature/{slug}"),
            sha: Some("abc".into()),
            id: Some("7".into()),
            source_url: "https://git.example.com/org/web.git".into(),
            ttl: Some(std::time::Duration::from_secs(3600)),
            cluster: Some("us".into()),
            ..EnvSpec::default()
        }
    }

    #[test]
    fn a_request_reads_back_as_asked() {
        let mut q = Queue::default();
        q.upsert(Waiting::of(&spec("a"), SystemTime::UNIX_EPOCH));
        let text = q.render().unwrap();
        assert!(text.starts_with("# Written by flux-ephemeral"), "{text}");
        let back = Queue::parse(&text, "q.yaml").unwrap();
        assert_eq!(back, q);
        let s = back.entries[0].spec();
        assert_eq!(s.key(), "web-a");
        assert_eq!(s.ttl, Some(std::time::Duration::from_secs(3600)));
        assert_eq!(s.cluster.as_deref(), Some("us"));
    }

    #[test]
    fn asking_again_keeps_the_place() {
        let mut q = Queue::default();
        assert_eq!(q.upsert(Waiting::of(&spec("a"), SystemTime::UNIX_EPOCH)), 1);
        assert_eq!(q.upsert(Waiting::of(&spec("b"), SystemTime::UNIX_EPOCH)), 2);
        let mut newer = spec("a");
        newer.sha = Some("def".into());
        let later = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(60);
        assert_eq!(q.upsert(Waiting::of(&newer, later)), 1);
        assert_eq!(q.entries[0].sha.as_deref(), Some("def"));
        assert_eq!(q.entries[0].queued_at, "1970-01-01T00:00:00Z");
        assert!(q.remove("web-a").is_some());
        assert_eq!(q.position("web-b"), Some(1));
        assert!(q.remove("web-a").is_none());
        assert_eq!(Queue::default().render(), None);
    }

    #[test]
    fn a_broken_file_says_what_to_do() {
        let e = Queue::parse("queue: 5", "q.yaml").unwrap_err();
        assert!(
            e.message.contains("q.yaml") && e.message.contains("fix or delete it"),
            "{e}"
        );
        let e = Queue::parse(
            "queue:\n- key: a\n  slug: a\n  branch: b\n  queued_at: x\n  evil: 1\n",
            "q.yaml",
        )
        .unwrap_err();
        assert!(e.message.contains("evil"), "{e}");
    }

    #[test]
    fn a_request_flux_ephemeral_could_not_have_written_is_refused() {
        for (key, slug) in [
            ("../../kube-system/x", "a"),
            ("a", "A_B"),
            ("a\u{1b}[31m", "a"),
            ("", "a"),
        ] {
            let text = format!(
                "queue:\n- key: {}\n  slug: {}\n  branch: b\n  queued_at: x\n",
                serde_json::to_string(key).unwrap(),
                serde_json::to_string(slug).unwrap()
            );
            let e = Queue::parse(&text, "q.yaml").unwrap_err();
            assert!(e.message.contains("fix or delete it"), "{e}");
            assert!(!e.message.contains('\u{1b}'), "{e}");
        }
        let twice = "queue:\n- {key: a, slug: a, branch: b, queued_at: x}\n- {key: a, slug: a, branch: c, queued_at: x}\n";
        assert!(Queue::parse(twice, "q.yaml").is_err());
        let fine = "queue:\n- {key: web-a, slug: a, branch: b, queued_at: x}\n";
        assert_eq!(Queue::parse(fine, "q.yaml").unwrap().entries.len(), 1);
    }
}
