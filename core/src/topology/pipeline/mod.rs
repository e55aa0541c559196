//! What happens to one inbound message, from its bytes to a durable commit: adapt it in the
//! sandbox, route its records under one rules version, store message + records + outbox in one
//! group-committed transaction, and wake the destinations. Sources acknowledge the sender only
//! after [`Pipeline::ingest`] returns.
//!
//! With a journal that queues inbound messages (JetStream, [`JournalBackend::queues_inbound`]),
//! ingest stores the raw message only and answers [`Ingested::Queued`]; adapter tasks on every
//! node adapt, route and store it later (`queued.rs`).
//!
//! Two safety valves sit on that path:
//!
//! - **Circuit breaker** (per plugin, [`crate::plugin::breaker`]): while a plugin is suspended
//!   (or resuming), its sources' messages are not adapted but stored as held
//!   ([`Ingested::Held`]; durable, so the source acknowledges them). [`Pipeline::resume_plugin`]
//!   (admin API) or a new build starts a drain task that re-processes the held messages in
//!   order ([`Journal::resolve_held`]: same message row, idempotent), then serves again.
//! - **Back-pressure** (`[delivery] max_pending`): a message whose records would go to a
//!   destination that already has `max_pending` entries pending is not stored
//!   ([`JournalError::Backpressure`]); [`Pipeline::ingest_or_wait`] first waits (bounded) for the
//!   destination to drain. Pending counts are kept in memory by the journal (no query).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::journal::{
    CommitReceipt, IngestedMessage, Journal, JournalBackend, JournalError, MessageId, Outcome,
    RoutedRecord,
};
use crate::plugin::{AdaptOutput, BreakerState, Inbound, Plugin, PluginError, PluginRegistry};
use crate::route::RoutesHandle;
use crate::telemetry;

/// Held messages: re-processed in order when a suspended plugin resumes (`held.rs`).
mod held;
/// Queued messages (JetStream): taken and adapted by any node (`queued.rs`).
mod queued;

pub use held::ResumeOutcome;

/// How often a message waiting for a full destination looks again.
const BACKPRESSURE_POLL: Duration = Duration::from_millis(50);

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
    /// Stored as held, not adapted: the source's plugin is suspended by its circuit breaker.
    /// Durable: it is adapted when the plugin is resumed.
    Held {
        message_id: MessageId,
        reason: String,
    },
    /// Stored unadapted in a journal that queues (JetStream): durable; any node adapts it.
    Queued { message_id: MessageId },
}

/// Called with each destination that has new records to deliver.
pub type Waker = Arc<dyn Fn(&str) + Send + Sync>;

/// What one source has handed to the pipeline since start (for the admin API).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceCounts {
    pub received: u64,
    pub adapted: u64,
    pub failed: u64,
    /// Stored as held (plugin suspended); counted again as adapted or failed once resumed.
    pub held: u64,
    /// When the last message came in (ms since the epoch).
    pub last_received_at_ms: Option<i64>,
}

#[derive(Default)]
struct SourceCounters {
    received: AtomicU64,
    adapted: AtomicU64,
    failed: AtomicU64,
    held: AtomicU64,
    last_received_at_ms: AtomicU64,
}

/// What a counter update is about.
#[derive(Clone, Copy)]
enum Count {
    Received,
    Adapted,
    Failed,
    Held,
}

/// What a plugin call gave, routed.
enum Processed {
    Adapted {
        output_id: String,
        message_type: Option<String>,
        plugin_version: String,
        rules_version: String,
        records: Vec<RoutedRecord>,
        touched: Vec<String>,
    },
    Failed(PluginError),
}

pub struct Pipeline {
    journal: Arc<dyn JournalBackend>,
    /// The embedded journal, when it is the backend: held messages (circuit breaker) and the
    /// operator views live there.
    local: Option<Journal>,
    plugins: Arc<PluginRegistry>,
    routes: Arc<RoutesHandle>,
    wake: Waker,
    counts: DashMap<String, SourceCounters>,
    /// `[delivery] max_pending` (0: no limit) and how long [`Pipeline::ingest_or_wait`] waits.
    max_pending: u64,
    max_pending_wait: Duration,
    /// The configured sources (to re-process held messages as their source would).
    sources: HashMap<String, SourceCtx>,
    drains: Mutex<Vec<JoinHandle<()>>>,
    stopping: watch::Sender<bool>,
    runtime: Option<tokio::runtime::Handle>,
}

impl Pipeline {
    /// A pipeline on the embedded journal.
    pub fn new(
        journal: Journal,
        plugins: Arc<PluginRegistry>,
        routes: Arc<RoutesHandle>,
        wake: Waker,
    ) -> Self {
        let mut p = Self::on_backend(Arc::new(journal.clone()), plugins, routes, wake);
        p.local = Some(journal);
        p
    }

