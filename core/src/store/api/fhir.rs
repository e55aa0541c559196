//! `GET /fhir/...`: Patient search by INS, searches by patient, `$everything`, as FHIR R4
//! `searchset` Bundles with paging. Every answer is audited, allowed or denied.

use hyper::StatusCode;
use serde_json::{Value, json};

use super::{Reply, fhir_json, forbidden, outcome};
use crate::admin::views::{percent_encode, query_pairs};
use crate::store::RecordStore;
use crate::store::db::{self, PatientRow};
use crate::store::error::StoreError;
use crate::store::index::SEARCHABLE;
use crate::store::policy::{Decision, Mode};
use crate::store::read::{self, DateFilter, Search, Session};

const DEFAULT_COUNT: usize = 50;
const MAX_COUNT: usize = 500;

type Answer = Result<Reply, StoreError>;

pub(super) async fn route(
    store: &RecordStore,
    session: &Session,
    rest: &[&str],
    query: &str,
    base: &str,
) -> Answer {
    let pairs = query_pairs(query);
    let param = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let paging = match Paging::parse(&pairs) {
        Ok(p) => p,
        Err(msg) => return Ok(invalid(msg)),
    };
    match rest {
        ["Patient"] => {
            let Some(identifier) = param("identifier") else {
                return Ok(invalid(
                    "Patient search needs identifier=<INS system>|<INS>".into(),
                ));
            };
            let value = identifier
                .rsplit('|')
                .next()
                .unwrap_or_default()
                .to_string();
            patient_search(store, session, value, base).await
        }
        ["Patient", id] => {
            let id = id.to_string();
            let Some(patient) = patient_by_id(store, id).await? else {
                return Ok(not_found());
            };
            patient_read(store, session, patient, base).await
        }
        ["Patient", id, "$everything"] => {
            let id = id.to_string();
            let Some(patient) = patient_by_id(store, id).await? else {
                return Ok(not_found());
            };
            let search = Search {
                window_start: read::window_start(),
                ..Search::default()
            };
            let link = format!("{base}/Patient/{}/$everything", patient.id);
            run_search(
                store, session, patient, search, paging, &pairs, link, base, true,
            )
            .await
        }
        [rt] if SEARCHABLE.contains(rt) => {
            let pid = param("patient")
                .or_else(|| param("subject"))
                .map(|p| p.trim_start_matches("Patient/").to_string());
            let Some(pid) = pid else {
                return Ok(invalid(format!("{rt} search needs patient=<id>")));
            };
            let Some(patient) = patient_by_id(store, pid).await? else {
                return Ok(fhir_json(
                    StatusCode::OK,
                    &bundle(0, vec![], vec![], &Mode::Normal),
                ));
            };
            let search = match search_from(rt, &pairs) {
                Ok(s) => s,
                Err(msg) => return Ok(invalid(msg)),
            };
            let link = format!("{base}/{rt}");
            run_search(
                store, session, patient, search, paging, &pairs, link, base, false,
            )
            .await
        }
        _ => Ok(not_found()),
    }
}

fn invalid(msg: String) -> Reply {
    outcome(StatusCode::BAD_REQUEST, "invalid", msg, None)
}

fn not_found() -> Reply {
    outcome(
        StatusCode::NOT_FOUND,
        "not-found",
        "no such resource".into(),
        None,
    )
}

async fn patient_by_id(store: &RecordStore, id: String) -> Result<Option<PatientRow>, StoreError> {
    store.run(move |conn, _| db::patient_by_id(conn, &id)).await
}

/// `_count` (default 50, at most 500) and `page` (from 1).
#[derive(Debug, Clone, Copy)]
struct Paging {
    count: usize,
    page: usize,
}

impl Paging {
    fn parse(pairs: &[(String, String)]) -> Result<Paging, String> {
        let mut p = Paging {
            count: DEFAULT_COUNT,
            page: 1,
        };
        for (k, v) in pairs {
            match k.as_str() {
                "_count" => {
                    p.count = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_COUNT).contains(n))
                        .ok_or(format!("_count must be 1..={MAX_COUNT}"))?
                }
                "page" => {
                    p.page = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or("page must be a number from 1")?
                }
                _ => {}
            }
        }
        Ok(p)
    }
}

/// The filters of a search on `rt`: `date` (repeatable, FHIR prefixes), `code`, `type`
/// (document type LOINC), `status` (DocumentReference versions).
fn search_from(rt: &str, pairs: &[(String, String)]) -> Result<Search, String> {
    let mut s = Search {
        types: vec![rt.to_string()],
        window_start: read::window_start(),
        ..Search::default()
    };
    let list = |v: &str| {
        v.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    for (k, v) in pairs {
        match k.as_str() {
            "date" => s.dates.push(
                DateFilter::parse(v).ok_or(format!("date {v:?}: expected e.g. ge2025-01-01"))?,
            ),
            "code" => s.codes.extend(list(v)),
            "type" => s.doc_types.extend(
                list(v)
                    .into_iter()
                    .map(|t| t.rsplit('|').next().unwrap_or_default().to_string()),
            ),
            "status" if rt == "DocumentReference" => {
                for st in list(v) {
                    if !matches!(st.as_str(), "current" | "superseded" | "entered-in-error") {
                        return Err(format!(
                            "status {st:?}: current, superseded or entered-in-error"
                        ));
                    }
                    s.statuses.push(st);
                }
            }
            "patient" | "subject" | "_count" | "page" => {}
            other => return Err(format!("unsupported search parameter {other:?}")),
        }
    }
    Ok(s)
}

/// The bundle's security label for an emergency session (displayed for the whole access).
fn mode_label(mode: &Mode) -> Option<Value> {
    let (code, display) = match mode {
        Mode::Normal => return None,
        Mode::BreakGlass { .. } => ("BTG", "break the glass"),
        Mode::Regulation => ("ETREAT", "emergency treatment"),
    };
    Some(json!({
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
        "code": code, "display": display
    }))
}

fn bundle(total: usize, entries: Vec<Value>, links: Vec<Value>, mode: &Mode) -> Value {
    let mut b = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": crate::clock::now_rfc3339(),
        "total": total,
    });
    // FHIR JSON forbids empty arrays: an empty page has no `entry` (and no `link` when the
    // caller gave none, e.g. the Patient search).
    if !links.is_empty() {
        b["link"] = Value::Array(links);
    }
    if !entries.is_empty() {
        b["entry"] = Value::Array(entries);
    }
    if let Some(label) = mode_label(mode) {
        b["meta"] = json!({ "security": [label] });
    }
    b
}

