//! Environment-name filters, as in Flux Operator: only environments whose name matches
//! `include_environment` and not `exclude_environment` become previews, so a `production` job can
//! never be turned into a preview by mistake. Patterns match the whole name.

use regex::Regex;

use crate::error::{Error, Result};

pub const DEFAULT_INCLUDE: &str = "review/.*";

#[derive(Debug, Clone)]
pub struct EnvFilter {
    include: Regex,
    exclude: Option<Regex>,
    include_src: String,
    exclude_src: Option<String>,
}

impl EnvFilter {
    pub fn new(include: Option<&str>, exclude: Option<&str>) -> Result<Self> {
        let compile = |key: &str, src: &str| {
            Regex::new(&format!("^(?:{src})$")).map_err(|e| {
                Error::config(format!(
                    "{key} {src:?} is not a valid regular expression: {e}"
                ))
            })
        };
        let include_src = include.unwrap_or(DEFAULT_INCLUDE).to_string();
        Ok(EnvFilter {
            include: compile("include_environment", &include_src)?,
            exclude: exclude
                .filter(|s| !s.is_empty())
                .map(|s| compile("exclude_environment", s))
                .transpose()?,
            include_src,
            exclude_src: exclude.filter(|s| !s.is_empty()).map(str::to_string),
        })
    }

    /// `None` when `name` passes, else why it does not.
    pub fn rejects(&self, name: &str) -> Option<String> {
        if !self.include.is_match(name) {
            return Some(format!(
                "environment {name:?} does not match include_environment {:?}",
                self.include_src
            ));
        }
        if self.exclude.as_ref().is_some_and(|r| r.is_match(name)) {
            return Some(format!(
                "environment {name:?} matches exclude_environment {:?}",
                self.exclude_src.as_deref().unwrap_or_default()
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_take_review_environments_only() {
        let f = EnvFilter::new(None, None).unwrap();
        assert!(f.rejects("review/feature-x").is_none());
        assert!(f.rejects("production").is_some());
        assert!(
            f.rejects("staging/review/x").is_some(),
            "the whole name must match"
        );
    }

    #[test]
    fn exclude_wins() {
        let f = EnvFilter::new(Some("review/.*|preview/.*"), Some("review/keep-.*")).unwrap();
        assert!(f.rejects("preview/a").is_none());
        assert!(f
            .rejects("review/keep-me")
            .unwrap()
            .contains("exclude_environment"));
        assert!(EnvFilter::new(Some("("), None).is_err());
    }
}
