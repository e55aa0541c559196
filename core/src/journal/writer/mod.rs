//! The writer thread: group commit of every write request.

mod op;
mod outbox;
mod store;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::{self, Checkpointer};
use super::error::{JournalError, ctx};
use super::{
    CommitReceipt, Counters, JournalSettings, MAX_BATCH_BYTES, MAX_BATCH_REQUESTS, now_ms,
};

pub(super) use op::{Op, PreparedMessage, PreparedResolve};
pub(super) use store::content_digest;

use outbox::{finish, mark_failed, operator_action, prune, redeliver};
use store::{commit_message, resolve_held};

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

/// Changes of the pending-entry counts made by one request: `(destination, +1 | -1)`.
type Deltas = Vec<(String, i64)>;

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
        Ok(None) => rollback_open(conn)
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
        match apply(conn, op, now, savepoints, &mut op_deltas) {
            Ok(done) => {
                if savepoints {
                    exec(conn, "RELEASE request").map_err(ctx("releasing a savepoint"))?;
                }
                deltas.append(&mut op_deltas);
                results.push(Ok(done));
            }
            // Optimistic: the caller starts over with savepoints, whether SQLite rolled the
            // transaction back (an `OR ROLLBACK` statement, disk full, I/O error) or not.
            Err(_) if !savepoints => return Ok(None),
            // SQLite rolled the whole transaction back (disk full, I/O error): every request
            // of the batch is lost, not only this one.
            Err(e) if conn.is_autocommit() => return Err(e),
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
    if let Err(e2) = rollback_open(conn) {
        tracing::error!(error = %e2, "journal rollback failed");
    }
    fail_all(batch, e)
}

/// Rolls the open transaction back, unless SQLite already did.
fn rollback_open(conn: &Connection) -> rusqlite::Result<()> {
    if conn.is_autocommit() {
        Ok(())
    } else {
        exec(conn, "ROLLBACK")
    }
}

fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn apply(
    conn: &Connection,
    op: &Op,
    now: i64,
    savepoints: bool,
    deltas: &mut Deltas,
) -> Result<Done, JournalError> {
    match op {
        Op::Commit(m) => commit_message(conn, m, now, savepoints, deltas).map(Done::Receipt),
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
