//! Where previews live: the clusters, each with the instances directory its Flux watches, and
//! the one tree they share in the GitOps repository.
//!
//! Sync files are keyed by their path relative to [`Layout::root`], the deepest directory every
//! cluster's instances directory is under. With one cluster that is its instances directory, so
//! a file is `sync-<key>.yaml` as it always was; with `eu` in `clusters/eu/previews` and `us` in
//! `clusters/us/previews` it is `eu/previews/sync-<key>.yaml`.

use crate::clusters::config::ClusterConfig;
use crate::error::{Error, Result};
use crate::model::file_name;
use crate::overlay::Files;

/// The queue's file, at the root of the GitOps repository unless `queue_file` says otherwise.
pub const DEFAULT_QUEUE_FILE: &str = ".flux-ephemeral-queue.yaml";

/// The name of the one cluster of a configuration without `clusters`.
pub const DEFAULT_CLUSTER: &str = "default";

/// One cluster, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    /// Relative to the repository.
    pub instances_dir: String,
    /// Relative to [`Layout::root`] (empty with one cluster).
    pub rel: String,
    pub max_previews: Option<usize>,
    pub kubeconfig_context: Option<String>,
    pub receiver_url: Option<String>,
}

/// The clusters, the caps and the queue of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub root: String,
    pub clusters: Vec<Cluster>,
    /// `clusters` is configured (else one unnamed cluster, as before it existed).
    pub configured: bool,
    pub max_per_author: Option<usize>,
    /// Sleeping previews count against the caps [default: true].
    pub count_sleeping: bool,
    /// The queue's path in the repository.
    pub queue_file: String,
    /// The clusters this application may use, in order of preference.
    pub allowed: Vec<String>,
}

/// What [`Layout::resolve`] reads.
#[derive(Debug, Clone, Default)]
pub struct LayoutInput<'c> {
    pub instances_dir: Option<&'c str>,
    pub clusters: Option<&'c [ClusterConfig]>,
    pub max_per_author: Option<usize>,
    pub count_sleeping: Option<bool>,
    pub queue_file: Option<&'c str>,
    pub allowed: Option<&'c [String]>,
}

impl Layout {
    /// One cluster watching `dir`: everything as it was before clusters.
    pub fn single(dir: &str) -> Layout {
        Layout {
            root: dir.to_string(),
            clusters: vec![Cluster {
                name: DEFAULT_CLUSTER.into(),
                instances_dir: dir.to_string(),
                rel: String::new(),
                max_previews: None,
                kubeconfig_context: None,
                receiver_url: None,
            }],
            configured: false,
            max_per_author: None,
            count_sleeping: true,
            queue_file: DEFAULT_QUEUE_FILE.into(),
            allowed: vec![DEFAULT_CLUSTER.into()],
        }
    }

    /// Check and resolve the configuration's clusters; `default_dir` serves without them.
    pub fn resolve(input: &LayoutInput, default_dir: &str) -> Result<Layout> {
        let norm = |what: &str, d: &str| {
            crate::config::normalize_dir(d).map_err(|_| {
                Error::config(format!(
                    "{what} {d:?} must be a relative path inside the repository, without '..'"
                ))
            })
        };
        let mut layout = match input.clusters {
            None => Layout::single(&norm(
                "instances_dir",
                input.instances_dir.unwrap_or(default_dir),
            )?),
            Some(list) => {
                if input.instances_dir.is_some() {
                    return Err(Error::config(
                        "instances_dir and clusters are both set: with clusters, each cluster names its own instances_dir; remove the top-level one",
                    ));
                }
                Layout::of_clusters(list, norm)?
            }
        };
        layout.max_per_author = input.max_per_author;
        layout.count_sleeping = input.count_sleeping.unwrap_or(true);
        if let Some(q) = input.queue_file {
            layout.queue_file = norm("queue_file", q)?;
        }
        if let Some(c) = layout
            .clusters
            .iter()
            .find(|c| under(&layout.queue_file, &c.instances_dir))
        {
            return Err(Error::config(format!(
                "queue_file {} is inside cluster {}'s instances_dir, where Flux would apply it; put it elsewhere",
                layout.queue_file, c.name
            )));
        }
        if let Some(allowed) = input.allowed {
            layout.restrict(allowed)?;
        }
        Ok(layout)
    }

