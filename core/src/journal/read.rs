//! Queries, run on read-only connections.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::error::{JournalError, ctx};
use super::stored_json::StoredJson;
use super::{
    AttemptView, DEFAULT_SEARCH_LIMIT, DeadLetter, DeliveryState, MAX_SEARCH_LIMIT, MessageFilter,
    MessageId, MessageStatus, MessageSummary, MessageView, OutboxItem, OutboxState, RecordView,
};
use crate::record::Record;

/// The pending entries of a destination (`?1`), in queue order (index `outbox_pending`).
const QUEUE: &str = "SELECT id, patient_key, next_attempt_at, attempts, rec
     FROM outbox WHERE destination = ?1 AND state = 'pending' ORDER BY id";

/// Walks the queue of `destination` in order, calling `f(outbox_id, next_attempt_at,
/// attempts, rec)` with each head: the oldest pending entry of its patient (later entries of
/// that patient are not due, whatever their time). `f` returns false to stop.
fn for_each_head(
    conn: &Connection,
    destination: &str,
    e: &impl Fn(rusqlite::Error) -> JournalError,
    mut f: impl FnMut(i64, i64, u32, i64) -> Result<bool, JournalError>,
) -> Result<(), JournalError> {
    let mut stmt = conn.prepare_cached(QUEUE).map_err(e)?;
    let mut rows = stmt.query([destination]).map_err(e)?;
    let mut seen_patients = HashSet::new();
    while let Some(row) = rows.next().map_err(e)? {
        let patient: String = row.get(1).map_err(e)?;
        if !seen_patients.insert(patient) {
            continue;
        }
        let go_on = f(
            row.get(0).map_err(e)?,
            row.get(2).map_err(e)?,
            row.get(3).map_err(e)?,
            row.get(4).map_err(e)?,
        )?;
        if !go_on {
            break;
        }
    }
    Ok(())
}

/// An entry whose stored record cannot be read back (see [`claim_due`]).
pub(super) struct Unreadable {
    pub outbox_id: i64,
    pub reason: String,
}

/// Claims due entries; also returns the due entries whose record cannot be read back (a
/// corrupt row, or a record an incompatible build wrote), so that the caller dead-letters
/// them instead of failing every claim on the same head entry for ever.
pub(super) fn claim_due(
    conn: &Connection,
    destination: &str,
    now_ms: i64,
    limit: usize,
    inflight: &HashSet<i64>,
) -> Result<(Vec<OutboxItem>, Vec<Unreadable>), JournalError> {
    let e = ctx("claiming due entries");
    let mut items = Vec::new();
    let mut unreadable = Vec::new();
    if limit == 0 {
        return Ok((items, unreadable));
    }
    // One read transaction (one snapshot) for the queue scan and the record reads.
    let tx = conn.unchecked_transaction().map_err(&e)?;
    let mut record = tx
        .prepare_cached("SELECT id, json FROM records WHERE rec = ?1")
        .map_err(&e)?;
    for_each_head(
        &tx,
        destination,
        &e,
        |id, next_attempt_at, attempts, rec| {
            // An in-flight or backing-off head is not due, and still blocks its patient.
            if inflight.contains(&id) || next_attempt_at > now_ms {
                return Ok(true);
            }
            let read = record.query_row([rec], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, StoredJson>(1)))
            });
            let parsed = match read {
                Ok((record_id, Ok(StoredJson(json)))) => parse_record(&record_id, &json)
                    .map(|r| (record_id, r))
                    .map_err(|err| err.to_string()),
                Ok((record_id, Err(bad))) => Err(format!(
                    "journal: stored record {record_id} does not read back: {bad}"
                )),
                Err(err) => return Err(e(err)),
            };
            match parsed {
                Ok((record_id, record)) => items.push(OutboxItem {
                    outbox_id: id,
                    record,
                    record_id,
                    destination: destination.to_string(),
                    attempts,
                }),
                Err(reason) => unreadable.push(Unreadable {
                    outbox_id: id,
                    reason,
                }),
            }
            Ok(items.len() + unreadable.len() < limit)
        },
    )?;
    drop(record);
    tx.finish().map_err(&e)?;
    Ok((items, unreadable))
}

