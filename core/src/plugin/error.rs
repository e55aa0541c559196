//! Errors of the plugin layer: each names the plugin and the cause.

use std::path::PathBuf;

/// Why a trapped call stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrapCause {
    /// The per-call time cap was reached.
    Timeout,
    /// The instance tried to grow memory past its cap (or ran out of linear memory, which is
    /// how deep recursion shows: Rust's shadow stack lives in linear memory).
    MemoryLimit,
    /// The wasm call stack overflowed.
    StackOverflow,
    /// The plugin panicked (a Rust panic aborts into `unreachable`).
    Panic,
    /// Any other trap, with wasmtime's description.
    Other(String),
}

impl std::fmt::Display for TrapCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrapCause::Timeout => write!(f, "time limit exceeded"),
            TrapCause::MemoryLimit => {
                write!(f, "memory limit exceeded or out-of-bounds memory access")
            }
            TrapCause::StackOverflow => write!(f, "call stack exhausted"),
            TrapCause::Panic => write!(f, "plugin panicked (unreachable executed)"),
            TrapCause::Other(s) => write!(f, "{s}"),
        }
    }
}

/// What the adapter itself reported (the contract's typed error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Malformed { location: String, reason: String },
    Unsupported(String),
    Internal(String),
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Malformed { location, reason } => {
                write!(f, "malformed input at {location}: {reason}")
            }
            Rejection::Unsupported(s) => write!(f, "unsupported message: {s}"),
            Rejection::Internal(s) => write!(f, "internal adapter error: {s}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("wasm engine: {0}")]
    Engine(String),
    #[error("cannot read plugin {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("cannot compile plugin {}: {reason}", path.display())]
    Compile { path: PathBuf, reason: String },
    #[error("plugin {plugin}: cannot instantiate: {reason}")]
    Instantiate { plugin: String, reason: String },
    #[error("plugin {plugin}: refused its settings: {reason}")]
    Configure { plugin: String, reason: String },
    #[error("plugin {plugin}: {reason}")]
    Contract { plugin: String, reason: String },
    #[error("plugin {plugin} trapped: {cause}")]
    Trap { plugin: String, cause: TrapCause },
    #[error("plugin {plugin} rejected the message: {rejection}")]
    Rejected {
        plugin: String,
        rejection: Rejection,
    },
    #[error("plugin {plugin} returned invalid output: {reason}")]
    InvalidOutput { plugin: String, reason: String },
}

impl PluginError {
    /// True when the message itself is at fault (not the plugin or the host).
    pub fn is_rejection(&self) -> bool {
        matches!(self, PluginError::Rejected { .. })
    }

    /// True when the plugin itself misbehaved: it trapped (time or memory limit, panic…),
    /// returned output that breaks the contract, or an instance of it could not be made. These
    /// count towards its circuit breaker; a rejection (the adapter's typed answer, whatever its
    /// kind) and host errors do not.
    pub fn is_plugin_fault(&self) -> bool {
        matches!(
            self,
            PluginError::Trap { .. }
                | PluginError::InvalidOutput { .. }
                | PluginError::Instantiate { .. }
                | PluginError::Configure { .. }
                | PluginError::Contract { .. }
        )
    }
}
