//! The pipelines users copy parse, and every flux-ephemeral command they run exists with the
//! flags they pass.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::Value;
use support::{BIN, ROOT};

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

fn files() -> Vec<PathBuf> {
    let mut out = vec![Path::new(ROOT).join(".gitlab-ci.yml")];
    for dir in ["examples/gitlab", "examples/github"] {
        for e in std::fs::read_dir(Path::new(ROOT).join(dir)).unwrap() {
            out.push(e.unwrap().path());
        }
    }
    out
}

/// Every shell line of a GitLab job's `script` or a GitHub step's `run`.
fn shell_lines(doc: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    let mut push = |v: &Value| match v {
        Value::String(s) => lines.extend(s.lines().map(str::to_string)),
        Value::Sequence(items) => lines.extend(
            items
                .iter()
                .filter_map(Value::as_str)
                .flat_map(|s| s.lines().map(str::to_string)),
        ),
        _ => {}
    };
    if let Some(map) = doc.as_mapping() {
        for (_, job) in map {
            if let Some(script) = job.get("script") {
                push(script);
            }
        }
    }
    if let Some(jobs) = doc.get("jobs").and_then(Value::as_mapping) {
        for (_, job) in jobs {
            for step in job
                .get("steps")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                if let Some(run) = step.get("run") {
                    push(run);
                }
            }
        }
    }
    lines
}

#[test]
fn every_flux_ephemeral_command_and_flag_exists() {
    let mut seen = 0;
    for file in files() {
        let doc = load(&file);
        for line in shell_lines(&doc) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(at) = words.iter().position(|w| *w == "flux-ephemeral") else {
                continue;
            };
            let sub = words[at + 1];
            let help = Command::new(BIN).args([sub, "--help"]).output().unwrap();
            assert!(
                help.status.success(),
                "{}: `flux-ephemeral {sub}` does not exist",
                file.display()
            );
            let help = String::from_utf8(help.stdout).unwrap();
            for flag in words[at + 2..].iter().filter(|w| w.starts_with("--")) {
                let flag = flag.split('=').next().unwrap();
                assert!(
                    help.contains(flag),
                    "{}: `flux-ephemeral {sub}` has no {flag}",
                    file.display()
                );
            }
            seen += 1;
        }
    }
    assert!(seen >= 4, "the examples run flux-ephemeral {seen} times");
}

#[test]
fn gitlab_review_apps_have_start_and_stop_jobs() {
    let doc = load(&Path::new(ROOT).join("examples/gitlab/review-apps.gitlab-ci.yml"));
    let start = &doc["start-review"]["environment"];
    assert_eq!(start["name"], "review/$CI_COMMIT_REF_SLUG");
    assert_eq!(start["on_stop"], "stop-review");
    assert!(start["auto_stop_in"].is_string());
    assert_eq!(
        doc["start-review"]["artifacts"]["reports"]["dotenv"],
        "deploy.env"
    );
    assert_eq!(doc["stop-review"]["environment"]["action"], "stop");
}

#[test]
fn github_workflows_are_least_privilege_and_serialized_per_pull_request() {
    let doc = load(&Path::new(ROOT).join("examples/github/preview.yml"));
    assert_eq!(doc["permissions"]["contents"], "read");
    assert!(doc["concurrency"]["group"]
        .as_str()
        .unwrap()
        .contains("pull_request.number"));
}

#[test]
fn the_projects_pipeline_runs_the_readme_test_command() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    assert!(readme
        .lines()
        .take(5)
        .any(|l| l.contains("./scripts/test.sh")));
    let doc = load(&Path::new(ROOT).join(".gitlab-ci.yml"));
    assert!(shell_lines(&doc)
        .iter()
        .any(|l| l.trim() == "./scripts/test.sh"));
    let ci = std::fs::read_to_string(Path::new(ROOT).join(".ci/run")).unwrap();
    assert!(ci.contains("./scripts/test.sh"));
}

