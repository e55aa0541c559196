//! Observation.

use serde::{Deserialize, Serialize};

use super::{
    Annotation, CodeableConcept, Identifier, Meta, Period, Quantity, Range, Ratio, Reference,
    ResourceTypeTag, systems,
};

/// `Observation.status`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum ObservationStatus {
    /// `registered`: no result yet.
    Registered,
    /// `preliminary`
    Preliminary,
    /// `final`
    Final,
    /// `amended`
    Amended,
    /// `corrected`
    Corrected,
    /// `cancelled`
    Cancelled,
    /// `entered-in-error`
    EnteredInError,
    /// `unknown`
    Unknown,
}

impl ObservationStatus {
    /// From an HL7 v2 observation result status (OBX-11, table 0085); `None` for codes with no
    /// equivalent (`N`, `O`, `S`...).
    pub fn from_v2(code: &str) -> Option<Self> {
        match code.trim() {
            "F" => Some(Self::Final),
            "P" | "R" => Some(Self::Preliminary),
            "C" => Some(Self::Corrected),
            "D" | "W" => Some(Self::EnteredInError),
            "X" => Some(Self::Cancelled),
            "I" => Some(Self::Registered),
            "U" => Some(Self::Final),
            _ => None,
        }
    }
}

/// The result of an [`Observation`] (FHIR `Observation.value[x]`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ObservationValue {
    /// `valueQuantity`: a numeric result with its unit.
    #[serde(rename = "valueQuantity")]
    Quantity(Quantity),
    /// `valueCodeableConcept`: a coded result.
    #[serde(rename = "valueCodeableConcept")]
    CodeableConcept(CodeableConcept),
    /// `valueString`: a text result.
    #[serde(rename = "valueString")]
    String(String),
    /// `valueBoolean`
    #[serde(rename = "valueBoolean")]
    Boolean(bool),
    /// `valueInteger` (32-bit).
    #[serde(rename = "valueInteger")]
    Integer(i32),
    /// `valueRange`
    #[serde(rename = "valueRange")]
    Range(Range),
    /// `valueRatio` (titres: 1/64...).
    #[serde(rename = "valueRatio")]
    Ratio(Ratio),
    /// `valueDateTime`
    #[serde(rename = "valueDateTime")]
    DateTime(String),
    /// `valuePeriod`
    #[serde(rename = "valuePeriod")]
    Period(Period),
}

/// `Observation.referenceRange`: normal range of a result (at least `low`, `high` or `text`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObservationReferenceRange {
    /// Low bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<Quantity>,
    /// High bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<Quantity>,
    /// Kind of range (normal, therapeutic...).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<CodeableConcept>,
    /// The range as text (e.g. `3.5 - 5.1`, `< 10`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A measurement or assertion (FHIR `Observation`): `status` and `code` are mandatory.
///
/// ```
/// use passerelle_plugin_sdk::fhir::*;
/// let obs = Observation {
///     category: vec![Observation::laboratory_category()],
///     value: Some(ObservationValue::Quantity(Quantity::ucum("5.10".parse().unwrap(), "mmol/L"))),
///     interpretation: vec![Observation::interpretation("H")],
///     reference_range: vec![ObservationReferenceRange {
///         low: Some(Quantity::ucum("3.5".parse().unwrap(), "mmol/L")),
///         high: Some(Quantity::ucum("5.0".parse().unwrap(), "mmol/L")),
///         ..Default::default()
///     }],
///     ..Observation::new(
///         ObservationStatus::Final,
///         CodeableConcept::coded(systems::LOINC, "2823-3", Some("Potassium")),
///     )
/// };
/// let json = obs.to_json();
/// assert!(json.contains(r#""valueQuantity":{"value":5.10,"unit":"mmol/L""#));
/// let back: Observation = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, obs);
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", try_from = "ObservationWire")]
pub struct Observation {
    /// Always `"Observation"`.
    pub resource_type: ResourceTypeTag<Observation>,
    /// Logical id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Business identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Requests this observation fulfils (ServiceRequest...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub based_on: Vec<Reference>,
    /// Status.
    pub status: ObservationStatus,
    /// Classification ([`Observation::laboratory_category`]...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<CodeableConcept>,
    /// What was observed (LOINC and/or local code).
    pub code: CodeableConcept,
    /// The patient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Reference>,
    /// Encounter of the observation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encounter: Option<Reference>,
    /// Clinically relevant time (specimen collection for lab results).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_date_time: Option<String>,
    /// When this version was made available (FHIR `instant`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued: Option<String>,
    /// Who is responsible (practitioner, laboratory).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performer: Vec<Reference>,
    /// The result.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub value: Option<ObservationValue>,
    /// Why the result is missing (exclusive with `value`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_absent_reason: Option<CodeableConcept>,
    /// High, low, normal... ([`Observation::interpretation`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interpretation: Vec<CodeableConcept>,
    /// Comments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub note: Vec<Annotation>,
    /// How it was done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<CodeableConcept>,
    /// Specimen used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub specimen: Option<Reference>,
    /// Normal ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_range: Vec<ObservationReferenceRange>,
    /// Member observations of a panel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub has_member: Vec<Reference>,
    /// Observations this one is derived from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived_from: Vec<Reference>,
}

