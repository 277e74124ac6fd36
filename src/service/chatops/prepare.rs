//! Step 1 of ChatOps: decide, check who asks and what the change is now, answer or refuse
//! what needs no commit, push an artifact.

use super::{Context, Handled, Kind, Pending, Step};
use crate::change_filter::Skip;
use crate::chatops::{decide, trusted, Answer, Decision, LifeCommand};
use crate::checks::Gate;
use crate::config::bounded_ttl;
use crate::error::Result;
use crate::events::{ChangeState, Event};
use crate::forge::{ChangeForge, DryRun, Status};
use crate::model::file_name;
use crate::replies;
use crate::service::gates::{event_sha, filtered, gate, waiting_change};
use crate::service::input::EnvInput;
use crate::settings::Settings;

/// Say `body` on change `number`; a failure is only a warning.
fn say(forge: &DryRun, number: u64, body: String) {
    if let Err(e) = forge.reply(number, &body) {
        tracing::warn!("could not reply: {e}");
    }
}

fn done<'f>(h: Handled) -> Result<Step<'f>> {
    Ok(Step::Done(h))
}

/// Step 1: decide, check who asks and what the change is now, and refuse or answer what needs
/// no commit. `forge` is the pull/merge request's forge (wrapped so a dry run writes nothing).
pub fn prepare<'f>(
    mut event: Event,
    forge: &'f dyn ChangeForge,
    ctx: &Context,
) -> Result<Step<'f>> {
    let forge = DryRun {
        inner: forge,
        enabled: ctx.mode.dry_run,
    };
    let s = &ctx.settings;
    let (decision, needs_trust) = decide(&event, &s.chat);
    let Some((decision, released)) = release(decision, &forge, &mut event)? else {
        return done(Handled::only("ignored", "no preview waits for this commit"));
    };
    if let Some(h) = answered(&decision, &forge, event.change.number, s) {
        return done(h);
    }
    let decision = replace_waiting(decision, &event, &forge, s);
    let only_if_present = matches!(
        decision,
        Decision::Deploy {
            only_if_present: true,
            ..
        }
    );
    if needs_trust {
        if let Some(h) = refuse_stranger(&event, &forge, ctx, only_if_present)? {
            return done(h);
        }
    }
    // What the change is now comes from the API, not from the payload: always for a deploy (its
    // head and whether it is still open), for a destroy when the payload lacks the branch.
    if matches!(decision, Decision::Deploy { .. } | Decision::Life(_))
        || event.change.branch.is_none()
    {
        let title = event.change.title.take();
        event.change = forge.read(event.change.number)?;
        event.change.title = event.change.title.take().or(title);
    }
    let input = input_of(&event);
    match decision {
        Decision::Life(command) => life_step(event, forge, input, command),
        Decision::Deploy { ttl, .. } => {
            let wanted = Wanted {
                ttl,
                only_if_present,
                released,
            };
            deploy_step(event, forge, input, wanted, ctx)
        }
        _ => Ok(Step::Act(Box::new(Pending {
            event,
            forge,
            input,
            kind: Kind::Destroy,
        }))),
    }
}

/// A completed check releases a preview that waits for its checks: only the bot's own waiting
/// status on the change's current head, read from the API, says one does (and which change
/// asked). `None`: nobody waits. Else the decision, and whether it is a release.
fn release(
    decision: Decision,
    forge: &DryRun,
    event: &mut Event,
) -> Result<Option<(Decision, bool)>> {
    let Decision::Release { sha } = decision else {
        return Ok(Some((decision, false)));
    };
    Ok(waiting_change(forge, event, &sha)?.map(|number| {
        event.change.number = number;
        event.change.branch = None;
        let deploy = Decision::Deploy {
            ttl: None,
            only_if_present: false,
        };
        (deploy, true)
    }))
}

