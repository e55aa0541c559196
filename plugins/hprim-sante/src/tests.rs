//! Native unit tests: every reading and mapping rule, on inline files and on the files of
//! `tests/data/hprim/`.

use passerelle_plugin_sdk::fhir::Bundle;
use serde_json::{Value, json};

use super::*;

const H: &str = r"H|~^\&|RES1.HPR||LAB1~Laboratoire Un||ORU|||REQ1~Clinique||P|H2.2~C|202401151030";
const P: &str = "P|1|IPP1|LABP1||DURAND~Rémi||19800101|M";
const OBR: &str = "OBR|1|D1|L1|GLY~Glycémie~L|||202401150800||||||||||||||||||F";
const OBX: &str = "OBX|1|NM|GLY~Glycémie~L||5.2|mmol/l|4.1 - 6.1|N|||F|||202401150900";

const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/hprim");

fn lab(settings: &str) -> HprimSante {
    configure::<HprimSante>(settings).unwrap_or_else(|e| panic!("settings {settings}: {e}"))
}

/// ISO-8859-1 bytes of a text (every char must be ≤ U+00FF).
fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("Latin-1 character"))
        .collect()
}

/// Lines joined with CRLF, in ISO-8859-1.
fn file(lines: &[&str]) -> Vec<u8> {
    latin1(&(lines.join("\r\n") + "\r\n"))
}

fn message(bytes: &[u8]) -> InboundMessage {
    inbound_message(bytes, "application/x-hprim-sante", "test")
}

fn adapt_with(settings: &str, bytes: &[u8]) -> Result<Adapted, AdaptError> {
    lab(settings).adapt(&message(bytes))
}

fn adapt(lines: &[&str]) -> Adapted {
    adapt_with("{}", &file(lines)).unwrap_or_else(|e| panic!("{e:?}"))
}

/// The malformed error's location and reason.
fn refused(result: Result<Adapted, AdaptError>) -> (String, String) {
    match result {
        Err(AdaptError::Malformed(m)) => (m.location, m.reason),
        Err(other) => panic!("expected malformed, got {other:?}"),
        Ok(a) => panic!("expected malformed, got {} records", a.records.len()),
    }
}

fn bundle(r: &Record) -> Value {
    serde_json::from_str(&r.bundle).expect("bundle JSON")
}