    fn of_clusters(
        list: &[ClusterConfig],
        norm: impl Fn(&str, &str) -> Result<String>,
    ) -> Result<Layout> {
        if list.is_empty() {
            return Err(Error::config(
                "clusters is empty: list at least one cluster, or leave the key out",
            ));
        }
        let mut clusters: Vec<Cluster> = Vec::new();
        for c in list {
            if !crate::slug::is_dns_label(&c.name) || c.name.len() > 40 {
                return Err(Error::config(format!(
                    "cluster name {:?} must be lowercase letters, digits and '-', at most 40 characters",
                    c.name
                )));
            }
            let dir = norm(
                &format!("instances_dir of cluster {}", c.name),
                &c.instances_dir,
            )?;
            if let Some(other) = clusters.iter().find(|o| o.name == c.name) {
                return Err(Error::config(format!(
                    "cluster {} is listed twice",
                    other.name
                )));
            }
            if let Some(other) = clusters
                .iter()
                .find(|o| under(&o.instances_dir, &dir) || under(&dir, &o.instances_dir))
            {
                return Err(Error::config(format!(
                    "clusters {} and {} share instances_dir {} (or one is inside the other): each cluster's Flux needs its own",
                    other.name, c.name, dir
                )));
            }
            if c.max_previews == Some(0) {
                return Err(Error::config(format!(
                    "max_previews of cluster {} is 0: no preview could ever go there; remove the cluster or raise it",
                    c.name
                )));
            }
            clusters.push(Cluster {
                name: c.name.clone(),
                instances_dir: dir,
                rel: String::new(),
                max_previews: c.max_previews,
                kubeconfig_context: c.kubeconfig_context.clone().filter(|s| !s.is_empty()),
                receiver_url: c.receiver_url.clone().filter(|s| !s.is_empty()),
            });
        }
        let root = common_dir(clusters.iter().map(|c| c.instances_dir.as_str()));
        for c in &mut clusters {
            c.rel = relative(&c.instances_dir, &root).to_string();
        }
        Ok(Layout {
            root,
            allowed: clusters.iter().map(|c| c.name.clone()).collect(),
            clusters,
            configured: true,
            ..Layout::single(".")
        })
    }

    /// Only `names` (an application's `clusters`), in the configuration's order.
    fn restrict(&mut self, names: &[String]) -> Result<()> {
        if let Some(bad) = names.iter().find(|n| self.named(n).is_none()) {
            return Err(Error::config(format!(
                "the application's clusters names {bad:?}, which is not one of the configured clusters ({})",
                self.names().join(", ")
            )));
        }
        if names.is_empty() {
            return Err(Error::config("an application's clusters list is empty: name at least one cluster, or leave the key out"));
        }
        self.allowed = self
            .clusters
            .iter()
            .filter(|c| names.contains(&c.name))
            .map(|c| c.name.clone())
            .collect();
        Ok(())
    }

    pub fn names(&self) -> Vec<String> {
        self.clusters.iter().map(|c| c.name.clone()).collect()
    }

    pub fn named(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The kubeconfig context of cluster `name` (none: the current context).
    pub fn context(&self, name: Option<&str>) -> Option<&str> {
        self.named(name?)?.kubeconfig_context.as_deref()
    }

    pub fn is_allowed(&self, name: &str) -> bool {
        self.allowed.iter().any(|a| a == name)
    }

    /// The allowed clusters, in order.
    pub fn allowed_clusters(&self) -> impl Iterator<Item = &Cluster> {
        self.clusters.iter().filter(|c| self.is_allowed(&c.name))
    }

    /// The sync file of `key` in `cluster`, relative to the root.
    pub fn file(&self, cluster: &Cluster, key: &str) -> String {
        join(&cluster.rel, &file_name(key))
    }

    /// The cluster a sync file (relative to the root) is in.
    pub fn cluster_of(&self, file: &str) -> Option<&Cluster> {
        let parent = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        self.clusters.iter().find(|c| c.rel == parent)
    }

    /// Where `key`'s sync file is, if anywhere: its cluster and file.
    pub fn find(&self, files: &Files, key: &str) -> Option<(&Cluster, String)> {
        self.clusters.iter().find_map(|c| {
            let f = self.file(c, key);
            files.contains_key(&f).then_some((c, f))
        })
    }

    /// `key`'s sync file, wherever it is: its file and content.
    pub fn lookup<'f>(&self, files: &'f Files, key: &str) -> Option<(String, &'f str)> {
        let (_, f) = self.find(files, key)?;
        let content = files.get(&f)?;
        Some((f, content))
    }

