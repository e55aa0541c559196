//! The writer thread: group commit of every write request.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::{self, Checkpointer};
use super::error::{JournalError, ctx};
use super::stored_json;
use super::{
    CommitReceipt, Counters, IngestedMessage, JournalSettings, MAX_BATCH_BYTES, MAX_BATCH_REQUESTS,
    MessageId, MessageStatus, Outcome, now_ms, patient_key,
};

type Reply<T> = oneshot::Sender<Result<T, JournalError>>;

pub(super) enum Request {
    /// A write, run in the next group-commit transaction.
    Tx {
        op: Op,
        reply: Reply<Done>,
    },
    Settings(Reply<JournalSettings>),
    /// Commit what is queued, then stop.
    Close(Option<oneshot::Sender<()>>),
    #[cfg(test)]
    Exec(String, Reply<()>),
}

pub(super) enum Op {
    Commit(Box<PreparedMessage>),
    /// A held message gets its outcome.
    ResolveHeld(Box<PreparedResolve>),
    MarkDelivered {
        ids: Vec<i64>,
        now_ms: i64,
    },
    MarkFailed {
        id: i64,
        error: String,
        next_attempt_at_ms: i64,
    },
    MarkDead {
        id: i64,
        error: String,
    },
    Prune {
        older_than_ms: i64,
        limit: usize,
    },
    /// Operator: a dead letter back to `pending`.
    RetryDead {
        id: i64,
    },
    /// Operator: a dead letter to `discarded`.
    DiscardDead {
        id: i64,
    },
    /// Operator replay: deliver the current version of a message's records again.
    Redeliver {
        message_id: i64,
    },
}

impl Op {
    /// What the request weighs against [`MAX_BATCH_BYTES`].
    fn bytes(&self) -> usize {
        match self {
            Op::Commit(m) => m.bytes,
            Op::ResolveHeld(r) => r.bytes,
            Op::MarkDelivered { ids, .. } => 64 + ids.len() * 8,
            Op::MarkFailed { error, .. } | Op::MarkDead { error, .. } => 64 + error.len(),
            Op::Prune { .. }
            | Op::RetryDead { .. }
            | Op::DiscardDead { .. }
            | Op::Redeliver { .. } => 64,
        }
    }
}

#[derive(Debug)]
pub(super) enum Done {
    Receipt(CommitReceipt),
    /// `None`: the message was not held.
    Resolved(Option<CommitReceipt>),
    Unit,
    Count(u64),
    /// The destination of the outbox entry acted on; `None`: no such entry in that state.
    Destination(Option<String>),
    /// The destinations of the outbox entries put back in the queue.
    Destinations(Vec<String>),
}

/// A message with its records already serialised (done on the caller's task).
pub(super) struct PreparedMessage {
    source: String,
    content_type: String,
    received_at: String,
    payload: Vec<u8>,
    peer: Option<String>,
    outcome: PreparedOutcome,
    bytes: usize,
}

enum PreparedOutcome {
    Adapted {
        plugin: String,
        plugin_version: String,
        source_message_id: String,
        message_type: Option<String>,
        rules_version: String,
        records: Vec<PreparedRecord>,
    },
    Failed {
        plugin: Option<String>,
        reason: String,
    },
    Held {
        plugin: Option<String>,
        reason: String,
    },
}

/// A held message's new outcome, prepared on the caller's task.
pub(super) struct PreparedResolve {
    id: MessageId,
    outcome: PreparedOutcome,
    bytes: usize,
}

impl PreparedResolve {
    pub(super) fn new(id: MessageId, outcome: Outcome) -> Self {
        let mut bytes = 256;
        let outcome = PreparedOutcome::new(outcome, &mut bytes);
        PreparedResolve { id, outcome, bytes }
    }
}

/// Changes of the pending-entry counts made by one request: `(destination, +1 | -1)`.
type Deltas = Vec<(String, i64)>;

struct PreparedRecord {
    id: String,
    kind: String,
    patient_key: String,
    /// `Record::to_json_line()`, compressed (`super::stored_json`).
    json: Vec<u8>,
    content_sha: [u8; 16],
    route: Option<String>,
    destinations: Vec<String>,
}

