//! Step 1 of ChatOps: decide, check who asks and what the change is now, answer or refuse
//! what needs no commit, push an artifact.

use super::{Context, Handled, Kind, Pending, Step};
use crate::chatops::{decide, trusted, Answer, Decision};
use crate::error::Result;
use crate::events::Event;
use crate::forge::{ChangeForge, DryRun};
use crate::replies;
use crate::service::gates::waiting_change;
use crate::service::input::EnvInput;
use crate::settings::Settings;

/// Say `body` on change `number`; a failure is only a warning.
pub(super) fn say(forge: &DryRun, number: u64, body: String) {
    if let Err(e) = forge.reply(number, &body) {
        tracing::warn!("could not reply: {e}");
    }
}

pub(super) fn done<'f>(h: Handled) -> Result<Step<'f>> {
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
    // head and whether it is still open), for a destroy when the payload lacks the branch —
    // except a push that proves itself the next one after the commit deployed.
    if follows_the_deployed(&event, ctx) {
        event.change.state = crate::events::ChangeState::Open;
    } else if matches!(decision, Decision::Deploy { .. } | Decision::Life(_))
        || event.change.branch.is_none()
    {
        let title = event.change.title.take();
        event.change = forge.read(event.change.number)?;
        event.change.title = event.change.title.take().or(title);
        if matches!(event.trigger, crate::events::Trigger::Comment(_)) {
            forge.asked_in_a_comment(event.change.number);
        }
    }
    let input = input_of(&event);
    match decision {
        Decision::Life(command) => super::life::life_step(event, forge, input, command),
        Decision::Deploy { ttl, cluster, .. } => {
            let wanted = super::deploy::Wanted {
                ttl,
                cluster,
                only_if_present,
                released,
            };
            super::deploy::deploy_step(event, forge, input, wanted, ctx)
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
            cluster: None,
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
                cluster: None,
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
            s.layout.find(&ctx.files, &key).is_some()
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

/// A push whose `before` is the very commit the change's preview runs is the next push after it:
/// its head (`after`) is the change's head as of that push (a later push has its own event, and
/// an earlier one's `before` is not what runs), and GitHub sends pushes of open pull requests
/// only. Such a push needs no read of the change.
fn follows_the_deployed(event: &Event, ctx: &Context) -> bool {
    let crate::events::Trigger::Pushed {
        before: Some(before),
    } = &event.trigger
    else {
        return false;
    };
    let c = &event.change;
    let (Some(branch), Some(_)) = (&c.branch, &c.sha) else {
        return false;
    };
    let input = EnvInput {
        branch: Some(branch.clone()),
        ..EnvInput::default()
    };
    let s = &ctx.settings;
    let Ok(slug) = input.slug(s) else {
        return false;
    };
    let key = s.application.key(&slug).unwrap_or(slug);
    match s
        .layout
        .lookup(&ctx.files, &key)
        .and_then(|(file, content)| crate::overlay::classify(&file, content))
    {
        Some(crate::overlay::Entry::Managed(r)) => {
            r.sha.as_deref() == Some(before.as_str())
                && r.branch == *branch
                && r.id.as_deref() == Some(c.number.to_string().as_str())
                && r.repository
                    .as_deref()
                    .is_none_or(|repo| repo == event.repository)
        }
        _ => false,
    }
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
