//! # eprescription: prescriptions → Passerelle records
//!
//! Two inputs, told apart by their content:
//!
//! - **HL7 v2 RDE^O11** (pharmacy/treatment encoded order, v2.5–2.8; RDE^O01 of v2.3/2.4
//!   too), a message starting with `MSH` ([`v2`]);
//! - **CI-SIS CDA eP-MED-DM** (prescription of health products, LOINC 57833-6), an XML
//!   document whose root is `ClinicalDocument` ([`cda_rx`]).
//!
//! Either gives one record (kind `prescription`) whose Bundle (`collection`, deterministic
//! `urn:uuid:` fullUrls) holds the Patient, the prescribers (Practitioner), one
//! MedicationRequest per prescription line (ORDER group / `substanceAdministration` entry),
//! the lines sharing a `groupIdentifier`, and for a CDA the document itself as a
//! DocumentReference. MedicationRequests follow the shape of the ANS ePrescription IG profile
//! FRMedicationRequest (intent `order`, dosage text instead of `patientInstruction`...) and
//! claim it in `meta.profile` only when they meet its checkable rules
//! ([`v2::claim_profile`]).
//!
//! See `docs/adapters/eprescription.md` for the field-by-field mapping.

pub mod cda_rx;
mod codes;
mod timing;
mod util;
pub mod v2;

#[cfg(test)]
mod tests;

use passerelle_plugin_sdk::fhir::{Bundle, MedicationRequest, MedicationRequestStatus};
use passerelle_plugin_sdk::hl7::datetime;
use passerelle_plugin_sdk::hl7::fhir::text::{envelope_text, is_uri};
use passerelle_plugin_sdk::prelude::*;
use passerelle_plugin_sdk::types::PatientIdentity;
use serde::Deserialize;

/// The HL7 v2 ER7 content type.
pub const HL7_V2: &str = "x-application/hl7-v2+er7";
/// The envelope's `message_type` of a CDA eP-MED-DM document.
pub const CDA_MESSAGE_TYPE: &str = "CDA^57833-6";

/// The plugin's settings (all optional).
#[derive(Deserialize, Default, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Offset of HL7 times written without one (`+01:00`, `-05:00`, `Z`). Default `+01:00`.
    pub default_timezone: Option<String>,
    /// Identifier system for PID-3 identifiers whose assigning authority has no OID (e.g.
    /// `urn:oid:1.2.250.1.71.4.2.7`). Default: `urn:passerelle:id:<authority name>`.
    pub local_id_system: Option<String>,
    /// Code system of RXE-2 medication codes sent without a coding system (RXE-2.3 empty),
    /// e.g. the pharmacy's local drug file. Default: none (a coding without system).
    pub local_code_system: Option<String>,
}

/// The adapter.
pub struct Eprescription {
    tz: String,
    local_id_system: Option<String>,
    local_code_system: Option<String>,
}

fn uri_setting(name: &str, value: Option<String>) -> Result<Option<String>, String> {
    match value.map(|s| s.trim().to_string()) {
        Some(s) if !is_uri(&s) => Err(format!(
            "settings.{name} {s:?} is not a URI (e.g. urn:oid:1.2.3)"
        )),
        other => Ok(other),
    }
}

impl Adapter for Eprescription {
    type Settings = Settings;

    fn info() -> PluginInfo {
        plugin_info(
            "eprescription",
            env!("CARGO_PKG_VERSION"),
            &[
                HL7_V2,
                "application/xml",
                "text/xml",
                "application/hl7-cda+xml",
            ],
            &["RDE^O11", "RDE^O01", CDA_MESSAGE_TYPE],
        )
    }

    fn new(settings: Settings) -> Result<Self, String> {
        let tz = settings
            .default_timezone
            .unwrap_or_else(|| "+01:00".to_string());
        if datetime::to_fhir_datetime("202001011200", &tz).is_none() {
            return Err(format!(
                "settings.default_timezone {tz:?} is not an offset like +01:00, -05:00 or Z"
            ));
        }
        Ok(Eprescription {
            tz,
            local_id_system: uri_setting("local_id_system", settings.local_id_system)?,
            local_code_system: uri_setting("local_code_system", settings.local_code_system)?,
        })
    }

