//! Table of planner cases: (files in the overlay, intents) → changes.

use std::time::{Duration, SystemTime};

use crate::model::{file_name, EnvSpec};
use crate::overlay::Files;
use crate::plan::{plan, Action, Change, Intent, PlanOptions, Removal};
use crate::render::{RenderSettings, Renderer};

fn renderer() -> Renderer {
    Renderer::builtin("kustomization", RenderSettings::default()).unwrap()
}

fn spec(slug: &str, branch: &str, sha: Option<&str>) -> EnvSpec {
    EnvSpec {
        slug: slug.into(),
        branch: branch.into(),
        sha: sha.map(Into::into),
        source_url: "https://x/app.git".into(),
        ..EnvSpec::default()
    }
}

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

/// The overlay after deploying `specs` at time 0.
fn overlay(specs: &[&EnvSpec]) -> Files {
    let r = renderer();
    specs
        .iter()
        .map(|s| {
            (
                file_name(&s.slug),
                r.render(s, t(0)).unwrap().content.into(),
            )
        })
        .collect()
}

fn actions(files: &Files, intents: &[Intent], opts: &PlanOptions) -> Result<Vec<Action>, String> {
    plan(files, intents, &renderer(), t(100), opts)
        .map(|p| p.outcomes.iter().map(|o| o.action).collect())
        .map_err(|e| e.message)
}

type Case<'a> = (
    &'a str,
    Files,
    Vec<Intent>,
    &'a PlanOptions,
    Result<Vec<Action>, &'a str>,
);

#[test]
fn table() {
    let a = spec("a", "a", None);
    let a_pinned = spec("a", "a", Some("0123456789abcdef0123456789abcdef01234567"));
    let foreign: Files = [(file_name("f"), "kind: ConfigMap\n".into())].into();
    let none = PlanOptions::default();
    let refresh = PlanOptions {
        refresh: true,
        ..PlanOptions::default()
    };
    let cap1 = PlanOptions {
        max_environments: Some(1),
        ..PlanOptions::default()
    };
    let cases: Vec<Case> = vec![
        (
            "new environment",
            Files::new(),
            vec![Intent::Upsert(a.clone())],
            &none,
            Ok(vec![Action::Created]),
        ),
        (
            "same again keeps the deploy time",
            overlay(&[&a]),
            vec![Intent::Upsert(a.clone())],
            &none,
            Ok(vec![Action::Unchanged]),
        ),
        (
            "refresh records a new deploy time",
            overlay(&[&a]),
            vec![Intent::Upsert(a.clone())],
            &refresh,
            Ok(vec![Action::Updated]),
        ),
        (
            "new sha updates",
            overlay(&[&a]),
            vec![Intent::Upsert(a_pinned.clone())],
            &none,
            Ok(vec![Action::Updated]),
        ),
        (
            "other branch on the same slug",
            overlay(&[&a]),
            vec![Intent::Upsert(spec("a", "A", None))],
            &none,
            Err("already belongs to branch"),
        ),
        (
            "foreign file is not overwritten",
            foreign.clone(),
            vec![Intent::Upsert(spec("f", "f", None))],
            &none,
            Err("not created by flux-ephemeral"),
        ),
        (
            "foreign file is not deleted",
            foreign,
            vec![Intent::Remove(Removal {
                slug: "f".into(),
                branch: None,
                ..Removal::default()
            })],
            &none,
            Err("not created by flux-ephemeral"),
        ),
        (
            "remove missing",
            Files::new(),
            vec![Intent::Remove(Removal {
                slug: "a".into(),
                branch: None,
                ..Removal::default()
            })],
            &none,
            Ok(vec![Action::Absent]),
        ),
        (
            "remove present",
            overlay(&[&a]),
            vec![Intent::Remove(Removal {
                slug: "a".into(),
                branch: Some("a".into()),
                ..Removal::default()
            })],
            &none,
            Ok(vec![Action::Destroyed]),
        ),
        (
            "remove with another branch",
            overlay(&[&a]),
            vec![Intent::Remove(Removal {
                slug: "a".into(),
                branch: Some("b".into()),
                ..Removal::default()
            })],
            &none,
            Err("belongs to branch"),
        ),
        (
            "cap reached",
            overlay(&[&a]),
            vec![Intent::Upsert(spec("b", "b", None))],
            &cap1,
            Err("maximum (1)"),
        ),
        (
            "cap allows updates",
            overlay(&[&a]),
            vec![Intent::Upsert(a_pinned)],
            &cap1,
            Ok(vec![Action::Updated]),
        ),
        (
            "several at once (cleanup)",
            overlay(&[&a, &spec("b", "b", None), &spec("c", "c", None)]),
            vec![
                Intent::Remove(Removal {
                    slug: "a".into(),
                    branch: None,
                    ..Removal::default()
                }),
                Intent::Remove(Removal {
                    slug: "c".into(),
                    branch: None,
                    ..Removal::default()
                }),
                Intent::Remove(Removal {
                    slug: "z".into(),
                    branch: None,
                    ..Removal::default()
                }),
            ],
            &none,
            Ok(vec![Action::Destroyed, Action::Destroyed, Action::Absent]),
        ),
    ];
    for (name, files, intents, opts, want) in cases {
        let got = actions(&files, &intents, opts);
        match (want, got) {
            (Ok(w), Ok(g)) => assert_eq!(g, w, "{name}"),
            (Err(needle), Err(msg)) => assert!(msg.contains(needle), "{name}: {msg}"),
            (w, g) => panic!("{name}: wanted {w:?}, got {g:?}"),
        }
    }
}

