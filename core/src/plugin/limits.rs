//! Per-plugin resource bounds.

use serde::{Deserialize, Serialize};

/// Bounds applied to every instance of a plugin. Defaults suit lab messages and CDA documents
/// of a few megabytes; operators raise them per plugin in `passerelle.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginLimits {
    /// Linear memory cap of one instance, in MiB.
    pub memory_mib: u32,
    /// Wall-clock cap of one `adapt` call, in milliseconds (epoch interruption).
    pub timeout_ms: u32,
    /// Cap on the total size of what one call returns (bundles and envelopes), in MiB.
    pub max_output_mib: u32,
    /// Cap on the number of records one message may produce.
    pub max_records: u32,
    /// An instance is recycled after this many calls, so a slow leak in a plugin is bounded.
    pub recycle_after_calls: u32,
    /// Messages adapted at once (= warm instances kept). Adapting is CPU work: more calls at
    /// once than cores only adds instances (each holds its linear memory) and threads. Default:
    /// the number of CPU cores, at least 2.
    pub max_instances: u32,
    /// Circuit breaker: after this many consecutive calls that failed by the plugin's fault
    /// (trap, invalid output, instance that cannot be made), the plugin is suspended and its
    /// sources' messages are stored as held until an operator resumes it or a new build is
    /// loaded. 0 = never suspend.
    pub breaker_failures: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory_mib: 128,
            timeout_ms: 2_000,
            max_output_mib: 32,
            max_records: 10_000,
            recycle_after_calls: 100_000,
            max_instances: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(2, 64) as u32,
            breaker_failures: 5,
        }
    }
}

impl PluginLimits {
    pub fn memory_bytes(&self) -> usize {
        self.memory_mib as usize * 1024 * 1024
    }

    pub fn max_output_bytes(&self) -> usize {
        self.max_output_mib as usize * 1024 * 1024
    }
}
