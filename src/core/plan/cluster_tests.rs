//! The planner across clusters: placement, spill-over, the queue, admission, moves.

use std::time::{Duration, SystemTime};

use crate::clusters::{ClusterConfig, Layout, LayoutInput, Queue};
use crate::model::EnvSpec;
use crate::overlay::Files;
use crate::plan::{
    plan, plan_admitting, Action, Admission, Change, Intent, Plan, PlanOptions, Removal,
};
use crate::render::{RenderSettings, Renderer};

fn renderer() -> Renderer {
    Renderer::builtin("kustomization", RenderSettings::default()).unwrap()
}

fn opts(caps: &[(&str, Option<usize>)]) -> PlanOptions {
    let list: Vec<ClusterConfig> = caps
        .iter()
        .map(|(n, max)| ClusterConfig {
            name: n.to_string(),
            instances_dir: format!("clusters/{n}/previews"),
            max_previews: *max,
            ..ClusterConfig::default()
        })
        .collect();
    let input = LayoutInput {
        clusters: Some(&list),
        ..LayoutInput::default()
    };
    PlanOptions {
        layout: Layout::resolve(&input, "x").unwrap(),
        ..PlanOptions::default()
    }
}

fn spec(slug: &str) -> EnvSpec {
    EnvSpec {
        slug: slug.into(),
        branch: format!("feature/{slug}"),
        id: Some(slug.len().to_string()),
        source_url: "https://x/app.git".into(),
        ..EnvSpec::default()
    }
}

fn t() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Plan, admitting with the one renderer, and apply the result to `files` and `opts.queue`.
fn step(files: &mut Files, o: &mut PlanOptions, intents: &[Intent]) -> Plan {
    let r = renderer();
    let allowed = o.layout.allowed.clone();
    let lookup = |_: &crate::clusters::Waiting| {
        Some(Admission {
            renderer: &r,
            allowed: allowed.clone(),
        })
    };
    let p = plan_admitting(files, intents, &r, t(), o, &lookup).unwrap();
    for c in &p.changes {
        match c {
            Change::Write { file, content, .. } => {
                files.insert(file.clone(), content.as_str().into());
            }
            Change::Delete { file, .. } => {
                files.remove(file);
            }
        }
    }
    if let Some(q) = &p.queue {
        o.queue = q.clone();
    }
    p
}

fn up(slug: &str) -> Intent {
    Intent::Upsert(spec(slug))
}

fn down(slug: &str) -> Intent {
    Intent::Remove(Removal {
        slug: slug.into(),
        requester: spec(slug).owner(),
        ..Removal::default()
    })
}

#[test]
fn in_order_then_spill_over_then_the_queue_then_admission() {
    let mut o = opts(&[("eu", Some(1)), ("us", Some(1))]);
    let mut files = Files::new();
    let p = step(&mut files, &mut o, &[up("a"), up("b"), up("c"), up("dd")]);
    let got: Vec<(Action, Option<String>)> = p
        .outcomes
        .iter()
        .map(|o| (o.action, o.cluster.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (Action::Created, Some("eu".into())),
            (Action::Created, Some("us".into())),
            (Action::Queued, None),
            (Action::Queued, None),
        ]
    );
    assert_eq!(p.outcomes[2].queued, Some((1, 2)));
    assert_eq!(p.outcomes[3].queued, Some((2, 2)));
    assert_eq!(p.outcomes[3].file, ".flux-ephemeral-queue.yaml");
    assert!(files.contains_key("eu/previews/sync-a.yaml"));
    assert!(files.contains_key("us/previews/sync-b.yaml"));
    assert!(
        p.commit_message().contains("queue c"),
        "{}",
        p.commit_message()
    );

    // Asking again keeps the place.
    let p = step(&mut files, &mut o, &[up("dd")]);
    assert_eq!(p.outcomes[0].queued, Some((2, 2)));

    // The queued `c` closes: it leaves the queue; `dd` moves up.
    let p = step(&mut files, &mut o, &[down("c")]);
    assert_eq!(p.outcomes[0].action, Action::Dequeued);
    assert_eq!(o.queue.position("dd"), Some(1));

    // `a` goes away: `dd` is admitted in the same commit, into the room `a` left.
    let p = step(&mut files, &mut o, &[down("a")]);
    assert_eq!(p.outcomes[0].action, Action::Destroyed);
    assert_eq!(p.outcomes[0].cluster.as_deref(), Some("eu"));
    let admitted = &p.outcomes[1];
    assert_eq!(
        (admitted.action, admitted.slug.as_str()),
        (Action::Created, "dd")
    );
    assert!(admitted.admitted.is_some());
    assert_eq!(admitted.cluster.as_deref(), Some("eu"));
    assert!(files.contains_key("eu/previews/sync-dd.yaml"));
    assert_eq!(p.queue, Some(Queue::default()));
    assert!(
        p.commit_message().contains("admit dd"),
        "{}",
        p.commit_message()
    );
}

