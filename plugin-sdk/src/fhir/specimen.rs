//! Specimen.

use serde::{Deserialize, Serialize};

use super::{Annotation, CodeableConcept, Identifier, Meta, Reference, ResourceTypeTag};

/// `Specimen.collection`: how and when the specimen was collected.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SpecimenCollection {
    /// Who collected it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collector: Option<Reference>,
    /// When it was collected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collected_date_time: Option<String>,
    /// Technique used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<CodeableConcept>,
    /// Anatomical site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_site: Option<CodeableConcept>,
}

/// A sample used for analysis (FHIR `Specimen`). No element is mandatory.
///
/// ```
/// use passerelle_plugin_sdk::fhir::*;
/// let s = Specimen {
///     type_: Some(CodeableConcept::coded(systems::V2_0487, "BLD", Some("Whole blood"))),
///     collection: Some(SpecimenCollection {
///         collected_date_time: Some("2024-01-31T08:10:00+01:00".into()),
///         ..Default::default()
///     }),
///     ..Specimen::new()
/// };
/// assert!(s.to_json().contains(r#""collection":{"collectedDateTime":"2024-01-31T08:10:00+01:00"}"#));
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Specimen {
    /// Always `"Specimen"`.
    pub resource_type: ResourceTypeTag<Specimen>,
    /// Logical id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// External identifiers (tube barcode...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Identifier assigned by the laboratory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accession_identifier: Option<Identifier>,
    /// Kind of material (v2 table 0487, SNOMED CT...).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<CodeableConcept>,
    /// The patient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Reference>,
    /// When the laboratory received it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_time: Option<String>,
    /// Collection details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<SpecimenCollection>,
    /// Comments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub note: Vec<Annotation>,
}

impl Specimen {
    /// An empty specimen, to fill with struct update syntax.
    pub fn new() -> Self {
        Self::default()
    }
}
