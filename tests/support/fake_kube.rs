//! A stateful fake Kubernetes API on 127.0.0.1 that serves the Flux objects (discovery, GET,
//! LIST, WATCH) well enough for the `kube` crate and for real `kubectl get` and `kubectl wait`.
//! Tests change objects' status as Flux would; every change is streamed to open watches.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// (group, version, kind, plural)
const KINDS: &[(&str, &str, &str, &str)] = &[
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "GitRepository",
        "gitrepositories",
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "OCIRepository",
        "ocirepositories",
    ),
    (
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
        "kustomizations",
    ),
    (
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
        "helmreleases",
    ),
];

#[derive(Default)]
struct Objects {
    /// (plural, namespace, name) → object
    items: BTreeMap<(String, String, String), Value>,
    rv: u64,
}

#[derive(Clone)]
struct Shared {
    objects: Arc<Mutex<Objects>>,
    events: broadcast::Sender<(String, Value)>,
}

pub struct FakeKube {
    pub port: u16,
    shared: Shared,
}

impl FakeKube {
    /// Serve on a free port from the current tokio runtime.
    pub async fn start() -> FakeKube {
        let (events, _) = broadcast::channel(1024);
        let shared = Shared {
            objects: Arc::new(Mutex::new(Objects::default())),
            events,
        };
        let app = Router::new()
            .route("/version", get(|| async { Json(json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"})) }))
            .route("/api", get(|| async { Json(json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})) }))
            .route("/api/v1", get(|| async { Json(json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": []})) }))
            .route("/apis", get(groups))
            .route("/apis/{group}/{version}", get(resources))
            .route("/apis/{group}/{version}/namespaces/{ns}/{plural}", get(list_or_watch))
            .route("/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}", get(one))
            .fallback(|| async { not_found("not served by the fake") })
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeKube { port, shared }
    }

    /// A kubeconfig for this server, written to `path`.
    pub fn kubeconfig(&self, path: &std::path::Path) {
        super::write(
            path,
            &format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{}\n\
                 users:\n- name: fake\n  user:\n    token: fake-token\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
                 current-context: fake\n",
                self.port
            ),
        );
    }

    /// Create or replace an object (its kind picks the resource); bumps its resourceVersion and
    /// tells every open watch.
    pub fn put(&self, mut obj: Value) {
        let kind = obj["kind"].as_str().unwrap().to_string();
        let plural = KINDS.iter().find(|k| k.2 == kind).unwrap().3.to_string();
        let (ns, name) = (
            obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("flux-system")
                .to_string(),
            obj["metadata"]["name"].as_str().unwrap().to_string(),
        );
        let mut o = self.shared.objects.lock().unwrap();
        o.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(o.rv.to_string());
        obj["metadata"]["namespace"] = json!(ns);
        if obj["metadata"]["uid"].is_null() {
            obj["metadata"]["uid"] = json!(format!("uid-{name}"));
        }
        let existed = o
            .items
            .insert((plural.clone(), ns, name), obj.clone())
            .is_some();
        let kind = if existed { "MODIFIED" } else { "ADDED" };
        let _ = self
            .shared
            .events
            .send((plural, json!({"type": kind, "object": obj})));
    }

    pub fn get(&self, kind: &str, name: &str) -> Option<Value> {
        let plural = KINDS.iter().find(|k| k.2 == kind).unwrap().3;
        self.shared
            .objects
            .lock()
            .unwrap()
            .items
            .get(&(
                plural.to_string(),
                "flux-system".to_string(),
                name.to_string(),
            ))
            .cloned()
    }
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": what, "reason": "NotFound", "code": 404}),
        ),
    )
        .into_response()
}

async fn groups() -> Json<Value> {
    let mut names: Vec<(&str, &str)> = KINDS.iter().map(|k| (k.0, k.1)).collect();
    names.dedup();
    let groups: Vec<Value> = names
        .iter()
        .map(|(g, v)| {
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            json!({"name": g, "versions": [gv], "preferredVersion": gv})
        })
        .collect();
    Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
}

async fn resources(Path((group, version)): Path<(String, String)>) -> Response {
    let list: Vec<Value> = KINDS
        .iter()
        .filter(|k| k.0 == group && k.1 == version)
        .map(|(_, _, kind, plural)| {
            json!({"name": plural, "singularName": kind.to_ascii_lowercase(), "namespaced": true,
                   "kind": kind, "verbs": ["get", "list", "watch"]})
        })
        .collect();
    if list.is_empty() {
        return not_found("no such group");
    }
    Json(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{group}/{version}"), "resources": list}))
        .into_response()
}

async fn one(
    State(s): State<Shared>,
    Path((_, _, ns, plural, name)): Path<(String, String, String, String, String)>,
) -> Response {
    match s.objects.lock().unwrap().items.get(&(plural, ns, name)) {
        Some(o) => Json(o.clone()).into_response(),
        None => not_found("not found"),
    }
}

fn selected(q: &BTreeMap<String, String>, obj: &Value) -> bool {
    match q.get("fieldSelector") {
        Some(sel) => sel.split(',').all(|term| match term.split_once('=') {
            Some(("metadata.name", n)) => obj["metadata"]["name"] == n.trim_start_matches('='),
            Some(("metadata.namespace", n)) => {
                obj["metadata"]["namespace"] == n.trim_start_matches('=')
            }
            _ => true,
        }),
        None => true,
    }
}

async fn list_or_watch(
    State(s): State<Shared>,
    Path((group, version, ns, plural)): Path<(String, String, String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let kind = KINDS
        .iter()
        .find(|k| k.3 == plural)
        .map(|k| k.2)
        .unwrap_or("Unknown");
    let watching = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    let (items, rv) = {
        let o = s.objects.lock().unwrap();
        let items: Vec<Value> = o
            .items
            .iter()
            .filter(|((p, n, _), obj)| *p == plural && *n == ns && selected(&q, obj))
            .map(|(_, obj)| obj.clone())
            .collect();
        (items, o.rv)
    };
    if !watching {
        return Json(
            json!({"kind": format!("{kind}List"), "apiVersion": format!("{group}/{version}"),
                           "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
        )
        .into_response();
    }
    // Events newer than the resourceVersion asked for; from the start when none is given.
    let since: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // A streaming list (kubectl 1.35+ `wait`/`get --watch`: `sendInitialEvents=true`): every
    // object as ADDED, then a BOOKMARK marking the end of the initial events, as the API server
    // sends it (KEP-3157).
    let streaming = q.get("sendInitialEvents").map(String::as_str) == Some("true");
    let mut initial: Vec<Value> = items
        .into_iter()
        .filter(|o| {
            streaming
                || o["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
                    > since
        })
        .map(|o| json!({"type": "ADDED", "object": o}))
        .collect();
    if streaming {
        initial.push(json!({"type": "BOOKMARK", "object": {
            "kind": kind, "apiVersion": format!("{group}/{version}"),
            "metadata": {"resourceVersion": rv.to_string(),
                         "annotations": {"k8s.io/initial-events-end": "true"}}}}));
    }
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .unwrap_or(290u64);
    let rx = s.events.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let q2 = q.clone();
    let later = futures::stream::unfold(rx, move |mut rx| {
        let (plural, ns, q) = (plural.clone(), ns.clone(), q2.clone());
        async move {
            loop {
                let next = tokio::time::timeout_at(deadline, rx.recv()).await;
                match next {
                    Err(_) => return None,
                    Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                    Ok(Ok((p, event))) => {
                        if p == plural
                            && event["object"]["metadata"]["namespace"] == ns.as_str()
                            && selected(&q, &event["object"])
                        {
                            return Some((event, rx));
                        }
                    }
                }
            }
        }
    });
    use futures::StreamExt;
    let stream = futures::stream::iter(initial)
        .chain(later)
        .map(|e| Ok::<_, std::convert::Infallible>(format!("{e}\n")));
    Response::builder()
        .header("Content-Type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// A Flux source with the artifact of `revision` (`sha1:…`), Ready.
pub fn source(kind: &str, name: &str, revision: &str, generation: i64) -> Value {
    let api = "source.toolkit.fluxcd.io/v1";
    json!({"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": "flux-system", "generation": generation},
           "spec": {"interval": "1m"},
           "status": {"observedGeneration": generation, "artifact": {"revision": revision, "digest": "sha256:00"},
                      "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": format!("stored artifact for revision '{revision}'"),
                                      "observedGeneration": generation, "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
}

/// A Kustomization: `ready` is the Ready condition's status, with `reason`; `observed` the
/// status's observedGeneration; the applied and attempted revisions (one argument per status
/// field the tests vary).
#[allow(clippy::too_many_arguments)]
pub fn kustomization(
    name: &str,
    generation: i64,
    observed: i64,
    ready: &str,
    reason: &str,
    message: &str,
    applied: &str,
    attempted: &str,
) -> Value {
    json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
           "metadata": {"name": name, "namespace": "flux-system", "generation": generation},
           "spec": {"interval": "1m", "path": "./", "prune": true, "sourceRef": {"kind": "GitRepository", "name": name}},
           "status": {"observedGeneration": observed, "lastAppliedRevision": applied, "lastAttemptedRevision": attempted,
                      "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message,
                                      "observedGeneration": generation, "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
}
