//! The kind of a Flux Receiver (`spec.type`), which decides how a request to it is
//! authenticated (pure; `flux::receiver` sends the requests).

use crate::error::{Error, Result};

/// The Receiver's `spec.type`, which decides how a request is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReceiverType {
    /// The secret path alone.
    Generic,
    /// `X-Signature: sha256=<hex HMAC-SHA256(token, body)>`.
    GenericHmac,
    /// `X-Hub-Signature-256` and `X-GitHub-Event: push`.
    Github,
    /// `X-Gitlab-Token` and `X-Gitlab-Event: Push Hook`.
    Gitlab,
}

impl ReceiverType {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "generic" => Ok(Self::Generic),
            "generic-hmac" => Ok(Self::GenericHmac),
            "github" => Ok(Self::Github),
            "gitlab" => Ok(Self::Gitlab),
            other => Err(Error::config(format!(
                "receiver type {other:?} is not generic, generic-hmac, github or gitlab"
            ))),
        }
    }
}