pub(super) fn next_due_at(
    conn: &Connection,
    destination: &str,
    inflight: &HashSet<i64>,
) -> Result<Option<i64>, JournalError> {
    let e = ctx("computing the next due time");
    let mut next: Option<i64> = None;
    for_each_head(conn, destination, &e, |id, at, _, _| {
        if !inflight.contains(&id) {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        Ok(true)
    })?;
    Ok(next)
}

pub(super) fn pending_count(conn: &Connection, destination: &str) -> Result<u64, JournalError> {
    conn.prepare_cached("SELECT COUNT(*) FROM outbox WHERE destination = ?1 AND state = 'pending'")
        .and_then(|mut s| s.query_row([destination], |r| r.get::<_, i64>(0)))
        .map(|n| n as u64)
        .map_err(ctx("counting pending entries"))
}

/// Pending entries per destination (index `outbox_pending`).
pub(super) fn pending_counts(conn: &Connection) -> Result<Vec<(String, u64)>, JournalError> {
    conn.prepare(
        "SELECT destination, COUNT(*) FROM outbox WHERE state = 'pending' GROUP BY destination",
    )
    .and_then(|mut s| {
        s.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect()
    })
    .map_err(ctx("counting pending entries"))
}

pub(super) fn held_messages(
    conn: &Connection,
    plugin: &str,
    after: MessageId,
    limit: usize,
) -> Result<Vec<MessageId>, JournalError> {
    conn.prepare_cached(
        "SELECT id FROM messages
         WHERE status = 'held' AND outcome = 'held' AND plugin = ?1 AND id > ?2
         ORDER BY id LIMIT ?3",
    )
    .and_then(|mut s| {
        s.query_map(params![plugin, after.0, limit as i64], |r| {
            r.get(0).map(MessageId)
        })?
        .collect()
    })
    .map_err(ctx("listing held messages"))
}

pub(super) fn held_counts(conn: &Connection) -> Result<HashMap<String, u64>, JournalError> {
    conn.prepare_cached(
        "SELECT COALESCE(plugin, ''), COUNT(*) FROM messages
         WHERE status = 'held' AND outcome = 'held' GROUP BY plugin",
    )
    .and_then(|mut s| {
        s.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect()
    })
    .map_err(ctx("counting held messages"))
}

pub(super) fn count_by_status(conn: &Connection) -> Result<HashMap<String, u64>, JournalError> {
    conn.prepare_cached("SELECT status, n FROM message_status_counts")
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })?
            .collect()
        })
        .map_err(ctx("counting messages by status"))
}

pub(super) fn message(
    conn: &Connection,
    id: MessageId,
) -> Result<Option<MessageView>, JournalError> {
    let e = ctx("reading a message");
    let view = conn
        .prepare_cached(
            "SELECT source, content_type, received_at, stored_at, peer, status, error, plugin,
                    plugin_version, source_message_id, message_type, rules_version, payload
             FROM messages WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.query_row([id.0], |r| {
                let status: String = r.get(5)?;
                Ok(MessageView {
                    id,
                    source: r.get(0)?,
                    content_type: r.get(1)?,
                    received_at: r.get(2)?,
                    stored_at_ms: r.get(3)?,
                    peer: r.get(4)?,
                    status: MessageStatus::parse(&status).ok_or_else(|| bad_text(5, &status))?,
                    error: r.get(6)?,
                    plugin: r.get(7)?,
                    plugin_version: r.get(8)?,
                    source_message_id: r.get(9)?,
                    message_type: r.get(10)?,
                    rules_version: r.get(11)?,
                    payload: r.get(12)?,
                    records: Vec::new(),
                })
            })
            .optional()
        })
        .map_err(&e)?;
    let Some(mut view) = view else {
        return Ok(None);
    };
    view.records = records_for_message(conn, id)?;
    Ok(Some(view))
}

