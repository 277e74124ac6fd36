//! The periodic pass's share of `require_checks`: a deploy request whose commit was still
//! waiting for its checks, and whose completion webhook was lost, is released here. Only open
//! changes whose head carries the bot's own waiting status are looked at; each then goes the
//! same way a completed-check event goes (`chatops::prepare`), so the same rules decide.

use super::chatops::{apply, finish, prepare, Context, Step};
use super::environment::Mode;
use crate::events::{Actor, Change, Event, Trigger};
use crate::forge::{ChangeForge, OpenChange};
use crate::git::Store;
use crate::reconcile::{first_snapshot, ConfigSource};

/// Release the waiting requests among `open` whose checks are green now; how many deployed.
pub fn release_waiting(
    store: &Store,
    config: &ConfigSource,
    forge: &dyn ChangeForge,
    repository: &str,
    open: &[OpenChange],
) -> usize {
    let waiting: Vec<&OpenChange> = open
        .iter()
        .filter(|c| {
            c.number
                .parse()
                .is_ok_and(|n| super::gates::waits_for(forge, &c.sha, n))
        })
        .collect();
    if waiting.is_empty() {
        return 0;
    }
    let mut config = config.clone();
    let snap = match first_snapshot(store, &mut config) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("release waiting previews: {e}");
            return 0;
        }
    };
    let ctx = Context::new(&snap, Mode::default());
    let mut deployed = 0;
    for c in waiting {
        let Ok(number) = c.number.parse::<u64>() else {
            continue;
        };
        let event = Event {
            repository: repository.to_string(),
            project_id: None,
            installation: None,
            source_url: forge.clone_url(),
            change: Change {
                number,
                sha: Some(c.sha.clone()),
                ..Change::default()
            },
            actor: Actor {
                login: "flux-ephemeral".into(),
                id: None,
            },
            trigger: Trigger::ChecksCompleted { sha: c.sha.clone() },
        };
        let result = prepare(event, forge, &ctx).and_then(|step| match step {
            Step::Done(h) => Ok(h),
            Step::Act(p) => {
                let applied = apply(store, &config, None, &[&*p], &ctx.mode)
                    .pop()
                    .unwrap_or_else(|| Err(crate::error::Error::internal("no result")));
                finish(&p, applied, &ctx)
            }
        });
        match result {
            Ok(h) if h.action == "deployed" => {
                tracing::info!(change = %c.number, sha = %c.sha, "checks passed: released the waiting preview");
                deployed += 1;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(change = %c.number, "release waiting preview: {e}"),
        }
    }
    deployed
}
