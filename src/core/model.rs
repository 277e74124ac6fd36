//! The domain: what an environment is, and how it is recorded in its sync file.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

/// Annotation keys that record an environment in its sync file. A file without
/// [`keys::MANAGED_BY`] was not created by flux-ephemeral and is never touched.
pub mod keys {
    pub const MANAGED_BY: &str = "flux-ephemeral.io/managed-by";
    pub const SLUG: &str = "flux-ephemeral.io/slug";
    pub const BRANCH: &str = "flux-ephemeral.io/branch";
    pub const SHA: &str = "flux-ephemeral.io/sha";
    pub const ID: &str = "flux-ephemeral.io/id";
    pub const AUTHOR: &str = "flux-ephemeral.io/author";
    pub const TITLE: &str = "flux-ephemeral.io/title";
    /// The source URL the environment was rendered with (read back by sleep, wake and extend).
    pub const SOURCE_URL: &str = "flux-ephemeral.io/source-url";
    pub const ENVIRONMENT: &str = "flux-ephemeral.io/environment";
    pub const DEPLOYED_AT: &str = "flux-ephemeral.io/deployed-at";
    pub const TTL: &str = "flux-ephemeral.io/ttl";
    pub const APP: &str = "flux-ephemeral.io/app";
    pub const FORGE: &str = "flux-ephemeral.io/forge";
    pub const REPOSITORY: &str = "flux-ephemeral.io/repository";
    pub const ARTIFACT: &str = "flux-ephemeral.io/artifact";
    /// The last activity: a deploy, a push to the change, or a lifecycle command.
    pub const ACTIVE_AT: &str = "flux-ephemeral.io/active-at";
    /// When the environment is removed: the last activity plus its time to live, or later when
    /// extended (never beyond the last activity plus `max_ttl`).
    pub const EXPIRES_AT: &str = "flux-ephemeral.io/expires-at";
    /// Asleep (workloads scaled to zero) since then; absent when awake.
    pub const SLEEPING_SINCE: &str = "flux-ephemeral.io/sleeping-since";
    /// Why it sleeps: `idle`, `office-hours` or `requested`.
    pub const SLEEP_REASON: &str = "flux-ephemeral.io/sleep-reason";
    /// The expiry the warning was posted for: a later expiry re-arms the warning.
    pub const WARNED_FOR: &str = "flux-ephemeral.io/warned-for";
    pub const MANAGED_BY_VALUE: &str = "flux-ephemeral";
}

/// The file name of an environment's sync file inside the instances directory.
pub fn file_name(slug: &str) -> String {
    format!("sync-{slug}.yaml")
}

/// The key in a sync file's name (or path: `eu/sync-<key>.yaml`), if the name is one of ours.
pub fn slug_of_file_name(name: &str) -> Option<&str> {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.strip_prefix("sync-")?.strip_suffix(".yaml")
}

/// Who owns an environment, or who asks to change it: the application and, when known, the forge,
/// the repository and the pull/merge request. Parts that are unknown match anything (files written
/// by earlier versions record none of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Owner {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Pull/merge request number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
}

impl Owner {
    /// Whether `self` and `other` are different owners: some part both know differs.
    pub fn conflicts(&self, other: &Owner) -> bool {
        let differ = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => !a.eq_ignore_ascii_case(b),
            _ => false,
        };
        differ(&self.app, &other.app)
            || differ(&self.repository, &other.repository)
            || differ(&self.change, &other.change)
    }

    /// `application web, org/web #5`, for messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = &self.app {
            parts.push(format!("application {a}"));
        }
        match (&self.repository, &self.change) {
            (Some(r), Some(c)) => parts.push(format!("{r} #{c}")),
            (Some(r), None) => parts.push(r.clone()),
            (None, Some(c)) => parts.push(format!("#{c}")),
            (None, None) => {}
        }
        if parts.is_empty() {
            "an unrecorded owner".into()
        } else {
            parts.join(", ")
        }
    }
}

