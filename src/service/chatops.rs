//! ChatOps: act on pull/merge request events — comments, close/merge, pushes, labels — in three
//! steps, so the server can apply many events in one Git transaction:
//!
//! 1. [`prepare`]: decide, check trust and the change's state with the forge, push an artifact;
//!    refusals and answers end here, before any Git.
//! 2. [`apply`]: one transaction for every prepared event (an event whose change alone would be
//!    refused is answered, and does not hold back the others).
//! 3. [`finish`]: replies, commit statuses, Flux notification and wait, per event.

use std::time::Duration;

use serde_json::json;

use super::after::{NotifyOptions, WaitOptions};
use super::artifact::ArtifactOptions;
use super::environment::{self, Mode, Wanted};
use super::gates::{event_sha, filtered, gate, waiting_change};
use super::input::EnvInput;
use crate::change_filter::Skip;
use crate::chatops::{decide, trusted, Answer, Decision, LifeCommand};
use crate::checks::Gate;
use crate::config::bounded_ttl;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{ChangeState, Event};
use crate::forge::{ChangeForge, DeploymentState, DryRun, Status};
use crate::git::Store;
use crate::model::file_name;
use crate::output::Format;
use crate::plan::{plan, Action, Intent, Outcome, PlanOptions};
use crate::reconcile::{reconcile, ConfigSource, RunOptions, Snapshot};
use crate::replies;
use crate::settings::Settings;

/// What handling one event came to: `deployed`, `destroyed`, `unchanged`, `refused` or `ignored`
/// (with `--dry-run`: `would_deploy`, `would_destroy`).
#[derive(Debug, Clone)]
pub struct Handled {
    pub action: &'static str,
    pub reason: String,
    pub slug: Option<String>,
    pub commit: Option<String>,
    pub preview_url: Option<String>,
    pub notified: Option<bool>,
    pub wait: Option<crate::flux::WaitOutcome>,
}