impl PreparedOutcome {
    /// Serialises the records; adds their weight to `bytes`.
    fn new(outcome: Outcome, bytes: &mut usize) -> Self {
        match outcome {
            Outcome::Adapted {
                plugin,
                plugin_version,
                source_message_id,
                message_type,
                rules_version,
                records,
            } => PreparedOutcome::Adapted {
                plugin,
                plugin_version,
                source_message_id,
                message_type,
                rules_version,
                records: records
                    .into_iter()
                    .map(|r| {
                        let json = stored_json::compress(&r.record.to_json_line());
                        *bytes += json.len() + 64 * (1 + r.destinations.len());
                        let mut seen = HashSet::new();
                        PreparedRecord {
                            id: r.record.envelope.id.clone(),
                            kind: r.record.envelope.kind.clone(),
                            patient_key: patient_key(&r.record),
                            content_sha: content_digest(&r.record),
                            json,
                            route: r.route,
                            destinations: r
                                .destinations
                                .into_iter()
                                .filter(|d| seen.insert(d.clone()))
                                .collect(),
                        }
                    })
                    .collect(),
            },
            Outcome::Failed { plugin, reason } => PreparedOutcome::Failed { plugin, reason },
            Outcome::Held { plugin, reason } => PreparedOutcome::Held { plugin, reason },
        }
    }
}

impl PreparedMessage {
    pub(super) fn new(m: IngestedMessage) -> Self {
        let mut bytes = m.payload.len() + 256;
        let outcome = PreparedOutcome::new(m.outcome, &mut bytes);
        PreparedMessage {
            source: m.source,
            content_type: m.content_type,
            received_at: m.received_at,
            payload: m.payload,
            peer: m.peer,
            outcome,
            bytes,
        }
    }
}

/// The thread body: batch, run, commit, answer; until closed.
pub(super) fn run(
    conn: Connection,
    mut rx: mpsc::UnboundedReceiver<Request>,
    counters: Arc<Counters>,
    checkpointer: Checkpointer,
    commit_wait: Duration,
) {
    let mut batch = Batch {
        ops: Vec::with_capacity(MAX_BATCH_REQUESTS),
        bytes: 0,
        close_replies: Vec::new(),
    };
    while let Some(first) = rx.blocking_recv() {
        let opened = Instant::now();
        batch.take(first, &conn, &mut rx);
        batch.drain(&conn, &mut rx);
        if !batch.ops.is_empty() {
            let wait = Wait {
                until: opened + commit_wait,
                rx: &mut rx,
            };
            run_batch(&conn, &mut batch, wait, &counters);
        }
        batch.bytes = 0;
        if checkpointer.reset_due() && rewind_wal(&conn) {
            counters.wal_rewinds.fetch_add(1, Ordering::Relaxed);
        }
    }
    // The background checkpoint stops first; closing the write connection then checkpoints
    // what is left.
    drop(checkpointer);
    drop(conn);
    for reply in batch.close_replies {
        let _ = reply.send(());
    }
    tracing::debug!("journal writer stopped");
}

/// The writes of the next transaction, and what the writer answers on the way.
struct Batch {
    ops: Vec<(Op, Reply<Done>)>,
    bytes: usize,
    close_replies: Vec<oneshot::Sender<()>>,
}

impl Batch {
    fn full(&self) -> bool {
        self.ops.len() >= MAX_BATCH_REQUESTS || self.bytes >= MAX_BATCH_BYTES
    }

    /// Takes what is queued, until the batch is full.
    fn drain(&mut self, conn: &Connection, rx: &mut mpsc::UnboundedReceiver<Request>) {
        while !self.full() {
            let Ok(req) = rx.try_recv() else { break };
            self.take(req, conn, rx);
        }
    }

    fn take(&mut self, req: Request, conn: &Connection, rx: &mut mpsc::UnboundedReceiver<Request>) {
        match req {
            Request::Tx { op, reply } => {
                self.bytes += op.bytes();
                self.ops.push((op, reply));
            }
            Request::Settings(reply) => {
                let _ = reply.send(settings(conn));
            }
            Request::Close(reply) => {
                // Refuse new requests; those already queued are still received.
                rx.close();
                self.close_replies.extend(reply);
            }
            #[cfg(test)]
            Request::Exec(sql, reply) => {
                let _ = reply.send(conn.execute_batch(&sql).map_err(ctx("test exec")));
            }
        }
    }
}