/// One environment as somebody wants it to be: the input of a deploy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvSpec {
    pub slug: String,
    /// The sync file's key (`sync-<key>.yaml`) when it is not the slug: `<app>-<slug>` for an
    /// application of the `applications` list.
    pub key: Option<String>,
    /// The application, and where the environment comes from (recorded as its owner).
    pub app: Option<String>,
    pub forge: Option<String>,
    pub repository: Option<String>,
    pub branch: String,
    /// Pin the source to this commit; otherwise it follows the branch.
    pub sha: Option<String>,
    /// Pull/merge request number.
    pub id: Option<String>,
    pub author: Option<String>,
    pub title: Option<String>,
    /// GitLab environment name (`review/...`), when the environment comes from one.
    pub environment: Option<String>,
    /// The application repository the GitRepository fetches.
    pub source_url: String,
    /// Time to live of this environment, counted from `deployed_at`.
    pub ttl: Option<Duration>,
    /// A preview URL given from outside (GitLab's `CI_ENVIRONMENT_URL`), used when no
    /// `preview_url` template is configured.
    pub preview_url: Option<String>,
    /// The OCI artifact the preview deploys, instead of the branch.
    pub artifact: Option<ArtifactRef>,
    /// Record a new deploy time even when nothing else changed (extends a time to live).
    pub refresh: bool,
    /// Activity, expiry and sleep; the default is what a deploy records.
    pub lifecycle: Lifecycle,
    /// Only the lifecycle changes (sleep, wake, extend, the warning mark): keep the recorded
    /// deploy time.
    pub keep_deployed_at: bool,
    /// The cluster asked for (`cluster=` in a comment); when rendered, the one it is placed in.
    pub cluster: Option<String>,
}

/// Why an environment sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SleepReason {
    /// Idle for `sleep_after`.
    Idle,
    /// Outside `awake_hours`: woken again when they begin.
    OfficeHours,
    /// Somebody asked (`/sleep-ephemeral`, `flux-ephemeral sleep`).
    Requested,
}

impl SleepReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SleepReason::Idle => "idle",
            SleepReason::OfficeHours => "office-hours",
            SleepReason::Requested => "requested",
        }
    }

    pub fn parse(s: &str) -> Option<SleepReason> {
        match s {
            "idle" => Some(SleepReason::Idle),
            "office-hours" => Some(SleepReason::OfficeHours),
            "requested" => Some(SleepReason::Requested),
            _ => None,
        }
    }
}

/// An environment's life as its sync file records it. `Default` is a fresh deploy: active at
/// the time of the render, expiring a time to live later, awake, not warned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// The last activity; `None`: the time of the render.
    pub active_at: Option<SystemTime>,
    /// The expiry; `None`: the last activity plus the time to live.
    pub expires_at: Option<SystemTime>,
    /// Asleep since then, and why.
    pub sleeping: Option<(SystemTime, SleepReason)>,
    /// The expiry (as recorded) a warning was posted for.
    pub warned_for: Option<String>,
}

/// A pushed OCI artifact, pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRef {
    /// `oci://HOST/REPOSITORY`.
    pub url: String,
    /// `sha256:…`.
    pub digest: String,
    /// Plain HTTP (loopback test registries): the OCIRepository says `insecure: true`.
    pub insecure: bool,
}

impl ArtifactRef {
    /// `oci://HOST/REPOSITORY@sha256:…`, as recorded.
    pub fn pinned(&self) -> String {
        format!("{}@{}", self.url, self.digest)
    }
}

impl EnvSpec {
    /// The sync file's key: `sync-<key>.yaml`.
    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or(&self.slug)
    }

    pub fn owner(&self) -> Owner {
        Owner {
            app: self.app.clone(),
            forge: self.forge.clone(),
            repository: self.repository.clone(),
            change: self.id.clone(),
        }
    }
}

/// One environment as it is recorded in the instances directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EnvRecord {
    pub slug: String,
    pub file: String,
    pub branch: String,
    /// The Flux objects' name (`metadata.name` of the recorded document).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// `oci://HOST/REPOSITORY@sha256:…` of an OCI-sourced environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sleeping_since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sleep_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warned_for: Option<String>,
    /// `flux-ephemeral.io/source-url`: the source URL it was rendered with (files of earlier
    /// versions have none).
    pub source_url: Option<String>,
    /// The cluster its file is in, with `clusters` configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

impl EnvRecord {
    pub fn owner(&self) -> Owner {
        Owner {
            app: self.app.clone(),
            forge: self.forge.clone(),
            repository: self.repository.clone(),
            change: self.id.clone(),
        }
    }

    /// `commit <sha>` or `branch <name>`: what the GitRepository follows.
    pub fn reference(&self) -> String {
        match &self.sha {
            Some(sha) => format!("commit {sha}"),
            None => format!("branch {}", self.branch),
        }
    }

