//! Self-healing: compare an application's open pull/merge requests with its environments and
//! repair the drift the webhooks missed — a closed change's environment is destroyed, an
//! environment whose change moved on is updated to the new head (only when the change's author
//! may deploy, and never for forks). Nothing is created. Shares its listing and scoping with
//! `cleanup`.

use serde::Serialize;

use super::input::EnvInput;
use crate::cleanup::in_scope;
use crate::error::Result;
use crate::events::Actor;
use crate::forge::{ChangeForge, OpenChange};
use crate::git::Store;
use crate::model::EnvRecord;
use crate::overlay::records;
use crate::plan::{Intent, PlanOptions, Removal};
use crate::reconcile::{ConfigSource, Report, RunOptions, Snapshot};

/// One repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "repair", rename_all = "snake_case")]
pub enum Repair {
    /// The change is no longer open.
    Destroy {
        slug: String,
        file: String,
        id: String,
    },
    /// The change's head moved, but nobody who may deploy can be shown to have moved it
    /// (`allowlist_only`): the preview stays where it is and the new head is marked outdated.
    Outdated {
        slug: String,
        file: String,
        id: String,
        sha: String,
    },
    /// The change's head moved.
    Update {
        slug: String,
        file: String,
        id: String,
        sha: String,
    },
}

impl Repair {
    /// An update that may not happen: the same change, marked outdated instead.
    fn into_outdated(self) -> Repair {
        match self {
            Repair::Update {
                slug,
                file,
                id,
                sha,
            } => Repair::Outdated {
                slug,
                file,
                id,
                sha,
            },
            other => other,
        }
    }
}

/// The repairs for `records` given the open changes and, on GitLab, the available environments
/// (pure).
pub fn drift(
    records: &[EnvRecord],
    open: &[OpenChange],
    available: Option<&std::collections::BTreeSet<String>>,
) -> Vec<(Repair, Option<OpenChange>)> {
    let mut out = Vec::new();
    for r in records {
        // A GitLab environment that was stopped takes its preview with it.
        if let (Some(env), Some(avail)) = (&r.environment, available) {
            if !avail.contains(env) {
                out.push((
                    Repair::Destroy {
                        slug: r.slug.clone(),
                        file: r.file.clone(),
                        id: r.id.clone().unwrap_or_else(|| env.clone()),
                    },
                    None,
                ));
                continue;
            }
        }
        let Some(id) = &r.id else { continue };
        match open.iter().find(|c| &c.number == id) {
            None => out.push((
                Repair::Destroy {
                    slug: r.slug.clone(),
                    file: r.file.clone(),
                    id: id.clone(),
                },
                None,
            )),
            Some(c)
                if r.sha.is_some()
                    && r.sha.as_deref() != Some(c.sha.as_str())
                    && r.branch == c.branch
                    && !c.from_fork
                    && r.artifact.is_none() =>
            {
                out.push((
                    Repair::Update {
                        slug: r.slug.clone(),
                        file: r.file.clone(),
                        id: id.clone(),
                        sha: c.sha.clone(),
                    },
                    Some(c.clone()),
                ))
            }
            Some(_) => {}
        }
    }
    out
}

/// What a resync did.
#[derive(Debug)]
pub struct Resynced {
    pub repairs: Vec<Repair>,
    pub report: Report,
    /// The lifecycle pass run in the same commit: removed because expired, and warned, put to
    /// sleep or woken.
    pub expired: Vec<crate::cleanup::Stale>,
    pub lifecycle: Vec<super::lifecycle::Changed>,
}

