//! ChatOps: act on a pull/merge request event — comments, close/merge, pushes, labels.

use serde_json::json;

use super::args::EnvInput;
use super::ops::{self, Done, Mode};
use crate::chatops::{decide, trusted, Answer, Decision};
use crate::config::bounded_ttl;
use crate::error::Result;
use crate::events::{ChangeState, Event};
use crate::forge::{ChangeForge, DryRun, Status};
use crate::model::file_name;
use crate::output::Format;
use crate::plan::{Action, Intent};
use crate::reconcile::Snapshot;
use crate::replies;

/// What `handle` reports: `deployed`, `destroyed`, `unchanged`, `refused` or `ignored`.
struct Handled {
    action: &'static str,
    reason: String,
    slug: Option<String>,
    commit: Option<String>,
    preview_url: Option<String>,
    notified: Option<bool>,
    wait: Option<crate::flux::WaitOutcome>,
}

impl Handled {
    fn only(action: &'static str, reason: impl Into<String>) -> Self {
        Handled {
            action,
            reason: reason.into(),
            slug: None,
            commit: None,
            preview_url: None,
            notified: None,
            wait: None,
        }
    }

    fn print(&self, format: Format) {
        if self.action == "ignored" {
            return crate::output::print_ignored(format, &self.reason);
        }
        match format {
            Format::Json => {
                let mut v = json!({
                    "action": self.action, "reason": self.reason, "slug": self.slug, "commit": self.commit,
                    "preview_url": self.preview_url, "changed": self.commit.is_some(),
                });
                if let Some(n) = self.notified {
                    v["notified"] = json!(n);
                }
                if let Some(w) = &self.wait {
                    v["wait"] = json!(w);
                }
                println!("{v}");
            }
            Format::Text => {
                let mut line = format!("{}: {}", self.action, self.reason);
                if let Some(s) = &self.slug {
                    line.push_str(&format!(" (environment {s})"));
                }
                if let Some(c) = &self.commit {
                    line.push_str(&format!(", commit {c}"));
                }
                if let Some(w) = &self.wait {
                    line.push_str(&format!("; preview {}", w.describe()));
                }
                println!("{line}");
            }
        }
    }
}

/// The GitOps repository as read before acting: its settings and environments, and the snapshot
/// itself, which serves the transaction's first attempt instead of a second fetch.
pub struct Ctx<'a> {
    pub store: &'a crate::git::Store,
    pub config: &'a crate::reconcile::ConfigSource,
    pub settings: crate::config::Settings,
    pub files: crate::overlay::Files,
    /// The OCI artifact to deploy (`handle --artifact DIR`), for `source: oci`.
    pub artifact: super::artifact::ArtifactArgs,
    /// Notify Flux after a push; wait for the preview (`handle --wait`).
    pub notify: super::flux::NotifyArgs,
    pub wait: Option<super::flux::WaitArgs>,
    first: std::cell::RefCell<Option<Snapshot>>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        store: &'a crate::git::Store,
        config: &'a crate::reconcile::ConfigSource,
        first: Snapshot,
    ) -> Self {
        Ctx {
            store,
            config,
            settings: first.settings.clone(),
            files: first.files.clone(),
            artifact: super::artifact::ArtifactArgs::default(),
            notify: super::flux::NotifyArgs::default(),
            wait: None,
            first: std::cell::RefCell::new(Some(first)),
        }
    }

    /// The snapshot read before acting, once (a retry reads the branch again).
    pub fn take_first(&self) -> Option<Snapshot> {
        self.first.borrow_mut().take()
    }
}

/// Print a refusal in `handle`'s words.
pub fn print_refused(format: Format, reason: &str) {
    Handled::only("refused", reason).print(format);
}

/// Print a deploy's report in `handle`'s words.
pub fn print_deployed(format: Format, report: &crate::reconcile::Report, reason: &str) {
    let Some(o) = report.plan.outcomes.first() else {
        return;
    };
    let action = if o.action.changed() && report.commit.is_some() {
        "deployed"
    } else {
        "unchanged"
    };
    Handled {
        action,
        reason: reason.to_string(),
        slug: Some(o.slug.clone()),
        commit: report.commit.clone(),
        preview_url: o.rendered.as_ref().and_then(|r| r.preview_url.clone()),
        notified: None,
        wait: None,
    }
    .print(format);
}

