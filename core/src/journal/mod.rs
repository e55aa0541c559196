//! The durable journal: one SQLite file (WAL, `synchronous=FULL`) holding every received
//! message, its outcome, its records and the outbox of deliveries.
//!
//! ## Write path: group commit
//! All writes go to ONE dedicated thread that owns the write connection. Callers send a request
//! and await a oneshot reply. The thread takes the first queued request, then drains whatever
//! else is queued (up to [`MAX_BATCH_REQUESTS`] requests or [`MAX_BATCH_BYTES`] bytes), runs
//! them all in one transaction (a savepoint per request, so one bad request fails alone),
//! commits (one fsync) and answers everyone. Under light load a message commits alone at
//! once; under heavy load requests pile up during an fsync and the next transaction takes them
//! all, and when it already holds two or more it applies them and stays open until
//! [`JournalOptions::commit_wait`] (1 ms by default, `[journal] commit_wait`) after it took
//! the first, then takes what arrived meanwhile: larger transactions cost less per write
//! (fewer fsyncs, pages rewritten once), which under load shortens the queue more than the
//! wait adds, and the work done during the wait is not added to it (docs/benchmarks.md
//! sections 12 to 14). A reply means the data is durable.
//! WAL checkpoints run on a background thread (`checkpoint`), not inside a commit.
//!
//! ## Read path
//! Queries and claims run on a small pool of read-only connections in `spawn_blocking`: in WAL
//! mode they see the last committed state and neither wait for nor delay the writer (a slow
//! message-browser query must not stall ingest acknowledgements).
//!
//! ## Claims and the in-flight set
//! [`Journal::claim`] hands out pending outbox entries and remembers them in an in-memory
//! in-flight set (per destination) until they are marked or released; after a crash they are
//! simply pending again. Ids leave the set only after the mark is committed, and a claim holds
//! its destination's set from before its read snapshot to the end, so a claim can never see an
//! entry as pending in a stale snapshot while it is no longer in flight.

mod backend;
mod checkpoint;
mod error;
pub mod jetstream;
mod read;
mod schema;
mod stored_json;
mod types;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use dashmap::DashMap;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::record::Record;

pub use backend::{JournalBackend, QueuedMessage};
pub use checkpoint::CheckpointTuning;
pub use error::JournalError;
pub use jetstream::JetStreamJournal;
pub use schema::SCHEMA_VERSION;
pub use types::{
    AttemptView, Claim, CommitReceipt, DEFAULT_SEARCH_LIMIT, DeadLetter, DeliveryState,
    IngestedMessage, JournalSettings, JournalStats, MAX_SEARCH_LIMIT, MessageFilter, MessageId,
    MessageStatus, MessageSummary, MessageView, OutboxItem, OutboxState, Outcome, RecordView,
    RoutedRecord,
};

use checkpoint::Checkpointer;
use writer::{Done, Op, Request};

/// At most this many requests per transaction.
pub const MAX_BATCH_REQUESTS: usize = 1_000;
/// A transaction stops taking requests once their payloads and records reach this size.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// [`Journal::prune_delivered`] deletes at most this many messages per transaction.
const PRUNE_CHUNK: usize = 2_000;
const READERS: usize = 2;

#[derive(Default)]
pub(crate) struct Counters {
    pub transactions: AtomicU64,
    pub requests: AtomicU64,
    pub failed_transactions: AtomicU64,
    pub largest_batch: AtomicU64,
    pub wal_rewinds: AtomicU64,
    /// Pending outbox entries per destination: counted at open, then moved by the writer
    /// thread after each commit (never by a rolled-back request).
    pub pending: DashMap<String, AtomicI64>,
}

/// How long a busy transaction waits for more writes by default ([`JournalOptions::commit_wait`]).
pub const DEFAULT_COMMIT_WAIT: Duration = Duration::from_millis(1);

/// How to open a journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOptions {
    /// Cap on the database file, MiB (`PRAGMA max_page_count`); past it commits fail with
    /// [`JournalError::DiskFull`].
    pub max_size_mib: Option<u64>,
    /// When WAL checkpoints run (the defaults suit production; tests shrink them).
    pub checkpoint: CheckpointTuning,
    /// A transaction that already has two writes or more (the journal is busy) applies them,
    /// then stays open until this long after it took the first, for more writes to share its
    /// fsync and its rewrites of the same pages. A lone write commits at once. Zero: never wait.
    pub commit_wait: Duration,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            max_size_mib: None,
            checkpoint: CheckpointTuning::default(),
            commit_wait: DEFAULT_COMMIT_WAIT,
        }
    }
}

