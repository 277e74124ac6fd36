//! Step 3 of ChatOps: replies, commit statuses, deployments, Flux notification and wait.

use std::time::Duration;

use super::{describe, Applied, Context, Handled, Kind, Pending};
use crate::chatops::LifeCommand;
use crate::error::{Error, ErrorKind, Result};
use crate::forge::{ChangeForge, DeploymentState, Status};
use crate::plan::{Action, Outcome};
use crate::replies;
use crate::service::lifecycle::commands::told;

/// Step 3: tell the pull/merge request what happened, notify Flux, wait when asked.
pub fn finish(p: &Pending, applied: Result<Applied>, ctx: &Context) -> Result<Handled> {
    let event = &p.event;
    match (&p.kind, applied) {
        // A cap reached, a slug taken, a bad branch: a refusal, answered, not a failure.
        (Kind::Deploy { .. }, Err(e)) if e.kind == ErrorKind::Input => {
            p.status(Status::Failure, "the preview environment was refused", None);
            p.reply(replies::refused(&event.actor.login, &e.message));
            Ok(Handled::only("refused", e.message))
        }
        (Kind::Deploy { .. }, Err(e)) => {
            p.status(
                Status::Failure,
                "the preview environment could not be deployed",
                None,
            );
            p.reply(replies::failed(&e.message));
            Err(e)
        }
        (Kind::Life { .. }, Err(e)) if e.kind == ErrorKind::Input => {
            p.reply(replies::refused(&event.actor.login, &e.message));
            Ok(Handled::only("refused", e.message))
        }
        (Kind::Destroy | Kind::Life { .. }, Err(e)) => {
            p.reply(replies::failed(&e.message));
            Err(e)
        }
        // "Nothing to extend", "already asleep": said on the change.
        (Kind::Life { .. }, Ok(Applied::Ignored(reason))) => {
            p.reply(format!("{}\n{reason}.", crate::events::REPLY_MARKER));
            Ok(Handled::only("ignored", reason))
        }
        (_, Ok(Applied::Ignored(reason))) => Ok(Handled::only("ignored", reason)),
        (
            Kind::Life { command, asked },
            Ok(Applied::Changed {
                outcome,
                commit,
                target_branch,
                ..
            }),
        ) => finish_life(p, command, *asked, &outcome, commit, &target_branch, ctx),
        (
            Kind::Deploy { ttl_in_force, .. },
            Ok(Applied::Changed {
                outcome: o,
                commit,
                target_branch,
                ..
            }),
        ) => finish_deploy(p, &o, commit, &target_branch, *ttl_in_force, ctx),
        (
            Kind::Destroy,
            Ok(Applied::Changed {
                outcome: o,
                commit,
                target_branch,
                ..
            }),
        ) => finish_destroy(p, &o, commit, &target_branch, ctx),
    }
}

/// The answer to a lifecycle command that changed the environment; a wake waits for Ready when
/// asked.
fn finish_life(
    p: &Pending,
    command: &LifeCommand,
    asked: Option<Duration>,
    o: &Outcome,
    commit: Option<String>,
    target_branch: &str,
    ctx: &Context,
) -> Result<Handled> {
    let s = &ctx.settings;
    let r = o
        .rendered
        .as_ref()
        .ok_or_else(|| Error::internal("lifecycle change without a render"))?;
    let record = match crate::overlay::classify(&o.file, &r.content) {
        Some(crate::overlay::Entry::Managed(rec)) => rec,
        _ => return Err(Error::internal("a rendered file without its record")),
    };
    let now = std::time::SystemTime::now();
    let notified = ctx.notify.notify(
        s,
        target_branch,
        commit.as_deref(),
        ctx.mode.dry_run,
        &o.clusters(),
    );
    let mut waited = None;
    let action = match command {
        LifeCommand::Extend { .. } => {
            let capped = asked.filter(|a| *a > s.max_ttl).map(|_| s.max_ttl);
            let expires = record.lifecycle().expires_at;
            p.reply(told(command, &o.slug, expires, capped, "as asked", s, now));
            "extended"
        }
        LifeCommand::Sleep => {
            p.reply(told(command, &o.slug, None, None, "as asked", s, now));
            "asleep"
        }
        LifeCommand::Wake => {
            p.reply(told(command, &o.slug, None, None, "as asked", s, now));
            if let Some(w) = ctx.wait.as_ref().filter(|w| w.wait && !ctx.mode.dry_run) {
                let outcome = w.wait_for(
                    &r.content,
                    Some(&p.forge),
                    s.layout.context(o.cluster.as_deref()),
                )?;
                p.reply(replies::woke(&o.slug, &outcome));
                waited = Some(outcome);
            }
            "waking"
        }
    };
    Ok(Handled {
        action,
        reason: format!("{} asked to {}", p.event.actor.login, command.verb()),
        slug: Some(o.slug.clone()),
        commit,
        preview_url: r.preview_url.clone(),
        notified,
        wait: waited,
    })
}

