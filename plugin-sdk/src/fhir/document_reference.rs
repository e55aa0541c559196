//! DocumentReference.

use serde::{Deserialize, Serialize};

use super::{
    Attachment, CodeableConcept, Coding, CompositionStatus, Identifier, Meta, Period, Reference,
    ResourceTypeTag,
};

/// `DocumentReference.status`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum DocumentReferenceStatus {
    /// `current`
    Current,
    /// `superseded`
    Superseded,
    /// `entered-in-error`
    EnteredInError,
}

/// `DocumentReference.relatesTo.code`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum DocumentRelationship {
    /// `replaces`: a new version of the target.
    Replaces,
    /// `transforms`
    Transforms,
    /// `signs`
    Signs,
    /// `appends`
    Appends,
}

/// `DocumentReference.relatesTo`: a relationship to another document.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DocumentReferenceRelatesTo {
    /// Kind of relationship.
    pub code: DocumentRelationship,
    /// The other document.
    pub target: Reference,
}

/// `DocumentReference.content`: the document itself and its format.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DocumentReferenceContent {
    /// Where the content is (or the content, inline).
    pub attachment: Attachment,
    /// Format/content rules (IHE format codes...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Coding>,
}

impl DocumentReferenceContent {
    /// Content without format code.
    pub fn new(attachment: Attachment) -> Self {
        DocumentReferenceContent {
            attachment,
            format: None,
        }
    }
}

/// `DocumentReference.context`: clinical context of the document.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DocumentReferenceContext {
    /// Encounters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encounter: Vec<Reference>,
    /// Main clinical acts documented.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event: Vec<CodeableConcept>,
    /// Time of service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Kind of facility.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facility_type: Option<CodeableConcept>,
    /// Clinical speciality.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub practice_setting: Option<CodeableConcept>,
    /// Patient demographics at the time of the document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_patient_info: Option<Reference>,
    /// Related identifiers or resources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<Reference>,
}

/// Metadata of a document (FHIR `DocumentReference`): `status` and at least one `content`
/// are mandatory.
///
/// ```
/// use passerelle_plugin_sdk::fhir::*;
/// let doc = DocumentReference {
///     security_label: vec![CodeableConcept::coded(systems::DMP_VISIBILITY, "INVISIBLE_PATIENT", None)],
///     ..DocumentReference::new(
///         DocumentReferenceStatus::Current,
///         Attachment::from_bytes("application/pdf", b"%PDF-1.4"),
///     )
/// };
/// assert!(doc.to_json().contains(r#""content":[{"attachment":{"contentType":"application/pdf""#));
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DocumentReference {
    /// Always `"DocumentReference"`.
    pub resource_type: ResourceTypeTag<DocumentReference>,
    /// Logical id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Identifier of this version of the document (uniqueId).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_identifier: Option<Identifier>,
    /// Other identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Status of the reference.
    pub status: DocumentReferenceStatus,
    /// Status of the document itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_status: Option<CompositionStatus>,
    /// Kind of document (LOINC).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<CodeableConcept>,
    /// Class of document.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<CodeableConcept>,
    /// The patient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Reference>,
    /// When the reference was created (FHIR `instant`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Authors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub author: Vec<Reference>,
    /// Organization that keeps the document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custodian: Option<Reference>,
    /// Relationships to other documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relates_to: Vec<DocumentReferenceRelatesTo>,
    /// Human-readable description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Confidentiality and DMP visibility ([`super::systems::DMP_VISIBILITY`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_label: Vec<CodeableConcept>,
    /// The document (at least one).
    pub content: Vec<DocumentReferenceContent>,
    /// Clinical context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<DocumentReferenceContext>,
}

impl DocumentReference {
    /// A document reference with its mandatory elements (one content; push more to `content`).
    pub fn new(status: DocumentReferenceStatus, attachment: Attachment) -> Self {
        DocumentReference {
            resource_type: ResourceTypeTag::new(),
            id: None,
            meta: None,
            master_identifier: None,
            identifier: Vec::new(),
            status,
            doc_status: None,
            type_: None,
            category: Vec::new(),
            subject: None,
            date: None,
            author: Vec::new(),
            custodian: None,
            relates_to: Vec::new(),
            description: None,
            security_label: Vec::new(),
            content: vec![DocumentReferenceContent::new(attachment)],
            context: None,
        }
    }
}
