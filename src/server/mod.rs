//! The webhook service: HTTP routes and the queue in front of the handler.

pub mod http;
