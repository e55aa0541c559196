//! One delivery worker per destination.
//!
//! The loop: claim up to `batch` due outbox entries; deliver them concurrently (at most
//! `concurrency` at once; the journal hands out at most one entry per patient, so concurrency
//! never reorders a patient's records) — file and record-store destinations take the whole
//! claim at once instead (one blocking task; for the record store one transaction, one fsync);
//! make them durable ([`Sink::sync`](super::Sink::sync):
//! the file sink's one folder fsync); mark the successes delivered in one journal call and each
//! failure failed (retried after [`backoff`]) or dead (not retryable, or
//! `max_attempts` reached). When nothing is due, sleep until the next entry is due, until
//! [`DeliveryWorker::wake`] (ingest committed records for this destination), or until shutdown.
//!
//! Shutdown: no new claim and no new delivery start; deliveries under way finish and are marked;
//! claimed entries not started yet are released (pending again, as they were).
//! Pause: no new claim; a batch under way finishes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::{DeliveryError, Sink, backoff};
use crate::clock::now_ms;
use crate::config::RetryPolicy;
use crate::journal::{JournalBackend, OutboxItem};
use crate::record::Record;
use crate::telemetry;

/// Shortest sleep when nothing was claimed but something is due already (a race with a commit):
/// keeps the loop from spinning.
const MIN_IDLE: Duration = Duration::from_millis(20);

/// Tuning of the delivery workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerOptions {
    /// Entries claimed at once.
    pub batch: usize,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// With nothing due and no wake-up, look at the journal again after this long anyway.
    pub idle_poll: Duration,
    /// Pause after a journal error before trying again.
    pub error_pause: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            batch: 64,
            concurrency: 16,
            idle_poll: Duration::from_secs(30),
            error_pause: Duration::from_secs(1),
        }
    }
}

/// A destination's state, for the admin API and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestinationStatus {
    pub name: String,
    /// `file` or `http`.
    pub kind: &'static str,
    pub paused: bool,
    /// `false` once the worker has exited (shutdown).
    pub running: bool,
    /// Deliveries under way.
    pub in_flight: usize,
    pub last_error: Option<String>,
    /// When `last_error` happened (ms since the epoch).
    pub last_error_at_ms: Option<i64>,
    pub delivered_total: u64,
    /// Failed attempts that will be retried.
    pub failed_total: u64,
    /// Entries dead-lettered.
    pub dead_total: u64,
}

struct Shared {
    name: String,
    kind: &'static str,
    wake: Notify,
    paused: watch::Sender<bool>,
    in_flight: AtomicUsize,
    delivered: AtomicU64,
    failed: AtomicU64,
    dead: AtomicU64,
    last_error: Mutex<Option<(String, i64)>>,
}

impl Shared {
    fn set_error(&self, message: &str) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((message.to_string(), now_ms()));
    }
}

/// The delivery task of one destination.
pub struct DeliveryWorker {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    handle: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    finished: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for DeliveryWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryWorker")
            .field("status", &self.status())
            .finish()
    }
}

