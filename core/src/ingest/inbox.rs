//! Directory drop: every complete file put in a folder is one message.
//!
//! - The folder, and `processed/` and `failed/` under it, are created at start.
//! - A file is taken only once complete: right after it is renamed or moved into the folder
//!   (the usual "write `x.tmp`, then rename to `x.hl7`" convention), or once its size and
//!   modification time have not changed for `settle_ms` (candidates are polled every
//!   `settle_ms / 4`, between 20 and 250 ms). Files present at start are taken too (after
//!   settling), and a rescan every 2 s catches what the watcher missed (or everything, when
//!   the watcher cannot start: then the inbox is polled).
//! - Ignored: dotfiles, `*.tmp`, `*.part`, anything that is not a regular file (subfolders), and
//!   names not ending with one of `extensions` when set (case-insensitive).
//! - Each file is read and handed to [`Pipeline::ingest`] with peer `file:<name>`; after the
//!   commit it is moved to `processed/` (accepted) or `failed/` (rejected by the plugin; a
//!   `<name>.error.txt` beside it says why). A name already taken there gets a numeric suffix
//!   (`a.hl7` → `a-1.hl7`).
//! - A journal error (nothing stored) leaves the file in place; it is retried 5 s later. So
//!   is a file that cannot be read. A file stored but that cannot be moved is logged as an
//!   error and not taken again while it stays unchanged (it would be stored twice).
//! - Files are taken one at a time, in the order they become ready (by name within a scan).
//!   Shutdown: the file in progress finishes (ingest + move), then the watcher stops.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::InboxSource;
use crate::ingest::stopped;
use crate::topology::{Ingested, Pipeline, SourceCtx};

/// Sub-folder for files stored and adapted.
pub const PROCESSED: &str = "processed";
/// Sub-folder for files rejected by the plugin (with their `.error.txt`).
pub const FAILED: &str = "failed";
/// Interval of the full rescans.
pub const RESCAN_EVERY: Duration = Duration::from_secs(2);
/// Delay before retrying a file after a journal or read error.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// A prepared inbox: folders created, watcher running (events are queued until it runs).
pub struct Inbox {
    ctx: SourceCtx,
    dir: PathBuf,
    settle: Duration,
    /// Lower-cased suffixes; empty = every file.
    extensions: Vec<String>,
    watcher: Option<RecommendedWatcher>,
    events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("source", &self.ctx.name)
            .field("dir", &self.dir)
            .field("settle", &self.settle)
            .field("extensions", &self.extensions)
            .field("watching", &self.watcher.is_some())
            .finish()
    }
}

