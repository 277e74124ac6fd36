//! The previews page's view model, the pure part: every environment of the GitOps repository as
//! one row (application, change and its link, branch, author, commit and its link, deployed,
//! expires, state, preview URL) and the totals. The same rows are the page and `/api/previews`;
//! their field names are the API's documented, stable schema.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::model::{parse_time, EnvRecord};

/// What Flux says of a preview, where it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// In Git; nothing known from Flux (no cluster access, no commit status).
    Committed,
    Reconciling,
    Ready,
    Failed,
    Sleeping,
}

/// Flux's verdict on one preview, from the Kubernetes API or Flux's commit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub state: State,
    /// Flux's message (for a failure).
    pub message: Option<String>,
}

/// One row of the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub application: Option<String>,
    /// The cluster it runs in (with clusters configured).
    pub cluster: Option<String>,
    pub slug: String,
    pub file: String,
    pub branch: String,
    /// Pull/merge request number.
    pub change: Option<String>,
    pub change_url: Option<String>,
    pub title: Option<String>,
    pub author: Option<String>,
    pub sha: Option<String>,
    pub short_sha: Option<String>,
    pub commit_url: Option<String>,
    /// RFC 3339.
    pub deployed_at: Option<String>,
    /// `3 h ago`.
    pub deployed: Option<String>,
    pub expires_at: Option<String>,
    /// `in 21 h`.
    pub expires: Option<String>,
    pub sleeping_since: Option<String>,
    pub state: State,
    pub message: Option<String>,
    pub preview_url: Option<String>,
    /// The write role's buttons that apply, in order: `extend` (when it expires), `sleep` or
    /// `wake`, `destroy`.
    pub actions: Vec<&'static str>,
    /// What stands where a button does not apply: `asleep`, `awake`, `no expiry`.
    pub notes: Vec<&'static str>,
}

/// The buttons that apply to a preview, and the notes for those that do not.
fn actions(expires: bool, sleeping: bool) -> (Vec<&'static str>, Vec<&'static str>) {
    let [extend, sleep, wake, destroy] = crate::command::Command::BUTTONS;
    let mut actions = Vec::new();
    let mut notes = Vec::new();
    if expires {
        actions.push(extend);
    } else {
        notes.push("no expiry");
    }
    if sleeping {
        actions.push(wake);
        notes.push("asleep");
    } else {
        actions.push(sleep);
        notes.push("awake");
    }
    actions.push(destroy);
    (actions, notes)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub previews: usize,
    pub ready: usize,
    pub failed: usize,
    pub sleeping: usize,
    /// Expiring within 24 hours.
    pub expiring_soon: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct View {
    pub rows: Vec<Row>,
    pub totals: Totals,
    /// The applications present, for the filter.
    pub applications: Vec<String>,
    /// The requests waiting for room, in order.
    pub queue: Vec<Queued>,
    /// Clusters are configured: rows say theirs.
    pub clustered: bool,
}

/// One request waiting for room, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Queued {
    pub position: usize,
    pub application: Option<String>,
    pub slug: String,
    pub branch: String,
    pub change: Option<String>,
    pub change_url: Option<String>,
    pub author: Option<String>,
    /// The cluster asked for.
    pub cluster: Option<String>,
    pub queued_at: String,
}

/// The repository as one read saw it: its environments (with their clusters) and its queue.
#[derive(Debug, Clone, Default)]
pub struct Read {
    pub files: crate::overlay::Files,
    pub records: Vec<EnvRecord>,
    pub queue: crate::clusters::Queue,
    pub clustered: bool,
}

impl Read {
    pub fn of(
        files: crate::overlay::Files,
        layout: &crate::clusters::Layout,
        queue: crate::clusters::Queue,
    ) -> Read {
        Read {
            records: layout.records(&files),
            files,
            queue,
            clustered: layout.configured,
        }
    }
}

/// The page's rows of the queue.
pub fn queued(queue: &[crate::clusters::Waiting], hosts: &WebHosts) -> Vec<Queued> {
    queue
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let as_record = EnvRecord {
                slug: w.slug.clone(),
                branch: w.branch.clone(),
                forge: w.forge.clone(),
                repository: w.repository.clone(),
                id: w.id.clone(),
                ..EnvRecord::default()
            };
            Queued {
                position: i + 1,
                application: w.app.clone(),
                slug: w.slug.clone(),
                branch: w.branch.clone(),
                change: w.id.clone(),
                change_url: links(&as_record, hosts).0,
                author: w.author.clone(),
                cluster: w.cluster.clone(),
                queued_at: w.queued_at.clone(),
            }
        })
        .collect()
}

