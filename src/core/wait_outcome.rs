//! How waiting for Flux ended: ready, failed or timed out, with Flux's words — the outcome the
//! replies, the JSON output and the exit code are made from (pure; `flux` does the waiting).

use serde::Serialize;

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaitOutcome {
    /// `ready`, `failed` or `timed_out`.
    pub state: WaitState,
    pub message: String,
    /// Seconds from the start of the wait.
    pub seconds: f64,
    /// `kubernetes` or `forge`.
    pub via: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitState {
    Ready,
    Failed,
    TimedOut,
}

impl WaitOutcome {
    /// The exit code it maps to: 0 ready, 6 failed in Flux, 7 timed out.
    pub fn exit_code(&self) -> i32 {
        match self.state {
            WaitState::Ready => 0,
            WaitState::Failed => 6,
            WaitState::TimedOut => 7,
        }
    }

    /// The error a wait that ended badly exits with, its outcome already printed (`None` when
    /// ready).
    pub fn error(&self) -> Option<crate::error::Error> {
        use crate::error::{Error, ErrorKind};
        let kind = match self.state {
            WaitState::Ready => return None,
            WaitState::Failed => ErrorKind::FluxFailed,
            WaitState::TimedOut => ErrorKind::WaitTimedOut,
        };
        Some(Error {
            reported: true,
            ..Error::new(kind, self.describe())
        })
    }

    /// One line; Flux's words in it (they come from the cluster or the forge) are cut short and
    /// escaped.
    pub fn describe(&self) -> String {
        let message = crate::redact::remote_text(&self.message, crate::redact::REMOTE_TEXT_MAX);
        match self.state {
            WaitState::Ready => format!("ready in {:.1} s", self.seconds),
            WaitState::Failed => format!("failed in Flux: {message}"),
            WaitState::TimedOut => {
                format!("not ready after {:.0} s: {message}", self.seconds)
            }
        }
    }
}
