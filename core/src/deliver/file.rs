//! The file destination: one `<record id>.json` per record, written atomically, once.
//!
//! A delivery writes the record under a temporary name (a dotfile in the same folder) and
//! stages it. [`FileSink::sync`], called once per batch before any delivery of the batch is
//! marked delivered, makes the staged contents durable with one sync of the file system
//! (`syncfs`, Linux; elsewhere an fsync per file), renames each into place, then fsyncs the
//! folder so that the names are durable too. A reader of the folder never sees a partial file
//! under a final name, even after a power cut: a rename only happens once its content is on disk.
//! One file-system sync per batch instead of one fsync per record: each fsync is an I/O round
//! trip and, in a VM, an exit to the hypervisor (docs/benchmarks.md section 15). Temp files a
//! crash left behind are removed at the sink's first delivery once they are an hour old.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rand::Rng;

use super::DeliveryError;
use crate::record::Record;

/// Writes each record as `<record id>.json` (its JSON line) in a folder.
#[derive(Debug, Clone)]
pub struct FileSink {
    dir: PathBuf,
    /// Files written since the last sync, under their temporary names. Shared by the clones the
    /// delivery tasks hold; `sync` keeps the lock while it works, so a second sync cannot return
    /// before the renames of the first are durable.
    staged: Arc<Mutex<Staged>>,
}

/// The batch being written: temporary file → final name, in the order written, and the folder
/// opened before the first of them was written.
#[derive(Debug, Default)]
struct Staged {
    files: Vec<(PathBuf, PathBuf)>,
    /// `syncfs` reports a write-back error only to descriptors opened before it happened: this
    /// one is opened before the batch's first write, so an error writing any of them is seen.
    folder: Option<fs::File>,
    /// Whether the folder was swept of stale temp files (once per sink).
    swept: bool,
}

/// A temp file older than this is left over from a crash (a batch syncs within seconds), not
/// one another process sharing the folder is writing.
const STALE_TEMP: Duration = Duration::from_secs(3600);

impl Drop for Staged {
    /// Staged files never synced (the sink dropped between a delivery and its batch's sync) were
    /// never reported delivered: they are retried, so their temporary files go.
    fn drop(&mut self) {
        remove_temps(&self.files);
    }
}

impl FileSink {
    /// The folder is created on the first delivery.
    pub fn new(dir: PathBuf) -> FileSink {
        FileSink {
            dir,
            staged: Arc::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the record's file under a temporary name (blocking work runs in
    /// `spawn_blocking`). It takes its final name, durably, at the next [`FileSink::sync`].
    pub async fn deliver(&self, record: &Record) -> Result<(), DeliveryError> {
        self.deliver_all(vec![record.clone()])
            .await
            .pop()
            .unwrap_or_else(|| Err(DeliveryError::retryable("file writer returned no result")))
    }

    /// [`FileSink::deliver`] for several records, in one blocking task: the worker hands a
    /// whole claim over at once instead of one task and one thread hand-off per record
    /// (docs/benchmarks.md section 20). Each record's JSON line is made just before its file is
    /// written and dropped after, so a claim of large records is never all in memory twice.
    /// One result per record, in order.
    pub async fn deliver_all(&self, records: Vec<Record>) -> Vec<Result<(), DeliveryError>> {
        let count = records.len();
        let dir = self.dir.clone();
        let staged = self.staged.clone();
        let written = tokio::task::spawn_blocking(move || {
            let folder = open_folder(&dir, &staged).map_err(|e| e.to_string());
            let mut files = Vec::with_capacity(records.len());
            let results = records
                .into_iter()
                .map(|record| {
                    let id = &record.envelope.id;
                    if !is_safe_file_stem(id) {
                        return Err(DeliveryError::permanent(format!(
                            "record id {id:?} cannot be used as a file name"
                        )));
                    }
                    if let Err(e) = &folder {
                        return Err(DeliveryError::retryable(e.clone()));
                    }
                    let mut content = record.to_json_line().into_bytes();
                    content.push(b'\n');
                    let file = write_staged(&dir, &format!("{id}.json"), &content)
                        .map_err(|e| DeliveryError::retryable(e.to_string()))?;
                    files.extend(file);
                    Ok(())
                })
                .collect();
            lock(&staged).files.extend(files);
            results
        })
        .await;
        written.unwrap_or_else(|e| {
            let error = DeliveryError::retryable(format!("file writer task failed: {e}"));
            vec![Err(error); count]
        })
    }

    /// Makes the files delivered so far durable and puts them in place: their content synced,
    /// renamed to their final names, the folder synced. On an error none of them counts as
    /// delivered (the temporary files are removed; the batch is retried).
    pub async fn sync(&self) -> Result<(), DeliveryError> {
        let dir = self.dir.clone();
        let staged = self.staged.clone();
        tokio::task::spawn_blocking(move || {
            let mut staged = lock(&staged);
            let files = std::mem::take(&mut staged.files);
            let result = publish(&dir, staged.folder.take(), &files);
            if result.is_err() {
                remove_temps(&files);
            }
            result
        })
        .await
        .map_err(|e| DeliveryError::retryable(format!("file sync task failed: {e}")))?
        .map_err(DeliveryError::retryable)
    }
}

fn lock(staged: &Mutex<Staged>) -> std::sync::MutexGuard<'_, Staged> {
    // A panic while holding the list leaves it consistent (pushes and takes are whole).
    staged.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The folder (created if need be), opened once per batch before its first write.
fn open_folder(dir: &Path, staged: &Mutex<Staged>) -> io::Result<()> {
    let mut staged = lock(staged);
    if staged.folder.is_none() {
        fs::create_dir_all(dir)
            .and_then(|()| fs::File::open(dir))
            .map(|folder| staged.folder = Some(folder))
            .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", dir.display())))?;
    }
    if !staged.swept {
        staged.swept = true;
        sweep_stale_temps(dir, SystemTime::now());
    }
    Ok(())
}

/// Removes this sink's temp files (`.<record id>.json.<16 hex digits>.tmp`) older than
/// [`STALE_TEMP`]: a crash between a delivery and its batch's sync leaves them, and their
/// records are delivered again under new temp names. Best effort: a file that cannot be read
/// or removed stays. Reads the whole folder once, at the sink's first delivery.
fn sweep_stale_temps(dir: &Path, now: SystemTime) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut removed = 0u64;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let stale = name.to_str().is_some_and(is_temp_name)
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > STALE_TEMP));
        if stale && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(folder = %dir.display(), removed, "removed stale temp files of the file destination");
    }
}

