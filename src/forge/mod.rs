//! Forge adapters: the GitHub and GitLab APIs, behind small interfaces.

pub mod github;
pub mod gitlab;
