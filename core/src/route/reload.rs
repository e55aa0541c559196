//! Hot reload: the current rule set behind an [`ArcSwap`], and a debounced file watcher.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};

use super::rules::RuleSet;
use crate::admin::audit::AuditLog;
use crate::config::TomlError;

/// Quiet period after the last change before the file is re-read.
pub const DEBOUNCE: Duration = Duration::from_millis(200);
/// A continuous stream of changes still triggers a reload after this long.
pub const MAX_DEBOUNCE: Duration = Duration::from_millis(800);

/// Result of a successful reload attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new rule set is in place.
    Reloaded { version: String, routes: usize },
    /// The file has the content of the running version: nothing to do.
    Unchanged,
}

#[derive(Default)]
struct ReloadState {
    source: Option<(PathBuf, HashSet<String>)>,
    last_error: Option<String>,
    /// Digest of the last rejected content and its error, so the watcher does not reject the
    /// same content again on every touch.
    last_rejected: Option<([u8; 32], TomlError)>,
}

/// The current routes, swapped atomically on reload.
///
/// Take one snapshot per record with [`RoutesHandle::current`]: a record is then routed under
/// exactly one version, even if a reload happens meanwhile.
pub struct RoutesHandle {
    current: ArcSwap<RuleSet>,
    /// Held during a reload: reloads are serialised; routing never takes it.
    state: Mutex<ReloadState>,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    /// Applied and rejected reloads are recorded here.
    audit: OnceLock<Arc<AuditLog>>,
}

impl std::fmt::Debug for RoutesHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutesHandle")
            .field("version", &self.current().version())
            .field("reloads", &self.reloads())
            .field("reload_failures", &self.reload_failures())
            .finish_non_exhaustive()
    }
}

impl RoutesHandle {
    /// Wraps an initial rule set; [`RoutesHandle::reload_now`] needs a source (see
    /// [`RoutesHandle::load`] or [`watch`]).
    pub fn new(rules: RuleSet) -> Self {
        RoutesHandle {
            current: ArcSwap::from_pointee(rules),
            state: Mutex::new(ReloadState::default()),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            audit: OnceLock::new(),
        }
    }

    /// Records every applied or rejected reload from now on in `audit` (set once).
    pub fn set_audit(&self, audit: Arc<AuditLog>) {
        let _ = self.audit.set(audit);
    }

    /// `force`: an explicit reload (SIGHUP); otherwise the file watcher.
    fn audit(&self, force: bool, path: &Path, outcome: &str, detail: &str) {
        let actor = if force { "sighup" } else { "file-watcher" };
        crate::admin::audit::record(
            self.audit.get(),
            actor,
            "routes.reload",
            &path.display().to_string(),
            outcome,
            Some(detail),
        );
    }

    /// Loads the routes file and remembers it as the source for [`RoutesHandle::reload_now`].
    pub fn load(
        path: impl AsRef<Path>,
        known_destinations: HashSet<String>,
    ) -> Result<Self, TomlError> {
        let path = path.as_ref();
        let handle = RoutesHandle::new(RuleSet::load(path, &known_destinations)?);
        handle.lock().source = Some((path.to_path_buf(), known_destinations));
        Ok(handle)
    }

    /// The rule set in force now.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current.load_full()
    }

    /// The error of the latest reload attempt (`file:line:column: reason`); `None` once the file
    /// on disk is valid again.
    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    /// Successful reloads (new content swapped in) since start.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Rejected reload attempts since start.
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    /// Re-reads the source file now (SIGHUP). On error the current rules stay in force.
    pub fn reload_now(&self) -> Result<ReloadOutcome, TomlError> {
        let source = self.lock().source.clone();
        let Some((path, known)) = source else {
            let file = self.current().path().to_path_buf();
            return Err(TomlError {
                file,
                line: 0,
                column: 0,
                message: "no routes file to reload".into(),
            });
        };
        self.reload(&path, &known, true)
    }

    fn lock(&self) -> MutexGuard<'_, ReloadState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads `path`; swaps in a valid new content, keeps the current rules otherwise.
    /// `force = false` (watcher) skips content rejected just before.
    fn reload(
        &self,
        path: &Path,
        known: &HashSet<String>,
        force: bool,
    ) -> Result<ReloadOutcome, TomlError> {
        let mut state = self.lock();
        let src = match std::fs::read_to_string(path) {
            Ok(src) => src,
            Err(e) => {
                let err = TomlError {
                    file: path.to_path_buf(),
                    line: 0,
                    column: 0,
                    message: format!("cannot read the routes file: {e}"),
                };
                return Err(self.reject(&mut state, None, err, force));
            }
        };
        let digest: [u8; 32] = Sha256::digest(src.as_bytes()).into();
        let old = self.current.load();
        if digest == *old.digest() {
            state.last_error = None;
            state.last_rejected = None;
            return Ok(ReloadOutcome::Unchanged);
        }
        if !force
            && let Some((d, err)) = &state.last_rejected
            && *d == digest
        {
            return Err(err.clone());
        }
        match RuleSet::parse(path, &src, known) {
            Ok(rules) => {
                let (version, routes) = (rules.version().to_owned(), rules.route_count());
                self.current.store(Arc::new(rules));
                self.reloads.fetch_add(1, Ordering::Relaxed);
                state.last_error = None;
                state.last_rejected = None;
                tracing::info!(
                    file = %path.display(),
                    version = %version,
                    previous = %old.version(),
                    routes,
                    "routes reloaded"
                );
                let detail = format!("version {} -> {version}; {routes} routes", old.version());
                self.audit(force, path, "applied", &detail);
                Ok(ReloadOutcome::Reloaded { version, routes })
            }
            Err(err) => Err(self.reject(&mut state, Some(digest), err, force)),
        }
    }

    fn reject(
        &self,
        state: &mut ReloadState,
        digest: Option<[u8; 32]>,
        err: TomlError,
        force: bool,
    ) -> TomlError {
        self.reload_failures.fetch_add(1, Ordering::Relaxed);
        let version = self.current.load().version().to_owned();
        tracing::error!(error = %err, running_version = %version, "routes file rejected; the current routes stay in force");
        state.last_error = Some(err.to_string());
        state.last_rejected = digest.map(|d| (d, err.clone()));
        self.audit(force, &err.file, "rejected", &err.to_string());
        err
    }
}

