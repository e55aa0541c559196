//! The outbox's state changes: delivered, failed, dead, operator actions, replays; and the
//! pruning of finished messages.

use rusqlite::{Connection, OptionalExtension, params};

use crate::journal::error::{JournalError, ctx};

use super::Deltas;
use super::store::settle;

/// Puts the delivered (or dead) entries of a message's records — their current version — back
/// in the queue, and reopens the messages that refer to them. Destinations are idempotent by
/// record id, so the second delivery replaces the first.
pub(super) fn redeliver(
    conn: &Connection,
    message_id: i64,
    now: i64,
) -> Result<Vec<String>, JournalError> {
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

/// Delivered or dead: the entry leaves the queue; the messages that refer to it are settled.
pub(super) fn finish(
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
pub(super) fn operator_action(
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

pub(super) fn mark_failed(
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

pub(super) fn prune(
    conn: &Connection,
    older_than_ms: i64,
    limit: usize,
) -> Result<u64, JournalError> {
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
