//! The WebAssembly sandbox that runs adapter plugins.
//!
//! A [`Plugin`] is one configured adapter: its compiled component, the settings it was given,
//! its limits and a small pool of warm instances. [`Plugin::adapt_async`] takes an instance
//! from the pool (or makes one), resets its time budget, calls `adapt`, checks what came back
//! ([`output`]) and returns the instance — unless it trapped, in which case the instance is
//! thrown away and the error names the plugin and the cause.
//!
//! Calls into the guest are async: the daemon runs them on its tokio workers, in a fiber that
//! yields at every epoch tick (5 ms, `engine::EPOCH_TICK`) until the call's time cap, then
//! traps. Running the call where the message already is, instead of on a blocking thread,
//! saves two thread hand-offs per message (docs/benchmarks.md section 11). [`Plugin::load`]
//! and [`Plugin::adapt`] are blocking wrappers for the CLI and tests.

mod bindings;
pub mod breaker;
mod engine;
mod error;
mod host;
mod limits;
pub mod output;
mod registry;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Store, Trap};

pub use breaker::{Breaker, BreakerState, BreakerStatus};
pub use engine::PluginEngine;
pub use error::{PluginError, Rejection, TrapCause};
pub use limits::PluginLimits;
pub use output::AdaptOutput;
pub use registry::{PluginRegistry, PluginStatus, PluginWatcher};

use bindings::types;
use bindings::{Adapter, AdapterPre};
use host::HostState;

/// How to load a plugin.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// The name the configuration gives it.
    pub name: String,
    pub path: PathBuf,
    pub limits: PluginLimits,
    /// The plugin's settings as JSON (from its TOML table).
    pub settings_json: String,
    /// When set, the `.wasm` must have this SHA-256 (hex) or it is refused.
    pub sha256: Option<String>,
}

/// One inbound message, as handed to a plugin.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub payload: Vec<u8>,
    pub content_type: String,
    pub source: String,
    /// RFC 3339 UTC.
    pub received_at: String,
    pub charset: Option<String>,
}

/// What the plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub content_types: Vec<String>,
    pub message_types: Vec<String>,
}

/// A loaded, configured plugin.
pub struct Plugin {
    name: String,
    path: PathBuf,
    info: PluginInfo,
    sha256: String,
    limits: PluginLimits,
    settings_json: String,
    engine: PluginEngine,
    pre: AdapterPre<HostState>,
    pool: Mutex<Vec<Instance>>,
    /// At most `limits.max_instances` calls at once (see [`Plugin::admit`]).
    admission: Arc<tokio::sync::Semaphore>,
    traps: AtomicU64,
}

struct Instance {
    store: Store<HostState>,
    bindings: Adapter,
    calls: u32,
}

impl Plugin {
    /// [`Plugin::load_async`], blocking (see `block_on` below).
    pub fn load(engine: &PluginEngine, spec: &PluginSpec) -> Result<Plugin, PluginError> {
        block_on(Self::load_async(engine, spec))
    }

    /// Reads, checks, compiles (or loads from cache), instantiates and configures a plugin.
    pub async fn load_async(
        engine: &PluginEngine,
        spec: &PluginSpec,
    ) -> Result<Plugin, PluginError> {
        let wasm = std::fs::read(&spec.path).map_err(|e| PluginError::Read {
            path: spec.path.clone(),
            reason: e.to_string(),
        })?;
        let sha256 = hex::encode(Sha256::digest(&wasm));
        if let Some(pinned) = &spec.sha256
            && !pinned.trim().eq_ignore_ascii_case(&sha256)
        {
            return Err(PluginError::Contract {
                plugin: spec.name.clone(),
                reason: format!(
                    "{} has sha256 {sha256}, but the configuration pins {}; refusing to load it",
                    spec.path.display(),
                    pinned.trim()
                ),
            });
        }
        let component = engine.load_component(&spec.path, &wasm)?;
        let mut linker: Linker<HostState> = Linker::new(engine.engine());
        let link_err =
            |e: wasmtime::Error| PluginError::Engine(format!("linking host functions: {e:#}"));
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link_err)?;
        Adapter::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(link_err)?;
        let instance_pre =
            linker
                .instantiate_pre(&component)
                .map_err(|e| PluginError::Instantiate {
                    plugin: spec.name.clone(),
                    reason: format!("{e:#} (is it built against the passerelle:adapter world?)"),
                })?;
        let pre = AdapterPre::new(instance_pre).map_err(|e| PluginError::Instantiate {
            plugin: spec.name.clone(),
            reason: format!("not a passerelle:adapter component: {e:#}"),
        })?;