impl Inbox {
    /// Creates the folders and starts watching.
    pub fn prepare(ctx: SourceCtx, config: &InboxSource) -> anyhow::Result<Self> {
        let dir = config.dir.clone();
        for d in [dir.clone(), dir.join(PROCESSED), dir.join(FAILED)] {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create the folder {}", d.display()))?;
        }
        let (tx, events) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        })
        .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|()| w));
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(source = %ctx.name, dir = %dir.display(), error = %e, "cannot watch the inbox; polling it every {} s instead", RESCAN_EVERY.as_secs());
                None
            }
        };
        Ok(Inbox {
            ctx,
            dir,
            settle: Duration::from_millis(config.settle_ms),
            extensions: config.extensions.iter().map(|e| e.to_lowercase()).collect(),
            watcher,
            events,
        })
    }

    /// The watched folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts taking files; the task ends after the shutdown signal (once the file in progress
    /// is done).
    pub fn spawn(self, pipeline: Arc<Pipeline>, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(self.run(pipeline, shutdown))
    }

    async fn run(mut self, pipeline: Arc<Pipeline>, mut shutdown: watch::Receiver<bool>) {
        let poll_every =
            (self.settle / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
        let mut state = State::default();
        let mut poll = tokio::time::interval(poll_every);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut rescan = tokio::time::interval(RESCAN_EVERY);
        rescan.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tracing::info!(source = %self.ctx.name, dir = %self.dir.display(), settle_ms = self.settle.as_millis() as u64, "inbox watching");
        loop {
            tokio::select! {
                biased;
                _ = stopped(&mut shutdown) => break,
                Some(event) = self.events.recv(), if self.watcher.is_some() => self.on_event(&mut state, event),
                _ = poll.tick(), if !state.candidates.is_empty() => {
                    for name in self.due(&mut state).await {
                        if *shutdown.borrow() {
                            break;
                        }
                        self.take(&mut state, &pipeline, name).await;
                    }
                }
                // The first tick is immediate: the files present at start.
                _ = rescan.tick() => self.rescan(&mut state).await,
            }
        }
        drop(self.watcher.take());
        tracing::info!(source = %self.ctx.name, "inbox stopped");
    }

    fn eligible(&self, name: &OsStr) -> bool {
        let name = name.to_string_lossy().to_lowercase();
        !name.starts_with('.')
            && !name.ends_with(".tmp")
            && !name.ends_with(".part")
            && (self.extensions.is_empty()
                || self.extensions.iter().any(|e| name.ends_with(e.as_str())))
    }

    /// The name of a file directly in the inbox, if `path` is one (the watch is not recursive:
    /// every path is the folder itself or a direct child).
    fn name_in_dir(&self, path: &Path) -> Option<OsString> {
        let name = path.file_name()?;
        (path != self.dir && self.eligible(name)).then(|| name.to_os_string())
    }

    fn on_event(&self, state: &mut State, event: notify::Result<notify::Event>) {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(source = %self.ctx.name, error = %e, "inbox watcher error; the rescan covers it");
                return;
            }
        };
        let now = Instant::now();
        match event.kind {
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                for p in &event.paths {
                    if let Some(name) = self.name_in_dir(p) {
                        state.seen(name, now, true);
                    }
                }
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                if let Some(from) = event.paths.first().and_then(|p| p.file_name()) {
                    state.candidates.remove(from);
                }
                if let Some(name) = event.paths.get(1).and_then(|p| self.name_in_dir(p)) {
                    state.seen(name, now, true);
                }
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
                for p in &event.paths {
                    if let Some(name) = p.file_name() {
                        state.candidates.remove(name);
                    }
                }
            }
            // Closing a file is not a change; it only makes sure we know about it.
            EventKind::Access(_) => {
                for p in &event.paths {
                    if let Some(name) = self.name_in_dir(p) {
                        state
                            .candidates
                            .entry(name)
                            .or_insert_with(|| Candidate::new(now, false));
                    }
                }
            }
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Any | EventKind::Other => {
                for p in &event.paths {
                    if let Some(name) = self.name_in_dir(p) {
                        state.seen(name, now, false);
                    }
                }
            }
        }
    }

    /// Adds the eligible files not known yet; forgets stuck files that are gone.
    async fn rescan(&self, state: &mut State) {
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(source = %self.ctx.name, dir = %self.dir.display(), error = %e, "cannot list the inbox");
                return;
            }
        };
        let now = Instant::now();
        let mut present = HashSet::new();
        loop {
            let entry = match entries.next_entry().await {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(source = %self.ctx.name, error = %e, "cannot list the inbox");
                    break;
                }
            };
            let name = entry.file_name();
            if !self.eligible(&name) {
                continue;
            }
            present.insert(name.clone());
            if state.candidates.contains_key(&name) {
                continue;
            }
            let Ok(meta) = tokio::fs::metadata(entry.path()).await else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let stamp = (meta.len(), meta.modified().ok());
            if state.stuck.get(&name) == Some(&stamp) {
                continue;
            }
            let mut c = Candidate::new(now, false);
            c.stamp = Some(stamp);
            state.candidates.insert(name, c);
        }
        state.stuck.retain(|name, _| present.contains(name));
    }

    /// Stats the candidates; returns the names of the complete ones (ready or settled), sorted.
    async fn due(&self, state: &mut State) -> Vec<OsString> {
        let now = Instant::now();
        let mut due = Vec::new();
        let mut gone = Vec::new();
        for (name, c) in state.candidates.iter_mut() {
            let meta = match tokio::fs::metadata(self.dir.join(name)).await {
                Ok(m) if m.is_file() => m,
                Ok(_) => {
                    gone.push(name.clone());
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    gone.push(name.clone());
                    continue;
                }
                Err(e) => {
                    tracing::debug!(source = %self.ctx.name, file = %name.to_string_lossy(), error = %e, "cannot stat an inbox file");
                    continue;
                }
            };
            let stamp = (meta.len(), meta.modified().ok());
            if c.stamp != Some(stamp) {
                if c.stamp.is_some() {
                    // Still being written (a file renamed in and then changed must settle too).
                    c.ready = false;
                    c.since = now;
                }
                c.stamp = Some(stamp);
            }
            if state.stuck.get(name) == Some(&stamp) {
                gone.push(name.clone());
                continue;
            }
            let settled = now.duration_since(c.since) >= self.settle;
            let retry_ok = c.retry_at.is_none_or(|t| t <= now);
            if (c.ready || settled) && retry_ok {
                due.push(name.clone());
            }
        }
        for name in gone {
            state.candidates.remove(&name);
        }
        due.sort();
        due
    }

    /// Stores one file and moves it. Leaves it in place (for a retry) on a journal error.
    async fn take(&self, state: &mut State, pipeline: &Pipeline, name: OsString) {
        let Some(candidate) = state.candidates.remove(&name) else {
            return;
        };
        let source = self.ctx.name.as_str();
        let shown = name.to_string_lossy().into_owned();
        let path = self.dir.join(&name);
        let retry = |state: &mut State, mut c: Candidate| {
            c.retry_at = Some(Instant::now() + RETRY_AFTER);
            c.ready = true;
            state.candidates.insert(name.clone(), c);
        };
        let payload = match tokio::fs::read(&path).await {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(source, file = %shown, error = %e, "cannot read an inbox file; retrying in {} s", RETRY_AFTER.as_secs());
                retry(state, candidate);
                return;
            }
        };
        let stamp = candidate.stamp;
        let received = std::time::Instant::now(); // metrics: ACK latency (read → moved)
        let outcome = pipeline
            .ingest_or_wait(&self.ctx, payload, Some(format!("file:{shown}")))
            .await;
        let (folder, note, message_id) = match outcome {
            Ok(Ingested::Accepted {
                receipt, records, ..
            }) => {
                tracing::info!(source, file = %shown, message_id = %receipt.message_id, records, "inbox file accepted");
                (PROCESSED, None, receipt.message_id)
            }
            Ok(Ingested::Rejected { message_id, error }) => {
                tracing::info!(source, file = %shown, message_id = %message_id, "inbox file rejected by the plugin; moving it to failed/");
                let note = format!(
                    "file: {shown}\nsource: {source}\nmessage id: {message_id}\nrejected: {error}\n"
                );
                (FAILED, Some(note), message_id)
            }
            Ok(Ingested::Queued { message_id }) => {
                tracing::info!(source, file = %shown, message_id = %message_id, "inbox file queued for adaptation; moving it to processed/");
                (PROCESSED, None, message_id)
            }
            Ok(Ingested::Held { message_id, .. }) => {
                tracing::info!(source, file = %shown, message_id = %message_id, "inbox file held (plugin suspended); stored, moving it to processed/");
                (PROCESSED, None, message_id)
            }
            Err(e) if e.is_backpressure() => {
                tracing::warn!(source, file = %shown, error = %e, "inbox file NOT stored (back-pressure); left in place, retrying in {} s", RETRY_AFTER.as_secs());
                retry(state, candidate);
                return;
            }
            Err(e) => {
                crate::telemetry::ingest_refused(source, "journal");
                tracing::error!(source, file = %shown, error = %e, "inbox file NOT stored (journal error); left in place, retrying in {} s", RETRY_AFTER.as_secs());
                retry(state, candidate);
                return;
            }
        };
        let target_dir = self.dir.join(folder);
        match move_unique(&path, &target_dir, &name).await {
            Ok(target) => {
                crate::telemetry::ack_sent(source, received);
                if let Some(note) = note {
                    let mut error_name = target.file_name().unwrap_or(&name).to_os_string();
                    error_name.push(".error.txt");
                    if let Err(e) = tokio::fs::write(target_dir.join(&error_name), note).await {
                        tracing::warn!(source, file = %shown, error = %e, "cannot write the .error.txt of a rejected file");
                    }
                }
            }
            Err(e) => {
                tracing::error!(source, file = %shown, message_id = %message_id, folder, error = %e, "inbox file stored but cannot be moved; it will not be taken again while unchanged");
                if let Some(stamp) = stamp {
                    state.stuck.insert(name, stamp);
                }
            }
        }
    }
}

