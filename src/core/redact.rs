//! Keeping secrets out of output: tokens live in [`Secret`], URLs are shown without passwords.

use std::fmt;

/// A token or password. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value of environment variable `name`, if set and not empty.
    pub fn from_env(name: &str) -> Option<Secret> {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Text that came from another system (a registry's error body, a forge's message, a Kubernetes
/// condition), made safe to print: at most `max` characters (then `…`), every control character
/// (newlines too, so nothing can start a CI workflow command such as `::warning::` on a line of its
/// own, and no terminal escape gets through) written as an escape.
pub fn remote_text(text: &str, max: usize) -> String {
    let text = forge_tokens_hidden(text);
    let mut out = String::with_capacity(text.len().min(max) + 8);
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push(' '),
            c if c.is_control()
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&c.escape_unicode().to_string())
            }
            c => out.push(c),
        }
    }
    out
}

/// How much of a remote system's text an error message keeps.
pub const REMOTE_TEXT_MAX: usize = 600;

/// `https://user:token@host/x` → `https://user:***@host/x`, `user:pw@host:path` →
/// `user:***@host:path`, `file://user:pw@host/x` likewise; anything else unchanged.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // scp-like `user[:password]@host:path`: the user info ends at the last `@` before the
        // host's `:`.
        return match url.rsplit_once('@') {
            Some((userinfo, host)) if userinfo.contains(':') => {
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{user}:***@{host}")
            }
            _ => url.to_string(),
        };
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{path}")
            } else if scheme.starts_with("ssh") || scheme.ends_with("ssh") {
                url.to_string()
            } else {
                format!("{scheme}://***@{host}{path}")
            }
        }
        None => url.to_string(),
    }
}

/// GitHub's tokens (`ghp_…`, `ghs_…`, the longer `ghs_<app id>_…`, `github_pat_…`) and GitLab's
/// (`glpat-…`) shown as `***` wherever they appear, whatever their length: text from elsewhere
/// never carries one on.
pub fn forge_tokens_hidden(text: &str) -> std::borrow::Cow<'_, str> {
    static TOKENS: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let re = TOKENS.get_or_init(|| {
        regex::Regex::new(r"\b(gh[pousr]_[A-Za-z0-9_]{16,}|github_pat_[A-Za-z0-9_]{16,}|glpat-[A-Za-z0-9_.-]{16,})").ok()
    });
    match re {
        Some(re) => re.replace_all(text, "***"),
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// Replace every occurrence of `secret` in `text` (for messages that came from elsewhere).
pub fn scrub(text: &str, secret: Option<&Secret>) -> String {
    match secret {
        Some(s) if !s.0.is_empty() => text.replace(&s.0, "***"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(redact_url("https://u:tok@h/x.git"), "https://u:***@h/x.git");
        assert_eq!(redact_url("https://tok@h/x.git"), "https://***@h/x.git");
        assert_eq!(redact_url("ssh://git@h/x.git"), "ssh://git@h/x.git");
        assert_eq!(redact_url("git@h:x.git"), "git@h:x.git");
        assert_eq!(redact_url("/tmp/x"), "/tmp/x");
        assert_eq!(
            redact_url("user:secret@host:org/x.git"),
            "user:***@host:org/x.git"
        );
        assert_eq!(
            redact_url("user:se@cret@host:org/x.git"),
            "user:***@host:org/x.git"
        );
        assert_eq!(
            redact_url("file://user:secret@localhost/srv/x.git"),
            "file://user:***@localhost/srv/x.git"
        );
    }

    #[test]
    fn forge_tokens_of_any_length_are_hidden() {
        let long = format!("ghs_4242_{}", "a1B2".repeat(30));
        let text = format!(
            "refused {long} and ghp_{} and glpat-abcdefghijklmnopqrst",
            "x".repeat(36)
        );
        let shown = remote_text(&text, 1000);
        assert_eq!(shown, "refused *** and *** and ***");
        assert_eq!(
            remote_text("a ghost_writer ghs_short", 100),
            "a ghost_writer ghs_short"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(scrub("token hunter2 leaked", Some(&s)), "token *** leaked");
    }
}
