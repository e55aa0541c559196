//! The audit log: an append-only file of configuration changes and operator actions.
//!
//! One JSON object per line:
//! `{"time", "actor", "action", "target", "outcome", "detail", "prev"}`.
//!
//! - `actor`: `admin:<token name>` (admin API), `file-watcher` (a routes or plugin file changed
//!   on disk), `sighup` (the reload signal), `daemon` (start).
//! - `action`: `daemon.start`, `routes.reload`, `plugin.reload`, `plugin.resume`,
//!   `destination.pause`, `destination.resume`, `dead-letter.retry`, `dead-letter.discard`,
//!   `message.replay`, `messages.replay`.
//! - `outcome`: `applied`, `rejected`, `ok`, `not-found`, `error`; `detail` says why (a
//!   rejection's `file:line:column: reason`, a version, a count). Never a message's content:
//!   search filters are recorded by name only (an INS is patient data).
//! - `prev`: the SHA-256 (hex) of the previous line's bytes (64 zeros on the first line), so an
//!   edited, removed or reordered line breaks the chain ([`verify`]).
//!
//! The file is opened with `O_APPEND` only (never truncated, never rewritten, mode 0640), each
//! line goes out in one `write` and is fsynced before [`AuditLog::record`] returns. A failure
//! to write is logged at error level and counted (`passerelle_audit_write_failures_total`);
//! the action itself has already happened and is not undone.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How far back from the end [`AuditLog::open`] looks for the last line.
const TAIL: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
    #[error("audit log {}: line {line}: {reason}", path.display())]
    Broken {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// One entry, in file order.
#[derive(Debug, Serialize)]
struct Entry<'a> {
    time: String,
    actor: &'a str,
    action: &'a str,
    target: &'a str,
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    prev: &'a str,
}

struct Inner {
    file: File,
    /// Hex SHA-256 of the last line written.
    prev: String,
}

/// The open audit log; cheap to share (`Arc`).
pub struct AuditLog {
    path: PathBuf,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (or creates) the log at `path` for appending; the chain continues from its last
    /// line. A last line cut short by a crash is closed with a newline (appended) and kept.
    pub fn open(path: &Path) -> Result<Arc<AuditLog>, AuditError> {
        let io = |e: std::io::Error| AuditError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(path)
            .map_err(io)?;
        // A second handle to read the tail: the appending one stays write-only.
        let mut reader = File::open(path).map_err(io)?;
        let len = reader.metadata().map_err(io)?.len();
        let start = len.saturating_sub(TAIL);
        reader.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail).map_err(io)?;
        if !tail.is_empty() && !tail.ends_with(b"\n") {
            tracing::warn!(file = %path.display(), "audit log: the last line is incomplete (crash while writing?); closing it");
            file.write_all(b"\n").map_err(io)?;
            file.sync_data().map_err(io)?;
            tail.push(b'\n');
        }
        let prev = match last_line(&tail, start == 0) {
            Some(line) => hex::encode(Sha256::digest(line)),
            None if start > 0 => {
                return Err(AuditError::Broken {
                    path: path.to_path_buf(),
                    line: 0,
                    reason: format!("the last line is longer than {TAIL} bytes"),
                });
            }
            None => GENESIS.to_string(),
        };
        Ok(Arc::new(AuditLog {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner { file, prev }),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and fsyncs it. Never fails the caller: a write error is logged.
    pub fn record(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        outcome: &str,
        detail: Option<&str>,
    ) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = Entry {
            time: crate::clock::now_rfc3339(),
            actor,
            action,
            target,
            outcome,
            detail,
            prev: &inner.prev,
        };
        let mut line = match serde_json::to_vec(&entry) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(error = %e, action, "audit log: cannot encode an entry");
                return;
            }
        };
        let hash = hex::encode(Sha256::digest(&line));
        line.push(b'\n');
        let written = inner
            .file
            .write_all(&line)
            .and_then(|()| inner.file.sync_data());
        match written {
            Ok(()) => inner.prev = hash,
            Err(e) => {
                metrics::counter!("passerelle_audit_write_failures_total").increment(1);
                tracing::error!(file = %self.path.display(), error = %e, actor, action, target, outcome, "audit log: cannot write an entry");
            }
        }
    }
}