enum Msg {
    Fs(notify::Result<Event>),
    Stop,
}

/// Watches the routes file; dropping it stops watching.
pub struct RoutesWatcher {
    watcher: Option<notify::RecommendedWatcher>,
    tx: mpsc::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RoutesWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutesWatcher").finish_non_exhaustive()
    }
}

impl Drop for RoutesWatcher {
    fn drop(&mut self) {
        drop(self.watcher.take());
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Watches `path` and reloads `handle` when it changes.
///
/// The watch is on the file's parent directory, so replacing the file by rename (as editors and
/// deployment tools do) is seen. Changes are debounced ([`DEBOUNCE`] of quiet, at most
/// [`MAX_DEBOUNCE`]; events on other files of the directory are ignored unless `path` is a
/// symlink), then the file is re-read: a valid new content is swapped in, an invalid one
/// is logged at error level (file:line:column) and kept in [`RoutesHandle::last_error`], and the
/// current rules stay in force. `path` and `known_destinations` also become the source of
/// [`RoutesHandle::reload_now`].
pub fn watch(
    handle: Arc<RoutesHandle>,
    path: impl AsRef<Path>,
    known_destinations: HashSet<String>,
) -> notify::Result<RoutesWatcher> {
    let path = path.as_ref().to_path_buf();
    let file_name = path
        .file_name()
        .ok_or_else(|| notify::Error::generic(&format!("not a file path: {}", path.display())))?
        .to_owned();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };

    let (tx, rx) = mpsc::channel::<Msg>();
    let events = tx.clone();
    let mut watcher = notify::recommended_watcher(move |res| {
        let _ = events.send(Msg::Fs(res));
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    handle.lock().source = Some((path.clone(), known_destinations.clone()));
    // The file may have changed between the initial load and the start of the watch.
    let _ = handle.reload(&path, &known_destinations, false);

    // A symlinked file (e.g. a Kubernetes ConfigMap, updated by swapping a `..data` symlink) is
    // replaced without an event naming it: then any change in the directory is checked (an
    // unchanged content costs one read and hash).
    let any_change = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
    let relevant = move |ev: &Event| -> bool {
        let ignored = matches!(
            ev.kind,
            EventKind::Access(
                AccessKind::Open(_)
                    | AccessKind::Read
                    | AccessKind::Close(AccessMode::Read | AccessMode::Execute)
            )
        );
        !ignored
            && (ev.need_rescan()
                || any_change
                || ev
                    .paths
                    .iter()
                    .any(|p| p.file_name() == Some(file_name.as_os_str())))
    };

    let thread = std::thread::Builder::new()
        .name("routes-watch".into())
        .spawn(move || {
            loop {
                match rx.recv() {
                    Ok(Msg::Fs(Ok(ev))) if relevant(&ev) => {}
                    Ok(Msg::Fs(Ok(_))) => continue,
                    Ok(Msg::Fs(Err(e))) => {
                        tracing::warn!(error = %e, file = %path.display(), "routes watcher error");
                        continue;
                    }
                    Ok(Msg::Stop) | Err(_) => return,
                }
                // Collapse a burst of events into one reload.
                let first = Instant::now();
                let mut last = first;
                loop {
                    let deadline = (last + DEBOUNCE).min(first + MAX_DEBOUNCE);
                    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                        Ok(Msg::Fs(Ok(ev))) if relevant(&ev) => last = Instant::now(),
                        Ok(Msg::Fs(_)) => {}
                        Err(RecvTimeoutError::Timeout) => break,
                        Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                let _ = handle.reload(&path, &known_destinations, false);
            }
        })?;

    Ok(RoutesWatcher {
        watcher: Some(watcher),
        tx,
        thread: Some(thread),
    })
}
