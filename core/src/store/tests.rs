//! Unit tests of the record store: versions, feed gate, masking through the search path, the
//! audit chain, actors.

use hyper::header::HeaderValue;
use rusqlite::Connection;
use serde_json::json;

use super::actors::Actors;
use super::audit;
use super::db;
use super::manage::{self, Action, Managed};
use super::policy::{Actor, DenyReason, Mode, Policy, Role};
use super::read::{self, DateFilter, Search, Session};
use super::write::{self, PutOutcome};
use crate::record::Record;

const INS: &str = "279035121518989";
const TEST_NS: &str = "urn:oid:1.2.250.1.213.1.4.10";
const AUTHOR: &str = "801234567897";

fn record(id: &str, ins_system: Option<&str>, status: &str, filler: &str, value: f64) -> Record {
    let ins = ins_system.map(|s| json!({ "system": s, "value": INS }));
    let mut patient = json!({ "local_ids": [{ "system": "urn:oid:1.2.3", "value": "IPP1" }] });
    if let Some(ins) = ins {
        patient["ins"] = ins;
    }
    let line = json!({
        "envelope": {
            "id": id, "kind": "lab-result", "source": "lab", "source_message_id": id,
            "position": 0, "patient": patient, "event_time": today(),
            "received_at": "2026-01-01T00:00:00.000Z", "status": status,
            "confidentiality": { "level": "N", "flags": [] },
            "plugin": { "name": "t", "version": "0" }
        },
        "bundle": {
            "resourceType": "Bundle", "type": "collection", "entry": [
                { "fullUrl": "urn:uuid:1", "resource": { "resourceType": "Patient",
                  "identifier": [{ "system": TEST_NS, "value": INS }] } },
                { "fullUrl": "urn:uuid:2", "resource": { "resourceType": "Practitioner",
                  "identifier": [{ "system": "urn:oid:1.2.250.1.71.4.2.1", "value": AUTHOR }] } },
                { "fullUrl": "urn:uuid:3", "resource": { "resourceType": "DiagnosticReport",
                  "identifier": [{ "system": "urn:lab", "value": filler,
                    "type": { "coding": [{ "code": "FILL" }] } }],
                  "status": "final", "code": { "text": "K" }, "subject": { "reference": "urn:uuid:1" } } },
                { "fullUrl": "urn:uuid:4", "resource": { "resourceType": "Observation",
                  "status": "final", "effectiveDateTime": today(),
                  "code": { "coding": [{ "system": "http://loinc.org", "code": "2823-3" }] },
                  "valueQuantity": { "value": value }, "subject": { "reference": "urn:uuid:1" } } }
            ]
        }
    });
    serde_json::from_value(line).unwrap()
}

fn today() -> String {
    crate::clock::now_rfc3339()[..10].to_string()
}

fn conn() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = db::open(&dir.path().join("rs.db")).unwrap();
    (dir, conn)
}

fn put(conn: &mut Connection, r: &Record) -> PutOutcome {
    write::put(
        conn,
        &Policy::with_default_matrix(),
        true,
        r,
        "2026-01-01T00:00:00Z",
    )
    .unwrap()
}

fn professional(id: &str) -> Session {
    Session {
        actor: Actor {
            id: id.into(),
            role: Role::Professional,
            profession: Some("medecin".into()),
            specialty: None,
            organisation: Some("330000001".into()),
        },
        mode: Mode::Normal,
    }
}

fn patient_session() -> Session {
    Session {
        actor: Actor {
            id: INS.into(),
            role: Role::Patient,
            profession: None,
            specialty: None,
            organisation: None,
        },
        mode: Mode::Normal,
    }
}

fn act(conn: &mut Connection, s: &Session, a: Action) -> Managed {
    let p = db::patient_by_ins(conn, INS).unwrap().unwrap();
    manage::manage(
        conn,
        &Policy::with_default_matrix(),
        s,
        &p,
        &a,
        "2026-01-01T00:00:00Z",
    )
    .unwrap()
}

fn visible_records(conn: &Connection, s: &Session, types: &[&str]) -> Vec<String> {
    let p = db::patient_by_ins(conn, INS).unwrap().unwrap();
    let search = Search {
        types: types.iter().map(|t| t.to_string()).collect(),
        window_start: read::window_start(),
        ..Search::default()
    };
    let found = read::search(conn, &Policy::with_default_matrix(), s, &p, &search).unwrap();
    read::record_ids_of(&found.resources)
}

