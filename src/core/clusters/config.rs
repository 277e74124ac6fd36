//! The `clusters`, `quota` and queue keys of `.flux-ephemeral.yaml`, as data.

use serde::Deserialize;

/// One cluster previews may go to: the directory its Flux watches, and what acts on it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// A short name (`eu`, `us-2`): lowercase letters, digits and `-`. `/deploy-ephemeral
    /// cluster=NAME` asks for it.
    pub name: String,
    /// The directory of the GitOps repository this cluster's Flux watches for sync files.
    pub instances_dir: String,
    /// At most this many previews in this cluster; more requests wait in the queue.
    pub max_previews: Option<usize>,
    /// The kubeconfig context of this cluster, for `--wait`, readiness, sleep and the page
    /// [default: the current context].
    pub kubeconfig_context: Option<String>,
    /// This cluster's Flux Receiver (its full webhook URL) [default: `receiver_url`].
    pub receiver_url: Option<String>,
}

/// Requests and limits of one preview's namespace: rendered as a ResourceQuota and a LimitRange
/// next to its Flux objects. Quantities are Kubernetes quantities (`500m`, `2`, `512Mi`, `4Gi`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// The sum of the CPU requests of the preview's pods (`requests.cpu`).
    pub requests_cpu: Option<String>,
    /// The sum of their memory requests (`requests.memory`).
    pub requests_memory: Option<String>,
    /// The sum of their CPU limits (`limits.cpu`).
    pub limits_cpu: Option<String>,
    /// The sum of their memory limits (`limits.memory`).
    pub limits_memory: Option<String>,
    /// At most this many pods.
    pub pods: Option<u32>,
    /// The CPU a container without its own asks for and is limited to [default: 100m, 500m].
    pub default_request_cpu: Option<String>,
    pub default_limit_cpu: Option<String>,
    /// The memory a container without its own asks for and is limited to [default: 128Mi, 512Mi].
    pub default_request_memory: Option<String>,
    pub default_limit_memory: Option<String>,
}