#[test]
fn a_cluster_by_name_and_a_move() {
    let mut o = opts(&[("eu", None), ("us", Some(1))]);
    let mut files = Files::new();
    let mut in_us = spec("a");
    in_us.cluster = Some("us".into());
    let p = step(&mut files, &mut o, &[Intent::Upsert(in_us)]);
    assert_eq!(p.outcomes[0].cluster.as_deref(), Some("us"));
    // A deploy without a cluster keeps it where it is.
    let p = step(&mut files, &mut o, &[up("a")]);
    assert_eq!(p.outcomes[0].action, Action::Unchanged);
    assert_eq!(p.outcomes[0].cluster.as_deref(), Some("us"));
    // Asking for eu moves it: one commit deletes it in us and writes it in eu.
    let mut to_eu = spec("a");
    to_eu.cluster = Some("eu".into());
    let p = step(&mut files, &mut o, &[Intent::Upsert(to_eu)]);
    assert_eq!(p.outcomes[0].action, Action::Updated);
    assert_eq!(p.outcomes[0].moved_from.as_deref(), Some("us"));
    assert!(
        matches!(&p.changes[0], Change::Delete { file, .. } if file == "us/previews/sync-a.yaml")
    );
    assert!(
        matches!(&p.changes[1], Change::Write { file, .. } if file == "eu/previews/sync-a.yaml")
    );
    assert!(p.commit_message().starts_with("flux-ephemeral: move a"));
    // Moving into a full cluster is refused; it stays.
    step(&mut files, &mut o, &[up("b")]);
    let mut b_to_us = spec("b");
    b_to_us.cluster = Some("us".into());
    let step_again = |files: &mut Files, o: &mut PlanOptions| {
        let mut full = Files::new();
        std::mem::swap(&mut full, files);
        full.insert(
            "us/previews/sync-x.yaml".into(),
            renderer().render(&spec("x"), t()).unwrap().content.into(),
        );
        plan(
            &full,
            &[Intent::Upsert(b_to_us.clone())],
            &renderer(),
            t(),
            o,
        )
    };
    let e = step_again(&mut files, &mut o).unwrap_err();
    assert!(
        e.message
            .contains("cannot move environment b to cluster us: cluster us is full"),
        "{e}"
    );
    // An unknown cluster is refused, naming the allowed ones.
    let mut nowhere = spec("c");
    nowhere.cluster = Some("ap".into());
    let e = plan(
        &Files::new(),
        &[Intent::Upsert(nowhere)],
        &renderer(),
        t(),
        &o,
    )
    .unwrap_err();
    assert!(
        e.message.contains("the clusters it may use are: eu, us"),
        "{e}"
    );
}

#[test]
fn without_clusters_nothing_changes() {
    let o = PlanOptions {
        layout: Layout::single("overlays/x"),
        ..PlanOptions::default()
    };
    let p = plan(&Files::new(), &[up("a")], &renderer(), t(), &o).unwrap();
    assert_eq!(p.changes[0].file(), "sync-a.yaml");
    assert_eq!(p.queue, None);
}

#[test]
fn those_behind_move_up_when_one_leaves_and_only_owned_ones_are_told() {
    let mut o = opts(&[("eu", Some(1))]);
    let mut files = Files::new();
    step(&mut files, &mut o, &[up("a")]);
    let p = step(&mut files, &mut o, &[up("b"), up("c"), up("d")]);
    // Queued by this plan: told by their own replies, nobody moved.
    assert!(p.moved_up.is_empty(), "{:?}", p.moved_up);
    assert_eq!(o.queue.len(), 3);

    // `a` goes: `b` is admitted, `c` and `d` move up.
    let p = step(&mut files, &mut o, &[down("a")]);
    let moved: Vec<_> = p
        .moved_up
        .iter()
        .map(|(w, n, of)| (w.slug.as_str(), *n, *of))
        .collect();
    assert_eq!(moved, vec![("c", 1, 2), ("d", 2, 2)]);

    // A request no configured application vouches for (read from Git) is not told.
    let r = renderer();
    let lookup = |w: &crate::clusters::Waiting| {
        (w.slug != "d").then(|| Admission {
            renderer: &r,
            allowed: o.layout.allowed.clone(),
        })
    };
    let p = plan_admitting(&files, &[down("b")], &r, t(), &o, &lookup).unwrap();
    let moved: Vec<_> = p.moved_up.iter().map(|(w, ..)| w.slug.as_str()).collect();
    assert_eq!(moved, Vec::<&str>::new(), "c was admitted; d is not owned");
    let owned = |_: &crate::clusters::Waiting| {
        Some(Admission {
            renderer: &r,
            allowed: o.layout.allowed.clone(),
        })
    };
    let p = plan_admitting(&files, &[down("b")], &r, t(), &o, &owned).unwrap();
    let moved: Vec<_> = p.moved_up.iter().map(|(w, ..)| w.slug.as_str()).collect();
    assert_eq!(moved, vec!["d"], "owned, d is told");

    // Nothing left the queue: nobody is told anything.
    let p = step(&mut files, &mut o, &[up("e")]);
    assert!(p.moved_up.is_empty());
}
