//! flux-ephemeral: preview environments for pull/merge requests as Flux sync files in a GitOps
//! repository.
//!
//! The core is pure: [`slug`] names environments, [`render`] turns an [`model::EnvSpec`] into a
//! sync file, [`overlay`] reads what is recorded, [`plan`] decides the changes. The edges are thin:
//! [`git`] reads and writes the repository, [`reconcile`] runs one transaction with retries,
//! [`cli`] parses arguments.

pub mod cli;
pub mod core;
pub mod flux;
pub mod forge;
pub mod git;
pub mod local_default;
pub mod oci;
pub mod output;
pub mod reconcile;
pub mod server;
pub mod service;

// The core's modules, by their own names too (`crate::model`, `crate::plan`, …).
pub use crate::core::{
    apps, artifact_url, awake_hours, change_filter, chatops, checks, ci, cleanup, clusters,
    command, config, environment_filter, error, events, lifecycle, model, overlay, plan, previews,
    receiver_type, redact, render, replies, settings, signatures, slug, template_guard,
    wait_outcome, yaml_quote,
};
