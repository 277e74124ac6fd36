//! Argument groups shared by the subcommands, and how they turn into domain values.

use std::path::PathBuf;

use clap::Args;

use crate::config::{parse_ttl, FileConfig};
use crate::error::{Error, Result};
use crate::git::Auth;
use crate::redact::Secret;
pub use crate::service::input::{check_branch, check_id, check_sha, EnvInput};

/// Where the GitOps repository is and how to reach it.
#[derive(Debug, Clone, Args)]
pub struct RepoArgs {
    /// The GitOps repository: a path, file://, git://, http(s)://, ssh:// or user@host:path.
    /// Without it, a local demo repository is created and used (see the README).
    #[arg(long, env = "FLUX_EPHEMERAL_REPO", value_name = "URL")]
    pub repo: Option<String>,

    /// Branch of the GitOps repository that Flux watches [default: the repository's default branch]
    #[arg(long, env = "FLUX_EPHEMERAL_TARGET_BRANCH", value_name = "BRANCH")]
    pub target_branch: Option<String>,

    /// Keep a bare mirror here between runs so later runs fetch only new objects
    #[arg(long, env = "FLUX_EPHEMERAL_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Read the HTTPS token from this file (the token itself is taken from GIT_TOKEN, never argv)
    #[arg(long, env = "GIT_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// User name sent with the HTTPS token [default: x-access-token]
    #[arg(long, env = "GIT_USERNAME", value_name = "NAME")]
    pub git_username: Option<String>,

    /// SSH private key for ssh:// and user@host:path remotes [default: the SSH agent]
    #[arg(long, env = "FLUX_EPHEMERAL_SSH_KEY", value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,

    /// Accept any SSH host key instead of checking ~/.ssh/known_hosts. Only for tests: this lets
    /// anyone in the middle read and change what is pushed.
    #[arg(long)]
    pub insecure_ignore_host_key: bool,

    /// Configuration file [default: .flux-ephemeral.yaml at the root of the target branch]
    #[arg(long, env = "FLUX_EPHEMERAL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl RepoArgs {
    /// Credentials from the environment and files; never from argv.
    pub fn auth(&self) -> Result<Auth> {
        let token = match &self.token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::input(format!("cannot read --token-file {}: {e}", path.display()))
                })?;
                Some(text.trim().to_string())
            }
            None => std::env::var("GIT_TOKEN").ok(),
        };
        Ok(Auth {
            token: token.filter(|t| !t.is_empty()).map(Secret::new),
            username: self.git_username.clone(),
            ssh_key: self.ssh_key.clone(),
            insecure_ignore_host_key: self.insecure_ignore_host_key,
            fresh_token: None,
        })
    }
}

/// The service layer's plain description of the GitOps repository and the settings flags.
pub fn repo(repo: &RepoArgs, settings: &SettingsArgs) -> Result<crate::service::environment::Repo> {
    check_ttl(&settings.ttl)?;
    Ok(crate::service::environment::Repo {
        url: repo.repo.clone(),
        target_branch: repo.target_branch.clone(),
        cache_dir: repo.cache_dir.clone(),
        auth: repo.auth()?,
        config: repo.config.clone(),
        flags: settings.to_file_config(),
    })
}

/// The GitOps repository, its settings, and whether to push: what every command that writes takes.
#[derive(Debug, Clone, Args)]
pub struct GitOpsArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// Show the change as a diff and push nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Settings that override the configuration file.
#[derive(Debug, Clone, Default, Args)]
pub struct SettingsArgs {
    /// Application repository the GitRepository fetches (config: source_url)
    #[arg(long, env = "FLUX_EPHEMERAL_SOURCE_URL", value_name = "URL")]
    pub source_url: Option<String>,

    /// Directory Flux watches for sync files (config: instances_dir) [default: overlays/ephemeral-instances]
    #[arg(long, env = "FLUX_EPHEMERAL_INSTANCES_DIR", value_name = "DIR")]
    pub instances_dir: Option<String>,

