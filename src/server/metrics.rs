//! Prometheus metrics of the webhook service, served as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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
        Metrics {
            registry,
            events,
            commits,
            push_retries,
            batch_size,
            queue_depth,
            event_to_push,
        }
    }

    pub fn event(&self, forge: &str, kind: &str, outcome: &str) {
        self.events
            .get_or_create(&EventLabels {
                forge: forge.into(),
                kind: kind.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn render(&self) -> String {
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
