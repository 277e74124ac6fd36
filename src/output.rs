//! What the commands print: a line for people, or one JSON object for pipelines.

use clap::ValueEnum;
use serde::Serialize;
use serde_json::json;

use crate::error::Error;
use crate::model::EnvRecord;
use crate::plan::{Action, Outcome};
use crate::reconcile::Report;

/// The one place a command's JSON result is written: one object, on one line of stdout. A
/// reader that went away (`| head`) is not an error.
pub fn json_line(v: &serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}").and_then(|()| out.flush());
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// One environment's result, as printed.
#[derive(Debug, Serialize)]
pub struct EnvResult<'a> {
    pub action: Action,
    pub slug: &'a str,
    pub file: String,
    pub changed: bool,
    pub commit: Option<&'a str>,
    pub branch: Option<&'a str>,
    pub sha: Option<&'a str>,
    pub name: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub preview_url: Option<&'a str>,
    /// The cluster it is in, with `clusters` configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<&'a str>,
    /// `{position, of}` while it waits in the queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits_for: Option<&'a str>,
}

fn env_result<'a>(o: &'a Outcome, report: &'a Report) -> EnvResult<'a> {
    let r = o.rendered.as_ref();
    EnvResult {
        action: o.action,
        slug: &o.slug,
        file: report.path(&o.file),
        changed: o.action.changed() && report.commit.is_some(),
        commit: report.commit.as_deref(),
        branch: o.branch.as_deref(),
        sha: o.sha.as_deref(),
        name: r.map(|r| r.name.as_str()),
        namespace: r.map(|r| r.namespace.as_str()),
        preview_url: r.and_then(|r| r.preview_url.as_deref()),
        cluster: o.cluster.as_deref().filter(|_| report.clustered),
        moved_from: o.moved_from.as_deref(),
        queued: o.queued.map(|(p, n)| json!({"position": p, "of": n})),
        waits_for: o.waits_for.as_deref(),
    }
}

/// Print the result of a deploy or destroy of one environment.
/// What happened besides the commit: the artifact pushed, Flux notified, the wait's outcome.
#[derive(Debug, Default)]
pub struct Extras<'a> {
    pub pushed: Option<&'a crate::oci::Pushed>,
    pub notified: Option<bool>,
    pub wait: Option<&'a crate::flux::WaitOutcome>,
}

pub fn print_single(format: Format, report: &Report, repo: &str, dry_run: bool, extras: &Extras) {
    let pushed = extras.pushed;
    let Some(o) = report.plan.outcomes.first() else {
        return;
    };
    match format {
        Format::Json => {
            let mut v = serde_json::to_value(env_result(o, report)).unwrap_or_default();
            v["target_branch"] = json!(report.target_branch);
            v["repo"] = json!(repo);
            v["dry_run"] = json!(dry_run);
            v["attempts"] = json!(report.attempts);
            if let Some(n) = extras.notified {
                v["notified"] = json!(n);
            }
            if let Some(w) = extras.wait {
                v["wait"] = json!(w);
            }
            if let Some(p) = pushed {
                v["artifact"] = json!(format!("{}:{}", p.url.url(), p.tag));
                v["digest"] = json!(p.digest);
                v["artifact_uploaded"] = json!(p.uploaded);
            }
            if let Some(d) = &report.diff {
                v["diff"] = json!(d);
            }
            let admitted: Vec<_> = admitted(report).map(|a| env_result(a, report)).collect();
            if !admitted.is_empty() {
                v["admitted"] = json!(admitted);
            }
            json_line(&v);
        }
        Format::Text => {
            let path = report.path(&o.file);
            let what = what_happened(o, &path, report.clustered);
            if dry_run && o.action.changed() {
                print!("{}", report.diff.as_deref().unwrap_or(""));
                println!("dry run: would have {what}; nothing was pushed");
                for a in admitted(report) {
                    let into = a.cluster.as_deref().unwrap_or("default");
                    println!(
                        "dry run: would admit {} from the queue into cluster {into}",
                        a.slug
                    );
                }
                return;
            }
            println!("{what}");
            if let Some(p) = pushed {
                let how = if p.uploaded {
                    "pushed"
                } else {
                    "already in the registry"
                };
                println!(
                    "  artifact:  {}:{} @ {} ({how})",
                    p.url.url(),
                    p.tag,
                    p.digest
                );
            }
            if let Some(r) = &o.rendered {
                if o.action != Action::Destroyed {
                    println!("  namespace: {}", r.namespace);
                    if let Some(url) = &r.preview_url {
                        println!("  preview:   {url}");
                    }
                }
            }
            if let Some(c) = &report.commit {
                println!("  commit:    {c} on {} of {repo}", report.target_branch);
            }
            for a in admitted(report) {
                let into = a.cluster.as_deref().unwrap_or("default");
                // From the queue, read from Git: printed as data.
                let branch = crate::redact::remote_text(a.branch.as_deref().unwrap_or("-"), 200);
                println!("  admitted:  {} ({branch}) from the queue into cluster {into}, by the same commit", a.slug);
            }
            match extras.notified {
                Some(true) => println!("  flux:      notified"),
                Some(false) => println!(
                    "  flux:      could not be notified (it applies the change at its interval)"
                ),
                None => {}
            }
            if let Some(w) = extras.wait {
                println!("  preview:   {} (via {})", w.describe(), w.via);
            }
        }
    }
}

