//! Which changes get no preview, the pure part: drafts, bots' pull requests, excluded labels and
//! changes that touch none of the configured paths. What the forge says of the change is read
//! before; the changed files only when `paths` is set and nothing else decided.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::events::Change;

/// The filters of one application (config `skip_drafts`, `ignore_authors`, `exclude_labels`,
/// `paths`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeFilters {
    pub skip_drafts: bool,
    /// Their pull/merge requests get no automatic preview (a trusted person's command still
    /// deploys).
    pub ignore_authors: Vec<String>,
    /// A label on this list blocks previews and removes the one there is.
    pub exclude_labels: Vec<String>,
    /// Glob patterns: a change whose files match none gets no automatic preview.
    pub paths: Vec<String>,
}

impl Default for ChangeFilters {
    fn default() -> Self {
        ChangeFilters {
            skip_drafts: true,
            ignore_authors: vec!["dependabot[bot]".into(), "renovate[bot]".into()],
            exclude_labels: Vec::new(),
            paths: Vec::new(),
        }
    }
}

/// Why a change gets no preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    Draft,
    Author(String),
    Label(String),
    /// None of the changed files matches `paths`.
    Paths(Vec<String>),
}

impl Skip {
    pub fn describe(&self) -> String {
        match self {
            Skip::Draft => "it is a draft; mark it ready for review to get a preview".into(),
            Skip::Author(a) => format!("pull/merge requests by {a} get no automatic preview"),
            Skip::Label(l) => format!("the label {l:?} excludes previews"),
            Skip::Paths(p) => format!(
                "none of its changed files matches the paths that get previews ({})",
                p.join(", ")
            ),
        }
    }
}

/// Compile `paths`; the error names the pattern.
pub fn compile(patterns: &[String]) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| format!("{p:?} is not a glob pattern: {e}"))?);
    }
    b.build().map_err(|e| e.to_string())
}

/// The decision that needs no file list. `explicit`: a trusted person's command (authors are
/// then no reason); `creating`: the preview would be new (a push only moves an existing one,
/// which the author filter does not stop).
pub fn check(change: &Change, explicit: bool, f: &ChangeFilters) -> Option<Skip> {
    if let Some(l) = change
        .labels
        .iter()
        .find(|l| f.exclude_labels.iter().any(|x| x.eq_ignore_ascii_case(l)))
    {
        return Some(Skip::Label(l.clone()));
    }
    if f.skip_drafts && change.draft {
        return Some(Skip::Draft);
    }
    match &change.author {
        Some(a) if !explicit && f.ignore_authors.iter().any(|x| x.eq_ignore_ascii_case(a)) => {
            Some(Skip::Author(a.clone()))
        }
        _ => None,
    }
}

/// Whether any of `files` matches `paths` (no paths: every change does).
pub fn touches(files: &[String], f: &ChangeFilters) -> Result<bool, String> {
    if f.paths.is_empty() {
        return Ok(true);
    }
    let set = compile(&f.paths)?;
    Ok(files.iter().any(|file| set.is_match(file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(author: &str, draft: bool, labels: &[&str]) -> Change {
        Change {
            number: 1,
            author: Some(author.into()),
            draft,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            ..Change::default()
        }
    }

    #[test]
    fn table() {
        let f = ChangeFilters {
            exclude_labels: vec!["no-preview".into()],
            ..ChangeFilters::default()
        };
        let cases = [
            ("plain", change("alice", false, &[]), false, None),
            (
                "draft",
                change("alice", true, &[]),
                false,
                Some(Skip::Draft),
            ),
            (
                "draft, asked",
                change("alice", true, &[]),
                true,
                Some(Skip::Draft),
            ),
            (
                "dependabot",
                change("dependabot[bot]", false, &[]),
                false,
                Some(Skip::Author("dependabot[bot]".into())),
            ),
            (
                "dependabot, asked",
                change("dependabot[bot]", false, &[]),
                true,
                None,
            ),
            (
                "excluded label, asked",
                change("alice", false, &["No-Preview"]),
                true,
                Some(Skip::Label("No-Preview".into())),
            ),
        ];
        for (what, c, explicit, want) in cases {
            assert_eq!(check(&c, explicit, &f), want, "{what}");
        }
    }

    #[test]
    fn paths() {
        let f = ChangeFilters {
            paths: vec!["src/**".into(), "charts/*/values.yaml".into()],
            ..ChangeFilters::default()
        };
        let files = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(touches(&files(&["docs/a.md", "src/main.rs"]), &f).unwrap());
        assert!(touches(&files(&["charts/web/values.yaml"]), &f).unwrap());
        assert!(!touches(&files(&["docs/a.md", "README.md"]), &f).unwrap());
        assert!(touches(&files(&["anything"]), &ChangeFilters::default()).unwrap());
        assert!(compile(&["src/[".into()]).unwrap_err().contains("src/["));
    }
}