/// Read the listing, plan the repairs for this application's environments (those recorded for
/// `repository`, or without one), and apply them in one transaction.
pub fn resync(
    store: &Store,
    config: &ConfigSource,
    first: Snapshot,
    forge: &dyn ChangeForge,
    repository: &str,
    dry_run: bool,
) -> Result<Resynced> {
    let open = forge.open_changes()?;
    let available = forge.available_environments()?;
    let settings = first.settings.clone();
    let app = &settings.application;
    let mine: Vec<EnvRecord> = records(&first.files)
        .into_iter()
        .filter(|r| in_scope(r, app, &first.renderer.settings().object_name(&r.slug)))
        .filter(|r| {
            r.repository
                .as_deref()
                .map_or(!app.listed, |rec| rec.eq_ignore_ascii_case(repository))
        })
        .collect();
    let repairs = confirmed_repairs(&mine, &open, available.as_ref(), forge, &settings)?;
    let mut lived: (Vec<crate::cleanup::Stale>, Vec<super::lifecycle::Changed>) =
        Default::default();
    // Expiry warnings go out before the commit that marks them (one that fails stays due).
    let open_numbers: std::collections::BTreeSet<String> =
        open.iter().map(|c| c.number.to_string()).collect();
    let (warned, warn_failures) = super::lifecycle::warn_first(
        &mine,
        (!dry_run).then_some(forge),
        Some(&open_numbers),
        &settings,
        std::time::SystemTime::now(),
    );
    for e in &warn_failures {
        tracing::warn!("lifecycle warning: {e}");
    }
    let mut intents = |snap: &Snapshot| -> Result<Vec<Intent>> {
        let mut out = repair_intents(&repairs, &mine, snap)?;
        // The lifecycle of every other environment of this application, in the same commit.
        let touched: std::collections::BTreeSet<&str> = repairs
            .iter()
            .map(|(r, _)| match r {
                Repair::Destroy { file, .. }
                | Repair::Update { file, .. }
                | Repair::Outdated { file, .. } => file.as_str(),
            })
            .collect();
        let current: Vec<EnvRecord> = records(&snap.files)
            .into_iter()
            .filter(|r| mine.iter().any(|m| m.file == r.file))
            .collect();
        let (life, expired, changed) = super::lifecycle::pass(
            &current,
            &touched,
            &snap.files,
            &snap.settings,
            std::time::SystemTime::now(),
            &warned,
        );
        out.extend(life);
        lived = (expired, changed);
        Ok(out)
    };
    let opts = RunOptions {
        dry_run,
        plan: PlanOptions::default(),
        max_attempts: 10,
        requested_by: None,
    };
    let report =
        crate::service::clusters::transaction(store, config, Some(first), &mut intents, &opts)?;
    let repairs: Vec<Repair> = repairs.into_iter().map(|(r, _)| r).collect();
    let (expired, lifecycle) = lived;
    if !dry_run {
        mark_outdated(forge, &repairs, &mine, &settings.commands.deploy);
        if report.commit.is_some() {
            after_commit(forge, &repairs, &expired, &lifecycle, &open, &settings);
        }
    }
    // Requests that waited for their checks and whose completion webhook was lost.
    if !dry_run && !settings.require_checks.is_empty() {
        super::release::release_waiting(store, config, forge, repository, &open);
    }
    Ok(Resynced {
        repairs,
        report,
        expired,
        lifecycle,
    })
}

/// The drift between `mine` and the forge, each repair confirmed: a destroy only when the change
/// itself says it is closed (or its environment stopped), a move only as far as who pushed may
/// deploy.
fn confirmed_repairs(
    mine: &[EnvRecord],
    open: &[crate::forge::OpenChange],
    available: Option<&std::collections::BTreeSet<String>>,
    forge: &dyn ChangeForge,
    settings: &crate::settings::Settings,
) -> Result<Vec<(Repair, Option<crate::forge::OpenChange>)>> {
    let mut repairs = Vec::new();
    let mut confirmed = super::confirm::Confirmed::default();
    for (repair, change) in drift(mine, open, available) {
        let mut outdated = false;
        match (&repair, &change) {
            // Absent from the listing is not closed: the change itself must say so.
            (Repair::Destroy { id, file, .. }, _) => {
                let stopped = mine
                    .iter()
                    .find(|r| &r.file == file)
                    .and_then(|r| r.environment.as_ref())
                    .zip(available)
                    .is_some_and(|(env, avail)| !avail.contains(env));
                if !stopped && !confirmed.closed(forge, id)? {
                    continue;
                }
            }
            (Repair::Update { .. }, Some(c)) => match may_move(forge, c, &settings.chat)? {
                Move::Yes => {}
                Move::Outdated => {
                    tracing::info!(change = %c.number, author = %c.author, "head moved, but nobody who may deploy can be shown to have pushed it: marked outdated");
                    outdated = true;
                }
                Move::No => {
                    tracing::info!(change = %c.number, author = %c.author, "head moved, but its author may not deploy: left alone");
                    continue;
                }
            },
            _ => {}
        }
        let repair = if outdated {
            repair.into_outdated()
        } else {
            repair
        };
        repairs.push((repair, change));
    }
    Ok(repairs)
}

