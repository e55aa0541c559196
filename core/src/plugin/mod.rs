//! The WebAssembly sandbox that runs adapter plugins.
