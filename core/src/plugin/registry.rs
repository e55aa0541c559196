//! The configured plugins, each hot-swappable: when a plugin's `.wasm` changes on disk, the new
//! build is loaded and serves the next messages; a build that fails to load is rejected and the
//! old one keeps serving.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};

use super::{Plugin, PluginEngine, PluginError, PluginSpec};

/// Quiet time after the last change before a plugin is reloaded (a build writes in steps).
const DEBOUNCE: Duration = Duration::from_millis(300);

struct Slot {
    spec: PluginSpec,
    current: ArcSwap<Plugin>,
    last_error: Mutex<Option<String>>,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
}

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
}

pub struct PluginRegistry {
    engine: PluginEngine,
    slots: BTreeMap<String, Slot>,
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
            Ok(PluginRegistry { engine, slots })
        } else {
            Err(errors)
        }
    }

    /// The plugin serving now.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.slots.get(name).map(|s| s.current.load_full())
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
                }
            })
            .collect()
    }

    /// Reloads `name` from disk if its file changed. `Ok(true)`: a new build serves from now on.
    pub fn reload(&self, name: &str) -> Result<bool, PluginError> {
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
                slot.current.store(Arc::new(p));
                slot.reloads.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut e) = slot.last_error.lock() {
                    *e = None;
                }
                Ok(true)
            }
            Err(e) => {
                tracing::error!(plugin = %name, error = %e, "new plugin build rejected; the previous one keeps serving");
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
                                let _ = registry.reload(&name);
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
