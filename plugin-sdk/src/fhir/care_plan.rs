//! CarePlan.

use serde::{Deserialize, Serialize};

use super::{Annotation, CodeableConcept, Identifier, Meta, Period, Reference, ResourceTypeTag};

/// `CarePlan.status`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum CarePlanStatus {
    /// `draft`
    Draft,
    /// `active`
    Active,
    /// `on-hold`
    OnHold,
    /// `revoked`
    Revoked,
    /// `completed`
    Completed,
    /// `entered-in-error`
    EnteredInError,
    /// `unknown`
    Unknown,
}

/// `CarePlan.intent`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum CarePlanIntent {
    /// `proposal` (e.g. a multidisciplinary meeting's proposal).
    Proposal,
    /// `plan`
    Plan,
    /// `order`
    Order,
    /// `option`
    Option,
}

/// `CarePlan.activity.detail.kind`: the kind of resource the activity would be.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CarePlanActivityKind {
    /// `Appointment`
    Appointment,
    /// `CommunicationRequest`
    CommunicationRequest,
    /// `DeviceRequest`
    DeviceRequest,
    /// `MedicationRequest`
    MedicationRequest,
    /// `NutritionOrder`
    NutritionOrder,
    /// `Task`
    Task,
    /// `ServiceRequest`
    ServiceRequest,
    /// `VisionPrescription`
    VisionPrescription,
}

/// `CarePlan.activity.detail.status`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum CarePlanActivityStatus {
    /// `not-started`
    NotStarted,
    /// `scheduled`
    Scheduled,
    /// `in-progress`
    InProgress,
    /// `on-hold`
    OnHold,
    /// `completed`
    Completed,
    /// `cancelled`
    Cancelled,
    /// `stopped`
    Stopped,
    /// `unknown`
    Unknown,
    /// `entered-in-error`
    EnteredInError,
}

/// `CarePlan.activity.detail`: a planned activity (`status` is mandatory).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CarePlanActivityDetail {
    /// Kind of resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<CarePlanActivityKind>,
    /// What the activity is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
    /// Status.
    pub status: CarePlanActivityStatus,
    /// Free-text description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl CarePlanActivityDetail {
    /// An activity detail with its status.
    pub fn new(status: CarePlanActivityStatus) -> Self {
        CarePlanActivityDetail {
            kind: None,
            code: None,
            status,
            description: None,
        }
    }
}

/// `CarePlan.activity`: an action of the plan, either a `reference` to a request or a
/// `detail`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CarePlanActivity {
    /// Comments about the progress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<Annotation>,
    /// The activity as a request resource (MedicationRequest, ServiceRequest...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
    /// The activity in-line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<CarePlanActivityDetail>,
}

/// A plan of care (FHIR `CarePlan`): `status`, `intent` and `subject` are mandatory.
///
/// ```
/// use passerelle_plugin_sdk::fhir::*;
/// let plan = CarePlan {
///     title: Some("Proposition thérapeutique RCP".into()),
///     activity: vec![CarePlanActivity {
///         detail: Some(CarePlanActivityDetail {
///             description: Some("Radiothérapie adjuvante".into()),
///             ..CarePlanActivityDetail::new(CarePlanActivityStatus::NotStarted)
///         }),
///         ..Default::default()
///     }],
///     ..CarePlan::new(
///         CarePlanStatus::Active,
///         CarePlanIntent::Proposal,
///         Reference::to("urn:uuid:6a1c1ab5-52f2-5a26-9b49-3ec7c1b7a4ad"),
///     )
/// };
/// assert!(plan.to_json().contains(r#""activity":[{"detail":{"status":"not-started""#));
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CarePlan {
    /// Always `"CarePlan"`.
    pub resource_type: ResourceTypeTag<CarePlan>,
    /// Logical id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Business identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Status.
    pub status: CarePlanStatus,
    /// Intent.
    pub intent: CarePlanIntent,
    /// Kind of plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<CodeableConcept>,
    /// Human-friendly name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The patient.
    pub subject: Reference,
    /// Encounter of the plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encounter: Option<Reference>,
    /// When the plan applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// When first created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who is responsible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<Reference>,
    /// Conditions addressed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Reference>,
    /// Actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activity: Vec<CarePlanActivity>,
    /// Comments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub note: Vec<Annotation>,
}

impl CarePlan {
    /// A plan with its mandatory elements.
    pub fn new(status: CarePlanStatus, intent: CarePlanIntent, subject: Reference) -> Self {
        CarePlan {
            resource_type: ResourceTypeTag::new(),
            id: None,
            meta: None,
            identifier: Vec::new(),
            status,
            intent,
            category: Vec::new(),
            title: None,
            description: None,
            subject,
            encounter: None,
            period: None,
            created: None,
            author: None,
            addresses: Vec::new(),
            activity: Vec::new(),
            note: Vec::new(),
        }
    }
}