impl Handled {
    pub fn only(action: &'static str, reason: impl Into<String>) -> Self {
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

    pub fn print(&self, format: Format) {
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

    /// The exit status: a wait that ended badly is 6 or 7; everything handled is 0.
    pub fn status(&self) -> Result<()> {
        match self.wait.as_ref().and_then(crate::flux::WaitOutcome::error) {
            Some(e) => Err(e),
            None => Ok(()),
        }
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

/// What every event of a batch shares: the settings and environments read before acting, and
/// the options of the run.
pub struct Context {
    pub settings: Settings,
    pub files: crate::overlay::Files,
    pub mode: Mode,
    /// The OCI artifact to deploy (`handle --artifact DIR`), for `source: oci`.
    pub artifact: ArtifactOptions,
    pub notify: NotifyOptions,
    pub wait: Option<WaitOptions>,
    /// With `require_checks`: poll the checks this long before answering "waiting".
    pub wait_checks: Option<Duration>,
}

impl Context {
    pub fn new(first: &Snapshot, mode: Mode) -> Self {
        Context {
            settings: first.settings.clone(),
            files: first.files.clone(),
            mode,
            artifact: ArtifactOptions::default(),
            notify: NotifyOptions::default(),
            wait: None,
            wait_checks: None,
        }
    }
}

/// The first step's result.
pub enum Step<'f> {
    /// Answered, refused or ignored: nothing to commit.
    Done(Handled),
    /// A change to make in the next transaction.
    Act(Box<Pending<'f>>),
}

/// An event ready for the transaction.
pub struct Pending<'f> {
    pub event: Event,
    forge: DryRun<'f>,
    input: EnvInput,
    kind: Kind,
}

enum Kind {
    /// `only_if_present`: move an existing environment, never create one.
    Deploy {
        only_if_present: bool,
        ttl_in_force: Option<Duration>,
    },
    Destroy,
    /// Extend, sleep or wake the existing environment.
    Life {
        command: LifeCommand,
        asked: Option<Duration>,
    },
}

impl Pending<'_> {
    /// The pull/merge request this event is about: events of one change keep their order.
    pub fn key(&self) -> (String, u64) {
        (self.event.repository.clone(), self.event.change.number)
    }

    fn reply(&self, body: String) {
        if let Err(e) = self.forge.reply(self.event.change.number, &body) {
            tracing::warn!("could not reply: {e}");
        }
    }

    fn status(&self, st: Status, text: &str, url: Option<&str>) {
        if let Some(sha) = &self.event.change.sha {
            if let Err(e) = self.forge.set_status(sha, st, text, url) {
                tracing::warn!("could not set the commit status: {e}");
            }
        }
    }

    /// What the transaction should do for this event, on a fresh snapshot.
    fn wanted(&self, snap: &Snapshot) -> Result<Wanted> {
        match &self.kind {
            Kind::Deploy {
                only_if_present,
                ttl_in_force,
            } => {
                let mut spec = self.input.spec(&snap.settings)?;
                spec.refresh = ttl_in_force.is_some();
                if *only_if_present && !present_for(&snap.files, &spec) {
                    return Ok(Wanted::Nothing(
                        "new commits, but no environment to move".into(),
                    ));
                }
                Ok(Wanted::Intent(Intent::Upsert(spec)))
            }
            Kind::Destroy => environment::destroy_intent(&self.input)(snap),
            Kind::Life { command, asked } => super::life::wanted(
                &self.input,
                command,
                *asked,
                snap,
                std::time::SystemTime::now(),
            ),
        }
    }
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
    let done = |h| Ok(Step::Done(h));
    // A completed check releases a preview that waits for its checks: only the bot's own
    // waiting status on the change's current head, read from the API, says one does.
    let mut released = false;
    let decision = match decision {
        Decision::Release { sha } => match waiting_change(&forge, &event, &sha)? {
            Some(number) => {
                event.change.number = number;
                event.change.branch = None;
                released = true;
                Decision::Deploy {
                    ttl: None,
                    only_if_present: false,
                }
            }
            None => return done(Handled::only("ignored", "no preview waits for this commit")),
        },
        d => d,
    };
    let number = event.change.number;
    let reply = |body: String| {
        if let Err(e) = forge.reply(number, &body) {
            tracing::warn!("could not reply: {e}");
        }
    };
    match decision {
        Decision::Ignore(reason) => return done(Handled::only("ignored", reason)),
        Decision::Answer(Answer::Help) => {
            reply(replies::help(&s.commands));
            return done(Handled::only("ignored", "answered help"));
        }
        Decision::Answer(Answer::Mistake(e)) => {
            reply(replies::mistake(&e, &s.commands));
            return done(Handled::only("refused", e.to_string()));
        }
        _ => {}
    }
    // A push replaces a request that waited for the old head's checks: it now waits for the
    // new head's (or deploys it, when they are green).
    let decision = match (&decision, &event.trigger) {
        (
            Decision::Deploy {
                only_if_present: true,
                ..
            },
            crate::events::Trigger::Pushed { before: Some(b) },
        ) if !s.require_checks.is_empty()
            && super::gates::waits_for(&forge, b, event.change.number) =>
        {
            Decision::Deploy {
                ttl: None,
                only_if_present: false,
            }
        }
        _ => decision,
    };
    let only_if_present = matches!(
        decision,
        Decision::Deploy {
            only_if_present: true,
            ..
        }
    );
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
            reply(replies::refused(&event.actor.login, &why));
        }
        return done(Handled::only("refused", why));
    }
    // What the change is now comes from the API, not from the payload: always for a deploy (its
    // head and whether it is still open), for a destroy when the payload lacks the branch.
    if matches!(decision, Decision::Deploy { .. } | Decision::Life(_))
        || event.change.branch.is_none()
    {
        let title = event.change.title.take();
        event.change = forge.read(number)?;
        event.change.title = event.change.title.take().or(title);
    }
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
    if let Decision::Life(command) = decision {
        if c.state != ChangeState::Open {
            let why = replies::not_open(c.number, c.state);
            reply(replies::refused(&event.actor.login, &why));
            return done(Handled::only("refused", why));
        }
        let asked = match &command {
            LifeCommand::Extend { duration: Some(d) } => match crate::config::parse_ttl(d) {
                Ok(d) => Some(d),
                Err(e) => {
                    reply(replies::refused(&event.actor.login, &e.message));
                    return done(Handled::only("refused", e.message));
                }
            },
            _ => None,
        };
        return Ok(Step::Act(Box::new(Pending {
            event,
            forge,
            input,
            kind: Kind::Life { command, asked },
        })));
    }
    let Decision::Deploy { ttl, .. } = decision else {
        return Ok(Step::Act(Box::new(Pending {
            event,
            forge,
            input,
            kind: Kind::Destroy,
        })));
    };
    if from_fork && !s.allow_forks {
        let why = "pull/merge requests from forks are not previewed here (allow_forks is off)";
        reply(replies::refused(&event.actor.login, why));
        return done(Handled::only("refused", why));
    }
    if c.state != ChangeState::Open {
        let why = replies::not_open(c.number, c.state);
        reply(replies::refused(&event.actor.login, &why));
        return done(Handled::only("refused", why));
    }
    if released && c.sha.as_deref() != event_sha(&event.trigger) {
        return done(Handled::only(
            "ignored",
            "checks of a commit that is no longer the head",
        ));
    }
    // The filters: drafts, excluded labels, bots' changes, paths. A released request was a
    // trusted person's or passed them before.
    let explicit = released || matches!(event.trigger, crate::events::Trigger::Comment(_));
    if let Some(skip) = filtered(c, explicit, only_if_present, &forge, &s.chat.filters)? {
        let why = skip.describe();
        if explicit {
            reply(replies::skipped(&why));
            return done(Handled::only("refused", why));
        }
        if matches!(skip, Skip::Label(_)) {
            // An excluded label removes the preview there is.
            return Ok(Step::Act(Box::new(Pending {
                event,
                forge,
                input,
                kind: Kind::Destroy,
            })));
        }
        return done(Handled::only("ignored", why));
    }
    // Deploy only when CI is green.
    if let (false, Some(sha)) = (s.require_checks.is_empty(), c.sha.clone()) {
        match gate(&forge, &sha, &s.require_checks, ctx.wait_checks)? {
            Gate::Green => {}
            Gate::Waiting(names) => {
                let text = replies::waiting_status(&names, c.number, forge.is_gitlab());
                if !released {
                    if let Err(e) = forge.set_status(&sha, Status::Pending, &text, None) {
                        tracing::warn!("could not set the commit status: {e}");
                    }
                    reply(replies::waiting_for_checks(&names));
                }
                return done(Handled::only("waiting", text));
            }
            Gate::Failed(name) => {
                let text = replies::check_failed(&name);
                if let Err(e) = forge.set_status(&sha, Status::Failure, &text, None) {
                    tracing::warn!("could not set the commit status: {e}");
                }
                reply(format!("{}\n{text}.", crate::events::REPLY_MARKER));
                return done(Handled::only("refused", text));
            }
        }
    }
    let ttl = match ttl
        .as_deref()
        .map(|t| bounded_ttl(t, s.max_ttl))
        .transpose()
    {
        Ok(t) => t,
        Err(e) => {
            reply(replies::refused(&event.actor.login, &e.message));
            return done(Handled::only("refused", e.message));
        }
    };
    let input = EnvInput { ttl, ..input };
    let pending = Pending {
        event,
        forge,
        input,
        kind: Kind::Deploy {
            only_if_present,
            ttl_in_force: ttl.or(s.ttl),
        },
    };
    pending.status(Status::Pending, "deploying the preview environment", None);
    // With an OCI source, the artifact is packed and pushed before the commit.
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

/// What the transaction did for one event.
pub enum Applied {
    Changed {
        outcome: Box<Outcome>,
        commit: Option<String>,
        target_branch: String,
        /// Transactions tried (more than one: another writer moved the branch meanwhile).
        attempts: u32,
    },
    /// Nothing to do for it, and why.
    Ignored(String),
}

/// Step 2: one transaction for all `pending` events (of one application: they share the
/// settings). An event whose change alone would be refused (a cap, another owner's environment)
/// gets its error and the others go on; if only the combination fails, they go one by one.
pub fn apply(
    store: &Store,
    config: &ConfigSource,
    first: Option<Snapshot>,
    pending: &[&Pending],
    mode: &Mode,
) -> Vec<Result<Applied>> {
    let mut results: Vec<Option<Result<Applied>>> = (0..pending.len()).map(|_| None).collect();
    let mut included: Vec<usize> = Vec::new();
    let opts = RunOptions {
        dry_run: mode.dry_run,
        plan: PlanOptions::default(),
        max_attempts: 10,
        requested_by: None,
    };
    let mut intents = |snap: &Snapshot| -> Result<Vec<Intent>> {
        included.clear();
        let mut out = Vec::new();
        for (i, p) in pending.iter().enumerate() {
            results[i] = None;
            match p.wanted(snap) {
                Ok(Wanted::Intent(intent)) => {
                    let limits = PlanOptions {
                        max_environments: snap.settings.max_environments,
                        ..PlanOptions::default()
                    };
                    let alone = plan(
                        &snap.files,
                        std::slice::from_ref(&intent),
                        &snap.renderer,
                        std::time::SystemTime::now(),
                        &limits,
                    );
                    match alone {
                        Ok(_) => {
                            included.push(i);
                            out.push(intent);
                        }
                        Err(e) => results[i] = Some(Err(e)),
                    }
                }
                Ok(Wanted::Nothing(why)) => results[i] = Some(Ok(Applied::Ignored(why))),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        Ok(out)
    };
    match reconcile(store, config, first, &mut intents, &opts) {
        Ok(report) => {
            for (j, i) in included.iter().enumerate() {
                results[*i] = Some(Ok(match report.plan.outcomes.get(j) {
                    Some(o) => Applied::Changed {
                        outcome: Box::new(o.clone()),
                        commit: report.commit.clone(),
                        target_branch: report.target_branch.clone(),
                        attempts: report.attempts,
                    },
                    None => Applied::Ignored("nothing to do".into()),
                }));
            }
        }
        // Each alone was fine, together they are not (a cap): one by one, in order.
        Err(e) if e.kind == ErrorKind::Input && pending.len() > 1 => {
            return pending
                .iter()
                .map(|p| {
                    apply(store, config, None, std::slice::from_ref(p), mode)
                        .pop()
                        .unwrap_or_else(|| Err(Error::internal("no result")))
                })
                .collect();
        }
        Err(e) => {
            for i in &included {
                results[*i] = Some(Err(e.clone()));
            }
            for r in results.iter_mut().filter(|r| r.is_none()) {
                *r = Some(Err(e.clone()));
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::internal("event left without a result"))))
        .collect()
}

/// Step 3: tell the pull/merge request what happened, notify Flux, wait when asked.
pub fn finish(p: &Pending, applied: Result<Applied>, ctx: &Context) -> Result<Handled> {
    let s = &ctx.settings;
    let mode = &ctx.mode;
    let event = &p.event;
    let why = describe(&event.trigger);
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
        ) => {
            let r = o
                .rendered
                .as_ref()
                .ok_or_else(|| Error::internal("deploy without a render"))?;
            let url = r.preview_url.as_deref();
            let notified = ctx
                .notify
                .notify(s, &target_branch, commit.as_deref(), mode.dry_run);
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
                    },
                    &s.commands,
                )
            };
            p.reply(deployed(None));
            // GitHub Deployments ("View deployment") or a GitLab environment ("View app").
            let deployment = match (&o.sha, &o.branch, o.action.changed()) {
                (Some(sha), Some(branch), true) => super::deployments::start(
                    &p.forge,
                    sha,
                    branch,
                    &s.deployment_environment(&o.slug, p.forge.is_gitlab()),
                ),
                _ => None,
            };
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
                    let outcome = w.wait_for(&r.content, Some(&p.forge))?;
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
            // A dry run says what it would have done.
            let action = match (o.action == Action::Unchanged, mode.dry_run) {
                (true, _) => "unchanged",
                (false, true) => "would_deploy",
                (false, false) => "deployed",
            };
            Ok(Handled {
                action,
                reason: format!("{} {why}", event.actor.login),
                slug: Some(o.slug.clone()),
                commit,
                preview_url: r.preview_url.clone(),
                notified,
                wait: waited,
            })
        }
        (
            Kind::Destroy,
            Ok(Applied::Changed {
                outcome: o,
                commit,
                target_branch,
                ..
            }),
        ) => {
            // Closing a pull request that never had an environment needs no comment.
            if o.action == Action::Destroyed
                || matches!(event.trigger, crate::events::Trigger::Comment(_))
            {
                p.reply(replies::destroyed(&o.slug, commit.as_deref(), &why));
            }
            if o.action == Action::Destroyed {
                super::deployments::deactivate(
                    &p.forge,
                    &s.deployment_environment(&o.slug, p.forge.is_gitlab()),
                );
            }
            let action = match (o.action == Action::Destroyed, mode.dry_run) {
                (false, _) => "unchanged",
                (true, true) => "would_destroy",
                (true, false) => "destroyed",
            };
            let notified = ctx
                .notify
                .notify(s, &target_branch, commit.as_deref(), mode.dry_run);
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
    let notified = ctx
        .notify
        .notify(s, target_branch, commit.as_deref(), ctx.mode.dry_run);
    let mut waited = None;
    let action = match command {
        LifeCommand::Extend { .. } => {
            let expires = record.lifecycle().expires_at.unwrap_or(now);
            let capped = asked.filter(|a| *a > s.max_ttl).map(|_| s.max_ttl);
            p.reply(replies::extended(&o.slug, expires, now, capped));
            "extended"
        }
        LifeCommand::Sleep => {
            p.reply(replies::asleep(&o.slug, "as asked", &s.commands));
            "asleep"
        }
        LifeCommand::Wake => {
            p.reply(replies::waking(&o.slug));
            if let Some(w) = ctx.wait.as_ref().filter(|w| w.wait && !ctx.mode.dry_run) {
                let outcome = w.wait_for(&r.content, Some(&p.forge))?;
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

/// One event, start to end (`handle`): prepare, apply alone, finish, print.
pub fn handle(
    event: Event,
    forge: &dyn ChangeForge,
    ctx: &Context,
    store: &Store,
    config: &ConfigSource,
    first: Snapshot,
) -> Result<()> {
    let handled = match prepare(event, forge, ctx)? {
        Step::Done(h) => h,
        Step::Act(p) => {
            let applied = apply(store, config, Some(first), &[&*p], &ctx.mode)
                .pop()
                .unwrap_or_else(|| Err(Error::internal("no result")));
            finish(&p, applied, ctx)?
        }
    };
    handled.print(ctx.mode.format);
    handled.status()
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
        Trigger::Pushed { .. } => "pushed new commits".into(),
        Trigger::Labels { .. } => "changed the labels".into(),
        Trigger::ReadyForReview { .. } => "marked it ready for review".into(),
        Trigger::ChecksCompleted { .. } => "its checks passed".into(),
    }
}