/// Copies the frames committed since the background checkpoint's last pass, between two
/// transactions, so that the next transaction rewinds the WAL (see `super::checkpoint`).
/// `true` when every frame was copied (a reader still on old frames can prevent it).
fn rewind_wal(conn: &Connection) -> bool {
    match checkpoint::passive(conn) {
        Ok(pass) => {
            tracing::debug!(
                busy = pass.busy,
                wal_pages = pass.log,
                copied = pass.copied,
                "WAL checkpoint before rewinding"
            );
            !pass.busy && pass.copied == pass.log
        }
        Err(e) => {
            tracing::warn!(error = %e, "WAL checkpoint before rewinding failed");
            false
        }
    }
}

/// How long a busy transaction stays open for more writes, and where they come from.
struct Wait<'a> {
    until: Instant,
    rx: &'a mut mpsc::UnboundedReceiver<Request>,
}

/// Runs one group-commit transaction and answers every request of the batch.
///
/// Busy (more than one write queued): the writes already queued are applied at once, then the
/// transaction stays open until `wait.until` for the writes on their way, so that they share
/// its fsync and its rewrites of the same pages; applying the first ones during that wait
/// rather than after it shortens the commit cycle every write waits for.
fn run_batch(conn: &Connection, batch_in: &mut Batch, wait: Wait<'_>, counters: &Counters) {
    let fail_all = |batch: &mut Vec<(Op, Reply<Done>)>, e: JournalError| {
        counters.failed_transactions.fetch_add(1, Ordering::Relaxed);
        tracing::error!(error = %e, requests = batch.len(), "journal transaction failed");
        for (_, reply) in batch.drain(..) {
            let _ = reply.send(Err(e.clone()));
        }
    };

    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        return fail_all(
            &mut batch_in.ops,
            JournalError::sqlite("starting a transaction", e),
        );
    }
    // Optimistic first: no savepoints (a savepoint makes SQLite copy every already-dirty page
    // a request touches). If a request fails, start over with one savepoint per request.
    let mut deltas = Deltas::new();
    let busy = batch_in.ops.len() > 1 && !batch_in.full();
    let mut outcome = run_ops(
        conn,
        batch_in.ops.iter().map(|(op, _)| op),
        false,
        &mut deltas,
    );
    if busy && let Ok(Some(results)) = &mut outcome {
        let left = wait.until.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            std::thread::sleep(left);
        }
        let applied = batch_in.ops.len();
        batch_in.drain(conn, wait.rx);
        let late = batch_in.ops[applied..].iter().map(|(op, _)| op);
        match run_ops(conn, late, false, &mut deltas) {
            Ok(Some(more)) => results.extend(more),
            other => outcome = other,
        }
    }
    let batch = &mut batch_in.ops;
    let n = batch.len() as u64;
    counters.requests.fetch_add(n, Ordering::Relaxed);
    counters.largest_batch.fetch_max(n, Ordering::Relaxed);
    let ops = || batch.iter().map(|(op, _)| op);
    let outcome = match outcome {
        Ok(None) => exec(conn, "ROLLBACK")
            .and_then(|()| exec(conn, "BEGIN IMMEDIATE"))
            .map_err(ctx("restarting a transaction"))
            .and_then(|()| {
                deltas.clear();
                run_ops(conn, ops(), true, &mut deltas)
            }),
        other => other,
    };
    let results = match outcome.and_then(|r| {
        let r =
            r.ok_or_else(|| JournalError::Internal("request retry without savepoints".into()))?;
        exec(conn, "COMMIT").map_err(ctx("committing"))?;
        Ok(r)
    }) {
        Ok(results) => results,
        Err(e) => return abort(conn, batch, e, fail_all),
    };
    counters.transactions.fetch_add(1, Ordering::Relaxed);
    // Committed: the pending counts move before anyone hears of it.
    for (destination, delta) in deltas {
        match counters.pending.get(&destination) {
            Some(n) => {
                n.fetch_add(delta, Ordering::Relaxed);
            }
            None => {
                counters
                    .pending
                    .entry(destination)
                    .or_default()
                    .fetch_add(delta, Ordering::Relaxed);
            }
        }
    }
    for ((_, reply), result) in batch.drain(..).zip(results) {
        let _ = reply.send(result);
    }
}

