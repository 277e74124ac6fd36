//! Argument groups shared by the subcommands, and how they turn into domain values.

use std::path::PathBuf;

use clap::Args;

use crate::ci::CiContext;
use crate::config::{parse_ttl, FileConfig, Settings};
use crate::error::{Error, Result};
use crate::git::{Auth, Location};
use crate::model::EnvSpec;
use crate::redact::Secret;
use crate::slug::{slugify, validate_slug};

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
    /// The repository location; the demo repository when `--repo` is absent (a dry run does not
    /// create it).
    pub fn location(&self, dry_run: bool) -> Result<Location> {
        match &self.repo {
            Some(r) => Location::parse(r),
            None if dry_run => {
                let path = crate::local_default::existing()?.ok_or_else(|| {
                    Error::input(
                        "no --repo given and the demo repository does not exist yet; a dry run creates nothing: \
                         run once without --dry-run to create it, or pass --repo",
                    )
                })?;
                eprintln!(
                    "note: no --repo given: using the demo GitOps repository {}",
                    path.display()
                );
                Ok(Location::Local(path))
            }
            None => {
                let (path, created) = crate::local_default::ensure()?;
                if created {
                    eprintln!(
                        "note: no --repo given: created the demo GitOps repository {}",
                        path.display()
                    );
                } else {
                    eprintln!(
                        "note: no --repo given: using the demo GitOps repository {}",
                        path.display()
                    );
                }
                Ok(Location::Local(path))
            }
        }
    }

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
        })
    }
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

/// An environment as asked for: flags first, then the CI job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvInput {
    pub branch: Option<String>,
    pub sha: Option<String>,
    pub id: Option<String>,
    pub author: Option<String>,
    pub title: Option<String>,
    pub slug: Option<String>,
    pub environment: Option<String>,
    pub environment_url: Option<String>,
    pub ci_source_url: Option<String>,
    pub fork_clone_url: Option<String>,
    /// A time to live for this environment only (`/deploy-ephemeral ttl=24h`).
    pub ttl: Option<std::time::Duration>,
    /// The CI job's own repository: it picks the application and must be configured.
    pub ci_repository: Option<crate::apps::RepoRef>,
    /// The pushed OCI artifact to deploy instead of the branch.
    pub artifact: Option<crate::model::ArtifactRef>,
}

impl EnvInput {
    /// Where this input comes from, for choosing the application.
    pub fn origin(&self) -> crate::apps::Origin {
        crate::apps::Origin {
            app: None,
            repository: self.ci_repository.clone(),
            ci_repository: self.ci_repository.clone(),
        }
    }
}

