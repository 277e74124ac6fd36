//! `/extend-ephemeral`, `/sleep-ephemeral`, `/wake-ephemeral` (and the page's buttons): checked
//! and made a pending change.

use super::prepare::{done, say};
use super::{Handled, Kind, Pending, Step};
use crate::chatops::LifeCommand;
use crate::error::Result;
use crate::events::{ChangeState, Event};
use crate::forge::DryRun;
use crate::replies;
use crate::service::input::EnvInput;

/// Extend, sleep or wake: on an open change, with a duration that reads.
pub(super) fn life_step<'f>(
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
