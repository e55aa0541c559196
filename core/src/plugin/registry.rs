//! The configured plugins, each hot-swappable: when a plugin's `.wasm` changes on disk, the new
//! build is loaded and serves the next messages; a build that fails to load is rejected and the
//! old one keeps serving. Each configured plugin has a circuit [`Breaker`] that outlives its
//! builds; a new build resumes a suspended breaker (and calls the new-build hook, which the
//! topology uses to re-process the held messages).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};

use super::{Breaker, BreakerStatus, Plugin, PluginEngine, PluginError, PluginSpec};
use crate::admin::audit::{self, AuditLog};

/// Quiet time after the last change before a plugin is reloaded (a build writes in steps).
const DEBOUNCE: Duration = Duration::from_millis(300);

struct Slot {
    spec: PluginSpec,
    current: ArcSwap<Plugin>,
    last_error: Mutex<Option<String>>,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    breaker: Arc<Breaker>,
}

/// Called with a plugin's name after a new build of it was swapped in while its breaker was
/// suspended (now resuming).
pub type NewBuildHook = Box<dyn Fn(&str) + Send + Sync>;

/// Status of one plugin, for operators.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginStatus {
    pub name: String,
    pub path: PathBuf,
    pub plugin_name: String,
    pub version: String,
    pub sha256: String,
    pub traps: u64,
    pub reloads: u64,
    pub reload_failures: u64,
    pub last_error: Option<String>,
    pub limits: super::PluginLimits,
    pub breaker: BreakerStatus,
}

pub struct PluginRegistry {
    engine: PluginEngine,
    slots: BTreeMap<String, Slot>,
    on_new_build: OnceLock<NewBuildHook>,
    /// Swapped and rejected builds are recorded here.
    audit: OnceLock<Arc<AuditLog>>,
}

impl PluginRegistry {
    /// Loads every plugin; returns every failure if any fails.
    pub fn load_all(
        engine: PluginEngine,
        specs: Vec<PluginSpec>,
    ) -> Result<Self, Vec<PluginError>> {
        let mut slots = BTreeMap::new();
        let mut errors = Vec::new();
        for spec in specs {
            match Plugin::load(&engine, &spec) {
                Ok(p) => {
                    tracing::info!(plugin = %spec.name, version = %p.info().version, sha256 = %p.sha256(), "plugin loaded");
                    slots.insert(
                        spec.name.clone(),
                        Slot {
                            breaker: Arc::new(Breaker::new(spec.limits.breaker_failures)),
                            spec,
                            current: ArcSwap::from_pointee(p),
                            last_error: Mutex::new(None),
                            reloads: AtomicU64::new(0),
                            reload_failures: AtomicU64::new(0),
                        },
                    );
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(PluginRegistry {
                engine,
                slots,
                on_new_build: OnceLock::new(),
                audit: OnceLock::new(),
            })
        } else {
            Err(errors)
        }
    }

    /// The plugin serving now.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.slots.get(name).map(|s| s.current.load_full())
    }

    /// The circuit breaker of `name`.
    pub fn breaker(&self, name: &str) -> Option<&Arc<Breaker>> {
        self.slots.get(name).map(|s| &s.breaker)
    }

    /// Feeds `name`'s breaker with the result of a call made on `build`. Results of a build
    /// that no longer serves are ignored (a new build starts with a clean count). Returns true
    /// when this result suspended the plugin.
    pub fn record_result(
        &self,
        name: &str,
        build: &Arc<Plugin>,
        error: Option<&PluginError>,
    ) -> bool {
        let Some(slot) = self.slots.get(name) else {
            return false;
        };
        match error {
            Some(e) if e.is_plugin_fault() => {
                if !Arc::ptr_eq(&slot.current.load(), build) {
                    return false;
                }
                let tripped = slot.breaker.record_fault(&fault_class(e));
                if tripped {
                    tracing::error!(plugin = %name, threshold = slot.breaker.threshold(), "plugin SUSPENDED by its circuit breaker: its messages are stored as held until it is resumed (POST /plugins/{name}/resume) or a new build is loaded");
                }
                tripped
            }
            _ => {
                slot.breaker.record_success();
                false
            }
        }
    }

    /// Sets the function called after a new build of a suspended plugin was swapped in (once).
    pub fn set_new_build_hook(&self, hook: NewBuildHook) {
        let _ = self.on_new_build.set(hook);
    }

    /// Records every swapped or rejected build from now on in `audit` (set once).
    pub fn set_audit(&self, audit: Arc<AuditLog>) {
        let _ = self.audit.set(audit);
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.slots.keys().map(String::as_str)
    }

    pub fn status(&self) -> Vec<PluginStatus> {
        self.slots
            .iter()
            .map(|(name, s)| {
                let p = s.current.load();
                PluginStatus {
                    name: name.clone(),
                    path: s.spec.path.clone(),
                    plugin_name: p.info().name.clone(),
                    version: p.info().version.clone(),
                    sha256: p.sha256().to_string(),
                    traps: p.trap_count(),
                    reloads: s.reloads.load(Ordering::Relaxed),
                    reload_failures: s.reload_failures.load(Ordering::Relaxed),
                    last_error: s.last_error.lock().ok().and_then(|e| e.clone()),
                    limits: *p.limits(),
                    breaker: s.breaker.status(),
                }
            })
            .collect()
    }

    /// Reloads `name` from disk if its file changed (an explicit request: SIGHUP). `Ok(true)`:
    /// a new build serves from now on.
    pub fn reload(&self, name: &str) -> Result<bool, PluginError> {
        self.reload_by(name, "sighup")
    }

    /// [`PluginRegistry::reload`] on behalf of `actor` (for the audit log).
    pub fn reload_by(&self, name: &str, actor: &str) -> Result<bool, PluginError> {
        let Some(slot) = self.slots.get(name) else {
            return Ok(false);
        };
        let bytes = std::fs::read(&slot.spec.path).map_err(|e| PluginError::Read {
            path: slot.spec.path.clone(),
            reason: e.to_string(),
        })?;
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        if sha == slot.current.load().sha256() {
            return Ok(false);
        }
        match Plugin::load(&self.engine, &slot.spec) {
            Ok(p) => {
                tracing::info!(plugin = %name, version = %p.info().version, sha256 = %p.sha256(), "plugin reloaded");
                let detail = format!("version {}; sha256 {}", p.info().version, p.sha256());
                audit::record(
                    self.audit.get(),
                    actor,
                    "plugin.reload",
                    name,
                    "applied",
                    Some(&detail),
                );
                slot.current.store(Arc::new(p));
                slot.reloads.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut e) = slot.last_error.lock() {
                    *e = None;
                }
                // A new build gets a fresh start: a suspended plugin resumes with it.
                if slot.breaker.begin_resume() {
                    tracing::info!(plugin = %name, "new build of a suspended plugin: resuming; its held messages are re-processed");
                    if let Some(hook) = self.on_new_build.get() {
                        hook(name);
                    }
                }
                Ok(true)
            }
            Err(e) => {
                tracing::error!(plugin = %name, error = %e, "new plugin build rejected; the previous one keeps serving");
                audit::record(
                    self.audit.get(),
                    actor,
                    "plugin.reload",
                    name,
                    "rejected",
                    Some(&e.to_string()),
                );
                slot.reload_failures.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = slot.last_error.lock() {
                    *last = Some(e.to_string());
                }
                Err(e)
            }
        }
    }