/// The intents of the confirmed repairs: removals, and moves to the new head with what the
/// environment recorded.
fn repair_intents(
    repairs: &[(Repair, Option<crate::forge::OpenChange>)],
    mine: &[EnvRecord],
    snap: &Snapshot,
) -> Result<Vec<Intent>> {
    let mut out = Vec::new();
    for (repair, change) in repairs {
        match (repair, change) {
            (Repair::Destroy { slug, file, .. }, _) => out.push(Intent::Remove(Removal {
                slug: slug.clone(),
                key: crate::model::slug_of_file_name(file).map(str::to_string),
                branch: None,
                requester: Default::default(),
                exact: true,
            })),
            (
                Repair::Update {
                    slug,
                    file,
                    id,
                    sha,
                },
                Some(c),
            ) => {
                let Some(content) = snap.files.get(file) else {
                    continue;
                };
                let record = mine.iter().find(|r| &r.file == file);
                let input = EnvInput {
                    branch: Some(c.branch.clone()),
                    sha: Some(sha.clone()),
                    id: Some(id.clone()),
                    author: record.and_then(|r| r.author.clone()),
                    slug: Some(slug.clone()),
                    environment: record.and_then(|r| r.environment.clone()),
                    ci_source_url: record
                        .and_then(|r| crate::service::lifecycle::respec::source_url_of(r, content)),
                    ..EnvInput::default()
                };
                out.push(Intent::Upsert(input.spec(&snap.settings)?));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// After the commit: the removal and lifecycle notices, and the deployments marked inactive.
fn after_commit(
    forge: &dyn ChangeForge,
    repairs: &[Repair],
    expired: &[crate::cleanup::Stale],
    lifecycle: &[super::lifecycle::Changed],
    open: &[crate::forge::OpenChange],
    settings: &crate::settings::Settings,
) {
    let open: std::collections::BTreeSet<String> =
        open.iter().map(|c| c.number.to_string()).collect();
    let now = std::time::SystemTime::now();
    let (_, failures) = super::lifecycle::comment_expired(expired, forge, Some(&open), settings);
    let (_, more) = super::lifecycle::comment(lifecycle, forge, Some(&open), settings, now);
    for e in failures.into_iter().chain(more) {
        tracing::warn!("lifecycle comment: {e}");
    }
    let destroyed = repairs.iter().filter_map(|r| match r {
        Repair::Destroy { slug, .. } => Some(slug.as_str()),
        _ => None,
    });
    for slug in destroyed.chain(expired.iter().map(|s| s.slug.as_str())) {
        super::deployments::removed(forge, settings, slug, false);
    }
}

/// What resync may do when a change's head moved.
enum Move {
    Yes,
    /// The author may deploy, but the pusher cannot be shown to: mark the head outdated.
    Outdated,
    /// Nobody who may deploy is involved (a stranger's change, a fork): leave it alone.
    No,
}

/// Whether resync may move a preview to its change's new head without the push event: the
/// listing names the author, never the pusher. Without `allowlist_only`, only someone with write
/// access can push to a branch of the repository itself (forks never reach here), and the author
/// must still be someone who may deploy. With `allowlist_only`, a writer who is not on the list
/// may have pushed, so the head cannot be attributed and is not deployed.
fn may_move(
    forge: &dyn ChangeForge,
    c: &OpenChange,
    chat: &crate::chatops::ChatSettings,
) -> Result<Move> {
    if c.from_fork {
        return Ok(Move::No);
    }
    let actor = Actor {
        login: c.author.clone(),
        id: None,
    };
    if !crate::chatops::trusted(&c.author, || forge.has_write_access(&actor), chat)? {
        return Ok(Move::No);
    }
    Ok(if chat.allowlist_only {
        Move::Outdated
    } else {
        Move::Yes
    })
}

/// Mark each outdated head (a pending status naming the deployed commit and the way to update
/// it). Best effort: a failure is a warning.
pub fn mark_outdated(
    forge: &dyn ChangeForge,
    repairs: &[Repair],
    records: &[EnvRecord],
    deploy: &str,
) {
    for r in repairs {
        let Repair::Outdated { file, sha, .. } = r else {
            continue;
        };
        let at = records
            .iter()
            .find(|x| &x.file == file)
            .and_then(|x| x.sha.as_deref())
            .unwrap_or("an earlier commit");
        let text = crate::replies::outdated(at, deploy);
        // Once per head: every later pass finds the status already there.
        let said = forge
            .commit_statuses(sha)
            .map(|list| list.iter().any(|s| s.description == text))
            .unwrap_or(false);
        if said {
            continue;
        }
        if let Err(e) = forge.set_status(sha, crate::forge::Status::Pending, &text, None) {
            tracing::warn!("{e}");
        }
    }
}

/// Which forge repository an application's `source_url` names, when that is unambiguous: a
/// github.com (or GITHUB_SERVER_URL) URL is a GitHub repository, one on the GitLab instance
/// (--gitlab-url, CI_SERVER_URL, GITLAB_URL, else gitlab.com) a GitLab project.
pub fn forge_of_source(
    source_url: &str,
    gitlab_url: Option<&str>,
) -> Option<(crate::events::Forge, String)> {
    let host = |u: &str| -> Option<String> {
        let rest = u.split_once("://").map_or(u, |x| x.1);
        let authority = rest.split('/').next()?;
        let host = authority.rsplit('@').next()?.split(':').next()?;
        (!host.is_empty()).then(|| host.to_ascii_lowercase())
    };
    let path = crate::apps::repository_of_url(source_url)?;
    let source = host(source_url)?;
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let github = var("GITHUB_SERVER_URL").and_then(|u| host(&u));
    if source == "github.com" || github.as_deref() == Some(source.as_str()) {
        return Some((crate::events::Forge::GitHub, path));
    }
    let gitlab = gitlab_url
        .map(str::to_string)
        .or_else(|| var("CI_SERVER_URL"))
        .or_else(|| var("GITLAB_URL"))
        .and_then(|u| host(&u))
        .unwrap_or_else(|| "gitlab.com".into());
    (source == gitlab).then_some((crate::events::Forge::GitLab, path))
}

/// Why resync cannot run for the application `settings` are for, if it cannot: neither a
/// repository nor a source URL on a known forge is configured.
pub fn resync_gap(
    settings: &crate::settings::Settings,
    gitlab_url: Option<&str>,
) -> Option<String> {
    if settings.github_repository.is_some()
        || settings.gitlab_project.is_some()
        || settings.gitea_repository.is_some()
    {
        return None;
    }
    let name = &settings.application.name;
    match settings.source_url.as_deref() {
        Some(u) if forge_of_source(u, gitlab_url).is_some() => None,
        Some(u) => Some(format!(
            "application {name} cannot be resynced: its source_url {:?} is on neither github.com nor the GitLab instance; set github_repository, gitlab_project or gitea_repository (or --gitlab-url)",
            crate::redact::redact_url(u)
        )),
        None => Some(format!(
            "application {name} cannot be resynced: set github_repository, gitlab_project or gitea_repository"
        )),
    }
}

/// The forge listing of the application `settings` are for: its `github_repository` or
/// `gitlab_project` (else the repository its `source_url` names on a known forge), with
/// GITHUB_TOKEN / GITLAB_TOKEN. `None` when none is known.
pub fn listing(
    settings: &crate::settings::Settings,
    gitlab_url: Option<&str>,
) -> Result<Option<(Box<dyn ChangeForge>, String)>> {
    Ok(listing_on(settings, gitlab_url)?.map(|(f, repo, _)| (f, repo)))
}

/// A forge's client for one repository, the repository, and the forge's name as environments
/// record it (`github`, `gitlab`).
pub type Listing = (Box<dyn ChangeForge>, String, &'static str);

/// The GitHub repository (`owner/name`) of an application: `github_repository`, else what its
/// source URL names on github.com.
pub fn github_repository(
    settings: &crate::settings::Settings,
    gitlab_url: Option<&str>,
) -> Option<String> {
    forge_repositories(settings, gitlab_url).0
}

/// The application's GitHub repository and GitLab project.
fn forge_repositories(
    settings: &crate::settings::Settings,
    gitlab_url: Option<&str>,
) -> (Option<String>, Option<String>) {
    if settings.gitea_repository.is_some() {
        return (None, None);
    }
    let derived = match (&settings.github_repository, &settings.gitlab_project) {
        (None, None) => settings
            .source_url
            .as_deref()
            .and_then(|u| forge_of_source(u, gitlab_url)),
        _ => None,
    };
    match derived {
        Some((crate::events::Forge::GitHub, path)) => (Some(path), None),
        Some((crate::events::Forge::GitLab, path)) => (None, Some(path)),
        // A source URL is never taken for Gitea's: gitea_repository names it.
        Some((crate::events::Forge::Gitea, _)) => (None, None),
        None => (
            settings.github_repository.clone(),
            settings.gitlab_project.clone(),
        ),
    }
}

/// [`listing`], with the forge's name.
pub fn listing_on(
    settings: &crate::settings::Settings,
    gitlab_url: Option<&str>,
) -> Result<Option<Listing>> {
    let (github, gitlab) = forge_repositories(settings, gitlab_url);
    if let Some(repo) = &github {
        let gh = super::forges::github(repo)?;
        return Ok(Some((Box::new(gh), repo.clone(), "github")));
    }
    if let Some(project) = &gitlab {
        let gl = super::forges::gitlab(gitlab_url, project)?;
        return Ok(Some((Box::new(gl), project.clone(), "gitlab")));
    }
    if let Some(repo) = &settings.gitea_repository {
        let gt = super::forges::gitea(repo)?;
        return Ok(Some((Box::new(gt), repo.clone(), "gitea")));
    }
    Ok(None)
}

/// Resync every application `config` serves (each listed one, or the one), each with its
/// listing; the GitOps repository is read once for all of them.
pub fn resync_all(
    store: &Store,
    config: &ConfigSource,
    gitlab_url: Option<&str>,
    dry_run: bool,
) -> Vec<Result<Resynced>> {
    let apps = match crate::reconcile::per_application(store, config) {
        Ok(a) => a,
        Err(e) => return vec![Err(e)],
    };
    apps.into_iter()
        .filter_map(|(config, first)| {
            let run = || -> Result<Option<Resynced>> {
                let first = first?;
                // Said, not skipped silently: the operator must learn which setting is missing.
                if let Some(why) = resync_gap(&first.settings, gitlab_url) {
                    return Err(crate::error::Error::config(why));
                }
                let Some((forge, repository)) = listing(&first.settings, gitlab_url)? else {
                    return Ok(None);
                };
                resync(store, &config, first, forge.as_ref(), &repository, dry_run).map(Some)
            };
            run().transpose()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, sha: &str) -> EnvRecord {
        EnvRecord {
            slug: format!("s{id}"),
            file: format!("sync-s{id}.yaml"),
            branch: format!("b{id}"),
            name: None,
            app: None,
            forge: None,
            repository: None,
            artifact: None,
            sha: Some(sha.into()),
            id: Some(id.into()),
            author: None,
            environment: None,
            deployed_at: None,
            ttl: None,
            ..Default::default()
        }
    }

    fn open(id: &str, sha: &str, fork: bool) -> OpenChange {
        OpenChange {
            number: id.into(),
            branch: format!("b{id}"),
            sha: sha.into(),
            from_fork: fork,
            author: "a".into(),
        }
    }

    #[test]
    fn the_forge_of_a_source_url() {
        use crate::events::Forge;
        assert_eq!(
            forge_of_source("https://github.com/org/app.git", None),
            Some((Forge::GitHub, "org/app".into()))
        );
        assert_eq!(
            forge_of_source(
                "git@gitlab.example.com:group/sub/app.git",
                Some("https://gitlab.example.com")
            ),
            Some((Forge::GitLab, "group/sub/app".into()))
        );
        assert_eq!(
            forge_of_source(
                "https://git.example.com/org/app.git",
                Some("https://gitlab.example.com")
            ),
            None
        );
    }

    #[test]
    fn closed_moved_and_left_alone() {
        let records = vec![
            rec("1", "aa"),
            rec("2", "aa"),
            rec("3", "aa"),
            rec("4", "aa"),
        ];
        let changes = vec![
            open("2", "bb", false),
            open("3", "aa", false),
            open("4", "bb", true),
        ];
        let got: Vec<Repair> = drift(&records, &changes, None)
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(
            got,
            vec![
                Repair::Destroy {
                    slug: "s1".into(),
                    file: "sync-s1.yaml".into(),
                    id: "1".into()
                },
                Repair::Update {
                    slug: "s2".into(),
                    file: "sync-s2.yaml".into(),
                    id: "2".into(),
                    sha: "bb".into()
                },
            ]
        );
        // A stopped GitLab environment goes with its preview.
        let mut env = rec("9", "aa");
        env.id = None;
        env.environment = Some("review/x".into());
        let available: std::collections::BTreeSet<String> = ["review/y".to_string()].into();
        assert_eq!(drift(&[env], &[], Some(&available)).len(), 1);
    }
}
