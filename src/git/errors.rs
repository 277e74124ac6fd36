//! Turning libgit2 errors into messages that say what to fix, without secrets.

use git2::{ErrorClass, ErrorCode};

use crate::error::Error;
use crate::git::auth::Transcript;
use crate::redact::{redact_url, scrub, Secret};

/// Map a libgit2 error during `what` (e.g. "fetch from X") to our error.
pub fn remote_error(
    e: &git2::Error,
    what: &str,
    url: &str,
    token: Option<&Secret>,
    t: &Transcript,
) -> Error {
    let raw = scrub(&e.message().replace(url, &redact_url(url)), token);
    let server = server_lines(t, token);
    let hint = match (e.code(), e.class()) {
        (ErrorCode::Auth, _) => match t.offered.get() {
            Some("token") => " — the token was refused: check GIT_TOKEN or --token-file and its permissions",
            Some(_) => " — the SSH key was refused: check --ssh-key (or the agent) and that it is a deploy key with write access",
            None => " — set GIT_TOKEN or --token-file (HTTPS) or --ssh-key (SSH)",
        },
        (ErrorCode::Certificate, _) | (_, ErrorClass::Ssl) => {
            " — the server's identity could not be verified: add its host key to ~/.ssh/known_hosts (ssh-keyscan) or fix its TLS certificate"
        }
        (_, ErrorClass::Net | ErrorClass::Os) => " — is the server up and the URL right?",
        (_, ErrorClass::Ssh) if raw.contains("known_hosts") || raw.contains("hostkey") || raw.contains("host key") => {
            " — add the server's host key to ~/.ssh/known_hosts (ssh-keyscan -p PORT HOST)"
        }
        _ => "",
    };
    let mut msg = format!("{what} failed: {raw}{hint}");
    if !server.is_empty() {
        msg.push_str(&format!("\nthe server said:\n{server}"));
    }
    Error::remote(msg)
}

/// What the server printed, one `remote:` line each.
pub fn server_lines(t: &Transcript, token: Option<&Secret>) -> String {
    let text = scrub(&t.remote_messages.borrow(), token);
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("  remote: {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn local_error(e: &git2::Error, what: &str) -> Error {
    Error::internal(format!("{what}: {}", e.message()))
}