/// GitHub Deployments ("View deployment") or a GitLab environment ("View app") for a deploy
/// that changed the environment.
fn start_deployment<'p>(
    p: &'p Pending,
    o: &Outcome,
    ctx: &Context,
) -> Option<crate::service::deployments::Tracked<'p>> {
    let (Some(sha), Some(branch), true) = (&o.sha, &o.branch, o.action.changed()) else {
        return None;
    };
    let gitlab = p.forge.is_gitlab();
    crate::service::deployments::start(
        &p.forge,
        sha,
        branch,
        &ctx.settings.deployment_environment(&o.slug, gitlab),
        // GitLab shows a deployment `running` until it ends; GitHub's one status follows at once
        // unless Flux is waited for.
        gitlab || ctx.wait.as_ref().is_some_and(|w| w.wait) && !ctx.mode.dry_run,
        o.action == Action::Created,
    )
}

/// A deploy that changed the environment (or found it as wanted): the reply, the commit status
/// and the deployment, Flux notified, and the wait when asked.
fn finish_deploy(
    p: &Pending,
    o: &Outcome,
    commit: Option<String>,
    target_branch: &str,
    ttl_in_force: Option<Duration>,
    ctx: &Context,
) -> Result<Handled> {
    if o.action == Action::Queued {
        return Ok(finish_queued(p, o, commit, ctx));
    }
    let s = &ctx.settings;
    let mode = &ctx.mode;
    let event = &p.event;
    let why = describe(&event.trigger);

    let r = o
        .rendered
        .as_ref()
        .ok_or_else(|| Error::internal("deploy without a render"))?;
    let url = r.preview_url.as_deref();
    let notified = ctx.notify.notify(
        s,
        target_branch,
        commit.as_deref(),
        mode.dry_run,
        &o.clusters(),
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
                commit: commit.as_deref(),
                changed: o.action.changed(),
                until: until.clone(),
                flux,
                cluster: o.cluster.as_deref().filter(|_| s.layout.configured),
                admitted: false,
            },
            &s.commands,
        )
    };
    p.reply(deployed(None));
    let deployment = start_deployment(p, o, ctx);
    let log_url = p.forge.reply_url(event.change.number);
    let report = |state, url, text: &str| {
        if let Some(d) = &deployment {
            d.status(state, url, log_url.as_deref(), text);
        }
    };
    // With a wait, the status stays pending until Flux has answered.
    let waited = match ctx.wait.as_ref().filter(|w| w.wait && !mode.dry_run) {
        None => {
            p.status(Status::Success, "preview environment deployed", url);
            report(
                DeploymentState::Success,
                url,
                "preview environment deployed",
            );
            None
        }
        Some(w) => {
            let outcome = w.wait_for(
                &r.content,
                Some(&p.forge),
                s.layout.context(o.cluster.as_deref()),
            )?;
            match outcome.state {
                crate::flux::WaitState::Ready => {
                    let text = format!("preview ready in {:.0} s", outcome.seconds);
                    p.status(Status::Success, &text, url);
                    report(DeploymentState::Success, url, &text);
                }
                _ => {
                    p.status(Status::Failure, &outcome.describe(), None);
                    report(DeploymentState::Failure, None, &outcome.describe());
                }
            }
            p.reply(deployed(Some(&outcome)));
            Some(outcome)
        }
    };
    Ok(Handled {
        action: deploy_action(o.action, mode.dry_run),
        reason: format!("{} {why}", event.actor.login),
        slug: Some(o.slug.clone()),
        commit,
        preview_url: r.preview_url.clone(),
        notified,
        wait: waited,
    })
}