/// Handle one change event with `forge`. Refused and ignored events are handled (exit 0); a
/// failure to act is an error (non-zero), reported on the pull/merge request too.
pub fn handle(mut event: Event, forge: &dyn ChangeForge, ctx: &Ctx, mode: &Mode) -> Result<()> {
    // A dry run reads from the forge but writes nothing there either.
    let dry = DryRun(forge);
    let forge: &dyn ChangeForge = if mode.dry_run { &dry } else { forge };
    let s = &ctx.settings;
    let number = event.change.number;
    let reply = |body: String| {
        if let Err(e) = forge.reply(number, &body) {
            tracing::warn!("could not reply: {e}");
        }
    };
    let (decision, needs_trust) = decide(&event, &s.chat);
    let handled = match decision {
        Decision::Ignore(reason) => Handled::only("ignored", reason),
        Decision::Answer(Answer::Help) => {
            reply(replies::help(&s.commands));
            Handled::only("ignored", "answered help")
        }
        Decision::Answer(Answer::Mistake(e)) => {
            reply(replies::mistake(&e, &s.commands));
            Handled::only("refused", e.to_string())
        }
        decision => {
            if needs_trust
                && !trusted(
                    &event.actor.login,
                    || forge.has_write_access(&event.actor),
                    &s.chat,
                )?
            {
                let why = format!(
                    "{} may not deploy previews here (write access or allowed_users is needed)",
                    event.actor.login
                );
                // A stranger's push to a pull request without an environment needs no answer.
                let present = event.change.branch.as_deref().map(|b| {
                    let input = EnvInput {
                        branch: Some(b.to_string()),
                        ..EnvInput::default()
                    };
                    input
                        .slug(s)
                        .map(|slug| {
                            let key = s.application.key(&slug).unwrap_or(slug);
                            ctx.files.contains_key(&file_name(&key))
                        })
                        .unwrap_or(false)
                });
                if !matches!(
                    decision,
                    Decision::Deploy {
                        only_if_present: true,
                        ..
                    }
                ) || present == Some(true)
                {
                    reply(replies::refused(&event.actor.login, &why));
                }
                Handled::only("refused", why)
            } else {
                // What the change is now comes from the API, not from the payload: always for a
                // deploy (its head and whether it is still open), for a destroy when the payload
                // lacks the branch (GitHub's issue_comment).
                if matches!(decision, Decision::Deploy { .. }) || event.change.branch.is_none() {
                    let title = event.change.title.take();
                    event.change = forge.read(number)?;
                    event.change.title = event.change.title.take().or(title);
                }
                act(&event, decision, forge, ctx, mode, &reply)?
            }
        }
    };
    handled.print(mode.format);
    match handled
        .wait
        .as_ref()
        .and_then(crate::error::Error::from_wait)
    {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn act(
    event: &Event,
    decision: Decision,
    forge: &dyn ChangeForge,
    ctx: &Ctx,
    mode: &Mode,
    reply: &dyn Fn(String),
) -> Result<Handled> {
    let (store, config, s) = (ctx.store, ctx.config, &ctx.settings);
    let c = &event.change;
    let from_fork = c.from_fork == Some(true);
    let input = EnvInput {
        branch: c.branch.clone(),
        sha: c.sha.clone(),
        id: Some(c.number.to_string()),
        author: c.author.clone().or_else(|| Some(event.actor.login.clone())),
        title: c.title.clone(),
        fork_clone_url: if from_fork {
            Some(c.head_clone_url.clone().unwrap_or_default())
        } else {
            None
        },
        ci_source_url: event.source_url.clone(),
        ..EnvInput::default()
    };
    match decision {
        Decision::Deploy {
            ttl,
            only_if_present,
        } => {
            if from_fork && !s.allow_forks {
                let why =
                    "pull/merge requests from forks are not previewed here (allow_forks is off)";
                reply(replies::refused(&event.actor.login, why));
                return Ok(Handled::only("refused", why));
            }
            if c.state != ChangeState::Open {
                let why = replies::not_open(c.number, c.state);
                reply(replies::refused(&event.actor.login, &why));
                return Ok(Handled::only("refused", why));
            }
            let ttl = match ttl
                .as_deref()
                .map(|t| bounded_ttl(t, s.max_ttl))
                .transpose()
            {
                Ok(t) => t,
                Err(e) => {
                    reply(replies::refused(&event.actor.login, &e.message));
                    return Ok(Handled::only("refused", e.message));
                }
            };
            let input = EnvInput { ttl, ..input };
            let status = |st: Status, text: &str, url: Option<&str>| {
                if let Some(sha) = &c.sha {
                    if let Err(e) = forge.set_status(sha, st, text, url) {
                        tracing::warn!("could not set the commit status: {e}");
                    }
                }
            };
            status(Status::Pending, "deploying the preview environment", None);
            // With an OCI source, the artifact is packed and pushed before the commit.
            let input = match ctx.artifact.prepare(s, &input, mode.dry_run) {
                Ok((input, _)) => input,
                Err(e) => {
                    status(
                        Status::Failure,
                        "the preview artifact could not be pushed",
                        None,
                    );
                    reply(replies::failed(&e.message));
                    return Err(e);
                }
            };
            // A deploy extends a time to live when one is in force; otherwise an unchanged
            // environment commits nothing, whatever the clock says.
            let ttl_in_force = input.ttl.or(s.ttl);
            let mode = Mode {
                refresh: ttl_in_force.is_some(),
                ..mode.clone()
            };
            let result = ops::run(store, config, ctx.take_first(), None, &mode, &|snap| {
                let spec = input.spec(&snap.settings)?;
                if only_if_present && !present_for(&snap.files, &spec) {
                    return Ok(Err("new commits, but no environment to move".to_string()));
                }
                Ok(Ok(Intent::Upsert(spec)))
            });
            match result {
                // A cap reached, a slug taken, a bad branch: a refusal, answered, not a failure.
                Err(e) if e.kind == crate::error::ErrorKind::Input => {
                    status(Status::Failure, "the preview environment was refused", None);
                    reply(replies::refused(&event.actor.login, &e.message));
                    Ok(Handled::only("refused", e.message))
                }
                Err(e) => {
                    status(
                        Status::Failure,
                        "the preview environment could not be deployed",
                        None,
                    );
                    reply(replies::failed(&e.message));
                    Err(e)
                }
                Ok(Done::Ignored(reason)) => Ok(Handled::only("ignored", reason)),
                Ok(Done::Report(report)) => {
                    let o = report.plan.outcomes.first().expect("one intent");
                    let r = o.rendered.as_ref().expect("rendered on deploy");
                    let url = r.preview_url.as_deref();
                    let notified = ctx.notify.notify(
                        s,
                        &report.target_branch,
                        report.commit.as_deref(),
                        mode.dry_run,
                    );
                    let until = ttl_in_force
                        .and_then(|t| std::time::SystemTime::now().checked_add(t))
                        .map(crate::model::format_time);
                    let deployed = |flux| {
                        replies::deployed(
                            &replies::Deployed {
                                slug: &o.slug,
                                namespace: &r.namespace,
                                preview_url: url,
                                sha: o.sha.as_deref(),
                                commit: report.commit.as_deref(),
                                changed: o.action.changed(),
                                until: until.clone(),
                                flux,
                            },
                            &s.commands,
                        )
                    };
                    reply(deployed(None));
                    // With --wait, the status stays pending until Flux has answered.
                    let waited = match ctx.wait.as_ref().filter(|w| w.wait && !mode.dry_run) {
                        None => {
                            status(Status::Success, "preview environment deployed", url);
                            None
                        }
                        Some(w) => {
                            let outcome = w.wait_for(&r.content, Some(forge))?;
                            match outcome.state {
                                crate::flux::WaitState::Ready => status(
                                    Status::Success,
                                    &format!("preview ready in {:.0} s", outcome.seconds),
                                    url,
                                ),
                                _ => status(Status::Failure, &outcome.describe(), None),
                            }
                            reply(deployed(Some(&outcome)));
                            Some(outcome)
                        }
                    };
                    let action = if o.action == Action::Unchanged || mode.dry_run {
                        "unchanged"
                    } else {
                        "deployed"
                    };
                    Ok(Handled {
                        action,
                        reason: format!("{} {}", event.actor.login, describe(&event.trigger)),
                        slug: Some(o.slug.clone()),
                        commit: report.commit.clone(),
                        preview_url: r.preview_url.clone(),
                        notified,
                        wait: waited,
                    })
                }
            }
        }
        _ => {
            let result = ops::run(
                store,
                config,
                ctx.take_first(),
                None,
                mode,
                &ops::destroy_intent(&input),
            );
            let report = match result {
                Err(e) => {
                    reply(replies::failed(&e.message));
                    return Err(e);
                }
                Ok(Done::Ignored(reason)) => return Ok(Handled::only("ignored", reason)),
                Ok(Done::Report(r)) => r,
            };
            let o = report.plan.outcomes.first().expect("one intent");
            let why = describe(&event.trigger);
            // Closing a pull request that never had an environment needs no comment.
            if o.action == Action::Destroyed
                || matches!(event.trigger, crate::events::Trigger::Comment(_))
            {
                reply(replies::destroyed(&o.slug, report.commit.as_deref(), &why));
            }
            let action = if o.action == Action::Destroyed && !mode.dry_run {
                "destroyed"
            } else {
                "unchanged"
            };
            let notified = ctx.notify.notify(
                s,
                &report.target_branch,
                report.commit.as_deref(),
                mode.dry_run,
            );
            Ok(Handled {
                action,
                reason: why,
                slug: Some(o.slug.clone()),
                commit: report.commit.clone(),
                preview_url: None,
                notified,
                wait: None,
            })
        }
    }
}

/// Whether `spec`'s environment exists and belongs to the same owner (a push moves only the
/// environment of its own pull/merge request).
fn present_for(files: &crate::overlay::Files, spec: &crate::model::EnvSpec) -> bool {
    let file = file_name(spec.key());
    match files
        .get(&file)
        .and_then(|c| crate::overlay::classify(&file, c))
    {
        Some(crate::overlay::Entry::Managed(r)) => {
            !r.owner().conflicts(&spec.owner()) && r.branch == spec.branch
        }
        _ => false,
    }
}

fn describe(t: &crate::events::Trigger) -> String {
    use crate::events::Trigger;
    match t {
        Trigger::Comment(_) => "asked in a comment".into(),
        Trigger::Closed { merged: true } => "the pull/merge request was merged".into(),
        Trigger::Closed { merged: false } => "the pull/merge request was closed".into(),
        Trigger::Pushed => "pushed new commits".into(),
        Trigger::Labels { .. } => "changed the labels".into(),
    }
}