    /// Watches every plugin file; dropping the watcher stops it.
    pub fn watch(self: &Arc<Self>) -> notify::Result<PluginWatcher> {
        let (tx, rx) = mpsc::channel::<Option<PathBuf>>();
        let events = tx.clone();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                if let Ok(ev) = res
                    && !matches!(ev.kind, notify::EventKind::Access(_))
                {
                    for p in ev.paths {
                        let _ = events.send(Some(p));
                    }
                }
            })?;
        let mut by_file: HashMap<PathBuf, String> = HashMap::new();
        for (name, slot) in &self.slots {
            let dir = slot
                .spec
                .path
                .parent()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            watcher.watch(&dir, RecursiveMode::NonRecursive)?;
            if let Some(file) = slot.spec.path.file_name() {
                by_file.insert(PathBuf::from(file), name.clone());
            }
        }
        let registry = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("plugin-watch".into())
            .spawn(move || {
                let mut pending: Vec<String> = Vec::new();
                loop {
                    let msg = if pending.is_empty() {
                        rx.recv().ok()
                    } else {
                        rx.recv_timeout(DEBOUNCE).ok()
                    };
                    match msg {
                        Some(Some(path)) => {
                            if let Some(name) = path
                                .file_name()
                                .and_then(|f| by_file.get(&PathBuf::from(f)))
                                && !pending.contains(name)
                            {
                                pending.push(name.clone());
                            }
                        }
                        Some(None) => break,
                        None if pending.is_empty() => break,
                        None => {
                            for name in pending.drain(..) {
                                let _ = registry.reload_by(&name, "file-watcher");
                            }
                        }
                    }
                }
            })
            .map_err(|e| notify::Error::generic(&e.to_string()))?;
        Ok(PluginWatcher {
            watcher: Some(watcher),
            tx,
            thread: Some(thread),
        })
    }
}

/// The class of a fault, without the plugin's own text (which may quote the message).
fn fault_class(e: &PluginError) -> String {
    match e {
        PluginError::Trap { cause, .. } => format!("trapped: {cause}"),
        PluginError::InvalidOutput { .. } => "invalid output".into(),
        PluginError::Instantiate { .. } => "cannot instantiate".into(),
        PluginError::Configure { .. } => "refused its settings".into(),
        PluginError::Contract { .. } => "broke the contract".into(),
        other => other.to_string(),
    }
}

/// Watches plugin files; dropping it stops watching.
pub struct PluginWatcher {
    watcher: Option<notify::RecommendedWatcher>,
    tx: mpsc::Sender<Option<PathBuf>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for PluginWatcher {
    fn drop(&mut self) {
        drop(self.watcher.take());
        let _ = self.tx.send(None);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