impl Observation {
    /// An observation with its mandatory elements.
    pub fn new(status: ObservationStatus, code: CodeableConcept) -> Self {
        Observation {
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
            value: None,
            data_absent_reason: None,
            interpretation: Vec::new(),
            note: Vec::new(),
            method: None,
            specimen: None,
            reference_range: Vec::new(),
            has_member: Vec::new(),
            derived_from: Vec::new(),
        }
    }

    /// The `laboratory` observation category.
    pub fn laboratory_category() -> CodeableConcept {
        CodeableConcept::coded(
            systems::OBSERVATION_CATEGORY,
            "laboratory",
            Some("Laboratory"),
        )
    }

    /// An interpretation code of v3 ObservationInterpretation (`N`, `H`, `L`, `HH`, `LL`,
    /// `A`, `AA`...; the HL7 v2 OBX-8 flags map to the same codes).
    pub fn interpretation(code: &str) -> CodeableConcept {
        CodeableConcept::coded(systems::V3_OBSERVATION_INTERPRETATION, code, None)
    }

    /// A data-absent-reason code (`unknown`, `not-performed`, `error`...).
    pub fn data_absent(code: &str) -> CodeableConcept {
        CodeableConcept::coded(systems::DATA_ABSENT_REASON, code, None)
    }
}

/// How an [`Observation`] is read: `value[x]` as separate members. Serde's `flatten` would
/// buffer the whole observation, losing the text of its decimals; this keeps one pass.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObservationWire {
    resource_type: ResourceTypeTag<Observation>,
    id: Option<String>,
    meta: Option<Meta>,
    #[serde(default)]
    identifier: Vec<Identifier>,
    #[serde(default)]
    based_on: Vec<Reference>,
    status: ObservationStatus,
    #[serde(default)]
    category: Vec<CodeableConcept>,
    code: CodeableConcept,
    subject: Option<Reference>,
    encounter: Option<Reference>,
    effective_date_time: Option<String>,
    issued: Option<String>,
    #[serde(default)]
    performer: Vec<Reference>,
    value_quantity: Option<Quantity>,
    value_codeable_concept: Option<CodeableConcept>,
    value_string: Option<String>,
    value_boolean: Option<bool>,
    value_integer: Option<i32>,
    value_range: Option<Range>,
    value_ratio: Option<Ratio>,
    value_date_time: Option<String>,
    value_period: Option<Period>,
    data_absent_reason: Option<CodeableConcept>,
    #[serde(default)]
    interpretation: Vec<CodeableConcept>,
    #[serde(default)]
    note: Vec<Annotation>,
    method: Option<CodeableConcept>,
    specimen: Option<Reference>,
    #[serde(default)]
    reference_range: Vec<ObservationReferenceRange>,
    #[serde(default)]
    has_member: Vec<Reference>,
    #[serde(default)]
    derived_from: Vec<Reference>,
}

impl TryFrom<ObservationWire> for Observation {
    type Error = &'static str;

    fn try_from(w: ObservationWire) -> Result<Self, Self::Error> {
        use ObservationValue as V;
        let values = [
            w.value_quantity.map(V::Quantity),
            w.value_codeable_concept.map(V::CodeableConcept),
            w.value_string.map(V::String),
            w.value_boolean.map(V::Boolean),
            w.value_integer.map(V::Integer),
            w.value_range.map(V::Range),
            w.value_ratio.map(V::Ratio),
            w.value_date_time.map(V::DateTime),
            w.value_period.map(V::Period),
        ];
        let mut present = values.into_iter().flatten();
        let value = present.next();
        if present.next().is_some() {
            return Err("Observation has more than one value[x]");
        }
        Ok(Observation {
            resource_type: w.resource_type,
            id: w.id,
            meta: w.meta,
            identifier: w.identifier,
            based_on: w.based_on,
            status: w.status,
            category: w.category,
            code: w.code,
            subject: w.subject,
            encounter: w.encounter,
            effective_date_time: w.effective_date_time,
            issued: w.issued,
            performer: w.performer,
            value,
            data_absent_reason: w.data_absent_reason,
            interpretation: w.interpretation,
            note: w.note,
            method: w.method,
            specimen: w.specimen,
            reference_range: w.reference_range,
            has_member: w.has_member,
            derived_from: w.derived_from,
        })
    }
}