/// Runs the requests of a batch. With `savepoints`, each runs in its own savepoint: a request
/// that fails is rolled back alone and gets its error. Without, the first failing request
/// stops the run with `Ok(None)` (the caller rolls back and retries with savepoints). `Err`
/// means the whole transaction is lost. The pending-count changes of the requests that
/// succeeded are added to `deltas`.
fn run_ops<'a>(
    conn: &Connection,
    ops: impl Iterator<Item = &'a Op>,
    savepoints: bool,
    deltas: &mut Deltas,
) -> Result<Option<Vec<Result<Done, JournalError>>>, JournalError> {
    let now = now_ms();
    let mut results = Vec::new();
    let mut op_deltas = Deltas::new();
    for op in ops {
        if savepoints {
            exec(conn, "SAVEPOINT request").map_err(ctx("starting a savepoint"))?;
        }
        op_deltas.clear();
        match apply(conn, op, now, &mut op_deltas) {
            Ok(done) => {
                if savepoints {
                    exec(conn, "RELEASE request").map_err(ctx("releasing a savepoint"))?;
                }
                deltas.append(&mut op_deltas);
                results.push(Ok(done));
            }
            // SQLite rolled the whole transaction back (disk full, I/O error): every request
            // of the batch is lost, not only this one.
            Err(e) if conn.is_autocommit() => return Err(e),
            Err(_) if !savepoints => return Ok(None),
            Err(e) => {
                exec(conn, "ROLLBACK TO request")
                    .and_then(|()| exec(conn, "RELEASE request"))
                    .map_err(ctx("rolling back a savepoint"))?;
                results.push(Err(e));
            }
        }
    }
    Ok(Some(results))
}

/// Rolls the open transaction back (if SQLite did not already) and fails the whole batch.
fn abort(
    conn: &Connection,
    batch: &mut Vec<(Op, Reply<Done>)>,
    e: JournalError,
    fail_all: impl Fn(&mut Vec<(Op, Reply<Done>)>, JournalError),
) {
    if !conn.is_autocommit()
        && let Err(e2) = exec(conn, "ROLLBACK")
    {
        tracing::error!(error = %e2, "journal rollback failed");
    }
    fail_all(batch, e)
}

fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn apply(conn: &Connection, op: &Op, now: i64, deltas: &mut Deltas) -> Result<Done, JournalError> {
    match op {
        Op::Commit(m) => commit_message(conn, m, now, deltas).map(Done::Receipt),
        Op::ResolveHeld(r) => resolve_held(conn, r, now, deltas).map(Done::Resolved),
        Op::MarkDelivered { ids, now_ms } => {
            for &id in ids {
                finish(conn, id, "delivered", None, *now_ms, deltas)?;
            }
            Ok(Done::Unit)
        }
        Op::MarkFailed {
            id,
            error,
            next_attempt_at_ms,
        } => mark_failed(conn, *id, error, *next_attempt_at_ms, now).map(|()| Done::Unit),
        Op::MarkDead { id, error } => {
            finish(conn, *id, "dead", Some(error), now, deltas).map(|()| Done::Unit)
        }
        Op::Prune {
            older_than_ms,
            limit,
        } => prune(conn, *older_than_ms, *limit).map(Done::Count),
        Op::RetryDead { id } => {
            let d = operator_action(conn, *id, "requeued", now)?;
            if let Some(d) = &d {
                deltas.push((d.clone(), 1));
            }
            Ok(Done::Destination(d))
        }
        Op::DiscardDead { id } => {
            operator_action(conn, *id, "discarded", now).map(Done::Destination)
        }
        Op::Redeliver { message_id } => {
            let destinations = redeliver(conn, *message_id, now)?;
            for d in &destinations {
                deltas.push((d.clone(), 1));
            }
            Ok(Done::Destinations(destinations))
        }
    }
}

