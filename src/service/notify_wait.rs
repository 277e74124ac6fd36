//! After a push: notify Flux (a Receiver), and wait until the preview is Ready.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::flux::kube_wait::KubeWaiter;
use crate::flux::receiver::{Receiver, ReceiverType};
use crate::flux::targets::Targets;
use crate::flux::WaitOutcome;
use crate::forge::ChangeForge;
use crate::redact::Secret;
use crate::settings::Settings;

/// Notify a Flux notification-controller Receiver after a push that changed something: the
/// settings given outside the configuration file (they win over it).
#[derive(Debug, Clone, Default)]
pub struct NotifyOptions {
    pub receiver_url: Option<String>,
    pub receiver_name: Option<String>,
    pub receiver_namespace: Option<String>,
    pub receiver_type: Option<ReceiverType>,
    /// The token's file; else FLUX_RECEIVER_TOKEN.
    pub receiver_token_file: Option<PathBuf>,
}

impl NotifyOptions {
    /// The Receiver, from the flags over the configuration; `None` when none is configured.
    pub fn receiver(&self, settings: &Settings) -> Result<Option<Receiver>> {
        Ok(self.receivers(settings, &[])?.into_iter().next())
    }

    /// The Receivers of `clusters` (each cluster's own `receiver_url`, else the configured one;
    /// a flag wins over both), each once; none configured: empty.
    pub fn receivers(&self, settings: &Settings, clusters: &[String]) -> Result<Vec<Receiver>> {
        let global = self
            .receiver_url
            .clone()
            .or_else(|| settings.receiver.as_ref().map(|c| c.url.clone()));
        let mut urls: Vec<String> = clusters
            .iter()
            .filter_map(|name| {
                let own = settings.layout.named(name)?.receiver_url.clone();
                self.receiver_url.clone().or(own).or_else(|| global.clone())
            })
            .collect();
        if clusters.is_empty() {
            urls.extend(global);
        }
        urls.sort();
        urls.dedup();
        urls.iter().map(|u| self.receiver_at(settings, u)).collect()
    }

    fn receiver_at(&self, settings: &Settings, url: &str) -> Result<Receiver> {
        let conf = settings.receiver.as_ref();
        let url = url.to_string();
        let token = match &self.receiver_token_file {
            Some(f) => std::fs::read_to_string(f)
                .map(|t| Secret::new(t.trim()))
                .map_err(|e| Error::config(format!("cannot read {}: {e}", f.display())))?,
            None => Secret::from_env("FLUX_RECEIVER_TOKEN").ok_or_else(|| {
                Error::config("a Flux receiver is configured but FLUX_RECEIVER_TOKEN (or --receiver-token-file) is not set")
            })?,
        };
        let name = self
            .receiver_name
            .clone()
            .or_else(|| conf.and_then(|c| c.name.clone()));
        let namespace = self
            .receiver_namespace
            .clone()
            .or_else(|| conf.map(|c| c.namespace.clone()))
            .unwrap_or_else(|| "flux-system".into());
        let kind = self
            .receiver_type
            .or_else(|| conf.map(|c| c.kind))
            .unwrap_or(ReceiverType::Generic);
        Receiver::new(&url, name.as_deref(), &namespace, kind, token)
    }

    /// Notify after `commit` landed on `branch`, the Flux of every cluster in `clusters` (the
    /// clusters the commit touched): `Some(true)` notified, `Some(false)` one failed (a warning:
    /// Flux still reconciles at its interval), `None` nothing to notify.
    pub fn notify(
        &self,
        settings: &Settings,
        branch: &str,
        commit: Option<&str>,
        dry_run: bool,
        clusters: &[String],
    ) -> Option<bool> {
        let commit = commit?;
        let receivers = match self.receivers(settings, clusters) {
            Ok(r) if r.is_empty() => return None,
            Ok(r) => r,
            Err(e) => {
                eprintln!("warning: {e}");
                return Some(false);
            }
        };
        if dry_run {
            return None;
        }
        let mut all = true;
        for receiver in receivers {
            if let Err(e) = receiver.notify(branch, commit) {
                eprintln!("warning: {e} (the commit landed; Flux applies it at its interval)");
                all = false;
            }
        }
        Some(all)
    }
}

