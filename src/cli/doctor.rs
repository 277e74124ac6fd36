use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::args::{RepoArgs, SettingsArgs};
use crate::error::Result;
use crate::output::Format;
use crate::service::doctor::{outcome, Doctor, Verdict};

/// Check a setup before trusting it: the configuration resolves for every application; the GitOps
/// repository accepts a push connection with these credentials (nothing is sent); which
/// repositories' events each application takes; whether each forge token answers and may write
/// comments and statuses; whether resync can run (and which setting is missing when not); whether
/// the Flux Receiver's server and the Kubernetes API answer. Nothing is written anywhere.
///
/// Exit code: 0 when nothing failed (warnings are printed), else the code of the first failure (3
/// configuration, 4 a remote that failed or refused).
///
/// Example: flux-ephemeral doctor --repo https://github.com/org/gitops.git
#[derive(Debug, Args)]
pub struct DoctorCmd {
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    settings: SettingsArgs,
    /// GitLab URL, e.g. https://gitlab.example.com [env: CI_API_V4_URL, GITLAB_URL]
    #[arg(long, value_name = "URL")]
    gitlab_url: Option<String>,
    #[command(flatten)]
    notify: super::flags::NotifyArgs,
    /// Kubernetes credentials to check (else KUBECONFIG, ~/.kube/config, or in-cluster)
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
}

impl DoctorCmd {
    pub fn run(&self, format: Format) -> Result<()> {
        let doctor = Doctor {
            repo: super::args::repo(&self.repo, &self.settings)?,
            gitlab_url: self.gitlab_url.clone(),
            notify: self.notify.options(),
            kubeconfig: self.kubeconfig.clone(),
        };
        let checks = doctor.run();
        match format {
            Format::Json => {
                crate::output::json_line(&json!({"action": "doctor", "checks": checks}))
            }
            Format::Text => {
                for c in &checks {
                    let mark = match c.verdict {
                        Verdict::Ok => "ok     ",
                        Verdict::Warning => "warning",
                        Verdict::Failed => "FAILED ",
                    };
                    println!("{mark} {}: {}", c.subject, c.detail);
                }
            }
        }
        outcome(&checks)
    }
}
