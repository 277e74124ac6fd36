//! The pure planner: (files in the instances directory, what is wanted) → changes.
//!
//! Deploy, destroy and cleanup are all the same call with different intents.

use std::time::SystemTime;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::{file_name, parse_time, EnvSpec, Owner};
use crate::overlay::{classify, Entry, Files};
use crate::render::{Rendered, Renderer};

/// What somebody wants for one environment. (A plan holds a handful of these: the size
/// difference between the variants costs nothing worth a box.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// The environment should exist as described.
    Upsert(EnvSpec),
    /// The environment should not exist.
    Remove(Removal),
}

/// An environment to remove, and who asks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removal {
    pub slug: String,
    /// The sync file's key when it is not the slug (see [`EnvSpec::key`]).
    pub key: Option<String>,
    /// When given, the environment must belong to this branch (a mismatch is an error).
    pub branch: Option<String>,
    /// Who asks: another owner's environment is left alone.
    pub requester: Owner,
    /// The slug was named directly (`destroy --slug`): a file of an earlier version,
    /// `sync-<slug>.yaml` without an owner, is found by it too.
    pub exact: bool,
}

/// One file change, relative to the instances directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Write {
        file: String,
        content: String,
        before: Option<String>,
    },
    Delete {
        file: String,
        before: String,
    },
}

impl Change {
    pub fn file(&self) -> &str {
        match self {
            Change::Write { file, .. } | Change::Delete { file, .. } => file,
        }
    }
}

/// What happened to one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Updated,
    Unchanged,
    Destroyed,
    Absent,
}

