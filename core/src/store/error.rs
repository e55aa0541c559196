//! Record store errors.

use std::path::PathBuf;

/// An error from the record store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("record store: {op}: {source}")]
    Sqlite {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("record store: cannot create the folder of {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("record store: stored JSON does not parse ({what}): {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("record store: the database refused WAL mode (got {0})")]
    NoWal(String),
    #[error("record store: a worker task failed: {0}")]
    Task(String),
}

/// `map_err` helper naming the operation that failed.
pub(crate) fn ctx(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { op, source }
}
