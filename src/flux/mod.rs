//! After a push: notify Flux (a notification-controller Receiver) and wait until the preview is
//! Ready at the pushed revision — from the Kubernetes API, or from the commit statuses Flux's own
//! notification Providers post on the forge.

pub mod forge_status;
pub mod kube_wait;
pub mod readiness;
pub mod receiver;
pub mod targets;

use std::time::Duration;

pub use crate::wait_outcome::{WaitOutcome, WaitState};

/// The default `--timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