impl EnvArgs {
    pub fn input(&self) -> Result<EnvInput> {
        let flags = EnvInput {
            branch: self.branch.clone(),
            sha: self.sha.clone(),
            id: self.id.clone(),
            author: self.author.clone(),
            title: self.title.clone(),
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
    pub fn ci(&self, no_branch: bool) -> Result<Option<CiContext>> {
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

impl EnvInput {
    /// Fill what the flags left open from the CI job.
    pub fn with_ci(self, ci: Option<CiContext>) -> Result<EnvInput> {
        let Some(ci) = ci else { return Ok(self) };
        // A slug from GitLab belongs to GitLab's environment; only take it with that environment.
        let from_env = self.environment.is_none() || self.environment == ci.environment;
        Ok(EnvInput {
            branch: self.branch.or(ci.branch),
            sha: self.sha.or(ci.sha),
            id: self.id.or(ci.id),
            author: self.author.or(ci.author),
            title: self.title.or(ci.title),
            slug: self.slug.or(if from_env { ci.slug } else { None }),
            environment: self.environment.or(ci.environment),
            environment_url: ci.environment_url,
            ci_source_url: ci.source_url,
            fork_clone_url: ci.fork_clone_url,
            ttl: self.ttl,
            ci_repository: ci.repository,
            artifact: self.artifact,
        })
    }

    pub fn branch(&self) -> Result<&str> {
        self.branch.as_deref().ok_or_else(|| {
            Error::input("no branch: pass --branch NAME, or run inside GitLab CI or GitHub Actions (--from-ci)")
        })
    }

    /// The environment's slug: given (GitLab's), or derived from the branch.
    pub fn slug(&self, settings: &Settings) -> Result<String> {
        let budget = settings.slug_budget();
        match &self.slug {
            Some(s) => {
                validate_slug(s, budget)?;
                Ok(s.clone())
            }
            None => slugify(self.branch()?, budget),
        }
    }

    /// Who asks for this environment: the application, its repository and the change.
    pub fn requester(&self, settings: &Settings) -> Result<crate::model::Owner> {
        let app = &settings.application;
        Ok(crate::model::Owner {
            app: Some(app.name.clone()),
            forge: app.forge.clone(),
            repository: app.repository.clone(),
            change: self.id.as_deref().map(check_id).transpose()?,
        })
    }

    pub fn spec(&self, settings: &Settings) -> Result<EnvSpec> {
        if settings.source == crate::config::SourceKind::Oci && self.artifact.is_none() {
            return Err(Error::input(
                "source: oci, but this deploy has no artifact: run it where the manifests are, with --artifact DIR (webhook deliveries and Deployment Hooks cannot pack one)",
            ));
        }
        let source_url = match &self.fork_clone_url {
            Some(fork) if fork.is_empty() => {
                return Err(Error::input(
                    "refused: the pull request's fork was deleted; there is nothing to preview",
                ))
            }
            Some(fork) if settings.allow_forks => Some(fork.clone()),
            Some(fork) => {
                return Err(Error::input(format!(
                    "refused: the pull request comes from a fork ({fork}); set allow_forks: true in .flux-ephemeral.yaml to preview forks"
                )))
            }
            None => settings.source_url.clone().or_else(|| self.ci_source_url.clone()),
        };
        // An artifact is the source itself; the URL then only names where it was built from.
        let source_url =
            match source_url.filter(|s| !s.trim().is_empty()) {
                Some(u) => u,
                None if self.artifact.is_some() => String::new(),
                None => return Err(Error::config(
                    "no source URL: pass --source-url or set source_url in .flux-ephemeral.yaml",
                )),
            };
        let slug = self.slug(settings)?;
        let app = &settings.application;
        Ok(EnvSpec {
            key: app.key(&slug),
            app: Some(app.name.clone()),
            forge: app.forge.clone(),
            repository: app.repository.clone(),
            slug,
            branch: check_branch(self.branch()?)?,
            sha: self.sha.as_deref().map(check_sha).transpose()?,
            id: self.id.as_deref().map(check_id).transpose()?,
            author: self.author.clone().filter(|a| !a.is_empty()),
            title: self.title.clone().filter(|t| !t.is_empty()),
            environment: self.environment.clone(),
            source_url,
            ttl: self.ttl.or(settings.ttl),
            preview_url: self.environment_url.clone().filter(|u| !u.is_empty()),
            artifact: self.artifact.clone(),
        })
    }
}

pub fn check_branch(b: &str) -> Result<String> {
    if b.is_empty() || b.chars().any(char::is_control) {
        return Err(Error::input(format!(
            "branch name {b:?} is empty or has control characters"
        )));
    }
    Ok(b.to_string())
}

pub fn check_sha(s: &str) -> Result<String> {
    let s = s.trim().to_ascii_lowercase();
    if (s.len() == 40 || s.len() == 64) && s.bytes().all(|c| c.is_ascii_hexdigit()) {
        Ok(s)
    } else {
        Err(Error::input(format!(
            "--sha {s:?} is not a full commit id (40 hex digits); Flux needs the full sha"
        )))
    }
}

pub fn check_id(s: &str) -> Result<String> {
    let t = s.trim().trim_start_matches(['#', '!']);
    if !t.is_empty() && t.len() <= 12 && t.bytes().all(|c| c.is_ascii_digit()) {
        Ok(t.to_string())
    } else {
        Err(Error::input(format!(
            "--id {s:?} is not a pull/merge request number"
        )))
    }
}

/// Parse `--ttl` early so a typo fails before any network access.
pub fn check_ttl(ttl: &Option<String>) -> Result<()> {
    ttl.as_deref().map(parse_ttl).transpose().map(|_| ())
}
