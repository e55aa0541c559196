//! Reading a patient's record on behalf of an actor: the policy decides what is seen (R3–R6),
//! the default window keeps searches to current versions of the last two years (R9), and every
//! read is audited (R7), emergency reads notified.

use rusqlite::Connection;
use serde_json::{Value, json};

use super::audit::{self, Entry};
use super::db::{self, DocRow, Notification, PatientRow};
use super::error::StoreError;
use super::index::RPPS_SYSTEM;
use super::policy::{Actor, Decision, DenyReason, DocumentMeta, Mode, Policy, default_window};

/// Who reads, and how.
#[derive(Debug, Clone)]
pub struct Session {
    pub actor: Actor,
    pub mode: Mode,
}

/// A FHIR date comparison (`ge2025-01-01`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateFilter {
    pub op: String,
    pub value: String,
}

impl DateFilter {
    /// `ge2025-01-01` → (`ge`, `2025-01-01`); no prefix is `eq`.
    pub fn parse(text: &str) -> Option<DateFilter> {
        let (op, value) = match text.get(..2) {
            Some(p @ ("eq" | "ne" | "gt" | "lt" | "ge" | "le")) => (p, &text[2..]),
            _ => ("eq", text),
        };
        let ok = value.len() >= 4 && value.bytes().take(4).all(|b| b.is_ascii_digit());
        ok.then(|| DateFilter {
            op: op.into(),
            value: value.into(),
        })
    }

    #[cfg(test)]
    pub(crate) fn matches_for_test(&self, date: &str) -> bool {
        self.matches(date)
    }

    /// Compares the date's prefix of the filter's precision (zones ignored: day precision).
    fn matches(&self, date: &str) -> bool {
        let n = self.value.len().min(date.len());
        let (d, v) = (&date[..n], &self.value[..n]);
        match self.op.as_str() {
            "ne" => d != v,
            "gt" => d > v,
            "lt" => d < v,
            "ge" => d >= v,
            "le" => d <= v,
            _ => d == v,
        }
    }
}

/// A search on one patient's record.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Resource types; `DocumentReference` is one per stored document. Empty: every type
    /// (`$everything`).
    pub types: Vec<String>,
    pub dates: Vec<DateFilter>,
    /// `system|code` or `code`, any of (comma-separated in the query).
    pub codes: Vec<String>,
    /// Document type codes (LOINC) of the containing document, any of.
    pub doc_types: Vec<String>,
    /// DocumentReference `status`: `current`, `superseded`, `entered-in-error`; empty: current.
    pub statuses: Vec<String>,
    /// Today minus the default window, `YYYY-MM-DD`; applies when `dates` is empty.
    pub window_start: String,
}

/// A search's matches, before paging.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Resources (ids assigned), newest document first.
    pub resources: Vec<(String, Value)>,
}

/// The first day of the default search window (R9), `YYYY-MM-DD`.
pub fn window_start() -> String {
    let age = default_window().max_age();
    let start = std::time::SystemTime::now()
        .checked_sub(age)
        .unwrap_or(std::time::UNIX_EPOCH);
    humantime::format_rfc3339(start).to_string()[..10].to_string()
}

fn audit_entry(session: &Session, patient: &str, action: &str, now: &str) -> Entry {
    let justification = match &session.mode {
        Mode::BreakGlass { justification } => Some(justification.clone()),
        _ => None,
    };
    Entry {
        seq: 0,
        at: now.into(),
        actor_id: session.actor.id.clone(),
        role: session.actor.role.label().into(),
        organisation: session.actor.organisation.clone(),
        mode: session.mode.label().into(),
        justification,
        action: action.into(),
        patient: patient.into(),
        record_ids: Vec::new(),
        outcome: String::new(),
    }
}

