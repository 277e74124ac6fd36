//! The use-cases, with plain inputs: what `handle`, `env`, `deploy`, `destroy`, `cleanup` and
//! `serve` have in common. The command line parses flags into these inputs and prints results;
//! the server feeds them webhook deliveries.

pub mod artifact;
pub mod chatops;
pub mod cleanup;
pub mod clusters;
pub mod confirm;
pub mod deployments;
pub mod doctor;
pub mod environment;
pub mod flux_state;
pub mod forges;
mod gates;
pub mod github_app;
pub mod gitops;
pub mod hook;
pub mod input;
pub mod lifecycle;
pub mod mode;
pub mod notify_wait;
pub mod page_action;
pub mod release;
pub mod resync;
