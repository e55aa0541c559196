//! # Passerelle plugin SDK
//!
//! Everything an adapter author needs to turn one source system's messages into records of the
//! Passerelle common record model:
//!
//! - [`Adapter`] and [`export_adapter!`]: an adapter is a plain Rust type with an `adapt`
//!   function; the macro exports it as a WebAssembly component implementing the
//!   `passerelle:adapter` WIT world. The same code runs natively under `cargo test`.
//! - [`hl7`]: an HL7 v2 toolkit (segments, fields, components, repetitions, escapes, charsets).
//! - [`fhir`]: typed builders for the FHIR R4 resources used by the record model.
//! - [`record`]: the routing envelope types and helpers.

pub mod fhir;
pub mod hl7;