    /// Every environment flux-ephemeral manages, each with its cluster when clusters are
    /// configured.
    pub fn records(&self, files: &Files) -> Vec<crate::model::EnvRecord> {
        let mut records = crate::overlay::records(files);
        if self.configured {
            for r in &mut records {
                r.cluster = self.cluster_of(&r.file).map(|c| c.name.clone());
            }
        }
        records
    }

    /// A file relative to the root, as a path in the repository.
    pub fn repo_path(&self, file: &str) -> String {
        join(&self.root, file)
    }
}

/// `a/b` under `a` (or equal).
fn under(path: &str, dir: &str) -> bool {
    path == dir || path.starts_with(&format!("{dir}/"))
}

fn relative<'p>(path: &'p str, root: &str) -> &'p str {
    if root.is_empty() {
        return path;
    }
    path.strip_prefix(root)
        .map(|r| r.trim_start_matches('/'))
        .unwrap_or(path)
}

pub fn join(dir: &str, file: &str) -> String {
    match (dir.is_empty(), file.is_empty()) {
        (true, _) => file.to_string(),
        (_, true) => dir.to_string(),
        _ => format!("{dir}/{file}"),
    }
}

/// The deepest directory all `dirs` are in (empty: the repository's root). One directory is its
/// own root.
fn common_dir<'d>(mut dirs: impl Iterator<Item = &'d str>) -> String {
    let Some(first) = dirs.next() else {
        return String::new();
    };
    let mut common: Vec<&str> = first.split('/').collect();
    let mut many = false;
    for d in dirs {
        many = true;
        let parts: Vec<&str> = d.split('/').collect();
        let same = common
            .iter()
            .zip(&parts)
            .take_while(|(a, b)| a == b)
            .count();
        common.truncate(same);
    }
    if !many {
        return first.to_string();
    }
    common.join("/")
}

impl Default for Layout {
    /// One cluster whose files are keyed by their names: what the planner's tests use.
    fn default() -> Self {
        Layout::single("")
    }
}