        let mut plugin = Plugin {
            name: spec.name.clone(),
            path: spec.path.clone(),
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                content_types: vec![],
                message_types: vec![],
            },
            sha256,
            limits: spec.limits,
            settings_json: spec.settings_json.clone(),
            engine: engine.clone(),
            pre,
            pool: Mutex::new(Vec::new()),
            admission: Arc::new(tokio::sync::Semaphore::new(
                spec.limits.max_instances.max(1) as usize,
            )),
            traps: AtomicU64::new(0),
        };
        // The first instance proves the plugin works with its settings before we accept it.
        let mut first = plugin.new_instance().await?;
        plugin.arm(&mut first.store);
        let info = first
            .bindings
            .call_describe(&mut first.store)
            .await
            .map_err(|e| plugin.trap_error(e))?;
        if info.name.trim().is_empty() || info.version.trim().is_empty() {
            return Err(PluginError::Contract {
                plugin: plugin.name.clone(),
                reason: "describe() returned an empty name or version".into(),
            });
        }
        plugin.info = PluginInfo {
            name: info.name,
            version: info.version,
            content_types: info.content_types,
            message_types: info.message_types,
        };
        plugin.pool.get_mut().map(|p| p.push(first)).ok();
        Ok(plugin)
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// SHA-256 of the `.wasm` file, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn limits(&self) -> &PluginLimits {
        &self.limits
    }

    /// Traps seen since load.
    pub fn trap_count(&self) -> u64 {
        self.traps.load(Ordering::Relaxed)
    }

    /// Waits for a turn to call [`Plugin::adapt_async`] (at most `max_instances` calls at
    /// once); the turn lasts as long as the permit is kept. The daemon takes one before each
    /// call, so that a burst on many connections (or calls that yield at epoch ticks) queues
    /// here instead of growing the instance pool.
    /// (`None` only if the semaphore were closed, which nothing does.)
    pub async fn admit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.admission.clone().acquire_owned().await.ok()
    }

    /// [`Plugin::adapt_async`], blocking (see `block_on` below).
    pub fn adapt(&self, inbound: &Inbound) -> Result<AdaptOutput, PluginError> {
        block_on(self.adapt_async(inbound))
    }

    /// Adapts one message: records checked against the record model, or an error naming the
    /// plugin and the cause. A trapped instance is discarded; the plugin stays usable.
    ///
    /// The call runs on the caller's thread and yields at each epoch tick: a long call shares
    /// a tokio worker instead of holding it. Dropping the future mid-call drops the instance.
    pub async fn adapt_async(&self, inbound: &Inbound) -> Result<AdaptOutput, PluginError> {
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut instance = match pooled {
            Some(i) => i,
            None => self.new_instance().await?,
        };
        self.arm(&mut instance.store);
        let message = types::InboundMessage {
            payload: inbound.payload.clone(),
            content_type: inbound.content_type.clone(),
            source: inbound.source.clone(),
            received_at: inbound.received_at.clone(),
            charset: inbound.charset.clone(),
        };
        let result = instance
            .bindings
            .call_adapt(&mut instance.store, &message)
            .await;
        let adapted = match result {
            Ok(r) => {
                instance.calls += 1;
                if instance.calls < self.limits.recycle_after_calls
                    && let Ok(mut pool) = self.pool.lock()
                {
                    pool.push(instance);
                }
                r
            }
            // The instance may be in any state after a trap: drop it.
            Err(e) => return Err(self.trap_error(e)),
        };
        match adapted {
            Ok(a) => output::check(&self.name, &self.info.version, inbound, a, &self.limits),
            Err(e) => Err(PluginError::Rejected {
                plugin: self.name.clone(),
                rejection: rejection(e),
            }),
        }
    }

    async fn new_instance(&self) -> Result<Instance, PluginError> {
        let mut store = Store::new(
            self.engine.engine(),
            HostState::new(&self.name, self.limits.memory_bytes()),
        );
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_callback(|store| Ok(store.data().on_epoch()));
        // Instantiation may run the guest's start code: it gets a budget too.
        self.arm(&mut store);
        let bindings =
            self.pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| PluginError::Instantiate {
                    plugin: self.name.clone(),
                    reason: format!("{e:#}"),
                })?;
        let mut instance = Instance {
            store,
            bindings,
            calls: 0,
        };
        self.arm(&mut instance.store);
        match instance
            .bindings
            .call_configure(&mut instance.store, &self.settings_json)
            .await
        {
            Ok(Ok(())) => Ok(instance),
            Ok(Err(reason)) => Err(PluginError::Configure {
                plugin: self.name.clone(),
                reason,
            }),
            Err(e) => Err(self.trap_error(e)),
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.limits.timeout_ms))
    }

    /// Starts the budgets of a call: log lines, and the time cap checked at every epoch tick
    /// ([`HostState::on_epoch`]).
    fn arm(&self, store: &mut Store<HostState>) {
        store.set_epoch_deadline(1);
        store.data_mut().reset_call_budget(self.timeout());
    }

    fn trap_error(&self, e: wasmtime::Error) -> PluginError {
        self.traps.fetch_add(1, Ordering::Relaxed);
        let cause = match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => TrapCause::Timeout,
            Some(Trap::UnreachableCodeReached) => TrapCause::Panic,
            Some(Trap::MemoryOutOfBounds) => TrapCause::MemoryLimit,
            Some(Trap::StackOverflow) => TrapCause::StackOverflow,
            Some(other) => TrapCause::Other(other.to_string()),
            None => {
                let text = format!("{e:#}");
                if text.contains("memory") && (text.contains("grow") || text.contains("limit")) {
                    TrapCause::MemoryLimit
                } else {
                    TrapCause::Other(text)
                }
            }
        };
        tracing::warn!(plugin = %self.name, cause = %cause, "plugin trapped; instance discarded");
        PluginError::Trap {
            plugin: self.name.clone(),
            cause,
        }
    }
}

fn rejection(e: types::AdaptError) -> Rejection {
    match e {
        types::AdaptError::Malformed(m) => Rejection::Malformed {
            location: m.location,
            reason: m.reason,
        },
        types::AdaptError::Unsupported(s) => Rejection::Unsupported(s),
        types::AdaptError::Internal(s) => Rejection::Internal(s),
    }
}

/// Runs a plugin future to completion from synchronous code (the CLI, tests, a file watcher's
/// thread). The guest's WASI imports are async and need a tokio context: the caller's runtime
/// when there is one (leaving the worker with `block_in_place`; a single-threaded runtime's
/// thread cannot block, so the future runs on a scoped thread instead), else wasmtime-wasi's
/// own.
fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(future))
        }
        Ok(_) => std::thread::scope(|s| {
            match s.spawn(|| wasmtime_wasi::runtime::in_tokio(future)).join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }),
        Err(_) => wasmtime_wasi::runtime::in_tokio(future),
    }
}
