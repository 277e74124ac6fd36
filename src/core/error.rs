//! Error kinds and the exit codes they map to.
//!
//! Every error carries a message written for the person who has to fix it. Messages never contain
//! secrets: URLs are redacted with [`crate::redact::redact_url`] before they are put in an error.

use std::fmt;

/// What went wrong, in terms of who has to act. Each kind has its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input (branch name, flag value, payload) is not acceptable. Exit code 1.
    Input,
    /// The request came from somewhere this GitOps repository does not serve (an unconfigured
    /// repository). Exit code 1, like bad input; `handle` reports it as a refused event.
    Refused,
    /// Configuration or template is missing or invalid. Exit code 3.
    Config,
    /// The Git remote could not be reached, refused our credentials or refused the push. Exit code 4.
    Remote,
    /// Another writer kept winning the race to the target branch; nothing was lost. Exit code 5.
    Conflict,
    /// The change landed, but Flux reported the preview failed (`--wait`). Exit code 6.
    FluxFailed,
    /// The change landed, but the preview was not Ready in time (`--wait`). Exit code 7.
    WaitTimedOut,
    /// A bug or an unexpected local failure (disk, libgit2). Exit code 70.
    Internal,
}

impl ErrorKind {
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Input | ErrorKind::Refused => 1,
            ErrorKind::Config => 3,
            ErrorKind::Remote => 4,
            ErrorKind::Conflict => 5,
            ErrorKind::FluxFailed => 6,
            ErrorKind::WaitTimedOut => 7,
            ErrorKind::Internal => 70,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Input => "input",
            ErrorKind::Refused => "refused",
            ErrorKind::Config => "config",
            ErrorKind::Remote => "remote",
            ErrorKind::Conflict => "conflict",
            ErrorKind::FluxFailed => "flux_failed",
            ErrorKind::WaitTimedOut => "timed_out",
            ErrorKind::Internal => "internal",
        }
    }
}

/// The one error type of the crate: a kind and a message that says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// The outcome was already printed (a wait that ended badly): only the exit code is left.
    pub reported: bool,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            reported: false,
        }
    }
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Refused, message)
    }
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Input, message)
    }
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }
    /// A remote system failed. Its message usually quotes that system's words, so it is cut
    /// short and its control characters escaped (see [`crate::redact::remote_text`]).
    pub fn remote(message: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::Remote,
            crate::redact::remote_text(&message.into(), 4 * crate::redact::REMOTE_TEXT_MAX),
        )
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Prefix the message with what was being done.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::internal(format!("I/O error: {e}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