fn resources(r: &Record, resource_type: &str) -> Vec<Value> {
    bundle(r)["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .filter(|res| res["resourceType"] == resource_type)
        .collect()
}

fn one(r: &Record, resource_type: &str) -> Value {
    let mut all = resources(r, resource_type);
    assert_eq!(all.len(), 1, "{resource_type} in {}", r.bundle);
    all.remove(0)
}

/// The OBX observations (not the patient comments).
fn results(r: &Record) -> Vec<Value> {
    resources(r, "Observation")
        .into_iter()
        .filter(|o| o["code"]["coding"][0]["code"] != map::COMMENT.0)
        .collect()
}

/// Every record's bundle is structurally sound (SDK check) and references resolve.
fn check(adapted: &Adapted) {
    for r in &adapted.records {
        let b: Bundle = serde_json::from_str(&r.bundle).expect("bundle");
        assert!(b.problems().is_empty(), "{:?}\n{}", b.problems(), r.bundle);
    }
}

fn read(name: &str) -> Vec<u8> {
    let path = format!("{DATA_DIR}/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// OBX records of a file, by an independent split (lines starting with `OBX` + separator).
fn count_obx(bytes: &[u8]) -> usize {
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    let text = text.trim_start_matches("ï»¿");
    let sep = text.chars().nth(1).unwrap_or('|');
    text.split(['\r', '\n'])
        .filter(|l| l.starts_with(&format!("OBX{sep}")))
        .count()
}

// --- Delimiters, lines, records ---

#[test]
fn delimiters_are_read_from_the_header() {
    let d = parse::Delims::from_header(r"H|~^\&|F.HPR").unwrap();
    assert_eq!((d.field, d.component, d.repetition), ('|', '~', '^'));
    assert_eq!((d.escape, d.subcomponent), ('\\', '&'));
    let d = parse::Delims::from_header(r"H|\^&~|CLIR949.hpr").unwrap();
    assert_eq!(d.encoding_characters(), r"\^&~");
    assert_eq!((d.component, d.repetition, d.escape), ('\\', '^', '&'));
    let d = parse::Delims::from_header(r"H!^~\&").unwrap();
    assert_eq!((d.field, d.component, d.repetition), ('!', '^', '~'));
}

#[test]
fn bad_delimiters_are_refused() {
    for (header, why) in [
        (r"H|~^~&|F.HPR", "not 5 distinct"),
        (r"H|~^\|F.HPR", "not 5 distinct"),
        (r"H|~^", "must start with H"),
        (r"H|~^\A|", "not an ASCII punctuation"),
        (r"H|~^\ |", "not an ASCII punctuation"),
        (r"H|~^\&#|", "exactly 4 delimiters"),
        ("H|~^\\é|", "not an ASCII punctuation"),
    ] {
        let (location, reason) = refused(adapt_with("{}", &file(&[header, P, OBR, OBX, "L|1"])));
        assert_eq!(location, "line 1 (H-2)", "{header}");
        assert!(reason.contains(why), "{header}: {reason}");
    }
}

#[test]
fn a_file_starts_with_its_h_record() {
    let (location, reason) = refused(adapt_with("{}", &file(&[P, OBR, OBX, "L|1"])));
    assert_eq!(location, "line 1 (P)");
    assert!(reason.contains("H (header)"), "{reason}");
    for empty in [&b""[..], b"\r\n\r\n", b"  \n\x1a"] {
        let (location, reason) = refused(adapt_with("{}", empty));
        assert_eq!(location, "line 1");
        assert!(reason.contains("empty file"), "{reason}");
    }
    // Blank lines before the H record are fine; line numbers still count them.
    let mut bytes = b"\r\n".to_vec();
    bytes.extend(file(&[H, P, OBR, "OBX|1|NM|||5", "L|1"]));
    assert_eq!(refused(adapt_with("{}", &bytes)).0, "line 5 (OBX-3)");
}

#[test]
fn line_ends_cr_lf_and_crlf_give_the_same_records() {
    let lines = [H, P, OBR, OBX, "C|1|L|note", "L|1"];
    let outputs: Vec<Vec<String>> = ["\r", "\n", "\r\n"]
        .iter()
        .map(|eol| {
            let bytes = latin1(&(lines.join(eol) + eol));
            let out = adapt_with("{}", &bytes).unwrap();
            out.records.iter().map(|r| r.bundle.clone()).collect()
        })
        .collect();
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
    // Mixed, with a missing final line end.
    let mixed = latin1(&format!("{H}\r{P}\n{OBR}\r\n{OBX}\r\nC|1|L|note\nL|1"));
    let out = adapt_with("{}", &mixed).unwrap();
    assert_eq!(out.records[0].bundle, outputs[0][0]);
}

#[test]
fn continuation_records_are_joined_before_splitting() {
    let out = adapt(&[
        H,
        "P|1|IPP1|LABP1||DUR",
        "A|AND~Rémi||19800101|M",
        "OBR|1|D1|L1|GLY~Glyc",
        "A|émie~L|||202401150800||||||||||||||||||F",
        "OBX|1|TX|COM~Commentaire~L||première ligne et ",
        "A|suite^seconde ligne|||||||F",
        "L|1",
    ]);
    let r = &out.records[0];
    let patient = one(r, "Patient");
    assert_eq!(patient["name"][0]["family"], "DURAND");
    assert_eq!(patient["birthDate"], "1980-01-01");
    assert_eq!(one(r, "DiagnosticReport")["code"]["text"], "Glycémie");
    let obs = &results(r)[0];
    assert_eq!(obs["valueString"], "première ligne et suite\nseconde ligne");
    assert_eq!(obs["status"], "final");
    // A problem in a continued record is reported at the record's first line.
    let (location, _) = refused(adapt_with(
        "{}",
        &file(&[H, P, OBR, "OBX|1|NM|", "A|||5.2", "L|1"]),
    ));
    assert_eq!(location, "line 4 (OBX-3)");
}

#[test]
fn comments_go_to_the_record_before_them() {
    let out = adapt(&[
        H,
        "C|1|L|after H: nothing to attach to",
        P,
        "C|1|L|Patient à jeun",
        "C|2|L|sous AVK",
        OBR,
        "C|1|L|Conclusion ligne 1^ligne 2",
        OBX,
        "C|1|L|Contrôlé",
        "C|2|L|",
        "ZZ|1|unknown",
        "C|1|L|about ZZ: skipped",
        "L|1",
    ]);
    let r = &out.records[0];
    let comments: Vec<Value> = resources(r, "Observation")
        .into_iter()
        .filter(|o| o["code"]["coding"][0]["code"] == map::COMMENT.0)
        .collect();
    let texts: Vec<&str> = comments
        .iter()
        .filter_map(|c| c["valueString"].as_str())
        .collect();
    assert_eq!(texts, ["Patient à jeun", "sous AVK"]);
    assert_eq!(
        comments[0]["code"]["coding"][0]["system"],
        "http://loinc.org"
    );
    let report = one(r, "DiagnosticReport");
    assert_eq!(report["conclusion"], "Conclusion ligne 1\nligne 2");
    let obs = &results(r)[0];
    assert_eq!(obs["note"], json!([{"text": "Contrôlé"}]));
    // The comment observations are not results of the report.
    assert_eq!(report["result"].as_array().unwrap().len(), 1);
}

#[test]
fn unknown_record_types_are_skipped() {
    let out = adapt(&[H, "Q|1|query", P, "M|1|manufacturer", OBR, OBX, "ZX", "L|1"]);
    assert_eq!(out.records.len(), 1);
    assert_eq!(results(&out.records[0]).len(), 1);
}

#[test]
fn structure_errors_name_the_record() {
    let cases: [(&[&str], &str, &str); 6] = [
        (
            &[H, P, OBX, OBR, "L|1"],
            "line 3 (OBX)",
            "before any request",
        ),
        (
            &[H, OBR, P, OBX, "L|1"],
            "line 2 (OBR)",
            "before any patient",
        ),
        (
            &[H, P, OBR, OBX, P, OBX, "L|1"],
            "line 6 (OBX)",
            "before any request",
        ),
        (&[H, P, OBR, OBX, "L|1", OBX], "line 6 (OBX)", "after the L"),
        (&[H, P, OBR, OBX, H, "L|1"], "line 5 (H)", "second H"),
        (&[H, P, OBR, OBX], "line 4 (OBX)", "truncated"),
    ];
    for (lines, location, why) in cases {
        let (loc, reason) = refused(adapt_with("{}", &file(lines)));
        assert_eq!(loc, location, "{lines:?}");
        assert!(reason.contains(why), "{lines:?}: {reason}");
    }
}

#[test]
fn truncated_files_are_refused_unless_accepted() {
    let lines = [H, P, OBR, OBX, "OBX|2|NM|CREA~Créat"];
    let (location, reason) = refused(adapt_with("{}", &file(&lines)));
    assert_eq!(location, "line 5 (OBX)");
    assert!(reason.contains("no L (end) record"), "{reason}");
    let out = adapt_with(r#"{"accept_truncated": true}"#, &file(&lines)).unwrap();
    assert_eq!(results(&out.records[0]).len(), 2);
    // Trailing ^Z and blank lines after L are fine.
    let mut bytes = file(&[H, P, OBR, OBX, "L|1"]);
    bytes.extend(b"\r\n\x1a");
    assert_eq!(adapt_with("{}", &bytes).unwrap().records.len(), 1);
}

#[test]
fn only_oru_files_are_handled() {
    let adm = H.replace("|ORU|", "|ADM|");
    match adapt_with("{}", &file(&[&adm, P, "L|1"])) {
        Err(AdaptError::Unsupported(why)) => assert!(why.contains("ADM"), "{why}"),
        other => panic!("{other:?}"),
    }
    // An empty H-7 is read as ORU.
    let none = H.replace("|ORU|", "||");
    let out = adapt_with("{}", &file(&[&none, P, OBR, OBX, "L|1"])).unwrap();
    assert_eq!(out.message_type.as_deref(), Some("ORU"));
}

#[test]
fn a_file_without_requests_gives_no_record() {
    let out = adapt(&[H, "L|1"]);
    assert!(out.records.is_empty());
    let out = adapt(&[H, P, "C|1|L|rien", "P|2|IPP2", OBR, OBX, "L|1"]);
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].patient.local_ids[0].value, "IPP2");
}

// --- Charsets ---

#[test]
fn latin1_by_default_utf8_when_configured() {
    let out = adapt(&[H, P, OBR, OBX, "L|1"]);
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "Rémi"
    );
    let utf8 = [H, P, OBR, OBX, "L|1"].join("\n");
    let out = adapt_with(r#"{"charset": "UTF-8"}"#, utf8.as_bytes()).unwrap();
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "Rémi"
    );
    // UTF-8 read as Latin-1 (the default) is mojibake, but not an error.
    let out = adapt_with("{}", utf8.as_bytes()).unwrap();
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "RÃ©mi"
    );
    let out = adapt_with(r#"{"charset": "auto"}"#, utf8.as_bytes()).unwrap();
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "Rémi"
    );
    let out = adapt_with(r#"{"charset": "auto"}"#, &file(&[H, P, OBR, OBX, "L|1"])).unwrap();
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "Rémi"
    );
}

