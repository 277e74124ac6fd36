//! An environment that should exist: created in the cluster it is placed in, updated where it
//! is, moved when another cluster is asked for, or queued when no allowed cluster has room.

use super::planner::Planner;
use super::{Action, Change, Outcome};
use crate::clusters::{Ask, Cluster, Placement, Waiting};
use crate::error::{Error, Result};
use crate::model::{file_name, parse_time, EnvSpec};
use crate::overlay::{classify, Entry, Files};
use crate::render::Rendered;

/// Where an environment's file is now.
struct Home {
    cluster: Cluster,
    file: String,
    content: String,
}

impl Planner<'_> {
    pub fn upsert(&mut self, spec: &EnvSpec) -> Result<(Outcome, Vec<Change>)> {
        match self.home(spec) {
            Some(home) => self.update(spec, home),
            None => self.create(spec),
        }
    }

    fn home(&self, spec: &EnvSpec) -> Option<Home> {
        let layout = &self.opts.layout;
        if let Some((c, f)) = layout.find(self.files, spec.key()) {
            let content = self.files.get(&f)?.to_string();
            return Some(Home {
                cluster: c.clone(),
                file: f,
                content,
            });
        }
        // A file of an earlier version (`sync-<slug>.yaml`, no application recorded) holding this
        // environment's objects is adopted: replaced by the new file in the same commit.
        let object_name = self.renderer.settings().object_name(&spec.slug);
        let cluster = layout.clusters.first()?;
        let (file, content) = legacy_file(
            self.files,
            &cluster.rel,
            spec.key(),
            &spec.slug,
            &object_name,
            spec.app.as_deref(),
        )?;
        Some(Home {
            cluster: cluster.clone(),
            file,
            content,
        })
    }

    /// A new environment: placed, or queued.
    fn create(&mut self, spec: &EnvSpec) -> Result<(Outcome, Vec<Change>)> {
        let key = spec.key().to_string();
        let ask = Ask {
            cluster: spec.cluster.as_deref(),
            author: spec.author.as_deref(),
            moving: false,
        };
        if self.queue.position(&key).is_some() {
            // Asking again keeps the place; the admission after this plan decides.
            let why = match self.place(ask)? {
                Placement::Full(why) => why,
                Placement::Into(_) => "others came first".into(),
            };
            self.queue.upsert(Waiting::of(spec, self.now));
            return Ok((queued(spec, key, why), vec![]));
        }
        room_for_one(self.live, self.opts)?;
        match self.place(ask)? {
            Placement::Full(why) => {
                self.queue.upsert(Waiting::of(spec, self.now));
                Ok((queued(spec, key, why), vec![]))
            }
            Placement::Into(name) => {
                let layout = &self.opts.layout;
                let file = layout.file(layout.named(&name).unwrap_or(&layout.clusters[0]), &key);
                let rendered = self.renderer.render(&placed(spec, &name), self.now)?;
                self.live += 1;
                let change = Change::Write {
                    file: file.clone(),
                    content: rendered.content.clone(),
                    before: None,
                };
                let mut o = outcome(Action::Created, spec, file, Some(rendered));
                o.cluster = Some(name);
                Ok((o, vec![change]))
            }
        }
    }

    /// An environment that exists: updated where it is, or moved to the cluster asked for.
    fn update(&mut self, spec: &EnvSpec, home: Home) -> Result<(Outcome, Vec<Change>)> {
        let previous_time = replaceable(&home.file, &home.content, spec)?;
        let target = match spec.cluster.as_deref() {
            Some(asked) if asked != home.cluster.name => self.move_to(spec, asked, &home)?,
            _ => home.cluster.clone(),
        };
        let layout = &self.opts.layout;
        let file = layout.file(&target, spec.key());
        let moving = home.file != file;
        let spec = &placed(spec, &target.name);
        let o = |action, rendered| {
            let mut o = outcome(action, spec, file.clone(), rendered);
            o.cluster = Some(target.name.clone());
            o.moved_from = (target.name != home.cluster.name).then(|| home.cluster.name.clone());
            o
        };
        // Keep the recorded deploy time when nothing else changed, so deploying twice commits nothing.
        let refresh = self.opts.refresh || spec.refresh;
        if let (Some(t), false, false) = (previous_time, refresh, moving) {
            let same = self.renderer.render(spec, t)?;
            if same.content == home.content {
                return Ok((o(Action::Unchanged, Some(same)), vec![]));
            }
        }
        let at = match (spec.keep_deployed_at, previous_time) {
            (true, Some(t)) => t,
            _ => self.now,
        };
        let rendered = self.renderer.render(spec, at)?;
        if rendered.content == home.content && !moving {
            return Ok((o(Action::Unchanged, Some(rendered)), vec![]));
        }
        let write = Change::Write {
            file: file.clone(),
            content: rendered.content.clone(),
            before: self.files.get(&file).map(|c| c.to_string()),
        };
        let changes = match moving {
            true => vec![
                Change::Delete {
                    file: home.file.clone(),
                    before: home.content.clone(),
                },
                write,
            ],
            false => vec![write],
        };
        Ok((o(Action::Updated, Some(rendered)), changes))
    }

    /// The cluster a live environment moves to: it must be allowed and have room.
    fn move_to(&mut self, spec: &EnvSpec, asked: &str, home: &Home) -> Result<Cluster> {
        let ask = Ask {
            cluster: Some(asked),
            author: spec.author.as_deref(),
            moving: true,
        };
        match self.place(ask)? {
            Placement::Into(name) => self
                .opts
                .layout
                .named(&name)
                .cloned()
                .ok_or_else(|| Error::internal("placed in an unknown cluster")),
            Placement::Full(why) => Err(Error::input(format!(
                "cannot move environment {} to cluster {asked}: {why}; it stays in {}",
                spec.slug, home.cluster.name
            ))),
        }
    }
}