/// Where a forge's web pages are: `https://github.com`, `https://gitlab.example.com`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebHosts {
    pub github: Option<String>,
    pub gitlab: Option<String>,
    pub gitea: Option<String>,
}

/// A repository path as recorded, safe to put in a URL path (owner/name and group paths only).
fn safe_path(p: &str) -> Option<&str> {
    (!p.is_empty()
        && !p.contains("..")
        && p.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        }))
    .then_some(p)
}

fn links(r: &EnvRecord, hosts: &WebHosts) -> (Option<String>, Option<String>) {
    let (Some(forge), Some(repo)) = (
        r.forge.as_deref(),
        r.repository.as_deref().and_then(safe_path),
    ) else {
        return (None, None);
    };
    let (base, change, commit) = match forge {
        "github" => (hosts.github.as_deref(), "pull", "commit"),
        "gitlab" => (hosts.gitlab.as_deref(), "-/merge_requests", "-/commit"),
        "gitea" => (hosts.gitea.as_deref(), "pulls", "commit"),
        _ => return (None, None),
    };
    let Some(base) = base.map(|b| b.trim_end_matches('/')) else {
        return (None, None);
    };
    let change_url =
        r.id.as_deref()
            .filter(|id| id.chars().all(|c| c.is_ascii_digit()))
            .map(|id| format!("{base}/{repo}/{change}/{id}"));
    let commit_url = r
        .sha
        .as_deref()
        .filter(|s| crate::events::is_full_sha(s))
        .map(|sha| format!("{base}/{repo}/{commit}/{sha}"));
    (change_url, commit_url)
}