    /// A pipeline on any journal backend (JetStream: [`Pipeline::spawn_adapters`] takes the
    /// queued messages).
    pub fn on_backend(
        journal: Arc<dyn JournalBackend>,
        plugins: Arc<PluginRegistry>,
        routes: Arc<RoutesHandle>,
        wake: Waker,
    ) -> Self {
        Pipeline {
            journal,
            local: None,
            plugins,
            routes,
            wake,
            counts: DashMap::new(),
            max_pending: 0,
            max_pending_wait: Duration::ZERO,
            sources: HashMap::new(),
            drains: Mutex::new(Vec::new()),
            stopping: watch::channel(false).0,
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Back-pressure: refuse messages routed to a destination with `max_pending` entries
    /// pending or more (0: no limit); [`Pipeline::ingest_or_wait`] waits up to `wait` first.
    pub fn with_backpressure(mut self, max_pending: u64, wait: Duration) -> Self {
        self.max_pending = max_pending;
        self.max_pending_wait = wait;
        self
    }

    /// The configured sources, by name (held messages are re-processed as their source would
    /// process them: charset).
    pub fn with_sources(mut self, sources: HashMap<String, SourceCtx>) -> Self {
        self.sources = sources;
        self
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
                    held: c.held.load(Ordering::Relaxed),
                    last_received_at_ms: (last > 0).then_some(last as i64),
                }
            })
            .unwrap_or_default()
    }

    /// Counts a message of `source` (admin counters and metrics).
    fn count(&self, source: &SourceCtx, what: Count) {
        let counters = match self.counts.get(&source.name) {
            Some(c) => c,
            None => self
                .counts
                .entry(source.name.clone())
                .or_default()
                .downgrade(),
        };
        match what {
            Count::Received => {
                counters.received.fetch_add(1, Ordering::Relaxed);
                counters
                    .last_received_at_ms
                    .store(crate::clock::now_ms().max(0) as u64, Ordering::Relaxed);
                telemetry::message_received(&source.name, &source.plugin);
            }
            Count::Adapted => {
                counters.adapted.fetch_add(1, Ordering::Relaxed);
                telemetry::message_adapted(&source.name, &source.plugin);
            }
            Count::Failed => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                telemetry::message_failed(&source.name, &source.plugin);
            }
            Count::Held => {
                counters.held.fetch_add(1, Ordering::Relaxed);
                telemetry::message_held(&source.name, &source.plugin);
            }
        }
    }

    /// The embedded journal (`None` on JetStream).
    pub fn journal(&self) -> Option<&Journal> {
        self.local.as_ref()
    }

    /// The journal backend in use.
    pub fn backend(&self) -> &Arc<dyn JournalBackend> {
        &self.journal
    }

    pub fn routes(&self) -> &Arc<RoutesHandle> {
        &self.routes
    }

    pub fn plugins(&self) -> &Arc<PluginRegistry> {
        &self.plugins
    }

    /// Adapts, routes and stores one message. `Err` means nothing was stored: the sender must
    /// not be acknowledged (it will resend). A destination over `max_pending` refuses the
    /// message at once ([`JournalError::Backpressure`]).
    ///
    /// Runs in a `message` span carrying the source, then the source's message id and the
    /// journal's message id once known (never patient data).
    pub async fn ingest(
        &self,
        source: &SourceCtx,
        payload: Vec<u8>,
        peer: Option<String>,
    ) -> Result<Ingested, JournalError> {
        self.ingest_with_wait(source, payload, peer, Duration::ZERO)
            .await
    }

    /// [`Pipeline::ingest`], but a destination over `max_pending` is waited for (up to
    /// `[delivery] max_pending_wait_ms`) before the message is refused: for senders that wait
    /// for their acknowledgement anyway (MLLP, inbox).
    pub async fn ingest_or_wait(
        &self,
        source: &SourceCtx,
        payload: Vec<u8>,
        peer: Option<String>,
    ) -> Result<Ingested, JournalError> {
        self.ingest_with_wait(source, payload, peer, self.max_pending_wait)
            .await
    }

    async fn ingest_with_wait(
        &self,
        source: &SourceCtx,
        payload: Vec<u8>,
        peer: Option<String>,
        wait: Duration,
    ) -> Result<Ingested, JournalError> {
        let span = tracing::info_span!(
            "message",
            source = %source.name,
            source_message_id = tracing::field::Empty,
            message_id = tracing::field::Empty,
        );
        self.ingest_in_span(source, payload, peer, wait)
            .instrument(span)
            .await
    }

    async fn ingest_in_span(
        &self,
        source: &SourceCtx,
        payload: Vec<u8>,
        peer: Option<String>,
        wait: Duration,
    ) -> Result<Ingested, JournalError> {
        let received_at = crate::clock::now_rfc3339();
        self.count(source, Count::Received);
        if self.journal.queues_inbound() {
            return self.enqueue(source, payload, peer, received_at).await;
        }
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
                    self.count(source, Count::Failed);
                    Ingested::Rejected {
                        message_id,
                        error: PluginError::Engine(format!(
                            "plugin {} is not loaded",
                            source.plugin
                        )),
                    }
                });
        };
        // Circuit breaker: a suspended (or resuming) plugin is not called; the message is held.
        if let Some(breaker) = self.plugins.breaker(&source.plugin)
            && breaker.state() != BreakerState::Serving
        {
            // Announce the hold before looking again: a drain that ends meanwhile waits for it.
            let _holding = breaker.hold_guard();
            if breaker.state() != BreakerState::Serving {
                return self
                    .hold(source, payload, peer, received_at, breaker.state())
                    .await;
            }
        }
        let inbound = Inbound {
            payload,
            content_type: source.content_type.clone(),
            source: source.name.clone(),
            received_at: received_at.clone(),
            charset: source.charset.clone(),
        };
        let (inbound, processed) = self.process(source, plugin, inbound).await?;
        match processed {
            Processed::Adapted {
                output_id,
                message_type,
                plugin_version,
                rules_version,
                records,
                touched,
            } => {
                self.admit(source, &touched, wait).await?;
                let count = records.len();
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
                            source_message_id: output_id.clone(),
                            message_type,
                            rules_version,
                            records,
                        },
                    })
                    .await?;
                // Metrics: commit time (group commit included), duplicates.
                telemetry::journal_commit(commit_started.elapsed());
                Ok(self.stored(source, receipt, count, output_id, &touched))
            }
            Processed::Failed(error) => {
                let message_id = self
                    .store(
                        source,
                        inbound.payload,
                        peer,
                        Some(source.plugin.clone()),
                        error.to_string(),
                    )
                    .await?;
                Ok(self.rejected(source, message_id, error))
            }
        }
    }

    /// Calls the plugin, feeds its breaker and routes the records.
    async fn process(
        &self,
        source: &SourceCtx,
        plugin: Arc<Plugin>,
        inbound: Inbound,
    ) -> Result<(Inbound, Processed), JournalError> {
        // The call runs on this task's worker and yields at each epoch tick
        // (`Plugin::adapt_async`); the turn bounds how many calls run at once.
        let turn = plugin.admit().await;
        let started = Instant::now();
        let result = plugin.adapt_async(&inbound).await;
        // Metrics: adapt time per call, traps per cause.
        telemetry::adapt_call(&source.plugin, started.elapsed(), result.as_ref().err());
        let plugin_version = plugin.info().version.clone();
        drop(turn);
        if self
            .plugins
            .record_result(&source.plugin, &plugin, result.as_ref().err())
        {
            telemetry::breaker_tripped(&source.plugin);
        }
        let output: AdaptOutput = match result {
            Ok(output) => output,
            Err(error) => return Ok((inbound, Processed::Failed(error))),
        };
        tracing::Span::current().record("source_message_id", output.source_message_id.as_str());
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
        Ok((
            inbound,
            Processed::Adapted {
                output_id: output.source_message_id,
                message_type: output.message_type,
                plugin_version,
                rules_version: rules.version().to_string(),
                records,
                touched,
            },
        ))
    }

    /// Back-pressure: `Ok` when every destination in `touched` has fewer than `max_pending`
    /// entries pending, waiting up to `wait` for them to drain.
    async fn admit(
        &self,
        source: &SourceCtx,
        touched: &[String],
        wait: Duration,
    ) -> Result<(), JournalError> {
        if self.max_pending == 0 {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut waited = false;
        loop {
            let full = touched.iter().find_map(|d| {
                let pending = self.journal.pending(d);
                (pending >= self.max_pending).then_some((d, pending))
            });
            let Some((destination, pending)) = full else {
                if waited {
                    tracing::info!(source = %source.name, "destination drained below max_pending; message admitted");
                }
                return Ok(());
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                telemetry::ingest_refused(&source.name, "backpressure");
                return Err(JournalError::Backpressure {
                    destination: destination.clone(),
                    pending,
                    limit: self.max_pending,
                });
            }
            if !waited {
                tracing::warn!(source = %source.name, destination = %destination, pending, max_pending = self.max_pending, "destination over max_pending: waiting for it to drain");
                waited = true;
            }
            tokio::time::sleep(BACKPRESSURE_POLL.min(deadline - now)).await;
        }
    }

    /// Counts, logs and wakes after an adapted message was stored.
    fn stored(
        &self,
        source: &SourceCtx,
        receipt: CommitReceipt,
        records: usize,
        source_message_id: String,
        touched: &[String],
    ) -> Ingested {
        telemetry::records_duplicate(&source.name, u64::from(receipt.duplicate_records));
        self.count(source, Count::Adapted);
        tracing::Span::current().record("message_id", receipt.message_id.0);
        tracing::debug!(
            records,
            new = receipt.new_records,
            duplicates = receipt.duplicate_records,
            "message stored"
        );
        for d in touched {
            (self.wake)(d);
        }
        Ingested::Accepted {
            receipt,
            records,
            source_message_id,
        }
    }

    /// Counts and logs after a message the plugin failed on was stored.
    fn rejected(&self, source: &SourceCtx, message_id: MessageId, error: PluginError) -> Ingested {
        self.count(source, Count::Failed);
        tracing::Span::current().record("message_id", message_id.0);
        // The plugin's own text may quote the message: only its class above debug.
        tracing::warn!(source = %source.name, plugin = %source.plugin, error = %error_class(&error), "message rejected");
        tracing::debug!(error = %error, "rejection detail");
        Ingested::Rejected { message_id, error }
    }

    /// Stores a message as held (its plugin is suspended or resuming).
    async fn hold(
        &self,
        source: &SourceCtx,
        payload: Vec<u8>,
        peer: Option<String>,
        received_at: String,
        state: BreakerState,
    ) -> Result<Ingested, JournalError> {
        let reason = match state {
            BreakerState::Resuming => format!(
                "plugin {} is resuming: held until the messages held before it are re-processed",
                source.plugin
            ),
            _ => format!(
                "plugin {} is suspended by its circuit breaker: held until it is resumed",
                source.plugin
            ),
        };
        let message_id = self
            .store_unadapted(source, payload, peer, received_at, reason.clone())
            .await?;
        self.count(source, Count::Held);
        tracing::info!(source = %source.name, plugin = %source.plugin, state = state.as_str(), "message held: plugin not serving");
        Ok(Ingested::Held { message_id, reason })
    }

    /// Stores a message unadapted, for its source's plugin to adapt later (outcome `Held`:
    /// circuit breaker holds and JetStream's queue alike).
    async fn store_unadapted(
        &self,
        source: &SourceCtx,
        payload: Vec<u8>,
        peer: Option<String>,
        received_at: String,
        reason: String,
    ) -> Result<MessageId, JournalError> {
        let receipt = self
            .journal
            .commit_message(IngestedMessage {
                source: source.name.clone(),
                content_type: source.content_type.clone(),
                received_at,
                payload,
                peer,
                outcome: Outcome::Held {
                    plugin: Some(source.plugin.clone()),
                    reason,
                },
            })
            .await?;
        tracing::Span::current().record("message_id", receipt.message_id.0);
        Ok(receipt.message_id)
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
        self.count(source, Count::Received);
        let message_id = self.store(source, payload, peer, plugin, reason).await?;
        self.count(source, Count::Failed);
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

    /// Stores what the plugin made of a held or queued message `id` in its row (records and
    /// deliveries of an adapted one), then counts and logs as a source would. `Ok(None)`: it
    /// was resolved already.
    async fn resolve(
        &self,
        id: MessageId,
        source: &SourceCtx,
        processed: Processed,
    ) -> Result<Option<Ingested>, JournalError> {
        match processed {
            Processed::Adapted {
                output_id,
                message_type,
                plugin_version,
                rules_version,
                records,
                touched,
            } => {
                let count = records.len();
                let outcome = Outcome::Adapted {
                    plugin: source.plugin.clone(),
                    plugin_version,
                    source_message_id: output_id.clone(),
                    message_type,
                    rules_version,
                    records,
                };
                Ok(self
                    .journal
                    .resolve_queued(id, outcome)
                    .await?
                    .map(|receipt| self.stored(source, receipt, count, output_id, &touched)))
            }
            Processed::Failed(error) => {
                let outcome = Outcome::Failed {
                    plugin: Some(source.plugin.clone()),
                    reason: error.to_string(),
                };
                Ok(self
                    .journal
                    .resolve_queued(id, outcome)
                    .await?
                    .map(|_| self.rejected(source, id, error)))
            }
        }
    }

    /// Back-pressure settings: `max_pending` (0 = none).
    pub fn max_pending(&self) -> u64 {
        self.max_pending
    }
}

/// Sleeps `d` unless the pipeline stops first; true when it stops.
async fn pause(stopping: &mut watch::Receiver<bool>, d: Duration) -> bool {
    let _ = tokio::time::timeout(d, stopping.wait_for(|s| *s)).await;
    *stopping.borrow()
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
