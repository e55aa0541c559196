#![allow(clippy::too_many_arguments)] // generated code
//! Bindings generated from `wit/adapter.wit` (the `passerelle:adapter` world).
//!
//! Adapter authors rarely use this module directly: [`crate::Adapter`] and
//! [`crate::export_adapter!`] wrap it.

wit_bindgen::generate!({
    world: "adapter",
    path: "wit",
    default_bindings_module: "passerelle_plugin_sdk::bindings",
    pub_export_macro: true,
    export_macro_name: "__export_adapter_world",
});
