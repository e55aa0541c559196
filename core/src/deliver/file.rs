//! The file destination: one `<record id>.json` per record, written atomically, once.
//!
//! A delivery writes the file under a temporary name, fsyncs it and renames it into place;
//! the folder's fsync, which makes the renames durable, is done once for a whole batch of
//! deliveries by [`FileSink::sync`] before any of them is marked delivered (one fsync per
//! batch instead of one per record).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rand::Rng;

use super::DeliveryError;
use crate::record::Record;

/// Writes each record as `<record id>.json` (its JSON line) in a folder.
#[derive(Debug, Clone)]
pub struct FileSink {
    dir: PathBuf,
}

impl FileSink {
    /// The folder is created on the first delivery.
    pub fn new(dir: PathBuf) -> FileSink {
        FileSink { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the record's file (blocking work runs in `spawn_blocking`). Durable only after
    /// the next [`FileSink::sync`].
    pub async fn deliver(&self, record: &Record) -> Result<(), DeliveryError> {
        let id = record.envelope.id.clone();
        if !is_safe_file_stem(&id) {
            return Err(DeliveryError::permanent(format!(
                "record id {id:?} cannot be used as a file name"
            )));
        }
        let mut content = record.to_json_line().into_bytes();
        content.push(b'\n');
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || write_atomically(&dir, &format!("{id}.json"), &content))
            .await
            .map_err(|e| DeliveryError::retryable(format!("file writer task failed: {e}")))?
            .map_err(|e| DeliveryError::retryable(e.to_string()))
    }

    /// Makes the files delivered so far durable (fsync of the folder: their names).
    pub async fn sync(&self) -> Result<(), DeliveryError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            sync_dir(&dir).map_err(|e| format!("cannot sync {}: {e}", dir.display()))
        })
        .await
        .map_err(|e| DeliveryError::retryable(format!("file sync task failed: {e}")))?
        .map_err(DeliveryError::retryable)
    }
}

/// Record ids are hex; refuse anything that could escape the folder or hide as a dotfile.
fn is_safe_file_stem(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Temp file in the same folder, fsync, rename over `name` (the folder's fsync is left to
/// [`FileSink::sync`]). The temp file is removed when anything fails.
///
/// A file already holding exactly `content` is left alone: the record was delivered before
/// (a crash came between the write and the journal's "delivered" mark, or a replay), so the
/// destination sees each record once. Different content (a torn or newer version) is replaced.
fn write_atomically(dir: &Path, name: &str, content: &[u8]) -> io::Result<()> {
    let ctx = |what: &str, path: &Path, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
    };
    fs::create_dir_all(dir).map_err(|e| ctx("cannot create", dir, e))?;
    let target = dir.join(name);
    if already_there(&target, content) {
        // The earlier write may not have reached the folder's fsync before the crash: the
        // batch's `sync` covers it.
        return Ok(());
    }
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::rng().random::<u64>()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| ctx("cannot create", &tmp, e))?;
        f.write_all(content)
            .and_then(|()| f.sync_all())
            .map_err(|e| ctx("cannot write", &tmp, e))?;
        drop(f);
        fs::rename(&tmp, &target).map_err(|e| ctx("cannot rename to", &target, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Whether `path` holds exactly `content` (any error reading it: no).
fn already_there(path: &Path, content: &[u8]) -> bool {
    fs::metadata(path).is_ok_and(|m| m.len() == content.len() as u64)
        && fs::read(path).is_ok_and(|existing| existing == content)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Directories cannot be opened for syncing on Windows; the rename is durable once
    // the file system flushes its metadata.
    Ok(())
}
