//! Condition.

use serde::{Deserialize, Serialize};

use super::{Annotation, CodeableConcept, Identifier, Meta, Reference, ResourceTypeTag, systems};

/// `Condition.stage`: clinical stage or grade (e.g. TNM).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConditionStage {
    /// The stage (e.g. `T2N0M0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<CodeableConcept>,
    /// Formal records of the assessment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assessment: Vec<Reference>,
    /// Kind of staging (clinical, pathological...).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<CodeableConcept>,
}

/// A problem, diagnosis or health concern (FHIR `Condition`): `subject` is mandatory.
///
/// ```
/// use passerelle_plugin_sdk::fhir::*;
/// let c = Condition {
///     clinical_status: Some(Condition::clinical_status("active")),
///     code: Some(CodeableConcept::coded(systems::ICD_10, "C50.9", Some("Tumeur maligne du sein"))),
///     ..Condition::new(Reference::to("urn:uuid:6a1c1ab5-52f2-5a26-9b49-3ec7c1b7a4ad"))
/// };
/// assert!(c.to_json().contains(r#""code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10","code":"C50.9""#));
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Always `"Condition"`.
    pub resource_type: ResourceTypeTag<Condition>,
    /// Logical id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Business identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// `active | recurrence | relapse | inactive | remission | resolved`
    /// ([`Condition::clinical_status`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clinical_status: Option<CodeableConcept>,
    /// `unconfirmed | provisional | differential | confirmed | refuted | entered-in-error`
    /// ([`Condition::verification_status`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_status: Option<CodeableConcept>,
    /// `problem-list-item | encounter-diagnosis`...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<CodeableConcept>,
    /// The condition (ICD-10, SNOMED CT...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
    /// Anatomical locations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub body_site: Vec<CodeableConcept>,
    /// The patient.
    pub subject: Reference,
    /// Encounter where it was first asserted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encounter: Option<Reference>,
    /// Estimated or actual onset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onset_date_time: Option<String>,
    /// When first recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_date: Option<String>,
    /// Who recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorder: Option<Reference>,
    /// Stages or grades.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stage: Vec<ConditionStage>,
    /// Comments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub note: Vec<Annotation>,
}

impl Condition {
    /// A condition of a patient.
    pub fn new(subject: Reference) -> Self {
        Condition {
            resource_type: ResourceTypeTag::new(),
            id: None,
            meta: None,
            identifier: Vec::new(),
            clinical_status: None,
            verification_status: None,
            category: Vec::new(),
            code: None,
            body_site: Vec::new(),
            subject,
            encounter: None,
            onset_date_time: None,
            recorded_date: None,
            recorder: None,
            stage: Vec::new(),
            note: Vec::new(),
        }
    }

    /// A clinical status code (`active`, `recurrence`, `relapse`, `inactive`, `remission`,
    /// `resolved`).
    pub fn clinical_status(code: &str) -> CodeableConcept {
        CodeableConcept::coded(systems::CONDITION_CLINICAL, code, None)
    }

    /// A verification status code (`unconfirmed`, `provisional`, `differential`,
    /// `confirmed`, `refuted`, `entered-in-error`).
    pub fn verification_status(code: &str) -> CodeableConcept {
        CodeableConcept::coded(systems::CONDITION_VER_STATUS, code, None)
    }
}