    /// Path of the overlay in the application repository (config: path) [default: ./overlays/ephemeral]
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,

    /// Template: kustomization, helm, or a Tera template file (config: template) [default: kustomization]
    #[arg(long, env = "FLUX_EPHEMERAL_TEMPLATE", value_name = "NAME|FILE")]
    pub template: Option<String>,

    /// The application of the `applications` list; without a list, the prefix of object names and
    /// namespaces, `<app>-<slug>` (config: app) [default: app]
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,

    /// Preview URL template, e.g. 'https://{{ slug }}.preview.example.com' (config: preview_url)
    #[arg(long, env = "FLUX_EPHEMERAL_PREVIEW_URL", value_name = "TEMPLATE")]
    pub preview_url: Option<String>,

    /// Time to live recorded in the environment, e.g. 72h (config: ttl)
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
}

impl SettingsArgs {
    pub fn to_file_config(&self) -> FileConfig {
        FileConfig {
            source_url: self.source_url.clone(),
            instances_dir: self.instances_dir.clone(),
            path: self.path.clone(),
            template: self.template.clone(),
            app: self.app.clone(),
            preview_url: self.preview_url.clone(),
            ttl: self.ttl.clone(),
            ..FileConfig::default()
        }
    }
}

/// The environment: which branch, pinned to which commit, for which pull/merge request.
#[derive(Debug, Clone, Default, Args)]
pub struct EnvArgs {
    /// Application branch to preview [in CI: CI_COMMIT_REF_NAME or GITHUB_HEAD_REF]
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,

    /// Pin the environment to this commit (40 hex digits); without it the environment follows the
    /// branch [in CI: CI_COMMIT_SHA, or the pull request's head]
    #[arg(long, value_name = "SHA")]
    pub sha: Option<String>,

    /// Pull/merge request number [in CI: CI_MERGE_REQUEST_IID, or the pull request's]
    #[arg(long, value_name = "N")]
    pub id: Option<String>,

    /// Who asked for the environment [in CI: GITLAB_USER_LOGIN, or the pull request's author]
    #[arg(long, value_name = "NAME")]
    pub author: Option<String>,

    /// Title of the pull/merge request
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,

    /// Deploy into this cluster of `clusters` (or move the preview there) instead of the first
    /// with room
    #[arg(long, value_name = "NAME", env = "FLUX_EPHEMERAL_CLUSTER")]
    pub cluster: Option<String>,

    #[command(flatten)]
    pub target: TargetArgs,
}

/// Which environment, for commands that only need to find it.
#[derive(Debug, Clone, Default, Args)]
pub struct TargetArgs {
    /// Use this slug instead of deriving one from the branch [in GitLab CI: CI_ENVIRONMENT_SLUG,
    /// so the URL GitLab shows and the cluster agree]
    #[arg(long, value_name = "SLUG")]
    pub slug: Option<String>,

    /// GitLab environment name, checked against include_environment / exclude_environment
    /// [in GitLab CI: CI_ENVIRONMENT_NAME]
    #[arg(long, value_name = "NAME")]
    pub environment: Option<String>,

    /// Take what the flags do not give from the CI job (GitLab CI variables, or GitHub Actions
    /// variables and event file). Automatic when --branch is absent and GITLAB_CI or GITHUB_ACTIONS
    /// is set.
    #[arg(long)]
    pub from_ci: bool,
}

impl EnvArgs {
    pub fn input(&self) -> Result<EnvInput> {
        let flags = EnvInput {
            branch: self.branch.clone(),
            sha: self.sha.clone(),
            id: self.id.clone(),
            author: self.author.clone(),
            title: self.title.clone(),
            cluster: self.cluster.clone(),
            ..self.target.flags()
        };
        flags.with_ci(self.target.ci(self.branch.is_none())?)
    }
}

impl TargetArgs {
    fn flags(&self) -> EnvInput {
        EnvInput {
            slug: self.slug.clone(),
            environment: self.environment.clone(),
            ..EnvInput::default()
        }
    }

