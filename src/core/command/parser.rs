//! The comment parser: a comment body → at most one command. No I/O.
//!
//! A command is a line that starts with `/deploy-ephemeral` or `/destroy-ephemeral` (configurable),
//! outside fenced or indented code blocks and outside `>` quotes. `deploy` takes `ttl=DURATION`;
//! `help` after either command asks for usage. Lines that look like one of our commands but are
//! not (`/deploy-ephemera`, `/destroy-now`) get a "did you mean"; other bots' commands are ignored.

use std::fmt;

/// The command words, e.g. `/deploy-ephemeral` and `/destroy-ephemeral`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefixes {
    pub deploy: String,
    pub destroy: String,
    pub extend: String,
    pub sleep: String,
    pub wake: String,
}

impl Default for Prefixes {
    fn default() -> Self {
        Prefixes {
            deploy: "/deploy-ephemeral".into(),
            destroy: "/destroy-ephemeral".into(),
            extend: "/extend-ephemeral".into(),
            sleep: "/sleep-ephemeral".into(),
            wake: "/wake-ephemeral".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Deploy {
        ttl: Option<String>,
        /// `cluster=NAME`: the cluster to deploy to (or to move the preview to).
        cluster: Option<String>,
    },
    Destroy,
    /// Keep the preview longer: its expiry becomes now + the duration (default: its time to
    /// live), bounded by `max_ttl`.
    Extend {
        duration: Option<String>,
    },
    /// Scale the preview to zero now.
    Sleep,
    /// Scale it back up.
    Wake,
    Help,
}

impl Command {
    /// The previews page's buttons, the same commands as the comments': `extend` (to the time
    /// to live), `sleep`, `wake`, `destroy`.
    pub const BUTTONS: [&'static str; 4] = ["extend", "sleep", "wake", "destroy"];

    /// The command a button of the previews page stands for.
    pub fn of_button(name: &str) -> Option<Command> {
        match name {
            "extend" => Some(Command::Extend { duration: None }),
            "sleep" => Some(Command::Sleep),
            "wake" => Some(Command::Wake),
            "destroy" => Some(Command::Destroy),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A word that looks like one of ours, with the closest command.
    Unknown {
        word: String,
        suggestion: String,
    },
    UnknownArgument {
        command: String,
        argument: String,
        takes: &'static str,
    },
    BadTtl {
        value: String,
    },
    /// `cluster=` with something that cannot be a cluster's name.
    BadCluster {
        value: String,
    },
    /// `/extend-ephemeral` with something that is not a usable duration.
    BadDuration {
        command: String,
        value: String,
    },
    MoreThanOne,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Unknown { word, suggestion } => {
                write!(f, "unknown command `{word}`; did you mean `{suggestion}`?")
            }
            ParseError::UnknownArgument {
                command,
                argument,
                takes,
            } => {
                write!(
                    f,
                    "`{command}` does not take `{argument}` (it takes {takes})"
                )
            }
            ParseError::BadTtl { value } => {
                write!(
                    f,
                    "`ttl={value}` is not a duration of a minute or more like `24h` or `3d`"
                )
            }
            ParseError::BadCluster { value } => write!(
                f,
                "`cluster={value}` is not a cluster name (lowercase letters, digits and `-`)"
            ),
            ParseError::BadDuration { command, value } => write!(
                f,
                "`{value}` is not a duration for `{command}`: give a number and a unit, a minute \
                 or more, like `{command} 2d` or `{command} 12h` (at most the configured max_ttl)"
            ),
            ParseError::MoreThanOne => write!(f, "one command per comment, please"),
        }
    }
}

/// The command in `body`, if any.
pub fn parse(body: &str, p: &Prefixes) -> Option<Result<Command, ParseError>> {
    let mut found: Vec<Result<Command, ParseError>> = Vec::new();
    let mut fence: Option<Fence> = None;
    let visible = without_html_comments(body);
    for raw in visible.lines() {
        if let Some(open) = fence {
            if open.closed_by(raw) {
                fence = None;
            }
            continue;
        }
        if let Some(open) = Fence::opened_by(raw) {
            fence = Some(open);
            continue;
        }
        let trimmed = raw.trim_start();
        if indented_code(raw) || trimmed.starts_with('>') {
            continue;
        }
        if let Some(result) = parse_line(trimmed.trim_end(), p) {
            found.push(result);
        }
    }
    match found.len() {
        0 => None,
        1 => found.pop(),
        _ => Some(Err(ParseError::MoreThanOne)),
    }
}

/// `body` without its HTML comments (`<!-- … -->`, an unclosed one to the end): invisible when
/// rendered, so nothing in them is a command.
fn without_html_comments(body: &str) -> std::borrow::Cow<'_, str> {
    if !body.contains("<!--") {
        return std::borrow::Cow::Borrowed(body);
    }
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        match rest[start + 4..].find("-->") {
            Some(end) => rest = &rest[start + 4 + end + 3..],
            None => rest = "",
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// A CommonMark code fence: three or more backticks or tildes, indented at most three spaces. It
/// closes only with a run of the same character at least as long, and nothing else on the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fence {
    ch: char,
    len: usize,
}

impl Fence {
    fn opened_by(line: &str) -> Option<Fence> {
        let rest = strip_fence_indent(line)?;
        let ch = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
        let len = rest.chars().take_while(|c| *c == ch).count();
        // A backtick fence's info string may not hold a backtick (that is inline code).
        let info = &rest[len..];
        (len >= 3 && !(ch == '`' && info.contains('`'))).then_some(Fence { ch, len })
    }

    fn closed_by(&self, line: &str) -> bool {
        let Some(rest) = strip_fence_indent(line) else {
            return false;
        };
        let len = rest.chars().take_while(|c| *c == self.ch).count();
        len >= self.len && rest[len..].trim().is_empty()
    }
}

/// The line without up to three leading spaces; `None` when it is indented further (code).
fn strip_fence_indent(line: &str) -> Option<&str> {
    let spaces = line.bytes().take_while(|b| *b == b' ').count();
    (spaces <= 3 && !line[spaces..].starts_with('\t')).then(|| &line[spaces..])
}

/// An indented code block line: four spaces or a tab before any text.
fn indented_code(line: &str) -> bool {
    let lead: String = line
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect();
    lead.contains('\t') || lead.len() >= 4
}

fn parse_line(line: &str, p: &Prefixes) -> Option<Result<Command, ParseError>> {
    let mut words = line.split_whitespace();
    let first = words.next()?;
    let args: Vec<&str> = words.collect();
    if first == p.deploy {
        return Some(deploy_args(first, &args));
    }
    if first == p.destroy {
        return Some(match args.as_slice() {
            [] => Ok(Command::Destroy),
            ["help"] => Ok(Command::Help),
            [arg, ..] => Err(ParseError::UnknownArgument {
                command: first.into(),
                argument: (*arg).into(),
                takes: "only `help`",
            }),
        });
    }
    if first == p.extend {
        return Some(match args.as_slice() {
            [] => Ok(Command::Extend { duration: None }),
            ["help"] => Ok(Command::Help),
            [d] if crate::config::parse_ttl(d).is_ok() => Ok(Command::Extend {
                duration: Some((*d).to_string()),
            }),
            [d] => Err(ParseError::BadDuration {
                command: first.into(),
                value: (*d).into(),
            }),
            [_, arg, ..] => Err(ParseError::UnknownArgument {
                command: first.into(),
                argument: (*arg).into(),
                takes: "one duration like `2d`, or `help`",
            }),
        });
    }
    for (word, command) in [(&p.sleep, Command::Sleep), (&p.wake, Command::Wake)] {
        if first == word {
            return Some(match args.as_slice() {
                [] => Ok(command),
                ["help"] => Ok(Command::Help),
                [arg, ..] => Err(ParseError::UnknownArgument {
                    command: first.into(),
                    argument: (*arg).into(),
                    takes: "only `help`",
                }),
            });
        }
    }
    // Something like ours: same leading word (`/deploy-…`) or a small typo of a whole command.
    let lower = first.to_lowercase();
    let stem = |c: &str| c.split('-').next().unwrap_or(c).to_string() + "-";
    let candidates = [&p.deploy, &p.destroy, &p.extend, &p.sleep, &p.wake];
    let best = candidates
        .iter()
        .min_by_key(|c| strsim::levenshtein(&lower, c))
        .expect("five candidates");
    let close = strsim::levenshtein(&lower, best) <= 3
        || candidates.iter().any(|c| lower.starts_with(&stem(c)));
    if first.starts_with('/') && close {
        return Some(Err(ParseError::Unknown {
            word: first.into(),
            suggestion: (*best).clone(),
        }));
    }
    None
}

fn deploy_args(command: &str, args: &[&str]) -> Result<Command, ParseError> {
    if args == ["help"] {
        return Ok(Command::Help);
    }
    let mut ttl = None;
    let mut cluster = None;
    for arg in args {
        match arg.split_once('=') {
            Some(("cluster", value)) if crate::slug::is_dns_label(value) && value.len() <= 40 => {
                cluster = Some(value.to_string())
            }
            Some(("cluster", value)) => {
                return Err(ParseError::BadCluster {
                    value: value.chars().take(64).collect(),
                })
            }
            // Too long is answered later, naming the configured maximum.
            Some(("ttl", value))
                if humantime::parse_duration(value).is_ok_and(|d| d >= crate::config::MIN_TTL) =>
            {
                ttl = Some(value.to_string())
            }
            Some(("ttl", value)) => {
                return Err(ParseError::BadTtl {
                    value: value.into(),
                })
            }
            _ => {
                let takes = "`ttl=DURATION`, e.g. `ttl=24h`, `cluster=NAME`, or `help`";
                return Err(ParseError::UnknownArgument {
                    command: command.into(),
                    argument: (*arg).into(),
                    takes,
                });
            }
        }
    }
    Ok(Command::Deploy { ttl, cluster })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(body: &str) -> String {
        match parse(body, &Prefixes::default()) {
            None => "none".into(),
            Some(Ok(c)) => format!("{c:?}"),
            Some(Err(e)) => format!("error: {e}"),
        }
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str)] = &[
            ("/deploy-ephemeral", "Deploy { ttl: None, cluster: None }"),
            ("  /deploy-ephemeral  ", "Deploy { ttl: None, cluster: None }"),
            ("LGTM!\n\n/deploy-ephemeral\nthanks", "Deploy { ttl: None, cluster: None }"),
            ("/deploy-ephemeral ttl=24h", "Deploy { ttl: Some(\"24h\"), cluster: None }"),
            ("/destroy-ephemeral", "Destroy"),
            ("/deploy-ephemeral help", "Help"),
            ("/destroy-ephemeral help", "Help"),
            ("please /deploy-ephemeral", "none"),
            ("> /deploy-ephemeral\nquoted, not a command", "none"),
            ("<!--\n/deploy-ephemeral\n-->", "none"),
            ("hi <!-- /destroy-ephemeral -->", "none"),
            ("<!-- unclosed\n/deploy-ephemeral", "none"),
            ("<!-- note -->\n/deploy-ephemeral", "Deploy { ttl: None, cluster: None }"),
            ("```\n/deploy-ephemeral\n```", "none"),
            ("~~~sh\n/destroy-ephemeral\n~~~\n", "none"),
            ("````\n```\n/deploy-ephemeral\n````", "none"),
            ("````md\n```\n/deploy-ephemeral\n```\n````\n", "none"),
            ("~~~~\n~~~\n/destroy-ephemeral\n~~~~\n/deploy-ephemeral", "Deploy { ttl: None, cluster: None }"),
            ("```\n~~~\n/deploy-ephemeral\n```", "none"),
            ("```\n/deploy-ephemeral", "none"),
            ("```\n``` not a close\n/deploy-ephemeral\n```", "none"),
            ("    ```\n/deploy-ephemeral", "Deploy { ttl: None, cluster: None }"),
            ("``` inline ` code\n/deploy-ephemeral", "Deploy { ttl: None, cluster: None }"),
            ("    /deploy-ephemeral", "none"),
            ("```\n/deploy-ephemeral\n```\n/destroy-ephemeral", "Destroy"),
            ("/deploy-ephemeral\n/destroy-ephemeral", "error: one command per comment, please"),
            ("/deploy-ephemeral please", "error: `/deploy-ephemeral` does not take `please` (it takes `ttl=DURATION`, e.g. `ttl=24h`, `cluster=NAME`, or `help`)"),
            ("/deploy-ephemeral ttl=soon", "error: `ttl=soon` is not a duration of a minute or more like `24h` or `3d`"),
            ("/deploy-ephemeral ttl=1ns", "error: `ttl=1ns` is not a duration of a minute or more like `24h` or `3d`"),
            ("/deploy-ephemeral ttl=59s", "error: `ttl=59s` is not a duration of a minute or more like `24h` or `3d`"),
            ("/extend-ephemeral 1ns", "error: `1ns` is not a duration for `/extend-ephemeral`: give a number and a unit, a minute or more, like `/extend-ephemeral 2d` or `/extend-ephemeral 12h` (at most the configured max_ttl)"),
            ("/extend-ephemeral 0.5s", "error: `0.5s` is not a duration for `/extend-ephemeral`: give a number and a unit, a minute or more, like `/extend-ephemeral 2d` or `/extend-ephemeral 12h` (at most the configured max_ttl)"),
            ("/extend-ephemeral 1m", "Extend { duration: Some(\"1m\") }"),
            ("/destroy-ephemeral now", "error: `/destroy-ephemeral` does not take `now` (it takes only `help`)"),
            ("/deploy-ephemera", "error: unknown command `/deploy-ephemera`; did you mean `/deploy-ephemeral`?"),
            ("/deploy-epehmeral", "error: unknown command `/deploy-epehmeral`; did you mean `/deploy-ephemeral`?"),
            ("/destroy-now", "error: unknown command `/destroy-now`; did you mean `/destroy-ephemeral`?"),
            ("/Deploy-Ephemeral", "error: unknown command `/Deploy-Ephemeral`; did you mean `/deploy-ephemeral`?"),
            ("/extend-ephemeral", "Extend { duration: None }"),
            ("/extend-ephemeral 2d", "Extend { duration: Some(\"2d\") }"),
            ("/extend-ephemeral 9999999999d", "error: `9999999999d` is not a duration for `/extend-ephemeral`: give a number and a unit, a minute or more, like `/extend-ephemeral 2d` or `/extend-ephemeral 12h` (at most the configured max_ttl)"),
            ("/extend-ephemeral -1h", "error: `-1h` is not a duration for `/extend-ephemeral`: give a number and a unit, a minute or more, like `/extend-ephemeral 2d` or `/extend-ephemeral 12h` (at most the configured max_ttl)"),
            ("/extend-ephemeral 1e9h", "error: `1e9h` is not a duration for `/extend-ephemeral`: give a number and a unit, a minute or more, like `/extend-ephemeral 2d` or `/extend-ephemeral 12h` (at most the configured max_ttl)"),
            ("/extend-ephemeral 0s", "error: `0s` is not a duration for `/extend-ephemeral`: give a number and a unit, a minute or more, like `/extend-ephemeral 2d` or `/extend-ephemeral 12h` (at most the configured max_ttl)"),
            ("/extend-ephemeral 2d please", "error: `/extend-ephemeral` does not take `please` (it takes one duration like `2d`, or `help`)"),
            ("/sleep-ephemeral", "Sleep"),
            ("/wake-ephemeral", "Wake"),
            ("/wake-ephemeral now", "error: `/wake-ephemeral` does not take `now` (it takes only `help`)"),
            ("/wake-ephemeal", "error: unknown command `/wake-ephemeal`; did you mean `/wake-ephemeral`?"),
            ("/deploy", "none"),
            ("/retest", "none"),
            ("/lgtm\n/approve", "none"),
            ("@bors r+", "none"),
            ("", "none"),
        ];
        for (body, want) in cases {
            assert_eq!(show(body), *want, "body: {body:?}");
        }
    }

    #[test]
    fn configured_words() {
        let p = Prefixes {
            deploy: "/preview".into(),
            destroy: "/unpreview".into(),
            extend: "/keep".into(),
            ..Prefixes::default()
        };
        assert_eq!(
            parse("/keep 3d", &p),
            Some(Ok(Command::Extend {
                duration: Some("3d".into())
            }))
        );
        assert_eq!(
            parse("/preview", &p),
            Some(Ok(Command::Deploy {
                ttl: None,
                cluster: None
            }))
        );
        assert_eq!(parse("/unpreview", &p), Some(Ok(Command::Destroy)));
        assert_eq!(parse("/deploy-ephemeral", &p), None);
    }

    mod fences {
        use super::*;
        use proptest::prelude::*;

        fn fence(ch: char, n: usize) -> String {
            std::iter::repeat_n(ch, n).collect()
        }

        proptest! {
            /// Inside a fence of any length and character, a shorter fence line or one of the
            /// other character never closes it: the command inside is never run.
            #[test]
            fn commands_inside_any_fence_are_ignored(
                ch in prop_oneof![Just('`'), Just('~')],
                other in prop_oneof![Just('`'), Just('~')],
                open in 3usize..12,
                inner in 3usize..12,
                indent in 0usize..4,
                info in "[a-z]{0,6}",
            ) {
                // A shorter run of the same character, or a run of the other character.
                let inner_line = if other == ch { fence(ch, inner.min(open - 1)) } else { fence(other, inner) };
                let body = format!("{pad}{open_fence}{info}\n{inner_line}\n/deploy-ephemeral\n", pad = " ".repeat(indent), open_fence = fence(ch, open));
                prop_assert_eq!(parse(&body, &Prefixes::default()), None, "{}", body);
                // Closed by a long enough run of the same character, the text after counts.
                let closed = format!("{body}{}\n/destroy-ephemeral", fence(ch, open + inner % 3));
                prop_assert_eq!(parse(&closed, &Prefixes::default()), Some(Ok(Command::Destroy)), "{}", closed);
            }

            /// Any text: the parser answers, never panics.
            #[test]
            fn never_panics(body in "\\PC{0,200}", lines in proptest::collection::vec("[`~ >/a-z=0-9-]{0,20}", 0..8)) {
                let _ = parse(&body, &Prefixes::default());
                let _ = parse(&lines.join("\n"), &Prefixes::default());
            }
        }
    }
}