impl DeliveryWorker {
    /// Starts the worker of destination `name` on the current tokio runtime.
    pub fn spawn(
        name: &str,
        sink: Sink,
        policy: RetryPolicy,
        journal: Arc<dyn JournalBackend>,
        options: WorkerOptions,
    ) -> DeliveryWorker {
        let (paused_tx, paused_rx) = watch::channel(false);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            name: name.to_string(),
            kind: sink.kind(),
            wake: Notify::new(),
            paused: paused_tx,
            in_flight: AtomicUsize::new(0),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let runner = Runner {
            marker: Marker {
                shared: shared.clone(),
                journal,
                policy,
            },
            sink: Arc::new(sink),
            options: WorkerOptions {
                batch: options.batch.max(1),
                concurrency: options.concurrency.max(1),
                ..options
            },
            shutdown: shutdown_rx,
            paused: paused_rx,
        };
        let done = finished.clone();
        let handle = tokio::spawn(async move {
            runner.run().await;
            done.store(true, Ordering::Relaxed);
        });
        DeliveryWorker {
            shared,
            shutdown: shutdown_tx,
            handle: tokio::sync::Mutex::new(Some(handle)),
            finished,
        }
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// New entries were committed for this destination: look now. A wake-up that comes while
    /// the worker is busy is kept for its next idle wait.
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Stops claiming (deliveries under way finish).
    pub fn pause(&self) {
        self.shared.paused.send_replace(true);
    }

    /// Resumes claiming, at once.
    pub fn resume(&self) {
        self.shared.paused.send_replace(false);
        self.shared.wake.notify_one();
    }

    pub fn is_paused(&self) -> bool {
        *self.shared.paused.borrow()
    }

    pub fn status(&self) -> DestinationStatus {
        let s = &self.shared;
        let last = s
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        DestinationStatus {
            name: s.name.clone(),
            kind: s.kind,
            paused: self.is_paused(),
            running: !self.finished.load(Ordering::Relaxed),
            in_flight: s.in_flight.load(Ordering::Relaxed),
            last_error_at_ms: last.as_ref().map(|(_, at)| *at),
            last_error: last.map(|(m, _)| m),
            delivered_total: s.delivered.load(Ordering::Relaxed),
            failed_total: s.failed.load(Ordering::Relaxed),
            dead_total: s.dead.load(Ordering::Relaxed),
        }
    }

    /// Asks the worker to stop without waiting (see [`DeliveryWorker::shutdown`]).
    pub fn signal_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Stops the worker and waits for it: deliveries under way finish and are marked, claimed
    /// entries not started are released. Waiting again after the first call returns at once.
    pub async fn shutdown(&self) {
        self.signal_shutdown();
        let handle = self.handle.lock().await.take();
        if let Some(handle) = handle
            && let Err(e) = handle.await
        {
            tracing::error!(destination = %self.shared.name, "delivery worker failed: {e}");
        }
    }
}

/// Marks outcomes in the journal and keeps the counters (cloned into the marking tasks).
#[derive(Clone)]
struct Marker {
    shared: Arc<Shared>,
    journal: Arc<dyn JournalBackend>,
    policy: RetryPolicy,
}

impl Marker {
    async fn delivered(&self, ids: Vec<i64>, now: i64) {
        match self.journal.mark_delivered(&ids, now).await {
            Ok(()) => {
                self.shared
                    .delivered
                    .fetch_add(ids.len() as u64, Ordering::Relaxed);
                telemetry::delivered(&self.shared.name, ids.len() as u64); // metrics
            }
            Err(e) => {
                // Delivered but not marked: they will be delivered again (sinks are idempotent).
                let msg = format!("cannot mark {} entries delivered: {e}", ids.len());
                tracing::error!(destination = %self.shared.name, "{msg}");
                self.shared.set_error(&msg);
                self.journal.release(&ids).await;
            }
        }
    }

