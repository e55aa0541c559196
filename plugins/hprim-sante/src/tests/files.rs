//! The files of tests/data/hprim, the libhprim sample, and never panicking on any bytes.

use passerelle_plugin_sdk::fhir::Bundle;

use super::*;

const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/hprim");

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
