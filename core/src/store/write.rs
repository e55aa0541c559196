//! Storing a delivered record: the feed gate (R1, R2), versions (R8), the index, the audit.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::audit::{self, Entry};
use super::db;
use super::error::{StoreError, ctx};
use super::index::{self, DocumentInfo};
use super::policy::{Decision, DenyReason, Policy};
use crate::record::Record;

/// What [`put`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored as `version` of its document; `state` is `current` or `withdrawn` (a deletion).
    Stored { version: i64, state: &'static str },
    /// The same record id with the same content was stored before (a re-delivery).
    Duplicate,
    /// The feed gate refused it.
    Refused(DenyReason),
}

/// Statuses that withdraw the document (deletion, OBX-11 `D`).
fn withdraws(status: &str) -> bool {
    matches!(status, "entered-in-error" | "cancelled")
}

/// Digest of what makes a version different: status, visibility flags, bundle.
fn content_sha(record: &Record) -> String {
    let env = &record.envelope;
    let mut h = Sha256::new();
    for part in [env.status.as_str(), env.confidentiality.level.as_str()]
        .into_iter()
        .chain(env.confidentiality.flags.iter().map(String::as_str))
        .chain([record.bundle.get()])
    {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Stores one record in one transaction with its audit entry. A refusal is audited too.
pub fn put(
    conn: &mut Connection,
    policy: &Policy,
    accept_test_ins: bool,
    record: &Record,
    now: &str,
) -> Result<PutOutcome, StoreError> {
    let tx = conn.transaction().map_err(ctx("starting a write"))?;
    let outcome = put_in(&tx, policy, accept_test_ins, record, now)?;
    tx.commit().map_err(ctx("committing a record"))?;
    Ok(outcome)
}

/// Stores several records in one transaction (one fsync for all of them), each under its own
/// savepoint: a record that fails leaves nothing behind and does not stop the others. One
/// outcome per record, in order; `Err` when the transaction itself cannot be opened or
/// committed, and then none of them is stored.
pub fn put_all(
    conn: &mut Connection,
    policy: &Policy,
    accept_test_ins: bool,
    records: &[Record],
    now: &str,
) -> Result<Vec<Result<PutOutcome, StoreError>>, StoreError> {
    let mut tx = conn.transaction().map_err(ctx("starting a write"))?;
    let mut outcomes = Vec::with_capacity(records.len());
    for record in records {
        let outcome = tx
            .savepoint()
            .map_err(ctx("starting a record's savepoint"))
            .and_then(|sp| {
                let outcome = put_in(&sp, policy, accept_test_ins, record, now)?;
                sp.commit().map_err(ctx("releasing a record's savepoint"))?;
                Ok(outcome)
            });
        outcomes.push(outcome);
    }
    tx.commit().map_err(ctx("committing records"))?;
    Ok(outcomes)
}

/// The work of [`put`] inside a transaction the caller commits.
fn put_in(
    tx: &Connection,
    policy: &Policy,
    accept_test_ins: bool,
    record: &Record,
    now: &str,
) -> Result<PutOutcome, StoreError> {
    let env = &record.envelope;
    let qualified = index::ins_qualified(record, accept_test_ins);
    let (ins_system, ins_value) = env
        .patient
        .ins
        .as_ref()
        .map(|i| (i.system.clone(), i.value.clone()))
        .unwrap_or_default();
    let mut entry = Entry {
        seq: 0,
        at: now.to_string(),
        actor_id: format!("source:{}", env.source),
        role: "feeder".into(),
        organisation: None,
        mode: "normal".into(),
        justification: None,
        action: "write".into(),
        patient: ins_value.clone(),
        record_ids: vec![env.id.clone()],
        outcome: String::new(),
    };
    let existing = if ins_value.is_empty() {
        None
    } else {
        db::patient_by_ins(tx, &ins_value)?
    };
    let access = existing
        .as_ref()
        .map(|p| p.access.clone())
        .unwrap_or_default();
    if let Decision::Deny(reason) = policy.can_feed(qualified, &access) {
        // Without an INS there is no patient to file the refusal under: the journal's dead
        // letter keeps it.
        if !ins_value.is_empty() {
            entry.outcome = format!("refused:{}", reason.code());
            audit::append(tx, &entry)?;
        }
        return Ok(PutOutcome::Refused(reason));
    }
    let sha = content_sha(record);
    let duplicate = tx
        .prepare_cached("SELECT 1 FROM documents WHERE record_id = ?1 AND content_sha = ?2")
        .and_then(|mut statement| statement.query_row([&env.id, &sha], |_| Ok(())))
        .optional()
        .map_err(ctx("looking for a duplicate"))?
        .is_some();
    if duplicate {
        return Ok(PutOutcome::Duplicate);
    }
    let patient_id = index::patient_id(&ins_system, &ins_value);
    let info: DocumentInfo =
        index::describe(record, &patient_id).map_err(|source| StoreError::Json {
            what: "a record's bundle",
            source,
        })?;
    db::upsert_patient(
        tx,
        &patient_id,
        &ins_system,
        &ins_value,
        info.patient.as_deref(),
    )?;
    let previous: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(version), 0) FROM documents WHERE doc_key = ?1")
        .and_then(|mut statement| statement.query_row([&info.doc_key], |r| r.get(0)))
        .map_err(ctx("reading the document's versions"))?;
    // The earlier current version is replaced (superseded) or, by a deletion, withdrawn.
    let state = if withdraws(&env.status) {
        "withdrawn"
    } else {
        "current"
    };
    let old_state = if state == "withdrawn" {
        "withdrawn"
    } else {
        "superseded"
    };
    tx.prepare_cached("UPDATE documents SET state = ?2 WHERE doc_key = ?1 AND state = 'current'")
        .and_then(|mut statement| statement.execute(params![info.doc_key, old_state]))
        .map_err(ctx("superseding the previous version"))?;
    let version = previous + 1;
    tx.prepare_cached(
        "INSERT INTO documents (record_id, content_sha, doc_key, version, patient_id, kind, status,
             state, type_code, event_time, stored_at, author, author_org, masque_ps,
             invisible_patient, invisible_rep, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            env.id,
            sha,
            info.doc_key,
            version,
            patient_id,
            env.kind,
            env.status,
            state,
            info.type_code,
            env.event_time,
            now,
            info.author,
            info.author_org,
            info.masque_ps,
            info.invisible_patient,
            info.invisible_rep,
            record.to_json_line()
        ])
    })
    .map_err(ctx("storing a document"))?;
    let rec = tx.last_insert_rowid();
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO resources (rec, idx, resource_type, date, codes, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(ctx("indexing a resource"))?;
    for (idx, r) in info.resources.iter().enumerate() {
        insert
            .execute(params![
                rec,
                idx as i64,
                r.resource_type,
                r.date,
                r.codes.join(" "),
                r.json
            ])
            .map_err(ctx("indexing a resource"))?;
    }
    drop(insert);
    entry.outcome = format!("stored:v{version}:{state}");
    audit::append(tx, &entry)?;
    Ok(PutOutcome::Stored { version, state })
}
