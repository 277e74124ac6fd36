//! Flux's verdict on every preview, for the previews page: one list call per kind and namespace
//! (objects labelled `app.kubernetes.io/managed-by: flux-ephemeral`), each preview's source and
//! Kustomization/HelmRelease judged the way `--wait` judges them. Without cluster access, Flux's
//! commit statuses on the forge say it instead ([`StatusReads`]).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::flux::kube_wait::KubeWaiter;
use crate::flux::readiness::{assess, Verdict as Flux};
use crate::flux::targets::{from_sync_file, ObjectRef};
use crate::forge::ChangeForge;
use crate::overlay::Files;
use crate::previews::{State, Verdict};

/// File name → Flux's verdict, for the previews whose objects could be read.
pub fn verdicts(kube: &KubeWaiter, files: &Files) -> BTreeMap<String, Verdict> {
    let mut lists: HashMap<(String, String, String), Option<Vec<serde_json::Value>>> =
        HashMap::new();
    let mut find = |r: &ObjectRef| -> Option<serde_json::Value> {
        let key = (r.namespace.clone(), r.api_version.clone(), r.kind.clone());
        let list = lists.entry(key).or_insert_with(|| {
            kube.list(&r.namespace, &r.api_version, &r.kind)
                .map_err(|e| tracing::warn!("previews page: {e}"))
                .ok()
        });
        list.as_ref()?
            .iter()
            .find(|o| o.pointer("/metadata/name").and_then(|n| n.as_str()) == Some(&r.name))
            .cloned()
    };
    let mut out = BTreeMap::new();
    for r in crate::overlay::records(files) {
        let Some(t) = files.get(&r.file).and_then(|c| from_sync_file(c).ok()) else {
            continue;
        };
        let (source, deployer) = (find(&t.source), find(&t.deployer));
        if source.is_none() && deployer.is_none() {
            continue;
        }
        let v = page_verdict(assess(
            source.as_ref(),
            deployer.as_ref(),
            t.revision.as_deref(),
        ));
        out.insert(r.file.clone(), v);
    }
    out
}

/// [`verdicts`] of every cluster's previews, each read through its cluster's context.
pub fn verdicts_in_clusters(
    kube: &crate::flux::kube_wait::KubeClients,
    layout: &crate::clusters::Layout,
    files: &Files,
) -> BTreeMap<String, Verdict> {
    let mut out = BTreeMap::new();
    for cluster in &layout.clusters {
        let Some(client) = kube.get(cluster.kubeconfig_context.as_deref()) else {
            continue;
        };
        let own: Files = files
            .iter()
            .filter(|(f, _)| layout.cluster_of(f).map(|c| &c.name) == Some(&cluster.name))
            .map(|(f, c)| (f.clone(), c.clone()))
            .collect();
        out.extend(verdicts(&client, &own));
    }
    out
}

/// The page's words for what Flux says.
fn page_verdict(v: Flux) -> Verdict {
    match v {
        Flux::Ready => Verdict {
            state: State::Ready,
            message: None,
        },
        Flux::Failed { reason, message } => Verdict {
            state: State::Failed,
            message: Some(crate::redact::remote_text(
                &format!("{reason}: {message}"),
                500,
            )),
        },
        Flux::Pending(why) => Verdict {
            state: State::Reconciling,
            message: Some(crate::redact::remote_text(&why, 300)),
        },
    }
}

/// Where Flux posts its commit statuses for one application's previews: the forge of that
/// application's repository.
pub struct StatusSource<'a> {
    /// The application (previews that record none are of any).
    pub application: &'a str,
    /// `github` or `gitlab`.
    pub forge_name: &'static str,
    /// The repository (`owner/name`, group path) `forge` reads.
    pub repository: &'a str,
    pub forge: &'a dyn ChangeForge,
}

/// A commit's statuses are read again after this long while Flux has not said Ready or failed…
const PENDING_AGE: Duration = Duration::from_secs(60);
/// …and after this long once it has.
const FINAL_AGE: Duration = Duration::from_secs(300);
/// At most this many reads per pass (every 30 s): 1,200 an hour at worst, well inside GitHub's
/// 5,000 per token, however many previews there are.
const READS_PER_PASS: usize = 10;

/// Flux's verdicts as its commit statuses on the forge say them, for `serve` without cluster
/// access, remembered between passes so that the forge is asked rarely.
#[derive(Default)]
pub struct StatusReads {
    /// (file, commit) → what Flux's status said (`None`: no status from Flux yet), and when read.
    seen: HashMap<(String, String), (Option<Verdict>, Instant)>,
}

