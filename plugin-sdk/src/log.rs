//! Logging through the host. Inside the sandbox a plugin has no stdout or stderr; these
//! functions hand the line to the host, which tags it with the plugin's name and limits the
//! volume. Natively (in `cargo test`) they print to stderr.
//!
//! Never log patient data above `debug`.
//!
//! ```
//! passerelle_plugin_sdk::log::warn("unknown Z-segment ZBE skipped");
//! ```

use crate::types::LogLevel;

fn emit(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::passerelle::adapter::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Logs at debug level.
pub fn debug(message: &str) {
    emit(LogLevel::Debug, message)
}

/// Logs at info level.
pub fn info(message: &str) {
    emit(LogLevel::Info, message)
}

/// Logs at warn level.
pub fn warn(message: &str) {
    emit(LogLevel::Warn, message)
}

/// Logs at error level.
pub fn error(message: &str) {
    emit(LogLevel::Error, message)
}
