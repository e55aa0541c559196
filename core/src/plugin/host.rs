//! What a plugin instance's store holds: a WASI context that grants nothing, resource limits,
//! and the host functions the contract imports (logging).

use std::time::{Duration, Instant};

use wasmtime::StoreLimits;
use wasmtime::StoreLimitsBuilder;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::bindings::passerelle::adapter::{host, types};

/// Log lines one call may emit before the host drops the rest.
const LOG_LINES_PER_CALL: u32 = 100;
/// Longest log line kept (bytes).
const LOG_LINE_MAX: usize = 2_000;

pub struct HostState {
    pub plugin: String,
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: StoreLimits,
    pub log_budget: u32,
    /// When the current call must have returned (see [`HostState::on_epoch`]).
    pub deadline: Instant,
}

impl HostState {
    pub fn new(plugin: &str, memory_bytes: usize) -> Self {
        // `WasiCtx::builder()` grants nothing: no preopened directory, no environment, no
        // arguments, no stdin, stdout/stderr discarded, no sockets. Clocks are frozen at the
        // epoch: a plugin uses the message's receive time, which keeps replays deterministic.
        let wasi = {
            let mut builder = WasiCtx::builder();
            builder.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
            builder.build()
        };
        // Core module instances: a Rust adapter has 3; a Python one built by componentize-py
        // (interpreter, libc, WASI adapter and their shims as separate modules) has 14.
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_bytes)
            .instances(32)
            .tables(64)
            .memories(4)
            .trap_on_grow_failure(true)
            .build();
        HostState {
            plugin: plugin.to_string(),
            wasi,
            table: ResourceTable::new(),
            limits,
            log_budget: LOG_LINES_PER_CALL,
            deadline: Instant::now(),
        }
    }

    /// Starts a call's budgets: its log lines and its wall-clock time.
    pub fn reset_call_budget(&mut self, timeout: Duration) {
        self.log_budget = LOG_LINES_PER_CALL;
        self.deadline = Instant::now() + timeout;
    }

    /// At every epoch tick inside a call: past the deadline the call traps
    /// (`Trap::Interrupt`); before it, the call yields to the async runtime, so a long call
    /// shares its worker thread with other tasks at the tick's granularity.
    pub fn on_epoch(&self) -> wasmtime::UpdateDeadline {
        if Instant::now() >= self.deadline {
            wasmtime::UpdateDeadline::Interrupt
        } else {
            wasmtime::UpdateDeadline::Yield(1)
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: types::LogLevel, message: String) {
        if self.log_budget == 0 {
            return;
        }
        self.log_budget -= 1;
        let mut message = message;
        if message.len() > LOG_LINE_MAX {
            let mut cut = LOG_LINE_MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let plugin = self.plugin.as_str();
        match level {
            types::LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            types::LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            types::LogLevel::Info => tracing::info!(plugin, "{message}"),
            types::LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            types::LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
        if self.log_budget == 0 {
            tracing::warn!(
                plugin,
                "log budget of this call exhausted; further lines dropped"
            );
        }
    }
}

/// A clock that always says 1970-01-01T00:00:00Z / 0 ns.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}