/// Audits a read (allowed or denied) and, for an allowed emergency read, notifies the patient
/// and the médecin traitant. Returns the entry's seq.
#[allow(clippy::too_many_arguments)]
pub fn audit_read(
    conn: &Connection,
    policy: &Policy,
    session: &Session,
    patient: &PatientRow,
    action: &str,
    record_ids: Vec<String>,
    decision: &Decision,
    now: &str,
) -> Result<i64, StoreError> {
    let mut entry = audit_entry(session, &patient.ins_value, action, now);
    entry.record_ids = record_ids;
    entry.outcome = match decision {
        Decision::Allow => "allowed".into(),
        Decision::Deny(r) => format!("denied:{}:{}", r.rule(), r.code()),
    };
    let seq = audit::append(conn, &entry)?;
    if decision.is_allowed() && policy.notify_on(&session.mode) {
        let message = format!(
            "{} access to the record by {} {} ({}) on {}{}",
            session.mode.label(),
            session.actor.role.label(),
            session.actor.id,
            session
                .actor
                .organisation
                .as_deref()
                .unwrap_or("no organisation"),
            now,
            entry
                .justification
                .as_deref()
                .map(|j| format!(": {j}"))
                .unwrap_or_default()
        );
        let mut recipients = vec!["patient".to_string()];
        if let Some(mt) = &patient.access.medecin_traitant {
            recipients.push(format!("medecin-traitant:{mt}"));
        }
        for recipient in recipients {
            let n = Notification {
                at: now.into(),
                recipient,
                audit_seq: seq,
                message: message.clone(),
            };
            db::notify(conn, &patient.ins_value, &n)?;
        }
    }
    Ok(seq)
}

/// The policy's view of a stored document.
pub fn meta(doc: &DocRow) -> DocumentMeta<'_> {
    DocumentMeta {
        record_id: &doc.record_id,
        type_code: &doc.type_code,
        author: doc.author.as_deref(),
        author_organisation: doc.author_org.as_deref(),
        masque_ps: doc.masque_ps,
        invisible_patient: doc.invisible_patient,
        invisible_rep_legaux: doc.invisible_rep,
    }
}

/// May the session open this patient's record at all.
pub fn open(policy: &Policy, session: &Session, patient: &PatientRow) -> Decision {
    policy.can_open_record(
        &session.actor,
        &session.mode,
        &patient.ins_value,
        &patient.access,
    )
}

/// Runs a search (the caller has checked [`open`]): every document passes `can_see`, then the
/// filters. Auditing is the caller's (it knows which page was returned).
pub fn search(
    conn: &Connection,
    policy: &Policy,
    session: &Session,
    patient: &PatientRow,
    search: &Search,
) -> Result<Found, StoreError> {
    let all_versions = !search.statuses.is_empty();
    let mut found = Found::default();
    for doc in db::documents(conn, &patient.id, all_versions)? {
        let state_status = match doc.state.as_str() {
            "withdrawn" => "entered-in-error",
            s => s,
        };
        if all_versions && !search.statuses.iter().any(|s| s == state_status) {
            continue;
        }
        let seen = policy.can_see_record(
            &session.actor,
            &session.mode,
            &patient.ins_value,
            &patient.access,
            &meta(&doc),
        );
        if !seen.is_allowed() {
            continue;
        }
        if !search.doc_types.is_empty() && !search.doc_types.contains(&doc.type_code) {
            continue;
        }
        let wants = |t: &str| search.types.is_empty() || search.types.iter().any(|x| x == t);
        let doc_date = doc
            .event_time
            .clone()
            .unwrap_or_else(|| doc.stored_at.clone());
        let mut candidates: Vec<(String, Value, Option<String>, Vec<String>)> = Vec::new();
        if wants("DocumentReference") {
            let codes = vec![format!("http://loinc.org|{}", doc.type_code)];
            candidates.push((
                doc.record_id.clone(),
                document_reference(&doc, &patient.id),
                Some(doc_date.clone()),
                codes,
            ));
        }
        for r in db::resources(conn, doc.rec, None)? {
            if !wants(&r.resource_type) || r.resource_type == "DocumentReference" {
                continue;
            }
            let Ok(mut value) = serde_json::from_str::<Value>(&r.json) else {
                tracing::warn!(
                    rec = r.rec,
                    idx = r.idx,
                    "record store: an indexed resource does not parse; skipped"
                );
                continue;
            };
            // Record ids are the host's 32 hex digits: `<id>-<index>` is a valid FHIR id.
            let id = format!("{}-{}", doc.record_id, r.idx);
            value["id"] = json!(id);
            for field in ["subject", "patient"] {
                if value.get(field).is_some() {
                    value[field] = json!({ "reference": format!("Patient/{}", patient.id) });
                }
            }
            candidates.push((id, value, r.date.or(Some(doc_date.clone())), r.codes));
        }
        for (id, value, date, codes) in candidates {
            let date = date.unwrap_or_default();
            let in_dates = if search.dates.is_empty() {
                date.get(..10).unwrap_or(&date) >= search.window_start.as_str()
            } else {
                search.dates.iter().all(|f| f.matches(&date))
            };
            let in_codes = search.codes.is_empty()
                || search.codes.iter().any(|c| {
                    codes
                        .iter()
                        .any(|x| x == c || (!c.contains('|') && x.rsplit('|').next() == Some(c)))
                });
            if in_dates && in_codes {
                found.resources.push((id, value));
            }
        }
    }
    Ok(found)
}

