//! End to end on a real Flux: the stack `scripts/real-flux.sh start DIR` runs (etcd,
//! kube-apiserver, kube-controller-manager, kube-scheduler, kwok with one fake node, and Flux's
//! source-, kustomize-, helm- and notification-controller), named by FLUX_EPHEMERAL_REAL_FLUX=DIR
//! (`scripts/test.sh` starts it and sets it). Without it each test is skipped with a reason;
//! FLUX_EPHEMERAL_REQUIRE_SERVERS=1 (CI) makes that a failure. Every test has its own GitOps and
//! application repositories (smart HTTP on 127.0.0.1) and its own Flux namespace, so they run in
//! parallel on one cluster.

#[path = "../support/mod.rs"]
mod support;

mod clusters;
mod fleet;
mod gitea;
mod kustomize;
mod notify;
mod page;
mod sleep;
mod sources;
