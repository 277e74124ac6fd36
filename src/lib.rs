//! flux-ephemeral: preview environments for pull/merge requests as Flux sync files in a GitOps
//! repository.
//!
//! The core is pure: [`slug`] names environments, [`render`] turns an [`model::EnvSpec`] into a
//! sync file, [`overlay`] reads what is recorded, [`plan`] decides the changes. The edges are thin:
//! [`git`] reads and writes the repository, [`reconcile`] runs one transaction with retries,
//! [`cli`] parses arguments.

pub mod apps;
pub mod artifact_url;
pub mod awake_hours;
pub mod change_filter;
pub mod chatops;
pub mod checks;
pub mod ci;
pub mod cleanup;
pub mod cli;
pub mod command;
pub mod config;
pub mod error;
pub mod events;
pub mod filter;
pub mod flux;
pub mod forge;
pub mod git;
pub mod lifecycle;
pub mod local_default;
pub mod model;
pub mod oci;
pub mod output;
pub mod overlay;
pub mod plan;
pub mod previews;
pub mod receiver_type;
pub mod reconcile;
pub mod redact;
pub mod render;
pub mod replies;
pub mod server;
pub mod service;
pub mod settings;
pub mod slug;
pub mod template_guard;
pub mod wait_outcome;
pub mod webhook;
pub mod yaml_quote;
