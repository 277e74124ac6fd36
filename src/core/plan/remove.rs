//! An environment that should not exist: its file deleted wherever it is, or its request taken
//! out of the queue.

use super::planner::Planner;
use super::upsert::legacy_file;
use super::{Action, Change, Outcome, Removal};
use crate::error::{Error, Result};
use crate::model::file_name;
use crate::overlay::{classify, Entry};

impl Planner<'_> {
    pub fn remove(&mut self, target: &Removal) -> Result<(Outcome, Vec<Change>)> {
        let files = self.files;
        let layout = &self.opts.layout;
        let (slug, branch) = (target.slug.as_str(), target.branch.as_deref());
        let key = target.key.as_deref().unwrap_or(slug);
        let object_name = self.renderer.settings().object_name(slug);
        let first = layout
            .clusters
            .first()
            .map(|c| c.rel.as_str())
            .unwrap_or("");
        let unowned = |f: &String| {
            files
                .get(f)
                .and_then(|c| classify(f, c))
                .is_some_and(|e| matches!(e, Entry::Managed(r) if r.app.is_none()))
        };
        let plain = crate::clusters::layout::join(first, &file_name(slug));
        let found = layout.find(files, key);
        let cluster = found.as_ref().map(|(c, _)| c.name.clone());
        let file = match (
            found,
            legacy_file(
                files,
                first,
                key,
                slug,
                &object_name,
                target.requester.app.as_deref(),
            ),
        ) {
            (Some((_, f)), _) => f,
            (None, Some((f, _))) => f,
            (None, None) if target.exact && unowned(&plain) => plain,
            _ => layout.file(&layout.clusters[0], key),
        };
        let absent = Outcome {
            action: Action::Absent,
            slug: slug.into(),
            file: file.clone(),
            branch: branch.map(Into::into),
            ..Outcome::default()
        };
        let Some(content) = files.get(&file) else {
            return Ok(self.dequeue(key, target, absent));
        };
        match classify(&file, content) {
            Some(Entry::Managed(r)) => {
                if let Some(b) = branch {
                    if b != r.branch {
                        return Err(Error::input(format!(
                            "environment {slug} belongs to branch {:?}, not {b:?}; nothing was destroyed",
                            r.branch
                        )));
                    }
                }
                // Another owner's environment is not this requester's to remove: for them it is
                // absent. A pull/merge request removes only the environment recorded for it.
                let theirs = r.owner().conflicts(&target.requester)
                    || (target.requester.change.is_some() && r.id.is_none());
                if theirs {
                    tracing::info!(
                        slug,
                        owner = %r.owner().describe(),
                        requester = %target.requester.describe(),
                        "not removing another owner's environment"
                    );
                    return Ok((absent, vec![]));
                }
                let o = Outcome {
                    action: Action::Destroyed,
                    slug: slug.into(),
                    file: file.clone(),
                    branch: Some(r.branch),
                    sha: r.sha,
                    cluster,
                    ..Outcome::default()
                };
                Ok((
                    o,
                    vec![Change::Delete {
                        file,
                        before: content.to_string(),
                    }],
                ))
            }
            _ => Err(Error::input(format!(
                "{file} was not created by flux-ephemeral; refusing to delete it"
            ))),
        }
    }

    /// No file: a request of the same owner waiting in the queue leaves it.
    fn dequeue(&mut self, key: &str, target: &Removal, absent: Outcome) -> (Outcome, Vec<Change>) {
        let Some(i) = self.queue.entries.iter().position(|w| w.key == key) else {
            return (absent, vec![]);
        };
        let w = &self.queue.entries[i];
        let owner = w.spec().owner();
        let wrong_branch = target.branch.as_deref().is_some_and(|b| b != w.branch);
        if owner.conflicts(&target.requester) || wrong_branch {
            return (absent, vec![]);
        }
        let w = self.queue.entries.remove(i);
        let o = Outcome {
            action: Action::Dequeued,
            slug: w.slug.clone(),
            file: self.opts.layout.queue_file.clone(),
            branch: Some(w.branch.clone()),
            sha: w.sha.clone(),
            ..Outcome::default()
        };
        (o, vec![])
    }
}
