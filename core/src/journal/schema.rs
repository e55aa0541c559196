//! Connection settings, schema and migrations.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::error::{JournalError, ctx};

/// The schema version this build writes. Bump it and append to `MIGRATIONS` to change it.
pub const SCHEMA_VERSION: i64 = 2;

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: V1,
        rewrites_schema: false,
    },
    Migration {
        sql: V2,
        rewrites_schema: true,
    },
];

struct Migration {
    sql: &'static str,
    /// The SQL edits `sqlite_schema` in place (constraint text only), following SQLite's
    /// documented procedure for changing constraints without rebuilding a table: with
    /// `writable_schema` on, then the schema cookie bumped so that every connection re-reads
    /// the schema.
    rewrites_schema: bool,
}

/// Version 1.
///
/// - `messages`: one row per received message (a resend is a new row: audit). `status` is
///   `routed`, `held`, `failed`, `delivered`, `dead` or `discarded`; `outcome` is what the plugin step gave.
/// - `records`: one row per record id (deterministic, so a resend does not add a row); `json`
///   is `Record::to_json_line()` (LZ4-compressed from version 2 on); `patient_key` orders
///   deliveries per patient. Other tables refer to records by the integer `rec` (appending,
///   unlike the hashed id: fewer random index pages written per message).
/// - `message_records`: which records each message produced (also for duplicates), with the
///   route that chose it and `held` = no destination.
/// - `outbox`: one entry per (record, destination), `pending` → `delivered` | `dead`; an
///   operator sends a `dead` entry back to `pending` (retry) or to `discarded`.
/// - `attempts`: every delivery attempt, for operators, and the operators' retry (`requeued`)
///   and discard (`discarded`) actions.
/// - Search indexes for the message browser (admin API): by source message id and by patient
///   key (INS). Each costs one more index page write per message / new record.
/// - `message_status_counts`: message count per status, kept by triggers (cheap metrics).
const V1: &str = r#"
CREATE TABLE messages (
    id                INTEGER PRIMARY KEY,
    source            TEXT    NOT NULL,
    content_type      TEXT    NOT NULL,
    received_at       TEXT    NOT NULL,           -- RFC 3339, from the source
    stored_at         INTEGER NOT NULL,           -- ms since the epoch, journal clock
    peer              TEXT,
    outcome           TEXT    NOT NULL CHECK (outcome IN ('adapted', 'failed', 'held')),
    status            TEXT    NOT NULL CHECK (status IN ('routed', 'held', 'failed', 'delivered', 'dead', 'discarded')),
    error             TEXT,
    plugin            TEXT,
    plugin_version    TEXT,
    source_message_id TEXT,
    message_type      TEXT,
    rules_version     TEXT,
    payload           BLOB    NOT NULL
);
CREATE INDEX messages_status_stored ON messages (status, stored_at);
CREATE INDEX messages_source_message_id ON messages (source_message_id);

CREATE TABLE records (
    rec              INTEGER PRIMARY KEY,         -- internal key: new records append
    id               TEXT    NOT NULL UNIQUE,     -- the deterministic record id
    first_message_id INTEGER NOT NULL,            -- the message that first stored it
    patient_key      TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    json             TEXT    NOT NULL,
    -- Digest of the content (bundle, status, confidentiality): a resend with the same digest
    -- is a duplicate; a different content under the same id (a source reusing a message id)
    -- is a new version, delivered again.
    content_sha      BLOB    NOT NULL,
    version          INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX records_patient_key ON records (patient_key);

CREATE TABLE message_records (
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    rec        INTEGER NOT NULL REFERENCES records (rec),
    route      TEXT,
    held       INTEGER NOT NULL,                  -- 1: no destination
    duplicate  INTEGER NOT NULL,                  -- 1: the record was stored by an earlier message
    PRIMARY KEY (message_id, position)
) WITHOUT ROWID;
CREATE INDEX message_records_rec ON message_records (rec);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    rec             INTEGER NOT NULL REFERENCES records (rec) ON DELETE CASCADE,
    destination     TEXT    NOT NULL,
    patient_key     TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'dead', 'discarded')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,   -- ms since the epoch; 0 = at once
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER,                      -- delivered, dead-lettered or discarded at
    last_error      TEXT,
    version         INTEGER NOT NULL DEFAULT 1,   -- the record version this entry delivers
    UNIQUE (rec, destination, version)
);
-- The delivery queue of a destination, in order. Per-patient order is computed while scanning
-- it (the first pending entry of a patient is its head; later ones wait), so no index keyed
-- by patient is needed (it would cost a random page write per message).
CREATE INDEX outbox_pending ON outbox (destination, id) WHERE state = 'pending';
CREATE INDEX outbox_dead ON outbox (destination, id) WHERE state = 'dead';
CREATE INDEX outbox_dead_all ON outbox (id) WHERE state = 'dead';