    /// Build a record from the annotations of a sync file's marked document.
    pub fn from_annotations(file: &str, ann: &BTreeMap<String, String>) -> Option<EnvRecord> {
        if ann.get(keys::MANAGED_BY).map(String::as_str) != Some(keys::MANAGED_BY_VALUE) {
            return None;
        }
        let get = |k: &str| ann.get(k).filter(|v| !v.is_empty()).cloned();
        Some(EnvRecord {
            slug: get(keys::SLUG)?,
            file: file.to_string(),
            branch: get(keys::BRANCH)?,
            name: None,
            app: get(keys::APP),
            forge: get(keys::FORGE),
            repository: get(keys::REPOSITORY),
            artifact: get(keys::ARTIFACT),
            sha: get(keys::SHA),
            id: get(keys::ID),
            author: get(keys::AUTHOR),
            environment: get(keys::ENVIRONMENT),
            deployed_at: get(keys::DEPLOYED_AT),
            ttl: get(keys::TTL),
            title: get(keys::TITLE),
            active_at: get(keys::ACTIVE_AT),
            expires_at: get(keys::EXPIRES_AT),
            sleeping_since: get(keys::SLEEPING_SINCE),
            sleep_reason: get(keys::SLEEP_REASON),
            warned_for: get(keys::WARNED_FOR),
            source_url: get(keys::SOURCE_URL),
            cluster: None,
        })
    }

    /// The recorded lifecycle. Times that do not parse are left out (the lifecycle pass treats a
    /// record without a readable expiry as expiring at the cap).
    pub fn lifecycle(&self) -> Lifecycle {
        let time = |v: &Option<String>| v.as_deref().and_then(parse_time);
        Lifecycle {
            active_at: time(&self.active_at).or_else(|| time(&self.deployed_at)),
            expires_at: time(&self.expires_at),
            sleeping: time(&self.sleeping_since).map(|since| {
                let reason = self
                    .sleep_reason
                    .as_deref()
                    .and_then(SleepReason::parse)
                    .unwrap_or(SleepReason::Requested);
                (since, reason)
            }),
            warned_for: self.warned_for.clone(),
        }
    }
}

/// The annotations flux-ephemeral writes on every object it renders. `ttl` is the environment's
/// time to live (its own, else the configured one, capped by `max_ttl`), from which the expiry is
/// computed when the lifecycle does not set one.
pub fn annotations_for(
    spec: &EnvSpec,
    deployed_at: SystemTime,
    ttl: Option<Duration>,
) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert(keys::MANAGED_BY.into(), keys::MANAGED_BY_VALUE.into());
    a.insert(keys::SLUG.into(), spec.slug.clone());
    a.insert(keys::BRANCH.into(), spec.branch.clone());
    a.insert(keys::DEPLOYED_AT.into(), format_time(deployed_at));
    let life = &spec.lifecycle;
    let active = life.active_at.unwrap_or(deployed_at);
    a.insert(keys::ACTIVE_AT.into(), format_time(active));
    if let Some(expires) = life
        .expires_at
        .or_else(|| ttl.and_then(|t| active.checked_add(t)))
    {
        a.insert(keys::EXPIRES_AT.into(), format_time(expires));
    }
    if let Some((since, reason)) = life.sleeping {
        a.insert(keys::SLEEPING_SINCE.into(), format_time(since));
        a.insert(keys::SLEEP_REASON.into(), reason.as_str().into());
    }
    if let Some(w) = &life.warned_for {
        a.insert(keys::WARNED_FOR.into(), w.clone());
    }
    let optional = [
        (keys::SHA, &spec.sha),
        (keys::ID, &spec.id),
        (keys::AUTHOR, &spec.author),
        (keys::ENVIRONMENT, &spec.environment),
        (keys::APP, &spec.app),
        (keys::FORGE, &spec.forge),
        (keys::REPOSITORY, &spec.repository),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            a.insert(k.into(), v.clone());
        }
    }
    match &spec.artifact {
        Some(art) => {
            a.insert(keys::ARTIFACT.into(), art.pinned());
        }
        None if !spec.source_url.is_empty() => {
            a.insert(keys::SOURCE_URL.into(), spec.source_url.clone());
        }
        None => {}
    }
    if let Some(title) = &spec.title {
        // Titles are free text of any length; an annotation only needs to identify the change.
        a.insert(keys::TITLE.into(), title.chars().take(200).collect());
    }
    if let Some(ttl) = spec.ttl {
        a.insert(
            keys::TTL.into(),
            humantime::format_duration(ttl).to_string(),
        );
    }
    a
}

/// RFC 3339 in UTC, to the second.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t.min(latest_time())).to_string()
}

/// The latest time RFC 3339 can write, 9999-12-31T23:59:59Z. A later one (an expiry computed from
/// a hand-edited `active-at` in year 9999) is written as this instead of failing.
pub fn latest_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799)
}

pub fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(s).ok()
}