/// Best effort: the temp files of deliveries that will not be published (already renamed
/// ones are simply not found).
fn remove_temps(files: &[(PathBuf, PathBuf)]) {
    for (tmp, _) in files {
        let _ = fs::remove_file(tmp);
    }
}

/// A fresh temp name for the file `name` (`<record id>.json`): a dotfile, so that readers of the
/// folder skip it, with a random part, so that two writers of the same record do not collide.
fn temp_name(name: &str) -> String {
    format!(".{name}.{:016x}.tmp", rand::rng().random::<u64>())
}

/// Whether `name` is one that [`temp_name`] gives: `.<stem>.json.<16 hex digits>.tmp`.
fn is_temp_name(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    let Some((stem, hex)) = inner.rsplit_once('.') else {
        return false;
    };
    hex.len() == 16
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && stem.strip_suffix(".json").is_some_and(is_safe_file_stem)
}

/// Content durable, then the renames, then the folder: in this order, a crash leaves each
/// record either absent, or complete under its final name.
fn publish(
    dir: &Path,
    folder: Option<fs::File>,
    files: &[(PathBuf, PathBuf)],
) -> Result<(), String> {
    let cannot_sync = |e: io::Error| format!("cannot sync {}: {e}", dir.display());
    if !files.is_empty() {
        let folder = folder.ok_or_else(|| cannot_sync(io::Error::other("folder not open")))?;
        sync_contents(&folder, files).map_err(cannot_sync)?;
    }
    for (tmp, target) in files {
        fs::rename(tmp, target)
            .map_err(|e| format!("cannot rename to {}: {e}", target.display()))?;
    }
    sync_dir(dir).map_err(cannot_sync)
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

/// Writes `content` to a new temporary file in the folder, not synced: `(temporary, final)`,
/// or `None` when the final file already holds exactly `content` — the record was delivered
/// before (a crash came between the write and the journal's "delivered" mark, or a replay), so
/// the destination sees each record once. Different content (a newer version) is replaced.
/// The temporary file is removed when anything fails.
fn write_staged(dir: &Path, name: &str, content: &[u8]) -> io::Result<Option<(PathBuf, PathBuf)>> {
    let ctx = |what: &str, path: &Path, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
    };
    let target = dir.join(name);
    if already_there(&target, content) {
        // The earlier write may not have reached the folder's fsync before the crash: the
        // batch's `sync` covers it.
        return Ok(None);
    }
    let tmp = dir.join(temp_name(name));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| ctx("cannot create", &tmp, e))
        .and_then(|mut f| {
            f.write_all(content)
                .map_err(|e| ctx("cannot write", &tmp, e))
        });
    match written {
        Ok(()) => Ok(Some((tmp, target))),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Whether `path` holds exactly `content` (any error reading it: no).
fn already_there(path: &Path, content: &[u8]) -> bool {
    fs::metadata(path).is_ok_and(|m| m.len() == content.len() as u64)
        && fs::read(path).is_ok_and(|existing| existing == content)
}

/// The staged files' contents on disk: one `syncfs` of the folder's file system (it also
/// flushes other dirty files there; it reports write-back errors since Linux 5.8, to
/// descriptors opened before them).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn sync_contents(folder: &fs::File, _files: &[(PathBuf, PathBuf)]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `syncfs` reads nothing but the descriptor, which `folder` keeps open.
    if unsafe { libc::syncfs(folder.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn sync_contents(_folder: &fs::File, files: &[(PathBuf, PathBuf)]) -> io::Result<()> {
    files
        .iter()
        .try_for_each(|(tmp, _)| fs::File::open(tmp)?.sync_all())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_exactly() {
        assert!(is_temp_name(".0a1b-c.json.0123456789abcdef.tmp"));
        for _ in 0..100 {
            let name = temp_name("0a1b-c.json");
            assert!(is_temp_name(&name), "{name}");
        }
        for other in [
            "0a1b.json",
            ".0a1b.json.0123456789abcdef",
            ".0a1b.json.0123456789abcde.tmp",
            ".0a1b.json.0123456789abcdeg.tmp",
            ".0a1b.txt.0123456789abcdef.tmp",
            "..json.0123456789abcdef.tmp",
            ".keep",
            ".tmp",
        ] {
            assert!(!is_temp_name(other), "{other}");
        }
    }
}