CREATE TABLE attempts (
    id        INTEGER PRIMARY KEY,
    outbox_id INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    at        INTEGER NOT NULL,
    outcome   TEXT    NOT NULL CHECK (outcome IN ('delivered', 'failed', 'dead', 'requeued', 'discarded')),
    error     TEXT
);
CREATE INDEX attempts_outbox ON attempts (outbox_id);

CREATE TABLE message_status_counts (
    status TEXT    PRIMARY KEY,
    n      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER messages_count_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_status_counts (status, n) VALUES (NEW.status, 1)
        ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER messages_count_update AFTER UPDATE OF status ON messages
    WHEN OLD.status <> NEW.status BEGIN
    UPDATE message_status_counts SET n = n - 1 WHERE status = OLD.status;
    INSERT INTO message_status_counts (status, n) VALUES (NEW.status, 1)
        ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER messages_count_delete AFTER DELETE ON messages BEGIN
    UPDATE message_status_counts SET n = n - 1 WHERE status = OLD.status;
END;
"#;

/// Version 2:
/// - `records.json` holds new records as LZ4-compressed BLOBs (`super::stored_json`); rows of
///   version 1 keep their text. The version number is what stops a build that only knows
///   version 1 from opening a journal it could not read.
/// - The `CHECK (column IN ('a', 'b', 'c'))` constraints become `column = 'a' OR ...`: SQLite
///   evaluates an `IN` list of more than two values through a temporary b-tree that it builds
///   and frees at every execution, so each insert of a message opened and closed two of them
///   (a pager, a page cache and the list's inserts, in the writer thread every ACK waits
///   for). Only the text of the constraints changes, in place
///   ([`Migration::rewrites_schema`]): the rows already satisfy them.
/// - The status-count triggers are plain `UPDATE`s of rows that always exist (cheaper than
///   version 1's upsert).
const V2: &str = r#"
UPDATE sqlite_schema SET sql = replace(replace(sql,
    'CHECK (outcome IN (''adapted'', ''failed'', ''held''))',
    'CHECK (outcome = ''adapted'' OR outcome = ''failed'' OR outcome = ''held'')'),
    'CHECK (status IN (''routed'', ''held'', ''failed'', ''delivered'', ''dead'', ''discarded''))',
    'CHECK (status = ''routed'' OR status = ''held'' OR status = ''failed'' OR status = ''delivered'' OR status = ''dead'' OR status = ''discarded'')')
WHERE type = 'table' AND name = 'messages';
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (state IN (''pending'', ''delivered'', ''dead'', ''discarded''))',
    'CHECK (state = ''pending'' OR state = ''delivered'' OR state = ''dead'' OR state = ''discarded'')')
WHERE type = 'table' AND name = 'outbox';
UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (outcome IN (''delivered'', ''failed'', ''dead'', ''requeued'', ''discarded''))',
    'CHECK (outcome = ''delivered'' OR outcome = ''failed'' OR outcome = ''dead'' OR outcome = ''requeued'' OR outcome = ''discarded'')')
WHERE type = 'table' AND name = 'attempts';
INSERT OR IGNORE INTO message_status_counts (status, n) VALUES
    ('routed', 0), ('held', 0), ('failed', 0), ('delivered', 0), ('dead', 0), ('discarded', 0);
DROP TRIGGER messages_count_insert;
CREATE TRIGGER messages_count_insert AFTER INSERT ON messages BEGIN
    UPDATE message_status_counts SET n = n + 1 WHERE status = NEW.status;
END;
DROP TRIGGER messages_count_update;
CREATE TRIGGER messages_count_update AFTER UPDATE OF status ON messages
    WHEN OLD.status <> NEW.status BEGIN
    UPDATE message_status_counts SET n = n - 1 WHERE status = OLD.status;
    UPDATE message_status_counts SET n = n + 1 WHERE status = NEW.status;
