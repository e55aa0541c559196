//! Building the routing envelope of a record.
//!
//! ```
//! use passerelle_plugin_sdk::prelude::*;
//!
//! let record = RecordBuilder::new(RecordKind::LabResult)
//!     .ins(InsKind::NirTest, "279035121518989")
//!     .local_id("urn:oid:1.2.250.1.71.4.2.7", "IPP123")
//!     .event_time("2024-01-31T12:30:00+01:00")
//!     .status(RecordStatus::Final)
//!     .flag(VisibilityFlag::MasquePs)
//!     .code("http://loinc.org", "11502-2", Some("CR d'examens biologiques"))
//!     .build(r#"{"resourceType":"Bundle","type":"collection"}"#.to_string());
//! assert_eq!(record.patient.ins.unwrap().value, "279035121518989");
//! ```

use crate::types::{
    Coding, Confidentiality, ConfidentialityLevel, Identifier, Ins, InsKind, PatientIdentity,
    Record, RecordKind, RecordStatus, VisibilityFlag,
};

/// Builder for a [`Record`]: set the envelope fields, then [`RecordBuilder::build`] with the
/// FHIR Bundle JSON.
#[derive(Debug, Clone)]
pub struct RecordBuilder {
    kind: RecordKind,
    patient: PatientIdentity,
    event_time: Option<String>,
    status: RecordStatus,
    confidentiality: Confidentiality,
    codes: Vec<Coding>,
}

impl RecordBuilder {
    /// A record of the given kind, status `final`, confidentiality `N`, no patient yet.
    ///
    /// ```
    /// # use passerelle_plugin_sdk::prelude::*;
    /// let r = RecordBuilder::new(RecordKind::Prescription).build("{}".into());
    /// assert_eq!(r.status, RecordStatus::Final);
    /// ```
    pub fn new(kind: RecordKind) -> Self {
        RecordBuilder {
            kind,
            patient: PatientIdentity {
                ins: None,
                local_ids: Vec::new(),
            },
            event_time: None,
            status: RecordStatus::Final,
            confidentiality: Confidentiality {
                level: ConfidentialityLevel::Normal,
                flags: Vec::new(),
            },
            codes: Vec::new(),
        }
    }

    /// Sets the patient's INS (15 characters: matricule + key).
    pub fn ins(mut self, kind: InsKind, value: impl Into<String>) -> Self {
        self.patient.ins = Some(Ins {
            kind,
            value: value.into(),
        });
        self
    }

    /// Adds a local patient identifier (IPP...).
    pub fn local_id(mut self, system: impl Into<String>, value: impl Into<String>) -> Self {
        self.patient.local_ids.push(Identifier {
            system: system.into(),
            value: value.into(),
        });
        self
    }

    /// Sets the whole patient identity at once.
    pub fn patient(mut self, patient: PatientIdentity) -> Self {
        self.patient = patient;
        self
    }

    /// Clinically relevant time (a FHIR dateTime).
    pub fn event_time(mut self, time: impl Into<String>) -> Self {
        self.event_time = Some(time.into());
        self
    }

    /// Status of the content.
    pub fn status(mut self, status: RecordStatus) -> Self {
        self.status = status;
        self
    }

    /// Confidentiality level (`N` by default).
    pub fn confidentiality(mut self, level: ConfidentialityLevel) -> Self {
        self.confidentiality.level = level;
        self
    }

    /// Adds a DMP visibility flag (once).
    pub fn flag(mut self, flag: VisibilityFlag) -> Self {
        if !self.confidentiality.flags.contains(&flag) {
            self.confidentiality.flags.push(flag);
        }
        self
    }

    /// Adds a routing code.
    pub fn code(mut self, system: &str, code: &str, display: Option<&str>) -> Self {
        self.codes.push(Coding {
            system: system.to_string(),
            code: code.to_string(),
            display: display.map(str::to_string),
        });
        self
    }

    /// Finishes the record with its FHIR R4 Bundle (JSON).
    pub fn build(self, bundle_json: String) -> Record {
        Record {
            kind: self.kind,
            patient: self.patient,
            event_time: self.event_time,
            status: self.status,
            confidentiality: self.confidentiality,
            codes: self.codes,
            bundle: bundle_json,
        }
    }
}

/// The INS namespace of an OID (`1.2.250.1.213.1.4.8`, with or without `urn:oid:`).
///
/// ```
/// # use passerelle_plugin_sdk::{record::ins_kind_from_oid, types::InsKind};
/// assert_eq!(ins_kind_from_oid("urn:oid:1.2.250.1.213.1.4.10"), Some(InsKind::NirTest));
/// assert_eq!(ins_kind_from_oid("1.2.3"), None);
/// ```
pub fn ins_kind_from_oid(oid: &str) -> Option<InsKind> {
    match oid.trim().trim_start_matches("urn:oid:") {
        "1.2.250.1.213.1.4.8" => Some(InsKind::Nir),
        "1.2.250.1.213.1.4.9" => Some(InsKind::Nia),
        "1.2.250.1.213.1.4.10" => Some(InsKind::NirTest),
        "1.2.250.1.213.1.4.11" => Some(InsKind::NirDemo),
        _ => None,
    }
}

/// The FHIR identifier system of an INS namespace.
///
/// ```
/// # use passerelle_plugin_sdk::{record::ins_system, types::InsKind};
/// assert_eq!(ins_system(InsKind::Nir), "urn:oid:1.2.250.1.213.1.4.8");
/// ```
pub fn ins_system(kind: InsKind) -> &'static str {
    match kind {
        InsKind::Nir => "urn:oid:1.2.250.1.213.1.4.8",
        InsKind::Nia => "urn:oid:1.2.250.1.213.1.4.9",
        InsKind::NirTest => "urn:oid:1.2.250.1.213.1.4.10",
        InsKind::NirDemo => "urn:oid:1.2.250.1.213.1.4.11",
    }
}

/// Checks an INS-NIR/NIA value: 13 characters (digits, `2A`/`2B` for Corsica) and a 2-digit
/// key equal to 97 − (number mod 97).
///
/// ```
/// # use passerelle_plugin_sdk::record::ins_key_is_valid;
/// assert!(ins_key_is_valid("279035121518989"));
/// assert!(!ins_key_is_valid("279035121518988"));
/// assert!(!ins_key_is_valid("27903512151898"));
/// ```
pub fn ins_key_is_valid(value: &str) -> bool {
    if value.len() != 15 || !value.is_ascii() {
        return false;
    }
    let (number, key) = value.split_at(13);
    // Corsica: department 2A counts as 19, 2B as 18 (before subtracting, per INSEE rules).
    let (digits, offset) = match &number[5..7] {
        "2A" | "2a" => (format!("{}19{}", &number[..5], &number[7..]), 1_000_000u64),
        "2B" | "2b" => (format!("{}18{}", &number[..5], &number[7..]), 2_000_000u64),
        _ => (number.to_string(), 0),
    };
    let (Ok(n), Ok(k)) = (digits.parse::<u64>(), key.parse::<u64>()) else {
        return false;
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !key.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    97 - ((n - offset) % 97) == k
}
