//! Applications: one GitOps repository takes previews for many application repositories. Which
//! application an event, a CI job or a command is for, whether its repository is one this GitOps
//! repository serves at all, and the settings that apply. Pure: no I/O.

use crate::config::FileConfig;
use crate::error::{Error, Result};
use crate::events::{Forge, RepoRef};

/// Where a run comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// `--app NAME`: an application of the list (without a list: the object name prefix).
    pub app: Option<String>,
    /// The repository an event or a CI job comes from.
    pub repository: Option<RepoRef>,
    /// In CI, the pipeline's own repository: accepted when no repository is configured.
    pub ci_repository: Option<RepoRef>,
}

/// The application a run is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub name: String,
    /// Listed under `applications`: its sync files are `sync-<name>-<slug>.yaml`.
    pub listed: bool,
    /// The repositories it takes previews for (empty: any, for a plain command).
    pub repositories: Vec<String>,
    /// The owner recorded on its environments: forge and repository.
    pub forge: Option<String>,
    pub repository: Option<String>,
    /// The clusters it may use, when it restricts itself.
    pub clusters: Option<Vec<String>>,
}

impl Application {
    /// The sync file key of the environment `slug`: `<name>-<slug>` for a listed application.
    pub fn key(&self, slug: &str) -> Option<String> {
        self.listed.then(|| format!("{}-{slug}", self.name))
    }
}

/// `org/app` from `https://host/org/app.git`, `ssh://git@host:22/org/app.git`, `git@host:org/app`.
pub fn repository_of_url(url: &str) -> Option<String> {
    let rest = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/')?.1,
        None => url.split_once(':')?.1,
    };
    let path = rest
        .trim_matches('/')
        .trim_end_matches(".git")
        .trim_matches('/');
    (path.contains('/')).then(|| path.to_string())
}

impl crate::config::AppConfig {
    /// Whether events and jobs of `r` belong to this application.
    pub fn serves(&self, r: &RepoRef) -> bool {
        let configured = match r.forge {
            Forge::GitHub => &self.github_repository,
            Forge::GitLab => &self.gitlab_project,
            Forge::Gitea => &self.gitea_repository,
        };
        configured.as_deref().is_some_and(|c| r.matches(c))
    }
}

/// Choose the application and merge its settings: defaults < file < application < flags. An
/// origin whose repository is not configured is refused.
pub fn select(
    file: FileConfig,
    flags: FileConfig,
    origin: &Origin,
) -> Result<(FileConfig, Application)> {
    let mut file = file;
    match file.applications.take() {
        Some(list) => listed(file, list, flags, origin),
        None => single(file.overlay(flags), origin),
    }
}