impl Action {
    pub fn changed(self) -> bool {
        matches!(self, Action::Created | Action::Updated | Action::Destroyed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub action: Action,
    pub slug: String,
    pub file: String,
    pub branch: Option<String>,
    pub sha: Option<String>,
    pub rendered: Option<Rendered>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Record a new deploy time even when nothing else changed (extends a time to live).
    pub refresh: bool,
    /// Refuse to create an environment beyond this many.
    pub max_environments: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub outcomes: Vec<Outcome>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The commit message: a summary line naming every action, then one line per environment.
    pub fn commit_message(&self) -> String {
        let changed: Vec<&Outcome> = self
            .outcomes
            .iter()
            .filter(|o| o.action.changed())
            .collect();
        let verb = |a: Action| match a {
            Action::Created => "deploy",
            Action::Updated => "update",
            _ => "destroy",
        };
        let mut msg = match changed.as_slice() {
            [one] => format!("flux-ephemeral: {} {}", verb(one.action), one.slug),
            many => format!("flux-ephemeral: change {} environments", many.len()),
        };
        msg.push_str("\n\n");
        for o in &changed {
            msg.push_str(&format!("{} {}", verb(o.action), o.slug));
            if let Some(b) = &o.branch {
                msg.push_str(&format!(" (branch {b}"));
                match &o.sha {
                    Some(sha) => msg.push_str(&format!(" at {sha})")),
                    None => msg.push(')'),
                }
            }
            msg.push_str(&format!(": {}\n", o.file));
        }
        msg
    }
}

/// Plan the changes that bring `files` to what `intents` ask for.
pub fn plan(
    files: &Files,
    intents: &[Intent],
    renderer: &Renderer,
    now: SystemTime,
    opts: &PlanOptions,
) -> Result<Plan> {
    let mut out = Plan::default();
    // Counting means parsing every sync file: only when a cap asks for it.
    let mut live = match opts.max_environments {
        Some(_) => crate::overlay::records(files).len(),
        None => 0,
    };
    for intent in intents {
        let (outcome, change) = match intent {
            Intent::Upsert(spec) => plan_upsert(files, spec, renderer, now, opts, &mut live)?,
            Intent::Remove(target) => plan_remove(files, target, renderer)?,
        };
        out.outcomes.push(outcome);
        out.changes.extend(change);
    }
    Ok(out)
}

fn plan_upsert(
    files: &Files,
    spec: &EnvSpec,
    renderer: &Renderer,
    now: SystemTime,
    opts: &PlanOptions,
    live: &mut usize,
) -> Result<(Outcome, Vec<Change>)> {
    let file = file_name(spec.key());
    // A file of an earlier version (`sync-<slug>.yaml`, no application recorded) holding this
    // environment's objects is adopted: replaced by the new file in the same commit.
    let object_name = renderer.settings().object_name(&spec.slug);
    let legacy = legacy_file(
        files,
        spec.key(),
        &spec.slug,
        &object_name,
        spec.app.as_deref(),
    );
    let (before_file, before) = match (files.get(&file), &legacy) {
        (Some(c), _) => (file.clone(), Some(c)),
        (None, Some((f, c))) => (f.clone(), Some(c)),
        (None, None) => (file.clone(), None),
    };
    let previous_time = match before {
        Some(content) => replaceable(&before_file, content, spec)?,
        None => {
            room_for_one(*live, opts)?;
            None
        }
    };
    let adopt = |write: Change| -> Vec<Change> {
        match &legacy {
            Some((f, c)) if before_file == *f => vec![
                Change::Delete {
                    file: f.clone(),
                    before: c.clone(),
                },
                write,
            ],
            _ => vec![write],
        }
    };
    let moving = before_file != file;
    // Keep the recorded deploy time when nothing else changed, so deploying twice commits nothing.
    let refresh = opts.refresh || spec.refresh;
    if let (Some(t), Some(content), false, false) = (previous_time, before, refresh, moving) {
        let same = renderer.render(spec, t)?;
        if &same.content == content {
            return Ok((outcome(Action::Unchanged, spec, file, Some(same)), vec![]));
        }
    }
    let at = match (spec.keep_deployed_at, previous_time) {
        (true, Some(t)) => t,
        _ => now,
    };
    let rendered = renderer.render(spec, at)?;
    let action = match before {
        Some(c) if c == &rendered.content && !moving => {
            return Ok((
                outcome(Action::Unchanged, spec, file, Some(rendered)),
                vec![],
            ))
        }
        Some(_) => Action::Updated,
        None => {
            *live += 1;
            Action::Created
        }
    };
    let change = Change::Write {
        file: file.clone(),
        content: rendered.content.clone(),
        before: files.get(&file).cloned(),
    };
    Ok((outcome(action, spec, file, Some(rendered)), adopt(change)))
}

/// Whether the file there may be replaced by `spec`'s environment: one flux-ephemeral wrote, of
/// the same branch and owner. Its recorded deploy time.
fn replaceable(before_file: &str, content: &str, spec: &EnvSpec) -> Result<Option<SystemTime>> {
    match classify(before_file, content) {
        Some(Entry::Managed(r)) if r.branch != spec.branch => Err(Error::input(format!(
            "environment {} already belongs to branch {:?}; refusing to let branch {:?} replace it",
            spec.slug, r.branch, spec.branch
        ))),
        Some(Entry::Managed(r)) if r.owner().conflicts(&spec.owner()) => {
            Err(Error::input(format!(
                "environment {} belongs to {}; refusing to let {} replace it",
                spec.slug,
                r.owner().describe(),
                spec.owner().describe()
            )))
        }
        Some(Entry::Managed(r)) => Ok(r.deployed_at.as_deref().and_then(parse_time)),
        _ => Err(Error::input(format!(
            "{before_file} exists but was not created by flux-ephemeral (no {} annotation); \
             refusing to overwrite it",
            crate::model::keys::MANAGED_BY
        ))),
    }
}

/// Whether one more environment fits under `max_environments`.
fn room_for_one(live: usize, opts: &PlanOptions) -> Result<()> {
    match opts.max_environments {
        Some(max) if live >= max => Err(Error::input(format!(
            "there are already {live} preview environments, the configured maximum ({max}); \
             destroy one or raise max_environments"
        ))),
        _ => Ok(()),
    }
}

/// `sync-<slug>.yaml` written by an earlier version for the environment now kept under `key`:
/// managed, without an application recorded, holding objects named `object_name`.
fn legacy_file(
    files: &Files,
    key: &str,
    slug: &str,
    object_name: &str,
    app: Option<&str>,
) -> Option<(String, String)> {
    if key == slug {
        return None;
    }
    let f = file_name(slug);
    let content = files.get(&f)?;
    match classify(&f, content)? {
        Entry::Managed(r)
            if r.name.as_deref() == Some(object_name)
                && (r.app.is_none() || r.app.as_deref() == app) =>
        {
            Some((f, content.clone()))
        }
        _ => None,
    }
}

fn plan_remove(
    files: &Files,
    target: &Removal,
    renderer: &Renderer,
) -> Result<(Outcome, Vec<Change>)> {
    let (slug, branch) = (target.slug.as_str(), target.branch.as_deref());
    let key = target.key.as_deref().unwrap_or(slug);
    let object_name = renderer.settings().object_name(slug);
    let legacy = legacy_file(
        files,
        key,
        slug,
        &object_name,
        target.requester.app.as_deref(),
    );
    let unowned = |f: &String| {
        files
            .get(f)
            .and_then(|c| classify(f, c))
            .is_some_and(|e| matches!(e, Entry::Managed(r) if r.app.is_none()))
    };
    let file = match (files.contains_key(&file_name(key)), legacy) {
        (false, Some((f, _))) => f,
        (false, None) if target.exact && unowned(&file_name(slug)) => file_name(slug),
        _ => file_name(key),
    };
    let absent = Outcome {
        action: Action::Absent,
        slug: slug.into(),
        file: file.clone(),
        branch: branch.map(Into::into),
        sha: None,
        rendered: None,
    };
    let Some(content) = files.get(&file) else {
        return Ok((absent, vec![]));
    };
    match classify(&file, content) {
        Some(Entry::Managed(r)) => {
            if let Some(b) = branch {
                if b != r.branch {
                    return Err(Error::input(format!(
                        "environment {slug} belongs to branch {:?}, not {b:?}; nothing was destroyed",
                        r.branch
                    )));
                }
            }
            // Another owner's environment is not this requester's to remove: for them it is
            // absent. A pull/merge request removes only the environment recorded for it.
            let theirs = r.owner().conflicts(&target.requester)
                || (target.requester.change.is_some() && r.id.is_none());
            if theirs {
                tracing::info!(
                    slug,
                    owner = %r.owner().describe(),
                    requester = %target.requester.describe(),
                    "not removing another owner's environment"
                );
                return Ok((absent, vec![]));
            }
            let o = Outcome {
                action: Action::Destroyed,
                slug: slug.into(),
                file: file.clone(),
                branch: Some(r.branch),
                sha: r.sha,
                rendered: None,
            };
            Ok((
                o,
                vec![Change::Delete {
                    file,
                    before: content.clone(),
                }],
            ))
        }
        _ => Err(Error::input(format!(
            "{file} was not created by flux-ephemeral; refusing to delete it"
        ))),
    }
}

fn outcome(action: Action, spec: &EnvSpec, file: String, rendered: Option<Rendered>) -> Outcome {
    Outcome {
        action,
        slug: spec.slug.clone(),
        file,
        branch: Some(spec.branch.clone()),
        sha: spec.sha.clone(),
        rendered,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