#[test]
fn the_example_configuration_is_complete_and_valid() {
    let path = Path::new(ROOT).join("examples/flux-ephemeral.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config =
        flux_ephemeral::config::FileConfig::parse(&text, "examples/flux-ephemeral.yaml").unwrap();
    flux_ephemeral::settings::Settings::resolve(config).unwrap();
    // Every key the configuration reference documents is in the example (commented or not).
    let readme = std::fs::read_to_string(Path::new(ROOT).join("docs/configuration.md")).unwrap();
    let section = &readme[readme.find("## Configuration").unwrap()..];
    for line in section
        .lines()
        .skip_while(|l| !l.starts_with("| key"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
    {
        for key in line
            .split('|')
            .nth(1)
            .unwrap()
            .split(',')
            .map(|k| k.trim().trim_matches('`'))
        {
            if key == "target_branch" {
                continue;
            }
            assert!(
                text.contains(&format!("{key}:")),
                "examples/flux-ephemeral.yaml lacks {key}"
            );
        }
    }
}

#[test]
fn the_fleet_example_resolves_for_each_application() {
    use flux_ephemeral::apps::Origin;
    use flux_ephemeral::config::FileConfig;
    use flux_ephemeral::events::Forge;
    use flux_ephemeral::events::RepoRef;
    use flux_ephemeral::settings::Settings;
    let path = Path::new(ROOT).join("examples/fleet.flux-ephemeral.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let file = FileConfig::parse(&text, "examples/fleet.flux-ephemeral.yaml").unwrap();
    let origin = |forge, path: &str| Origin {
        repository: Some(RepoRef {
            forge,
            path: path.into(),
            id: None,
        }),
        ..Origin::default()
    };
    let web = Settings::resolve_for(
        file.clone(),
        FileConfig::default(),
        &origin(Forge::GitHub, "example-org/web"),
    )
    .unwrap();
    assert_eq!(web.application.name, "web");
    assert_eq!(web.template, "kustomization");
    let api = Settings::resolve_for(
        file.clone(),
        FileConfig::default(),
        &origin(Forge::GitLab, "example-group/api"),
    )
    .unwrap();
    assert_eq!(api.template, "helm");
    assert_eq!(api.ttl, Some(std::time::Duration::from_secs(24 * 3600)));
    assert!(Settings::resolve_for(
        file,
        FileConfig::default(),
        &origin(Forge::GitHub, "example-org/other")
    )
    .is_err());
}

/// The schema of `.flux-ephemeral.yaml` that editors read is the one the binary prints, every
/// example and every `# .flux-ephemeral.yaml` block of the README validates against it, and the
/// examples point editors at it.
#[test]
fn the_configuration_schema_is_current_and_every_example_follows_it() {
    let out = Command::new(BIN).arg("config-schema").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join("schema/flux-ephemeral.schema.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        printed, committed,
        "schema/flux-ephemeral.schema.json is stale: flux-ephemeral config-schema > schema/flux-ephemeral.schema.json"
    );
    let validator = jsonschema::validator_for(&committed).unwrap();
    let check = |what: &str, yaml: &str| {
        let value: serde_json::Value =
            serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{what} is not YAML: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{what}: {errors:?}");
    };
    let mut checked = 0;
    for name in [
        "flux-ephemeral.yaml",
        "fleet.flux-ephemeral.yaml",
        "clusters.flux-ephemeral.yaml",
    ] {
        let text = std::fs::read_to_string(Path::new(ROOT).join("examples").join(name)).unwrap();
        assert!(
            text.starts_with(
                "# yaml-language-server: $schema=../schema/flux-ephemeral.schema.json\n"
            ),
            "examples/{name} does not point editors at the schema"
        );
        check(&format!("examples/{name}"), &text);
        checked += 1;
    }
    for (doc, text) in documents() {
        for block in yaml_blocks(&text) {
            if block.starts_with("# .flux-ephemeral.yaml") {
                check(&format!("a block of {doc}"), &block);
                checked += 1;
            }
        }
    }
    assert!(checked >= 4, "only {checked} configurations checked");
    // An unknown key is refused by the schema as by the binary.
    assert!(!validator.is_valid(&serde_json::json!({"tll": "2d"})));
}

/// Shell completions and the man page come from the same clap definition.
#[test]
fn completions_and_the_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("flux-ephemeral") && text.contains("deploy"),
            "{shell}"
        );
    }
    let out = Command::new(BIN).arg("manpage").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH flux-ephemeral 1"), "{page}");
    assert!(page.contains("deploy"), "{page}");
    let out = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

/// The instances directory users copy holds only the watcher: Flux applies everything in it, so
/// an example Provider or Receiver there would be created as it is (pointing at example-org).
#[test]
fn the_instances_directory_users_copy_holds_only_the_watcher() {
    let dir = Path::new(ROOT).join("overlays/ephemeral-instances");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["sync.yaml"]);
    for example in ["notifications.yaml", "receiver.yaml"] {
        assert!(Path::new(ROOT)
            .join("examples/flux")
            .join(example)
            .is_file());
    }
}

/// README.md and every page of docs/, with their paths.
fn documents() -> Vec<(String, String)> {
    let mut out = vec![(
        "README.md".to_string(),
        std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap(),
    )];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    for p in pages {
        let name = format!("docs/{}", p.file_name().unwrap().to_string_lossy());
        out.push((name, std::fs::read_to_string(p).unwrap()));
    }
    out
}

/// The ```yaml blocks of a Markdown text, dedented (a block may sit in a list item).
fn yaml_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```yaml" {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let mut block = Vec::new();
        for l in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            block.push(l.get(indent..).unwrap_or(l.trim_start()));
        }
        out.push(block.join("\n") + "\n");
    }
    out
}

/// GitHub's anchor of a heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The README is a landing page, and every relative link in it and in docs/ leads somewhere: a
/// file that exists and, with `#…`, a heading of that file.
#[test]
fn every_relative_link_in_the_readme_and_the_docs_works() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    assert!(
        readme.len() <= 25 * 1024,
        "README.md is {} bytes: move reference into docs/",
        readme.len()
    );
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut broken = Vec::new();
    let mut checked = 0;
    for (doc, text) in documents() {
        let base = Path::new(ROOT).join(&doc).parent().unwrap().to_path_buf();
        for m in link.captures_iter(&text) {
            let target = &m[1];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
            let file = if path.is_empty() {
                Path::new(ROOT).join(&doc)
            } else {
                base.join(path)
            };
            checked += 1;
            if !file.exists() {
                broken.push(format!("{doc}: {target} (no such file)"));
                continue;
            }
            if !fragment.is_empty() && file.extension().is_some_and(|e| e == "md") {
                let headings: Vec<String> = std::fs::read_to_string(&file)
                    .unwrap()
                    .lines()
                    .filter_map(|l| {
                        l.trim_start_matches('#')
                            .strip_prefix(' ')
                            .filter(|_| l.starts_with('#'))
                    })
                    .map(anchor)
                    .collect();
                if !headings.iter().any(|h| h == fragment) {
                    broken.push(format!("{doc}: {target} (no such heading)"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 50, "only {checked} links checked");
}

/// `--help` is written as paragraphs and clap wraps them: at 80 columns no line in the middle of
/// a paragraph is cut short (as hand-wrapped doc comments were).
#[test]
fn help_texts_are_paragraphs() {
    let top = Command::new(BIN).arg("--help").output().unwrap();
    let commands: Vec<String> = String::from_utf8_lossy(&top.stdout)
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() > 10, "{commands:?}");
    for command in std::iter::once(None).chain(commands.iter().map(Some)) {
        let mut c = Command::new(BIN);
        c.env("COLUMNS", "80");
        if let Some(name) = command {
            c.arg(name);
        }
        let out = c.arg("--help").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let about: Vec<&str> = text
            .lines()
            .take_while(|l| !l.starts_with("Usage:"))
            .collect();
        for pair in about.windows(2) {
            // A line ends early although the next word would have fitted: broken by hand.
            let next = pair[1].split_whitespace().next().unwrap_or("");
            if !pair[0].trim().is_empty() && !pair[1].trim().is_empty() {
                assert!(
                    pair[0].chars().count() + 1 + next.chars().count() > 80,
                    "{command:?}: a paragraph is broken by hand after {:?}:\n{text}",
                    pair[0]
                );
            }
        }
    }
}

/// The clusters example resolves: two clusters under one root, their caps and contexts, the
/// author's cap, and the quota.
#[test]
fn the_clusters_example_resolves() {
    use flux_ephemeral::config::FileConfig;
    use flux_ephemeral::settings::Settings;
    let text =
        std::fs::read_to_string(Path::new(ROOT).join("examples/clusters.flux-ephemeral.yaml"))
            .unwrap();
    let file = FileConfig::parse(&text, "examples/clusters.flux-ephemeral.yaml").unwrap();
    let s = Settings::resolve(file).unwrap();
    let l = &s.layout;
    assert_eq!(l.root, "clusters");
    assert_eq!(s.instances_dir, "clusters");
    assert_eq!(l.names(), ["eu", "us"]);
    assert_eq!(l.clusters[0].max_previews, Some(20));
    assert_eq!(l.context(Some("us")), Some("preview-us"));
    assert_eq!(l.max_per_author, Some(3));
    assert!(!l.count_sleeping);
    assert!(s.render.quota.is_some());
}