#[test]
fn records_are_idempotent_and_versioned() {
    let (_d, mut c) = conn();
    assert_eq!(
        put(&mut c, &record("r1", Some(TEST_NS), "final", "F1", 4.0)),
        PutOutcome::Stored {
            version: 1,
            state: "current"
        }
    );
    assert_eq!(
        put(&mut c, &record("r1", Some(TEST_NS), "final", "F1", 4.0)),
        PutOutcome::Duplicate
    );
    // Same document (filler F1) under a new message: replaces r1.
    assert_eq!(
        put(&mut c, &record("r2", Some(TEST_NS), "corrected", "F1", 4.5)),
        PutOutcome::Stored {
            version: 2,
            state: "current"
        }
    );
    // Another document of the same patient.
    put(&mut c, &record("r3", Some(TEST_NS), "final", "F2", 3.9));
    let p = db::patient_by_ins(&c, INS).unwrap().unwrap();
    let current: Vec<String> = db::documents(&c, &p.id, false)
        .unwrap()
        .into_iter()
        .map(|d| d.record_id)
        .collect();
    assert_eq!(current, ["r3", "r2"]);
    // A deletion withdraws the current version; the history is kept.
    assert_eq!(
        put(
            &mut c,
            &record("r4", Some(TEST_NS), "entered-in-error", "F1", 4.5)
        ),
        PutOutcome::Stored {
            version: 3,
            state: "withdrawn"
        }
    );
    let all = db::documents(&c, &p.id, true).unwrap();
    let states: Vec<(String, String)> = all
        .iter()
        .map(|d| (d.record_id.clone(), d.state.clone()))
        .collect();
    assert_eq!(
        states,
        [
            ("r4", "withdrawn"),
            ("r3", "current"),
            ("r2", "withdrawn"),
            ("r1", "superseded")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let doc = &all[1];
    assert_eq!(doc.type_code, "11502-2");
    assert_eq!(doc.author.as_deref(), Some(AUTHOR));
}

/// A claim stored in one transaction ends as the same records stored one by one would: the
/// same outcomes (a duplicate inside the batch included), documents, audit trail and an
/// unbroken chain; a record that fails midway is rolled back alone, with what it had already
/// changed (here, superseding the current version), and the next ones are stored.
#[test]
fn a_batch_stores_what_one_by_one_puts_store_and_a_failure_stays_alone() {
    let now = "2026-01-01T00:00:00Z";
    let policy = Policy::with_default_matrix();
    let batch = vec![
        record("r1", Some(TEST_NS), "final", "F1", 4.0),
        record("r1", Some(TEST_NS), "final", "F1", 4.0),
        record("n1", None, "final", "F9", 1.0),
        record("r2", Some(TEST_NS), "corrected", "F1", 4.5),
        record("bad", Some(TEST_NS), "corrected", "F1", 9.9),
        record("r3", Some(TEST_NS), "final", "F2", 3.9),
        record("r4", Some(TEST_NS), "entered-in-error", "F2", 3.9),
    ];
    // A storage failure planted for record "bad", after it has superseded r2: rolled back, r2
    // stays the current version.
    let plant = "CREATE TRIGGER planted BEFORE INSERT ON documents WHEN NEW.record_id = 'bad'
                 BEGIN SELECT RAISE(ABORT, 'planted failure'); END;";
    let (_d1, mut one) = conn();
    one.execute_batch(plant).unwrap();
    let singles: Vec<Option<PutOutcome>> = batch
        .iter()
        .map(|r| write::put(&mut one, &policy, true, r, now).ok())
        .collect();
    let (_d2, mut all) = conn();
    all.execute_batch(plant).unwrap();
    let outcomes = write::put_all(&mut all, &policy, true, &batch, now).unwrap();
    let err = outcomes[4].as_ref().unwrap_err().to_string();
    assert!(err.contains("planted failure"), "{err}");
    let outcomes: Vec<Option<PutOutcome>> = outcomes.into_iter().map(Result::ok).collect();
    assert_eq!(outcomes, singles);
    assert_eq!(
        outcomes,
        [
            Some(PutOutcome::Stored {
                version: 1,
                state: "current"
            }),
            Some(PutOutcome::Duplicate),
            Some(PutOutcome::Refused(DenyReason::IdentityNotQualified)),
            Some(PutOutcome::Stored {
                version: 2,
                state: "current"
            }),
            None,
            Some(PutOutcome::Stored {
                version: 1,
                state: "current"
            }),
            Some(PutOutcome::Stored {
                version: 2,
                state: "withdrawn"
            }),
        ]
    );
    let patient = db::patient_by_ins(&all, INS).unwrap().unwrap();
    let documents = |c: &Connection| -> Vec<(String, i64, String)> {
        db::documents(c, &patient.id, true)
            .unwrap()
            .into_iter()
            .map(|d| (d.record_id, d.version, d.state))
            .collect()
    };
    assert_eq!(documents(&all), documents(&one));
    let mut stored = documents(&all);
    stored.sort();
    assert_eq!(
        stored,
        [
            ("r1", 1, "superseded"),
            ("r2", 2, "current"),
            ("r3", 1, "withdrawn"),
            ("r4", 2, "withdrawn"),
        ]
        .map(|(r, v, s)| (r.to_string(), v, s.to_string()))
    );
    let trail = |c: &Connection| -> Vec<String> {
        audit::for_patient(c, INS)
            .unwrap()
            .into_iter()
            .map(|e| e.outcome)
            .collect()
    };
    assert_eq!(trail(&all), trail(&one));
    assert_eq!(
        trail(&all),
        [
            "stored:v1:current",
            "stored:v2:current",
            "stored:v1:current",
            "stored:v2:withdrawn"
        ]
    );
    let chain = audit::verify_chain(&all).unwrap();
    assert_eq!((chain.entries, chain.first_broken), (4, None));
}

#[test]
fn the_feed_gate_refuses_unqualified_identities_and_oppositions() {
    let (_d, mut c) = conn();
    let policy = Policy::with_default_matrix();
    let out = write::put(
        &mut c,
        &policy,
        true,
        &record("n1", None, "final", "F", 1.0),
        "t",
    )
    .unwrap();
    assert_eq!(out, PutOutcome::Refused(DenyReason::IdentityNotQualified));
    // A test INS is not qualified unless the store is told to accept test namespaces.
    let out = write::put(
        &mut c,
        &policy,
        false,
        &record("n2", Some(TEST_NS), "final", "F", 1.0),
        "t",
    )
    .unwrap();
    assert_eq!(out, PutOutcome::Refused(DenyReason::IdentityNotQualified));
    put(&mut c, &record("r1", Some(TEST_NS), "final", "F1", 1.0));
    assert!(matches!(
        act(
            &mut c,
            &patient_session(),
            Action::Opposition {
                feeding: Some(true),
                emergency: None
            }
        ),
        Managed::Done(_)
    ));
    assert_eq!(
        put(&mut c, &record("r2", Some(TEST_NS), "final", "F2", 1.0)),
        PutOutcome::Refused(DenyReason::FeedingOpposition)
    );
    let log = audit::for_patient(&c, INS).unwrap();
    let outcomes: Vec<&str> = log.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        [
            "refused:identity-not-qualified",
            "stored:v1:current",
            "done",
            "refused:feeding-opposition"
        ]
    );
}

#[test]
fn a_patient_mask_hides_a_document_from_professionals_but_not_its_author() {
    let (_d, mut c) = conn();
    put(&mut c, &record("r1", Some(TEST_NS), "final", "F1", 1.0));
    put(&mut c, &record("r2", Some(TEST_NS), "final", "F2", 1.0));
    let doctor = professional("10000000001");
    let author = professional(AUTHOR);
    let me = patient_session();
    for rpps in ["10000000001", AUTHOR] {
        assert!(matches!(
            act(&mut c, &me, Action::Consent(rpps.into())),
            Managed::Done(_)
        ));
    }
    assert_eq!(
        visible_records(&c, &doctor, &["DocumentReference"]),
        ["r1", "r2"]
    );
    assert_eq!(visible_records(&c, &doctor, &["Observation"]), ["r1", "r2"]);
    // Only the patient may mask; a professional is refused.
    assert_eq!(
        act(&mut c, &doctor, Action::Mask("r1".into())),
        Managed::Denied(DenyReason::NotPatientSide)
    );
    assert_eq!(
        act(&mut c, &me, Action::Mask("nope".into())),
        Managed::UnknownRecord
    );
    assert!(matches!(
        act(&mut c, &me, Action::Mask("r1".into())),
        Managed::Done(_)
    ));
    assert_eq!(
        visible_records(&c, &doctor, &["DocumentReference", "Observation"]),
        ["r2"]
    );
    assert_eq!(
        visible_records(&c, &author, &["DocumentReference"]),
        ["r1", "r2"]
    );
    assert_eq!(visible_records(&c, &me, &[]), ["r1", "r2"]);
    assert!(matches!(
        act(&mut c, &me, Action::Unmask("r1".into())),
        Managed::Done(_)
    ));
    assert_eq!(
        visible_records(&c, &doctor, &["DocumentReference"]),
        ["r1", "r2"]
    );
    // Blocking closes the whole record to that professional.
    assert!(matches!(
        act(&mut c, &me, Action::Block("10000000001".into())),
        Managed::Done(_)
    ));
    let p = db::patient_by_ins(&c, INS).unwrap().unwrap();
    assert_eq!(
        read::open(&Policy::with_default_matrix(), &doctor, &p),
        super::policy::Decision::Deny(DenyReason::Blocked)
    );
}

#[test]
fn emergency_reads_are_notified_to_the_patient_and_the_medecin_traitant() {
    let (_d, mut c) = conn();
    put(&mut c, &record("r1", Some(TEST_NS), "final", "F1", 1.0));
    act(
        &mut c,
        &patient_session(),
        Action::MedecinTraitant(AUTHOR.into()),
    );
    let p = db::patient_by_ins(&c, INS).unwrap().unwrap();
    let mut urgent = professional("10000000009");
    urgent.mode = Mode::BreakGlass {
        justification: "coma, admitted to ER".into(),
    };
    let policy = Policy::with_default_matrix();
    let decision = read::open(&policy, &urgent, &p);
    assert!(decision.is_allowed());
    read::audit_read(
        &c,
        &policy,
        &urgent,
        &p,
        "search:Observation",
        vec!["r1".into()],
        &decision,
        "t",
    )
    .unwrap();
    let notes = db::notifications(&c, INS).unwrap();
    let to: Vec<&str> = notes.iter().map(|n| n.recipient.as_str()).collect();
    assert_eq!(
        to,
        ["patient".to_string(), format!("medecin-traitant:{AUTHOR}")]
    );
    assert!(
        notes[0].message.contains("coma, admitted to ER"),
        "{}",
        notes[0].message
    );
    let last = audit::for_patient(&c, INS).unwrap().pop().unwrap();
    assert_eq!(last.mode, "break-glass");
    assert_eq!(last.justification.as_deref(), Some("coma, admitted to ER"));
}

#[test]
fn the_audit_chain_detects_a_changed_entry() {
    let (dir, mut c) = conn();
    for i in 0..5 {
        put(
            &mut c,
            &record(
                &format!("r{i}"),
                Some(TEST_NS),
                "final",
                &format!("F{i}"),
                1.0,
            ),
        );
    }
    let ok = audit::verify_chain(&c).unwrap();
    assert_eq!((ok.entries, ok.first_broken), (5, None));
    // The triggers refuse changes through SQL…
    assert!(
        c.execute("UPDATE audit SET actor_id = 'x' WHERE seq = 3", [])
            .is_err()
    );
    assert!(c.execute("DELETE FROM audit WHERE seq = 3", []).is_err());
    drop(c);
    // …someone with the file drops them and edits an entry: the chain says where.
    let raw = Connection::open(dir.path().join("rs.db")).unwrap();
    raw.execute_batch(
        "DROP TRIGGER audit_no_update; UPDATE audit SET outcome = 'x' WHERE seq = 3;",
    )
    .unwrap();
    let report = audit::verify_chain(&raw).unwrap();
    assert_eq!(report.first_broken, Some(3));
    // Removing an entry is detected too (a gap, and a broken link).
    let raw2 = Connection::open(dir.path().join("rs.db")).unwrap();
    raw2.execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 2;")
        .unwrap();
    assert_eq!(audit::verify_chain(&raw2).unwrap().first_broken, Some(3));
}

#[test]
fn actors_authenticate_by_token() {
    let actors = Actors::parse(
        r#"
[[actors]]
token = "token-of-the-doctor-0001"
id = "10000000001"
role = "professional"
profession = "medecin"

[[actors]]
token = "token-of-the-patient-001"
id = "279035121518989"
role = "patient"
"#,
    )
    .unwrap();
    let h = |t: &str| HeaderValue::from_str(&format!("Bearer {t}")).unwrap();
    let doc = actors
        .authenticate(Some(&h("token-of-the-doctor-0001")))
        .unwrap();
    assert_eq!(
        (doc.id.as_str(), doc.role),
        ("10000000001", Role::Professional)
    );
    let me = actors
        .authenticate(Some(&h("token-of-the-patient-001")))
        .unwrap();
    assert_eq!(me.role, Role::Patient);
    assert!(
        actors
            .authenticate(Some(&h("token-of-the-doctor-0002")))
            .is_none()
    );
    assert!(actors.authenticate(None).is_none());
    assert!(
        Actors::parse("[[actors]]\ntoken = \"short\"\nid = \"1\"\nrole = \"patient\"").is_err()
    );
    assert!(
        Actors::parse("[[actors]]\ntoken = \"long-enough-token-123\"\nid = \"1\"\nrole = \"boss\"")
            .is_err()
    );
}

#[test]
fn date_filters_compare_at_the_given_precision() {
    let f = |s: &str| DateFilter::parse(s).unwrap();
    assert!(f("ge2025-01-01").matches_for_test("2025-07-12T09:15:00+02:00"));
    assert!(!f("lt2025-01-01").matches_for_test("2025-07-12"));
    assert!(f("2025-07").matches_for_test("2025-07-12"));
    assert!(f("le2025").matches_for_test("2025-12-31"));
    assert!(DateFilter::parse("yesterday").is_none());
}