pub fn print_list(
    format: Format,
    records: &[EnvRecord],
    dir: &str,
    queue: &crate::clusters::Queue,
) {
    match format {
        Format::Json => {
            let waiting: Vec<_> = queue
                .entries
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let mut v = serde_json::to_value(w).unwrap_or_default();
                    v["position"] = json!(i + 1);
                    v
                })
                .collect();
            let envs: Vec<_> = records
                .iter()
                .map(|r| {
                    let mut v = serde_json::to_value(r).unwrap_or_default();
                    v["ref"] = json!(r.reference());
                    v["file"] = json!(crate::clusters::layout::join(dir, &r.file));
                    v["state"] = json!(if r.sleeping_since.is_some() {
                        "sleeping"
                    } else {
                        "awake"
                    });
                    v
                })
                .collect();
            json_line(&json!({ "environments": envs, "queue": waiting }));
        }
        Format::Text => {
            print_table(records, dir);
            print_queue(queue);
        }
    }
}

/// The requests waiting for room, in order.
fn print_queue(queue: &crate::clusters::Queue) {
    if queue.is_empty() {
        return;
    }
    println!("\nQUEUED (admitted in this order when a preview goes away):");
    // Read from Git, so printed as data: cut short, control characters escaped.
    let safe = |t: &str| crate::redact::remote_text(t, 200);
    for (i, w) in queue.entries.iter().enumerate() {
        let change =
            w.id.as_deref()
                .map(|n| format!(" #{}", safe(n)))
                .unwrap_or_default();
        let asked = w
            .cluster
            .as_deref()
            .map(|c| format!(", cluster {}", safe(c)))
            .unwrap_or_default();
        println!(
            "{:>3}. {}  {}{change}{asked}, since {}",
            i + 1,
            w.slug,
            safe(&w.branch),
            safe(&w.queued_at)
        );
    }
}

