//! The record store's access policy (issue #7, rules R1–R9 of `domain.md` §2): one pure
//! module deciding allow/deny. No I/O, no clock, no database: the store loads the inputs
//! ([`Actor`], [`Mode`], [`PatientAccess`], [`DocumentMeta`]) and asks; the audit trail (R7),
//! versioning (R8) and notifications are the store's, driven by [`Policy::notify_on`] and
//! [`default_window`] (R9). The rules as implemented: `docs/record-store.md`, "Access rules".
//!
// CONTRACT CHANGE (additions only, nothing renamed or removed):
// - `can_open`/`can_see` cannot tell whether a `Role::Patient` actor IS this patient
//   (`PatientAccess` holds no INS). They trust the caller to have resolved the actor's own
//   record. `can_open_record`/`can_see_record` take the patient's INS and deny
//   `NotThePatient` otherwise: prefer them.
// - `PatientAccess::default()` == `PatientAccess::new()` (`dmp_active: true`): `Default` is
//   hand-written, not derived, and serde fills missing JSON fields from it.
// - `DenyReason` variants: IdentityNotQualified, FeedingOpposition, DmpClosed, Blocked,
//   NoConsent, MissingJustification, EmergencyOpposition, BreakGlassNotProfessional,
//   NotARegulator, NotThePatient, NotARepresentative, NoProfession, MatrixForbidden{..},
//   MaskedToProfessionals, MaskedByPatient (the "Masked" of the brief, split by who masked),
//   InvisibleToPatient, InvisibleToRepresentatives, NotPatientSide. `code()` is a stable
//   kebab-case code, `rule()` the rule number; `Display` is the human reason.
// - Extras: `Decision::{deny_reason, into_result}`, `Mode::{is_emergency, label}`,
//   `Role::{is_professional, label}`, `SearchWindow` (returned by `default_window()`).

mod decision;
mod matrix;
mod model;
mod rules;

#[cfg(test)]
mod tests;

pub use decision::{Decision, DenyReason};
pub use matrix::PolicyError;
pub use model::{Actor, DocumentMeta, Mode, PatientAccess, Role, SearchWindow, default_window};

use matrix::Matrix;

/// The access policy: the habilitation matrix (R4) plus the fixed rules R1–R3, R5, R6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    matrix: Matrix,
}

impl Policy {
    /// The policy with the matrix embedded from `matrix.toml`.
    pub fn with_default_matrix() -> Policy {
        // The embedded file is a build-time constant; `tests::default_matrix_loads` keeps it valid.
        let matrix = Matrix::from_toml(matrix::DEFAULT_MATRIX)
            .unwrap_or_else(|e| panic!("embedded matrix.toml is invalid: {e}"));
        Policy { matrix }
    }

    /// A policy with an operator-supplied matrix (same format as `matrix.toml`).
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        Ok(Policy {
            matrix: Matrix::from_toml(text)?,
        })
    }

    /// R1 (INS-qualified identity) and R2 (no feeding opposition; record open).
    pub fn can_feed(&self, identity_qualified: bool, patient: &PatientAccess) -> Decision {
        rules::feed(identity_qualified, patient).into()
    }

    /// R3: may the actor open the patient's record in this mode.
    pub fn can_open(&self, actor: &Actor, mode: &Mode, patient: &PatientAccess) -> Decision {
        rules::open(actor, mode, patient).into()
    }

    /// R3 (via [`Policy::can_open`]), then R4 matrix, R5 masks, R6 patient-side invisibility.
    pub fn can_see(
        &self,
        actor: &Actor,
        mode: &Mode,
        patient: &PatientAccess,
        doc: &DocumentMeta<'_>,
    ) -> Decision {
        rules::see(&self.matrix, actor, mode, patient, doc).into()
    }

    /// [`Policy::can_open`], also checking that a `Role::Patient` actor is this patient.
    pub fn can_open_record(
        &self,
        actor: &Actor,
        mode: &Mode,
        patient_ins: &str,
        patient: &PatientAccess,
    ) -> Decision {
        if actor.role == Role::Patient && actor.id != patient_ins {
            return Decision::Deny(DenyReason::NotThePatient);
        }
        self.can_open(actor, mode, patient)
    }

    /// [`Policy::can_see`], also checking that a `Role::Patient` actor is this patient.
    pub fn can_see_record(
        &self,
        actor: &Actor,
        mode: &Mode,
        patient_ins: &str,
        patient: &PatientAccess,
        doc: &DocumentMeta<'_>,
    ) -> Decision {
        if actor.role == Role::Patient && actor.id != patient_ins {
            return Decision::Deny(DenyReason::NotThePatient);
        }
        self.can_see(actor, mode, patient, doc)
    }

    /// Patient-side actions (mask, block, consent, médecin traitant, oppositions, reading the
    /// access log): the patient, or a legal representative listed for the patient.
    pub fn can_manage(
        &self,
        actor: &Actor,
        patient_ins: &str,
        patient: &PatientAccess,
    ) -> Decision {
        rules::manage(actor, patient_ins, patient).into()
    }

    /// Break-glass and centre-15 accesses are notified afterwards to the patient and the
    /// médecin traitant.
    pub fn notify_on(&self, mode: &Mode) -> bool {
        mode.is_emergency()
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::with_default_matrix()
    }
}