END;
"#;

/// Opens the write connection: WAL, `synchronous=FULL`, foreign keys; creates or migrates the
/// schema. `max_size_mib` caps the database file (`PRAGMA max_page_count`, per connection: only
/// the writer needs it); a cap below the current size holds it at its current size.
pub fn open_writer(
    path: &Path,
    max_size_mib: Option<u64>,
    autocheckpoint_pages: i64,
) -> Result<Connection, JournalError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| JournalError::Io {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
    }
    let conn = Connection::open(path).map_err(ctx("opening the journal"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(ctx("setting the busy timeout"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(ctx("enabling WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(JournalError::Internal(format!(
            "the journal refused WAL mode (got {mode})"
        )));
    }
    // FULL: in WAL mode, every COMMIT fsyncs the WAL before it returns, so an acknowledged
    // message survives a power loss, not only a process crash.
    // cache_size 8 MiB: the writer mostly appends; a 32 MiB cache measured no faster
    // (docs/benchmarks.md section 7), held ≈ 25 MiB more, and took a journal of ≈ 30 MiB to
    // fill, which looked like memory growing with a backlog.
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -8192;
         PRAGMA journal_size_limit = 67108864;",
    )
    .map_err(ctx("configuring the journal"))?;
    // Checkpoints run in the background (super::checkpoint); this one is the backstop.
    conn.pragma_update(None, "wal_autocheckpoint", autocheckpoint_pages)
        .map_err(ctx("configuring the journal"))?;
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&conn)?;
    if let Some(mib) = max_size_mib {
        set_max_size(&conn, mib)?;
    }
    Ok(conn)
}

/// Caps the database file at `mib` MiB (`PRAGMA max_page_count`); returns the cap in pages.
pub(super) fn set_max_size(conn: &Connection, mib: u64) -> Result<i64, JournalError> {
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(ctx("reading the page size"))?;
    let pages = (mib.saturating_mul(1024 * 1024) / page_size.max(512) as u64).max(1);
    let pages = i64::try_from(pages).unwrap_or(i64::MAX);
    let set: i64 = conn
        .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
            r.get(0)
        })
        .map_err(ctx("setting the journal size limit"))?;
    if set > pages {
        tracing::warn!(
            max_size_mib = mib,
            size_mib = set.saturating_mul(page_size) / (1024 * 1024),
            "the journal is already larger than journal.max_size_mib: it may not grow any further"
        );
    }
    Ok(set)
}