impl StatusReads {
    /// File name → Flux's verdict, for the previews whose application commit has a status from
    /// Flux. A preview is asked about only on the forge of its own application and repository,
    /// so a sync file naming another repository gets no reads in its name.
    pub fn verdicts(
        &mut self,
        sources: &[StatusSource],
        files: &Files,
        author: Option<&str>,
        now: Instant,
    ) -> BTreeMap<String, Verdict> {
        let records = crate::overlay::records(files);
        self.seen.retain(|(file, sha), _| {
            records
                .iter()
                .any(|r| &r.file == file && r.sha.as_deref() == Some(sha))
        });
        // The stalest first, so that every preview gets its turn when there are many.
        let source_of = |r: &crate::model::EnvRecord| {
            sources.iter().find(|s| {
                r.app.as_deref().is_none_or(|a| a == s.application)
                    && r.forge.as_deref() == Some(s.forge_name)
                    // A GitLab project configured by its numeric id: the application's own.
                    && (r.repository.as_deref() == Some(s.repository)
                        || (r.app.is_some() && s.repository.bytes().all(|b| b.is_ascii_digit())))
            })
        };
        let mut due: Vec<(Option<Instant>, usize)> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let Some(sha) = r.sha.as_deref().filter(|s| crate::events::is_full_sha(s)) else {
                continue;
            };
            if source_of(r).is_none() {
                continue;
            }
            match self.seen.get(&(r.file.clone(), sha.to_string())) {
                Some((v, at)) => {
                    let settled = v.as_ref().is_some_and(|v| v.state != State::Reconciling);
                    let age = if settled { FINAL_AGE } else { PENDING_AGE };
                    if now.saturating_duration_since(*at) >= age {
                        due.push((Some(*at), i));
                    }
                }
                None => due.push((None, i)),
            }
        }
        due.sort();
        for (_, i) in due.into_iter().take(READS_PER_PASS) {
            let r = &records[i];
            let (Some(source), Some(sha)) = (source_of(r), r.sha.as_deref()) else {
                continue;
            };
            let Some(t) = files.get(&r.file).and_then(|c| from_sync_file(c).ok()) else {
                continue;
            };
            match source.forge.commit_statuses(sha) {
                Ok(statuses) => {
                    let v = crate::flux::forge_status::fluxs_status(
                        &statuses,
                        &t.deployer,
                        t.pushed_at,
                        author,
                    )
                    .map(|s| match crate::flux::forge_status::verdict_of(s) {
                        // The status's state is the reason already shown; its text is the news.
                        Flux::Failed { message, .. } => Verdict {
                            state: State::Failed,
                            message: Some(crate::redact::remote_text(&message, 500)),
                        },
                        v => page_verdict(v),
                    });
                    self.seen
                        .insert((r.file.clone(), sha.to_string()), (v, now));
                }
                Err(e) => tracing::warn!("previews page: Flux's commit status: {e}"),
            }
        }
        self.seen
            .iter()
            .filter_map(|((file, _), (v, _))| Some((file.clone(), v.clone()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Result};
    use crate::events::{Actor, Change};
    use crate::forge::{CommitStatus, OpenChange, Status};
    use std::cell::RefCell;

    /// A forge that knows commit statuses and counts the reads.
    #[derive(Default)]
    struct Statuses {
        by_sha: HashMap<String, Vec<CommitStatus>>,
        reads: RefCell<Vec<String>>,
    }

    impl ChangeForge for Statuses {
        fn has_write_access(&self, _: &Actor) -> Result<bool> {
            Err(Error::input("not here"))
        }
        fn read(&self, _: u64) -> Result<Change> {
            Err(Error::input("not here"))
        }
        fn set_status(&self, _: &str, _: Status, _: &str, _: Option<&str>) -> Result<()> {
            Err(Error::input("not here"))
        }
        fn reply(&self, _: u64, _: &str) -> Result<()> {
            Err(Error::input("not here"))
        }
        fn commit_statuses(&self, sha: &str) -> Result<Vec<CommitStatus>> {
            self.reads.borrow_mut().push(sha.to_string());
            Ok(self.by_sha.get(sha).cloned().unwrap_or_default())
        }
        fn open_changes(&self) -> Result<Vec<OpenChange>> {
            Err(Error::input("not here"))
        }
        fn changed_files(&self, _: u64) -> Result<Vec<String>> {
            Err(Error::input("not here"))
        }
    }

    fn sha(n: usize) -> String {
        format!("{:040x}", n + 1)
    }

    /// `count` previews of `repository`, preview `i` at commit `sha(i)`.
    fn files(count: usize, repository: &str) -> Files {
        let r = crate::render::Renderer::builtin(
            "kustomization",
            crate::render::RenderSettings::default(),
        )
        .unwrap();
        (0..count)
            .map(|i| {
                let spec = crate::model::EnvSpec {
                    slug: format!("p{i}"),
                    branch: format!("feature/{i}"),
                    sha: Some(sha(i)),
                    forge: Some("github".into()),
                    repository: Some(repository.into()),
                    source_url: "https://github.com/org/app.git".into(),
                    ..Default::default()
                };
                let out = r.render(&spec, std::time::SystemTime::UNIX_EPOCH).unwrap();
                (format!("sync-p{i}.yaml"), out.content.into())
            })
            .collect()
    }

    fn status(context: &str, state: &str, description: &str, author: &str) -> CommitStatus {
        CommitStatus {
            context: context.into(),
            state: state.into(),
            description: description.into(),
            created_at: Some(std::time::SystemTime::now()),
            author: Some(author.into()),
        }
    }

    fn source(forge: &Statuses) -> StatusSource<'_> {
        StatusSource {
            application: "app",
            forge_name: "github",
            repository: "org/app",
            forge,
        }
    }

    #[test]
    fn fluxs_status_on_the_forge_says_the_state() {
        let mut forge = Statuses::default();
        forge.by_sha.insert(
            sha(0),
            vec![
                status("ci/build", "failure", "not Flux", "ci"),
                status("kustomization/app-p0/1a2b3c4d", "success", "ok", "flux"),
            ],
        );
        forge.by_sha.insert(
            sha(1),
            vec![status(
                "kustomization/app-p1/1a2b3c4d",
                "failure",
                "health check failed <b>",
                "flux",
            )],
        );
        forge.by_sha.insert(
            sha(2),
            vec![status(
                "kustomization/app-p2/1a2b3c4d",
                "pending",
                "progressing",
                "flux",
            )],
        );
        let files = files(4, "org/app");
        let v = StatusReads::default().verdicts(&[source(&forge)], &files, None, Instant::now());
        assert_eq!(v["sync-p0.yaml"].state, State::Ready);
        assert_eq!(v["sync-p1.yaml"].state, State::Failed);
        assert!(v["sync-p1.yaml"]
            .message
            .as_deref()
            .unwrap()
            .contains("health check failed"));
        assert_eq!(v["sync-p2.yaml"].state, State::Reconciling);
        assert!(
            !v.contains_key("sync-p3.yaml"),
            "no status from Flux: committed"
        );

        // Only the Provider's account counts when it is named.
        let v = StatusReads::default().verdicts(
            &[source(&forge)],
            &files,
            Some("someone-else"),
            Instant::now(),
        );
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn a_preview_is_asked_about_only_on_its_own_repository() {
        let forge = Statuses::default();
        let files = files(2, "org/other");
        let v = StatusReads::default().verdicts(&[source(&forge)], &files, None, Instant::now());
        assert!(v.is_empty());
        assert!(
            forge.reads.borrow().is_empty(),
            "read for another repository"
        );
    }

    #[test]
    fn the_forge_is_asked_rarely_and_every_preview_gets_its_turn() {
        let forge = Statuses::default();
        let files = files(25, "org/app");

        let mut reads = StatusReads::default();
        let start = Instant::now();
        let mut at = |secs: u64| {
            forge.reads.borrow_mut().clear();
            reads.verdicts(
                &[source(&forge)],
                &files,
                None,
                start + Duration::from_secs(secs),
            );
            forge.reads.borrow().clone()
        };
        let first = at(0);
        assert_eq!(first.len(), READS_PER_PASS);
        let second = at(30);
        assert_eq!(second.len(), READS_PER_PASS);
        assert!(
            second.iter().all(|s| !first.contains(s)),
            "the same ones again"
        );
        assert_eq!(at(45).len(), 5, "the last five");
        assert!(at(50).is_empty(), "nothing is due a minute after its read");
        let again = at(60);
        assert_eq!(again, first, "the stalest first");
    }
}