/// Puts the delivered (or dead) entries of a message's records — their current version — back
/// in the queue, and reopens the messages that refer to them. Destinations are idempotent by
/// record id, so the second delivery replaces the first.
fn redeliver(conn: &Connection, message_id: i64, now: i64) -> Result<Vec<String>, JournalError> {
    let e = ctx("re-queueing a replayed message's deliveries");
    let requeued: Vec<(i64, String)> = conn
        .prepare_cached(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = 0, finished_at = NULL
             WHERE state IN ('delivered', 'dead')
               AND rec IN (SELECT rec FROM message_records WHERE message_id = ?1)
               AND version = (SELECT version FROM records WHERE records.rec = outbox.rec)
             RETURNING id, destination",
        )
        .and_then(|mut s| {
            s.query_map([message_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(&e)?;
    for (id, _) in &requeued {
        record_attempt(conn, *id, now, "requeued", Some("replayed by an operator")).map_err(&e)?;
    }
    if !requeued.is_empty() {
        conn.prepare_cached(
            "UPDATE messages SET status = 'routed'
             WHERE status IN ('delivered', 'dead')
               AND id IN (SELECT message_id FROM message_records WHERE rec IN
                          (SELECT rec FROM message_records WHERE message_id = ?1))",
        )
        .and_then(|mut s| s.execute([message_id]))
        .map_err(&e)?;
    }
    Ok(requeued.into_iter().map(|(_, d)| d).collect())
}

/// The `messages` columns an outcome sets.
struct Columns<'a> {
    outcome: &'static str,
    status: MessageStatus,
    error: Option<String>,
    plugin: Option<&'a str>,
    plugin_version: Option<&'a str>,
    source_message_id: Option<&'a str>,
    message_type: Option<&'a str>,
    rules_version: Option<&'a str>,
}

fn columns(outcome: &PreparedOutcome) -> Columns<'_> {
    match outcome {
        PreparedOutcome::Adapted {
            plugin,
            plugin_version,
            source_message_id,
            message_type,
            rules_version,
            records,
        } => {
            let held = records.iter().filter(|r| r.destinations.is_empty()).count();
            let (status, error) = if held > 0 {
                (
                    MessageStatus::Held,
                    Some(format!(
                        "{held} of {} record(s) matched no route",
                        records.len()
                    )),
                )
            } else {
                (MessageStatus::Routed, None)
            };
            Columns {
                outcome: "adapted",
                status,
                error,
                plugin: Some(plugin.as_str()),
                plugin_version: Some(plugin_version.as_str()),
                source_message_id: Some(source_message_id.as_str()),
                message_type: message_type.as_deref(),
                rules_version: Some(rules_version.as_str()),
            }
        }
        PreparedOutcome::Failed { plugin, reason } => Columns {
            outcome: "failed",
            status: MessageStatus::Failed,
            error: Some(reason.clone()),
            plugin: plugin.as_deref(),
            plugin_version: None,
            source_message_id: None,
            message_type: None,
            rules_version: None,
        },
        PreparedOutcome::Held { plugin, reason } => Columns {
            outcome: "held",
            status: MessageStatus::Held,
            error: Some(reason.clone()),
            plugin: plugin.as_deref(),
            plugin_version: None,
            source_message_id: None,
            message_type: None,
            rules_version: None,
        },
    }
}

fn commit_message(
    conn: &Connection,
    m: &PreparedMessage,
    now: i64,
    deltas: &mut Deltas,
) -> Result<CommitReceipt, JournalError> {
    let e = ctx("storing a message");
    let c = columns(&m.outcome);
    conn.prepare_cached(
        "INSERT INTO messages (source, content_type, received_at, stored_at, peer, outcome,
             status, error, plugin, plugin_version, source_message_id, message_type,
             rules_version, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .and_then(|mut s| {
        s.execute(params![
            m.source,
            m.content_type,
            m.received_at,
            now,
            m.peer,
            c.outcome,
            c.status.as_str(),
            c.error,
            c.plugin,
            c.plugin_version,
            c.source_message_id,
            c.message_type,
            c.rules_version,
            m.payload,
        ])
    })
    .map_err(&e)?;
    let message_id = conn.last_insert_rowid();
    store_records(conn, message_id, &m.outcome, c.status, now, deltas).map_err(&e)
}

/// A held message gets its outcome (same row); `None` when it is not held.
fn resolve_held(
    conn: &Connection,
    r: &PreparedResolve,
    now: i64,
    deltas: &mut Deltas,
) -> Result<Option<CommitReceipt>, JournalError> {
    let e = ctx("resolving a held message");
    let c = columns(&r.outcome);
    let changed = conn
        .prepare_cached(
            "UPDATE messages SET outcome = ?2, status = ?3, error = ?4, plugin = ?5,
                 plugin_version = ?6, source_message_id = ?7, message_type = ?8,
                 rules_version = ?9
             WHERE id = ?1 AND outcome = 'held'",
        )
        .and_then(|mut s| {
            s.execute(params![
                r.id.0,
                c.outcome,
                c.status.as_str(),
                c.error,
                c.plugin,
                c.plugin_version,
                c.source_message_id,
                c.message_type,
                c.rules_version,
            ])
        })
        .map_err(&e)?;
    if changed == 0 {
        return Ok(None);
    }
    store_records(conn, r.id.0, &r.outcome, c.status, now, deltas)
        .map(Some)
        .map_err(&e)
}

/// The records and outbox entries of a stored message's outcome (none unless adapted).
fn store_records(
    conn: &Connection,
    message_id: i64,
    outcome: &PreparedOutcome,
    status: MessageStatus,
    now: i64,
    deltas: &mut Deltas,
) -> rusqlite::Result<CommitReceipt> {
    let mut receipt = CommitReceipt {
        message_id: MessageId(message_id),
        new_records: 0,
        duplicate_records: 0,
    };
    let PreparedOutcome::Adapted { records, .. } = outcome else {
        return Ok(receipt);
    };

    let mut insert_record = conn.prepare_cached(
        "INSERT OR IGNORE INTO records (id, first_message_id, patient_key, kind, json, content_sha)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut find_record =
        conn.prepare_cached("SELECT rec, content_sha, version FROM records WHERE id = ?1")?;
    let mut new_version = conn.prepare_cached(
        "UPDATE records SET json = ?2, content_sha = ?3, kind = ?4, patient_key = ?5,
                 version = version + 1
             WHERE rec = ?1",
    )?;
    let mut link = conn.prepare_cached(
        "INSERT OR IGNORE INTO message_records
                 (message_id, position, rec, route, held, duplicate)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut enqueue = conn.prepare_cached(
        "INSERT OR IGNORE INTO outbox (rec, destination, patient_key, state, created_at, version)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5)",
    )?;
    for (position, r) in records.iter().enumerate() {
        let inserted = insert_record.execute(params![
            r.id,
            message_id,
            r.patient_key,
            r.kind,
            r.json,
            &r.content_sha[..]
        ])? == 1;
        let (rec, version, new): (i64, i64, bool) = if inserted {
            (conn.last_insert_rowid(), 1, true)
        } else {
            let (rec, sha, version): (i64, Vec<u8>, i64) = find_record
                .query_row([&r.id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            if sha == r.content_sha {
                (rec, version, false)
            } else {
                // Same id, other content: the source reused a message id. Never drop it as a
                // duplicate: store it as the record's next version and deliver it again.
                new_version.execute(params![
                    rec,
                    r.json,
                    &r.content_sha[..],
                    r.kind,
                    r.patient_key
                ])?;
                (rec, version + 1, true)
            }
        };
        if new {
            receipt.new_records += 1;
        } else {
            receipt.duplicate_records += 1;
        }
        link.execute(params![
            message_id,
            position as i64,
            rec,
            r.route,
            r.destinations.is_empty(),
            !new
        ])?;
        for d in &r.destinations {
            if enqueue.execute(params![rec, d, r.patient_key, now, version])? == 1 {
                deltas.push((d.clone(), 1));
            }
        }
    }
    // A resend (or a message without records) may have nothing left to deliver.
    if status == MessageStatus::Routed && (records.is_empty() || receipt.duplicate_records > 0) {
        settle(conn, message_id)?;
    }
    Ok(receipt)
}

/// Recomputes the status of a `routed` message from the outbox entries of its records.
///
/// Written with `IN (subquery)` rather than a join: with a join, SQLite's constant propagation
/// compares `?1` with the partial indexes' `state = '...'` and re-prepares the statement at
/// every execution.
fn settle(conn: &Connection, message_id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE messages SET status = CASE
             WHEN EXISTS (SELECT 1 FROM outbox
                          WHERE rec IN (SELECT rec FROM message_records WHERE message_id = ?1)
                            AND state = 'dead') THEN 'dead'
             WHEN EXISTS (SELECT 1 FROM outbox
                          WHERE rec IN (SELECT rec FROM message_records WHERE message_id = ?1)
                            AND state = 'pending') THEN 'routed'
             WHEN EXISTS (SELECT 1 FROM outbox
                          WHERE rec IN (SELECT rec FROM message_records WHERE message_id = ?1)
                            AND state = 'discarded') THEN 'discarded'
             ELSE 'delivered' END
         WHERE id = ?1 AND status = 'routed'",
    )?
    .execute([message_id])?;
    Ok(())
}

/// Delivered or dead: the entry leaves the queue; the messages that refer to it are settled.
fn finish(
    conn: &Connection,
    id: i64,
    state: &'static str,
    error: Option<&str>,
    now: i64,
    deltas: &mut Deltas,
) -> Result<(), JournalError> {
    let op = if state == "delivered" {
        "marking delivered"
    } else {
        "dead-lettering"
    };
    let e = ctx(op);
    // The new state is a literal, not a parameter: a parameter compared with the partial
    // indexes' `state = '...'` makes SQLite re-prepare the statement at every execution.
    let sql = if state == "delivered" {
        "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, finished_at = ?2,
             last_error = COALESCE(?3, last_error)
         WHERE id = ?1 AND state = 'pending' RETURNING destination"
    } else {
        "UPDATE outbox SET state = 'dead', attempts = attempts + 1, finished_at = ?2,
             last_error = COALESCE(?3, last_error)
         WHERE id = ?1 AND state = 'pending' RETURNING destination"
    };
    let destination: Option<String> = conn
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_row(params![id, now, error], |r| r.get(0))
                .optional()
        })
        .map_err(&e)?;
    let Some(destination) = destination else {
        tracing::warn!(
            outbox_id = id,
            state,
            "outbox entry is not pending; mark ignored"
        );
        return Ok(());
    };
    deltas.push((destination, -1));
    record_attempt(conn, id, now, state, error).map_err(&e)?;
    let messages: Vec<i64> = conn
        .prepare_cached(
            "SELECT message_id FROM message_records
             WHERE rec = (SELECT rec FROM outbox WHERE id = ?1)",
        )
        .and_then(|mut s| {
            s.query_map([id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(&e)?;
    for m in messages {
        settle(conn, m).map_err(&e)?;
    }
    Ok(())
}

/// An operator's retry (`requeued`: back to `pending`, attempts reset, due at once) or discard
/// (`discarded`) of a dead letter, recorded in `attempts`. The messages that were `dead`
/// because of it are settled again. Returns the entry's destination, `None` when the entry does
/// not exist or is not dead.
fn operator_action(
    conn: &Connection,
    id: i64,
    action: &'static str,
    now: i64,
) -> Result<Option<String>, JournalError> {
    let e = ctx(if action == "requeued" {
        "retrying a dead letter"
    } else {
        "discarding a dead letter"
    });
    // Literal states, as in `finish` (partial indexes).
    let sql = if action == "requeued" {
        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = 0, finished_at = NULL
         WHERE id = ?1 AND state = 'dead' RETURNING destination"
    } else {
        "UPDATE outbox SET state = 'discarded', finished_at = ?2
         WHERE id = ?1 AND state = 'dead' RETURNING destination"
    };
    let destination: Option<String> = conn
        .prepare_cached(sql)
        .and_then(|mut s| {
            if action == "requeued" {
                s.query_row(params![id], |r| r.get(0)).optional()
            } else {
                s.query_row(params![id, now], |r| r.get(0)).optional()
            }
        })
        .map_err(&e)?;
    let Some(destination) = destination else {
        return Ok(None);
    };
    record_attempt(conn, id, now, action, None).map_err(&e)?;
    // Its messages were `dead` (or another entry keeps them so): recompute from `routed`.
    let messages: Vec<i64> = conn
        .prepare_cached(
            "SELECT message_id FROM message_records
             WHERE rec = (SELECT rec FROM outbox WHERE id = ?1)",
        )
        .and_then(|mut s| {
            s.query_map([id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(&e)?;
    let mut reopen = conn
        .prepare_cached("UPDATE messages SET status = 'routed' WHERE id = ?1 AND status = 'dead'")
        .map_err(&e)?;
    for m in messages {
        if reopen.execute([m]).map_err(&e)? > 0 {
            settle(conn, m).map_err(&e)?;
        }
    }
    Ok(Some(destination))
}

fn mark_failed(
    conn: &Connection,
    id: i64,
    error: &str,
    next_attempt_at_ms: i64,
    now: i64,
) -> Result<(), JournalError> {
    let e = ctx("recording a failed attempt");
    let changed = conn
        .prepare_cached(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3
             WHERE id = ?1 AND state = 'pending'",
        )
        .and_then(|mut s| s.execute(params![id, next_attempt_at_ms, error]))
        .map_err(&e)?;
    if changed == 0 {
        tracing::warn!(
            outbox_id = id,
            "outbox entry is not pending; failure ignored"
        );
        return Ok(());
    }
    record_attempt(conn, id, now, "failed", Some(error)).map_err(&e)
}

fn record_attempt(
    conn: &Connection,
    id: i64,
    at: i64,
    outcome: &str,
    error: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO attempts (outbox_id, at, outcome, error) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, at, outcome, error])?;
    Ok(())
}

fn prune(conn: &Connection, older_than_ms: i64, limit: usize) -> Result<u64, JournalError> {
    let e = ctx("pruning delivered messages");
    let ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM messages WHERE status IN ('delivered', 'discarded') AND stored_at < ?1
             LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![older_than_ms, limit as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(&e)?;
    let mut records_of = conn
        .prepare_cached("SELECT rec FROM message_records WHERE message_id = ?1")
        .map_err(&e)?;
    let mut delete_message = conn
        .prepare_cached("DELETE FROM messages WHERE id = ?1")
        .map_err(&e)?;
    // Outbox entries and their attempts go with the record (ON DELETE CASCADE).
    let mut delete_orphan = conn
        .prepare_cached(
            "DELETE FROM records WHERE rec = ?1
               AND NOT EXISTS (SELECT 1 FROM message_records WHERE rec = ?1)",
        )
        .map_err(&e)?;
    for &id in &ids {
        let records: Vec<i64> = records_of
            .query_map([id], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(&e)?;
        delete_message.execute([id]).map_err(&e)?;
        for r in records {
            delete_orphan.execute([r]).map_err(&e)?;
        }
    }
    Ok(ids.len() as u64)
}

fn settings(conn: &Connection) -> Result<JournalSettings, JournalError> {
    let e = ctx("reading the settings");
    let q = |sql: &str| -> Result<rusqlite::types::Value, JournalError> {
        conn.query_row(sql, [], |r| r.get(0)).map_err(&e)
    };
    let int = |v: rusqlite::types::Value| match v {
        rusqlite::types::Value::Integer(i) => i,
        _ => -1,
    };
    Ok(JournalSettings {
        journal_mode: match q("PRAGMA journal_mode")? {
            rusqlite::types::Value::Text(s) => s,
            other => format!("{other:?}"),
        },
        synchronous: int(q("PRAGMA synchronous")?),
        foreign_keys: int(q("PRAGMA foreign_keys")?) == 1,
        busy_timeout_ms: int(q("PRAGMA busy_timeout")?),
        schema_version: conn
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .optional()
            .map_err(&e)?
            .flatten()
            .unwrap_or(0),
    })
}

/// First 128 bits of SHA-256 over what makes a record's content: kind, status,
/// confidentiality and the bundle. Receive time and plugin version are left out, so a resend
/// of the same message is recognised as a duplicate.
pub(super) fn content_digest(record: &crate::record::Record) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let env = &record.envelope;
    let mut h = Sha256::new();
    for part in [
        env.kind.as_str(),
        env.status.as_str(),
        env.confidentiality.level.as_str(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for flag in &env.confidentiality.flags {
        h.update(flag.as_bytes());
        h.update([0]);
    }
    h.update(record.bundle.get().as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize()[..16]);
    out
}