/// What ends with an answer and no commit: an ignored event, help, a mistake.
fn answered(decision: &Decision, forge: &DryRun, number: u64, s: &Settings) -> Option<Handled> {
    match decision {
        Decision::Ignore(reason) => Some(Handled::only("ignored", reason.clone())),
        Decision::Answer(Answer::Help) => {
            say(forge, number, replies::help(&s.commands));
            Some(Handled::only("ignored", "answered help"))
        }
        Decision::Answer(Answer::Mistake(e)) => {
            say(forge, number, replies::mistake(e, &s.commands));
            Some(Handled::only("refused", e.to_string()))
        }
        _ => None,
    }
}

/// A push replaces a request that waited for the old head's checks: it now waits for the new
/// head's (or deploys it, when they are green).
fn replace_waiting(decision: Decision, event: &Event, forge: &DryRun, s: &Settings) -> Decision {
    match (&decision, &event.trigger) {
        (
            Decision::Deploy {
                only_if_present: true,
                ..
            },
            crate::events::Trigger::Pushed { before: Some(b) },
        ) if !s.require_checks.is_empty()
            && crate::service::gates::waits_for(forge, b, event.change.number) =>
        {
            Decision::Deploy {
                ttl: None,
                only_if_present: false,
            }
        }
        _ => decision,
    }
}

/// Whoever may not deploy is refused (and told, unless it is a push to a change without an
/// environment, which needs no answer).
fn refuse_stranger(
    event: &Event,
    forge: &DryRun,
    ctx: &Context,
    only_if_present: bool,
) -> Result<Option<Handled>> {
    let s = &ctx.settings;
    if trusted(
        &event.actor.login,
        || forge.has_write_access(&event.actor),
        &s.chat,
    )? {
        return Ok(None);
    }
    let why = format!(
        "{} may not deploy previews here (write access or allowed_users is needed)",
        event.actor.login
    );
    let present = event.change.branch.as_deref().is_some_and(|b| {
        let input = EnvInput {
            branch: Some(b.to_string()),
            ..EnvInput::default()
        };
        input.slug(s).is_ok_and(|slug| {
            let key = s.application.key(&slug).unwrap_or(slug);
            ctx.files.contains_key(&file_name(&key))
        })
    });
    if !only_if_present || present {
        say(
            forge,
            event.change.number,
            replies::refused(&event.actor.login, &why),
        );
    }
    Ok(Some(Handled::only("refused", why)))
}

/// The environment the change asks for, from what the API says it is.
fn input_of(event: &Event) -> EnvInput {
    let c = &event.change;
    let from_fork = c.from_fork == Some(true);
    EnvInput {
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
    }
}

/// Extend, sleep or wake: on an open change, with a duration that reads.
fn life_step<'f>(
    event: Event,
    forge: DryRun<'f>,
    input: EnvInput,
    command: LifeCommand,
) -> Result<Step<'f>> {
    let c = &event.change;
    let refuse = |why: String| {
        say(&forge, c.number, replies::refused(&event.actor.login, &why));
        Handled::only("refused", why)
    };
    if c.state != ChangeState::Open {
        return done(refuse(replies::not_open(c.number, c.state)));
    }
    let asked = match &command {
        LifeCommand::Extend { duration: Some(d) } => match crate::config::parse_ttl(d) {
            Ok(d) => Some(d),
            Err(e) => return done(refuse(e.message)),
        },
        _ => None,
    };
    Ok(Step::Act(Box::new(Pending {
        event,
        forge,
        input,
        kind: Kind::Life { command, asked },
    })))
}

/// What a deploy asked for.
struct Wanted {
    ttl: Option<String>,
    only_if_present: bool,
    /// Released by its checks' completion.
    released: bool,
}

/// A deploy: forks, the change's state, the filters and the checks first; then the pending
/// change (with an OCI source, the artifact pushed before the commit).
fn deploy_step<'f>(
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
    let input = EnvInput { ttl, ..input };
    let pending = Pending {
        event,
        forge,
        input,
        kind: Kind::Deploy {
            only_if_present: wanted.only_if_present,
            ttl_in_force: ttl.or(s.ttl),
        },
    };
    pending.status(Status::Pending, "deploying the preview environment", None);
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
