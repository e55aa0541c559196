//! The shared wasmtime engine, its epoch ticker and the on-disk cache of compiled components.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use super::PluginError;

/// How often the epoch advances: a call checks its time cap, and yields to the async runtime,
/// at this granularity (`HostState::on_epoch`).
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// One engine for all plugins (compiled code is shared), with an epoch ticker thread.
#[derive(Clone)]
pub struct PluginEngine {
    engine: Engine,
    cache_dir: Option<PathBuf>,
    _ticker: Arc<Ticker>,
}

struct Ticker(Arc<AtomicBool>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl PluginEngine {
    /// `cache_dir`: where compiled components are kept (`None`: compile on every load).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, PluginError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        // A guest's own call stack (not Rust's shadow stack in linear memory) is capped too.
        config.max_wasm_stack(1024 * 1024);
        let engine = Engine::new(&config).map_err(|e| PluginError::Engine(e.to_string()))?;

        let stop = Arc::new(AtomicBool::new(false));
        let weak_engine = engine.weak();
        let stop_flag = stop.clone();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !stop_flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak_engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| PluginError::Engine(format!("cannot start the epoch thread: {e}")))?;

        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                PluginError::Engine(format!("cannot create cache dir {}: {e}", dir.display()))
            })?;
        }
        Ok(PluginEngine {
            engine,
            cache_dir,
            _ticker: Arc::new(Ticker(stop)),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles `wasm` (the bytes of `path`), through the on-disk cache when configured.
    /// Returns the component and the SHA-256 of the bytes.
    pub fn load_component(&self, path: &Path, wasm: &[u8]) -> Result<Component, PluginError> {
        let sha = hex::encode(Sha256::digest(wasm));
        let Some(dir) = &self.cache_dir else {
            return self.compile(path, wasm);
        };
        // The compatibility hash changes with wasmtime's version and this engine's settings,
        // so a cached artefact from another build is never loaded.
        let mut compat = Sha256::new();
        std::hash::Hash::hash(
            &self.engine.precompile_compatibility_hash(),
            &mut HashWriter(&mut compat),
        );
        let key = format!("{}-{}", &sha[..32], &hex::encode(compat.finalize())[..16]);
        let cached = dir.join(format!("{key}.cwasm"));
        if cached.exists() {
            // SAFETY: the file was written by `Engine::precompile_component` of an engine with
            // the same compatibility hash, into the cache dir this process owns; the cache dir
            // must be protected like the binary itself (docs/operations.md).
            match unsafe { Component::deserialize_file(&self.engine, &cached) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(file = %cached.display(), error = %e, "ignoring unusable cached component")
                }
            }
        }
        let bytes = self
            .engine
            .precompile_component(wasm)
            .map_err(|e| PluginError::Compile {
                path: path.to_path_buf(),
                reason: format!("{e:#}"),
            })?;
        // Unique per write, not only per process: two plugins of one configuration may be the
        // same build, and several daemons or test threads may share one cache dir. The rename
        // is atomic, so a reader sees a whole file, whichever write lands last.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let n = WRITES.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{key}.{}.{n}.tmp", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, &bytes).and_then(|_| std::fs::rename(&tmp, &cached)) {
            tracing::warn!(file = %cached.display(), error = %e, "cannot write the component cache");
            let _ = std::fs::remove_file(&tmp);
        }
        // SAFETY: `bytes` was just produced by `precompile_component` of this engine.
        unsafe { Component::deserialize(&self.engine, &bytes) }.map_err(|e| PluginError::Compile {
            path: path.to_path_buf(),
            reason: format!("{e:#}"),
        })
    }

    fn compile(&self, path: &Path, wasm: &[u8]) -> Result<Component, PluginError> {
        Component::new(&self.engine, wasm).map_err(|e| PluginError::Compile {
            path: path.to_path_buf(),
            reason: format!("{e:#}"),
        })
    }
}

/// Feeds `Hash` output into a SHA-256 (the compatibility hash is only exposed as `impl Hash`).
struct HashWriter<'a>(&'a mut Sha256);

impl std::hash::Hasher for HashWriter<'_> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
