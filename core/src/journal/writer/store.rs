//! Storing a message, its outcome and its records, with their outbox entries.

use rusqlite::{Connection, params};

use crate::journal::error::{JournalError, ctx};
use crate::journal::{CommitReceipt, MessageId, MessageStatus};

use super::Deltas;
use super::op::{PreparedMessage, PreparedOutcome, PreparedResolve};

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

/// The message insert, after its verb.
macro_rules! insert_message {
    ($verb:literal) => {
        concat!(
            $verb,
            " INTO messages (source, content_type, received_at, stored_at, peer, outcome,
                 status, error, plugin, plugin_version, source_message_id, message_type,
                 rules_version, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        )
    };
}

/// The message row. `OR ROLLBACK` in the optimistic pass, where a failing request restarts
/// the whole transaction anyway: the insert then needs no statement journal, which the
/// status-count trigger would otherwise make SQLite keep, copying every page the insert
/// touches (section 22 of docs/benchmarks.md). With savepoints, a failure aborts the statement
/// alone.
const INSERT_MESSAGE: [&str; 2] = [
    insert_message!("INSERT OR ROLLBACK"),
    insert_message!("INSERT"),
];

/// Stores a message and its outcome. `savepoints`: the request runs in its own savepoint
/// (see `run_ops`); otherwise a failure may roll the whole transaction back.
pub(super) fn commit_message(
    conn: &Connection,
    m: &PreparedMessage,
    now: i64,
    savepoints: bool,
    deltas: &mut Deltas,
) -> Result<CommitReceipt, JournalError> {
    let e = ctx("storing a message");
    let c = columns(&m.outcome);
    conn.prepare_cached(INSERT_MESSAGE[usize::from(savepoints)])
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
pub(super) fn resolve_held(
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
pub(super) fn settle(conn: &Connection, message_id: i64) -> rusqlite::Result<()> {
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

/// First 128 bits of SHA-256 over what makes a record's content: kind, status,
/// confidentiality and the bundle. Receive time and plugin version are left out, so a resend
/// of the same message is recognised as a duplicate.
pub(in crate::journal) fn content_digest(record: &crate::record::Record) -> [u8; 16] {
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
