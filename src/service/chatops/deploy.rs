//! `/deploy-ephemeral`, a push, a label, a released request: the gates (forks, state, filters,
//! checks), then the pending change.

use super::prepare::{done, say};
use super::{Context, Handled, Kind, Pending, Step};
use crate::change_filter::Skip;
use crate::checks::Gate;
use crate::config::bounded_ttl;
use crate::error::Result;
use crate::events::{ChangeState, Event};
use crate::forge::{ChangeForge, DryRun, Status};
use crate::replies;
use crate::service::gates::{event_sha, filtered, gate};
use crate::service::input::EnvInput;

/// What a deploy asked for.
pub(super) struct Wanted {
    pub(super) ttl: Option<String>,
    /// `cluster=NAME`.
    pub(super) cluster: Option<String>,
    pub(super) only_if_present: bool,
    /// Released by its checks' completion.
    pub(super) released: bool,
}

/// A deploy: forks, the change's state, the filters and the checks first; then the pending
/// change (with an OCI source, the artifact pushed before the commit).
pub(super) fn deploy_step<'f>(
    event: Event,
    forge: DryRun<'f>,
    input: EnvInput,
    wanted: Wanted,
    ctx: &Context,
) -> Result<Step<'f>> {
    let s = &ctx.settings;
    if let Some(step) = deploy_gates(&event, &forge, &wanted, ctx)? {
        return Ok(match step {
            Gated::Done(h) => Step::Done(h),
            Gated::Destroy => Step::Act(Box::new(Pending {
                event,
                forge,
                input,
                kind: Kind::Destroy,
            })),
        });
    }
    let ttl = match wanted
        .ttl
        .as_deref()
        .map(|t| bounded_ttl(t, s.max_ttl))
        .transpose()
    {
        Ok(t) => t,
        Err(e) => {
            let reply = replies::refused(&event.actor.login, &e.message);
            say(&forge, event.change.number, reply);
            return done(Handled::only("refused", e.message));
        }
    };
    let input = EnvInput {
        ttl,
        cluster: wanted.cluster.clone(),
        ..input
    };
    let pending = Pending {
        event,
        forge,
        input,
        kind: Kind::Deploy {
            only_if_present: wanted.only_if_present,
            ttl_in_force: ttl.or(s.ttl),
        },
    };
    // On GitHub the commit says "pending" only while something slow comes before the verdict
    // (an artifact pushed, Flux waited for): otherwise the verdict follows at once, and one
    // status says it (each costs a request). GitLab shows a pipeline's `running` as before.
    let waits = ctx.wait.as_ref().is_some_and(|w| w.wait) && !ctx.mode.dry_run;
    if waits || ctx.artifact.wanted(s) || pending.forge.is_gitlab() {
        pending.status(Status::Pending, "deploying the preview environment", None);
    }
    let input = match ctx.artifact.prepare(s, &pending.input, ctx.mode.dry_run) {
        Ok((input, _)) => input,
        Err(e) => {
            pending.status(
                Status::Failure,
                "the preview artifact could not be pushed",
                None,
            );
            pending.reply(replies::failed(&e.message));
            return Err(e);
        }
    };
    Ok(Step::Act(Box::new(Pending { input, ..pending })))
}

/// What the gates decided when they stop a deploy.
enum Gated {
    Done(Handled),
    /// An excluded label removes the preview there is.
    Destroy,
}

/// Forks, the change's state, a released request's head, the filters (drafts, labels, bots,
/// paths) and the required checks. `None`: deploy.
fn deploy_gates(
    event: &Event,
    forge: &DryRun,
    wanted: &Wanted,
    ctx: &Context,
) -> Result<Option<Gated>> {
    let s = &ctx.settings;
    let c = &event.change;
    let refuse = |why: String| {
        say(forge, c.number, replies::refused(&event.actor.login, &why));
        Some(Gated::Done(Handled::only("refused", why)))
    };
    if c.from_fork == Some(true) && !s.allow_forks {
        return Ok(refuse(
            "pull/merge requests from forks are not previewed here (allow_forks is off)".into(),
        ));
    }
    if c.state != ChangeState::Open {
        return Ok(refuse(replies::not_open(c.number, c.state)));
    }
    if wanted.released && c.sha.as_deref() != event_sha(&event.trigger) {
        let why = "checks of a commit that is no longer the head";
        return Ok(Some(Gated::Done(Handled::only("ignored", why))));
    }
    // The filters. A released request was a trusted person's or passed them before.
    let explicit = wanted.released || matches!(event.trigger, crate::events::Trigger::Comment(_));
    if let Some(skip) = filtered(c, explicit, wanted.only_if_present, forge, &s.chat.filters)? {
        let why = skip.describe();
        if explicit {
            say(forge, c.number, replies::skipped(&why));
            return Ok(Some(Gated::Done(Handled::only("refused", why))));
        }
        if matches!(skip, Skip::Label(_)) {
            return Ok(Some(Gated::Destroy));
        }
        return Ok(Some(Gated::Done(Handled::only("ignored", why))));
    }
    checks_gate(event, forge, wanted.released, ctx)
}

/// Deploy only when CI is green: waiting (said once, with the bot's waiting status naming the
/// change), failed (said), or green (`None`).
fn checks_gate(
    event: &Event,
    forge: &DryRun,
    released: bool,
    ctx: &Context,
) -> Result<Option<Gated>> {
    let s = &ctx.settings;
    let c = &event.change;
    let (false, Some(sha)) = (s.require_checks.is_empty(), c.sha.clone()) else {
        return Ok(None);
    };
    let status = |state, text: &str| {
        if let Err(e) = forge.set_status(&sha, state, text, None) {
            tracing::warn!("could not set the commit status: {e}");
        }
    };
    Ok(
        match gate(forge, &sha, &s.require_checks, ctx.wait_checks)? {
            Gate::Green => None,
            Gate::Waiting(names) => {
                let text = replies::waiting_status(&names, c.number, forge.is_gitlab());
                if !released {
                    status(Status::Pending, &text);
                    say(forge, c.number, replies::waiting_for_checks(&names));
                }
                Some(Gated::Done(Handled::only("waiting", text)))
            }
            Gate::Failed(name) => {
                let text = replies::check_failed(&name);
                status(Status::Failure, &text);
                say(
                    forge,
                    c.number,
                    format!("{}\n{text}.", crate::events::REPLY_MARKER),
                );
                Some(Gated::Done(Handled::only("refused", text)))
            }
        },
    )
}