/// Opens the connection of the background checkpoint (after [`open_writer`]: the file is in
/// WAL mode already). `synchronous=FULL`: the database file is fsynced after each copy, before
/// the WAL may be rewound.
pub fn open_checkpointer(path: &Path) -> Result<Connection, JournalError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(ctx("opening the checkpoint connection"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(ctx("setting the busy timeout"))?;
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA cache_size = -2048;")
        .map_err(ctx("configuring the checkpoint connection"))?;
    Ok(conn)
}

/// Opens a read-only connection (used for queries and claims, so they never wait for a group
/// commit and never delay one: WAL readers see the last committed state).
pub fn open_reader(path: &Path) -> Result<Connection, JournalError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(ctx("opening a journal reader"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(ctx("setting the busy timeout"))?;
    conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -16384;")
        .map_err(ctx("configuring a journal reader"))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

const SCHEMA_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER NOT NULL,
             applied_at INTEGER NOT NULL
         );";

fn migrate(conn: &Connection) -> Result<(), JournalError> {
    conn.execute_batch(SCHEMA_VERSION_TABLE)
        .map_err(ctx("creating the schema version table"))?;
    let current: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(ctx("reading the schema version"))?;
    if current > SCHEMA_VERSION {
        return Err(JournalError::UnsupportedSchema {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let to = from as i64 + 1;
        let tx = conn
            .unchecked_transaction()
            .map_err(ctx("starting a migration"))?;
        if migration.rewrites_schema {
            let cookie: i64 = tx
                .query_row("PRAGMA schema_version", [], |r| r.get(0))
                .map_err(ctx("reading the schema cookie"))?;
            tx.execute_batch("PRAGMA writable_schema = ON")
                .map_err(ctx("migrating the schema"))?;
            let edited = tx.execute_batch(migration.sql).and_then(|()| {
                tx.execute_batch(&format!("PRAGMA schema_version = {}", cookie + 1))
            });
            // Off again whatever happened: the connection goes on serving the journal.
            let off = tx.execute_batch("PRAGMA writable_schema = OFF");
            edited.and(off).map_err(ctx("migrating the schema"))?;
        } else {
            tx.execute_batch(migration.sql)
                .map_err(ctx("migrating the schema"))?;
        }
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
            (to, super::now_ms()),
        )
        .map_err(ctx("recording the schema version"))?;
        tx.commit().map_err(ctx("committing a migration"))?;
        tracing::info!(version = to, "journal schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSERT_MESSAGE: &str = "INSERT INTO messages (source, content_type, received_at,
         stored_at, outcome, status, payload) VALUES ('lab', 'x', 'now', 1, 'adapted', ?1, x'00')";

    /// The opcodes SQLite would run for `sql` on `conn`.
    fn opcodes(conn: &Connection, sql: &str) -> Vec<String> {
        let mut s = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let mut rows = s.raw_query();
        let mut ops = Vec::new();
        while let Some(r) = rows.next().unwrap() {
            ops.push(r.get::<_, String>(1).unwrap());
        }
        ops
    }

    /// A journal as a build of schema version 1 left it, with one message.
    fn journal_of_version_1(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(SCHEMA_VERSION_TABLE).unwrap();
        conn.execute_batch(V1).unwrap();
        conn.execute_batch("INSERT INTO schema_version VALUES (1, 0)")
            .unwrap();
        conn.execute(INSERT_MESSAGE, ["held"]).unwrap();
    }

    #[test]
    fn version_2_rewrites_in_lists_and_keeps_rows_counts_and_constraints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        journal_of_version_1(&path);
        {
            let v1 = Connection::open(&path).unwrap();
            assert!(opcodes(&v1, INSERT_MESSAGE).contains(&"OpenEphemeral".to_string()));
        }

        let conn = open_writer(&path, None, 1000).unwrap();
        let version: i64 = conn
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        // The migrating connection itself runs the new constraint text.
        assert!(!opcodes(&conn, INSERT_MESSAGE).contains(&"OpenEphemeral".to_string()));
        for table in ["messages", "outbox", "attempts"] {
            let sql: String = conn
                .query_row(
                    "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(!sql.contains(" IN ("), "{table}: {sql}");
            assert!(sql.contains("CHECK ("), "{table}: {sql}");
        }
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        // The constraints still hold; the counts carry on from version 1's.
        let bad = conn.execute(INSERT_MESSAGE, ["lost"]).unwrap_err();
        assert!(bad.to_string().contains("CHECK"), "{bad}");
        conn.execute(INSERT_MESSAGE, ["held"]).unwrap();
        conn.execute("UPDATE messages SET status = 'failed' WHERE id = 1", [])
            .unwrap();
        let counts: Vec<(String, i64)> = conn
            .prepare("SELECT status, n FROM message_status_counts WHERE n > 0 ORDER BY status")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(counts, [("failed".into(), 1), ("held".into(), 1)]);
        drop(conn);

        // Another connection, opened afterwards, reads the new schema too.
        let other = open_writer(&path, None, 1000).unwrap();
        assert!(!opcodes(&other, INSERT_MESSAGE).contains(&"OpenEphemeral".to_string()));
    }

    #[test]
    fn a_reader_opens_a_journal_not_migrated_yet_and_refuses_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        journal_of_version_1(&path);
        let reader = super::super::JournalReader::open(&path).unwrap();
        let listed = reader.search(&Default::default()).unwrap();
        assert_eq!(listed.len(), 1);
        drop(reader);

        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("INSERT INTO schema_version VALUES (99, 0)")
            .unwrap();
        let err = super::super::JournalReader::open(&path).err().unwrap();
        assert!(
            matches!(err, JournalError::UnsupportedSchema { found: 99, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_new_journal_gets_the_same_schema_as_a_migrated_one() {
        let dir = tempfile::tempdir().unwrap();
        let migrated = dir.path().join("old.db");
        journal_of_version_1(&migrated);
        let schema = |conn: &Connection| -> Vec<String> {
            conn.prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let old = open_writer(&migrated, None, 1000).unwrap();
        let new = open_writer(&dir.path().join("new.db"), None, 1000).unwrap();
        assert_eq!(schema(&old), schema(&new));
    }
}