fn listed(
    top: FileConfig,
    list: Vec<crate::config::AppConfig>,
    flags: FileConfig,
    origin: &Origin,
) -> Result<(FileConfig, Application)> {
    let names = || {
        list.iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let app = match (&origin.app, &origin.repository) {
        (Some(name), repo) => {
            let app = list.iter().find(|a| &a.name == name).ok_or_else(|| {
                Error::input(format!(
                    "no application {name:?} in .flux-ephemeral.yaml (its applications: {})",
                    names()
                ))
            })?;
            if let Some(r) = repo.as_ref().filter(|r| !app.serves(r)) {
                return Err(refusal(r, &format!("application {name}")));
            }
            app
        }
        (None, Some(r)) => list
            .iter()
            .find(|a| a.serves(r))
            .ok_or_else(|| refusal(r, &format!("the applications {}", names())))?,
        (None, None) => {
            return Err(Error::input(format!(
                "this GitOps repository serves several applications ({}): pass --app NAME",
                names()
            )))
        }
    };
    let flags = FileConfig { app: None, ..flags };
    let mut merged = top.overlay(app.settings()).overlay(flags);
    merged.app = Some(app.name.clone());
    let (forge, repository) = match (&origin.repository, app.repository()) {
        (Some(r), _) => (Some(r.forge_name().to_string()), Some(r.path.clone())),
        (None, Some((f, r))) => (Some(f.to_string()), Some(r)),
        (None, None) => (None, None),
    };
    Ok((
        merged,
        Application {
            name: app.name.clone(),
            listed: true,
            repositories: app.repository().into_iter().map(|r| r.1).collect(),
            forge,
            repository,
            clusters: app.clusters.clone(),
        },
    ))
}

fn single(merged: FileConfig, origin: &Origin) -> Result<(FileConfig, Application)> {
    let mut repositories: Vec<String> = [
        merged.github_repository.clone(),
        merged.gitlab_project.clone(),
        merged.gitea_repository.clone(),
        merged.source_url.as_deref().and_then(repository_of_url),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Nothing configured: in CI, the pipeline's own repository.
    if let (Some(own), true) = (&origin.ci_repository, repositories.is_empty()) {
        repositories.push(own.path.clone());
        repositories.extend(own.id.map(|i| i.to_string()));
    }
    if let Some(r) = &origin.repository {
        if !repositories.iter().any(|c| r.matches(c)) {
            let configured = if repositories.is_empty() {
                "no repository (set github_repository, gitlab_project, gitea_repository or source_url, or list applications)".to_string()
            } else {
                repositories.join(", ")
            };
            return Err(refusal(r, &configured));
        }
    }
    let recorded = origin
        .repository
        .clone()
        .or_else(|| origin.ci_repository.clone())
        .map(|r| (Some(r.forge_name().to_string()), r.path))
        .or_else(|| {
            merged
                .github_repository
                .clone()
                .map(|r| (Some("github".into()), r))
        })
        .or_else(|| {
            merged
                .gitlab_project
                .clone()
                .map(|r| (Some("gitlab".into()), r))
        })
        .or_else(|| {
            merged
                .gitea_repository
                .clone()
                .map(|r| (Some("gitea".into()), r))
        });
    let name = merged.app.clone().unwrap_or_else(|| "app".into());
    Ok((
        merged,
        Application {
            name,
            listed: false,
            repositories,
            forge: recorded.as_ref().and_then(|r| r.0.clone()),
            repository: recorded.map(|r| r.1),
            clusters: None,
        },
    ))
}

fn refusal(r: &RepoRef, configured: &str) -> Error {
    Error::refused(format!(
        "refused: {} repository {} is not one this GitOps repository takes previews for (configured: {configured}); nothing was changed",
        r.forge_name(),
        r.path
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AppConfig;

    fn gh(path: &str) -> RepoRef {
        RepoRef {
            forge: Forge::GitHub,
            path: path.into(),
            id: None,
        }
    }

    fn fleet() -> FileConfig {
        FileConfig {
            source_url: Some("https://git.example.com/org/default.git".into()),
            ttl: Some("72h".into()),
            applications: Some(vec![
                AppConfig {
                    name: "web".into(),
                    github_repository: Some("org/web".into()),
                    ttl: Some("24h".into()),
                    ..AppConfig::default()
                },
                AppConfig {
                    name: "api".into(),
                    gitlab_project: Some("42".into()),
                    source_url: Some("https://gitlab.example.com/org/api.git".into()),
                    ..AppConfig::default()
                },
            ]),
            ..FileConfig::default()
        }
    }

    #[test]
    fn urls() {
        for (url, want) in [
            ("https://github.com/org/app.git", Some("org/app")),
            (
                "https://gitlab.example.com/group/sub/app",
                Some("group/sub/app"),
            ),
            ("ssh://git@host:22/org/app.git", Some("org/app")),
            ("git@github.com:org/app.git", Some("org/app")),
            ("https://host/app.git", None),
            ("x", None),
        ] {
            assert_eq!(repository_of_url(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn the_application_comes_from_the_repository_or_the_flag() {
        let o = Origin {
            repository: Some(gh("Org/Web")),
            ..Origin::default()
        };
        let (merged, app) = select(fleet(), FileConfig::default(), &o).unwrap();
        assert_eq!(app.name, "web");
        assert!(app.listed);
        assert_eq!(app.key("x").as_deref(), Some("web-x"));
        assert_eq!(
            merged.ttl.as_deref(),
            Some("24h"),
            "the application's own ttl"
        );
        assert_eq!(merged.app.as_deref(), Some("web"));
        assert_eq!(app.repository.as_deref(), Some("Org/Web"));
        let gl = Origin {
            repository: Some(RepoRef {
                forge: Forge::GitLab,
                path: "org/api".into(),
                id: Some(42),
            }),
            ..Origin::default()
        };
        let (merged, app) = select(fleet(), FileConfig::default(), &gl).unwrap();
        assert_eq!(app.name, "api");
        assert_eq!(merged.ttl.as_deref(), Some("72h"), "the top-level default");
        let by_flag = Origin {
            app: Some("api".into()),
            ..Origin::default()
        };
        assert_eq!(
            select(fleet(), FileConfig::default(), &by_flag)
                .unwrap()
                .1
                .name,
            "api"
        );
    }

    #[test]
    fn unconfigured_repositories_are_refused() {
        let stranger = Origin {
            repository: Some(gh("mallory/playground")),
            ..Origin::default()
        };
        let e = select(fleet(), FileConfig::default(), &stranger).unwrap_err();
        assert!(e.message.contains("mallory/playground"), "{e}");
        assert!(select(fleet(), FileConfig::default(), &Origin::default())
            .unwrap_err()
            .message
            .contains("--app"));
        let wrong_app = Origin {
            app: Some("api".into()),
            repository: Some(gh("org/web")),
            ..Origin::default()
        };
        assert!(select(fleet(), FileConfig::default(), &wrong_app).is_err());
        // Without a list: the repository of github_repository / gitlab_project / source_url.
        let single = FileConfig {
            source_url: Some("https://github.com/org/app.git".into()),
            ..FileConfig::default()
        };
        assert!(select(single.clone(), FileConfig::default(), &stranger).is_err());
        let ok = Origin {
            repository: Some(gh("org/app")),
            ..Origin::default()
        };
        let (_, app) = select(single, FileConfig::default(), &ok).unwrap();
        assert!(!app.listed);
        assert_eq!(app.key("x"), None);
        // Nothing configured: in CI the pipeline's own repository, else nothing.
        let bare = FileConfig::default();
        assert!(select(bare.clone(), FileConfig::default(), &ok).is_err());
        let in_ci = Origin {
            ci_repository: Some(gh("org/app")),
            ..ok
        };
        assert!(select(bare, FileConfig::default(), &in_ci).is_ok());
        // A job of another repository than the configured one is refused.
        let web = FileConfig {
            github_repository: Some("org/web".into()),
            ..FileConfig::default()
        };
        let api_job = Origin {
            repository: Some(gh("org/api")),
            ci_repository: Some(gh("org/api")),
            ..Origin::default()
        };
        assert!(select(web, FileConfig::default(), &api_job).is_err());
    }
}