fn entry(base: &str, resource: Value, mode: &str) -> Value {
    let url = format!(
        "{base}/{}/{}",
        resource["resourceType"].as_str().unwrap_or_default(),
        resource["id"].as_str().unwrap_or_default()
    );
    json!({ "fullUrl": url, "resource": resource, "search": { "mode": mode } })
}

/// The patient as a FHIR resource: the last one a record carried, with the API id.
fn patient_resource(p: &PatientRow) -> Value {
    let mut v = p
        .resource
        .as_deref()
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
        .unwrap_or_else(|| {
            json!({
                "resourceType": "Patient",
                "identifier": [{ "system": p.ins_system, "value": p.ins_value }]
            })
        });
    v["id"] = json!(p.id);
    v
}

async fn patient_search(store: &RecordStore, session: &Session, ins: String, base: &str) -> Answer {
    let s = session.clone();
    let base = base.to_string();
    store
        .run(move |conn, policy| {
            let Some(patient) = db::patient_by_ins(conn, &ins)? else {
                return Ok(fhir_json(StatusCode::OK, &bundle(0, vec![], vec![], &s.mode)));
            };
            let decision = read::open(policy, &s, &patient);
            let now = crate::clock::now_rfc3339();
            read::audit_read(conn, policy, &s, &patient, "search:Patient", vec![], &decision, &now)?;
            Ok(match decision {
                Decision::Deny(r) => forbidden(&r),
                Decision::Allow => {
                    let e = entry(&base, patient_resource(&patient), "match");
                    let link = json!({ "relation": "self", "url": format!("{base}/Patient?identifier={}", percent_encode(&format!("{}|{}", patient.ins_system, patient.ins_value))) });
                    fhir_json(StatusCode::OK, &bundle(1, vec![e], vec![link], &s.mode))
                }
            })
        })
        .await
}

async fn patient_read(
    store: &RecordStore,
    session: &Session,
    patient: PatientRow,
    _base: &str,
) -> Answer {
    let s = session.clone();
    store
        .run(move |conn, policy| {
            let decision = read::open(policy, &s, &patient);
            let now = crate::clock::now_rfc3339();
            read::audit_read(
                conn,
                policy,
                &s,
                &patient,
                "read:Patient",
                vec![],
                &decision,
                &now,
            )?;
            Ok(match decision {
                Decision::Deny(r) => forbidden(&r),
                Decision::Allow => fhir_json(StatusCode::OK, &patient_resource(&patient)),
            })
        })
        .await
}

#[allow(clippy::too_many_arguments)]
async fn run_search(
    store: &RecordStore,
    session: &Session,
    patient: PatientRow,
    search: Search,
    paging: Paging,
    pairs: &[(String, String)],
    link_base: String,
    base: &str,
    with_patient: bool,
) -> Answer {
    let s = session.clone();
    let base = base.to_string();
    let kept: Vec<(String, String)> = pairs.iter().filter(|(k, _)| k != "page").cloned().collect();
    store
        .run(move |conn, policy| {
            let action = if with_patient {
                "read:$everything".to_string()
            } else {
                format!("search:{}", search.types.join(","))
            };
            let now = crate::clock::now_rfc3339();
            let decision = read::open(policy, &s, &patient);
            if let Decision::Deny(r) = &decision {
                read::audit_read(conn, policy, &s, &patient, &action, vec![], &decision, &now)?;
                return Ok(forbidden(r));
            }
            let found = read::search(conn, policy, &s, &patient, &search)?;
            let total = found.resources.len();
            let start = (paging.page - 1).saturating_mul(paging.count).min(total);
            let end = start.saturating_add(paging.count).min(total);
            let page: Vec<(String, Value)> = found.resources[start..end].to_vec();
            read::audit_read(
                conn,
                policy,
                &s,
                &patient,
                &action,
                read::record_ids_of(&page),
                &decision,
                &now,
            )?;
            let url = |n: usize| {
                let mut q: Vec<String> = kept
                    .iter()
                    .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
                    .collect();
                q.push(format!("page={n}"));
                json!({ "relation": "", "url": format!("{link_base}?{}", q.join("&")) })
            };
            let mut links = vec![with_relation(url(paging.page), "self")];
            if end < total {
                links.push(with_relation(url(paging.page + 1), "next"));
            }
            if paging.page > 1 && start > 0 {
                links.push(with_relation(url(paging.page - 1), "previous"));
            }
            let mut entries = Vec::new();
            if with_patient && paging.page == 1 {
                entries.push(entry(&base, patient_resource(&patient), "match"));
            }
            entries.extend(page.into_iter().map(|(_, r)| entry(&base, r, "match")));
            Ok(fhir_json(
                StatusCode::OK,
                &bundle(total, entries, links, &s.mode),
            ))
        })
        .await
}

fn with_relation(mut link: Value, relation: &str) -> Value {
    link["relation"] = json!(relation);
    link
}
