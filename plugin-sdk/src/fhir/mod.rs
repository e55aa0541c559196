//! Typed builders for the FHIR R4 resources of the Passerelle record model.
//!
//! A record's clinical content is a FHIR R4 [`Bundle`] serialized as JSON. This module keeps
//! the plugin small: plain structs with serde derives (no FHIR model crate), serialized
//! directly to compact JSON, with no `null`, empty array or empty object (FHIR forbids empty
//! elements: optional members are `Option`/`Vec` skipped when empty).
//!
//! - Datatypes: [`Coding`], [`CodeableConcept`], [`Identifier`], [`Reference`],
//!   [`Quantity`] (its value a [`Decimal`] that keeps the source text: `5.10` stays `5.10`),
//!   [`Range`], [`Ratio`], [`Period`], [`HumanName`], [`Address`], [`ContactPoint`],
//!   [`Annotation`], [`Attachment`], [`Meta`], [`Extension`], [`Narrative`].
//! - Resources: [`Patient`], [`Practitioner`], [`Encounter`], [`Observation`],
//!   [`DiagnosticReport`], [`Specimen`], [`MedicationRequest`], [`Composition`],
//!   [`DocumentReference`], [`Condition`], [`CarePlan`], [`Bundle`], and the [`Resource`]
//!   enum over them. Each serializes `"resourceType"` first. A resource with mandatory
//!   elements has no `Default`: its `new` takes them, and the other members are set with
//!   struct update syntax (`Observation { subject, ..Observation::new(status, code) }`).
//! - [`Bundle`] builds the bundle: [`Bundle::add`] gives each entry a deterministic
//!   `urn:uuid:` fullUrl ([`uuid_for`]) and returns the [`Reference`] to it.
//! - [`systems`]: code and identifier systems (INS, LOINC, UCUM, DMP visibility...).
//!
//! ```
//! use passerelle_plugin_sdk::fhir::*;
//! use passerelle_plugin_sdk::types::InsKind;
//!
//! let mut bundle = Bundle::collection("MSG00042");
//! let patient = bundle.add(Patient {
//!     identifier: vec![
//!         Identifier::ins(InsKind::NirTest, "279035121518989"),
//!         Identifier::new("urn:oid:1.2.250.1.71.4.2.7", "IPP123").with_type(systems::V2_0203, "PI"),
//!     ],
//!     ..Patient::new()
//! });
//! let potassium = bundle.add(Observation {
//!     subject: Some(patient.clone()),
//!     value: Some(ObservationValue::Quantity(Quantity::ucum("5.10".parse().unwrap(), "mmol/L"))),
//!     ..Observation::new(
//!         ObservationStatus::Final,
//!         CodeableConcept::coded(systems::LOINC, "2823-3", Some("Potassium")),
//!     )
//! });
//! bundle.add(DiagnosticReport {
//!     subject: Some(patient),
//!     result: vec![potassium],
//!     ..DiagnosticReport::new(
//!         DiagnosticReportStatus::Final,
//!         CodeableConcept::coded(systems::LOINC, "11502-2", None),
//!     )
//! });
//! assert!(bundle.problems().is_empty());
//! let json: String = bundle.to_json();
//! assert!(json.contains(r#""value":5.10"#));
//! ```

mod bundle;
mod care_plan;
mod composition;
mod condition;
mod datatypes;
mod decimal;
mod diagnostic_report;
mod document_reference;
mod encounter;
mod json;
mod medication_request;
mod observation;
mod patient;
mod resource;
mod specimen;
pub mod systems;
#[cfg(test)]
mod tests;

