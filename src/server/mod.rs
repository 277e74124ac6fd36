//! The webhook service: HTTP routes, the journal that makes accepted deliveries durable, the
//! de-duplication of redeliveries, the batching worker, and metrics.

pub mod dedupe;
pub mod guard;
pub mod http;
pub mod job;
pub mod journal;
pub mod metrics;
pub mod page;
pub mod readiness;
pub mod worker;