    fn adapt(&self, message: &InboundMessage) -> Result<Adapted, AdaptError> {
        match sniff(&message.payload) {
            Some(Input::Hl7) => v2::adapt(self, message),
            Some(Input::Xml) => cda_rx::adapt(self, message),
            None => Err(malformed(
                "payload",
                "neither an HL7 v2 message (starting with MSH) nor a CDA document \
                 (<ClinicalDocument>)",
            )),
        }
    }
}

export_adapter!(Eprescription);

/// What a payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Hl7,
    Xml,
}

/// Tells HL7 v2 from XML by the first meaningful bytes (after a BOM, an MLLP start byte and
/// whitespace): `MSH` or `<`; else a `<ClinicalDocument` near the start.
fn sniff(payload: &[u8]) -> Option<Input> {
    let p = payload.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(payload);
    let start = p
        .iter()
        .position(|b| !(b.is_ascii_whitespace() || *b == 0x0b))
        .unwrap_or(p.len());
    let p = &p[start..];
    if p.starts_with(b"MSH") {
        return Some(Input::Hl7);
    }
    if p.starts_with(b"<") {
        return Some(Input::Xml);
    }
    let head = &p[..p.len().min(64 * 1024)];
    head.windows(17)
        .any(|w| w == b"<ClinicalDocument")
        .then_some(Input::Xml)
}

/// A prescription line ready for the bundle.
pub struct Line {
    pub request: MedicationRequest,
    /// Whether the line changes or replaces an earlier order (ORC-1 `XO`, `RP`...).
    pub changed: bool,
    /// Key of its `urn:uuid:` (the ORC or the entry it came from).
    pub key: String,
}

/// The status of a whole prescription from its lines: cancelled, withdrawn or unknown when
/// all its lines are; corrected when a line changes an earlier order; else final.
pub fn record_status(lines: &[Line]) -> RecordStatus {
    use MedicationRequestStatus as S;
    let all = |s: S| !lines.is_empty() && lines.iter().all(|l| l.request.status == s);
    if all(S::Cancelled) {
        RecordStatus::Cancelled
    } else if all(S::EnteredInError) {
        RecordStatus::EnteredInError
    } else if all(S::Unknown) {
        RecordStatus::Unknown
    } else if lines.iter().any(|l| l.changed) {
        RecordStatus::Corrected
    } else {
        RecordStatus::Final
    }
}

/// Adds the lines to the bundle and builds the record: event time = the first line's
/// `authoredOn` (else `fallback_time`), routing codes = the medication codes.
fn envelope(
    mut bundle: Bundle,
    lines: Vec<Line>,
    identity: PatientIdentity,
    confidentiality: ConfidentialityLevel,
    replaces: bool,
    fallback_time: Option<String>,
) -> Record {
    let status = if replaces {
        RecordStatus::Corrected
    } else {
        record_status(&lines)
    };
    let mut builder = RecordBuilder::new(RecordKind::Prescription)
        .patient(identity)
        .status(status)
        .confidentiality(confidentiality);
    if let Some(t) = lines
        .iter()
        .find_map(|l| l.request.authored_on.clone())
        .or(fallback_time)
    {
        builder = builder.event_time(t);
    }
    let mut seen: Vec<(String, String)> = Vec::new();
    for line in &lines {
        for c in &line.request.medication_codeable_concept.coding {
            let (Some(system), Some(code)) = (c.system.as_deref(), c.code.as_deref()) else {
                continue;
            };
            if !envelope_text(system)
                || !envelope_text(code)
                || seen.iter().any(|(s, k)| s == system && k == code)
            {
                continue;
            }
            seen.push((system.to_string(), code.to_string()));
            let display = c.display.as_deref().filter(|d| envelope_text(d));
            builder = builder.code(system, code, display);
        }
    }
    for line in lines {
        bundle.add_keyed(&line.key, line.request);
    }
    builder.build(bundle.to_json())
}
