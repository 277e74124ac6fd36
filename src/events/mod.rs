//! Forge events (webhook payloads) turned into domain events, without I/O.

pub mod gitlab;
