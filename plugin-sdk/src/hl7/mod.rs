//! HL7 v2 toolkit: parse a message once, then read segments, fields, repetitions, components
//! and subcomponents as zero-copy views; decode escapes, character sets and dates.
//!
//! - [`Message::parse`] decodes the bytes once (charset from MSH-18, see [`charset`]) into one
//!   `String` and indexes segment and field boundaries; every accessor then returns `&str` or
//!   `Cow<str>` views into it. Sparse data is the norm in HL7: a missing field, repetition,
//!   component or subcomponent is an empty value, never an error.
//! - [`Segment`], [`Field`], [`Repetition`], [`Component`], [`Subcomponent`]: each has `raw()`
//!   (escaped) and `value()` (unescaped first atomic value); see [`Field`] for the exact rules.
//! - [`Message::get`] reads a value by a Terser-like [`Path`] (`PID-5.1`, `OBX[2]-5`,
//!   `PID-3(2).4.2`).
//! - [`escape`]: `\F\ \S\ \T\ \R\ \E\ \Xhh\ \.br\`…; [`datetime`]: HL7 DTM → FHIR
//!   `date`/`dateTime`/`instant`.
//! - Errors ([`ParseError`]) say where (byte offset, line, segment) and why.
//!
//! ```
//! use passerelle_plugin_sdk::hl7::{datetime, Message};
//!
//! let raw = "MSH|^~\\&|SIL|LABO|DPI|CHU|20240131123000+0100||ORU^R01^ORU_R01|42|P|2.5|||||FRA|UNICODE UTF-8\r\
//!            PID|1||279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS||DUPONT^Hélène||19790328|F\r\
//!            OBR|1||R1|24317-0^Hémogramme^LN\r\
//!            OBX|1|NM|718-7^Hémoglobine^LN||13.4|g/dL|||||F|||20240131083000+0100\r";
//! let msg = Message::parse(raw.as_bytes())?;
//! assert_eq!(msg.message_type().as_deref(), Some("ORU^R01"));
//! let pid = msg.first("PID").expect("PID");
//! assert_eq!(pid.field(3).component(4).subcomponent(2).value(), "1.2.250.1.213.1.4.10");
//! assert_eq!(pid.value(5, 2), "Hélène");
//! assert_eq!(datetime::to_fhir_date(&pid.field(7).value()).as_deref(), Some("1979-03-28"));
//! for obx in msg.segments_named("OBX") {
//!     assert_eq!(obx.location(5, 0), "OBX[1]-5");
//!     assert_eq!(obx.field(5).value(), "13.4");
//!     let when = datetime::to_fhir_datetime(&obx.field(14).value(), "+01:00");
//!     assert_eq!(when.as_deref(), Some("2024-01-31T08:30:00+01:00"));
//! }
//! # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
//! ```

#![warn(missing_docs)]

pub mod charset;
pub mod datetime;
mod delimiters;
mod error;
pub mod escape;
pub mod fhir;
mod message;
mod path;
mod scan;

pub use charset::Charset;
pub use delimiters::Delimiters;
pub use error::{ParseError, PathError};
pub use message::{Component, Field, Message, Repetition, Segment, Subcomponent};
pub use path::Path;
