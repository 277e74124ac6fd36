//! Fuzzing the parsers that take outside input with proptest: comments, webhook payloads (random
//! JSON, and real payloads with any field replaced by anything), time-to-live values and
//! configuration files. Each must answer Ok or a clear error; none may panic.

use flux_ephemeral::command::{parse as parse_comment, Prefixes};
use flux_ephemeral::config::{parse_ttl, FileConfig};
use flux_ephemeral::events::{check, github, gitlab, Forge};
use flux_ephemeral::settings::Settings;
use proptest::prelude::*;
use serde_json::Value;

const GITHUB: &[(&str, &str)] = &[
    (
        "issue_comment",
        include_str!("../fixtures/github/issue_comment.created.payload.json"),
    ),
    (
        "pull_request",
        include_str!("../fixtures/github/pull_request.synchronize.payload.json"),
    ),
    (
        "pull_request",
        include_str!("../fixtures/github/pull_request.labeled.payload.json"),
    ),
];

const GITLAB: &[(&str, &str)] = &[
    (
        "Note Hook",
        include_str!("../fixtures/gitlab/note_merge_request.json"),
    ),
    (
        "Merge Request Hook",
        include_str!("../fixtures/gitlab/merge_request.json"),
    ),
    (
        "Deployment Hook",
        include_str!("../fixtures/gitlab/deployment.json"),
    ),
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::String),
        Just(Value::String("/deploy-ephemeral ttl=500000000000y".into())),
        Just(Value::String("../../x".into())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every path to a value in `v`.
fn paths(v: &Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let mut p = at.clone();
                p.push(k.clone());
                paths(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let mut p = at.clone();
                p.push(i.to_string());
                paths(x, p, out);
            }
        }
        _ => {}
    }
}

/// `body` with the value at the `pick`-th path replaced by `with`.
fn mutate(body: &str, pick: usize, with: Value) -> String {
    let mut v: Value = serde_json::from_str(body).unwrap();
    let mut all = Vec::new();
    paths(&v, vec![], &mut all);
    let p = &all[pick % all.len()];
    let mut at = &mut v;
    for k in p {
        at = match at {
            Value::Object(m) => m.get_mut(k).unwrap(),
            Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
            _ => unreachable!(),
        };
    }
    *at = with;
    v.to_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn payloads_with_any_field_replaced(which in 0usize..6, pick in any::<usize>(), with in json_value()) {
        let (forge, (name, body)) = if which < 3 { (Forge::GitHub, GITHUB[which]) } else { (Forge::GitLab, GITLAB[which - 3]) };
        let body = mutate(body, pick, with);
        let _ = check(forge, Some(name), &body);
        let _ = check(forge, None, &body);
        let _ = github::parse(name, &body, &Prefixes::default());
        let _ = gitlab::parse(Some(name), &body, &Prefixes::default());
    }

    #[test]
    fn random_json_and_text(v in json_value(), text in "\\PC{0,200}", name in "[A-Za-z _]{0,20}") {
        let body = v.to_string();
        for forge in [Forge::GitHub, Forge::GitLab] {
            let _ = check(forge, Some(&name), &body);
            let _ = check(forge, Some(&name), &text);
            let _ = check(forge, None, &text);
        }
    }

    #[test]
    fn comments(body in "\\PC{0,300}", word in "/[a-z-]{0,20}", arg in "[a-z=0-9.]{0,30}") {
        let _ = parse_comment(&body, &Prefixes::default());
        let _ = parse_comment(&format!("{word} {arg}\n{body}"), &Prefixes::default());
    }

    #[test]
    fn times_to_live(n in any::<u64>(), unit in "(ns|us|ms|s|m|h|d|w|M|y|years|)", junk in "\\PC{0,12}") {
        let _ = parse_ttl(&format!("{n}{unit}"));
        let _ = parse_ttl(&junk);
        if let Ok(d) = parse_ttl(&format!("{n}{unit}")) {
            // Whatever parses fits any clock.
            prop_assert!(std::time::SystemTime::now().checked_add(d).is_some());
        }
    }

    #[test]
    fn configuration_files(
        keys in prop::collection::vec(
            prop_oneof![
                Just("ttl"), Just("max_ttl"), Just("app"), Just("instances_dir"), Just("template"),
                Just("include_environment"), Just("exclude_environment"), Just("preview_url"),
                Just("max_environments"), Just("allowed_users"), Just("commit_author"), Just("unknown_key"),
            ],
            0..6,
        ),
        values in prop::collection::vec(json_value(), 6),
        text in "\\PC{0,200}",
    ) {
        let yaml: String = keys
            .iter()
            .zip(&values)
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect();
        for t in [yaml.as_str(), text.as_str()] {
            if let Ok(c) = FileConfig::parse(t, "fuzz") {
                let _ = Settings::resolve(c);
            }
        }
    }
}