fn print_table(records: &[EnvRecord], dir: &str) {
    if records.is_empty() {
        println!("no environments in {dir}");
        return;
    }
    let w = records
        .iter()
        .map(|r| r.slug.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let wb = records
        .iter()
        .map(|r| r.branch.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let owners: Vec<String> = records.iter().map(|r| r.owner().describe()).collect();
    let wo = owners.iter().map(String::len).max().unwrap_or(5).max(5);
    let states: Vec<String> = records
        .iter()
        .map(|r| match &r.sleeping_since {
            Some(since) => format!("sleeping since {since}"),
            None => "awake".into(),
        })
        .collect();
    let ws = states.iter().map(String::len).max().unwrap_or(5).max(5);
    let clusters = records.iter().any(|r| r.cluster.is_some());
    let wc = records
        .iter()
        .filter_map(|r| r.cluster.as_ref().map(String::len))
        .max()
        .unwrap_or(0)
        .max(7);
    let column = |c: &str| {
        if clusters {
            format!("{c:wc$}  ")
        } else {
            String::new()
        }
    };
    println!(
        "{:w$}  {}{:wb$}  {:48}  {:wo$}  {:ws$}  {:20}  FILE",
        "SLUG",
        column("CLUSTER"),
        "BRANCH",
        "REF",
        "OWNER",
        "STATE",
        "EXPIRES"
    );
    for ((r, owner), state) in records.iter().zip(&owners).zip(&states) {
        println!(
            "{:w$}  {}{:wb$}  {:48}  {owner:wo$}  {state:ws$}  {:20}  {}",
            r.slug,
            column(r.cluster.as_deref().unwrap_or("-")),
            r.branch,
            r.reference(),
            r.expires_at.as_deref().unwrap_or("-"),
            crate::clusters::layout::join(dir, &r.file)
        );
    }
}

/// The event or job was handled, but asks for nothing (filtered out, not an environment job).
pub fn print_ignored(format: Format, reason: &str) {
    match format {
        Format::Json => json_line(
            &json!({ "action": "ignored", "reason": reason, "slug": null, "commit": null, "changed": false }),
        ),
        Format::Text => println!("ignored: {reason}; nothing to do"),
    }
}

/// `KEY=value` lines for GitLab's `artifacts:reports:dotenv`.
pub fn write_dotenv(path: &std::path::Path, report: &Report) -> Result<(), Error> {
    let mut text = String::new();
    if let Some(o) = report.plan.outcomes.first() {
        text.push_str(&format!("FLUX_EPHEMERAL_SLUG={}\n", o.slug));
        if let Some(r) = &o.rendered {
            text.push_str(&format!(
                "FLUX_EPHEMERAL_NAME={}\nFLUX_EPHEMERAL_NAMESPACE={}\n",
                r.name, r.namespace
            ));
            if let Some(url) = r
                .preview_url
                .as_deref()
                .filter(|u| !u.contains(['\n', '\r']))
            {
                text.push_str(&format!("DYNAMIC_ENVIRONMENT_URL={url}\n"));
            }
        }
        if let Some(c) = &report.commit {
            text.push_str(&format!("FLUX_EPHEMERAL_COMMIT={c}\n"));
        }
    }
    std::fs::write(path, text)
        .map_err(|e| Error::input(format!("cannot write --dotenv {}: {e}", path.display())))
}

pub fn print_error(format: Format, e: &Error) {
    if e.reported {
        eprintln!("error: {e}");
        return;
    }
    match format {
        Format::Json => {
            json_line(&json!({ "error": { "kind": e.kind.as_str(), "message": e.message } }))
        }
        Format::Text => {}
    }
    eprintln!("error: {e}");
}

/// The requests a commit admitted from the queue (besides the environment it was made for).
fn admitted(report: &Report) -> impl Iterator<Item = &Outcome> {
    report.plan.outcomes.iter().filter(|o| o.admitted.is_some())
}

/// One line saying what happened to one environment.
fn what_happened(o: &Outcome, path: &str, clustered: bool) -> String {
    let what = match o.action {
        Action::Created => format!("created environment {} in {path}", o.slug),
        Action::Updated => format!("updated environment {} in {path}", o.slug),
        Action::Unchanged => format!(
            "environment {} is up to date in {path}; nothing to commit",
            o.slug
        ),
        Action::Destroyed => format!("destroyed environment {} (deleted {path})", o.slug),
        Action::Absent => {
            format!("environment {} does not exist; nothing to commit", o.slug)
        }
        Action::Queued => format!(
            "queued environment {}, position {} of {}: {} ({})",
            o.slug,
            o.queued.map(|q| q.0).unwrap_or(0),
            o.queued.map(|q| q.1).unwrap_or(0),
            o.waits_for.as_deref().unwrap_or("no room"),
            o.file
        ),
        Action::Dequeued => {
            format!("took environment {} out of the queue ({})", o.slug, o.file)
        }
    };
    match (&o.cluster, &o.moved_from, clustered) {
        (Some(c), Some(from), _) => format!("{what} (moved from cluster {from} to {c})"),
        (Some(c), None, true) => format!("{what} (cluster {c})"),
        _ => what,
    }
}