/// `spec` as rendered in cluster `name`.
fn placed(spec: &EnvSpec, name: &str) -> EnvSpec {
    EnvSpec {
        cluster: Some(name.to_string()),
        ..spec.clone()
    }
}

/// Waiting in the queue. Its file is its key until the plan ends and knows its place.
fn queued(spec: &EnvSpec, key: String, why: String) -> Outcome {
    let mut o = outcome(Action::Queued, spec, key, None);
    o.waits_for = Some(why);
    o
}

/// Whether the file there may be replaced by `spec`'s environment: one flux-ephemeral wrote, of
/// the same branch and owner. Its recorded deploy time.
fn replaceable(
    before_file: &str,
    content: &str,
    spec: &EnvSpec,
) -> Result<Option<std::time::SystemTime>> {
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
fn room_for_one(live: usize, opts: &super::PlanOptions) -> Result<()> {
    match opts.max_environments {
        Some(max) if live >= max => Err(Error::input(format!(
            "there are already {live} preview environments, the configured maximum ({max}); \
             destroy one or raise max_environments"
        ))),
        _ => Ok(()),
    }
}

/// `sync-<slug>.yaml` (in the directory `rel`) written by an earlier version for the environment
/// now kept under `key`: managed, without an application recorded, holding objects named
/// `object_name`.
pub(super) fn legacy_file(
    files: &Files,
    rel: &str,
    key: &str,
    slug: &str,
    object_name: &str,
    app: Option<&str>,
) -> Option<(String, String)> {
    if key == slug {
        return None;
    }
    let f = crate::clusters::layout::join(rel, &file_name(slug));
    let content = files.get(&f)?;
    match classify(&f, content)? {
        Entry::Managed(r)
            if r.name.as_deref() == Some(object_name)
                && (r.app.is_none() || r.app.as_deref() == app) =>
        {
            Some((f, content.to_string()))
        }
        _ => None,
    }
}

pub(super) fn outcome(
    action: Action,
    spec: &EnvSpec,
    file: String,
    rendered: Option<Rendered>,
) -> Outcome {
    Outcome {
        action,
        slug: spec.slug.clone(),
        file,
        branch: Some(spec.branch.clone()),
        sha: spec.sha.clone(),
        rendered,
        ..Outcome::default()
    }
}