/// Records on `audit` when there is one.
pub fn record(
    audit: Option<&Arc<AuditLog>>,
    actor: &str,
    action: &str,
    target: &str,
    outcome: &str,
    detail: Option<&str>,
) {
    if let Some(a) = audit {
        a.record(actor, action, target, outcome, detail);
    }
}

/// The last complete line of `tail` (which ends with a newline). The tail may start mid-line
/// (`from_start` false): a line is complete only with a newline before it.
fn last_line(tail: &[u8], from_start: bool) -> Option<&[u8]> {
    let body = tail.strip_suffix(b"\n")?;
    match body.iter().rposition(|&b| b == b'\n') {
        Some(i) => Some(&body[i + 1..]),
        None if from_start => Some(body),
        None => None,
    }
}

/// Checks the whole chain of the log at `path`; returns the number of entries. The first
/// line whose `prev` is not the hash of the line before it is reported.
pub fn verify(path: &Path) -> Result<usize, AuditError> {
    let text = std::fs::read(path).map_err(|e| AuditError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut prev = GENESIS.to_string();
    let mut n = 0;
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let broken = |reason: String| AuditError::Broken {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_slice(line).map_err(|e| broken(format!("not JSON: {e}")))?;
        let claimed = value["prev"].as_str().unwrap_or_default();
        if claimed != prev {
            return Err(broken(
                "its `prev` is not the SHA-256 of the line before: the log was edited".into(),
            ));
        }
        prev = hex::encode(Sha256::digest(line));
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn entries_are_appended_chained_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        log.record("admin:alice", "destination.pause", "dmp", "ok", None);
        log.record(
            "file-watcher",
            "routes.reload",
            "routes.toml",
            "rejected",
            Some("routes.toml:3:1: unknown destination"),
        );
        let before = std::fs::read(&path).unwrap();
        drop(log);
        let log = AuditLog::open(&path).unwrap();
        log.record("sighup", "plugin.reload", "lab", "applied", Some("v2"));
        let after = std::fs::read(&path).unwrap();
        assert!(
            after.starts_with(&before),
            "earlier bytes are never rewritten"
        );
        let entries = lines(&path);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0]["prev"], GENESIS);
        assert_eq!(entries[0]["actor"], "admin:alice");
        assert_eq!(entries[1]["outcome"], "rejected");
        assert_eq!(entries[1]["detail"], "routes.toml:3:1: unknown destination");
        assert!(entries[0].get("detail").is_none());
        assert!(entries[2]["time"].as_str().unwrap().ends_with('Z'));
        let first_line = std::fs::read_to_string(&path).unwrap();
        let first_line = first_line.lines().next().unwrap();
        assert_eq!(entries[1]["prev"], hex::encode(Sha256::digest(first_line)));
        assert_eq!(verify(&path).unwrap(), 3);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o007, 0, "not world-readable: {mode:o}");
    }

    #[test]
    fn an_edited_or_removed_line_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for target in ["a", "b", "c"] {
            log.record("admin:ops", "destination.resume", target, "ok", None);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("\"b\"", "\"x\"", 1)).unwrap();
        let err = verify(&path).unwrap_err();
        assert!(matches!(err, AuditError::Broken { line: 3, .. }), "{err}");
        let kept: Vec<&str> = text
            .lines()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, l)| l)
            .collect();
        std::fs::write(&path, kept.join("\n") + "\n").unwrap();
        assert!(matches!(
            verify(&path).unwrap_err(),
            AuditError::Broken { line: 2, .. }
        ));
    }

    #[test]
    fn a_torn_last_line_is_closed_and_the_chain_goes_on_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        log.record("daemon", "daemon.start", "passerelle.toml", "ok", None);
        drop(log);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"time\":\"2026").unwrap();
        drop(f);
        let log = AuditLog::open(&path).unwrap();
        log.record("daemon", "daemon.start", "passerelle.toml", "ok", None);
        let text = std::fs::read_to_string(&path).unwrap();
        let all: Vec<&str> = text.lines().collect();
        assert_eq!(all.len(), 3);
        let last: serde_json::Value = serde_json::from_str(all[2]).unwrap();
        assert_eq!(last["prev"], hex::encode(Sha256::digest(all[1])));
        // The torn line is visible to `verify` (not JSON), not silently dropped.
        assert!(matches!(
            verify(&path).unwrap_err(),
            AuditError::Broken { line: 2, .. }
        ));
    }
}
