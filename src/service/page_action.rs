//! The previews page's buttons: extend, sleep, wake or destroy one environment, asked by a
//! signed-in viewer. The same intents as `/extend-ephemeral`, `/sleep-ephemeral`,
//! `/wake-ephemeral` and `/destroy-ephemeral`, in one transaction whose commit names who asked;
//! then, as after those commands, the change's bot comment says what happened and a removed
//! preview's deployment is marked inactive (on the forge of the environment's own application and
//! repository only; a failure there is a warning).

use std::time::SystemTime;

use crate::chatops::LifeCommand;
use crate::error::Result;
use crate::model::EnvRecord;
use crate::overlay::Files;

use super::environment::{open, run, Done, Mode, Repo, Wanted};

/// What an action did: the text to show, and the instances directory as read after it (from
/// `read_at` on).
pub struct Acted {
    pub text: String,
    /// The repository as the action left it, for the page.
    pub read: Option<crate::previews::Read>,
    pub read_at: SystemTime,
}

/// Do `command` (`None`: destroy) to the environment `record`, for `who`.
pub fn act(
    repo: &Repo,
    gitlab_url: Option<&str>,
    record: &EnvRecord,
    command: Option<LifeCommand>,
    who: &str,
) -> Result<Acted> {
    let (store, mut config) = open(repo, false)?;
    config.origin = crate::apps::Origin {
        app: record.app.clone(),
        ..Default::default()
    };
    if let Some(app) = &record.app {
        config.flags.app = Some(app.clone());
    }
    let first = crate::reconcile::first_snapshot(&store, &mut config)?;
    let settings = first.settings.clone();
    let input = super::input::EnvInput {
        slug: Some(record.slug.clone()),
        branch: Some(record.branch.clone()),
        id: record.id.clone(),
        ..Default::default()
    };
    let mode = Mode {
        requested_by: Some(format!("{who} (previews page)")),
        ..Mode::default()
    };
    let now = SystemTime::now();
    let mut intent = |snap: &crate::reconcile::Snapshot| -> Result<Wanted> {
        match &command {
            Some(c) => crate::service::lifecycle::commands::wanted(&input, c, None, snap, now),
            None => super::environment::destroy_intent(&input)(snap),
        }
    };
    let done = run(&store, &config, Some(first), None, &mode, &mut intent)?;
    let verb = command.as_ref().map_or("destroyed", |c| match c {
        LifeCommand::Extend { .. } => "extended",
        LifeCommand::Sleep => "put to sleep",
        LifeCommand::Wake => "woken",
    });
    let commit = match &done {
        Done::Report(r) => r.commit.clone(),
        Done::Ignored(_) => None,
    };
    let text = match done {
        Done::Ignored(why) => format!("{}: nothing to do ({why})", record.slug),
        Done::Report(r) => match &r.commit {
            Some(c) => format!("{} {verb}: commit {c} on {}", record.slug, r.target_branch),
            None => format!("{}: nothing changed", record.slug),
        },
    };
    // The page shows it at once.
    let read_at = SystemTime::now();
    let read = crate::reconcile::first_snapshot(&store, &mut config)
        .ok()
        .map(|s| crate::previews::Read::of(s.files, &s.settings.layout, s.queue));
    let files = read.as_ref().map(|r| &r.files);
    if let Some(commit) = commit {
        tell_the_change(
            &settings,
            gitlab_url,
            record,
            command.as_ref(),
            &commit,
            files,
            now,
        );
    }
    Ok(Acted {
        text,
        read,
        read_at,
    })
}

/// The follow-up on the forge of a committed action.
fn tell_the_change(
    settings: &crate::settings::Settings,
    gitlab_url: Option<&str>,
    record: &EnvRecord,
    command: Option<&LifeCommand>,
    commit: &str,
    files: Option<&Files>,
    now: SystemTime,
) {
    let forge = match super::resync::listing_on(settings, gitlab_url) {
        Ok(Some(f)) => f,
        Ok(None) => return,
        Err(e) => return tracing::warn!("previews page: no forge to tell: {e}"),
    };
    let (forge, repository, name) = (forge.0, forge.1, forge.2);
    // Only the change this environment records, on its own application's repository.
    let ours = record.forge.as_deref() == Some(name)
        && (record.repository.as_deref() == Some(repository.as_str())
            || repository.bytes().all(|b| b.is_ascii_digit()));
    let number = record.id.as_deref().and_then(|n| n.parse::<u64>().ok());
    let (true, Some(number)) = (ours, number) else {
        return;
    };
    let why = "asked on the previews page";
    let reply = match command {
        None => {
            super::deployments::removed(
                forge.as_ref(),
                settings,
                &record.slug,
                record.environment.is_some(),
            );
            crate::replies::destroyed(&record.slug, Some(commit), why)
        }
        Some(command) => {
            let now_recorded = files
                .into_iter()
                .flat_map(crate::overlay::records)
                .find(|r| r.file == record.file);
            let expires = now_recorded.and_then(|r| r.lifecycle().expires_at);
            if matches!(command, LifeCommand::Extend { .. }) && expires.is_none() {
                return;
            }
            super::lifecycle::commands::told(
                command,
                &record.slug,
                expires,
                None,
                why,
                settings,
                now,
            )
        }
    };
    if let Err(e) = forge.reply(number, &reply) {
        tracing::warn!("previews page: could not comment on change {number}: {e}");
    }
}
