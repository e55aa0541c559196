//! Composition: the first entry of a document Bundle.

use serde::{Deserialize, Serialize};

use super::{CodeableConcept, Identifier, Meta, Narrative, Reference, ResourceTypeTag};

/// `Composition.status`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum CompositionStatus {
    /// `preliminary`
    Preliminary,
    /// `final`
    Final,
    /// `amended`
    Amended,
    /// `entered-in-error`
    EnteredInError,
}

/// A section of a [`Composition`]. FHIR requires some `text`, `entry` or nested `section`
/// (cmp-1): [`CompositionSection::new`] sets the text.
///
/// ```
/// use passerelle_plugin_sdk::fhir::*;
/// let s = CompositionSection::new("Conclusion", "RCP : chimiothérapie adjuvante")
///     .with_code(CodeableConcept::coded(systems::LOINC, "55110-1", Some("Conclusions")));
/// assert!(s.text.unwrap().div.contains("RCP : chimioth"));
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CompositionSection {
    /// Label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Kind of section (LOINC...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
    /// Human-readable content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Narrative>,
    /// Resources the section is about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry: Vec<Reference>,
    /// Why the section is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty_reason: Option<CodeableConcept>,
    /// Nested sections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub section: Vec<CompositionSection>,
}

impl CompositionSection {
    /// A section with a title and plain text (escaped into an XHTML narrative).
    pub fn new(title: impl Into<String>, text: &str) -> Self {
        CompositionSection {
            title: Some(title.into()),
            text: Some(Narrative::from_text(text)),
            ..Default::default()
        }
    }

    /// Sets the code.
    pub fn with_code(mut self, code: CodeableConcept) -> Self {
        self.code = Some(code);
        self
    }

    /// Adds an entry.
    pub fn with_entry(mut self, entry: Reference) -> Self {
        self.entry.push(entry);
        self
    }

    /// Adds a nested section.
    pub fn with_section(mut self, section: CompositionSection) -> Self {
        self.section.push(section);
        self
    }
}

/// A clinical document's header and structure (FHIR `Composition`): `status`, `type`,
/// `date`, at least one `author` and `title` are mandatory.
///
/// ```
/// use passerelle_plugin_sdk::fhir::*;
/// let c = Composition {
///     confidentiality: Some("N".into()),
///     section: vec![CompositionSection::new("Synthèse", "Dossier discuté en RCP.")],
///     ..Composition::new(
///         CompositionStatus::Final,
///         CodeableConcept::coded(systems::LOINC, "75496-0", Some("Fiche RCP")),
///         "2024-01-31T14:00:00+01:00",
///         Reference::to("urn:uuid:4c4a8d2a-0b37-5b8e-a87f-28a3b5e0b2a1"),
///         "Fiche de réunion de concertation pluridisciplinaire",
///     )
/// };
/// assert!(c.to_json().contains(r#""author":[{"reference":"urn:uuid:4c4a8d2a"#));
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Composition {
    /// Always `"Composition"`.
    pub resource_type: ResourceTypeTag<Composition>,
    /// Logical id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Version-independent identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    /// Status.
    pub status: CompositionStatus,
    /// Kind of document (LOINC).
    #[serde(rename = "type")]
    pub type_: CodeableConcept,
    /// Categories (class of document).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<CodeableConcept>,
    /// The patient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Reference>,
    /// Encounter of the document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encounter: Option<Reference>,
    /// When the document was edited.
    pub date: String,
    /// Authors (at least one).
    pub author: Vec<Reference>,
    /// Title.
    pub title: String,
    /// v3 Confidentiality code (`N`, `R`, `V`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidentiality: Option<String>,
    /// Organization that keeps the document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custodian: Option<Reference>,
    /// Sections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub section: Vec<CompositionSection>,
}

impl Composition {
    /// A composition with its mandatory elements (one author; push more to `author`).
    pub fn new(
        status: CompositionStatus,
        type_: CodeableConcept,
        date: impl Into<String>,
        author: Reference,
        title: impl Into<String>,
    ) -> Self {
        Composition {
            resource_type: ResourceTypeTag::new(),
            id: None,
            meta: None,
            identifier: None,
            status,
            type_,
            category: Vec::new(),
            subject: None,
            encounter: None,
            date: date.into(),
            author: vec![author],
            title: title.into(),
            confidentiality: None,
            custodian: None,
            section: Vec::new(),
        }
    }
}
