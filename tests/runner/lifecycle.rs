//! A preview's whole life, end to end, with the clock moved by libfaketime (Debian's `faketime`):
//! the real binary, a real bare GitOps repository, and the shared stateful fake GitHub. Deploy;
//! idle → asleep; /wake-ephemeral; the expiry warning once; /extend-ephemeral past the old
//! expiry; expiry → removed with a comment; a push wakes a sleeping preview; office hours; a
//! stranger refused; a bad duration answered.

use crate::support;

use std::process::Command;

use serde_json::{json, Value};
use support::fake_forges::{github_pull, FakeGitHub};
use support::payloads::github_comment;
use support::{run_async, skip, Run, TestEnv, BIN};

const SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const NEW_SHA: &str = "1111111111111111111111111111111111111111";
const BRANCH: &str = "feature/life";

fn faketime() -> bool {
    let ok = Command::new("faketime")
        .args(["2026-01-01 00:00:00", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip("faketime is not installed (apt-get install faketime)");
    }
    ok
}

/// A time the binary recorded under libfaketime, whose clock runs on from where it was set: at
/// `want` or a few seconds after.
#[track_caller]
fn assert_near(got: &Value, want: &str) {
    let t = |s: &str| humantime::parse_rfc3339(s).unwrap();
    let got_s = got.as_str().unwrap_or_else(|| panic!("not a time: {got}"));
    let late = t(got_s).duration_since(t(want));
    assert!(
        late.is_ok_and(|d| d.as_secs() <= 10),
        "{got_s} is not {want} (or a few seconds after)"
    );
}

struct Life {
    env: TestEnv,
    gh: FakeGitHub,
}

impl Life {
    async fn start(config: &str) -> Life {
        let env = TestEnv::new();
        env.commit_as_other(
            &[(
                ".flux-ephemeral.yaml",
                Some(&format!(
                    "source_url: https://github.com/org/app.git\ngithub_repository: org/app\n{config}"
                )),
            )],
            "lifecycle settings",
        );
        let gh = FakeGitHub::start("bot").await;
        gh.permission("org/app", "writer", "write");
        gh.permission("org/app", "stranger", "read");
        gh.pull("org/app", github_pull("org/app", 7, BRANCH, SHA, "org/app"));
        Life { env, gh }
    }

    /// The binary at `when` (UTC, `2026-11-30 08:00:00`), with the fake GitHub's API.
    async fn at(&self, when: &str, args: &[&str]) -> Run {
        let mut c = Command::new("faketime");
        c.arg(when)
            .arg(BIN)
            .args(args)
            .args([
                "--repo",
                self.env.remote.to_str().unwrap(),
                "--output",
                "json",
            ])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.env.home)
            .env("TZ", "UTC")
            .env("GITHUB_API_URL", self.gh.uri())
            .env("GITHUB_TOKEN", "ghs-test-token")
            .current_dir(self.env.dir.path());
        run_async(c).await
    }

    async fn comment(&self, when: &str, who: &str, body: &str) -> Run {
        let event = github_comment("org/app", 7, who, body);
        self.gh.delivered("issue_comment", &event);
        let file = support::event_file(&self.env, "issue_comment", &event);
        self.at(
            when,
            &[
                "handle",
                "--event-name",
                "issue_comment",
                "--event-file",
                file.to_str().unwrap(),
            ],
        )
        .await
    }

    async fn cleanup(&self, when: &str) -> Value {
        self.at(when, &["cleanup"]).await.ok().json()
    }

    fn annotations(&self) -> Value {
        let docs = self.env.docs(&support::slug_of(BRANCH));
        serde_json::to_value(&docs[1]["metadata"]["annotations"]).unwrap()
    }

    fn asleep(&self) -> bool {
        let file = self.env.sync_file(&support::slug_of(BRANCH)).unwrap();
        let patched = file.contains("path: /spec/replicas");
        assert_eq!(
            patched,
            self.annotations()["flux-ephemeral.io/sleeping-since"].is_string(),
            "the patches and the record disagree:\n{file}"
        );
        patched
    }

    /// The bot's comments on #7, oldest first.
    fn said(&self) -> Vec<String> {
        self.gh
            .comments("org/app", 7)
            .iter()
            .filter_map(|c| c["body"].as_str().map(str::to_string))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_previews_life_sleep_wake_warn_extend_expire() {
    if !faketime() {
        return;
    }
    let life = Life::start("ttl: 72h\nsleep_after: 2h\nwarn_before: 24h\n").await;
    let env = &life.env;
    // Monday 08:00: deployed. It expires Thursday 08:00.
    let out = life
        .at(
            "2026-11-30 08:00:00",
            &["deploy", "--branch", BRANCH, "--sha", SHA, "--id", "7"],
        )
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "created", "{out}");
    let a = life.annotations();
    assert_near(&a["flux-ephemeral.io/active-at"], "2026-11-30T08:00:00Z");
    assert_near(&a["flux-ephemeral.io/expires-at"], "2026-12-03T08:00:00Z");

    // An hour later nothing is due: no commit.
    let commits = env.commit_count();
    let out = life.cleanup("2026-11-30 09:00:00").await;
    assert_eq!(out["changed"], false, "{out}");
    assert_eq!(env.commit_count(), commits);

    // Idle for two hours: asleep, in one commit, with one comment.
    let out = life.cleanup("2026-11-30 10:30:00").await;
    assert_eq!(out["lifecycle"][0]["steps"][0]["step"], "sleep", "{out}");
    assert_eq!(env.commit_count(), commits + 1);
    assert!(life.asleep());
    assert_eq!(life.annotations()["flux-ephemeral.io/sleep-reason"], "idle");
    let said = life.said();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("asleep") && said[0].contains("/wake-ephemeral"),
        "{}",
        said[0]
    );
    // Asleep, it keeps its expiry.
    assert_near(
        &life.annotations()["flux-ephemeral.io/expires-at"],
        "2026-12-03T08:00:00Z",
    );

    // A stranger cannot wake it.
    let commits = env.commit_count();
    let out = life
        .comment("2026-11-30 11:00:00", "stranger", "/wake-ephemeral")
        .await;
    assert_eq!(out.json()["action"], "refused");
    assert_eq!(env.commit_count(), commits);
    assert!(life.asleep());

    // A writer wakes it: the patches go, the expiry stays.
    let out = life
        .comment("2026-11-30 12:00:00", "writer", "/wake-ephemeral")
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "waking", "{out}");
    assert!(!life.asleep());
    assert_near(
        &life.annotations()["flux-ephemeral.io/active-at"],
        "2026-11-30T12:00:00Z",
    );
    assert_near(
        &life.annotations()["flux-ephemeral.io/expires-at"],
        "2026-12-03T08:00:00Z",
    );
    assert!(life.said().last().unwrap().contains("waking up"));

    // Wednesday 09:00, 23 h before expiry: warned (and idle again: asleep), once.
    let out = life.cleanup("2026-12-02 09:00:00").await;
    let steps: Vec<&str> = out["lifecycle"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["warn", "sleep"], "{out}");
    // The bot keeps one comment per change: both in it.
    assert_eq!(out["comments"], 1, "{out}");
    let warning = life.said().last().unwrap().clone();
    assert!(
        warning.contains("expires 2026-12-03 08:00 UTC (in 23 h)")
            && warning.contains("/extend-ephemeral")
            && warning.contains("asleep"),
        "{warning}"
    );
    let out = life.cleanup("2026-12-02 10:00:00").await;
    assert_eq!(out["changed"], false, "warned twice: {out}");
    assert_eq!(out["comments"], 0, "warned twice: {out}");

    // Extended by three days from Wednesday 12:00: past the old expiry; the warning re-arms.
    let out = life
        .comment("2026-12-02 12:00:00", "writer", "/extend-ephemeral 3d")
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "extended", "{out}");
    assert_near(
        &life.annotations()["flux-ephemeral.io/expires-at"],
        "2026-12-05T12:00:00Z",
    );
    assert!(life.annotations()["flux-ephemeral.io/warned-for"].is_null());
    let reply = life.said().last().unwrap().clone();
    assert!(reply.contains("2026-12-05 12:00 UTC (in 3 d)"), "{reply}");

    // Asking for more than max_ttl (30d by default) gets the maximum, and says so.
    life.comment("2026-12-02 13:00:00", "writer", "/extend-ephemeral 90d")
        .await
        .ok();
    assert_near(
        &life.annotations()["flux-ephemeral.io/expires-at"],
        "2027-01-01T13:00:00Z",
    );
    assert!(life.said().last().unwrap().contains("longest allowed"));
    life.comment("2026-12-02 13:30:00", "writer", "/extend-ephemeral 1d")
        .await
        .ok();

    // A bad duration: the accepted form, nothing committed.
    let commits = env.commit_count();
    let out = life
        .comment("2026-12-02 14:00:00", "writer", "/extend-ephemeral 1e9h")
        .await;
    assert_eq!(out.json()["action"], "refused");
    assert!(life
        .said()
        .last()
        .unwrap()
        .contains("like `/extend-ephemeral 2d`"));
    assert_eq!(env.commit_count(), commits);

    // The new expiry (Thursday 13:30) comes: removed, with a comment saying how to bring it back.
    let out = life.cleanup("2026-12-03 13:31:00").await;
    assert_eq!(out["removed"][0]["reason"]["kind"], "ttl_expired", "{out}");
    assert!(env.sync_file(&support::slug_of(BRANCH)).is_none());
    let last = life.said().last().unwrap().clone();
    assert!(
        last.contains("expired") && last.contains("/deploy-ephemeral"),
        "{last}"
    );

    // With no environment, there is nothing to extend.
    life.comment("2026-12-03 14:00:00", "writer", "/extend-ephemeral")
        .await
        .ok();
    assert!(life
        .said()
        .last()
        .unwrap()
        .contains("no preview environment to extend"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_wakes_a_sleeping_preview() {
    if !faketime() {
        return;
    }
    let life = Life::start("ttl: 72h\nsleep_after: 1h\n").await;
    life.at(
        "2026-11-30 08:00:00",
        &["deploy", "--branch", BRANCH, "--sha", SHA, "--id", "7"],
    )
    .await
    .ok();
    life.cleanup("2026-11-30 10:00:00").await;
    assert!(life.asleep());
    // The writer pushes: the preview moves to the new head, awake, active and expiring anew.
    life.gh.pull(
        "org/app",
        github_pull("org/app", 7, BRANCH, NEW_SHA, "org/app"),
    );
    let e = support::payloads::github_pr_event(
        "pull_request.synchronize.payload.json",
        "synchronize",
        &github_pull("org/app", 7, BRANCH, NEW_SHA, "org/app"),
        "writer",
    );
    let file = support::event_file(&life.env, "pull_request", &e);
    let out = life
        .at(
            "2026-11-30 11:00:00",
            &[
                "handle",
                "--event-name",
                "pull_request",
                "--event-file",
                file.to_str().unwrap(),
            ],
        )
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "deployed", "{out}");
    assert!(!life.asleep());
    let a = life.annotations();
    assert_eq!(a["flux-ephemeral.io/sha"], NEW_SHA);
    assert_near(&a["flux-ephemeral.io/expires-at"], "2026-12-03T11:00:00Z");
}

#[tokio::test(flavor = "multi_thread")]
async fn office_hours_sleep_at_night_and_wake_in_the_morning() {
    if !faketime() {
        return;
    }
    let life = Life::start("ttl: 7d\nawake_hours: Mon-Fri 07:00-20:00 UTC\n").await;
    life.at(
        "2026-11-30 09:00:00",
        &["deploy", "--branch", BRANCH, "--sha", SHA, "--id", "7"],
    )
    .await
    .ok();
    assert_eq!(life.cleanup("2026-11-30 19:59:00").await["changed"], false);
    let out = life.cleanup("2026-11-30 20:00:00").await;
    assert_eq!(
        out["lifecycle"][0]["steps"][0]["reason"], "office-hours",
        "{out}"
    );
    assert!(life.asleep());
    assert_eq!(life.cleanup("2026-12-01 06:59:00").await["changed"], false);
    let out = life.cleanup("2026-12-01 07:00:00").await;
    assert_eq!(out["lifecycle"][0]["steps"][0]["step"], "wake", "{out}");
    assert!(!life.asleep());
    // Nobody is told about the nightly sleep.
    assert!(life.said().is_empty(), "{:?}", life.said());
    // A preview put to sleep on request stays asleep in the morning.
    life.comment("2026-12-01 08:00:00", "writer", "/sleep-ephemeral")
        .await
        .ok();
    assert_eq!(
        life.annotations()["flux-ephemeral.io/sleep-reason"],
        "requested"
    );
    assert_eq!(life.cleanup("2026-12-01 20:30:00").await["changed"], false);
    assert_eq!(life.cleanup("2026-12-02 07:30:00").await["changed"], false);
    assert!(life.asleep());
}

#[test]
fn a_bad_awake_hours_is_a_configuration_error_naming_the_key() {
    let env = TestEnv::new();
    env.commit_as_other(
        &[(
            ".flux-ephemeral.yaml",
            Some("source_url: https://github.com/org/app.git\nawake_hours: Mon-Fri 07:00-20:00 Europe/Atlantis\n"),
        )],
        "bad",
    );
    env.deploy(&["--branch", BRANCH])
        .fails_with(3, "awake_hours");
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_from_ci_the_periodic_pass_and_a_closed_change() {
    if !faketime() {
        return;
    }
    let life = Life::start("ttl: 72h\nsleep_after: 2h\n").await;
    life.at(
        "2026-11-30 08:00:00",
        &["deploy", "--branch", BRANCH, "--sha", SHA, "--id", "7"],
    )
    .await
    .ok();
    // From CI: sleep, extend, wake.
    let out = life
        .at("2026-11-30 09:00:00", &["sleep", "--branch", BRANCH])
        .await
        .ok()
        .json();
    assert!(out["commit"].is_string(), "{out}");
    assert_eq!(
        life.annotations()["flux-ephemeral.io/sleep-reason"],
        "requested"
    );
    let out = life
        .at("2026-11-30 09:00:30", &["sleep", "--branch", BRANCH])
        .await
        .ok()
        .json();
    assert_eq!(out["action"], "ignored", "asleep already: {out}");
    life.at("2026-11-30 10:00:00", &["extend", "--branch", BRANCH, "5d"])
        .await
        .ok();
    assert_near(
        &life.annotations()["flux-ephemeral.io/expires-at"],
        "2026-12-05T10:00:00Z",
    );
    assert!(life.asleep(), "extending does not wake");
    life.at("2026-11-30 11:00:00", &["wake", "--branch", BRANCH])
        .await
        .ok();
    assert!(!life.asleep());
    life.at(
        "2026-11-30 11:00:00",
        &["extend", "--branch", BRANCH, "soon"],
    )
    .await
    .fails_with(2, "soon");

    // serve's periodic pass (resync) runs the lifecycle too: idle since 11:00, asleep at 13:30.
    let out = life
        .at(
            "2026-11-30 13:30:00",
            &["resync", "--github-repo", "org/app"],
        )
        .await
        .ok()
        .json();
    assert!(life.asleep(), "{out}");

    // A closed pull request takes no commands.
    let mut closed = github_pull("org/app", 7, BRANCH, SHA, "org/app");
    closed["state"] = json!("closed");
    life.gh.pull("org/app", closed);
    let commits = life.env.commit_count();
    let out = life
        .comment("2026-11-30 14:00:00", "writer", "/wake-ephemeral")
        .await;
    assert_eq!(out.json()["action"], "refused");
    assert_eq!(life.env.commit_count(), commits);
}

/// `path`'s annotation `key` set to `value` (or removed with `None`), as a careless hand would.
fn hand_edit(text: &str, key: &str, value: Option<&str>) -> String {
    let prefix = format!("flux-ephemeral.io/{key}:");
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        match (line.trim_start().starts_with(&prefix), value) {
            (true, Some(v)) => {
                let indent = &line[..line.len() - line.trim_start().len()];
                out.push(format!("{indent}{prefix} \"{v}\""));
            }
            (true, None) => {}
            (false, _) => out.push(line.to_string()),
        }
    }
    out.join("\n") + "\n"
}

/// Hand-edited times far ahead (year 9999 without an expiry; 2999 for both) neither stop the
/// pass, nor panic `sleep`, nor keep a preview past `max_ttl`: the bot never writes a time ahead
/// of its clock, so it cannot vouch for them, and the previews go; the others sleep as usual.
#[tokio::test(flavor = "multi_thread")]
async fn hand_edited_times_stop_nothing_and_keep_nothing() {
    if !faketime() {
        return;
    }
    let life = Life::start("ttl: 48h\nmax_ttl: 72h\nawake_hours: Mon-Fri 07:00-20:00 UTC\n").await;
    let env = &life.env;
    for (n, branch) in [(8, "feature/far"), (9, "feature/usual")] {
        life.gh
            .pull("org/app", github_pull("org/app", n, branch, SHA, "org/app"));
    }
    for (branch, id) in [(BRANCH, "7"), ("feature/far", "8"), ("feature/usual", "9")] {
        life.at(
            "2026-11-30 09:00:00",
            &["deploy", "--branch", branch, "--sha", SHA, "--id", id],
        )
        .await
        .ok();
    }
    let path = |b: &str| {
        format!(
            "overlays/ephemeral-instances/sync-{}.yaml",
            support::slug_of(b)
        )
    };
    let year_9999 = hand_edit(
        &hand_edit(
            &env.file(&path(BRANCH)).unwrap(),
            "active-at",
            Some("9999-12-31T23:00:00Z"),
        ),
        "expires-at",
        None,
    );
    let year_2999 = hand_edit(
        &hand_edit(
            &env.file(&path("feature/far")).unwrap(),
            "active-at",
            Some("2999-01-01T00:00:00Z"),
        ),
        "expires-at",
        Some("2999-01-04T00:00:00Z"),
    );
    env.commit_as_other(
        &[
            (&path(BRANCH), Some(&year_9999)),
            (&path("feature/far"), Some(&year_2999)),
        ],
        "keep these forever",
    );
    // `sleep` on the year-9999 preview answers; it does not panic.
    let out = life
        .at("2026-11-30 10:00:00", &["sleep", "--branch", BRANCH])
        .await;
    assert!(out.code == 0 || out.code == 1, "{out:?}");
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    // Put to sleep by a writer's command, it lives on from that activity, within `max_ttl`.
    assert_near(
        &life.annotations()["flux-ephemeral.io/active-at"],
        "2026-11-30T10:00:00Z",
    );
    assert_near(
        &life.annotations()["flux-ephemeral.io/expires-at"],
        "2026-12-02T10:00:00Z",
    );
    // The pass at the end of office hours: the untouched hand-edited preview goes, the usual one
    // sleeps.
    let out = life.cleanup("2026-11-30 20:00:00").await;
    assert!(
        env.sync_file(&support::slug_of("feature/far")).is_none(),
        "{out}"
    );
    let usual = env.sync_file(&support::slug_of("feature/usual")).unwrap();
    assert!(usual.contains("path: /spec/replicas"), "{usual}");
    assert_eq!(out["removed"][0]["reason"]["kind"], "time_ahead", "{out}");
    // 100 days later, under max_ttl 72h, nothing hand-edited is left.
    life.at("2027-03-10 09:00:00", &["cleanup", "--force"])
        .await
        .ok();
    let left: Vec<String> = env
        .instances()
        .into_iter()
        .filter(|f| f.starts_with("sync-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The expiry warning is marked as sent only once it was posted: a pass whose post fails leaves
/// it due, and the next pass sends it.
#[tokio::test(flavor = "multi_thread")]
async fn a_warning_that_could_not_be_posted_is_sent_by_the_next_pass() {
    if !faketime() {
        return;
    }
    let life = Life::start("ttl: 72h\nwarn_before: 24h\n").await;
    life.at(
        "2026-11-30 08:00:00",
        &["deploy", "--branch", BRANCH, "--sha", SHA, "--id", "7"],
    )
    .await
    .ok();
    life.gh
        .fail("POST", "/repos/org/app/issues/7/comments", 500);
    life.cleanup("2026-12-02 09:00:00").await;
    assert!(life.said().is_empty(), "{:?}", life.said());
    assert!(
        life.annotations()["flux-ephemeral.io/warned-for"].is_null(),
        "{}",
        life.annotations()
    );
    life.gh.heal("POST", "/repos/org/app/issues/7/comments");
    life.cleanup("2026-12-02 10:00:00").await;
    let said = life.said();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("expires"), "{}", said[0]);
    assert_near(
        &life.annotations()["flux-ephemeral.io/warned-for"],
        "2026-12-03T08:00:00Z",
    );
    // Warned once: the pass after says nothing more.
    life.cleanup("2026-12-02 11:00:00").await;
    assert_eq!(life.said().len(), 1);
}
