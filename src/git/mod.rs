//! The Git edge: one store (a local repository, or a mirror of a remote), read a snapshot,
//! write a commit without a working tree, and publish it with compare-and-swap.

pub mod auth;
mod errors;
pub mod location;
mod store;
mod sync_dirs;

pub use auth::Auth;
pub use location::Location;
pub use store::{Published, Store, Tree};
