//! Waiting through the Kubernetes API: watch the preview's source and its Kustomization (or
//! HelmRelease) as dynamic objects and assess every change, so Ready is noticed as Flux reports it.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::{watcher, WatchStreamExt};

use super::readiness::{assess, Verdict};
use super::targets::{ObjectRef, Targets};
use super::{WaitOutcome, WaitState};
use crate::error::{Error, Result};

/// A Kubernetes client, when there is a cluster to ask: `--kubeconfig`, `KUBECONFIG`,
/// `~/.kube/config`, or the in-cluster service account (a GitLab agent's CI context is a
/// kubeconfig context too).
pub struct KubeWaiter {
    client: kube::Client,
    runtime: tokio::runtime::Runtime,
}

impl KubeWaiter {
    /// `None` when no cluster credentials are available at all. `context`: the kubeconfig
    /// context of the cluster to ask (else the current one).
    pub fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Option<KubeWaiter>> {
        let available = kubeconfig.is_some()
            || std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty())
            || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
            || std::env::var_os("HOME")
                .is_some_and(|h| Path::new(&h).join(".kube/config").exists());
        if !available {
            return Ok(None);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("tokio: {e}")))?;
        let options = kube::config::KubeConfigOptions {
            context: context.map(str::to_string),
            ..Default::default()
        };
        let client = runtime.block_on(async {
            let config = match (kubeconfig, context) {
                (Some(path), _) => {
                    let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                        Error::config(format!("--kubeconfig {}: {e}", path.display()))
                    })?;
                    kube::Config::from_custom_kubeconfig(kc, &options)
                        .await
                        .map_err(|e| {
                            Error::config(format!("--kubeconfig {}: {e}", path.display()))
                        })?
                }
                (None, Some(c)) => kube::Config::from_kubeconfig(&options)
                    .await
                    .map_err(|e| Error::config(format!("kubeconfig context {c:?}: {e}")))?,
                (None, None) => kube::Config::infer()
                    .await
                    .map_err(|e| Error::config(format!("Kubernetes credentials: {e}")))?,
            };
            kube::Client::try_from(config)
                .map_err(|e| Error::config(format!("Kubernetes client: {e}")))
        })?;
        Ok(Some(KubeWaiter { client, runtime }))
    }

    /// The API server's version: it answers with these credentials.
    pub fn server_version(&self) -> Result<String> {
        self.runtime
            .block_on(self.client.apiserver_version())
            .map(|v| v.git_version)
            .map_err(|e| Error::remote(format!("the Kubernetes API server: {e}")))
    }

    /// Watch until the preview is Ready at the revision, fails in Flux, or `timeout` passes.
    pub fn wait(&self, targets: &Targets, timeout: Duration) -> Result<WaitOutcome> {
        let start = Instant::now();
        let revision = targets.revision.as_deref();
        let outcome = |state, message: String| WaitOutcome {
            state,
            message,
            seconds: start.elapsed().as_secs_f64(),
            via: "kubernetes",
        };
        self.runtime.block_on(async {
            let source = self.watch(&targets.source).map(|e| (true, e)).boxed();
            let deployer = self.watch(&targets.deployer).map(|e| (false, e)).boxed();
            let mut events = futures::stream::select(source, deployer);
            let (mut src, mut dep): (Option<serde_json::Value>, Option<serde_json::Value>) =
                (None, None);
            let mut last = "nothing seen yet".to_string();
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => return Ok(outcome(WaitState::TimedOut, last)),
                    next = events.next() => {
                        let Some((is_source, event)) = next else {
                            return Ok(outcome(WaitState::TimedOut, last));
                        };
                        match event {
                            Ok(obj) => {
                                let v = serde_json::to_value(&obj).ok();
                                if is_source { src = v } else { dep = v }
                            }
                            Err(e) => {
                                tracing::debug!("watch: {}", crate::redact::remote_text(&e.to_string(), crate::redact::REMOTE_TEXT_MAX));
                                last = format!("watching failed: {e}");
                                continue;
                            }
                        }
                        match assess(src.as_ref(), dep.as_ref(), revision) {
                            Verdict::Ready => return Ok(outcome(WaitState::Ready, "Ready".into())),
                            Verdict::Failed { reason, message } => {
                                return Ok(outcome(WaitState::Failed, format!("{reason}: {message}")))
                            }
                            Verdict::Pending(why) => {
                                tracing::debug!("{}", crate::redact::remote_text(&why, crate::redact::REMOTE_TEXT_MAX));
                                last = why;
                            }
                        }
                    }
                }
            }
        })
    }

    /// Every object of `kind` in `namespace` that flux-ephemeral made (labelled
    /// `app.kubernetes.io/managed-by: flux-ephemeral`), as JSON.
    pub fn list(
        &self,
        namespace: &str,
        api_version: &str,
        kind: &str,
    ) -> Result<Vec<serde_json::Value>> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let resource = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: api_version.into(),
            kind: kind.into(),
            plural: plural(kind),
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let params =
            kube::api::ListParams::default().labels("app.kubernetes.io/managed-by=flux-ephemeral");
        let list = self
            .runtime
            .block_on(api.list(&params))
            .map_err(|e| Error::remote(format!("the Kubernetes API server: list {kind}: {e}")))?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect())
    }

    /// The object's states as they change (the first is its current state).
    fn watch(
        &self,
        r: &ObjectRef,
    ) -> impl futures::Stream<Item = std::result::Result<DynamicObject, watcher::Error>> + Send + 'static
    {
        let (group, version) = r
            .api_version
            .split_once('/')
            .unwrap_or(("", r.api_version.as_str()));
        let resource = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            plural: plural(&r.kind),
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &r.namespace, &resource);
        let config = watcher::Config::default().fields(&format!("metadata.name={}", r.name));
        watcher(api, config)
            .default_backoff()
            .applied_objects()
            .into_stream()
    }
}

/// The resource name of a kind: `GitRepository` → `gitrepositories`, `Kustomization` →
/// `kustomizations`.
fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    match lower.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{lower}s"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn plurals() {
        for (kind, want) in [
            ("GitRepository", "gitrepositories"),
            ("OCIRepository", "ocirepositories"),
            ("Kustomization", "kustomizations"),
            ("HelmRelease", "helmreleases"),
        ] {
            assert_eq!(super::plural(kind), want);
        }
    }
}

/// One client per kubeconfig context, connected when first asked for: `serve` reads every
/// cluster's previews through its own context.
#[derive(Default)]
pub struct KubeClients {
    clients: std::sync::Mutex<
        std::collections::HashMap<Option<String>, Option<std::sync::Arc<KubeWaiter>>>,
    >,
}

impl KubeClients {
    /// Start with the current context's client.
    pub fn with_default(default: KubeWaiter) -> Self {
        let clients = KubeClients::default();
        if let Ok(mut map) = clients.clients.lock() {
            map.insert(None, Some(std::sync::Arc::new(default)));
        }
        clients
    }

    /// The client of `context` (none: the current context); `None` when it cannot connect (said
    /// once in the log).
    pub fn get(&self, context: Option<&str>) -> Option<std::sync::Arc<KubeWaiter>> {
        let mut map = self.clients.lock().ok()?;
        map.entry(context.map(str::to_string))
            .or_insert_with(|| match KubeWaiter::connect(None, context) {
                Ok(k) => k.map(std::sync::Arc::new),
                Err(e) => {
                    tracing::warn!(context, "no access to this cluster: {e}");
                    None
                }
            })
            .clone()
    }
}
