//! The inputs of the access policy: who asks, in which mode, about which patient and document.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What kind of authenticated caller an [`Actor`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A health professional (RPPS id).
    Professional,
    /// The patient themself (INS).
    Patient,
    /// A legal representative of the patient (parent, guardian).
    LegalRepresentative,
    /// A SAMU regulating physician (centre 15). Also a professional in every other mode.
    SamuRegulator,
}

impl Role {
    /// Professionals and regulators are "PS": they are the ones the matrix, the masks, the
    /// blocking list and break-glass apply to.
    pub fn is_professional(self) -> bool {
        matches!(self, Role::Professional | Role::SamuRegulator)
    }

    /// Stable lowercase label for logs and the audit trail.
    pub fn label(self) -> &'static str {
        match self {
            Role::Professional => "professional",
            Role::Patient => "patient",
            Role::LegalRepresentative => "legal-representative",
            Role::SamuRegulator => "samu-regulator",
        }
    }
}

/// The authenticated caller (resolved from its bearer token by the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// RPPS for professionals/regulators, INS for the patient, an id for a legal representative.
    pub id: String,
    pub role: Role,
    /// Matrix key, e.g. "medecin", "pharmacien", "infirmier", "sage-femme",
    /// "chirurgien-dentiste", "masseur-kinesitherapeute", "biologiste".
    pub profession: Option<String>,
    pub specialty: Option<String>,
    /// FINESS or similar.
    pub organisation: Option<String>,
}

/// The access mode a session was opened in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum Mode {
    Normal,
    /// "Bris de glace": emergency access by a professional; the justification is mandatory.
    BreakGlass {
        justification: String,
    },
    /// Centre 15: access by a SAMU regulating physician.
    Regulation,
}

impl Mode {
    /// Emergency modes are flagged on the whole session and notified to the patient and the
    /// médecin traitant afterwards.
    pub fn is_emergency(&self) -> bool {
        !matches!(self, Mode::Normal)
    }

    /// Stable label for the audit trail.
    pub fn label(&self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::BreakGlass { .. } => "break-glass",
            Mode::Regulation => "regulation",
        }
    }
}

/// The patient's access settings, persisted by the store as JSON per patient.
///
/// `Default` equals [`PatientAccess::new`]: an active record with nothing recorded. Missing
/// JSON fields take those defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PatientAccess {
    pub dmp_active: bool,
    /// Patient informed of the care-team presumption of consent.
    pub informed: bool,
    /// R2: opposition to feeding (legitimate reason recorded).
    pub feeding_opposition: bool,
    /// R3: opposition to break-glass and centre-15 access.
    pub emergency_opposition: bool,
    /// RPPS ids blocked by the patient.
    pub blocked: BTreeSet<String>,
    /// RPPS ids of the care team.
    pub care_team: BTreeSet<String>,
    /// RPPS ids with an explicit consent.
    pub consents: BTreeSet<String>,
    /// RPPS of the médecin traitant.
    pub medecin_traitant: Option<String>,
    /// RPPS ids granted the médecin traitant's rights.
    pub mt_equivalent: BTreeSet<String>,
    pub legal_representatives: BTreeSet<String>,
    /// Record ids masked by the patient.
    pub masked: BTreeSet<String>,
}

impl PatientAccess {
    pub fn new() -> Self {
        PatientAccess {
            dmp_active: true,
            informed: false,
            feeding_opposition: false,
            emergency_opposition: false,
            blocked: BTreeSet::new(),
            care_team: BTreeSet::new(),
            consents: BTreeSet::new(),
            medecin_traitant: None,
            mt_equivalent: BTreeSet::new(),
            legal_representatives: BTreeSet::new(),
            masked: BTreeSet::new(),
        }
    }
}

// Hand-written rather than derived: a derived default would be a closed record
// (`dmp_active: false`), which is not what an absent setting means.
impl Default for PatientAccess {
    fn default() -> Self {
        Self::new()
    }
}

/// The metadata of one stored document the policy needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentMeta<'a> {
    pub record_id: &'a str,
    /// LOINC document type code used by the matrix (11502-2, 57833-6, 34794-8, ...).
    pub type_code: &'a str,
    /// RPPS of the author.
    pub author: Option<&'a str>,
    pub author_organisation: Option<&'a str>,
    pub masque_ps: bool,
    pub invisible_patient: bool,
    pub invisible_rep_legaux: bool,
}

/// R9: what a search returns when the caller does not ask otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchWindow {
    /// Only documents at most this many days old.
    pub max_age_days: u32,
    /// Only current versions (not replaced, not deleted).
    pub current_versions_only: bool,
}

impl SearchWindow {
    pub fn max_age(&self) -> Duration {
        Duration::from_secs(u64::from(self.max_age_days) * 24 * 3600)
    }
}

/// R9: the default window of the PDSM4DMP usage guide: two years, current versions only.
pub fn default_window() -> SearchWindow {
    SearchWindow {
        max_age_days: 730,
        current_versions_only: true,
    }
}
