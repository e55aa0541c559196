//! Patient and Practitioner.

use serde::{Deserialize, Serialize};

use super::{Address, ContactPoint, Extension, HumanName, Identifier, Meta, ResourceTypeTag};

/// `Patient.gender` (FHIR administrative gender).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum AdministrativeGender {
    /// `male`
    Male,
    /// `female`
    Female,
    /// `other`
    Other,
    /// `unknown`
    Unknown,
}

impl AdministrativeGender {
    /// From an HL7 v2 administrative sex (table 0001: `M`, `F`, `O`, `U`, `A`, `N`); `None`
    /// for an empty or unknown code.
    pub fn from_v2(code: &str) -> Option<Self> {
        match code.trim() {
            "M" => Some(Self::Male),
            "F" => Some(Self::Female),
            "O" | "A" | "N" => Some(Self::Other),
            "U" => Some(Self::Unknown),
            _ => None,
        }
    }
}

/// The subject of care (FHIR `Patient`). No element is mandatory.
///
/// ```
/// use passerelle_plugin_sdk::fhir::{AdministrativeGender, FhirResource, HumanName, Identifier, Patient};
/// use passerelle_plugin_sdk::types::InsKind;
/// let p = Patient {
///     identifier: vec![Identifier::ins(InsKind::NirTest, "279035121518989")],
///     name: vec![HumanName::new("DUPONT", ["Marie"])],
///     gender: Some(AdministrativeGender::Female),
///     birth_date: Some("1979-03-05".into()),
///     ..Patient::new()
/// };
/// assert!(p.to_json().starts_with(r#"{"resourceType":"Patient","identifier":[{"use":"official""#));
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    /// Always `"Patient"`.
    pub resource_type: ResourceTypeTag<Patient>,
    /// Logical id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Metadata (profiles, security labels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Extensions (e.g. FR Core identity reliability).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    /// INS, IPP and other identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Whether the record is in active use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Names (birth name `official`, used name `usual`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<HumanName>,
    /// Phone numbers, e-mail addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    /// Administrative gender.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<AdministrativeGender>,
    /// Date of birth (FHIR `date`: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    /// Addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<Address>,
}

impl Patient {
    /// An empty patient, to fill with struct update syntax.
    pub fn new() -> Self {
        Self::default()
    }
}

/// A health professional (FHIR `Practitioner`). No element is mandatory.
///
/// ```
/// use passerelle_plugin_sdk::fhir::{FhirResource, HumanName, Identifier, Practitioner, systems};
/// let dr = Practitioner {
///     identifier: vec![Identifier::new(systems::IDNAT_PS, "810002909371")],
///     name: vec![HumanName::new("MARTIN", ["Jean"]).with_prefix("DR")],
///     ..Practitioner::new()
/// };
/// assert!(dr.to_json().contains(r#""system":"urn:oid:1.2.250.1.71.4.2.1""#));
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Practitioner {
    /// Always `"Practitioner"`.
    pub resource_type: ResourceTypeTag<Practitioner>,
    /// Logical id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Identifiers (IdNat_PS: RPPS/ADELI, local ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<HumanName>,
    /// Phone numbers, e-mail addresses (MSSanté...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
}

impl Practitioner {
    /// An empty practitioner, to fill with struct update syntax.
    pub fn new() -> Self {
        Self::default()
    }
}