/// The view of `records` (each with its preview URL as its file holds it) at `now`, with Flux's
/// verdicts where known (`verdict(slug)`).
pub fn view(
    records: &[(EnvRecord, Option<String>)],
    verdict: impl Fn(&EnvRecord) -> Option<Verdict>,
    hosts: &WebHosts,
    now: SystemTime,
) -> View {
    let mut totals = Totals::default();
    let mut applications: Vec<String> = Vec::new();
    let rows = records
        .iter()
        .map(|(r, preview_url)| {
            let sleeping = r.sleeping_since.is_some();
            let v = verdict(r);
            let (state, message) = match (&v, sleeping) {
                (_, true) => (State::Sleeping, None),
                (Some(v), false) => (v.state, v.message.clone()),
                (None, false) => (State::Committed, None),
            };
            totals.previews += 1;
            match state {
                State::Ready => totals.ready += 1,
                State::Failed => totals.failed += 1,
                State::Sleeping => totals.sleeping += 1,
                _ => {}
            }
            let expires = r.expires_at.as_deref().and_then(parse_time);
            if expires.is_some_and(|e| {
                e.duration_since(now)
                    .is_ok_and(|left| left <= Duration::from_secs(24 * 3600))
            }) {
                totals.expiring_soon += 1;
            }
            if let Some(a) = &r.app {
                if !applications.contains(a) {
                    applications.push(a.clone());
                }
            }
            let (change_url, commit_url) = links(r, hosts);
            let (acts, notes) = actions(r.expires_at.is_some(), r.sleeping_since.is_some());
            Row {
                application: r.app.clone(),
                cluster: r.cluster.clone(),
                slug: r.slug.clone(),
                file: r.file.clone(),
                branch: r.branch.clone(),
                change: r.id.clone(),
                change_url,
                title: r.title.clone(),
                author: r.author.clone(),
                short_sha: r.sha.as_ref().map(|s| s.chars().take(12).collect()),
                sha: r.sha.clone(),
                commit_url,
                deployed_at: r.deployed_at.clone(),
                deployed: r
                    .deployed_at
                    .as_deref()
                    .and_then(parse_time)
                    .map(|t| crate::replies::relative(t, now)),
                expires_at: r.expires_at.clone(),
                expires: expires.map(|t| crate::replies::relative(t, now)),
                sleeping_since: r.sleeping_since.clone(),
                state,
                message,
                preview_url: preview_url
                    .clone()
                    .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
                actions: acts,
                notes,
            }
        })
        .collect();
    applications.sort();
    View {
        rows,
        totals,
        applications,
        queue: Vec::new(),
        clustered: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn rec(slug: &str, app: &str, forge: &str, repo: &str) -> EnvRecord {
        EnvRecord {
            slug: slug.into(),
            file: format!("sync-{slug}.yaml"),
            branch: format!("feature/{slug}"),
            app: Some(app.into()),
            forge: Some(forge.into()),
            repository: Some(repo.into()),
            id: Some("7".into()),
            sha: Some(SHA.into()),
            author: Some("alice".into()),
            title: Some("<img src=x onerror=alert(1)>".into()),
            deployed_at: Some("2026-11-30T08:00:00Z".into()),
            expires_at: Some("2026-12-01T08:00:00Z".into()),
            ..EnvRecord::default()
        }
    }

    fn hosts() -> WebHosts {
        WebHosts {
            github: Some("https://github.com".into()),
            gitlab: Some("https://gitlab.example.com/".into()),
            gitea: Some("https://gitea.example.com".into()),
        }
    }

    #[test]
    fn gitea_previews_link_to_giteas_pages() {
        let now = parse_time("2026-11-30T12:00:00Z").unwrap();
        let records = vec![(rec("g", "web", "gitea", "org/web"), None)];
        let v = view(&records, |_| None, &hosts(), now);
        assert_eq!(
            v.rows[0].change_url.as_deref(),
            Some("https://gitea.example.com/org/web/pulls/7")
        );
        assert_eq!(
            v.rows[0].commit_url.as_deref(),
            Some(format!("https://gitea.example.com/org/web/commit/{SHA}").as_str())
        );
    }

    #[test]
    fn rows_links_states_and_totals() {
        let now = parse_time("2026-11-30T12:00:00Z").unwrap();
        let mut asleep = rec("b", "api", "gitlab", "group/api");
        asleep.sleeping_since = Some("2026-11-30T10:00:00Z".into());
        asleep.expires_at = Some("2026-12-05T00:00:00Z".into());
        let records = vec![
            (
                rec("a", "web", "github", "org/web"),
                Some("https://a.preview.example.com".into()),
            ),
            (asleep, None),
            (
                rec("c", "web", "github", "org/web"),
                Some("javascript:alert(1)".into()),
            ),
        ];
        let v = view(
            &records,
            |r| {
                (r.slug == "c").then(|| Verdict {
                    state: State::Failed,
                    message: Some("health check failed".into()),
                })
            },
            &hosts(),
            now,
        );
        let a = &v.rows[0];
        assert_eq!(
            a.change_url.as_deref(),
            Some("https://github.com/org/web/pull/7")
        );
        assert_eq!(
            a.commit_url.as_deref(),
            Some(format!("https://github.com/org/web/commit/{SHA}").as_str())
        );
        assert_eq!(a.short_sha.as_deref(), Some("0123456789ab"));
        assert_eq!(a.state, State::Committed);
        let b = &v.rows[1];
        assert_eq!(
            b.change_url.as_deref(),
            Some("https://gitlab.example.com/group/api/-/merge_requests/7")
        );
        assert_eq!(b.state, State::Sleeping);
        let c = &v.rows[2];
        assert_eq!(c.state, State::Failed);
        assert_eq!(c.message.as_deref(), Some("health check failed"));
        assert_eq!(c.preview_url, None, "only http(s) URLs are links");
        assert_eq!(
            v.totals,
            Totals {
                previews: 3,
                ready: 0,
                failed: 1,
                sleeping: 1,
                expiring_soon: 2
            }
        );
        assert_eq!(v.applications, ["api", "web"]);
    }

    #[test]
    fn recorded_text_never_makes_a_link_of_its_own() {
        let mut r = rec("x", "web", "github", "org/web/../../evil");
        r.id = Some("7?x=1".into());
        let v = view(&[(r, None)], |_| None, &hosts(), SystemTime::UNIX_EPOCH);
        assert_eq!(v.rows[0].change_url, None);
        assert_eq!(v.rows[0].commit_url, None);
        let mut r = rec("y", "web", "github", "org/web");
        r.id = Some("7?x=1".into());
        let v = view(&[(r, None)], |_| None, &hosts(), SystemTime::UNIX_EPOCH);
        assert_eq!(v.rows[0].change_url, None);
        assert!(v.rows[0].commit_url.is_some());
    }
}

#[cfg(test)]
mod buttons {
    #[test]
    fn only_the_buttons_that_apply_with_the_others_state() {
        assert_eq!(
            super::actions(true, false),
            (vec!["extend", "sleep", "destroy"], vec!["awake"])
        );
        assert_eq!(
            super::actions(true, true),
            (vec!["extend", "wake", "destroy"], vec!["asleep"])
        );
        assert_eq!(
            super::actions(false, false),
            (vec!["sleep", "destroy"], vec!["no expiry", "awake"])
        );
    }
}