#[test]
fn the_source_charset_wins_over_the_setting() {
    let utf8 = [H, P, OBR, OBX, "L|1"].join("\r");
    let mut m = message(utf8.as_bytes());
    m.charset = Some("UTF-8".into());
    let out = lab(r#"{"charset": "ISO-8859-1"}"#).adapt(&m).unwrap();
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "Rémi"
    );
    let mut m = message(&file(&[H, P, OBR, OBX, "L|1"]));
    m.charset = Some("ISO-8859-1".into());
    let out = lab(r#"{"charset": "UTF-8"}"#).adapt(&m).unwrap();
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "Rémi"
    );
    // An unknown source charset falls back to the setting.
    m.charset = Some("EBCDIC".into());
    let out = lab("{}").adapt(&m).unwrap();
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "Rémi"
    );
}

#[test]
fn invalid_utf8_when_utf8_is_forced_names_the_line() {
    let bytes = file(&[H, P, OBR, OBX, "L|1"]);
    let (location, reason) = refused(adapt_with(r#"{"charset": "UTF-8"}"#, &bytes));
    assert_eq!(location, "line 2 (P)");
    assert!(reason.contains("invalid UTF-8 at byte"), "{reason}");
    let mut m = message(&latin1(&[H, "P|1|IPP1", OBR, OBX, "L|1"].join("\n")));
    m.charset = Some("utf8".into());
    assert_eq!(refused(lab("{}").adapt(&m)).0, "line 3 (OBR)");
}

#[test]
fn a_bom_means_utf8() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend([H, P, OBR, OBX, "L|1"].join("\r\n").as_bytes());
    let out = adapt_with("{}", &bytes).unwrap();
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "Rémi"
    );
    let mut bad = b"\xEF\xBB\xBF".to_vec();
    bad.extend(file(&[H, P, OBR, OBX, "L|1"]));
    assert_eq!(refused(adapt_with("{}", &bad)).0, "line 2 (P)");
}

#[test]
fn escape_sequences_use_the_file_delimiters() {
    let out = adapt(&[
        H,
        P,
        OBR,
        r"OBX|1|ST|T~Test~L||a\S\b \R\ c \E\ d \T\ e\.br\f \F\ g \X41\|||||F",
        "L|1",
    ]);
    assert_eq!(
        results(&out.records[0])[0]["valueString"],
        "a~b ^ c \\ d & e\nf | g A"
    );
}

// --- Patient ---

#[test]
fn patient_identity_and_demographics() {
    let out = adapt(&[
        H,
        "P|1|IPP1^IPP1B|LABP1|X3|DUPONT~Hélène~Marie~~MME|DURAND|19790328|F||12 rue des Écoles~Bât. B~Vélizy~~78140~FRANCE||0139000000^0600000000",
        OBR,
        OBX,
        "L|1",
    ]);
    let r = &out.records[0];
    let p = one(r, "Patient");
    assert_eq!(
        p["name"],
        json!([
            {"use": "official", "family": "DURAND", "given": ["Hélène", "Marie"]},
            {"use": "usual", "family": "DUPONT", "given": ["Hélène", "Marie"], "prefix": ["MME"]}
        ])
    );
    assert_eq!(p["gender"], "female");
    assert_eq!(p["birthDate"], "1979-03-28");
    assert_eq!(
        p["address"],
        json!([{"line": ["12 rue des Écoles", "Bât. B"], "city": "Vélizy", "postalCode": "78140", "country": "FRANCE"}])
    );
    assert_eq!(p["telecom"].as_array().unwrap().len(), 2);
    let ids: Vec<(String, String)> = r
        .patient
        .local_ids
        .iter()
        .map(|i| (i.system.clone(), i.value.clone()))
        .collect();
    assert_eq!(
        ids,
        [
            (
                "urn:passerelle:hprim:REQ1:patient".to_string(),
                "IPP1".to_string()
            ),
            (
                "urn:passerelle:hprim:REQ1:patient".to_string(),
                "IPP1B".to_string()
            ),
            (
                "urn:passerelle:hprim:LAB1:patient".to_string(),
                "LABP1".to_string()
            ),
            (
                "urn:passerelle:hprim:LAB1:patient-id-3".to_string(),
                "X3".to_string()
            ),
        ]
    );
    assert!(r.patient.ins.is_none());
    assert_eq!(p["identifier"][0]["type"]["coding"][0]["code"], "PI");
    assert!(p["identifier"][3].get("type").is_none());
    // Configured systems; a lone name has no use; same birth name → one official name.
    let out = adapt_with(
        r#"{"requester_id_system": "urn:oid:1.2.250.1.71.4.2.7", "lab_id_system": "urn:oid:1.2.3.4"}"#,
        &file(&[H, "P|1|IPP1|LABP1||MARTIN~Paul|MARTIN||M", OBR, OBX, "P|2|IPP2|||ROUX~Léa|||U", OBR, OBX, "L|1"]),
    )
    .unwrap();
    let r = &out.records[0];
    assert_eq!(r.patient.local_ids[0].system, "urn:oid:1.2.250.1.71.4.2.7");
    assert_eq!(r.patient.local_ids[1].system, "urn:oid:1.2.3.4");
    let p = one(r, "Patient");
    assert_eq!(
        p["name"],
        json!([{"use": "official", "family": "MARTIN", "given": ["Paul"]}])
    );
    assert_eq!(p["gender"], "male");
    let p = one(&out.records[1], "Patient");
    assert_eq!(p["name"], json!([{"family": "ROUX", "given": ["Léa"]}]));
    assert_eq!(p["gender"], "unknown");
    assert!(p.get("birthDate").is_none());
}

