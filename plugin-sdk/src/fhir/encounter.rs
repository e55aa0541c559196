//! Encounter.

use serde::{Deserialize, Serialize};

use super::{
    CodeableConcept, Coding, Identifier, Meta, Period, Reference, ResourceTypeTag, systems,
};

/// `Encounter.status`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum EncounterStatus {
    /// `planned`
    Planned,
    /// `arrived`
    Arrived,
    /// `triaged`
    Triaged,
    /// `in-progress`
    InProgress,
    /// `onleave`
    #[serde(rename = "onleave")]
    OnLeave,
    /// `finished`
    Finished,
    /// `cancelled`
    Cancelled,
    /// `entered-in-error`
    EnteredInError,
    /// `unknown`
    Unknown,
}

/// A stay or visit (FHIR `Encounter`): `status` and `class` are mandatory.
///
/// ```
/// use passerelle_plugin_sdk::fhir::{Encounter, EncounterStatus, FhirResource, Period};
/// let e = Encounter {
///     period: Some(Period::between("2024-01-30", "2024-01-31")),
///     ..Encounter::new(EncounterStatus::Finished, Encounter::class_v3("IMP"))
/// };
/// assert!(e.to_json().starts_with(r#"{"resourceType":"Encounter","status":"finished","class":{"#));
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Encounter {
    /// Always `"Encounter"`.
    pub resource_type: ResourceTypeTag<Encounter>,
    /// Logical id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Identifiers (visit number...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Status.
    pub status: EncounterStatus,
    /// Classification (v3 ActCode: `AMB`, `IMP`, `EMER`...).
    pub class: Coding,
    /// Specific type of encounter.
    #[serde(rename = "type", default, skip_serializing_if = "Vec::is_empty")]
    pub type_: Vec<CodeableConcept>,
    /// The patient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Reference>,
    /// Start and end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Organization responsible for the encounter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_provider: Option<Reference>,
}

impl Encounter {
    /// An encounter with its mandatory elements.
    pub fn new(status: EncounterStatus, class: Coding) -> Self {
        Encounter {
            resource_type: ResourceTypeTag::new(),
            id: None,
            meta: None,
            identifier: Vec::new(),
            status,
            class,
            type_: Vec::new(),
            subject: None,
            period: None,
            service_provider: None,
        }
    }

    /// A class code of v3 ActCode (`AMB` ambulatory, `IMP` inpatient, `EMER` emergency,
    /// `HH` home health, `VR` virtual...).
    pub fn class_v3(code: &str) -> Coding {
        Coding::new(systems::V3_ACT_CODE, code)
    }
}
