use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::args::{check_sha, RepoArgs, SettingsArgs, TargetArgs};
use crate::error::{Error, Result};
use crate::output::Format;
use crate::reconcile::first_snapshot;
use crate::service::notify_wait::{ci_forge, wait_for_targets};

/// Wait until a preview environment is Ready in Flux at the revision its sync file pins.
///
/// Reads the environment's sync file from the GitOps repository, then watches its source and its
/// Kustomization (or HelmRelease) through the Kubernetes API — or, without cluster credentials,
/// reads the commit statuses Flux's notification Provider posts (GitHub: GITHUB_TOKEN and
/// GITHUB_REPOSITORY; GitLab: GITLAB_TOKEN and CI_PROJECT_ID).
///
/// Exit codes: 0 ready, 6 Flux reports it failed (its reason and message are shown), 7 timed out.
///
/// Example: flux-ephemeral wait --repo https://github.com/org/gitops.git --branch feature/login
/// --timeout 10m
#[derive(Debug, Args)]
pub struct WaitCmd {
    /// Application branch of the environment [in CI: the job's branch]
    #[arg(long, value_name = "BRANCH")]
    branch: Option<String>,
    /// Wait for this commit instead of the one the sync file pins
    #[arg(long, value_name = "SHA")]
    sha: Option<String>,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    settings: SettingsArgs,
    /// How long to wait
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    timeout: Duration,
    /// Kubeconfig [default: KUBECONFIG, ~/.kube/config, or in-cluster]
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Through the forge, count only commit statuses posted by this account (the one Flux's
    /// notification Provider uses)
    #[arg(long, env = "FLUX_EPHEMERAL_FLUX_STATUS_AUTHOR", value_name = "LOGIN")]
    flux_status_author: Option<String>,
}

impl WaitCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        let input = self.target.input(self.branch.clone())?;
        let (store, mut config) = crate::service::environment::open(
            &super::args::repo(&self.repo, &self.settings)?,
            false,
        )?;
        config.origin = input.origin();
        let snap = first_snapshot(&store, &mut config)?;
        let slug = input.slug(&snap.settings)?;
        let key = snap.settings.application.key(&slug).unwrap_or(slug.clone());
        let (file, content) = snap
            .settings
            .layout
            .lookup(&snap.files, &key)
            .ok_or_else(|| nothing_to_wait_for(&snap, &slug, &key))?;
        let mut targets = crate::flux::targets::from_sync_file(content)?;
        if let Some(sha) = &self.sha {
            let sha = check_sha(sha)?;
            targets.revision = Some(format!("sha1:{sha}"));
            targets.sha = Some(sha);
        }
        let forge = ci_forge();
        // In the preview's own cluster: its kubeconfig context.
        let layout = &snap.settings.layout;
        let cluster = layout.cluster_of(&file).map(|c| c.name.as_str());
        let kube = crate::service::notify_wait::Kube {
            kubeconfig: self.kubeconfig.as_deref(),
            context: layout.context(cluster),
        };
        let outcome = wait_for_targets(
            &targets,
            kube,
            self.timeout,
            forge.as_deref(),
            self.flux_status_author.as_deref(),
        )?;
        match format {
            Format::Json => crate::output::json_line(
                &serde_json::json!({"action": "wait", "slug": slug, "file": crate::clusters::layout::join(&snap.settings.instances_dir, &file),
                                   "revision": targets.revision, "wait": outcome}),
            ),
            Format::Text => println!(
                "environment {slug}: {} (via {})",
                outcome.describe(),
                outcome.via
            ),
        }
        match outcome.error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Why `wait` has nothing to watch: the request waits in the queue for room, or there is no such
/// environment (in any cluster's directory).
fn nothing_to_wait_for(snap: &crate::reconcile::Snapshot, slug: &str, key: &str) -> Error {
    if let Some(position) = snap.queue.position(key) {
        return Error::input(format!(
            "environment {slug} waits in the queue for room (position {position} of {}): no cluster runs it yet; wait again once it is admitted",
            snap.queue.len()
        ));
    }
    let layout = &snap.settings.layout;
    let file = crate::model::file_name(key);
    let where_ = if layout.configured {
        let names: Vec<&str> = layout.clusters.iter().map(|c| c.name.as_str()).collect();
        format!("{file} in none of the clusters {}", names.join(", "))
    } else {
        format!("{}/{file}", snap.settings.instances_dir)
    };
    Error::input(format!(
        "there is no environment {slug} ({where_}) to wait for"
    ))
}