pub use bundle::{Bundle, BundleEntry, BundleEntryRequest, BundleType, HttpVerb, OncePerKey};
pub use care_plan::{
    CarePlan, CarePlanActivity, CarePlanActivityDetail, CarePlanActivityKind,
    CarePlanActivityStatus, CarePlanIntent, CarePlanStatus,
};
pub use composition::{Composition, CompositionSection, CompositionStatus};
pub use condition::{Condition, ConditionStage};
pub use datatypes::{
    Address, AddressType, AddressUse, Annotation, Attachment, CodeableConcept, Coding,
    ContactPoint, ContactPointSystem, ContactPointUse, Duration, Extension, ExtensionValue,
    HumanName, Identifier, IdentifierUse, Meta, NameUse, Narrative, NarrativeStatus, Period,
    Quantity, QuantityComparator, Range, Ratio, Reference, SimpleQuantity, base64, escape_xml_into,
};
pub use decimal::{Decimal, DecimalError};
pub use diagnostic_report::{DiagnosticReport, DiagnosticReportStatus};
pub use document_reference::{
    DocumentReference, DocumentReferenceContent, DocumentReferenceContext,
    DocumentReferenceRelatesTo, DocumentReferenceStatus, DocumentRelationship,
};
pub use encounter::{Encounter, EncounterStatus};
pub use medication_request::{
    Dosage, DosageDoseAndRate, MedicationRequest, MedicationRequestDispenseRequest,
    MedicationRequestIntent, MedicationRequestStatus, MedicationRequestSubstitution, Timing,
    TimingRepeat, UnitsOfTime,
};
pub use observation::{
    Observation, ObservationReferenceRange, ObservationStatus, ObservationValue,
};
pub use patient::{AdministrativeGender, Patient, Practitioner};
pub use resource::{FhirResource, Resource, ResourceTypeTag};
pub use specimen::{Specimen, SpecimenCollection};

/// Namespace of [`uuid_for`]: the UUID v5 of the URL `urn:passerelle:fhir`
/// (`9a919906-9e0f-5ccf-af62-a9b5d6c205dc`).
const UUID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x9a91_9906_9e0f_5ccf_af62_a9b5_d6c2_05dc);

/// A deterministic UUID (lowercase, hyphenated, without `urn:uuid:`) named by `parts`, e.g.
/// `["MSG00042", "Observation", "3"]`: the same parts always give the same UUID, different
/// parts different UUIDs.
///
/// Algorithm (frozen: replays of old messages must give the same UUIDs): name-based UUID
/// version 5 (SHA-1, RFC 9562) in the namespace `9a919906-9e0f-5ccf-af62-a9b5d6c205dc`
/// (itself UUID v5 of the URL `urn:passerelle:fhir`), of the name made by concatenating,
/// for each part, its UTF-8 length in decimal, `:`, and its UTF-8 bytes (so `["a|b", "c"]`
/// and `["a", "b|c"]` differ). In Python:
/// `uuid.UUID(bytes=hashlib.sha1(ns.bytes + name).digest()[:16], version=5)`.
///
/// ```
/// use passerelle_plugin_sdk::fhir::uuid_for;
/// assert_eq!(uuid_for(&["MSG00042", "entry", "0"]), "94733656-81da-5777-904f-d3311c35f1c9");
/// ```
pub fn uuid_for(parts: &[&str]) -> String {
    // Called for every resource of every message: no `fmt` machinery (it showed in profiles).
    let mut name = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    let mut digits = itoa::Buffer::new();
    for part in parts {
        name.extend_from_slice(digits.format(part.len()).as_bytes());
        name.push(b':');
        name.extend_from_slice(part.as_bytes());
    }
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    // `to_owned`, not `to_string`: on a `&mut str` the latter goes through `Display`.
    let hyphenated: &str = uuid::Uuid::new_v5(&UUID_NAMESPACE, &name)
        .hyphenated()
        .encode_lower(&mut text);
    hyphenated.to_owned()
}

/// `Some(text)` unless the text is empty or only whitespace: FHIR forbids empty strings, and
/// HL7 v2 fields are often empty.
///
/// ```
/// use passerelle_plugin_sdk::fhir::non_empty;
/// assert_eq!(non_empty(" IPP1 "), Some("IPP1".to_string()));
/// assert_eq!(non_empty("  "), None);
/// ```
pub fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}
