//! # Passerelle plugin SDK
//!
//! Everything an adapter author needs to turn one source system's messages into records of the
//! Passerelle common record model (a routing envelope plus a FHIR R4 Bundle):
//!
//! - [`Adapter`] and [`export_adapter!`]: an adapter is a plain Rust type with an `adapt`
//!   function; the macro exports it as a WebAssembly component implementing the
//!   `passerelle:adapter` WIT world (`wit/adapter.wit`). The same code runs natively under
//!   `cargo test`.
//! - [`record`]: builders for the routing envelope.
//! - [`hl7`]: an HL7 v2 toolkit (segments, fields, components, repetitions, escapes, charsets).
//! - [`fhir`]: typed builders for the FHIR R4 resources used by the record model.
//! - [`log`]: logging through the host.
//!
//! Start with `docs/plugin-guide.md` in the repository, or `passerelle plugin new NAME`.

mod adapter;
pub mod bindings;
pub mod cda;
pub mod fhir;
pub mod hl7;
pub mod log;
pub mod record;
mod words;

pub use adapter::{Adapter, configure, inbound_message, malformed, plugin_info};

/// The adapter example of `docs/plugin-guide.md`, compiled as a doctest of this crate: the
/// guide vendors start from cannot drift from the SDK unnoticed. (Its unit-test example is
/// marked `ignore`: it needs the adapter of the block before it. The same calls are compiled
/// and run by the tests `passerelle plugin new` generates, in the scaffold e2e test.)
#[cfg(doctest)]
#[doc = include_str!("../../docs/plugin-guide.md")]
pub struct PluginGuide;

/// The WIT types of the contract (`passerelle:adapter/types`).
pub mod types {
    pub use crate::bindings::passerelle::adapter::types::*;
}

/// One `use` for adapter code. It leaves out the WIT `Coding` and `Identifier` (reach them
/// through [`types`]) so that it can be glob-imported next to [`fhir`], whose datatypes share
/// those names.
pub mod prelude {
    pub use crate::record::RecordBuilder;
    pub use crate::types::{
        AdaptError, Adapted, ConfidentialityLevel, InboundMessage, InsKind, MalformedInput,
        PatientIdentity, PluginInfo, Record, RecordKind, RecordStatus, VisibilityFlag,
    };
    pub use crate::{Adapter, configure, export_adapter, inbound_message, malformed, plugin_info};
}
