//! Host-side bindings of the `passerelle:adapter` world (`plugin-sdk/wit/adapter.wit`).

wasmtime::component::bindgen!({
    world: "adapter",
    path: "../plugin-sdk/wit",
});

pub use passerelle::adapter::types;
