//! Flux's verdict on every preview, for the previews page: one list call per kind and namespace
//! (objects labelled `app.kubernetes.io/managed-by: flux-ephemeral`), each preview's source and
//! Kustomization/HelmRelease judged the way `--wait` judges them.

use std::collections::{BTreeMap, HashMap};

use crate::flux::kube_wait::KubeWaiter;
use crate::flux::readiness::{assess, Verdict as Flux};
use crate::flux::targets::{from_sync_file, ObjectRef};
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
        let v = match assess(source.as_ref(), deployer.as_ref(), t.revision.as_deref()) {
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
        };
        out.insert(r.file.clone(), v);
    }
    out
}
