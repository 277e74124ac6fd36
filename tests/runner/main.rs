//! The integration tests, one binary: a module per area, sharing `support` (the real Git
//! servers, the fakes held to the forges' contracts, the serve harness). The real-Flux suite
//! (`tests/real_flux/`) and the browser suite (`tests/browser.rs`) are binaries of their own.

#[path = "../support/mod.rs"]
mod support;

mod architecture;
mod chatops_github;
mod chatops_gitlab;
mod checks;
mod ci_jobs;
mod cleanup;
mod clusters;
mod concurrency;
mod deploy_destroy;
mod deployments;
mod doctor;
mod examples;
mod filters;
mod fleet;
mod flux;
mod gitea;
mod github_app;
mod handle_gitlab_deployment;
mod kustomize;
mod lifecycle;
mod no_panics;
mod oci;
mod security;
mod serve;
mod serve_service;
mod transports;
mod ui;
