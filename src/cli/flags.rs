//! Flag groups that turn into the service layer's plain options.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::flux::receiver::ReceiverType;
use crate::service::artifact::ArtifactOptions;
use crate::service::notify_wait::{NotifyOptions, WaitOptions};

/// The OCI artifact to deploy instead of the branch.
#[derive(Debug, Clone, Default, Args)]
pub struct ArtifactArgs {
    /// Pack this directory (the manifests the pipeline built) as a Flux OCI artifact, push it and
    /// pin the preview's OCIRepository to its digest (config: source: oci)
    #[arg(long, env = "FLUX_EPHEMERAL_ARTIFACT", value_name = "DIR")]
    pub artifact: Option<PathBuf>,
    /// Where to push it: oci://HOST[:PORT]/REPOSITORY; the tag is the environment's slug
    /// (config: artifact_url). Credentials: REGISTRY_USERNAME/REGISTRY_PASSWORD for REGISTRY_HOST, in GitLab CI
    /// CI_REGISTRY_USER/CI_REGISTRY_PASSWORD, or Docker's config.json
    #[arg(long, env = "FLUX_EPHEMERAL_ARTIFACT_URL", value_name = "URL")]
    pub artifact_url: Option<String>,
    /// Talk plain HTTP to this registry host (HOST[:PORT]; a registry on loopback for tests; the
    /// OCIRepository then says insecure: true). Any other host is HTTPS only
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Option<String>,
}

impl ArtifactArgs {
    pub fn options(&self) -> ArtifactOptions {
        ArtifactOptions {
            artifact: self.artifact.clone(),
            artifact_url: self.artifact_url.clone(),
            insecure_registry: self.insecure_registry.clone(),
        }
    }
}

/// Notify a Flux notification-controller Receiver after a push that changed something.
#[derive(Debug, Clone, Default, Args)]
pub struct NotifyArgs {
    /// The Receiver's webhook URL (https://flux-webhook.example.com/hook/<id>), or its base URL
    /// with --receiver-name (config: receiver_url). Token: FLUX_RECEIVER_TOKEN or --receiver-token-file
    #[arg(long, env = "FLUX_EPHEMERAL_RECEIVER_URL", value_name = "URL")]
    pub receiver_url: Option<String>,
    /// The Receiver's name, to compute the webhook path as `flux trigger receiver` does (config: receiver_name)
    #[arg(long, env = "FLUX_EPHEMERAL_RECEIVER_NAME", value_name = "NAME")]
    pub receiver_name: Option<String>,
    /// The Receiver's namespace (config: receiver_namespace) [default: flux-system]
    #[arg(long, env = "FLUX_EPHEMERAL_RECEIVER_NAMESPACE", value_name = "NS")]
    pub receiver_namespace: Option<String>,
    /// The Receiver's type (config: receiver_type) [default: generic]
    #[arg(
        long,
        value_enum,
        env = "FLUX_EPHEMERAL_RECEIVER_TYPE",
        value_name = "TYPE"
    )]
    pub receiver_type: Option<ReceiverType>,
    /// File holding the Receiver's token [else FLUX_RECEIVER_TOKEN]
    #[arg(long, env = "FLUX_RECEIVER_TOKEN_FILE", value_name = "FILE")]
    pub receiver_token_file: Option<PathBuf>,
}

impl NotifyArgs {
    pub fn options(&self) -> NotifyOptions {
        NotifyOptions {
            receiver_url: self.receiver_url.clone(),
            receiver_name: self.receiver_name.clone(),
            receiver_namespace: self.receiver_namespace.clone(),
            receiver_type: self.receiver_type,
            receiver_token_file: self.receiver_token_file.clone(),
        }
    }
}

/// `--wait`: wait until the preview is Ready at the pushed revision.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// After the push, wait until Flux reports the preview Ready at the pushed revision (exit 6
    /// when Flux reports it failed, 7 on timeout): through the Kubernetes API when a kubeconfig
    /// is available, else through the commit statuses Flux's notification Provider posts
    #[arg(long)]
    pub wait: bool,
    /// How long to wait
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Kubeconfig for --wait [default: KUBECONFIG, ~/.kube/config, or in-cluster]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Waiting through the forge, count only commit statuses posted by this account (the one
    /// Flux's notification Provider uses); without it, any status in Flux's exact form counts
    #[arg(long, env = "FLUX_EPHEMERAL_FLUX_STATUS_AUTHOR", value_name = "LOGIN")]
    pub flux_status_author: Option<String>,
}

impl WaitArgs {
    pub fn options(&self) -> WaitOptions {
        WaitOptions {
            wait: self.wait,
            timeout: self.timeout,
            kubeconfig: self.kubeconfig.clone(),
            status_author: self.flux_status_author.clone(),
        }
    }
}

/// What a deploy does besides its commit: an artifact before it, Flux notified and waited for
/// after it.
#[derive(Debug, Clone, Args)]
pub struct StepArgs {
    #[command(flatten)]
    pub artifact: ArtifactArgs,
    #[command(flatten)]
    pub notify: NotifyArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
}

impl StepArgs {
    pub fn steps(&self) -> crate::service::environment::Steps {
        crate::service::environment::Steps {
            artifact: self.artifact.options(),
            notify: self.notify.options(),
            wait: Some(self.wait.options()),
        }
    }
}