/// What a deploy did; a dry run says what it would have done.
fn deploy_action(action: Action, dry_run: bool) -> &'static str {
    match (action == Action::Unchanged, dry_run) {
        (true, _) => "unchanged",
        (false, true) => "would_deploy",
        (false, false) => "deployed",
    }
}

/// A deploy that waits for room: its place said in the reply, the commit status and (GitHub)
/// a `queued` deployment.
fn finish_queued(p: &Pending, o: &Outcome, commit: Option<String>, ctx: &Context) -> Handled {
    let s = &ctx.settings;
    let (position, total) = o.queued.unwrap_or((0, 0));
    let why = o.waits_for.as_deref().unwrap_or("no cluster has room");
    p.reply(replies::queued(&o.slug, position, total, why, &s.commands));
    let status = replies::queued_status(position, total);
    p.status(Status::Pending, &status, None);
    // GitHub shows a `queued` deployment; GitLab's deployments have no such state.
    let github = !p.forge.is_gitlab();
    if let (Some(sha), Some(branch), false, true) = (&o.sha, &o.branch, ctx.mode.dry_run, github) {
        let environment = s.deployment_environment(&o.slug, p.forge.is_gitlab());
        if let Some(d) =
            crate::service::deployments::start(&p.forge, sha, branch, &environment, false, true)
        {
            d.status(DeploymentState::Queued, None, None, &status);
        }
    }
    Handled {
        action: if ctx.mode.dry_run {
            "would_queue"
        } else {
            "queued"
        },
        reason: format!("{why}; {status}"),
        slug: Some(o.slug.clone()),
        commit,
        preview_url: None,
        notified: None,
        wait: None,
    }
}

/// A destroy: the reply, the deployment marked inactive, Flux notified.
fn finish_destroy(
    p: &Pending,
    o: &Outcome,
    commit: Option<String>,
    target_branch: &str,
    ctx: &Context,
) -> Result<Handled> {
    let s = &ctx.settings;
    let mode = &ctx.mode;
    let event = &p.event;
    let why = describe(&event.trigger);

    if o.action == Action::Dequeued {
        p.reply(replies::dequeued(&o.slug, &why));
        crate::service::deployments::removed(&p.forge, s, &o.slug, false);
        return Ok(Handled::only("dequeued", why));
    }
    // Closing a pull request that never had an environment needs no comment.
    if o.action == Action::Destroyed || matches!(event.trigger, crate::events::Trigger::Comment(_))
    {
        p.reply(replies::destroyed(&o.slug, commit.as_deref(), &why));
    }
    if o.action == Action::Destroyed {
        crate::service::deployments::removed(&p.forge, s, &o.slug, false);
    }
    let action = match (o.action == Action::Destroyed, mode.dry_run) {
        (false, _) => "unchanged",
        (true, true) => "would_destroy",
        (true, false) => "destroyed",
    };
    let notified = ctx.notify.notify(
        s,
        target_branch,
        commit.as_deref(),
        mode.dry_run,
        &o.clusters(),
    );
    Ok(Handled {
        action,
        reason: why,
        slug: Some(o.slug.clone()),
        commit,
        preview_url: None,
        notified,
        wait: None,
    })
}
