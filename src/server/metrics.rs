//! Prometheus metrics of the webhook service, served as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A cluster of `clusters` by name (`default` without them).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    pub cluster: String,
}

/// A GitHub credential by name (`token`, `installation 42`), never the secret.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CredentialLabels {
    pub credential: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub forge: String,
    pub kind: String,
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    pub events: Family<EventLabels, Counter>,
    pub commits: Counter,
    pub push_retries: Counter,
    pub batch_size: Histogram,
    pub queue_depth: Gauge,
    pub event_to_push: Histogram,
    pub quarantined: Counter,
    github_remaining: Family<CredentialLabels, Gauge>,
    previews: Family<ClusterLabels, Gauge>,
    waiting: Gauge,
    github_limit: Family<CredentialLabels, Gauge>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("flux_ephemeral");
        let events = Family::<EventLabels, Counter>::default();
        let commits = Counter::default();
        let push_retries = Counter::default();
        let batch_size = Histogram::new([1.0, 2.0, 5.0, 10.0, 20.0, 50.0]);
        let queue_depth = Gauge::default();
        let event_to_push = Histogram::new([0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        registry.register(
            "events",
            "Webhook deliveries by forge, kind and outcome (accepted, duplicate, ignored, deployed, destroyed, unchanged, refused, failed)",
            events.clone(),
        );
        registry.register(
            "commits",
            "Commits pushed to the GitOps repository",
            commits.clone(),
        );
        registry.register(
            "push_retries",
            "Pushes retried after another writer moved the branch",
            push_retries.clone(),
        );
        registry.register(
            "batch_size",
            "Events applied in one Git transaction",
            batch_size.clone(),
        );
        registry.register(
            "queue_depth",
            "Accepted deliveries waiting to be handled",
            queue_depth.clone(),
        );
        registry.register(
            "event_to_push_seconds",
            "Seconds from accepting a delivery to its change being pushed",
            event_to_push.clone(),
        );
        let quarantined = Counter::default();
        registry.register(
            "journal_quarantined",
            "Journal entries moved to failed/ (their handling did not finish twice, or kept failing)",
            quarantined.clone(),
        );
        let github_remaining = Family::<CredentialLabels, Gauge>::default();
        registry.register(
            "github_rate_limit_remaining",
            "Requests left of GitHub's hourly rate limit, per credential (x-ratelimit-remaining, read each readiness pass)",
            github_remaining.clone(),
        );
        let github_limit = Family::<CredentialLabels, Gauge>::default();
        registry.register(
            "github_rate_limit",
            "GitHub's hourly rate limit, per credential",
            github_limit.clone(),
        );
        let previews = Family::<ClusterLabels, Gauge>::default();
        registry.register(
            "previews",
            "Sync files in each cluster's instances directory (read each readiness pass)",
            previews.clone(),
        );
        let waiting = Gauge::default();
        registry.register(
            "queued_previews",
            "Preview requests waiting in the queue for room (read each readiness pass)",
            waiting.clone(),
        );
        Metrics {
            previews,
            waiting,
            github_remaining,
            github_limit,
            quarantined,
            registry,
            events,
            commits,
            push_retries,
            batch_size,
            queue_depth,
            event_to_push,
        }
    }

    /// The previews per cluster and the queue's length, as the last read of the repository saw.
    pub fn clusters(
        &self,
        layout: &crate::clusters::Layout,
        files: &crate::overlay::Files,
        queued: usize,
    ) {
        for c in &layout.clusters {
            let n = files
                .keys()
                .filter(|f| layout.cluster_of(f).is_some_and(|o| o.name == c.name))
                .count();
            self.previews
                .get_or_create(&ClusterLabels {
                    cluster: c.name.clone(),
                })
                .set(n as i64);
        }
        self.waiting.set(queued as i64);
    }

    /// Count one delivery. The event name comes from a request header: only names the service
    /// knows become a label value, every other is `other` (bounded series, nothing to escape).
    pub fn event(&self, forge: &str, kind: &str, outcome: &str) {
        let known = match forge {
            "github" => {
                crate::events::github::handles(kind)
                    || matches!(
                        kind,
                        "ping" | "push" | "check_run" | "check_suite" | "status" | "workflow_run"
                    )
            }
            "gitlab" => {
                crate::events::gitlab::handles(kind)
                    || matches!(
                        kind,
                        "Push Hook" | "Tag Push Hook" | "Pipeline Hook" | "Job Hook"
                    )
            }
            "gitea" => crate::events::gitea::handles(kind),
            _ => false,
        };
        self.events
            .get_or_create(&EventLabels {
                forge: forge.into(),
                kind: if known { kind.into() } else { "other".into() },
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn render(&self) -> String {
        if let Ok(budgets) = crate::forge::github::client::budgets().lock() {
            for (name, b) in budgets.iter() {
                let labels = CredentialLabels {
                    credential: name.clone(),
                };
                let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                self.github_remaining
                    .get_or_create(&labels)
                    .set(clamp(b.remaining));
                self.github_limit.get_or_create(&labels).set(clamp(b.limit));
            }
        }
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_names_from_headers_cannot_break_the_exposition_or_add_series() {
        let m = super::Metrics::new();
        m.event("gitlab", "Evil\"} 1\nfake_metric{a=\"", "ignored");
        for n in 0..100 {
            m.event("github", &format!("made-up-{n}"), "ignored");
        }
        m.event("github", "issue_comment", "accepted");
        let text = m.render();
        assert!(
            !text.contains("Evil") && !text.contains("fake_metric"),
            "{text}"
        );
        assert!(!text.contains("made-up"), "{text}");
        assert!(text.contains(r#"kind="other""#), "{text}");
        assert!(text.contains(r#"kind="issue_comment""#), "{text}");
    }
}