type InFlight = Arc<tokio::sync::Mutex<HashSet<i64>>>;

struct Inner {
    tx: mpsc::UnboundedSender<Request>,
    thread: Mutex<Option<JoinHandle<()>>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    inflight: Mutex<HashMap<String, InFlight>>,
    counters: Arc<Counters>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The writer drains what is queued, commits and exits; wait for it so that the file
        // is closed when the last handle is gone.
        let _ = self.tx.send(Request::Close(None));
        if let Some(handle) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take()
            && handle.join().is_err()
        {
            tracing::error!("the journal writer thread panicked");
        }
    }
}

/// The durable journal. Cheap to clone; all clones share one writer thread.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Journal {
    /// Opens (or creates) the journal file, creates or migrates the schema and starts the
    /// writer thread. Blocking: call it at startup or from `spawn_blocking`.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        Self::open_with(path, JournalOptions::default())
    }

    /// [`Journal::open`] with options.
    pub fn open_with(path: &Path, options: JournalOptions) -> Result<Journal, JournalError> {
        let conn = schema::open_writer(
            path,
            options.max_size_mib,
            options.checkpoint.backstop_pages(),
        )?;
        let io_error = |e: std::io::Error| JournalError::Io {
            path: path.to_path_buf(),
            source: e.into(),
        };
        let checkpointer = Checkpointer::spawn(
            schema::open_checkpointer(path)?,
            std::fs::File::open(path).map_err(io_error)?,
            options.checkpoint,
        )
        .map_err(io_error)?;
        let readers = (0..READERS)
            .map(|_| schema::open_reader(path).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        for (destination, n) in read::pending_counts(&conn)? {
            counters
                .pending
                .insert(destination, AtomicI64::new(n as i64));
        }
        let commit_wait = options.commit_wait;
        let thread = {
            let counters = counters.clone();
            std::thread::Builder::new()
                .name("journal-writer".into())
                .spawn(move || writer::run(conn, rx, counters, checkpointer, commit_wait))
                .map_err(io_error)?
        };
        Ok(Journal {
            inner: Arc::new(Inner {
                tx,
                thread: Mutex::new(Some(thread)),
                readers,
                next_reader: AtomicUsize::new(0),
                inflight: Mutex::new(HashMap::new()),
                counters,
            }),
        })
    }

    /// Stores a message, its outcome, its records and their outbox entries in one durable
    /// transaction (shared with concurrent callers). Acknowledge the sender only after this
    /// returns `Ok`.
    pub async fn commit_message(&self, m: IngestedMessage) -> Result<CommitReceipt, JournalError> {
        // Serialise the records here, on the caller's task, not on the writer thread.
        let prepared = writer::PreparedMessage::new(m);
        match self.request(Op::Commit(Box::new(prepared))).await? {
            Done::Receipt(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Pending entries of `destination` that are due at `now_ms` (ms since the epoch), oldest
    /// first, at most `limit`. Per-patient order: an entry is not due while an older pending
    /// entry of the same patient for the same destination exists (due, backing off or in
    /// flight). Returned entries are in flight until marked or released. The scan walks the
    /// destination's pending entries in id order and stops at `limit` due ones, so its cost
    /// grows with entries blocked behind a backing-off head. Cancelling the returned future
    /// after it started may leave the claimed entries in flight until [`Journal::release`] or
    /// a restart. A due entry whose record does not read back (corrupt row, or written by an
    /// incompatible build) is dead-lettered with the reason instead of being returned, and
    /// counted in [`Claim::dead_lettered`].
    pub async fn claim(
        &self,
        destination: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Claim, JournalError> {
        let set = self.inflight_set(destination);
        // Held from before the read snapshot until the ids are in the set (see module docs).
        let mut guard = set.lock_owned().await;
        let name = destination.to_string();
        let (items, unreadable) = self
            .read(move |conn| {
                let (items, unreadable) = read::claim_due(conn, &name, now_ms, limit, &guard)?;
                guard.extend(items.iter().map(|i| i.outbox_id));
                guard.extend(unreadable.iter().map(|u| u.outbox_id));
                Ok((items, unreadable))
            })
            .await?;
        // Dead letters, with the reason, for the operator (retry once the cause is fixed): an
        // entry whose record never reads back would otherwise fail this claim at every turn.
        let mut dead_lettered = 0;
        for u in unreadable {
            tracing::error!(destination, outbox_id = u.outbox_id, reason = %u.reason,
                "stored record unreadable: entry dead-lettered");
            match self.mark_dead(u.outbox_id, &u.reason).await {
                // Counted (status, metrics) by the delivery worker, as its other dead letters.
                Ok(()) => dead_lettered += 1,
                Err(e) => {
                    tracing::error!(destination, outbox_id = u.outbox_id, error = %e,
                        "cannot dead-letter an unreadable entry");
                    self.release(&[u.outbox_id]).await;
                }
            }
        }
        Ok(Claim {
            items,
            dead_lettered,
        })
    }

    /// [`Journal::claim`]'s entries alone (tests).
    #[cfg(test)]
    pub(crate) async fn claim_due(
        &self,
        destination: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, JournalError> {
        self.claim(destination, now_ms, limit)
            .await
            .map(|claim| claim.items)
    }

    /// The earliest time (ms since the epoch) at which an entry of `destination` that is not
    /// in flight becomes due (may be in the past); `None` when nothing is waiting.
    pub async fn next_due_at(&self, destination: &str) -> Result<Option<i64>, JournalError> {
        let set = self.inflight_set(destination);
        let guard = set.lock_owned().await;
        let destination = destination.to_string();
        self.read(move |conn| read::next_due_at(conn, &destination, &guard))
            .await
    }

    /// Marks entries delivered (one attempt each) and leaves them out of the in-flight set.
    pub async fn mark_delivered(
        &self,
        outbox_ids: &[i64],
        now_ms: i64,
    ) -> Result<(), JournalError> {
        let ids = outbox_ids.to_vec();
        self.request(Op::MarkDelivered {
            ids: ids.clone(),
            now_ms,
        })
        .await?;
        self.release(&ids).await;
        Ok(())
    }

    /// Records a failed attempt (`attempts += 1`); the entry is due again at
    /// `next_attempt_at_ms`.
    pub async fn mark_failed(
        &self,
        outbox_id: i64,
        error: &str,
        next_attempt_at_ms: i64,
    ) -> Result<(), JournalError> {
        self.request(Op::MarkFailed {
            id: outbox_id,
            error: error.to_string(),
            next_attempt_at_ms,
        })
        .await?;
        self.release(&[outbox_id]).await;
        Ok(())
    }

    /// Dead-letters an entry (recorded as a last attempt); it is never handed out again.
    pub async fn mark_dead(&self, outbox_id: i64, error: &str) -> Result<(), JournalError> {
        self.request(Op::MarkDead {
            id: outbox_id,
            error: error.to_string(),
        })
        .await?;
        self.release(&[outbox_id]).await;
        Ok(())
    }

    /// Forgets that entries are in flight without changing them (shutdown): a later claim
    /// hands them out again.
    pub async fn release(&self, outbox_ids: &[i64]) {
        let sets: Vec<InFlight> = self
            .inner
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for set in sets {
            let mut set = set.lock().await;
            for id in outbox_ids {
                set.remove(id);
            }
        }
    }

    /// Deletes messages stored before `older_than_ms` whose every outbox entry is finished
    /// (status `delivered` or `discarded`), with their records when no other message refers to
    /// them. Failed, held, routed and dead messages are kept. Works in chunks so it never holds the writer long.
    pub async fn prune_delivered(&self, older_than_ms: i64) -> Result<u64, JournalError> {
        let mut total = 0;
        loop {
            match self
                .request(Op::Prune {
                    older_than_ms,
                    limit: PRUNE_CHUNK,
                })
                .await?
            {
                Done::Count(n) => {
                    total += n;
                    if n < PRUNE_CHUNK as u64 {
                        return Ok(total);
                    }
                }
                other => return Err(unexpected(other)),
            }
        }
    }

    /// One message with its records and their deliveries.
    pub async fn message(&self, id: MessageId) -> Result<Option<MessageView>, JournalError> {
        self.read(move |conn| read::message(conn, id)).await
    }

    /// The records of a message (empty for an unknown message).
    pub async fn records_for_message(
        &self,
        id: MessageId,
    ) -> Result<Vec<RecordView>, JournalError> {
        self.read(move |conn| read::records_for_message(conn, id))
            .await
    }

    /// Number of messages per status (kept up to date by triggers: no table scan).
    pub async fn count_by_status(&self) -> Result<HashMap<String, u64>, JournalError> {
        self.read(read::count_by_status).await
    }

    /// Pending entries of `destination` (in flight included), from memory: counted when the
    /// journal was opened, then kept up to date by every commit. Cheap (for back-pressure).
    pub fn pending(&self, destination: &str) -> u64 {
        self.inner
            .counters
            .pending
            .get(destination)
            .map_or(0, |n| n.load(Ordering::Relaxed).max(0) as u64)
    }

    /// Puts a message stored as held ([`Outcome::Held`]) through its processing now: `outcome`
    /// (adapted or failed) replaces the held one in the same row (its id, payload and receive
    /// time stay), with the records and outbox entries of an adapted outcome. `None` when the
    /// message is not held (any more): resolving twice is harmless.
    pub async fn resolve_held(
        &self,
        id: MessageId,
        outcome: Outcome,
    ) -> Result<Option<CommitReceipt>, JournalError> {
        let prepared = writer::PreparedResolve::new(id, outcome);
        match self.request(Op::ResolveHeld(Box::new(prepared))).await? {
            Done::Resolved(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Messages stored as held for `plugin` ([`Outcome::Held`], not resolved yet), oldest
    /// first, with an id above `after`, at most `limit`.
    pub async fn held_messages(
        &self,
        plugin: &str,
        after: MessageId,
        limit: usize,
    ) -> Result<Vec<MessageId>, JournalError> {
        let plugin = plugin.to_string();
        self.read(move |conn| read::held_messages(conn, &plugin, after, limit))
            .await
    }

    /// The number of messages stored as held (not resolved yet), per plugin.
    pub async fn held_counts(&self) -> Result<HashMap<String, u64>, JournalError> {
        self.read(read::held_counts).await
    }

    /// Queue depth: pending entries of `destination` (in flight included).
    pub async fn pending_count(&self, destination: &str) -> Result<u64, JournalError> {
        let destination = destination.to_string();
        self.read(move |conn| read::pending_count(conn, &destination))
            .await
    }

    /// Dead letters, newest first, of one destination or of all.
    pub async fn dead_letters(
        &self,
        destination: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, JournalError> {
        let destination = destination.map(str::to_string);
        self.read(move |conn| read::dead_letters(conn, destination.as_deref(), limit))
            .await
    }

    /// Dead letters per destination (destinations without any are left out).
    pub async fn dead_counts(&self) -> Result<HashMap<String, u64>, JournalError> {
        self.read(read::dead_counts).await
    }

    /// Messages matching `filter`, newest first (see [`MessageFilter`]).
    pub async fn search(&self, filter: MessageFilter) -> Result<Vec<MessageSummary>, JournalError> {
        self.read(move |conn| read::search(conn, &filter)).await
    }

    /// Sends a dead letter back to the queue: `pending`, attempts reset to 0, due at once (the
    /// caller wakes the destination's worker). Its messages are `routed` again (or stay `dead`
    /// while another of their entries is). Returns the entry's destination, or `None` when
    /// `outbox_id` is not a dead letter.
    pub async fn retry_dead(&self, outbox_id: i64) -> Result<Option<String>, JournalError> {
        match self.request(Op::RetryDead { id: outbox_id }).await? {
            Done::Destination(d) => Ok(d),
            other => Err(unexpected(other)),
        }
    }

    /// Replay support: the delivered (or dead-lettered) entries of the records of message
    /// `id` go back to the queue, so every destination receives the current version again and
    /// deduplicates it by record id. Returns the destinations to wake (one per entry).
    pub async fn redeliver(&self, id: MessageId) -> Result<Vec<String>, JournalError> {
        match self.request(Op::Redeliver { message_id: id.0 }).await? {
            Done::Destinations(d) => Ok(d),
            other => Err(unexpected(other)),
        }
    }

    /// Gives up on a dead letter: it becomes `discarded` (kept for the audit trail, never
    /// delivered). A message whose entries are all finished then has status `discarded` (or
    /// `delivered` when none of them is). Returns the entry's destination, or `None` when
    /// `outbox_id` is not a dead letter.
    pub async fn discard_dead(&self, outbox_id: i64) -> Result<Option<String>, JournalError> {
        match self.request(Op::DiscardDead { id: outbox_id }).await? {
            Done::Destination(d) => Ok(d),
            other => Err(unexpected(other)),
        }
    }

    /// Every delivery attempt of an outbox entry, oldest first.
    pub async fn attempts(&self, outbox_id: i64) -> Result<Vec<AttemptView>, JournalError> {
        self.read(move |conn| read::attempts(conn, outbox_id)).await
    }

    /// The settings of the write connection (for diagnostics).
    pub async fn settings(&self) -> Result<JournalSettings, JournalError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Request::Settings(reply))
            .map_err(|_| JournalError::Closed)?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Counters of the writer thread.
    pub fn stats(&self) -> JournalStats {
        let c = &self.inner.counters;
        JournalStats {
            transactions: c.transactions.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            failed_transactions: c.failed_transactions.load(Ordering::Relaxed),
            largest_batch: c.largest_batch.load(Ordering::Relaxed),
            wal_rewinds: c.wal_rewinds.load(Ordering::Relaxed),
        }
    }

    /// Stops the writer: what is queued is committed, later requests fail with
    /// [`JournalError::Closed`] (also through other clones).
    pub async fn close(self) {
        let (reply, rx) = oneshot::channel();
        if self.inner.tx.send(Request::Close(Some(reply))).is_ok() {
            let _ = rx.await;
        }
        // Dropping the last clone joins the (finished) thread.
        let inner = self.inner;
        let _ = tokio::task::spawn_blocking(move || drop(inner)).await;
    }

    async fn request(&self, op: Op) -> Result<Done, JournalError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Request::Tx { op, reply })
            .map_err(|_| JournalError::Closed)?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Runs `f` on a read connection in `spawn_blocking`.
    async fn read<T, F>(&self, f: F) -> Result<T, JournalError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, JournalError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let n = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let conn = inner.readers[n].lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| JournalError::Internal(format!("journal reader task failed: {e}")))?
    }

    fn inflight_set(&self, destination: &str) -> InFlight {
        self.inner
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(destination.to_string())
            .or_default()
            .clone()
    }

    /// Pages in the database file now (tests: cap the file at its current size).
    #[cfg(test)]
    pub(crate) async fn page_count(&self) -> i64 {
        self.read(|c| {
            c.query_row("PRAGMA page_count", [], |r| r.get(0))
                .map_err(|e| JournalError::sqlite("test", e))
        })
        .await
        .unwrap_or(0)
    }

    /// Runs SQL on the write connection, outside any batch (tests: e.g. limit the file size).
    #[cfg(test)]
    pub(crate) async fn exec_on_writer(&self, sql: &str) -> Result<(), JournalError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Request::Exec(sql.to_string(), reply))
            .map_err(|_| JournalError::Closed)?;
        rx.await.map_err(|_| JournalError::Closed)?
    }
}

/// Read-only access to a journal file without the daemon (`passerelle messages` when it is
/// stopped): no writer thread, no schema change; the file must exist.
pub struct JournalReader {
    conn: Connection,
}

impl JournalReader {
    /// Opens `path` read-only. Fails when the file does not exist or has a newer schema.
    pub fn open(path: &Path) -> Result<JournalReader, JournalError> {
        if !path.exists() {
            return Err(JournalError::Missing {
                path: path.to_path_buf(),
            });
        }
        let conn = schema::open_reader(path)?;
        let version: i64 = conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_version",
                [],
                |r| r.get(0),
            )
            .map_err(error::ctx("reading the schema version"))?;
        // A journal no daemon has migrated yet (version 1) reads as is: what version 2 changed
        // for readers is how `records.json` is stored, and both forms read back.
        if !(1..=SCHEMA_VERSION).contains(&version) {
            return Err(JournalError::UnsupportedSchema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(JournalReader { conn })
    }

    pub fn search(&self, filter: &MessageFilter) -> Result<Vec<MessageSummary>, JournalError> {
        read::search(&self.conn, filter)
    }

    pub fn message(&self, id: MessageId) -> Result<Option<MessageView>, JournalError> {
        read::message(&self.conn, id)
    }

    pub fn attempts(&self, outbox_id: i64) -> Result<Vec<AttemptView>, JournalError> {
        read::attempts(&self.conn, outbox_id)
    }
}

fn unexpected(d: Done) -> JournalError {
    JournalError::Internal(format!("unexpected writer reply {d:?}"))
}

/// Milliseconds since the Unix epoch (the journal clock).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The key that orders deliveries: the INS value, else the first local id, else the record id.
pub fn patient_key(record: &Record) -> String {
    let p = &record.envelope.patient;
    if let Some(ins) = &p.ins {
        format!("ins:{}", ins.value)
    } else if let Some(id) = p.local_ids.first() {
        format!("local:{}|{}", id.system, id.value)
    } else {
        format!("record:{}", record.envelope.id)
    }
}
