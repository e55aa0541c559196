//! MedicationRequest and Dosage.

use serde::{Deserialize, Serialize};

use super::{
    Annotation, CodeableConcept, Decimal, Duration, Extension, Identifier, Meta, Period, Quantity,
    Range, Ratio, Reference, ResourceTypeTag,
};

/// `MedicationRequest.status`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum MedicationRequestStatus {
    /// `active`
    Active,
    /// `on-hold`
    OnHold,
    /// `cancelled`
    Cancelled,
    /// `completed`
    Completed,
    /// `entered-in-error`
    EnteredInError,
    /// `stopped`
    Stopped,
    /// `draft`
    Draft,
    /// `unknown`
    Unknown,
}

/// `MedicationRequest.intent`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum MedicationRequestIntent {
    /// `proposal`
    Proposal,
    /// `plan`
    Plan,
    /// `order`: a prescription.
    Order,
    /// `original-order`
    OriginalOrder,
    /// `reflex-order`
    ReflexOrder,
    /// `filler-order`
    FillerOrder,
    /// `instance-order`
    InstanceOrder,
    /// `option`
    Option,
}

/// Units of time of [`TimingRepeat`] (UCUM subset).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnitsOfTime {
    /// `s`
    #[serde(rename = "s")]
    Second,
    /// `min`
    #[serde(rename = "min")]
    Minute,
    /// `h`
    #[serde(rename = "h")]
    Hour,
    /// `d`
    #[serde(rename = "d")]
    Day,
    /// `wk`
    #[serde(rename = "wk")]
    Week,
    /// `mo`
    #[serde(rename = "mo")]
    Month,
    /// `a`
    #[serde(rename = "a")]
    Year,
}

/// `Timing.repeat`: when a dose repeats (`frequency` times per `period` `period_unit`).
///
/// `bounds_duration` and `bounds_period` are the two forms of `bounds[x]`: set at most one.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TimingRepeat {
    /// Length of the treatment (`boundsDuration`, e.g. 7 days).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounds_duration: Option<Duration>,
    /// Dates of the treatment (`boundsPeriod`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounds_period: Option<Period>,
    /// Number of repetitions in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Times per period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency: Option<u32>,
    /// Length of the period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Decimal>,
    /// Unit of the period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_unit: Option<UnitsOfTime>,
    /// Days of week (`mon`, `tue`...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub day_of_week: Vec<String>,
    /// Times of day (`08:00:00`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_of_day: Vec<String>,
    /// Moments of the day (`MORN`, `ACM`, `HS`...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<String>,
}

impl TimingRepeat {
    /// `frequency` times every `period` `unit` (e.g. 3 times per 1 day).
    pub fn every(frequency: u32, period: Decimal, unit: UnitsOfTime) -> Self {
        TimingRepeat {
            frequency: Some(frequency),
            period: Some(period),
            period_unit: Some(unit),
            ..Default::default()
        }
    }
}

/// When a medication is taken (FHIR `Timing`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Timing {
    /// Exact times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event: Vec<String>,
    /// The repetition rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat: Option<TimingRepeat>,
    /// A code for the timing (`BID`, `TID`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
}

/// `Dosage.doseAndRate`: the amount per dose. `dose_range` and `dose_quantity` are the two
/// forms of `dose[x]`: set at most one.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DosageDoseAndRate {
    /// Kind of dose (calculated, ordered...).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<CodeableConcept>,
    /// Dose as a range (`doseRange`, e.g. 1 to 2 tablets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dose_range: Option<Range>,
    /// Dose as a quantity (`doseQuantity`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dose_quantity: Option<Quantity>,
}

impl DosageDoseAndRate {
    /// A fixed dose.
    pub fn quantity(dose: Quantity) -> Self {
        DosageDoseAndRate {
            dose_quantity: Some(dose),
            ..Default::default()
        }
    }

    /// A dose range.
    pub fn range(dose: Range) -> Self {
        DosageDoseAndRate {
            dose_range: Some(dose),
            ..Default::default()
        }
    }
}

/// How a medication is to be taken (FHIR `Dosage`). `as_needed_boolean` and
/// `as_needed_codeable_concept` are the two forms of `asNeeded[x]`: set at most one.
///
/// ```
/// use passerelle_plugin_sdk::fhir::*;
/// let d = Dosage {
///     text: Some("1 comprimé 3 fois par jour pendant 7 jours".into()),
///     timing: Some(Timing {
///         repeat: Some(TimingRepeat {
///             bounds_duration: Some(Quantity::ucum(Decimal::from(7), "d")),
///             ..TimingRepeat::every(3, Decimal::from(1), UnitsOfTime::Day)
///         }),
///         ..Default::default()
///     }),
///     dose_and_rate: vec![DosageDoseAndRate::quantity(Quantity::with_unit(Decimal::from(1), "comprimé"))],
///     ..Default::default()
/// };
/// let json = serde_json::to_string(&d).unwrap();
/// assert!(json.contains(r#""repeat":{"boundsDuration":{"value":7,"unit":"d","#));
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Dosage {
    /// Order of the dosage instructions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<i32>,
    /// Free-text dosage instructions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Instructions for the patient.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_instruction: Option<String>,
    /// When to take it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    /// Take as needed (`asNeededBoolean`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_needed_boolean: Option<bool>,
    /// Take as needed for (`asNeededCodeableConcept`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_needed_codeable_concept: Option<CodeableConcept>,
    /// Body site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<CodeableConcept>,
    /// Route of administration (EDQM standard terms...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<CodeableConcept>,
    /// Technique.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<CodeableConcept>,
    /// Amount per dose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dose_and_rate: Vec<DosageDoseAndRate>,
    /// Upper limit per period (e.g. 4 g / 1 d).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_dose_per_period: Option<Ratio>,
}

