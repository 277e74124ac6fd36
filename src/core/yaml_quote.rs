//! Writing arbitrary strings into YAML so that they read back exactly.
//!
//! Branch names, titles and authors can be `on`, `null`, `1e3`, contain quotes, `#`, `: `,
//! backticks or any Unicode. Plain scalars would turn some of these into booleans, numbers or
//! comments, and YAML 1.1 readers fold some Unicode line separators. We therefore always emit a
//! double-quoted scalar in pure ASCII: every non-printable or non-ASCII character is escaped.

use std::fmt::Write;

/// `s` as a double-quoted YAML scalar that parses back to exactly `s`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn hostile_strings_round_trip() {
        let cases = [
            "on",
            "yes",
            "no",
            "null",
            "~",
            "1e3",
            "0x1F",
            "true",
            "",
            " lead",
            "trail ",
            "a: b",
            "# not a comment",
            "it's",
            "say \"hi\"",
            "back\\slash",
            "`tick`",
            "ünïcödé",
            "ブランチ",
            "emoji 🚀",
            "line\nbreak",
            "\u{2028}sep\u{85}",
            "tab\there",
            "{a: [b]}",
            "&anchor",
            "*alias",
            "!tag",
            "%directive",
            "@at",
            "---",
            "...",
            "- item",
            "? key",
        ];
        for s in cases {
            let doc = format!("key: {}\n", quote(s));
            assert!(doc.is_ascii());
            let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&doc).unwrap();
            assert_eq!(v["key"].as_str(), Some(s), "{doc}");
        }
    }
}
