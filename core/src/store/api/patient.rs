//! `/patient/{ins}/...`: the patient's (or a legal representative's) own settings and logs.
//!
//! - `POST mask/{record id}`, `unmask/{record id}`
//! - `POST block/{rpps}`, `unblock/{rpps}`, `consent/{rpps}`, `revoke-consent/{rpps}`,
//!   `care-team/{rpps}`, `medecin-traitant/{rpps}`, `mt-equivalent/{rpps}`, `informed`
//! - `POST opposition/{feeding|emergency}/{on|off}`
//! - `GET settings`, `GET access-log`, `GET notifications`

use hyper::StatusCode;
use serde_json::json;

use super::{Reply, forbidden, outcome, who};
use crate::store::RecordStore;
use crate::store::audit::{self, Entry};
use crate::store::db::{self, PatientRow};
use crate::store::error::StoreError;
use crate::store::manage::{self, Action, Managed};
use crate::store::policy::Decision;
use crate::store::read::Session;

pub(super) async fn route(
    store: &RecordStore,
    session: &Session,
    ins: &str,
    rest: &[&str],
    post: bool,
) -> Result<Reply, StoreError> {
    let action = match (post, rest) {
        (true, ["mask", r]) => Action::Mask(r.to_string()),
        (true, ["unmask", r]) => Action::Unmask(r.to_string()),
        (true, ["block", p]) => Action::Block(p.to_string()),
        (true, ["unblock", p]) => Action::Unblock(p.to_string()),
        (true, ["consent", p]) => Action::Consent(p.to_string()),
        (true, ["revoke-consent", p]) => Action::RevokeConsent(p.to_string()),
        (true, ["care-team", p]) => Action::CareTeam(p.to_string()),
        (true, ["medecin-traitant", p]) => Action::MedecinTraitant(p.to_string()),
        (true, ["mt-equivalent", p]) => Action::MtEquivalent(p.to_string()),
        (true, ["informed"]) => Action::Informed,
        (
            true,
            [
                "opposition",
                which @ ("feeding" | "emergency"),
                onoff @ ("on" | "off"),
            ],
        ) => {
            let v = Some(*onoff == "on");
            if *which == "feeding" {
                Action::Opposition {
                    feeding: v,
                    emergency: None,
                }
            } else {
                Action::Opposition {
                    feeding: None,
                    emergency: v,
                }
            }
        }
        (false, [view @ ("settings" | "access-log" | "notifications")]) => {
            return view_of(store, session, ins.to_string(), view).await;
        }
        _ => {
            return Ok(outcome(
                StatusCode::NOT_FOUND,
                "not-found",
                "no such endpoint".into(),
                None,
            ));
        }
    };
    if rest.iter().any(|s| s.is_empty() || s.len() > 200) {
        return Ok(outcome(
            StatusCode::BAD_REQUEST,
            "invalid",
            "empty or over-long argument".into(),
            None,
        ));
    }
    let s = session.clone();
    let ins = ins.to_string();
    store
        .run(move |conn, policy| {
            let Some(patient) = db::patient_by_ins(conn, &ins)? else {
                return Ok(unknown_patient());
            };
            let now = crate::clock::now_rfc3339();
            Ok(match manage::manage(conn, policy, &s, &patient, &action, &now)? {
                Managed::Done(access) => {
                    tracing::debug!(actor = %who(&s.actor), ?action, "patient settings changed");
                    super::json(StatusCode::OK, &json!({ "settings": access }))
                }
                Managed::Denied(r) => forbidden(&r),
                Managed::UnknownRecord => outcome(
                    StatusCode::NOT_FOUND,
                    "not-found",
                    "this patient has no such record".into(),
                    None,
                ),
            })
        })
        .await
}

fn unknown_patient() -> Reply {
    outcome(
        StatusCode::NOT_FOUND,
        "not-found",
        "no such patient".into(),
        None,
    )
}

/// The settings, the access log or the notifications; reading them is itself audited.
async fn view_of(
    store: &RecordStore,
    session: &Session,
    ins: String,
    view: &str,
) -> Result<Reply, StoreError> {
    let s = session.clone();
    let view = view.to_string();
    store
        .run(move |conn, policy| {
            let Some(patient) = db::patient_by_ins(conn, &ins)? else {
                return Ok(unknown_patient());
            };
            let decision = policy.can_manage(&s.actor, &patient.ins_value, &patient.access);
            audit_view(conn, &s, &patient, &view, &decision)?;
            if let Decision::Deny(r) = decision {
                return Ok(forbidden(&r));
            }
            let body = match view.as_str() {
                "settings" => json!({ "settings": patient.access }),
                "access-log" => json!({ "entries": audit::for_patient(conn, &patient.ins_value)? }),
                _ => json!({ "notifications": db::notifications(conn, &patient.ins_value)? }),
            };
            Ok(super::json(StatusCode::OK, &body))
        })
        .await
}

fn audit_view(
    conn: &rusqlite::Connection,
    s: &Session,
    patient: &PatientRow,
    view: &str,
    decision: &Decision,
) -> Result<i64, StoreError> {
    audit::append(
        conn,
        &Entry {
            seq: 0,
            at: crate::clock::now_rfc3339(),
            actor_id: s.actor.id.clone(),
            role: s.actor.role.label().into(),
            organisation: s.actor.organisation.clone(),
            mode: s.mode.label().into(),
            justification: None,
            action: format!("read:{view}"),
            patient: patient.ins_value.clone(),
            record_ids: vec![],
            outcome: match decision {
                Decision::Allow => "allowed".into(),
                Decision::Deny(r) => format!("denied:{}:{}", r.rule(), r.code()),
            },
        },
    )
}