/// `MedicationRequest.dispenseRequest`: what the pharmacy may dispense.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MedicationRequestDispenseRequest {
    /// Validity of the prescription.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity_period: Option<Period>,
    /// Number of refills ("à renouveler N fois").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number_of_repeats_allowed: Option<u32>,
    /// Amount per dispense.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    /// Days of supply per dispense.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_supply_duration: Option<Duration>,
}

/// `MedicationRequest.substitution`: whether a generic may be dispensed (`allowed[x]`,
/// mandatory: build with [`MedicationRequestSubstitution::allowed`]).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MedicationRequestSubstitution {
    /// Substitution allowed (`allowedBoolean`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_boolean: Option<bool>,
    /// Kind of substitution allowed (`allowedCodeableConcept`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_codeable_concept: Option<CodeableConcept>,
    /// Why ("non substituable": MTE, EFG...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<CodeableConcept>,
}

impl MedicationRequestSubstitution {
    /// Substitution allowed or not.
    pub fn allowed(allowed: bool) -> Self {
        MedicationRequestSubstitution {
            allowed_boolean: Some(allowed),
            allowed_codeable_concept: None,
            reason: None,
        }
    }

    /// Substitution of a kind (v3 ActSubstanceAdminSubstitutionCode...).
    pub fn allowed_kind(kind: CodeableConcept) -> Self {
        MedicationRequestSubstitution {
            allowed_boolean: None,
            allowed_codeable_concept: Some(kind),
            reason: None,
        }
    }
}

/// A prescription line (FHIR `MedicationRequest`): `status`, `intent`, the medication and
/// `subject` are mandatory.
///
/// ```
/// use passerelle_plugin_sdk::fhir::*;
/// let med = CodeableConcept::coded(systems::CIP, "3400930000000", Some("PARACETAMOL 500 mg cp"));
/// let rx = MedicationRequest {
///     authored_on: Some("2024-01-31".into()),
///     dosage_instruction: vec![Dosage { text: Some("1 cp si douleur".into()), as_needed_boolean: Some(true), ..Default::default() }],
///     substitution: Some(MedicationRequestSubstitution::allowed(true)),
///     ..MedicationRequest::new(
///         MedicationRequestStatus::Active,
///         MedicationRequestIntent::Order,
///         med,
///         Reference::to("urn:uuid:6a1c1ab5-52f2-5a26-9b49-3ec7c1b7a4ad"),
///     )
/// };
/// assert!(rx.to_json().starts_with(r#"{"resourceType":"MedicationRequest","status":"active","intent":"order""#));
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MedicationRequest {
    /// Always `"MedicationRequest"`.
    pub resource_type: ResourceTypeTag<MedicationRequest>,
    /// Logical id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Extensions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    /// Business identifiers (prescription line number...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Status.
    pub status: MedicationRequestStatus,
    /// Intent.
    pub intent: MedicationRequestIntent,
    /// Kind of request (inpatient, outpatient, community...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<CodeableConcept>,
    /// The medication (CIP, UCD, substance...).
    pub medication_codeable_concept: CodeableConcept,
    /// The patient.
    pub subject: Reference,
    /// Encounter of the prescription.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encounter: Option<Reference>,
    /// When the prescription was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authored_on: Option<String>,
    /// The prescriber.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requester: Option<Reference>,
    /// Reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason_code: Vec<CodeableConcept>,
    /// Identifier of the whole prescription, shared by its lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_identifier: Option<Identifier>,
    /// Comments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub note: Vec<Annotation>,
    /// How to take it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dosage_instruction: Vec<Dosage>,
    /// What to dispense.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispense_request: Option<MedicationRequestDispenseRequest>,
    /// Whether a substitute may be dispensed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub substitution: Option<MedicationRequestSubstitution>,
}

impl MedicationRequest {
    /// A request with its mandatory elements.
    pub fn new(
        status: MedicationRequestStatus,
        intent: MedicationRequestIntent,
        medication: CodeableConcept,
        subject: Reference,
    ) -> Self {
        MedicationRequest {
            resource_type: ResourceTypeTag::new(),
            id: None,
            meta: None,
            extension: Vec::new(),
            identifier: Vec::new(),
            status,
            intent,
            category: Vec::new(),
            medication_codeable_concept: medication,
            subject,
            encounter: None,
            authored_on: None,
            requester: None,
            reason_code: Vec::new(),
            group_identifier: None,
            note: Vec::new(),
            dosage_instruction: Vec::new(),
            dispense_request: None,
            substitution: None,
        }
    }
}
