//! The record store end to end (issue #7): the real daemon with the hl7v2-lab and hprim-sante
//! plugins feeds a `record-store` destination from MLLP and the inbox; its FHIR API is called
//! over real HTTP by professionals, the patient and an emergency physician, with tokens of an
//! actors file. Checks: records found by INS; a patient mask hides a document from a
//! professional without rights but not from its author; both reads are in the patient's
//! access log; break-glass is flagged and notified; paging; the default two-year window; the
//! searchset bundles validate (external FHIR validator); an edited audit entry breaks the chain.

use std::time::{Duration, Instant};

use passerelle::store::audit;
use passerelle_tests::daemon::{Setup, free_port};
use passerelle_tests::http::{Reply, request};
use passerelle_tests::mllp::{MllpClient, msa};
use passerelle_tests::{repo, validate_fhir_file, wasm};
use serde_json::Value;

const INS1: &str = "279035121518989";
const INS2: &str = "155059938801282"; // the HPRIM file's patient
const AUTHOR: &str = "801234567897";
const OTHER_AUTHOR: &str = "810000005551";
const DOC_B: &str = "10000000001";
const URGENT: &str = "10000000077";

const T_AUTHOR: &str = "fake-token-author-0000000001";
const T_DOC_B: &str = "fake-token-doctor-b-00000001";
const T_URGENT: &str = "fake-token-urgentist-0000001";
const T_PATIENT1: &str = "fake-token-patient-1-0000001";
const T_PATIENT2: &str = "fake-token-patient-2-0000001";

/// `extra`: header lines (each ending in CRLF).
fn call(port: u16, method: &str, path: &str, token: Option<&str>, extra: &str) -> Reply {
    request(port, method, path, token, extra, "")
}

fn get(port: u16, path: &str, token: &str) -> Value {
    let r = call(port, "GET", path, Some(token), "");
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json()
}

fn post(port: u16, path: &str, token: &str) -> Value {
    let r = call(port, "POST", path, Some(token), "");
    assert_eq!(r.status, 200, "POST {path}: {}", r.body);
    r.json()
}

/// The resources of a searchset, with their type.
fn resources(bundle: &Value) -> Vec<Value> {
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "searchset");
    bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

/// Record ids behind a DocumentReference searchset.
fn doc_ids(bundle: &Value) -> Vec<String> {
    let mut ids: Vec<String> = resources(bundle)
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids
}

fn today() -> String {
    passerelle::clock::now_rfc3339()[..10].replace('-', "")
}

/// An ORU^R01 for patient INS1, ordered (ORC-12) by `rpps`, on `date` (YYYYMMDD).
fn oru(id: &str, rpps: &str, date: &str) -> String {
    let mut orc = vec!["ORC", "RE", "CMD-X^DPI", "FIL-X^SIL"];
    orc.extend(std::iter::repeat_n("", 8));
    let requester =
        format!("{rpps}^MARTIN^JEAN^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^L^^^RPPS");
    orc.push(&requester);
    [
        format!("MSH|^~\\&|LAB|HOSP|PASSERELLE|DMP|{date}120000+0100||ORU^R01^ORU_R01|{id}|P|2.5|||||FRA|UNICODE UTF-8"),
        format!("PID|1||{INS1}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS~IPP123^^^CHU&1.2.250.1.71.4.2.7&ISO^PI||DUPONT^MARIE^^^^^L||19790328|F"),
        orc.join("|").replace("X", id),
        format!("OBR|1|CMD-{id}^DPI|FIL-{id}^SIL|24326-1^Electrolytes panel^LN|||{date}083000+0100|||||||||||||||{date}120000+0100|||F"),
        format!("OBX|1|NM|2823-3^Potassium^LN||4.2|mmol/L^^UCUM|3.5-5.0|N|||F|||{date}081000+0100"),
        format!("OBX|2|NM|2951-2^Sodium^LN||140|mmol/L^^UCUM|135-145|N|||F|||{date}081000+0100"),
    ]
    .join("\r")
}

fn actors_file() -> String {
    let actor = |token: &str, id: &str, role: &str, profession: Option<&str>| {
        let p = profession
            .map(|p| format!("profession = \"{p}\"\norganisation = \"330000001\"\n"))
            .unwrap_or_default();
        format!("[[actors]]\ntoken = \"{token}\"\nid = \"{id}\"\nrole = \"{role}\"\n{p}\n")
    };
    [
        actor(T_AUTHOR, AUTHOR, "professional", Some("medecin")),
        actor(T_DOC_B, DOC_B, "professional", Some("medecin")),
        actor(T_URGENT, URGENT, "professional", Some("medecin")),
        actor(T_PATIENT1, INS1, "patient", None),
        actor(T_PATIENT2, INS2, "patient", None),
    ]
    .concat()
}

