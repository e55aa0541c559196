//! Patient-side actions: masks, blocks, médecin traitant, consents, oppositions. Each runs in
//! one transaction with its audit entry; the policy decides who may (`can_manage`).

use rusqlite::Connection;

use super::audit;
use super::db::{self, PatientRow};
use super::error::{StoreError, ctx};
use super::policy::{Decision, DenyReason, PatientAccess, Policy};
use super::read::Session;

/// A change to a patient's access settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Masks a record id to professionals (R5); its author and the médecin traitant still see it.
    Mask(String),
    Unmask(String),
    /// Blocks a professional (RPPS) from the whole record (R3).
    Block(String),
    Unblock(String),
    /// Names the médecin traitant (RPPS).
    MedecinTraitant(String),
    /// Gives a professional the médecin traitant's rights (R5).
    MtEquivalent(String),
    /// Explicit consent for a professional outside the care team (R3).
    Consent(String),
    RevokeConsent(String),
    /// Adds a professional to the care team (consent presumed once the patient is informed).
    CareTeam(String),
    /// The patient was informed of the care team's presumed consent.
    Informed,
    /// Records or lifts the oppositions to feeding (R2) and to emergency access (R3).
    Opposition {
        feeding: Option<bool>,
        emergency: Option<bool>,
    },
}

impl Action {
    /// Audit action name and the record ids it concerns.
    fn describe(&self) -> (&'static str, Vec<String>) {
        match self {
            Action::Mask(r) => ("mask", vec![r.clone()]),
            Action::Unmask(r) => ("unmask", vec![r.clone()]),
            Action::Block(_) => ("block", vec![]),
            Action::Unblock(_) => ("unblock", vec![]),
            Action::MedecinTraitant(_) => ("medecin-traitant", vec![]),
            Action::MtEquivalent(_) => ("mt-equivalent", vec![]),
            Action::Consent(_) => ("consent", vec![]),
            Action::RevokeConsent(_) => ("revoke-consent", vec![]),
            Action::CareTeam(_) => ("care-team", vec![]),
            Action::Informed => ("informed", vec![]),
            Action::Opposition { .. } => ("opposition", vec![]),
        }
    }

    /// The professional the action names, recorded in the audit outcome.
    fn target(&self) -> Option<&str> {
        match self {
            Action::Block(p)
            | Action::Unblock(p)
            | Action::MedecinTraitant(p)
            | Action::MtEquivalent(p)
            | Action::Consent(p)
            | Action::RevokeConsent(p)
            | Action::CareTeam(p) => Some(p),
            _ => None,
        }
    }

    fn apply(&self, a: &mut PatientAccess) {
        let s = |x: &String| x.clone();
        match self {
            Action::Mask(r) => {
                a.masked.insert(s(r));
            }
            Action::Unmask(r) => {
                a.masked.remove(r);
            }
            Action::Block(p) => {
                a.blocked.insert(s(p));
            }
            Action::Unblock(p) => {
                a.blocked.remove(p);
            }
            Action::MedecinTraitant(p) => a.medecin_traitant = Some(s(p)),
            Action::MtEquivalent(p) => {
                a.mt_equivalent.insert(s(p));
            }
            Action::Consent(p) => {
                a.consents.insert(s(p));
            }
            Action::RevokeConsent(p) => {
                a.consents.remove(p);
            }
            Action::CareTeam(p) => {
                a.care_team.insert(s(p));
            }
            Action::Informed => a.informed = true,
            Action::Opposition { feeding, emergency } => {
                if let Some(f) = feeding {
                    a.feeding_opposition = *f;
                }
                if let Some(e) = emergency {
                    a.emergency_opposition = *e;
                }
            }
        }
    }
}

/// What [`manage`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Managed {
    Done(PatientAccess),
    Denied(DenyReason),
    /// A mask or unmask of a record this patient does not have.
    UnknownRecord,
}

/// Checks `can_manage`, applies the action, saves, audits (denials too).
pub fn manage(
    conn: &mut Connection,
    policy: &Policy,
    session: &Session,
    patient: &PatientRow,
    action: &Action,
    now: &str,
) -> Result<Managed, StoreError> {
    let tx = conn
        .transaction()
        .map_err(ctx("starting a settings change"))?;
    let (name, record_ids) = action.describe();
    let mut entry = audit::Entry {
        seq: 0,
        at: now.into(),
        actor_id: session.actor.id.clone(),
        role: session.actor.role.label().into(),
        organisation: session.actor.organisation.clone(),
        mode: session.mode.label().into(),
        justification: None,
        action: name.into(),
        patient: patient.ins_value.clone(),
        record_ids,
        outcome: String::new(),
    };
    let decision = policy.can_manage(&session.actor, &patient.ins_value, &patient.access);
    let result = match decision {
        Decision::Deny(reason) => {
            entry.outcome = format!("denied:{}:{}", reason.rule(), reason.code());
            Managed::Denied(reason)
        }
        Decision::Allow => {
            let unknown = match action {
                Action::Mask(r) | Action::Unmask(r) => !db::record_exists(&tx, &patient.id, r)?,
                _ => false,
            };
            if unknown {
                return Ok(Managed::UnknownRecord);
            }
            let mut access = patient.access.clone();
            action.apply(&mut access);
            db::save_access(&tx, &patient.id, &access)?;
            entry.outcome = match action.target() {
                Some(t) => format!("done:{t}"),
                None => "done".into(),
            };
            Managed::Done(access)
        }
    };
    audit::append(&tx, &entry)?;
    tx.commit().map_err(ctx("committing a settings change"))?;
    Ok(result)
}
