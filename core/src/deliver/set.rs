//! All the destinations' workers.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{DeliveryWorker, DestinationStatus, Sink, SinkSetupError, WorkerOptions};
use crate::config::{DeliveryDefaults, DestinationConfig};
use crate::journal::JournalBackend;

/// One [`DeliveryWorker`] per configured destination. Share it (`Arc`) between the ingest side
/// (which calls [`Deliveries::wake`] after committing records) and the admin API.
#[derive(Debug)]
pub struct Deliveries {
    workers: BTreeMap<String, DeliveryWorker>,
}

impl Deliveries {
    /// Builds every sink (nothing starts when one is invalid), then starts the workers on the
    /// current tokio runtime. A destination's own retry policy overrides `defaults.retry`.
    pub fn start(
        journal: &Arc<dyn JournalBackend>,
        destinations: &BTreeMap<String, DestinationConfig>,
        defaults: &DeliveryDefaults,
    ) -> Result<Deliveries, SinkSetupError> {
        Self::start_with(journal, destinations, defaults, WorkerOptions::default())
    }

    pub fn start_with(
        journal: &Arc<dyn JournalBackend>,
        destinations: &BTreeMap<String, DestinationConfig>,
        defaults: &DeliveryDefaults,
        options: WorkerOptions,
    ) -> Result<Deliveries, SinkSetupError> {
        let sinks = destinations
            .iter()
            .map(|(name, config)| {
                let policy = config.retry().unwrap_or(defaults.retry);
                Sink::from_config(name, config).map(|sink| (name, sink, policy))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let workers = sinks
            .into_iter()
            .map(|(name, sink, policy)| {
                let worker =
                    DeliveryWorker::spawn(name, sink, policy, Arc::clone(journal), options);
                (name.clone(), worker)
            })
            .collect();
        Ok(Deliveries { workers })
    }

    /// Records were committed for `destination`: its worker looks at once. `false` for an
    /// unknown destination.
    pub fn wake(&self, destination: &str) -> bool {
        self.workers.get(destination).map(|w| w.wake()).is_some()
    }

    /// Wakes every worker (e.g. after dead letters were replayed).
    pub fn wake_all(&self) {
        self.workers.values().for_each(DeliveryWorker::wake);
    }

    /// Every destination's status, by name.
    pub fn status(&self) -> Vec<DestinationStatus> {
        self.workers.values().map(DeliveryWorker::status).collect()
    }

    pub fn worker(&self, name: &str) -> Option<&DeliveryWorker> {
        self.workers.get(name)
    }

    /// Pauses a destination; `false` when there is no such destination.
    pub fn pause(&self, name: &str) -> bool {
        self.workers.get(name).map(|w| w.pause()).is_some()
    }

    /// Resumes a destination; `false` when there is no such destination.
    pub fn resume(&self, name: &str) -> bool {
        self.workers.get(name).map(|w| w.resume()).is_some()
    }

    /// Stops every worker and waits for them (see [`DeliveryWorker::shutdown`]).
    pub async fn shutdown(&self) {
        for w in self.workers.values() {
            w.signal_shutdown();
        }
        for w in self.workers.values() {
            w.shutdown().await;
        }
    }
}
