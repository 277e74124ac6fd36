//! After a cleanup's commit: the artifacts of what it removed pruned, GitLab environments
//! stopped, deployments marked inactive, and the changes told.

use super::*;

impl Cleanup {
    /// After the commit: prune artifacts, stop environments, mark deployments inactive, comment.
    pub(super) fn follow_up(
        &self,
        forge: &Forge,
        state: &ForgeState,
        done: &Done,
        settings: &crate::settings::Settings,
        tally: &mut Tally,
    ) -> Result<()> {
        if self.prune_artifacts {
            let url = self
                .artifact_url
                .as_deref()
                .map(crate::oci::ArtifactUrl::parse)
                .transpose()?
                .or(settings.artifact_url.clone());
            self.prune(url.as_ref(), done.removed, done.remaining, tally);
        }
        self.after(
            forge,
            state,
            done.removed,
            done.environments,
            &settings.commands,
            tally,
        );
        if let Some(f) = forge.replies() {
            // A GitLab environment of the CI env job is GitLab's own: stopped above only
            // with --stop-gitlab-environments.
            for r in done.removed {
                crate::service::deployments::removed(f, settings, &r.slug, r.environment.is_some());
            }
        }
        if let (Some(replies), false) = (forge.replies(), self.no_comment) {
            let (posted, failures) = crate::service::lifecycle::comment(
                done.lived,
                replies,
                state.open.as_ref(),
                settings,
                SystemTime::now(),
            );
            tally.comments += posted;
            tally.warnings.extend(failures);
        }
        Ok(())
    }

    /// Delete the artifacts the tool pushed for the removed environments: in the configured
    /// repository only, under each environment's own tag, and only a digest that no remaining
    /// environment still uses. What a sync file records is never taken as a target: a
    /// hand-written file cannot point the deletion anywhere. A failure is a warning.
    fn prune(
        &self,
        url: Option<&crate::oci::ArtifactUrl>,
        removed: &[Stale],
        remaining: &[EnvRecord],
        tally: &mut Tally,
    ) {
        let removed: Vec<&Stale> = removed.iter().filter(|s| s.artifact.is_some()).collect();
        if removed.is_empty() {
            return;
        }
        let Some(url) = url else {
            tally.warnings.push(Error::config(
                "--prune-artifacts: no artifact repository (set artifact_url or pass --artifact-url): nothing pruned",
            ));
            return;
        };
        let run = || -> Result<()> {
            let vars = |k: &str| std::env::var(k).ok();
            let credentials = crate::oci::auth::resolve(&url.registry, &vars, &|p| {
                std::fs::read_to_string(p).ok()
            })?;
            let insecure = crate::oci::insecure_for(self.insecure_registry.as_deref(), url);
            let registry = crate::oci::registry::Registry::new(url, credentials, insecure)?;
            // Every digest still in use: the tags of the environments that stay, and what
            // their files pin.
            let kept_tags: Vec<String> = remaining
                .iter()
                .filter(|r| r.artifact.is_some())
                .filter_map(|r| crate::model::slug_of_file_name(&r.file).map(str::to_string))
                .collect();
            let mut in_use: BTreeSet<String> =
                registry.digests_of(&kept_tags)?.into_iter().collect();
            in_use.extend(remaining.iter().filter_map(|r| {
                r.artifact
                    .as_deref()?
                    .rsplit_once('@')
                    .map(|x| x.1.to_string())
            }));
            for s in removed {
                let Some(tag) = crate::model::slug_of_file_name(&s.file) else {
                    continue;
                };
                let Some(digest) = registry.digest_of(tag)? else {
                    continue;
                };
                if in_use.contains(&digest) {
                    tracing::info!(slug = %s.slug, %digest, "artifact still used by another environment: not pruned");
                    continue;
                }
                registry.delete(&digest)?;
                in_use.insert(digest);
                tally.pruned += 1;
            }
            Ok(())
        };
        if let Err(e) = run() {
            tracing::warn!("{e}");
            tally.warnings.push(e);
        }
    }

    /// Replies and GitLab clean-up after the commit landed.
    fn after(
        &self,
        forge: &Forge,
        state: &ForgeState,
        removed: &[Stale],
        environments: &[Environment],
        commands: &crate::command::Prefixes,
        tally: &mut Tally,
    ) {
        let still_open = |s: &Stale| {
            s.id.as_ref()
                .is_some_and(|id| state.open.as_ref().is_some_and(|o| o.contains(id)))
        };
        if let (Some(replies), false) = (forge.replies(), self.no_comment) {
            for s in removed.iter().filter(|s| {
                matches!(
                    s.reason,
                    Reason::TtlExpired { .. } | Reason::TimeAhead { .. }
                ) && still_open(s)
            }) {
                let Some(number) = s.id.as_deref().and_then(|id| id.parse().ok()) else {
                    continue;
                };
                match replies.reply(number, &crate::replies::removed_by_cleanup(s, commands)) {
                    Ok(()) => tally.comments += 1,
                    Err(e) => {
                        tracing::warn!("{e}");
                        tally.warnings.push(e);
                    }
                }
            }
        }
        let Forge::GitLab(gl) = forge else { return };
        if self.stop_gitlab_environments {
            for s in removed {
                let Some(env) = environments
                    .iter()
                    .find(|e| Some(&e.name) == s.environment.as_ref())
                else {
                    continue;
                };
                match gl.gitlab.stop_environment(&gl.project, env.id) {
                    Ok(()) => tally.stopped += 1,
                    Err(e) => tally.failures.push(e),
                }
            }
        }
        if self.delete_stopped_review_apps {
            if let Err(e) = gl.gitlab.delete_stopped_review_apps(&gl.project) {
                tally.failures.push(e);
            }
        }
    }
}
