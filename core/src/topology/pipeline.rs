//! What happens to one inbound message, from its bytes to a durable commit: adapt it in the
//! sandbox, route its records under one rules version, store message + records + outbox in one
//! group-committed transaction, and wake the destinations. Sources acknowledge the sender only
//! after [`Pipeline::ingest`] returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use dashmap::DashMap;
use tracing::Instrument as _;

use crate::journal::{
    CommitReceipt, IngestedMessage, Journal, JournalError, MessageId, Outcome, RoutedRecord,
};
use crate::plugin::{Inbound, PluginError, PluginRegistry};
use crate::route::RoutesHandle;
use crate::telemetry;

/// What a source knows about itself, handed to the pipeline with each message.
#[derive(Debug, Clone)]
pub struct SourceCtx {
    pub name: String,
    pub plugin: String,
    pub content_type: String,
    pub charset: Option<String>,
}

/// The result of a stored message, for the acknowledgement.
#[derive(Debug)]
pub enum Ingested {
    /// Adapted, routed and stored.
    Accepted {
        receipt: CommitReceipt,
        records: usize,
        source_message_id: String,
    },
    /// Stored as failed: the plugin rejected it, trapped, or returned invalid output.
    Rejected {
        message_id: MessageId,
        error: PluginError,
    },
}

/// Called with each destination that has new records to deliver.
pub type Waker = Arc<dyn Fn(&str) + Send + Sync>;

/// What one source has handed to the pipeline since start (for the admin API).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceCounts {
    pub received: u64,
    pub adapted: u64,
    pub failed: u64,
    /// When the last message came in (ms since the epoch).
    pub last_received_at_ms: Option<i64>,
}

#[derive(Default)]
struct SourceCounters {
    received: AtomicU64,
    adapted: AtomicU64,
    failed: AtomicU64,
    last_received_at_ms: AtomicU64,
}

pub struct Pipeline {
    journal: Journal,
    plugins: Arc<PluginRegistry>,
    routes: Arc<RoutesHandle>,
    wake: Waker,
    counts: DashMap<String, SourceCounters>,
}

impl Pipeline {
    pub fn new(
        journal: Journal,
        plugins: Arc<PluginRegistry>,
        routes: Arc<RoutesHandle>,
        wake: Waker,
    ) -> Self {
        Pipeline {
            journal,
            plugins,
            routes,
            wake,
            counts: DashMap::new(),
        }
    }

    /// What `source` has handed to the pipeline since start.
    pub fn source_counts(&self, source: &str) -> SourceCounts {
        self.counts
            .get(source)
            .map(|c| {
                let last = c.last_received_at_ms.load(Ordering::Relaxed);
                SourceCounts {
                    received: c.received.load(Ordering::Relaxed),
                    adapted: c.adapted.load(Ordering::Relaxed),
                    failed: c.failed.load(Ordering::Relaxed),
                    last_received_at_ms: (last > 0).then_some(last as i64),
                }
            })
            .unwrap_or_default()
    }

    /// Counts a message of `source` (admin counters and metrics); `adapted`: `None` when only
    /// received so far.
    fn count(&self, source: &SourceCtx, adapted: Option<bool>) {
        let counters = match self.counts.get(&source.name) {
            Some(c) => c,
            None => self
                .counts
                .entry(source.name.clone())
                .or_default()
                .downgrade(),
        };
        match adapted {
            None => {
                counters.received.fetch_add(1, Ordering::Relaxed);
                counters
                    .last_received_at_ms
                    .store(crate::clock::now_ms().max(0) as u64, Ordering::Relaxed);
                telemetry::message_received(&source.name, &source.plugin);
            }
            Some(true) => {
                counters.adapted.fetch_add(1, Ordering::Relaxed);
                telemetry::message_adapted(&source.name, &source.plugin);
            }
            Some(false) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                telemetry::message_failed(&source.name, &source.plugin);
            }
        }
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn routes(&self) -> &Arc<RoutesHandle> {
        &self.routes
    }

    pub fn plugins(&self) -> &Arc<PluginRegistry> {
        &self.plugins
    }

    /// Adapts, routes and stores one message. `Err` means nothing was stored: the sender must
    /// not be acknowledged (it will resend).
    ///
    /// Runs in a `message` span carrying the source, then the source's message id and the
    /// journal's message id once known (never patient data).
    pub async fn ingest(
        &self,
        source: &SourceCtx,
        payload: Vec<u8>,
        peer: Option<String>,
    ) -> Result<Ingested, JournalError> {
        let span = tracing::info_span!(
            "message",
            source = %source.name,
            source_message_id = tracing::field::Empty,
            message_id = tracing::field::Empty,
        );
        self.ingest_in_span(source, payload, peer)
            .instrument(span)
            .await
    }

