//! Destinations: file and HTTP, with outbox-driven retries.
//!
//! ## Sinks
//! A [`Sink`] delivers one [`Record`]; it is idempotent, because delivery is at least once (a
//! crash between the delivery and the journal mark delivers the record again on restart):
//!
//! - [`FileSink`]: `<record id>.json` in the destination folder, holding the record's JSON line
//!   (envelope + bundle). Written atomically: each delivery writes a temp dotfile in the same
//!   folder; once per batch, before the batch is marked delivered, [`Sink::sync`] makes their
//!   contents durable (one `syncfs`), renames them over their final names and fsyncs the folder.
//!   A reader never sees a partial file, even after a power cut, and a re-delivery rewrites the
//!   same file instead of making a second copy.
//! - [`HttpSink`], mode `webhook`: POSTs the record JSON line with `Idempotency-Key` and
//!   `X-Passerelle-Record-Id` set to the record id, so the receiver can drop duplicates.
//! - [`HttpSink`], mode `fhir-transaction`: POSTs a FHIR `transaction` Bundle to the server base
//!   URL. A bundle that already is a transaction is sent byte for byte. Any other bundle
//!   (collection, document, message, batch) is converted by [`to_transaction`]: each entry keeps
//!   its `fullUrl` (so `urn:uuid:` references between entries still resolve) and gets
//!   `request: { method: "PUT", url: "<ResourceType>/<id>" }`, with `resource.id` set to the same
//!   id. The id is the uuid of a `urn:uuid:` fullUrl, else the resource's own id, else
//!   `<record id>-<entry index>`. Client-assigned ids make the transaction idempotent: a retry
//!   after a lost answer overwrites the same resources instead of creating duplicates (a POST
//!   would create new ones each time). The server must allow client-defined ids (HAPI:
//!   `client_id_strategy = ANY`); entries that already carry a `request` (a batch) keep it.
//!
//! HTTP answers: 2xx = delivered; 408, 425, 429, 5xx, connection errors and timeouts are
//! retryable; any other status is not (the entry is dead-lettered at once, with the status and
//! the first 500 bytes of the body in the error). `Retry-After` (seconds) on 429/503 is a
//! minimum delay before the next attempt. Plain `http://` only: there is no TLS client yet.
//!
//! ## Workers
//! One [`DeliveryWorker`] (a tokio task) per destination; [`Deliveries`] builds them all from the
//! configuration. See [`worker`](DeliveryWorker) for the loop, [`backoff`] for the retry delays.

mod fhir;
mod file;
mod http;
mod set;
mod worker;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use rand::Rng;

use crate::config::{DestinationConfig, RetryPolicy};
use crate::record::Record;

pub use fhir::to_transaction;
pub use file::FileSink;
pub use http::HttpSink;
pub use set::Deliveries;
pub use worker::{DeliveryWorker, DestinationStatus, WorkerOptions};

/// A failed delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// `false`: retrying cannot help (e.g. HTTP 400); the entry is dead-lettered at once.
    pub retryable: bool,
    pub message: String,
    /// The destination asked to wait at least this long (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl DeliveryError {
    /// An error worth retrying later (network, 5xx, disk full…).
    pub fn retryable(message: impl Into<String>) -> Self {
        DeliveryError {
            retryable: true,
            message: message.into(),
            retry_after: None,
        }
    }

    /// An error that retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        DeliveryError {
            retryable: false,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// A destination's configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("destination {destination:?}: {reason}")]
pub struct SinkSetupError {
    pub destination: String,
    pub reason: String,
}

/// Where records go.
#[derive(Debug, Clone)]
pub enum Sink {
    File(FileSink),
    Http(Box<HttpSink>),
    RecordStore(crate::store::RecordStoreSink),
}

impl Sink {
    /// Builds the sink of a configured destination (file folders are already resolved against
    /// the data dir by the configuration loader). Needs a tokio runtime for HTTP.
    pub fn from_config(name: &str, config: &DestinationConfig) -> Result<Sink, SinkSetupError> {
        match config {
            DestinationConfig::File(f) => Ok(Sink::File(FileSink::new(f.dir.clone()))),
            DestinationConfig::Http(h) => HttpSink::new(h)
                .map(|s| Sink::Http(Box::new(s)))
                .map_err(|reason| SinkSetupError {
                    destination: name.to_string(),
                    reason,
                }),
            DestinationConfig::RecordStore(d) => crate::store::open_configured(d)
                .map(|s| Sink::RecordStore(crate::store::RecordStoreSink::new(s)))
                .map_err(|e| SinkSetupError {
                    destination: name.to_string(),
                    reason: format!("{e:#}"),
                }),
        }
    }

    /// Delivers one record. Idempotent: delivering the same record again is harmless.
    pub async fn deliver(&self, record: &Record) -> Result<(), DeliveryError> {
        match self {
            Sink::File(s) => s.deliver(record).await,
            Sink::Http(s) => s.deliver(record).await,
            Sink::RecordStore(s) => s.deliver(record).await,
        }
    }

    /// Makes the deliveries made so far durable, where the sink defers it (the file sink's
    /// folder fsync); called once per batch, before the batch is marked delivered.
    pub async fn sync(&self) -> Result<(), DeliveryError> {
        match self {
            Sink::File(s) => s.sync().await,
            Sink::Http(_) | Sink::RecordStore(_) => Ok(()),
        }
    }

    /// `file`, `http` or `record-store`.
    pub fn kind(&self) -> &'static str {
        match self {
            Sink::File(_) => "file",
            Sink::Http(_) => "http",
            Sink::RecordStore(_) => "record-store",
        }
    }

    /// The folder of a file sink.
    pub fn dir(&self) -> Option<PathBuf> {
        match self {
            Sink::File(s) => Some(s.dir().to_path_buf()),
            Sink::Http(_) | Sink::RecordStore(_) => None,
        }
    }
}

/// The upper bound of the delay before attempt `attempts + 1`, when `attempts` attempts have
/// failed: `min(max_backoff, initial_backoff × 2^attempts)`.
pub fn backoff_ceiling(policy: &RetryPolicy, attempts: u32) -> Duration {
    let factor = 1u64.checked_shl(attempts.min(63)).unwrap_or(u64::MAX);
    let ms = policy
        .initial_backoff_ms
        .saturating_mul(factor)
        .min(policy.max_backoff_ms);
    Duration::from_millis(ms)
}

/// The delay before the next attempt, `attempts` being the attempts made before the one that
/// just failed (so the first retry waits about `initial_backoff`): a random value in
/// `[ceiling / 2, ceiling]` (jitter spreads the retries of many entries that failed together),
/// and at least `retry_after` when the destination asked for it.
pub fn backoff(policy: &RetryPolicy, attempts: u32, retry_after: Option<Duration>) -> Duration {
    backoff_with(&mut rand::rng(), policy, attempts, retry_after)
}

/// [`backoff`] with a given random source.
pub fn backoff_with<R: Rng + ?Sized>(
    rng: &mut R,
    policy: &RetryPolicy,
    attempts: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let ceiling = backoff_ceiling(policy, attempts).as_millis() as u64;
    let jittered = Duration::from_millis(rng.random_range(ceiling / 2..=ceiling));
    jittered.max(retry_after.unwrap_or_default())
}
