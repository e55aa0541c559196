//! The store's SQLite file: schema, and the queries on documents and patients.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::error::{StoreError, ctx};
use super::policy::PatientAccess;

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Version 1.
///
/// - `patients`: one row per INS; `id` is the opaque API id; `access` the patient's settings
///   (`PatientAccess` as JSON); `resource` the last Patient resource a record carried.
/// - `documents`: one row per stored version. `(record_id, content_sha)` is unique (a
///   re-delivery is a no-op); `doc_key` groups the versions of one logical document; `state`
///   is `current`, `superseded` (a later version replaced it) or `withdrawn` (deleted).
/// - `resources`: the searchable resources of each version, with their date and codes.
/// - `audit`: the hash-chained access log (see `audit.rs`); triggers refuse changes.
/// - `notifications`: emergency accesses told to the patient and the médecin traitant.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS patients (
    id          TEXT PRIMARY KEY,
    ins_system  TEXT NOT NULL,
    ins_value   TEXT NOT NULL UNIQUE,
    resource    TEXT,
    access      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    rec               INTEGER PRIMARY KEY,
    record_id         TEXT    NOT NULL,
    content_sha       TEXT    NOT NULL,
    doc_key           TEXT    NOT NULL,
    version           INTEGER NOT NULL,
    patient_id        TEXT    NOT NULL REFERENCES patients (id),
    kind              TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    state             TEXT    NOT NULL CHECK (state IN ('current', 'superseded', 'withdrawn')),
    type_code         TEXT    NOT NULL,
    event_time        TEXT,
    stored_at         TEXT    NOT NULL,
    author            TEXT,
    author_org        TEXT,
    masque_ps         INTEGER NOT NULL,
    invisible_patient INTEGER NOT NULL,
    invisible_rep     INTEGER NOT NULL,
    record            TEXT    NOT NULL,
    UNIQUE (record_id, content_sha)
);
CREATE INDEX IF NOT EXISTS documents_patient ON documents (patient_id, state);
CREATE INDEX IF NOT EXISTS documents_key ON documents (doc_key, version);
CREATE TABLE IF NOT EXISTS resources (
    rec           INTEGER NOT NULL REFERENCES documents (rec),
    idx           INTEGER NOT NULL,
    resource_type TEXT    NOT NULL,
    date          TEXT,
    codes         TEXT    NOT NULL,
    json          TEXT    NOT NULL,
    PRIMARY KEY (rec, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
    seq           INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,
    actor_id      TEXT NOT NULL,
    role          TEXT NOT NULL,
    organisation  TEXT,
    mode          TEXT NOT NULL,
    justification TEXT,
    action        TEXT NOT NULL,
    patient       TEXT NOT NULL,
    record_ids    TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_patient ON audit (patient, seq);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS notifications (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    patient    TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    audit_seq  INTEGER NOT NULL,
    message    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_patient ON notifications (patient, id);
"#;

/// Opens (creating if needed) the store: WAL, `synchronous=FULL` (a stored record and its
/// audit entry survive a power loss once the delivery is acknowledged), foreign keys.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let conn = Connection::open(path).map_err(ctx("opening the database"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(ctx("setting the busy timeout"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(ctx("enabling WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NoWal(mode));
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(ctx("configuring the database"))?;
    conn.execute_batch(SCHEMA)
        .map_err(ctx("creating the schema"))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// A patient as stored.
#[derive(Debug, Clone)]
pub struct PatientRow {
    pub id: String,
    pub ins_system: String,
    pub ins_value: String,
    pub resource: Option<String>,
    pub access: PatientAccess,
}

fn parse_access(text: &str) -> Result<PatientAccess, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Json {
        what: "patient access settings",
        source,
    })
}

fn patient_where(
    conn: &Connection,
    column: &str,
    value: &str,
) -> Result<Option<PatientRow>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT id, ins_system, ins_value, resource, access FROM patients WHERE {column} = ?1"
        ))
        .and_then(|mut statement| {
            statement.query_row([value], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
        })
        .optional()
        .map_err(ctx("reading a patient"))?;
    row.map(|(id, ins_system, ins_value, resource, access)| {
        Ok(PatientRow {
            id,
            ins_system,
            ins_value,
            resource,
            access: parse_access(&access)?,
        })
    })
    .transpose()
}

pub fn patient_by_ins(
    conn: &Connection,
    ins_value: &str,
) -> Result<Option<PatientRow>, StoreError> {
    patient_where(conn, "ins_value", ins_value)
}

pub fn patient_by_id(conn: &Connection, id: &str) -> Result<Option<PatientRow>, StoreError> {
    patient_where(conn, "id", id)
}

/// Creates the patient with default settings if unknown; updates its Patient resource.
pub fn upsert_patient(
    conn: &Connection,
    id: &str,
    ins_system: &str,
    ins_value: &str,
    resource: Option<&str>,
) -> Result<(), StoreError> {
    let access =
        serde_json::to_string(&PatientAccess::new()).map_err(|source| StoreError::Json {
            what: "patient access settings",
            source,
        })?;
    conn.prepare_cached(
        "INSERT INTO patients (id, ins_system, ins_value, resource, access)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (ins_value) DO UPDATE SET resource = COALESCE(excluded.resource, resource)",
    )
    .and_then(|mut statement| {
        statement.execute(params![id, ins_system, ins_value, resource, access])
    })
    .map_err(ctx("storing a patient"))?;
    Ok(())
}

