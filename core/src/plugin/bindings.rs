//! Host-side bindings of the `passerelle:adapter` world (`plugin-sdk/wit/adapter.wit`).

wasmtime::component::bindgen!({
    world: "adapter",
    path: "../plugin-sdk/wit",
    // Calls into the guest are async so that the daemon runs them on its own workers (a fiber
    // per call, yielding at every epoch tick) instead of handing each message to a blocking
    // thread; the host's own imports (logging) stay plain functions.
    exports: { default: async },
});

pub use passerelle::adapter::types;
