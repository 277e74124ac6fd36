//! How a use-case runs and reports: dry run, output format, the dotenv file, who asked.

use std::path::PathBuf;

/// How a deploy or destroy runs and reports.
#[derive(Debug, Clone, Default)]
pub struct Mode {
    pub dry_run: bool,
    pub format: crate::output::Format,
    pub dotenv: Option<PathBuf>,
    /// Record a new deploy time even when nothing else changed.
    pub refresh: bool,
    /// Who asked, recorded in the commit message (the previews page's user).
    pub requested_by: Option<String>,
}