#[test]
fn an_ins_is_recognised_by_its_oid() {
    // value~OID in P-4.
    let out = adapt(&[
        H,
        "P|1|IPP1||279035121518989~1.2.250.1.213.1.4.10|DURAND~Rémi",
        OBR,
        OBX,
        "L|1",
    ]);
    let r = &out.records[0];
    let ins = r.patient.ins.as_ref().expect("INS");
    assert_eq!(
        (ins.kind, ins.value.as_str()),
        (InsKind::NirTest, "279035121518989")
    );
    let p = one(r, "Patient");
    assert_eq!(p["identifier"][1]["system"], "urn:oid:1.2.250.1.213.1.4.10");
    assert_eq!(
        p["identifier"][1]["type"]["coding"][0]["code"],
        "INS-NIR-TEST"
    );
    assert_eq!(r.patient.local_ids.len(), 1);
    // HL7-like CX with the authority's OID as a subcomponent, in any id field; a NIR wins over
    // an earlier NIA; other OIDs become urn:oid: systems.
    let out = adapt(&[
        H,
        "P|1|IPP9~~~CHU&1.2.250.1.999&ISO~PI|155059938801282~urn:oid:1.2.250.1.213.1.4.9|279035121518989~~~ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO~INS",
        OBR,
        OBX,
        "L|1",
    ]);
    let r = &out.records[0];
    let ins = r.patient.ins.as_ref().unwrap();
    assert_eq!(
        (ins.kind, ins.value.as_str()),
        (InsKind::Nir, "279035121518989")
    );
    assert_eq!(r.patient.local_ids[0].system, "urn:oid:1.2.250.1.999");
    assert_eq!(
        resources(r, "Patient")[0]["identifier"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // A 15-digit number without OID is a local identifier, not an INS.
    let out = adapt(&[H, "P|1|IPP1||279035121518989|DURAND", OBR, OBX, "L|1"]);
    assert!(out.records[0].patient.ins.is_none());
    // A bad key is refused.
    let (location, reason) = refused(adapt_with(
        "{}",
        &file(&[
            H,
            "P|1|IPP1||279035121518988~1.2.250.1.213.1.4.8",
            OBR,
            OBX,
            "L|1",
        ]),
    ));
    assert_eq!(location, "line 2 (P-4)");
    assert!(reason.contains("INS"), "{reason}");
}

#[test]
fn a_patient_needs_an_identifier() {
    let (location, reason) = refused(adapt_with(
        "{}",
        &file(&[H, "P|1||~~||DURAND", OBR, OBX, "L|1"]),
    ));
    assert_eq!(location, "line 2 (P-2)");
    assert!(reason.contains("no patient identifier"), "{reason}");
    let bad = format!("P|1|IPP{}", '\u{90}');
    assert_eq!(
        refused(adapt_with("{}", &file(&[H, &bad, OBR, OBX, "L|1"]))).0,
        "line 2 (P-2)"
    );
}

// --- Codes ---

#[test]
fn local_codes_and_the_loinc_table() {
    let settings =
        r#"{"loinc": {"GLY": "2345-7", "CREA": {"code": "2160-0", "display": "Creatinine"}}}"#;
    let out = adapt_with(
        settings,
        &file(&[
            H,
            P,
            "OBR|1|D1|L1|GLY~Glycémie~L^CREA~Créatinine~L",
            OBX,
            "OBX|2|NM|CREA~Créatinine~L||80|µmol/l|||||F",
            "OBX|3|NM|K~Potassium~L||4.1|mmol/l|||||F",
            "OBX|4|NM|2823-3~Potassium~LN||4.1|mmol/l|||||F",
            "L|1",
        ]),
    )
    .unwrap();
    let r = &out.records[0];
    let obs = results(r);
    assert_eq!(
        obs[0]["code"],
        json!({"coding": [
            {"system": "http://loinc.org", "code": "2345-7"},
            {"system": "urn:passerelle:hprim:LAB1:analysis", "code": "GLY", "display": "Glycémie"}
        ], "text": "Glycémie"})
    );
    assert_eq!(obs[1]["code"]["coding"][0]["display"], "Creatinine");
    assert_eq!(obs[2]["code"]["coding"].as_array().unwrap().len(), 1);
    assert_eq!(
        obs[2]["code"]["coding"][0]["system"],
        "urn:passerelle:hprim:LAB1:analysis"
    );
    assert_eq!(obs[3]["code"]["coding"][0]["system"], "http://loinc.org");
    // Several analyses in OBR-4: the generic lab report code with their labels.
    let report = one(r, "DiagnosticReport");
    assert_eq!(report["code"]["coding"][0]["code"], "11502-2");
    assert_eq!(report["code"]["text"], "Glycémie, Créatinine");
    // Routing codes: the report's, then the results' LOINC codes once each.
    let codes: Vec<&str> = r.codes.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(codes, ["11502-2", "2345-7", "2160-0", "2823-3"]);
    // One analysis: its own code; a configured local system.
    let out = adapt_with(
        r#"{"local_code_system": "urn:oid:1.2.250.1.999.2", "loinc": {"GLY": "2345-7"}}"#,
        &file(&[H, P, OBR, OBX, "L|1"]),
    )
    .unwrap();
    let report = one(&out.records[0], "DiagnosticReport");
    assert_eq!(report["code"]["coding"][0]["code"], "2345-7");
    assert_eq!(
        report["code"]["coding"][1]["system"],
        "urn:oid:1.2.250.1.999.2"
    );
    // No OBR-4: the generic code.
    let out = adapt(&[H, P, "OBR|1|D1|L1", OBX, "L|1"]);
    assert_eq!(
        one(&out.records[0], "DiagnosticReport")["code"]["coding"][0]["code"],
        "11502-2"
    );
}

#[test]
fn an_obx_needs_an_analysis_code() {
    let (location, reason) = refused(adapt_with(
        "{}",
        &file(&[H, P, OBR, OBX, "OBX|2|NM|~~L||5", "L|1"]),
    ));
    assert_eq!(location, "line 5 (OBX-3)");
    assert!(reason.contains("no analysis code"), "{reason}");
    // A label without code is enough.
    let out = adapt(&[H, P, OBR, "OBX|1|NM|~Glycémie||5", "L|1"]);
    assert_eq!(
        results(&out.records[0])[0]["code"],
        json!({"text": "Glycémie"})
    );
}

// --- Values ---

#[test]
fn values_by_type() {
    let out = adapt(&[
        H,
        P,
        OBR,
        "OBX|1|NM|A~A~L||5,9|mmol/l|||||F",
        "OBX|2|NM|B~B~L||< 0.5|g/l|||||F",
        "OBX|3|NM|C~C~L||>=1000|UI/l|||||F",
        "OBX|4|NM|D~D~L||ininterprétable|g/l|||||F",
        "OBX|5|CE|E~E~L||POS~Positif~L|||||F",
        "OBX|6|ST|F~F~L||Légèrement hémolysé|||||F",
        "OBX|7|TX|G~G~L||ligne 1^ligne 2^|||||F",
        "OBX|8|DT|H~H~L||20240115|||||F",
        "OBX|9|FIC|I~I~L||GALAXIE~AL213202.j1~TXT|||||F",
        "OBX|10|NM|J~J~L|||g/l|||||I",
        "OBX|11||K~K~L||12.50|%|||||F",
        "OBX|12|GN|L~L~L||E. coli~souche 2|||||F",
        "OBX|13|NM|M~M~L||12^14|g/l|||||F",
        "OBX|14|NM|N~N~L||3|croix|||||F",
        "L|1",
    ]);
    let obs = results(&out.records[0]);
    assert_eq!(obs.len(), 14);
    assert_eq!(
        obs[0]["valueQuantity"],
        json!({"value": 5.9, "unit": "mmol/l", "system": "http://unitsofmeasure.org", "code": "mmol/L"})
    );
    assert_eq!(obs[1]["valueQuantity"]["comparator"], "<");
    assert_eq!(obs[1]["valueQuantity"]["value"], json!(0.5));
    assert_eq!(obs[2]["valueQuantity"]["comparator"], ">=");
    assert_eq!(obs[2]["valueQuantity"]["code"], "[IU]/L");
    assert_eq!(obs[3]["valueString"], "ininterprétable");
    assert_eq!(obs[4]["valueCodeableConcept"]["coding"][0]["code"], "POS");
    assert_eq!(obs[4]["valueCodeableConcept"]["text"], "Positif");
    assert_eq!(obs[5]["valueString"], "Légèrement hémolysé");
    assert_eq!(obs[6]["valueString"], "ligne 1\nligne 2");
    assert_eq!(obs[7]["valueDateTime"], "2024-01-15");
    assert!(obs[8].get("valueString").is_none());
    assert_eq!(
        obs[8]["dataAbsentReason"]["coding"][0]["code"],
        "unsupported"
    );
    assert!(
        obs[8]["note"][0]["text"]
            .as_str()
            .unwrap()
            .contains("AL213202.j1")
    );
    assert!(obs[9].get("valueQuantity").is_none());
    assert_eq!(obs[9]["status"], "registered");
    assert_eq!(obs[10]["valueQuantity"]["value"], json!(12.5));
    assert!(out.records[0].bundle.contains(r#""value":12.50"#));
    assert_eq!(obs[11]["valueString"], "E. coli souche 2");
    assert_eq!(obs[12]["valueString"], "12\n14");
    assert_eq!(
        obs[13]["valueQuantity"],
        json!({"value": 3, "unit": "croix"})
    );
}

#[test]
fn units_to_ucum() {
    for (written, ucum) in [
        ("g/l", Some("g/L")),
        ("G/l", Some("10*9/L")),
        ("T/l", Some("10*12/L")),
        ("µmol/l", Some("umol/L")),
        ("\u{3bc}mol/l", Some("umol/L")),
        ("UI/l", Some("[IU]/L")),
        ("mUI/l", Some("m[IU]/L")),
        ("%", Some("%")),
        ("fl", Some("fL")),
        ("mmHg", Some("mm[Hg]")),
        ("croix", None),
        ("", None),
    ] {
        assert_eq!(map::Unit::read(written).ucum, ucum, "{written}");
    }
}

#[test]
fn reference_ranges() {
    let u = map::Unit::read("mmol/l");
    let rr = |t: &str| serde_json::to_value(map::reference_range(t, &u)).unwrap();
    let q = |v: Value| json!({"value": v, "unit": "mmol/l", "system": "http://unitsofmeasure.org", "code": "mmol/L"});
    assert_eq!(
        rr("10 - 40"),
        json!({"low": q(json!(10)), "high": q(json!(40)), "text": "10 - 40"})
    );
    assert_eq!(rr("3,5-5,1")["low"], q(json!(3.5)));
    assert_eq!(rr("0,35 à 1,50")["high"]["value"], json!(1.50));
    assert_eq!(rr("-2 - 2")["low"]["value"], json!(-2));
    assert_eq!(rr("< 5"), json!({"high": q(json!(5)), "text": "< 5"}));
    assert_eq!(rr(">60"), json!({"low": q(json!(60)), "text": ">60"}));
    assert_eq!(rr("négatif"), json!({"text": "négatif"}));
    assert_eq!(rr("  "), Value::Null);
}

#[test]
fn abnormal_flags_to_interpretation() {
    for flag in [
        "L", "H", "LL", "HH", "<", ">", "N", "A", "AA", "U", "D", "B", "W", "R", "I", "S", "MS",
        "VS",
    ] {
        let cc = map::interpretation(flag).unwrap();
        assert_eq!(cc.coding[0].code.as_deref(), Some(flag));
        assert_eq!(
            cc.coding[0].system.as_deref(),
            Some("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation")
        );
    }
    assert_eq!(
        map::interpretation("h").unwrap().coding[0].code.as_deref(),
        Some("H")
    );
    // The whole table of the v2 adapter (the SDK's), displays included; its v2-only codes
    // keep the v2 system.
    let ns = map::interpretation("ns").unwrap();
    assert_eq!(ns.coding[0].code.as_deref(), Some("NS"));
    assert_eq!(ns.coding[0].display.as_deref(), Some("Non-susceptible"));
    assert_eq!(
        map::interpretation("TOX").unwrap().coding[0]
            .system
            .as_deref(),
        Some("http://terminology.hl7.org/CodeSystem/v2-0078")
    );
    assert_eq!(
        map::interpretation("??").unwrap().text.as_deref(),
        Some("??")
    );
    assert!(map::interpretation(" ").is_none());
    let out = adapt(&[H, P, OBR, "OBX|1|NM|A~A~L||9|g/l||H^A|||F", "L|1"]);
    assert_eq!(
        results(&out.records[0])[0]["interpretation"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

// --- Statuses ---

#[test]
fn result_statuses() {
    use passerelle_plugin_sdk::fhir::ObservationStatus as O;
    for (code, status) in [
        ("F", O::Final),
        ("U", O::Final),
        ("P", O::Preliminary),
        ("R", O::Preliminary),
        ("C", O::Corrected),
        ("I", O::Registered),
        ("D", O::EnteredInError),
        ("X", O::Cancelled),
    ] {
        assert_eq!(map::observation_status_of(code), Some(status), "{code}");
    }
    assert_eq!(map::observation_status_of("Z"), None);
    // Unknown code → unknown; empty → OBR-25's; a cancelled result has no value, with reason.
    let out = adapt(&[
        H,
        P,
        "OBR|1|D1|L1|A~A~L|||||||||||||||||||||P",
        "OBX|1|NM|A~A~L||1|g/l|||||Z",
        "OBX|2|NM|B~B~L||1|g/l|||||",
        "OBX|3|NM|C~C~L|||g/l|||||X",
        "L|1",
    ]);
    let obs = results(&out.records[0]);
    assert_eq!(obs[0]["status"], "unknown");
    assert_eq!(obs[1]["status"], "preliminary");
    assert_eq!(obs[2]["status"], "cancelled");
    assert_eq!(
        obs[2]["dataAbsentReason"]["coding"][0]["code"],
        "not-performed"
    );
}

#[test]
fn report_and_record_statuses() {
    use passerelle_plugin_sdk::fhir::{DiagnosticReportStatus as D, ObservationStatus as O};
    assert_eq!(map::report_status("F", &[O::Final]), D::Final);
    assert_eq!(
        map::report_status("F", &[O::Final, O::Corrected]),
        D::Corrected
    );
    assert_eq!(
        map::report_status("F", &[O::EnteredInError]),
        D::EnteredInError
    );
    assert_eq!(map::report_status("P", &[O::Final]), D::Preliminary);
    assert_eq!(map::report_status("C", &[]), D::Corrected);
    assert_eq!(map::report_status("X", &[]), D::Cancelled);
    assert_eq!(map::report_status("I", &[]), D::Registered);
    assert_eq!(map::report_status("", &[]), D::Unknown);
    assert_eq!(map::report_status("", &[O::Final, O::Cancelled]), D::Final);
    assert_eq!(
        map::report_status("", &[O::Final, O::Registered]),
        D::Partial
    );
    assert_eq!(map::report_status("", &[O::Preliminary]), D::Preliminary);
    assert_eq!(map::report_status("", &[O::Registered]), D::Registered);
    assert_eq!(map::report_status("", &[O::Cancelled]), D::Cancelled);
    assert_eq!(
        map::report_status("", &[O::EnteredInError]),
        D::EnteredInError
    );
    assert_eq!(map::record_status(D::Final), RecordStatus::Final);
    assert_eq!(map::record_status(D::Corrected), RecordStatus::Corrected);
    assert_eq!(map::record_status(D::Partial), RecordStatus::Preliminary);
    assert_eq!(map::record_status(D::Cancelled), RecordStatus::Cancelled);
    assert_eq!(
        map::record_status(D::EnteredInError),
        RecordStatus::EnteredInError
    );
    assert_eq!(map::record_status(D::Unknown), RecordStatus::Unknown);
    let out = adapt(&[
        H,
        P,
        OBR,
        "OBX|1|NM|A~A~L||1|g/l|||||C",
        "OBR|2|D2|L2|B~B~L",
        "OBX|1|NM|B~B~L||1|g/l|||||P",
        "L|1",
    ]);
    assert_eq!(out.records[0].status, RecordStatus::Corrected);
    assert_eq!(
        one(&out.records[0], "DiagnosticReport")["status"],
        "corrected"
    );
    assert_eq!(out.records[1].status, RecordStatus::Preliminary);
}

// --- Times, ids, determinism ---

#[test]
fn dates_and_time_zones() {
    // Europe/Paris by default: January is +01:00, July +02:00.
    let out = adapt(&[
        H,
        P,
        "OBR|1|D1|L1|A~A~L|||202407150800|||||||202407150830|SANG~Sang|||||||202407151200",
        "OBX|1|NM|A~A~L||1|g/l|||||F|||202407150930",
        "OBX|2|NM|B~B~L||1|g/l|||||F",
        "L|1",
    ]);
    let r = &out.records[0];
    assert_eq!(r.event_time.as_deref(), Some("2024-07-15T08:00:00+02:00"));
    let report = one(r, "DiagnosticReport");
    assert_eq!(report["effectiveDateTime"], "2024-07-15T08:00:00+02:00");
    assert_eq!(report["issued"], "2024-07-15T12:00:00+02:00");
    let obs = results(r);
    assert_eq!(obs[0]["effectiveDateTime"], "2024-07-15T09:30:00+02:00");
    assert_eq!(obs[1]["effectiveDateTime"], "2024-07-15T08:00:00+02:00");
    let specimen = one(r, "Specimen");
    assert_eq!(specimen["receivedTime"], "2024-07-15T08:30:00+02:00");
    assert_eq!(
        specimen["collection"]["collectedDateTime"],
        "2024-07-15T08:00:00+02:00"
    );
    assert_eq!(specimen["type"]["text"], "Sang");
    assert_eq!(obs[0]["specimen"], report["specimen"][0]);
    // A fixed offset; OBR-22 empty: issued is the file's H-14.
    let out = adapt_with(
        r#"{"default_timezone": "-04:00"}"#,
        &file(&[H, P, OBR, OBX, "L|1"]),
    )
    .unwrap();
    let report = one(&out.records[0], "DiagnosticReport");
    assert_eq!(report["effectiveDateTime"], "2024-01-15T08:00:00-04:00");
    assert_eq!(report["issued"], "2024-01-15T10:30:00-04:00");
    // Invalid dates are left out.
    let out = adapt(&[
        H,
        "P|1|IPP1||||||19801345",
        "OBR|1|D1|L1|A~A~L|||2024011",
        OBX,
        "L|1",
    ]);
    assert!(one(&out.records[0], "Patient").get("birthDate").is_none());
    assert!(
        out.records[0]
            .event_time
            .as_deref()
            .unwrap()
            .starts_with("2024-01-15T10:30:00")
    );
}

#[test]
fn source_message_id_and_determinism() {
    let bytes = file(&[H, P, OBR, OBX, "P|2|IPP2", OBR, OBX, "L|1"]);
    let a = adapt_with("{}", &bytes).unwrap();
    let b = adapt_with("{}", &bytes).unwrap();
    assert_eq!(
        a.source_message_id.as_deref(),
        Some("LAB1:RES1.HPR@202401151030")
    );
    assert_eq!(a.message_type.as_deref(), Some("ORU"));
    assert_eq!(a.records.len(), 2);
    for (x, y) in a.records.iter().zip(&b.records) {
        assert_eq!(x.bundle, y.bundle);
    }
    // Different files, different UUIDs.
    let other = file(&[&H.replace("RES1", "RES2"), P, OBR, OBX, "L|1"]);
    let c = adapt_with("{}", &other).unwrap();
    assert_ne!(
        bundle(&a.records[0])["entry"][0]["fullUrl"],
        bundle(&c.records[0])["entry"][0]["fullUrl"]
    );
    // No file name nor time: no id (the host hashes the payload); still deterministic.
    let bare = file(&[r"H|~^\&|||LAB1||ORU", P, OBR, OBX, "L|1"]);
    let d1 = adapt_with("{}", &bare).unwrap();
    let d2 = adapt_with("{}", &bare).unwrap();
    assert_eq!(d1.source_message_id, None);
    assert_eq!(d1.records[0].bundle, d2.records[0].bundle);
}

#[test]
fn the_report_carries_identifiers_and_performer() {
    let out = adapt(&[H, P, "OBR|1|idech~|~20428E9575|A~A~L", OBX, "L|1"]);
    let report = one(&out.records[0], "DiagnosticReport");
    assert_eq!(
        report["identifier"],
        json!([
            {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}]},
             "system": "urn:passerelle:hprim:REQ1:request", "value": "idech"},
            {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "FILL"}]},
             "system": "urn:passerelle:hprim:LAB1:request", "value": "20428E9575"}
        ])
    );
    assert_eq!(
        report["performer"],
        json!([{"type": "Organization", "display": "Laboratoire Un"}])
    );
    assert_eq!(report["category"][0]["coding"][0]["code"], "LAB");
}

#[test]
fn settings_are_checked() {
    for (settings, why) in [
        (r#"{"charset": "EBCDIC"}"#, "settings.charset"),
        (r#"{"default_timezone": "CET"}"#, "default_timezone"),
        (r#"{"loinc": {"GLY": "glucose"}}"#, "not a LOINC code"),
        (r#"{"loinc": {"": "2345-7"}}"#, "empty local code"),
        (r#"{"local_code_system": "my codes"}"#, "not a URI"),
        (r#"{"lab_id_system": "labo"}"#, "needs a scheme"),
        (r#"{"unknown": 1}"#, "unknown field"),
    ] {
        let err = configure::<HprimSante>(settings).err().unwrap_or_default();
        assert!(err.contains(why), "{settings}: {err}");
    }
    assert!(configure::<HprimSante>("").is_ok());
    assert!(
        configure::<HprimSante>(r#"{"charset": "ISO-8859-15", "default_timezone": "Z"}"#).is_ok()
    );
}

// --- Files of tests/data/hprim and the public sample ---

/// (file, charset of the source) of every valid test file.
const VALID: &[(&str, Option<&str>)] = &[
    ("labo-iso8859-crlf.hpr", None),
    ("multi-patients-cr.hpr", None),
    ("etoile-utf8-lf.utf8.hpr", Some("UTF-8")),
    ("flags-statuses-bom.hpr", None),
];

#[test]
fn the_test_files_adapt() {
    let settings =
        r#"{"loinc": {"GLY": "2345-7", "CREA": "2160-0", "K": "2823-3", "HB": "718-7"}}"#;
    for (name, charset) in VALID {
        let bytes = read(name);
        let mut m = message(&bytes);
        m.charset = charset.map(str::to_string);
        let out = lab(settings)
            .adapt(&m)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        check(&out);
        let observations: usize = out.records.iter().map(|r| results(r).len()).sum();
        assert_eq!(observations, count_obx(&bytes), "{name}");
        assert!(out.source_message_id.is_some(), "{name}");
        for r in &out.records {
            assert!(matches!(r.kind, RecordKind::LabResult));
            let text = &r.bundle;
            assert!(
                !text.contains('\u{fffd}') && !text.contains("Ã"),
                "{name}: bad accents"
            );
        }
    }
}

#[test]
fn the_iso8859_file() {
    let out = adapt_with(
        r#"{"loinc": {"GLY": "2345-7"}}"#,
        &read("labo-iso8859-crlf.hpr"),
    )
    .unwrap();
    assert_eq!(out.records.len(), 2);
    let r = &out.records[0];
    assert_eq!(r.patient.local_ids[0].value, "IPP00123");
    assert_eq!(
        one(r, "Patient")["address"][0]["city"],
        "Vélizy-Villacoublay"
    );
    assert_eq!(
        resources(r, "Observation").len(),
        3,
        "two results and a patient comment"
    );
    assert_eq!(r.codes[0].code, "11502-2");
    assert!(r.codes.iter().any(|c| c.code == "2345-7"));
    let obs = results(&out.records[1]);
    assert_eq!(obs[2]["valueQuantity"]["comparator"], "<");
    assert_eq!(
        obs[4]["valueCodeableConcept"]["text"],
        "Groupe A Rhésus positif"
    );
    assert_eq!(
        obs[5]["valueString"],
        "Anisocytose modérée. Présence de quelques schizocytes.\nContrôle conseillé dans 1 mois."
    );
    assert_eq!(
        one(&out.records[1], "DiagnosticReport")["conclusion"],
        "Frottis relu par le biologiste"
    );
}

#[test]
fn the_multi_patient_file() {
    let out = adapt_with("{}", &read("multi-patients-cr.hpr")).unwrap();
    let ids: Vec<&str> = out
        .records
        .iter()
        .map(|r| r.patient.local_ids[0].value.as_str())
        .collect();
    assert_eq!(ids, ["40012", "40013", "40013", "IPP777"]);
    assert_eq!(
        out.source_message_id.as_deref(),
        Some("CASA:CLIR949.hpr@201911051814")
    );
    let ins = out.records[1].patient.ins.as_ref().unwrap();
    assert_eq!(
        (ins.kind, ins.value.as_str()),
        (InsKind::NirTest, "248017512312368")
    );
    assert_eq!(
        out.records[3].patient.local_ids[0].system,
        "urn:oid:1.2.250.1.999.1.1"
    );
    assert_eq!(
        results(&out.records[0])[0]["note"][0]["text"],
        "Rapport Na\\K = 30 & contrôle OK"
    );
    let p = one(&out.records[1], "Patient");
    assert_eq!(
        p["name"][0],
        json!({"use": "official", "family": "LEROY", "given": ["Élise", "Anne"]})
    );
    assert_eq!(
        one(&out.records[0], "Patient")["address"][0]["city"],
        "Lyon"
    );
}

#[test]
fn the_malformed_files_say_where() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("truncated.hpr", None, "line 5 (OBX)"),
        ("wrong-charset.hpr", Some("UTF-8"), "line 2 (P)"),
        ("no-header.hpr", None, "line 1 (P)"),
        ("bad-delimiters.hpr", None, "line 1 (H-2)"),
        ("obx-before-obr.hpr", None, "line 3 (OBX)"),
        ("obr-before-patient.hpr", None, "line 2 (OBR)"),
        ("no-patient-id.hpr", None, "line 2 (P-2)"),
        ("obx-without-code.hpr", None, "line 4 (OBX-3)"),
        ("bad-ins-key.hpr", None, "line 2 (P-4)"),
        ("record-after-end.hpr", None, "line 6 (OBX)"),
        ("second-header.hpr", None, "line 5 (H)"),
    ];
    for (name, charset, location) in cases {
        let mut m = message(&read(&format!("malformed/{name}")));
        m.charset = charset.map(str::to_string);
        let (loc, _) = refused(lab("{}").adapt(&m));
        assert_eq!(&loc, location, "{name}");
    }
}

#[test]
fn the_libhprim_sample() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/samples/libhprim/extracted/HPRIMSParserTest_testHprim_2_1.hpr"
    );
    let Ok(bytes) = std::fs::read(path) else {
        eprintln!("SKIPPED: {path} not found");
        return;
    };
    let out = adapt_with("{}", &bytes).unwrap();
    check(&out);
    assert_eq!(
        out.source_message_id.as_deref(),
        Some("PO:Test1.HPR@201204292059")
    );
    assert_eq!(out.records.len(), 1);
    let r = &out.records[0];
    assert_eq!(results(r).len(), 3);
    let report = one(r, "DiagnosticReport");
    assert_eq!(report["status"], "final");
    assert_eq!(report["code"]["coding"][0]["code"], "11502-2");
    assert_eq!(report["effectiveDateTime"], "2012-04-28T14:12:00+02:00");
    let obs = results(r);
    assert_eq!(obs[0]["note"][0]["text"], "Anemie macrocytaire");
    assert_eq!(obs[1]["code"]["text"], "Hematocrite");
    assert_eq!(obs[1]["valueQuantity"]["code"], "%");
    assert_eq!(
        obs[2]["dataAbsentReason"]["coding"][0]["code"],
        "unsupported"
    );
    let p = one(r, "Patient");
    assert_eq!(p["birthDate"], "1937-03-25");
    assert_eq!(p["address"][0]["city"], "PARIS");
}

/// Whatever the bytes, adapting returns (never panics): every prefix of every test file, and
/// files with bytes flipped.
#[test]
fn never_panics() {
    let adapter = lab(r#"{"loinc": {"GLY": "2345-7"}}"#);
    let mut files: Vec<Vec<u8>> = VALID.iter().map(|(n, _)| read(n)).collect();
    files.push(file(&[H, P, OBR, OBX, "L|1"]));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for bytes in &files {
        for end in 0..=bytes.len() {
            let _ = adapter.adapt(&message(&bytes[..end]));
        }
        for _ in 0..300 {
            let mut b = bytes.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed as usize) % b.len();
                b[i] = [b'|', b'~', b'^', b'\\', b'&', b'\r', b'A', 0xe9, 0xff, b'<']
                    [(seed >> 32) as usize % 10];
            }
            let mut m = message(&b);
            m.charset = Some(if seed & 1 == 0 { "UTF-8" } else { "auto" }.into());
            let _ = adapter.adapt(&m);
            let _ = adapter.adapt(&message(&b));
        }
    }
}
