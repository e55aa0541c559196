//! HL7 v2 → FHIR R4 mappings shared by the v2 adapters: PID → [`Patient`](crate::fhir::Patient)
//! and the envelope's patient identity ([`patient`]), XCN/NDL → Practitioner ([`xcn`],
//! [`ndl`]), XON → Organization reference ([`xon`]), EI → Identifier ([`ei`], [`ei_sub`]),
//! PV1 → Encounter ([`encounter`]), abnormal flags → interpretation ([`interpretation_code`]),
//! coding system names → code system URIs ([`system_uri`]);
//! identifier systems come from an [`IdPolicy`] (its default authority from MSH:
//! [`default_authority`]). [`text`] holds the small string helpers they use (trimmed
//! component values, OIDs, URNs).
//!
//! ```
//! use passerelle_plugin_sdk::hl7::Message;
//! use passerelle_plugin_sdk::hl7::fhir::{IdPolicy, patient};
//!
//! let msg = Message::parse(b"MSH|^~\\&|LAB|CHU\rPID|1||123^^^HOP||DUPONT^Jean||19790328|F")?;
//! let ids = IdPolicy { local_id_system: None, default_authority: "CHU" };
//! let info = patient(&msg.first("PID").expect("PID"), &ids).expect("patient");
//! assert_eq!(info.resource.identifier[0].system.as_deref(), Some("urn:passerelle:id:HOP"));
//! assert_eq!(info.identity.local_ids[0].value, "123");
//! # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
//! ```

mod coding_system;
mod interpretation;
mod people;
pub mod text;

pub use coding_system::{LOCAL_CODE_SYSTEM_PREFIX, system_uri};
pub use interpretation::interpretation_code;
pub use people::{
    IdPolicy, PatientInfo, default_authority, ei, ei_sub, encounter, ndl, patient, xcn, xon,
};
