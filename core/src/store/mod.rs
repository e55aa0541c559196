//! The record store (issue #7): the built-in destination that keeps each patient's shared
//! record (documents by INS, versions, visibility flags), its FHIR read API and patient-side
//! API, the access policy and the hash-chained audit trail. See `docs/record-store.md`.
//!
//! One SQLite file (WAL), separate from the journal. One connection behind a mutex, used from
//! `spawn_blocking`: the delivery worker writes, the API reads (and audits: every read is a
//! write too). The sink and the API of a destination share the same [`RecordStore`]
//! ([`RecordStore::shared`]).

pub mod actors;
pub mod api;
pub mod audit;
pub mod db;
mod error;
pub mod index;
pub mod manage;
pub mod policy;
pub mod read;
mod sink;
pub mod write;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use rusqlite::Connection;

pub use audit::ChainReport;
pub use error::StoreError;
pub use policy::Policy;
pub use sink::RecordStoreSink;
pub use write::PutOutcome;

use crate::config::DestinationConfig;
use crate::record::Record;

/// A record store file, shared by its destination and its API.
#[derive(Clone)]
pub struct RecordStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
    policy: Policy,
    accept_test_ins: bool,
}

impl std::fmt::Debug for RecordStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// Open stores by path, so that a destination's sink and API use one connection.
fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<Inner>>> {
    static STORES: OnceLock<Mutex<HashMap<PathBuf, Weak<Inner>>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

impl RecordStore {
    /// Opens (creating) the file. `accept_test_ins`: the test and demo INS namespaces count as
    /// qualified (R1), for test platforms.
    pub fn open(
        path: &Path,
        policy: Policy,
        accept_test_ins: bool,
    ) -> Result<RecordStore, StoreError> {
        let conn = db::open(path)?;
        Ok(RecordStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                conn: Mutex::new(conn),
                policy,
                accept_test_ins,
            }),
        })
    }

    /// The store already open at `path` in this process, else a new one.
    pub fn shared(
        path: &Path,
        policy: Policy,
        accept_test_ins: bool,
    ) -> Result<RecordStore, StoreError> {
        let mut stores = registry().lock().unwrap_or_else(|p| p.into_inner());
        stores.retain(|_, w| w.strong_count() > 0);
        if let Some(inner) = stores.get(path).and_then(Weak::upgrade) {
            return Ok(RecordStore { inner });
        }
        let store = Self::open(path, policy, accept_test_ins)?;
        stores.insert(path.to_path_buf(), Arc::downgrade(&store.inner));
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// Runs `f` on the connection, blocking (use from sync code and tests).
    pub fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection, &Policy) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A panic inside a transaction rolled it back on unwind: the connection is usable.
        let mut conn = self.inner.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn, &self.inner.policy)
    }

    /// Runs `f` on the connection in `spawn_blocking`.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &Policy) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.with_conn(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Stores delivered records in one transaction (see [`write::put_all`]).
    pub async fn put_all(
        &self,
        records: Vec<Record>,
    ) -> Result<Vec<Result<PutOutcome, StoreError>>, StoreError> {
        let accept = self.inner.accept_test_ins;
        self.run(move |conn, policy| {
            write::put_all(conn, policy, accept, &records, &crate::clock::now_rfc3339())
        })
        .await
    }

    /// Walks the audit chain (see [`audit::verify_chain`]).
    pub fn verify_chain(&self) -> Result<ChainReport, StoreError> {
        self.with_conn(|conn, _| audit::verify_chain(conn))
    }
}

/// Resolves a record-store destination's paths: the database under the data dir, the matrix
/// and actors files against the config file's folder. Other destinations are left alone.
pub fn resolve_paths(config: &mut DestinationConfig, data_dir: &Path, config_dir: &Path) {
    if let DestinationConfig::RecordStore(d) = config {
        let under = |base: &Path, p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        d.path = under(data_dir, &d.path);
        d.matrix = d.matrix.as_deref().map(|m| under(config_dir, m));
        if let Some(api) = &mut d.api {
            api.actors = under(config_dir, &api.actors);
        }
    }
}

/// Opens the store of a record-store destination (its matrix file read if configured).
pub fn open_configured(d: &crate::config::RecordStoreDestination) -> anyhow::Result<RecordStore> {
    use anyhow::Context as _;
    let policy = match &d.matrix {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the access matrix {}", file.display()))?;
            Policy::from_toml(&text).with_context(|| format!("access matrix {}", file.display()))?
        }
        None => Policy::with_default_matrix(),
    };
    RecordStore::shared(&d.path, policy, d.accept_test_ins)
        .with_context(|| format!("opening the record store {}", d.path.display()))
}