    async fn failed(&self, outbox_id: i64, attempts: u32, err: DeliveryError, now: i64) {
        let name = &self.shared.name;
        self.shared.set_error(&err.message);
        let attempt = attempts.saturating_add(1);
        let result = if err.retryable && attempt < self.policy.max_attempts.max(1) {
            let delay = backoff(&self.policy, attempts, err.retry_after);
            tracing::warn!(
                destination = %name, outbox_id, attempt, retry_in_ms = delay.as_millis() as u64,
                "delivery failed: {}", without_body(&err.message)
            );
            tracing::debug!(destination = %name, outbox_id, "delivery error detail: {}", err.message);
            let at = now.saturating_add(delay.as_millis() as i64);
            let r = self.journal.mark_failed(outbox_id, &err.message, at).await;
            if r.is_ok() {
                self.shared.failed.fetch_add(1, Ordering::Relaxed);
                telemetry::delivery_retry(name); // metrics
            }
            r
        } else {
            let message = if err.retryable {
                format!("gave up after {attempt} attempts: {}", err.message)
            } else {
                err.message
            };
            tracing::error!(destination = %name, outbox_id, attempt, "dead letter: {}", without_body(&message));
            tracing::debug!(destination = %name, outbox_id, "dead letter detail: {message}");
            let r = self.journal.mark_dead(outbox_id, &message).await;
            if r.is_ok() {
                self.shared.dead.fetch_add(1, Ordering::Relaxed);
                telemetry::dead_lettered(name, 1); // metrics
            }
            r
        };
        if let Err(e) = result {
            let msg = format!("cannot record the outcome of entry {outbox_id}: {e}");
            tracing::error!(destination = %name, "{msg}");
            self.shared.set_error(&msg);
            self.journal.release(&[outbox_id]).await;
        }
    }
}

/// A delivery error without the answer body an HTTP destination sent back (`HTTP 400: <body>`
/// → `HTTP 400`): a FHIR server's OperationOutcome may quote the record, so the body is logged
/// at debug only (the journal keeps the whole error for the admin API).
fn without_body(message: &str) -> &str {
    match message.find("HTTP ") {
        Some(i) => match message[i..].find(": ") {
            Some(j) => &message[..i + j],
            None => message,
        },
        None => message,
    }
}

struct Runner {
    marker: Marker,
    sink: Arc<Sink>,
    options: WorkerOptions,
    shutdown: watch::Receiver<bool>,
    paused: watch::Receiver<bool>,
}

/// Resolves when shutdown is asked for (or the worker handle is gone).
async fn stop_requested(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

impl Runner {
    fn stopping(&self) -> bool {
        *self.shutdown.borrow() || self.shutdown.has_changed().is_err()
    }

    fn name(&self) -> &str {
        &self.marker.shared.name
    }

    async fn run(mut self) {
        tracing::debug!(destination = %self.name(), "delivery worker started");
        while !self.stopping() {
            if *self.paused.borrow_and_update() {
                tokio::select! {
                    _ = self.paused.wait_for(|p| !*p) => {}
                    _ = stop_requested(&mut self.shutdown) => {}
                }
                continue;
            }
            // Not cancelled midway: a cancelled claim would leave its entries in flight.
            let claimed = self
                .marker
                .journal
                .claim(self.name(), now_ms(), self.options.batch)
                .await
                .map(|claim| {
                    // Entries whose record does not read back, dead-lettered by the claim.
                    if claim.dead_lettered > 0 {
                        let shared = &self.marker.shared;
                        shared
                            .dead
                            .fetch_add(claim.dead_lettered, Ordering::Relaxed);
                        telemetry::dead_lettered(&shared.name, claim.dead_lettered); // metrics
                    }
                    claim.items
                });
            match claimed {
                Ok(items) if items.is_empty() => self.idle().await,
                // Paused while the claim was on its way (the check above came first): a pause
                // claims nothing new, so the entries go back untouched for after the resume.
                Ok(items) if *self.paused.borrow() => {
                    let ids: Vec<i64> = items.iter().map(|i| i.outbox_id).collect();
                    self.marker.journal.release(&ids).await;
                }
                Ok(items) => self.process(items).await,
                Err(e) => {
                    let msg = format!("cannot claim entries: {e}");
                    tracing::error!(destination = %self.name(), "{msg}");
                    self.marker.shared.set_error(&msg);
                    self.sleep(self.options.error_pause).await;
                }
            }
        }
        tracing::debug!(destination = %self.name(), "delivery worker stopped");
    }

    /// Waits until the next entry is due, a wake-up or shutdown.
    async fn idle(&mut self) {
        let delay = match self.marker.journal.next_due_at(self.name()).await {
            Ok(Some(at)) => Duration::from_millis(at.saturating_sub(now_ms()).max(0) as u64)
                .clamp(MIN_IDLE, self.options.idle_poll.max(MIN_IDLE)),
            Ok(None) => self.options.idle_poll,
            Err(e) => {
                let msg = format!("cannot read the next due time: {e}");
                self.marker.shared.set_error(&msg);
                self.options.error_pause
            }
        };
        self.sleep(delay).await;
    }

    /// Sleeps for `delay`, cut short by a wake-up or shutdown.
    async fn sleep(&mut self, delay: Duration) {
        let shared = self.marker.shared.clone();
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(delay) => {}
            _ = stop_requested(&mut self.shutdown) => {}
        }
    }

    /// Delivers one claim and marks the outcomes.
    async fn process(&mut self, items: Vec<OutboxItem>) {
        let sink = self.sink.clone();
        let attempts = match &*sink {
            // A file write is a few system calls, a stored record a few rows: the whole claim
            // goes to one blocking task (and, for the record store, one transaction).
            Sink::File(file) if !self.stopping() => {
                let (keys, records) = self.start_whole(items);
                self.end_whole(keys, file.deliver_all(records).await)
            }
            Sink::RecordStore(store) if !self.stopping() => {
                let (keys, records) = self.start_whole(items);
                self.end_whole(keys, store.deliver_all(records).await)
            }
            _ => self.deliver_each(items).await,
        };
        self.finish(attempts).await;
    }

    /// A claim handed whole to its sink: the entries' keys (outbox id, attempts before this
    /// one) and their records, all counted in flight.
    fn start_whole(&self, items: Vec<OutboxItem>) -> (Vec<(i64, u32)>, Vec<Record>) {
        let in_flight = &self.marker.shared.in_flight;
        in_flight.store(items.len(), Ordering::Relaxed);
        items
            .into_iter()
            .map(|i| ((i.outbox_id, i.attempts), i.record))
            .unzip()
    }

    /// The outcomes of a claim handed whole to its sink, one per key, in order.
    fn end_whole(
        &self,
        keys: Vec<(i64, u32)>,
        results: Vec<Result<(), DeliveryError>>,
    ) -> Attempts {
        self.marker.shared.in_flight.store(0, Ordering::Relaxed);
        let mut attempts = Attempts::default();
        for ((outbox_id, tries), result) in keys.into_iter().zip(results) {
            attempts.push(outbox_id, tries, result);
        }
        attempts
    }

    /// Delivers the entries concurrently, at most `concurrency` at once; on shutdown the ones
    /// not started yet are left in `unstarted`.
    async fn deliver_each(&mut self, items: Vec<OutboxItem>) -> Attempts {
        let shared = self.marker.shared.clone();
        let mut queue: VecDeque<OutboxItem> = items.into();
        let mut tasks = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, (i64, u32)> = HashMap::new();
        let mut attempts = Attempts::default();
        loop {
            while tasks.len() < self.options.concurrency && !self.stopping() {
                let Some(item) = queue.pop_front() else { break };
                let key = (item.outbox_id, item.attempts);
                let sink = self.sink.clone();
                let handle = tasks.spawn(async move { sink.deliver(&item.record).await });
                running.insert(handle.id(), key);
            }
            shared.in_flight.store(tasks.len(), Ordering::Relaxed);
            let Some(joined) = tasks.join_next_with_id().await else {
                break;
            };
            let (task, result) = match joined {
                Ok((task, result)) => (task, result),
                Err(e) => (
                    e.id(),
                    Err(DeliveryError::retryable(format!(
                        "delivery task failed: {e}"
                    ))),
                ),
            };
            let Some((outbox_id, tries)) = running.remove(&task) else {
                continue;
            };
            attempts.push(outbox_id, tries, result);
        }
        shared.in_flight.store(0, Ordering::Relaxed);
        attempts.unstarted = queue.iter().map(|i| i.outbox_id).collect();
        attempts
    }

    /// Releases what was not started, makes the deliveries durable and marks the outcomes.
    async fn finish(&mut self, attempts: Attempts) {
        let Attempts {
            mut delivered,
            mut failures,
            unstarted,
        } = attempts;
        let journal = &self.marker.journal;
        if !unstarted.is_empty() {
            // Shutdown: claimed but never started.
            journal.release(&unstarted).await;
        }
        if !delivered.is_empty()
            && let Err(e) = self.sink.sync().await
        {
            // Written but maybe not durable: try them again (sinks are idempotent).
            failures.extend(
                delivered
                    .drain(..)
                    .map(|(id, attempts)| (id, attempts, e.clone())),
            );
        }
        let now = now_ms();
        // Marked concurrently, so that the journal commits them together.
        let mut marks = JoinSet::new();
        if !delivered.is_empty() {
            let marker = self.marker.clone();
            let ids = delivered.into_iter().map(|(id, _)| id).collect();
            marks.spawn(async move { marker.delivered(ids, now).await });
        }
        for (outbox_id, attempts, err) in failures {
            let marker = self.marker.clone();
            marks.spawn(async move { marker.failed(outbox_id, attempts, err, now).await });
        }
        while marks.join_next().await.is_some() {}
    }
}

/// The outcomes of a claim's deliveries.
#[derive(Default)]
struct Attempts {
    /// (outbox id, attempts before this one)
    delivered: Vec<(i64, u32)>,
    failures: Vec<(i64, u32, DeliveryError)>,
    /// Claimed, never started (shutdown).
    unstarted: Vec<i64>,
}

impl Attempts {
    fn push(&mut self, outbox_id: i64, tries: u32, result: Result<(), DeliveryError>) {
        match result {
            Ok(()) => self.delivered.push((outbox_id, tries)),
            Err(e) => self.failures.push((outbox_id, tries, e)),
        }
    }
}
