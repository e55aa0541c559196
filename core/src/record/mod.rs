//! The common record model on the host side: the routing envelope and the FHIR R4 Bundle.
//!
//! A plugin returns WIT records; [`crate::plugin`] checks them and turns them into [`Record`]s.
//! Everything downstream (journal, routes, destinations, the `adapt` CLI) sees only this type.
//! See `docs/record-model.md`.

mod id;

pub use id::{record_id, source_message_id_for};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One record: envelope for routing, FHIR Bundle for the clinical content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub envelope: Envelope,
    /// The FHIR R4 Bundle as the plugin produced it (checked, never re-serialised; on one line).
    pub bundle: Box<RawValue>,
}

/// The routing envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Stable id derived from source + source message id + position: a replay yields the same id.
    pub id: String,
    pub kind: String,
    /// The configured source that received the message.
    pub source: String,
    pub source_message_id: String,
    /// Position of this record among the message's records (0-based).
    pub position: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
    pub patient: Patient,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    pub received_at: String,
    pub status: String,
    pub confidentiality: Confidentiality,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<Coding>,
    /// Which plugin (and version) produced the record.
    pub plugin: PluginRef,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ins: Option<Ins>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_ids: Vec<Identifier>,
}

/// A French INS with its namespace as a FHIR identifier system (`urn:oid:1.2.250.1.213.1.4.x`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ins {
    pub system: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identifier {
    pub system: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confidentiality {
    /// HL7 v3 Confidentiality: `N`, `R` or `V`.
    pub level: String,
    /// DMP visibility flags: `MASQUE_PS`, `INVISIBLE_PATIENT`, `INVISIBLE_REPRESENTANTS_LEGAUX`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coding {
    pub system: String,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    pub name: String,
    pub version: String,
}

/// INS namespaces, as FHIR identifier systems.
pub mod ins_system {
    pub const NIR: &str = "urn:oid:1.2.250.1.213.1.4.8";
    pub const NIA: &str = "urn:oid:1.2.250.1.213.1.4.9";
    pub const NIR_TEST: &str = "urn:oid:1.2.250.1.213.1.4.10";
    pub const NIR_DEMO: &str = "urn:oid:1.2.250.1.213.1.4.11";
}

impl Record {
    /// One JSON line, as the `adapt` CLI prints it and the journal stores it.
    pub fn to_json_line(&self) -> String {
        // Serialising owned strings and a RawValue cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
