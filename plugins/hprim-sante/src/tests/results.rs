//! Results: analysis codes and LOINC, values by type, units, ranges, flags, statuses.

use super::*;

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
    // The record status of a report status: DiagnosticReportStatus::record_status (SDK).
    assert_eq!(D::Final.record_status(), RecordStatus::Final);
    assert_eq!(D::Corrected.record_status(), RecordStatus::Corrected);
    assert_eq!(D::Partial.record_status(), RecordStatus::Preliminary);
    assert_eq!(D::Cancelled.record_status(), RecordStatus::Cancelled);
    assert_eq!(
        D::EnteredInError.record_status(),
        RecordStatus::EnteredInError
    );
    assert_eq!(D::Unknown.record_status(), RecordStatus::Unknown);
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
