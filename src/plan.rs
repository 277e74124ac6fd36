//! The pure planner: (files in the instances directory, what is wanted) → changes.
//!
//! Deploy, destroy and cleanup are all the same call with different intents.

use std::time::SystemTime;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::{file_name, parse_time, EnvSpec};
use crate::overlay::{classify, Entry, Files};
use crate::render::{Rendered, Renderer};

/// What somebody wants for one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// The environment should exist as described.
    Upsert(EnvSpec),
    /// The environment should not exist.
    Remove {
        slug: String,
        branch: Option<String>,
    },
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
            Intent::Remove { slug, branch } => plan_remove(files, slug, branch.as_deref())?,
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
) -> Result<(Outcome, Option<Change>)> {
    let file = file_name(&spec.slug);
    let before = files.get(&file);
    let mut previous_time = None;
    if let Some(content) = before {
        match classify(&file, content) {
            Some(Entry::Managed(r)) if r.branch == spec.branch => previous_time = r.deployed_at.as_deref().and_then(parse_time),
            Some(Entry::Managed(r)) => {
                return Err(Error::input(format!(
                    "environment {} already belongs to branch {:?}; refusing to let branch {:?} replace it",
                    spec.slug, r.branch, spec.branch
                )))
            }
            _ => {
                return Err(Error::input(format!(
                    "{file} exists but was not created by flux-ephemeral (no {} annotation); \
                     refusing to overwrite it",
                    crate::model::keys::MANAGED_BY
                )))
            }
        }
    } else if let Some(max) = opts.max_environments {
        if *live >= max {
            return Err(Error::input(format!(
                "there are already {live} preview environments, the configured maximum ({max}); \
                 destroy one or raise max_environments"
            )));
        }
    }
    // Keep the recorded deploy time when nothing else changed, so deploying twice commits nothing.
    if let (Some(t), Some(content), false) = (previous_time, before, opts.refresh) {
        let same = renderer.render(spec, t)?;
        if &same.content == content {
            return Ok((outcome(Action::Unchanged, spec, file, Some(same)), None));
        }
    }
    let rendered = renderer.render(spec, now)?;
    let action = match before {
        Some(c) if c == &rendered.content => {
            return Ok((outcome(Action::Unchanged, spec, file, Some(rendered)), None))
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
        before: before.cloned(),
    };
    Ok((outcome(action, spec, file, Some(rendered)), Some(change)))
}

fn plan_remove(
    files: &Files,
    slug: &str,
    branch: Option<&str>,
) -> Result<(Outcome, Option<Change>)> {
    let file = file_name(slug);
    let absent = Outcome {
        action: Action::Absent,
        slug: slug.into(),
        file: file.clone(),
        branch: branch.map(Into::into),
        sha: None,
        rendered: None,
    };
    let Some(content) = files.get(&file) else {
        return Ok((absent, None));
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
                Some(Change::Delete {
                    file,
                    before: content.clone(),
                }),
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