/// Of the directories holding flux-ephemeral's sync files (directory → how many), those that no
/// cluster of `layouts` names: previews Flux still applies that flux-ephemeral no longer sees.
pub fn strays<'d>(
    dirs: &'d std::collections::BTreeMap<String, usize>,
    layouts: &[&Layout],
) -> Vec<(&'d str, usize)> {
    let plain = |d: &str| d.trim_start_matches("./").trim_matches('/').to_string();
    let known: std::collections::HashSet<String> = layouts
        .iter()
        .flat_map(|l| l.clusters.iter().map(|c| plain(&c.instances_dir)))
        .collect();
    dirs.iter()
        .filter(|(d, _)| !known.contains(&plain(d)))
        .map(|(d, n)| (d.as_str(), *n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str, dir: &str, max: Option<usize>) -> ClusterConfig {
        ClusterConfig {
            name: name.into(),
            instances_dir: dir.into(),
            max_previews: max,
            ..ClusterConfig::default()
        }
    }

    fn resolve(list: &[ClusterConfig]) -> Result<Layout> {
        let input = LayoutInput {
            clusters: Some(list),
            ..LayoutInput::default()
        };
        Layout::resolve(&input, "overlays/x")
    }

    #[test]
    fn one_cluster_keeps_the_old_file_names() {
        let l = Layout::resolve(&LayoutInput::default(), "overlays/x").unwrap();
        assert_eq!(l.root, "overlays/x");
        assert_eq!(l.file(&l.clusters[0], "a"), "sync-a.yaml");
        assert_eq!(l.cluster_of("sync-a.yaml").unwrap().name, "default");
        assert!(!l.configured);
    }

    #[test]
    fn files_are_relative_to_the_common_directory() {
        let l = resolve(&[
            cluster("eu", "clusters/eu/previews", Some(2)),
            cluster("us", "clusters/us/previews", None),
        ])
        .unwrap();
        assert_eq!(l.root, "clusters");
        assert_eq!(l.file(&l.clusters[1], "a"), "us/previews/sync-a.yaml");
        assert_eq!(l.cluster_of("eu/previews/sync-a.yaml").unwrap().name, "eu");
        assert!(l.cluster_of("sync-a.yaml").is_none());
        assert_eq!(
            l.repo_path("us/previews/sync-a.yaml"),
            "clusters/us/previews/sync-a.yaml"
        );
        let top = resolve(&[cluster("a", "a", None), cluster("b", "b/c", None)]).unwrap();
        assert_eq!(top.root, "");
        assert_eq!(top.file(&top.clusters[1], "k"), "b/c/sync-k.yaml");
    }

    #[test]
    fn bad_clusters_are_named() {
        let cases: &[(&[ClusterConfig], &str)] = &[
            (&[], "clusters is empty"),
            (&[cluster("EU", "a", None)], "cluster name \"EU\""),
            (
                &[cluster("eu", "../a", None)],
                "instances_dir of cluster eu",
            ),
            (
                &[cluster("eu", "a", None), cluster("eu", "b", None)],
                "listed twice",
            ),
            (
                &[cluster("eu", "a", None), cluster("us", "a/b", None)],
                "share instances_dir",
            ),
            (
                &[cluster("eu", "a", Some(0))],
                "max_previews of cluster eu is 0",
            ),
        ];
        for (list, said) in cases {
            let e = resolve(list).unwrap_err();
            assert!(e.message.contains(said), "{said}: {e}");
        }
        let both = LayoutInput {
            instances_dir: Some("x"),
            clusters: Some(&[cluster("eu", "a", None)]),
            ..LayoutInput::default()
        };
        assert!(Layout::resolve(&both, "d")
            .unwrap_err()
            .message
            .contains("both set"));
    }

    #[test]
    fn an_application_may_restrict_itself() {
        let list = [cluster("eu", "c/eu", None), cluster("us", "c/us", None)];
        let only_us = ["us".to_string()];
        let input = LayoutInput {
            clusters: Some(&list),
            allowed: Some(&only_us),
            ..LayoutInput::default()
        };
        let l = Layout::resolve(&input, "d").unwrap();
        assert_eq!(l.allowed, ["us"]);
        let unknown = ["ap".to_string()];
        let input = LayoutInput {
            allowed: Some(&unknown),
            ..input
        };
        let e = Layout::resolve(&input, "d").unwrap_err();
        assert!(
            e.message.contains("\"ap\"") && e.message.contains("eu, us"),
            "{e}"
        );
    }

    #[test]
    fn the_queue_stays_out_of_what_flux_applies() {
        let list = [cluster("eu", "c/eu", None)];
        let input = LayoutInput {
            clusters: Some(&list),
            queue_file: Some("c/eu/queue.yaml"),
            ..LayoutInput::default()
        };
        assert!(Layout::resolve(&input, "d")
            .unwrap_err()
            .message
            .contains("where Flux would apply it"));
    }

    #[test]
    fn strays_are_the_directories_no_cluster_names() {
        let clusters = [ClusterConfig {
            name: "eu".into(),
            instances_dir: "clusters/eu/previews/".into(),
            ..Default::default()
        }];
        let input = LayoutInput {
            clusters: Some(&clusters),
            ..Default::default()
        };
        let layout = Layout::resolve(&input, "overlays/ephemeral-instances").unwrap();
        let dirs: std::collections::BTreeMap<String, usize> = [
            ("clusters/eu/previews".to_string(), 3),
            ("clusters/ap/previews".to_string(), 2),
        ]
        .into();
        assert_eq!(strays(&dirs, &[&layout]), vec![("clusters/ap/previews", 2)]);
        assert!(strays(&Default::default(), &[&layout]).is_empty());
    }
}
