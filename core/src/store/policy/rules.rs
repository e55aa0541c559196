//! The rules themselves (R1–R6), as pure functions over the policy inputs. Each returns
//! `Err(reason)` at the first rule that denies, in the order domain.md §2 gives.

use super::decision::DenyReason;
use super::matrix::Matrix;
use super::model::{Actor, DocumentMeta, Mode, PatientAccess, Role};

/// R1 then R2: may a document be written to this patient's record?
pub(crate) fn feed(identity_qualified: bool, patient: &PatientAccess) -> Result<(), DenyReason> {
    if !identity_qualified {
        return Err(DenyReason::IdentityNotQualified);
    }
    if !patient.dmp_active {
        return Err(DenyReason::DmpClosed);
    }
    if patient.feeding_opposition {
        return Err(DenyReason::FeedingOpposition);
    }
    Ok(())
}

/// R3: may the actor open this patient's record at all, in this mode?
pub(crate) fn open(actor: &Actor, mode: &Mode, patient: &PatientAccess) -> Result<(), DenyReason> {
    if !patient.dmp_active {
        return Err(DenyReason::DmpClosed);
    }
    match actor.role {
        Role::Patient | Role::LegalRepresentative => open_patient_side(actor, mode, patient),
        Role::Professional | Role::SamuRegulator => open_professional(actor, mode, patient),
    }
}

fn open_patient_side(
    actor: &Actor,
    mode: &Mode,
    patient: &PatientAccess,
) -> Result<(), DenyReason> {
    match mode {
        Mode::Normal => {}
        Mode::BreakGlass { .. } => return Err(DenyReason::BreakGlassNotProfessional),
        Mode::Regulation => return Err(DenyReason::NotARegulator),
    }
    if actor.role == Role::LegalRepresentative && !patient.legal_representatives.contains(&actor.id)
    {
        return Err(DenyReason::NotARepresentative);
    }
    Ok(())
}

fn open_professional(
    actor: &Actor,
    mode: &Mode,
    patient: &PatientAccess,
) -> Result<(), DenyReason> {
    // Checked before the mode: a block holds "with or without the patient's authorization",
    // and (NOT VERIFIED, safer reading) in break-glass and centre-15 modes too.
    if patient.blocked.contains(&actor.id) {
        return Err(DenyReason::Blocked);
    }
    match mode {
        Mode::Normal => {
            let presumed = patient.informed && patient.care_team.contains(&actor.id);
            if presumed || patient.consents.contains(&actor.id) {
                Ok(())
            } else {
                Err(DenyReason::NoConsent)
            }
        }
        Mode::BreakGlass { justification } => {
            if justification.trim().is_empty() {
                Err(DenyReason::MissingJustification)
            } else if patient.emergency_opposition {
                Err(DenyReason::EmergencyOpposition)
            } else {
                Ok(())
            }
        }
        Mode::Regulation => {
            if actor.role != Role::SamuRegulator {
                Err(DenyReason::NotARegulator)
            } else if patient.emergency_opposition {
                Err(DenyReason::EmergencyOpposition)
            } else {
                Ok(())
            }
        }
    }
}

/// R3 then R4–R6: may the actor see this document?
pub(crate) fn see(
    matrix: &Matrix,
    actor: &Actor,
    mode: &Mode,
    patient: &PatientAccess,
    doc: &DocumentMeta<'_>,
) -> Result<(), DenyReason> {
    open(actor, mode, patient)?;
    match actor.role {
        // R6; the patient side is filtered neither by the matrix nor by the masks.
        Role::Patient if doc.invisible_patient => Err(DenyReason::InvisibleToPatient),
        Role::LegalRepresentative if doc.invisible_rep_legaux => {
            Err(DenyReason::InvisibleToRepresentatives)
        }
        Role::Patient | Role::LegalRepresentative => Ok(()),
        Role::Professional | Role::SamuRegulator => {
            matrix_filter(matrix, actor, doc)?;
            mask_filter(actor, patient, doc)
        }
    }
}

/// R4: the profession × document type matrix.
fn matrix_filter(matrix: &Matrix, actor: &Actor, doc: &DocumentMeta<'_>) -> Result<(), DenyReason> {
    let profession = actor
        .profession
        .as_deref()
        .ok_or(DenyReason::NoProfession)?;
    if matrix.allows(profession, doc.type_code) {
        Ok(())
    } else {
        Err(DenyReason::MatrixForbidden {
            profession: profession.to_owned(),
            type_code: doc.type_code.to_owned(),
        })
    }
}

/// R5: `MASQUE_PS` and patient masks hide a document from professionals, except from its
/// author (RPPS or author organisation), the médecin traitant and those granted the médecin
/// traitant's rights. These exceptions are who the actor is, so they hold in every mode; an
/// emergency mode grants no exception of its own (patient masks hold "even in emergency").
fn mask_filter(
    actor: &Actor,
    patient: &PatientAccess,
    doc: &DocumentMeta<'_>,
) -> Result<(), DenyReason> {
    let patient_masked = patient.masked.contains(doc.record_id);
    if !patient_masked && !doc.masque_ps {
        return Ok(());
    }
    if mask_exempt(actor, patient, doc) {
        return Ok(());
    }
    // The patient's own decision is the one to report when both apply.
    Err(if patient_masked {
        DenyReason::MaskedByPatient
    } else {
        DenyReason::MaskedToProfessionals
    })
}

fn mask_exempt(actor: &Actor, patient: &PatientAccess, doc: &DocumentMeta<'_>) -> bool {
    let is_author = doc.author == Some(actor.id.as_str());
    let same_org = match (actor.organisation.as_deref(), doc.author_organisation) {
        (Some(mine), Some(theirs)) => mine == theirs,
        _ => false,
    };
    let is_mt = patient.medecin_traitant.as_deref() == Some(actor.id.as_str());
    is_author || same_org || is_mt || patient.mt_equivalent.contains(&actor.id)
}

/// Patient-side actions (masks, blocks, consents, médecin traitant, oppositions, access log).
/// Not gated on `dmp_active`: the holder keeps reading the access log of a closed record.
pub(crate) fn manage(
    actor: &Actor,
    patient_ins: &str,
    patient: &PatientAccess,
) -> Result<(), DenyReason> {
    match actor.role {
        Role::Patient if actor.id == patient_ins => Ok(()),
        Role::Patient => Err(DenyReason::NotThePatient),
        Role::LegalRepresentative if patient.legal_representatives.contains(&actor.id) => Ok(()),
        Role::LegalRepresentative => Err(DenyReason::NotARepresentative),
        Role::Professional | Role::SamuRegulator => Err(DenyReason::NotPatientSide),
    }
}
