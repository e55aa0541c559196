//! DiagnosticReport.

use serde::{Deserialize, Serialize};

use super::{Attachment, CodeableConcept, Identifier, Meta, Reference, ResourceTypeTag, systems};
use crate::types::RecordStatus;

/// `DiagnosticReport.status`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum DiagnosticReportStatus {
    /// `registered`
    Registered,
    /// `partial`
    Partial,
    /// `preliminary`
    Preliminary,
    /// `final`
    Final,
    /// `amended`
    Amended,
    /// `corrected`
    Corrected,
    /// `appended`
    Appended,
    /// `cancelled`
    Cancelled,
    /// `entered-in-error`
    EnteredInError,
    /// `unknown`
    Unknown,
}

impl DiagnosticReportStatus {
    /// From an HL7 v2 result status (OBR-25, table 0123); `None` for codes with no equivalent.
    pub fn from_v2(code: &str) -> Option<Self> {
        match code.trim() {
            "F" => Some(Self::Final),
            "C" => Some(Self::Corrected),
            "A" => Some(Self::Partial),
            "P" | "R" => Some(Self::Preliminary),
            "I" | "O" | "S" => Some(Self::Registered),
            "X" => Some(Self::Cancelled),
            _ => None,
        }
    }

    /// The envelope's status for a record whose report has this status: amended and appended
    /// reports are corrections, partial and registered ones preliminary.
    ///
    /// ```
    /// use passerelle_plugin_sdk::fhir::DiagnosticReportStatus as D;
    /// use passerelle_plugin_sdk::types::RecordStatus;
    /// assert_eq!(D::Amended.record_status(), RecordStatus::Corrected);
    /// assert_eq!(D::Registered.record_status(), RecordStatus::Preliminary);
    /// ```
    pub fn record_status(self) -> RecordStatus {
        match self {
            Self::Final => RecordStatus::Final,
            Self::Corrected | Self::Amended | Self::Appended => RecordStatus::Corrected,
            Self::Preliminary | Self::Partial | Self::Registered => RecordStatus::Preliminary,
            Self::Cancelled => RecordStatus::Cancelled,
            Self::EnteredInError => RecordStatus::EnteredInError,
            Self::Unknown => RecordStatus::Unknown,
        }
    }
}

/// The report of a set of results (FHIR `DiagnosticReport`): `status` and `code` are mandatory.
///
/// ```
/// use passerelle_plugin_sdk::fhir::*;
/// let report = DiagnosticReport {
///     category: vec![DiagnosticReport::lab_category()],
///     conclusion: Some("Hyperkaliémie modérée".into()),
///     ..DiagnosticReport::new(
///         DiagnosticReportStatus::Final,
///         CodeableConcept::coded(systems::LOINC, "11502-2", Some("CR d'examens biologiques")),
///     )
/// };
/// assert!(report.to_json().starts_with(r#"{"resourceType":"DiagnosticReport","status":"final""#));
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosticReport {
    /// Always `"DiagnosticReport"`.
    pub resource_type: ResourceTypeTag<DiagnosticReport>,
    /// Logical id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Business identifiers (placer / filler order numbers...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Requests fulfilled (ServiceRequest...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub based_on: Vec<Reference>,
    /// Status.
    pub status: DiagnosticReportStatus,
    /// Service section ([`DiagnosticReport::lab_category`]...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<CodeableConcept>,
    /// Name of the report.
    pub code: CodeableConcept,
    /// The patient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Reference>,
    /// Encounter of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encounter: Option<Reference>,
    /// Clinically relevant time (specimen collection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_date_time: Option<String>,
    /// When this version was made (FHIR `instant`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued: Option<String>,
    /// Responsible service (laboratory, biologist).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performer: Vec<Reference>,
    /// Who interpreted the results (validating biologist).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results_interpreter: Vec<Reference>,
    /// Specimens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub specimen: Vec<Reference>,
    /// The Observations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub result: Vec<Reference>,
    /// Clinical conclusion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<String>,
    /// Coded conclusions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conclusion_code: Vec<CodeableConcept>,
    /// The report as presented (PDF...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub presented_form: Vec<Attachment>,
}

impl DiagnosticReport {
    /// A report with its mandatory elements.
    pub fn new(status: DiagnosticReportStatus, code: CodeableConcept) -> Self {
        DiagnosticReport {
            resource_type: ResourceTypeTag::new(),
            id: None,
            meta: None,
            identifier: Vec::new(),
            based_on: Vec::new(),
            status,
            category: Vec::new(),
            code,
            subject: None,
            encounter: None,
            effective_date_time: None,
            issued: None,
            performer: Vec::new(),
            results_interpreter: Vec::new(),
            specimen: Vec::new(),
            result: Vec::new(),
            conclusion: None,
            conclusion_code: Vec::new(),
            presented_form: Vec::new(),
        }
    }

    /// The `LAB` diagnostic service section (v2 table 0074).
    pub fn lab_category() -> CodeableConcept {
        CodeableConcept::coded(systems::V2_0074, "LAB", Some("Laboratory"))
    }
}