    /// The CI context when asked for (`--from-ci`) or when the branch is not given.
    pub fn ci(&self, no_branch: bool) -> Result<Option<crate::ci::CiContext>> {
        if !self.from_ci && !no_branch {
            return Ok(None);
        }
        let ci = crate::ci::from_process()?;
        if self.from_ci && ci.is_none() {
            return Err(Error::input(
                "--from-ci: neither GITLAB_CI nor GITHUB_ACTIONS is set; pass --branch instead",
            ));
        }
        Ok(ci)
    }

    pub fn input(&self, branch: Option<String>) -> Result<EnvInput> {
        let no_branch = branch.is_none();
        EnvInput {
            branch,
            ..self.flags()
        }
        .with_ci(self.ci(no_branch)?)
    }
}

/// Parse `--ttl` early so a typo fails before any network access.
pub fn check_ttl(ttl: &Option<String>) -> Result<()> {
    ttl.as_deref().map(parse_ttl).transpose().map(|_| ())
}

/// Run as a GitHub App instead of with GITHUB_TOKEN. The private key comes from a file or from
/// FLUX_EPHEMERAL_GITHUB_APP_PRIVATE_KEY, never from the command line.
#[derive(Debug, Clone, Default, Args)]
pub struct GitHubAppArgs {
    /// Talk to GitHub as this GitHub App (its numeric App ID). Each repository's calls use the
    /// token of the installation that holds it; GITHUB_TOKEN is then not needed.
    #[arg(
        long,
        global = true,
        env = "FLUX_EPHEMERAL_GITHUB_APP_ID",
        value_name = "ID"
    )]
    pub github_app_id: Option<u64>,

    /// The GitHub App's private key, PEM (PKCS#1 or PKCS#8), as downloaded from the App's
    /// settings. Or put the key itself in FLUX_EPHEMERAL_GITHUB_APP_PRIVATE_KEY.
    #[arg(
        long,
        global = true,
        env = "FLUX_EPHEMERAL_GITHUB_APP_PRIVATE_KEY_FILE",
        value_name = "FILE"
    )]
    pub github_app_private_key_file: Option<PathBuf>,

    /// The installation to use for a repository whose installation GitHub does not name
    /// [default: the one that holds each repository, asked of GitHub]
    #[arg(
        long,
        global = true,
        env = "FLUX_EPHEMERAL_GITHUB_APP_INSTALLATION_ID",
        value_name = "ID"
    )]
    pub github_app_installation_id: Option<u64>,
}

impl GitHubAppArgs {
    /// The App's credentials, or `None` when no App is configured.
    pub fn credentials(&self) -> Result<Option<crate::forge::github::app::AppCredentials>> {
        let inline = Secret::from_env("FLUX_EPHEMERAL_GITHUB_APP_PRIVATE_KEY");
        let Some(id) = self.github_app_id else {
            if self.github_app_private_key_file.is_some() || inline.is_some() {
                return Err(Error::config(
                    "a GitHub App private key is given but no App ID: set FLUX_EPHEMERAL_GITHUB_APP_ID \
                     (or --github-app-id), the number on the App's settings page",
                ));
            }
            return Ok(None);
        };
        let key = match (&self.github_app_private_key_file, inline) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::input(format!(
                        "cannot read the GitHub App's private key file {}: {}",
                        path.display(),
                        e.kind()
                    ))
                })?;
                Secret::new(text)
            }
            (None, Some(key)) => key,
            (None, None) => {
                return Err(Error::config(format!(
                    "GitHub App {id} has no private key: set FLUX_EPHEMERAL_GITHUB_APP_PRIVATE_KEY_FILE \
                     (or --github-app-private-key-file) to the PEM file from the App's settings, or \
                     FLUX_EPHEMERAL_GITHUB_APP_PRIVATE_KEY to its text"
                )))
            }
        };
        crate::forge::github::app::AppCredentials::new(id, key, self.github_app_installation_id)
            .map(Some)
    }
}