/// Wait until the preview is Ready at the pushed revision.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    pub wait: bool,
    pub timeout: Duration,
    /// Else KUBECONFIG, ~/.kube/config, or in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// Through the forge, count only statuses posted by this account (Flux's Provider's).
    pub status_author: Option<String>,
}

impl WaitOptions {
    /// Wait for the environment rendered as `content`, in its cluster (`context`: the
    /// cluster's kubeconfig context). `forge`: where Flux posts its commit statuses, used when
    /// no cluster credentials are available.
    pub fn wait_for(
        &self,
        content: &str,
        forge: Option<&dyn ChangeForge>,
        context: Option<&str>,
    ) -> Result<WaitOutcome> {
        let targets = crate::flux::targets::from_sync_file(content)?;
        wait_for_targets(
            &targets,
            Kube {
                kubeconfig: self.kubeconfig.as_deref(),
                context,
            },
            self.timeout,
            forge,
            self.status_author.as_deref(),
        )
    }
}

/// Which cluster to ask: a kubeconfig (else the usual places) and its context (else the
/// current one).
#[derive(Debug, Clone, Copy, Default)]
pub struct Kube<'a> {
    pub kubeconfig: Option<&'a std::path::Path>,
    pub context: Option<&'a str>,
}

/// Wait through the Kubernetes API when it is reachable, else through the forge.
pub fn wait_for_targets(
    targets: &Targets,
    kube: Kube,
    timeout: Duration,
    forge: Option<&dyn ChangeForge>,
    status_author: Option<&str>,
) -> Result<WaitOutcome> {
    if let Some(kube) = KubeWaiter::connect(kube.kubeconfig, kube.context)? {
        return kube.wait(targets, timeout);
    }
    match (forge, &targets.sha) {
        (Some(f), Some(sha)) => crate::flux::forge_status::wait(
            f,
            sha,
            &targets.deployer,
            targets.pushed_at,
            status_author,
            timeout,
            Duration::from_secs(2),
        ),
        (Some(_), None) => Err(Error::config(
            "--wait without cluster credentials reads Flux's commit statuses, which need the commit (--sha)",
        )),
        (None, _) => Err(Error::config(
            "--wait needs a kubeconfig (--kubeconfig, KUBECONFIG, in-cluster) or a forge to read Flux's commit statuses from (GITHUB_TOKEN with GITHUB_REPOSITORY, GITLAB_TOKEN with CI_PROJECT_ID, or GITEA_URL and GITEA_TOKEN with GITEA_REPOSITORY)",
        )),
    }
}

/// The forge of the CI job, for reading commit statuses: Gitea (GITEA_URL and GITEA_TOKEN with
/// GITEA_REPOSITORY, or in Gitea Actions its GITHUB_REPOSITORY), GitHub Actions or GitLab CI.
pub fn ci_forge() -> Option<Box<dyn ChangeForge>> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let gitea_repo = var("GITEA_REPOSITORY").or_else(|| {
        (var("GITEA_ACTIONS").as_deref() == Some("true"))
            .then(|| var("GITHUB_REPOSITORY"))
            .flatten()
    });
    if let Some(f) = gitea_repo.and_then(|repo| super::forges::gitea(&repo).ok()) {
        return Some(Box::new(f));
    }
    if let (Some(repo), true) = (
        var("GITHUB_REPOSITORY"),
        super::forges::has_github_credentials(),
    ) {
        return super::forges::github(&repo)
            .ok()
            .map(|f| Box::new(f) as Box<dyn ChangeForge>);
    }
    let project = var("CI_PROJECT_ID")?;
    super::forges::gitlab(None, &project)
        .ok()
        .map(|f| Box::new(f) as Box<dyn ChangeForge>)
}