type Stamp = (u64, Option<SystemTime>);

#[derive(Default)]
struct State {
    candidates: HashMap<OsString, Candidate>,
    /// Files stored but not moved: never taken again while their stamp is unchanged.
    stuck: HashMap<OsString, Stamp>,
}

impl State {
    /// A watcher event about `name`: it changed (or was renamed in, when `ready`).
    fn seen(&mut self, name: OsString, now: Instant, ready: bool) {
        let c = self
            .candidates
            .entry(name)
            .or_insert_with(|| Candidate::new(now, ready));
        c.since = now;
        c.ready = ready;
    }
}

struct Candidate {
    /// Size and mtime at the last poll.
    stamp: Option<Stamp>,
    /// When it was last seen changing.
    since: Instant,
    /// Renamed or moved in: complete now.
    ready: bool,
    /// Not before this (after a journal or read error).
    retry_at: Option<Instant>,
}

impl Candidate {
    fn new(now: Instant, ready: bool) -> Self {
        Candidate {
            stamp: None,
            since: now,
            ready,
            retry_at: None,
        }
    }
}

/// Moves `from` into `dir` under `name`, or `stem-N.ext` if taken. Returns the new path.
async fn move_unique(from: &Path, dir: &Path, name: &OsStr) -> io::Result<PathBuf> {
    let mut target = dir.join(name);
    let mut n = 0u32;
    while tokio::fs::try_exists(&target).await? {
        n += 1;
        let lossy = name.to_string_lossy();
        let (stem, ext) = match lossy.rfind('.') {
            Some(i) if i > 0 => lossy.split_at(i),
            _ => (lossy.as_ref(), ""),
        };
        target = dir.join(format!("{stem}-{n}{ext}"));
    }
    match tokio::fs::rename(from, &target).await {
        Ok(()) => Ok(target),
        // Another file system (a mount under the inbox): copy, then remove.
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            tokio::fs::copy(from, &target).await?;
            tokio::fs::remove_file(from).await?;
            Ok(target)
        }
        Err(e) => Err(e),
    }
}