/// Polls until `f` returns `Some`, or panics with the daemon's logs.
fn wait_for<T>(what: &str, logs: impl Fn() -> String, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn records_fed_over_mllp_and_the_inbox_are_read_under_the_patients_rules() {
    let api = free_port();
    let extra = format!(
        r#"
[plugins.hprim-sante]
path = "{hprim}"

[sources.hprim-inbox]
type = "inbox"
dir = "inbox"
plugin = "hprim-sante"
content_type = "application/x-hprim-sante"
charset = "UTF-8"
extensions = [".hpr"]
settle_ms = 100

[destinations.records]
type = "record-store"
path = "record-store.db"
accept_test_ins = true

[destinations.records.api]
listen = "127.0.0.1:{api}"
actors = "actors.toml"
"#,
        hprim = wasm("hprim-sante").display()
    );
    let routes = r#"
mode = "fan-out"
unmatched = "hold"
[[route]]
name = "labs"
destinations = ["records"]
[route.match]
kind = "lab-result"
"#;
    let setup = Setup::new(&extra, routes);
    std::fs::write(setup.path("actors.toml"), actors_file()).unwrap();
    std::fs::create_dir_all(setup.path("inbox")).unwrap();
    let mut daemon = setup.start();
    let logs = || daemon_logs(&setup);

    // Feed: two recent results and one from 2019 over MLLP, one HPRIM file into the inbox.
    let mut mllp = MllpClient::connect(setup.mllp_port).unwrap();
    for (id, rpps, date) in [
        ("M1", AUTHOR, today()),
        ("M2", OTHER_AUTHOR, today()),
        ("M3", OTHER_AUTHOR, "20190301".to_string()),
    ] {
        let ack = mllp.send(&oru(id, rpps, &date)).unwrap();
        assert_eq!(msa(&ack).0, "AA", "{ack}");
    }
    let hprim = std::fs::read(repo().join("tests/data/hprim/etoile-utf8-lf.utf8.hpr")).unwrap();
    std::fs::write(setup.path("etoile.tmp"), hprim).unwrap();
    std::fs::rename(setup.path("etoile.tmp"), setup.path("inbox/etoile.hpr")).unwrap();

    // Unauthenticated, or with an unknown token: 401 before anything else.
    let r = call(
        api,
        "GET",
        &format!("/fhir/Patient?identifier=x|{INS1}"),
        None,
        "",
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.head.contains("www-authenticate: bearer"), "{}", r.head);
    let r = call(
        api,
        "GET",
        "/fhir/Patient?identifier=x|1",
        Some("fake-token-nobody-000000001"),
        "",
    );
    assert_eq!(r.status, 401);

    // The patient sees their own record once delivered; a professional without consent is
    // refused, naming the rule.
    let ident1 = format!("urn:oid:1.2.250.1.213.1.4.8%7C{INS1}");
    let pid1 = wait_for("patient 1 in the store", logs, || {
        let b = get(
            api,
            &format!("/fhir/Patient?identifier={ident1}"),
            T_PATIENT1,
        );
        resources(&b)
            .first()
            .and_then(|p| p["id"].as_str().map(str::to_string))
    });
    let r = call(
        api,
        "GET",
        &format!("/fhir/Patient?identifier={ident1}"),
        Some(T_DOC_B),
        "",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["issue"][0]["details"]["text"], "R3", "{}", r.body);
    let path_docs1 = format!("/fhir/DocumentReference?patient={pid1}");
    wait_for("M1 and M2 stored", logs, || {
        (doc_ids(&get(api, &path_docs1, T_PATIENT1)).len() == 2).then_some(())
    });

    // The patient consents to doctor B and the author, names the author médecin traitant.
    for rpps in [DOC_B, AUTHOR] {
        post(api, &format!("/patient/{INS1}/consent/{rpps}"), T_PATIENT1);
    }
    post(
        api,
        &format!("/patient/{INS1}/medecin-traitant/{AUTHOR}"),
        T_PATIENT1,
    );
    // A professional may not change the patient's settings.
    let r = call(
        api,
        "POST",
        &format!("/patient/{INS1}/consent/{URGENT}"),
        Some(T_DOC_B),
        "",
    );
    assert_eq!(r.status, 403, "{}", r.body);

    // Doctor B finds the patient by INS, and both recent documents (not the 2019 one: R9).
    let found = get(api, &format!("/fhir/Patient?identifier={ident1}"), T_DOC_B);
    assert_eq!(found["total"], 1);
    assert_eq!(resources(&found)[0]["id"], pid1.as_str());
    let docs = get(api, &path_docs1, T_DOC_B);
    assert_eq!(docs["total"], 2, "{docs}");
    let by_author = |b: &Value, rpps: &str| -> String {
        resources(b)
            .iter()
            .find(|d| d["author"][0]["identifier"]["value"] == rpps)
            .and_then(|d| d["id"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("no document by {rpps} in {b}"))
    };
    let r1 = by_author(&docs, AUTHOR);
    let r2 = by_author(&docs, OTHER_AUTHOR);
    let all_dates = get(api, &format!("{path_docs1}&date=ge2019-01-01"), T_DOC_B);
    assert_eq!(
        all_dates["total"], 3,
        "the 2019 result is there when asked for"
    );
    let obs = get(
        api,
        &format!("/fhir/Observation?patient={pid1}&code=http://loinc.org%7C2823-3"),
        T_DOC_B,
    );
    assert_eq!(obs["total"], 2, "one potassium per recent result: {obs}");
    let mut bundles = vec![docs.clone(), obs.clone(), found.clone()];

    // The patient masks r1: doctor B no longer sees it (nor its observations); its author does.
    post(api, &format!("/patient/{INS1}/mask/{r1}"), T_PATIENT1);
    let b_docs = get(api, &path_docs1, T_DOC_B);
    assert_eq!(doc_ids(&b_docs), std::slice::from_ref(&r2));
    let b_obs = get(api, &format!("/fhir/Observation?patient={pid1}"), T_DOC_B);
    assert!(
        resources(&b_obs)
            .iter()
            .all(|o| !o["id"].as_str().unwrap_or_default().starts_with(&r1)),
        "{b_obs}"
    );
    assert_eq!(b_obs["total"], 2, "the two observations of r2: {b_obs}");
    let a_docs = get(api, &path_docs1, T_AUTHOR);
    let mut both = vec![r1.clone(), r2.clone()];
    both.sort();
    assert_eq!(doc_ids(&a_docs), both);
    bundles.push(b_docs);

    // Paging: one per page, next then previous.
    let p1 = get(api, &format!("{path_docs1}&_count=1"), T_AUTHOR);
    assert_eq!((p1["total"].as_u64(), resources(&p1).len()), (Some(2), 1));
    let next = p1["link"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
        .and_then(|l| l["url"].as_str())
        .unwrap_or_else(|| panic!("no next link: {p1}"));
    let next_path = &next[next.find("/fhir/").unwrap()..];
    let p2 = get(api, next_path, T_AUTHOR);
    assert_eq!(resources(&p2).len(), 1);
    assert_ne!(resources(&p1)[0]["id"], resources(&p2)[0]["id"]);
    assert!(
        p2["link"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["relation"] == "previous"),
        "{p2}"
    );
    bundles.push(p1);

    // Both reads after the mask are in the patient's access log, with what each got.
    let log = get(api, &format!("/patient/{INS1}/access-log"), T_PATIENT1);
    let entries = log["entries"].as_array().unwrap();
    let reads = |actor: &str| -> Vec<Vec<String>> {
        entries
            .iter()
            .filter(|e| e["actor_id"] == actor && e["action"] == "search:DocumentReference")
            .map(|e| serde_json::from_value(e["record_ids"].clone()).unwrap())
            .collect()
    };
    assert!(reads(DOC_B).contains(&vec![r2.clone()]), "{log}");
    assert!(reads(AUTHOR).contains(&both), "{log}");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "mask" && e["record_ids"][0] == r1.as_str()),
        "{log}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["actor_id"] == DOC_B && e["outcome"] == "denied:R3:no-consent"),
        "{log}"
    );
    // Another patient cannot read it.
    let r = call(
        api,
        "GET",
        &format!("/patient/{INS1}/access-log"),
        Some(T_PATIENT2),
        "",
    );
    assert_eq!(r.status, 403);

    // Break-glass: refused without consent in normal mode and without a justification; with
    // one, allowed, flagged, and notified to the patient and the médecin traitant. The
    // patient's mask still holds.
    let r = call(api, "GET", &path_docs1, Some(T_URGENT), "");
    assert_eq!(r.status, 403);
    let r = call(
        api,
        "GET",
        &path_docs1,
        Some(T_URGENT),
        "X-Access-Mode: break-glass\r\n",
    );
    assert_eq!(r.status, 403);
    assert!(r.body.contains("missing-justification"), "{}", r.body);
    let r = call(
        api,
        "GET",
        &path_docs1,
        Some(T_URGENT),
        "X-Access-Mode: break-glass\r\nX-Break-Glass-Justification: unconscious patient in ER\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.head.contains("x-access-mode: break-glass"), "{}", r.head);
    let bg = r.json();
    assert_eq!(bg["meta"]["security"][0]["code"], "BTG");
    assert_eq!(doc_ids(&bg), std::slice::from_ref(&r2));
    let notes = get(api, &format!("/patient/{INS1}/notifications"), T_PATIENT1);
    let to: Vec<&str> = notes["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["recipient"].as_str())
        .collect();
    assert_eq!(
        to,
        ["patient".to_string(), format!("medecin-traitant:{AUTHOR}")],
        "{notes}"
    );
    bundles.push(bg);

    // The HPRIM file's patient: two reports from the inbox, with their observations.
    let ident2 = format!("urn:oid:1.2.250.1.213.1.4.8%7C{INS2}");
    let pid2 = wait_for("the HPRIM patient", logs, || {
        let b = get(
            api,
            &format!("/fhir/Patient?identifier={ident2}"),
            T_PATIENT2,
        );
        resources(&b)
            .first()
            .and_then(|p| p["id"].as_str().map(str::to_string))
    });
    post(api, &format!("/patient/{INS2}/consent/{DOC_B}"), T_PATIENT2);
    let reports = wait_for("both HPRIM reports", logs, || {
        let b = get(
            api,
            &format!("/fhir/DiagnosticReport?patient={pid2}&date=ge2020"),
            T_DOC_B,
        );
        (b["total"] == 2).then_some(b)
    });
    let everything = get(
        api,
        &format!("/fhir/Patient/{pid2}/$everything?date=ge2020"),
        T_DOC_B,
    );
    let types: Vec<String> = resources(&everything)
        .iter()
        .filter_map(|r| r["resourceType"].as_str().map(str::to_string))
        .collect();
    assert!(
        types.iter().any(|t| t == "Patient")
            && types.iter().filter(|t| *t == "Observation").count() >= 8,
        "{types:?}"
    );
    bundles.push(reports);
    bundles.push(everything);

    // Every searchset is valid FHIR R4 (external validator).
    let file = setup.path("searchsets.ndjson");
    let text: String = bundles.iter().map(|b| format!("{b}\n")).collect();
    std::fs::write(&file, text).unwrap();
    validate_fhir_file(&file, bundles.len());

    assert!(
        daemon.terminate(Duration::from_secs(30)),
        "clean shutdown:\n{}",
        logs()
    );

    // The audit chain holds; changing one entry in the file is detected at that entry, by the
    // library and by the operator's command.
    let (ok, out) = verify_audit(&setup);
    assert!(ok && out.contains("audit chain intact"), "{out}");
    let db = rusqlite::Connection::open(setup.path("data/record-store.db")).unwrap();
    let report = audit::verify_chain(&db).unwrap();
    assert_eq!(report.first_broken, None);
    assert!(report.entries > 20, "{report:?}");
    db.execute_batch(
        "DROP TRIGGER audit_no_update;
         UPDATE audit SET outcome = outcome || ' (edited)' WHERE seq = 7;",
    )
    .unwrap();
    assert_eq!(audit::verify_chain(&db).unwrap().first_broken, Some(7));
    let (ok, out) = verify_audit(&setup);
    assert!(!ok && out.contains("BROKEN at entry 7"), "{out}");
}

/// `passerelle store verify-audit` on the test installation: (exit success, stdout).
fn verify_audit(setup: &Setup) -> (bool, String) {
    let out = std::process::Command::new(passerelle_tests::passerelle_bin())
        .args(["store", "verify-audit", "--config"])
        .arg(setup.config())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (
        out.status.success(),
        text + &String::from_utf8_lossy(&out.stderr),
    )
}

fn daemon_logs(setup: &Setup) -> String {
    passerelle_tests::daemon::logs_in(setup.dir.path())
}