/// The record ids behind a page of resources (their id's prefix, or the DocumentReference id).
pub fn record_ids_of(resources: &[(String, Value)]) -> Vec<String> {
    let mut ids: Vec<String> = resources
        .iter()
        .map(|(id, v)| {
            if v["resourceType"] == "DocumentReference" {
                id.clone()
            } else {
                id.rsplit_once('-')
                    .map(|(r, _)| r.to_string())
                    .unwrap_or_default()
            }
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A DocumentReference for one stored version: its DMP type, author, status, visibility.
pub fn document_reference(doc: &DocRow, patient_id: &str) -> Value {
    let status = match doc.state.as_str() {
        "current" => "current",
        "superseded" => "superseded",
        _ => "entered-in-error",
    };
    let mut security = Vec::new();
    for (on, code) in [
        (doc.masque_ps, "MASQUE_PS"),
        (doc.invisible_patient, "INVISIBLE_PATIENT"),
        (doc.invisible_rep, "INVISIBLE_REPRESENTANTS_LEGAUX"),
    ] {
        if on {
            security.push(json!({
                "system": "urn:oid:1.2.250.1.213.1.1.4.13", "code": code
            }));
        }
    }
    let mut v = json!({
        "resourceType": "DocumentReference",
        "id": doc.record_id,
        "meta": { "versionId": doc.version.to_string() },
        "identifier": [{ "system": "urn:passerelle:record-id", "value": doc.record_id }],
        "status": status,
        "type": { "coding": [{ "system": "http://loinc.org", "code": doc.type_code }] },
        "category": [{ "text": doc.kind }],
        "subject": { "reference": format!("Patient/{patient_id}") },
        // RFC 3339 UTC with seconds: a valid FHIR instant.
        "date": doc.stored_at,
        "content": [{ "attachment": {
            "contentType": "application/fhir+json",
            "url": format!("urn:passerelle:record:{}", doc.record_id)
        } }]
    });
    if let Some(author) = &doc.author {
        v["author"] = json!([{ "identifier": { "system": RPPS_SYSTEM, "value": author } }]);
    }
    if !security.is_empty() {
        v["securityLabel"] = json!([{ "coding": security }]);
    }
    if let Some(t) = &doc.event_time {
        v["context"] = json!({ "period": { "start": t } });
    }
    v
}

/// Why a search was refused as a whole.
pub fn deny_text(reason: &DenyReason) -> String {
    format!("{} ({}: {})", reason, reason.rule(), reason.code())
}