pub(super) fn records_for_message(
    conn: &Connection,
    id: MessageId,
) -> Result<Vec<RecordView>, JournalError> {
    let e = ctx("reading the records of a message");
    #[allow(clippy::type_complexity)]
    let rows: Vec<(u32, String, i64, Option<String>, bool, bool, StoredJson)> = conn
        .prepare_cached(
            "SELECT mr.position, r.id, mr.rec, mr.route, mr.held, mr.duplicate, r.json
             FROM message_records mr JOIN records r ON r.rec = mr.rec
             WHERE mr.message_id = ?1 ORDER BY mr.position",
        )
        .and_then(|mut s| {
            s.query_map([id.0], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect()
        })
        .map_err(&e)?;
    let mut outbox = conn
        .prepare_cached(
            "SELECT id, destination, state, attempts, next_attempt_at, last_error, finished_at
             FROM outbox WHERE rec = ?1 ORDER BY id",
        )
        .map_err(&e)?;
    let mut views = Vec::with_capacity(rows.len());
    for (position, record_id, rec, route, held, duplicate, StoredJson(json)) in rows {
        let states = outbox
            .query_map([rec], outbox_state)
            .and_then(|rows| rows.collect())
            .map_err(&e)?;
        views.push(RecordView {
            position,
            record: parse_record(&record_id, &json)?,
            record_id,
            route,
            held,
            duplicate,
            outbox: states,
        });
    }
    Ok(views)
}

fn outbox_state(r: &Row<'_>) -> rusqlite::Result<OutboxState> {
    let state: String = r.get(2)?;
    Ok(OutboxState {
        outbox_id: r.get(0)?,
        destination: r.get(1)?,
        state: DeliveryState::parse(&state).ok_or_else(|| bad_text(2, &state))?,
        attempts: r.get(3)?,
        next_attempt_at_ms: r.get(4)?,
        last_error: r.get(5)?,
        finished_at_ms: r.get(6)?,
    })
}

pub(super) fn dead_letters(
    conn: &Connection,
    destination: Option<&str>,
    limit: usize,
) -> Result<Vec<DeadLetter>, JournalError> {
    let sql = match destination {
        Some(_) => {
            "SELECT o.id, r.id, o.destination, r.first_message_id, o.attempts,
                    o.last_error, o.finished_at
             FROM outbox o JOIN records r ON r.rec = o.rec
             WHERE o.destination = ?1 AND o.state = 'dead' ORDER BY o.id DESC LIMIT ?2"
        }
        None => {
            "SELECT o.id, r.id, o.destination, r.first_message_id, o.attempts,
                    o.last_error, o.finished_at
             FROM outbox o JOIN records r ON r.rec = o.rec
             WHERE o.state = 'dead' ORDER BY o.id DESC LIMIT ?1"
        }
    };
    conn.prepare_cached(sql)
        .and_then(|mut s| {
            let limit = limit.min(i64::MAX as usize) as i64;
            let params = match destination {
                Some(d) => params_from_iter(vec![Value::from(d.to_string()), Value::from(limit)]),
                None => params_from_iter(vec![Value::from(limit)]),
            };
            s.query_map(params, |r| {
                Ok(DeadLetter {
                    outbox_id: r.get(0)?,
                    record_id: r.get(1)?,
                    destination: r.get(2)?,
                    message_id: MessageId(r.get(3)?),
                    attempts: r.get(4)?,
                    last_error: r.get(5)?,
                    dead_at_ms: r.get(6)?,
                })
            })?
            .collect()
        })
        .map_err(ctx("listing dead letters"))
}

pub(super) fn dead_counts(conn: &Connection) -> Result<HashMap<String, u64>, JournalError> {
    conn.prepare_cached(
        "SELECT destination, COUNT(*) FROM outbox WHERE state = 'dead' GROUP BY destination",
    )
    .and_then(|mut s| {
        s.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?
        .collect()
    })
    .map_err(ctx("counting dead letters"))
}

/// The message browser's query. Built from the set filters only; newest first by id, so that a
/// page is one backwards walk of the rowid (or of an index, for source message id and INS).
pub(super) fn search(
    conn: &Connection,
    f: &MessageFilter,
) -> Result<Vec<MessageSummary>, JournalError> {
    let mut sql = String::from(
        "SELECT m.id, m.source, m.content_type, m.received_at, m.stored_at, m.peer, m.status,
                m.error, m.plugin, m.source_message_id, m.message_type, m.rules_version,
                (SELECT COUNT(*) FROM message_records mr WHERE mr.message_id = m.id),
                length(m.payload)
         FROM messages m WHERE 1",
    );
    let mut params: Vec<Value> = Vec::new();
    let mut cond = |clause: &str, value: Value| {
        params.push(value);
        sql.push_str(&clause.replace('?', &format!("?{}", params.len())));
    };
    if let Some(v) = f.since_ms {
        cond(" AND m.stored_at >= ?", Value::from(v));
    }
    if let Some(v) = f.until_ms {
        cond(" AND m.stored_at < ?", Value::from(v));
    }
    if let Some(v) = &f.source {
        cond(" AND m.source = ?", Value::from(v.clone()));
    }
    if let Some(v) = f.status {
        cond(" AND m.status = ?", Value::from(v.as_str().to_string()));
    }
    if let Some(v) = &f.source_message_id {
        cond(" AND m.source_message_id = ?", Value::from(v.clone()));
    }
    if let Some(v) = &f.ins {
        // Index records_patient_key, then message_records_rec.
        cond(
            " AND m.id IN (SELECT mr.message_id FROM message_records mr
                            WHERE mr.rec IN (SELECT rec FROM records WHERE patient_key = ?))",
            Value::from(format!("ins:{v}")),
        );
    }
    if let Some(v) = &f.kind {
        cond(
            " AND EXISTS (SELECT 1 FROM message_records mr JOIN records r ON r.rec = mr.rec
                          WHERE mr.message_id = m.id AND r.kind = ?)",
            Value::from(v.clone()),
        );
    }
    if let Some(v) = f.after {
        cond(" AND m.id < ?", Value::from(v.0));
    }
    let limit = match f.limit {
        0 => DEFAULT_SEARCH_LIMIT,
        n => n.min(MAX_SEARCH_LIMIT),
    };
    cond(" ORDER BY m.id DESC LIMIT ?", Value::from(limit as i64));
    conn.prepare(&sql)
        .and_then(|mut s| {
            s.query_map(params_from_iter(params), |r| {
                let status: String = r.get(6)?;
                Ok(MessageSummary {
                    id: MessageId(r.get(0)?),
                    source: r.get(1)?,
                    content_type: r.get(2)?,
                    received_at: r.get(3)?,
                    stored_at_ms: r.get(4)?,
                    peer: r.get(5)?,
                    status: MessageStatus::parse(&status).ok_or_else(|| bad_text(6, &status))?,
                    error: r.get(7)?,
                    plugin: r.get(8)?,
                    source_message_id: r.get(9)?,
                    message_type: r.get(10)?,
                    rules_version: r.get(11)?,
                    records: r.get(12)?,
                    payload_bytes: r.get::<_, i64>(13)?.max(0) as u64,
                })
            })?
            .collect()
        })
        .map_err(ctx("searching messages"))
}

pub(super) fn attempts(
    conn: &Connection,
    outbox_id: i64,
) -> Result<Vec<AttemptView>, JournalError> {
    conn.prepare_cached("SELECT at, outcome, error FROM attempts WHERE outbox_id = ?1 ORDER BY id")
        .and_then(|mut s| {
            s.query_map([outbox_id], |r| {
                Ok(AttemptView {
                    at_ms: r.get(0)?,
                    outcome: r.get(1)?,
                    error: r.get(2)?,
                })
            })?
            .collect()
        })
        .map_err(ctx("listing attempts"))
}

fn parse_record(record_id: &str, json: &str) -> Result<Record, JournalError> {
    serde_json::from_str(json).map_err(|e| JournalError::CorruptRecord {
        record_id: record_id.to_string(),
        source: Arc::new(e),
    })
}

fn bad_text(column: usize, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("unknown value {value:?}").into(),
    )
}
