//! The access log: an append-only table whose entries are chained by SHA-256, so that changing
//! or removing an entry in the database file is detected by [`verify_chain`].
//!
//! `hash = SHA-256(prev_hash ‖ canonical entry)`, `prev_hash` of the first entry being 64 zeros;
//! the canonical entry is the JSON of [`Entry`] (fixed field order) with its `seq`. Triggers
//! refuse `UPDATE` and `DELETE` on the table; someone with write access to the file can drop
//! them, which is what the chain is for. Truncating the tail leaves a valid shorter chain: the
//! last `(seq, hash)` must be anchored elsewhere (e.g. logged daily) to detect that.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{StoreError, ctx};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry, as logged and as shown to the patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the chain, from 1 (0 before it is appended).
    pub seq: i64,
    /// RFC 3339 UTC.
    pub at: String,
    /// RPPS, INS (the patient), representative id, or `system:<source>` for feeding.
    pub actor_id: String,
    pub role: String,
    pub organisation: Option<String>,
    /// `normal`, `break-glass`, `regulation`.
    pub mode: String,
    pub justification: Option<String>,
    /// `write`, `read`, `mask`, `unmask`, `block`, `unblock`, `consent`, …
    pub action: String,
    /// The patient's INS value.
    pub patient: String,
    /// The record ids concerned (returned, written or acted on).
    pub record_ids: Vec<String>,
    /// `allowed`, `denied:<rule>`, `stored`, `refused:<reason>`…
    pub outcome: String,
}

/// The chain's state as found by [`verify_chain`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub entries: i64,
    /// The first entry whose hash, link or position is wrong.
    pub first_broken: Option<i64>,
    pub last_hash: String,
}

/// The bytes hashed after the previous hash.
fn canonical(e: &Entry) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(e).map_err(|source| StoreError::Json {
        what: "an audit entry",
        source,
    })
}

fn chain_hash(prev: &str, e: &Entry) -> Result<String, StoreError> {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(canonical(e)?);
    Ok(hex::encode(h.finalize()))
}

/// Appends `entry` (its `seq` is assigned) and returns the seq. Run it in the transaction of
/// the action it records, so that neither exists without the other.
pub fn append(conn: &Connection, entry: &Entry) -> Result<i64, StoreError> {
    let last: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .and_then(|mut statement| statement.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .optional()
        .map_err(ctx("reading the audit chain head"))?;
    let (prev_seq, prev_hash) = last.unwrap_or((0, GENESIS.to_string()));
    let mut e = entry.clone();
    e.seq = prev_seq + 1;
    let hash = chain_hash(&prev_hash, &e)?;
    let ids = serde_json::to_string(&e.record_ids).map_err(|source| StoreError::Json {
        what: "audit record ids",
        source,
    })?;
    conn.prepare_cached(
        "INSERT INTO audit (seq, at, actor_id, role, organisation, mode, justification, action,
                            patient, record_ids, outcome, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            e.seq,
            e.at,
            e.actor_id,
            e.role,
            e.organisation,
            e.mode,
            e.justification,
            e.action,
            e.patient,
            ids,
            e.outcome,
            prev_hash,
            hash
        ])
    })
    .map_err(ctx("appending to the audit log"))?;
    Ok(e.seq)
}

const SELECT: &str = "SELECT seq, at, actor_id, role, organisation, mode, justification, action,
                             patient, record_ids, outcome, prev_hash, hash FROM audit";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Entry, String, String)> {
    let ids: String = r.get(9)?;
    Ok((
        Entry {
            seq: r.get(0)?,
            at: r.get(1)?,
            actor_id: r.get(2)?,
            role: r.get(3)?,
            organisation: r.get(4)?,
            mode: r.get(5)?,
            justification: r.get(6)?,
            action: r.get(7)?,
            patient: r.get(8)?,
            // A mangled list still hashes differently: the chain check reports it.
            record_ids: serde_json::from_str(&ids).unwrap_or_else(|_| vec![ids]),
            outcome: r.get(10)?,
        },
        r.get(11)?,
        r.get(12)?,
    ))
}

/// The entries about one patient, oldest first.
pub fn for_patient(conn: &Connection, ins_value: &str) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!("{SELECT} WHERE patient = ?1 ORDER BY seq"))
        .map_err(ctx("reading the access log"))?;
    let rows = stmt
        .query_map([ins_value], row)
        .map_err(ctx("reading the access log"))?;
    rows.map(|r| r.map(|(e, _, _)| e))
        .collect::<Result<_, _>>()
        .map_err(ctx("reading the access log"))
}

/// Walks the whole chain: recomputes every hash from the stored columns, checks each entry
/// links to the previous hash and that seqs have no gap.
pub fn verify_chain(conn: &Connection) -> Result<ChainReport, StoreError> {
    let mut stmt = conn
        .prepare(&format!("{SELECT} ORDER BY seq"))
        .map_err(ctx("reading the audit chain"))?;
    let mut rows = stmt.query([]).map_err(ctx("reading the audit chain"))?;
    let mut prev = GENESIS.to_string();
    let mut expected_seq = 1;
    let mut entries = 0;
    let mut first_broken = None;
    while let Some(r) = rows.next().map_err(ctx("reading the audit chain"))? {
        let (e, prev_hash, hash) = row(r).map_err(ctx("reading an audit entry"))?;
        entries += 1;
        if first_broken.is_none()
            && (e.seq != expected_seq || prev_hash != prev || chain_hash(&prev, &e)? != hash)
        {
            first_broken = Some(e.seq);
        }
        expected_seq = e.seq + 1;
        prev = hash;
    }
    Ok(ChainReport {
        entries,
        first_broken,
        last_hash: prev,
    })
}