pub fn save_access(
    conn: &Connection,
    patient_id: &str,
    access: &PatientAccess,
) -> Result<(), StoreError> {
    let text = serde_json::to_string(access).map_err(|source| StoreError::Json {
        what: "patient access settings",
        source,
    })?;
    conn.prepare_cached("UPDATE patients SET access = ?2 WHERE id = ?1")
        .and_then(|mut statement| statement.execute(params![patient_id, text]))
        .map_err(ctx("saving patient settings"))?;
    Ok(())
}

/// One stored version of a document (without its record JSON).
#[derive(Debug, Clone)]
pub struct DocRow {
    pub rec: i64,
    pub record_id: String,
    pub version: i64,
    pub kind: String,
    pub status: String,
    pub state: String,
    pub type_code: String,
    pub event_time: Option<String>,
    pub stored_at: String,
    pub author: Option<String>,
    pub author_org: Option<String>,
    pub masque_ps: bool,
    pub invisible_patient: bool,
    pub invisible_rep: bool,
}

const DOC_COLUMNS: &str = "rec, record_id, version, kind, status, state, type_code, event_time,
    stored_at, author, author_org, masque_ps, invisible_patient, invisible_rep";

fn doc_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DocRow> {
    Ok(DocRow {
        rec: r.get(0)?,
        record_id: r.get(1)?,
        version: r.get(2)?,
        kind: r.get(3)?,
        status: r.get(4)?,
        state: r.get(5)?,
        type_code: r.get(6)?,
        event_time: r.get(7)?,
        stored_at: r.get(8)?,
        author: r.get(9)?,
        author_org: r.get(10)?,
        masque_ps: r.get(11)?,
        invisible_patient: r.get(12)?,
        invisible_rep: r.get(13)?,
    })
}

/// The patient's document versions, newest first; only current ones unless `all`.
pub fn documents(
    conn: &Connection,
    patient_id: &str,
    all: bool,
) -> Result<Vec<DocRow>, StoreError> {
    let filter = if all { "" } else { "AND state = 'current'" };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DOC_COLUMNS} FROM documents WHERE patient_id = ?1 {filter} ORDER BY rec DESC"
        ))
        .map_err(ctx("listing documents"))?;
    let rows = stmt
        .query_map([patient_id], doc_row)
        .map_err(ctx("listing documents"))?;
    rows.collect::<Result<_, _>>()
        .map_err(ctx("listing documents"))
}

/// Whether this patient has a stored version of `record_id`.
pub fn record_exists(
    conn: &Connection,
    patient_id: &str,
    record_id: &str,
) -> Result<bool, StoreError> {
    conn.query_row(
        "SELECT 1 FROM documents WHERE patient_id = ?1 AND record_id = ?2 LIMIT 1",
        [patient_id, record_id],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
    .map_err(ctx("looking up a record"))
}

/// One indexed resource.
#[derive(Debug, Clone)]
pub struct ResRow {
    pub rec: i64,
    pub idx: i64,
    pub resource_type: String,
    pub date: Option<String>,
    pub codes: Vec<String>,
    pub json: String,
}

/// The indexed resources of one document version, of one type or all.
pub fn resources(
    conn: &Connection,
    rec: i64,
    resource_type: Option<&str>,
) -> Result<Vec<ResRow>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT rec, idx, resource_type, date, codes, json FROM resources
             WHERE rec = ?1 AND (?2 IS NULL OR resource_type = ?2) ORDER BY idx",
        )
        .map_err(ctx("reading resources"))?;
    let rows = stmt
        .query_map(params![rec, resource_type], |r| {
            let codes: String = r.get(4)?;
            Ok(ResRow {
                rec: r.get(0)?,
                idx: r.get(1)?,
                resource_type: r.get(2)?,
                date: r.get(3)?,
                codes: codes
                    .split(' ')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                json: r.get(5)?,
            })
        })
        .map_err(ctx("reading resources"))?;
    rows.collect::<Result<_, _>>()
        .map_err(ctx("reading resources"))
}

/// A notification to the patient or the médecin traitant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Notification {
    pub at: String,
    /// `patient` or `medecin-traitant:<RPPS>`.
    pub recipient: String,
    pub audit_seq: i64,
    pub message: String,
}

pub fn notify(conn: &Connection, patient: &str, n: &Notification) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO notifications (at, patient, recipient, audit_seq, message)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut statement| {
        statement.execute(params![n.at, patient, n.recipient, n.audit_seq, n.message])
    })
    .map_err(ctx("storing a notification"))?;
    Ok(())
}

pub fn notifications(conn: &Connection, patient: &str) -> Result<Vec<Notification>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT at, recipient, audit_seq, message FROM notifications WHERE patient = ?1 ORDER BY id",
        )
        .map_err(ctx("reading notifications"))?;
    let rows = stmt
        .query_map([patient], |r| {
            Ok(Notification {
                at: r.get(0)?,
                recipient: r.get(1)?,
                audit_seq: r.get(2)?,
                message: r.get(3)?,
            })
        })
        .map_err(ctx("reading notifications"))?;
    rows.collect::<Result<_, _>>()
        .map_err(ctx("reading notifications"))
}
