//! Previews across clusters: the clusters of the configuration and where each preview's sync
//! file lives ([`layout`]), which cluster a new one goes to under the caps ([`placement`]), the
//! requests waiting for room ([`queue`]) and the per-preview limits ([`quota`]).

pub mod config;
pub mod layout;
pub mod placement;
pub mod queue;
pub mod quota;

pub use config::{ClusterConfig, QuotaConfig};
pub use layout::{Cluster, Layout, LayoutInput};
pub use placement::{place, Ask, Occupancy, Placement};
pub use queue::{Queue, Waiting};
