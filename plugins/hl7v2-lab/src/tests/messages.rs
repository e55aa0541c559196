//! Whole messages: records per OBR, segments, code map, settings, errors, samples, bench.

use super::*;

// --- Structure, settings, determinism ---

#[test]
fn one_record_per_obr_and_deterministic_uuids() {
    let text = message(&[
        obr(&[]),
        "OBX|1|NM|2823-3^K^LN||4|mmol/L|||||F".into(),
        obr(&[(1, "2"), (2, "CMD2"), (4, "718-7^Hb^LN")]),
        "OBX|1|NM|718-7^Hb^LN||13.4|g/dL|||||F".into(),
    ]);
    let a = adapt(&text);
    let b = adapt(&text);
    assert_eq!(a.records.len(), 2);
    assert_eq!(a.records[0].bundle, b.records[0].bundle);
    assert_eq!(a.records[1].bundle, b.records[1].bundle);
    let urls = |r: &Record| -> Vec<String> {
        json(r)["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["fullUrl"].as_str().unwrap().to_string())
            .collect()
    };
    let (u0, u1) = (urls(&a.records[0]), urls(&a.records[1]));
    // The same patient in both records; nothing else shared.
    assert_eq!(u0[0], u1[0]);
    assert!(u0[1..].iter().all(|u| !u1.contains(u)));
    assert_eq!(a.records[1].codes[0].code, "718-7");
    assert_eq!(
        a.records[0].event_time.as_deref(),
        Some("2024-01-31T08:30:00+01:00")
    );
}

#[test]
fn unknown_and_ignored_segments_are_skipped() {
    let out = adapt(&message(&[
        "PD1|||CABINET".into(),
        "NK1|1|DUPONT^JEAN".into(),
        "ZBE|MVT1|20240131|".into(),
        seg("PV1", &[(2, "O")]),
        "PV2|||".into(),
        "ORC|RE|CMD1".into(),
        "PRT|1|AD||OP".into(),
        obr(&[]),
        "TQ1|1||||||20240131".into(),
        "CTD|C".into(),
        "OBX|1|NM|2823-3^K^LN||4|mmol/L|||||F".into(),
        "ZNT|x".into(),
        "FT1|1".into(),
        "CTI|X".into(),
    ]));
    assert_eq!(out.records.len(), 1);
    assert_eq!(resources(&json(&out.records[0]), "Observation").len(), 1);
}

#[test]
fn code_map_adds_loinc() {
    let text = with_obx(&["OBX|1|NM|GLU^Glycémie^L||5.5|mmol/L|||||F"]);
    let out = try_adapt_with(
        r#"{"code_map": {"GLU": {"code": "2345-7", "display": "Glucose"}, "K": "2823-3"}}"#,
        &text,
    )
    .unwrap();
    let r = &out.records[0];
    let obs = one(&json(r), "Observation");
    assert_eq!(obs["code"]["coding"][0]["system"], "http://loinc.org");
    assert_eq!(obs["code"]["coding"][0]["code"], "2345-7");
    assert_eq!(obs["code"]["coding"][1]["code"], "GLU");
    assert!(r.codes.iter().any(|c| c.code == "2345-7"));
    // Unmapped local codes stay local codings.
    let out = adapt(&text);
    let obs = one(&json(&out.records[0]), "Observation");
    assert_eq!(obs["code"]["coding"].as_array().unwrap().len(), 1);
    assert_eq!(obs["code"]["coding"][0]["system"], "urn:passerelle:cs:L");
}

#[test]
fn settings() {
    assert!(configure::<Hl7v2Lab>("{}").is_ok());
    assert!(configure::<Hl7v2Lab>("").is_ok());
    assert!(configure::<Hl7v2Lab>(r#"{"default_timezone": "Europe/Paris"}"#).is_err());
    assert!(configure::<Hl7v2Lab>(r#"{"local_id_system": "not a uri"}"#).is_err());
    assert!(configure::<Hl7v2Lab>(r#"{"unknown": 1}"#).is_err());
    let text = with_obx(&["OBX|1|NM|X^Y^LN||4||||||F|||20240131081000"]);
    let out = try_adapt_with(r#"{"default_timezone": "Z"}"#, &text).unwrap();
    let obs = one(&json(&out.records[0]), "Observation");
    assert_eq!(obs["effectiveDateTime"], "2024-01-31T08:10:00Z");
}

// --- Errors ---

fn adapt_err(text: &[u8]) -> AdaptError {
    lab()
        .adapt(&inbound_message(text, CT, "test"))
        .expect_err("must fail")
}

fn malformed_at(err: AdaptError) -> (String, String) {
    match err {
        AdaptError::Malformed(m) => (m.location, m.reason),
        other => panic!("malformed expected, got {other:?}"),
    }
}

#[test]
fn errors_say_where() {
    let (loc, reason) = malformed_at(adapt_err(b"hello"));
    assert_eq!(loc, "MSH");
    assert!(reason.contains("not an HL7"), "{reason}");
    let (loc, _) = malformed_at(adapt_err(
        b"MSH|^~\\&|A||||||ORU^R01|1|P|2.5\rPID|1||X\rnot a segment\r",
    ));
    assert_eq!(loc, "line 3");
    let err = adapt_err(b"MSH|^~\\&|A||||||ADT^A01|1|P|2.5\rPID|1||X");
    assert!(
        matches!(&err, AdaptError::Unsupported(m) if m == "ORU^R01 expected, got ADT^A01"),
        "{err:?}"
    );
    let (loc, reason) = malformed_at(adapt_err(
        b"MSH|^~\\&|A||||||ORU^R01|1|P|2.5\rOBR|1||X|Y^Z^LN\r",
    ));
    assert_eq!((loc.as_str(), reason.as_str()), ("PID", "no PID segment"));
    let (loc, _) = malformed_at(adapt_err(
        b"MSH|^~\\&|A||||||ORU^R01|1|P|2.5\rPID|1||X\rOBX|1|NM|A^B^LN||1\r",
    ));
    assert_eq!(loc, "OBR");
    let (loc, reason) = malformed_at(adapt_err(
        b"MSH|^~\\&|A||||||ORU^R01|1|P|2.5\rPID|1||||DUPONT\rOBR|1||X|Y^Z^LN\r",
    ));
    assert_eq!(loc, "PID[1]-3");
    assert!(reason.contains("no patient identifier"));
    let bad_ins = with_obx(&[]).replace("279035121518989", "279035121518988");
    let (loc, reason) = malformed_at(adapt_err(bad_ins.as_bytes()));
    assert_eq!(loc, "PID[1]-3");
    assert!(reason.contains("key"), "{reason}");
}

// --- Samples ---

#[test]
fn every_ms_and_linuxforhealth_sample_adapts() {
    for path in [
        "ms-fhir-converter/data/SampleData/Hl7v2/LAB-ORU-1.hl7",
        "ms-fhir-converter/data/SampleData/Hl7v2/LAB-ORU-2.hl7",
        "ms-fhir-converter/data/SampleData/Hl7v2/LRI_2.0-NG_CBC_Typ_Message.hl7",
        "ms-fhir-converter/data/SampleData/Hl7v2/ORU-R01-01.hl7",
        "ms-fhir-converter/data/SampleData/Hl7v2/ORU-R01-RMGEAD.hl7",
        "linuxforhealth-hl7v2-fhir-converter/src/test/resources/ORU-multiline-short.hl7",
        "linuxforhealth-hl7v2-fhir-converter/src/test/resources/ORU-multiline-short-mixed.hl7",
    ] {
        let out = lab()
            .adapt(&inbound_message(&sample(path), CT, "s"))
            .unwrap_or_else(|e| panic!("{path}: {e:?}"));
        assert!(!out.records.is_empty(), "{path}");
        for r in &out.records {
            check_bundle(&r.bundle);
        }
    }
}

/// `cargo test --release -p hl7v2-lab -- --ignored --nocapture bench`: µs per adapt of
/// LAB-ORU-2 (2 OBR × 5 OBX) and of a one-OBR, five-OBX message.
#[test]
#[ignore]
fn bench_adapt() {
    let lab = lab();
    let lab_oru_2 = sample("ms-fhir-converter/data/SampleData/Hl7v2/LAB-ORU-2.hl7");
    let five = with_obx(&[
        "OBX|1|NM|2823-3^Potassium^LN||4.2|mmol/L^^UCUM|3.5-5.0|N|||F|||20240131081000",
        "OBX|2|NM|2951-2^Sodium^LN||140|mmol/L^^UCUM|135-145|N|||F|||20240131081000",
        "OBX|3|NM|2075-0^Chlorure^LN||101|mmol/L^^UCUM|98-107|N|||F|||20240131081000",
        "OBX|4|NM|1963-8^Bicarbonates^LN||25|mmol/L^^UCUM|22-29|N|||F|||20240131081000",
        "OBX|5|NM|2160-0^Créatinine^LN||78|umol/L^^UCUM|45-90|N|||F|||20240131081000",
    ]);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    for (name, payload) in [("LAB-ORU-2", lab_oru_2), ("5-OBX", five.into_bytes())] {
        if !only.is_empty() && only != name {
            continue;
        }
        let msg = inbound_message(&payload, CT, "bench");
        let n: u32 = std::env::var("BENCH_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        for _ in 0..1000 {
            std::hint::black_box(lab.adapt(&msg).unwrap());
        }
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(lab.adapt(&msg).unwrap());
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        println!("{name}: {us:.2} µs/message ({:.0} msg/s)", 1e6 / us);
    }
}