    async fn ingest_in_span(
        &self,
        source: &SourceCtx,
        payload: Vec<u8>,
        peer: Option<String>,
    ) -> Result<Ingested, JournalError> {
        let received_at = crate::clock::now_rfc3339();
        self.count(source, None);
        let Some(plugin) = self.plugins.get(&source.plugin) else {
            // The configuration check makes this unreachable; store the message rather than lose it.
            let reason = format!(
                "source {} names plugin {}, which is not loaded",
                source.name, source.plugin
            );
            return self
                .store(source, payload, peer, None, reason)
                .await
                .map(|message_id| {
                    self.count(source, Some(false));
                    Ingested::Rejected {
                        message_id,
                        error: PluginError::Engine(format!(
                            "plugin {} is not loaded",
                            source.plugin
                        )),
                    }
                });
        };
        let inbound = Inbound {
            payload,
            content_type: source.content_type.clone(),
            source: source.name.clone(),
            received_at: received_at.clone(),
            charset: source.charset.clone(),
        };
        // Plugin calls are synchronous (and may run up to their time cap): keep them off the
        // async workers (in the message's span).
        let span = tracing::Span::current();
        let plugin_name = source.plugin.clone();
        let (inbound, result) = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let started = Instant::now();
            let result = plugin.adapt(&inbound);
            // Metrics: adapt time per call, traps per cause.
            telemetry::adapt_call(&plugin_name, started.elapsed(), result.as_ref().err());
            (inbound, (result, plugin.info().version.clone()))
        })
        .await
        .map_err(|e| JournalError::Internal(format!("adapter task failed: {e}")))?;
        let (result, plugin_version) = result;

        match result {
            Ok(output) => {
                tracing::Span::current()
                    .record("source_message_id", output.source_message_id.as_str());
                let rules = self.routes.current();
                let records: Vec<RoutedRecord> = output
                    .records
                    .into_iter()
                    .map(|record| {
                        let decision = rules.route(&record.envelope);
                        RoutedRecord {
                            record,
                            route: decision.route,
                            destinations: decision.destinations,
                        }
                    })
                    .collect();
                let mut touched: Vec<String> = records
                    .iter()
                    .flat_map(|r| r.destinations.iter().cloned())
                    .collect();
                touched.sort_unstable();
                touched.dedup();
                // Metrics: records per route and destination, held records.
                for r in &records {
                    for d in &r.destinations {
                        telemetry::record_routed(r.route.as_deref(), d);
                    }
                }
                telemetry::records_held(
                    &source.name,
                    records.iter().filter(|r| r.destinations.is_empty()).count() as u64,
                );
                let count = records.len();
                let source_message_id = output.source_message_id.clone();
                let commit_started = Instant::now();
                let receipt = self
                    .journal
                    .commit_message(IngestedMessage {
                        source: source.name.clone(),
                        content_type: inbound.content_type,
                        received_at,
                        payload: inbound.payload,
                        peer,
                        outcome: Outcome::Adapted {
                            plugin: source.plugin.clone(),
                            plugin_version,
                            source_message_id: output.source_message_id,
                            message_type: output.message_type,
                            rules_version: rules.version().to_string(),
                            records,
                        },
                    })
                    .await?;
                // Metrics: commit time (group commit included), duplicates.
                telemetry::journal_commit(commit_started.elapsed());
                telemetry::records_duplicate(&source.name, u64::from(receipt.duplicate_records));
                self.count(source, Some(true));
                tracing::Span::current().record("message_id", receipt.message_id.0);
                tracing::debug!(
                    records = count,
                    new = receipt.new_records,
                    duplicates = receipt.duplicate_records,
                    "message stored"
                );
                for d in &touched {
                    (self.wake)(d);
                }
                Ok(Ingested::Accepted {
                    receipt,
                    records: count,
                    source_message_id,
                })
            }
            Err(error) => {
                let message_id = self
                    .store(
                        source,
                        inbound.payload,
                        peer,
                        Some(source.plugin.clone()),
                        error.to_string(),
                    )
                    .await?;
                self.count(source, Some(false));
                tracing::Span::current().record("message_id", message_id.0);
                // The plugin's own text may quote the message: only its class above debug.
                tracing::warn!(source = %source.name, plugin = %source.plugin, error = %error_class(&error), "message rejected");
                tracing::debug!(error = %error, "rejection detail");
                Ok(Ingested::Rejected { message_id, error })
            }
        }
    }

    /// Stores a message that could not be adapted (or is not of the source's format at all).
    pub async fn store_failed(
        &self,
        source: &SourceCtx,
        payload: Vec<u8>,
        peer: Option<String>,
        plugin: Option<String>,
        reason: String,
    ) -> Result<MessageId, JournalError> {
        self.count(source, None);
        let message_id = self.store(source, payload, peer, plugin, reason).await?;
        self.count(source, Some(false));
        Ok(message_id)
    }

    async fn store(
        &self,
        source: &SourceCtx,
        payload: Vec<u8>,
        peer: Option<String>,
        plugin: Option<String>,
        reason: String,
    ) -> Result<MessageId, JournalError> {
        let receipt = self
            .journal
            .commit_message(IngestedMessage {
                source: source.name.clone(),
                content_type: source.content_type.clone(),
                received_at: crate::clock::now_rfc3339(),
                payload,
                peer,
                outcome: Outcome::Failed { plugin, reason },
            })
            .await?;
        Ok(receipt.message_id)
    }
}

/// What went wrong, without the plugin's free text (which may quote patient data): for logs
/// above debug.
fn error_class(e: &PluginError) -> String {
    use crate::plugin::Rejection;
    match e {
        PluginError::Rejected {
            rejection: Rejection::Malformed { location, .. },
            ..
        } => format!("malformed input at {location}"),
        PluginError::Rejected {
            rejection: Rejection::Unsupported(_),
            ..
        } => "unsupported message".into(),
        PluginError::Rejected {
            rejection: Rejection::Internal(_),
            ..
        } => "internal adapter error".into(),
        PluginError::Trap { cause, .. } => format!("trapped: {cause}"),
        PluginError::InvalidOutput { .. } => "invalid output".into(),
        other => other.to_string(),
    }
}