#[test]
fn changes_and_commit_message() {
    let files = overlay(&[&spec("a", "feature/a", None), &spec("b", "b", None)]);
    let intents = vec![
        Intent::Remove(Removal {
            slug: "a".into(),
            branch: None,
            ..Removal::default()
        }),
        Intent::Upsert(spec(
            "c",
            "c",
            Some("0123456789abcdef0123456789abcdef01234567"),
        )),
        Intent::Upsert(spec("b", "b", None)),
    ];
    let p = plan(&files, &intents, &renderer(), t(5), &PlanOptions::default()).unwrap();
    assert_eq!(p.changes.len(), 2);
    assert!(matches!(&p.changes[0], Change::Delete { file, .. } if file == "sync-a.yaml"));
    assert!(
        matches!(&p.changes[1], Change::Write { file, before: None, .. } if file == "sync-c.yaml")
    );
    insta::assert_snapshot!(p.commit_message(), @r"
    flux-ephemeral: change 2 environments

    destroy a (branch feature/a): sync-a.yaml
    deploy c (branch c at 0123456789abcdef0123456789abcdef01234567): sync-c.yaml
    ");
    let nothing = plan(
        &files,
        &[Intent::Upsert(spec("b", "b", None))],
        &renderer(),
        t(5),
        &PlanOptions::default(),
    )
    .unwrap();
    assert!(nothing.is_empty());
}

fn owned(slug: &str, app: &str, repo: &str, change: &str) -> EnvSpec {
    EnvSpec {
        app: Some(app.into()),
        repository: Some(repo.into()),
        forge: Some("github".into()),
        id: Some(change.into()),
        ..spec(slug, slug, None)
    }
}

#[test]
fn owners() {
    let mine = owned("a", "app", "org/app", "1");
    let files = overlay(&[&mine]);
    let other_pr = owned("a", "app", "org/app", "2");
    let other_repo = owned("a", "app", "org/other", "1");
    let other_app = owned("a", "api", "org/app", "1");
    for (what, theirs) in [
        ("pr", &other_pr),
        ("repo", &other_repo),
        ("app", &other_app),
    ] {
        let e = actions(
            &files,
            &[Intent::Upsert(theirs.clone())],
            &PlanOptions::default(),
        )
        .unwrap_err();
        assert!(
            e.contains("belongs to application app, org/app #1"),
            "{what}: {e}"
        );
        // Removing: not theirs to remove, so for them it is absent.
        let removal = Intent::Remove(Removal {
            slug: "a".into(),
            requester: theirs.owner(),
            ..Removal::default()
        });
        assert_eq!(
            actions(&files, &[removal], &PlanOptions::default()),
            Ok(vec![Action::Absent]),
            "{what}"
        );
    }
    // The same owner, or one that knows less (a plain command), may.
    let removal = Intent::Remove(Removal {
        slug: "a".into(),
        requester: mine.owner(),
        ..Removal::default()
    });
    assert_eq!(
        actions(&files, &[removal], &PlanOptions::default()),
        Ok(vec![Action::Destroyed])
    );
    let plain = Intent::Remove(Removal {
        slug: "a".into(),
        ..Removal::default()
    });
    assert_eq!(
        actions(&files, &[plain], &PlanOptions::default()),
        Ok(vec![Action::Destroyed])
    );
}

#[test]
fn a_listed_application_adopts_its_file_of_an_earlier_version() {
    // Written before applications: `sync-a.yaml`, no owner, objects named `app-a`.
    let files = overlay(&[&spec("a", "a", None)]);
    let listed = EnvSpec {
        key: Some("app-a".into()),
        app: Some("app".into()),
        ..spec("a", "a", None)
    };
    let p = plan(
        &files,
        &[Intent::Upsert(listed.clone())],
        &renderer(),
        t(5),
        &PlanOptions::default(),
    )
    .unwrap();
    assert_eq!(p.outcomes[0].action, Action::Updated);
    assert!(matches!(&p.changes[0], Change::Delete { file, .. } if file == "sync-a.yaml"));
    assert!(matches!(&p.changes[1], Change::Write { file, .. } if file == "sync-app-a.yaml"));
    // Another application's objects are not adopted.
    let web = EnvSpec {
        key: Some("web-a".into()),
        app: Some("web".into()),
        ..spec("a", "a", None)
    };
    let web_renderer = Renderer::builtin(
        "kustomization",
        RenderSettings {
            prefix: "web".into(),
            ..RenderSettings::default()
        },
    )
    .unwrap();
    let p = plan(
        &files,
        &[Intent::Upsert(web)],
        &web_renderer,
        t(5),
        &PlanOptions::default(),
    )
    .unwrap();
    assert_eq!(p.outcomes[0].action, Action::Created);
    assert_eq!(p.changes.len(), 1);
    // Removing the listed application's environment finds the earlier file.
    let removal = Intent::Remove(Removal {
        slug: "a".into(),
        key: Some("app-a".into()),
        requester: listed.owner(),
        ..Removal::default()
    });
    let p = plan(
        &files,
        &[removal],
        &renderer(),
        t(5),
        &PlanOptions::default(),
    )
    .unwrap();
    assert!(matches!(&p.changes[0], Change::Delete { file, .. } if file == "sync-a.yaml"));
}
