//! The pure core: what a preview is and what to do with it, decided without any I/O — names
//! ([`slug`]), configuration and settings, the events and commands parsed from payloads and
//! comments, the sync files rendered ([`render`]) and read back ([`overlay`]), the planner
//! ([`plan`]), the lifecycle and cleanup decisions, the replies' texts. The edges that do I/O
//! (`git`, `forge`, `flux`, `oci`, `reconcile`) and the layers above (`service`, `server`,
//! `cli`) use it; it uses none of them (`tests/runner/architecture.rs` keeps it so).

pub mod apps;
pub mod artifact_url;
pub mod awake_hours;
pub mod change_filter;
pub mod chatops;
pub mod checks;
pub mod ci;
pub mod cleanup;
pub mod clusters;
pub mod command;
pub mod config;
pub mod environment_filter;
pub mod error;
pub mod events;
pub mod lifecycle;
pub mod model;
pub mod overlay;
pub mod plan;
pub mod previews;
pub mod receiver_type;
pub mod redact;
pub mod render;
pub mod replies;
pub mod settings;
pub mod signatures;
pub mod slug;
pub mod template_guard;
pub mod wait_outcome;
pub mod yaml_quote;
