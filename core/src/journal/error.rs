//! Journal errors.

use std::path::PathBuf;
use std::sync::Arc;

/// An error from the journal. `Clone` because one failed group commit answers many callers.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// The disk (or the file system quota) is full: nothing of the failed transaction was
    /// stored. Ingest should apply back-pressure (refuse new messages) until space is freed.
    #[error("journal: disk full while {op}")]
    DiskFull { op: &'static str },

    /// Any other SQLite error, with the operation that failed.
    #[error("journal: {op}: {source}")]
    Sqlite {
        op: &'static str,
        #[source]
        source: Arc<rusqlite::Error>,
    },

    #[error("journal: cannot create the directory of {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },

    /// Opening an existing journal read-only: there is no file at `path`.
    #[error("journal: no journal file at {}", path.display())]
    Missing { path: PathBuf },

    /// A record stored in the journal does not parse back (the file was edited or corrupted).
    #[error("journal: stored record {record_id} does not parse: {source}")]
    CorruptRecord {
        record_id: String,
        #[source]
        source: Arc<serde_json::Error>,
    },

    /// The file was written by a newer Passerelle (schema version above what we know).
    #[error("journal: schema version {found} is newer than this build supports ({supported})")]
    UnsupportedSchema { found: i64, supported: i64 },

    /// Back-pressure (not a journal failure): the message was not stored because a destination
    /// it routes to already has more pending deliveries than `[delivery] max_pending`. The
    /// sender should retry later; nothing was stored.
    #[error(
        "not stored: destination {destination} has {pending} deliveries pending (max_pending {limit}); retry later"
    )]
    Backpressure {
        destination: String,
        pending: u64,
        limit: u64,
    },

    /// The writer thread has stopped (journal closed, or the thread died).
    #[error("journal: closed")]
    Closed,

    /// The JetStream backend could not do `op` (server unreachable, no quorum, timeout): as
    /// with a failed commit, nothing of it counts as stored.
    #[error("journal (JetStream): {op}: {message}")]
    Remote { op: &'static str, message: String },

    /// A bug in the journal itself (a reply of the wrong kind, a reader task that panicked).
    #[error("journal: internal error: {0}")]
    Internal(String),
}

impl JournalError {
    /// Wraps a rusqlite error with the operation; SQLITE_FULL becomes [`JournalError::DiskFull`].
    pub(crate) fn sqlite(op: &'static str, e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            JournalError::DiskFull { op }
        } else {
            JournalError::Sqlite {
                op,
                source: Arc::new(e),
            }
        }
    }

    /// True for [`JournalError::DiskFull`].
    pub fn is_disk_full(&self) -> bool {
        matches!(self, JournalError::DiskFull { .. })
    }

    /// True for [`JournalError::Backpressure`].
    pub fn is_backpressure(&self) -> bool {
        matches!(self, JournalError::Backpressure { .. })
    }
}

/// `.map_err(ctx("storing a message"))`.
pub(crate) fn ctx(op: &'static str) -> impl Fn(rusqlite::Error) -> JournalError {
    move |e| JournalError::sqlite(op, e)
}
