//! Reference ranges, interpretation, result and report statuses, NTE notes, the OBR-4 code.

use super::*;

// --- Ranges, interpretation, statuses, notes ---

#[test]
fn reference_ranges() {
    let ranges = |r: &str| {
        let obs = observation(&format!("OBX|1|NM|X^Y^LN||4|mmol/L^^UCUM|{r}||||F"));
        obs["referenceRange"][0].clone()
    };
    for text in ["3.5-5.0", "3.5 - 5.0", "3.5 to 5.0"] {
        let r = ranges(text);
        assert_eq!(r["low"]["value"], 3.5, "{text}");
        assert_eq!(r["high"]["value"].to_string(), "5.0", "{text}");
        assert_eq!(r["high"]["code"], "mmol/L");
        assert!(r.get("text").is_none());
    }
    let r = ranges("<5");
    assert_eq!(r["high"]["value"], 5);
    assert!(r.get("low").is_none());
    assert_eq!(r["text"], "<5");
    let r = ranges(">10");
    assert_eq!(r["low"]["value"], 10);
    let r = ranges("-2 - 2");
    assert_eq!(r["low"]["value"], -2);
    let r = ranges("négatif");
    assert_eq!(r, serde_json::json!({"text": "négatif"}));
}

#[test]
fn interpretation_codes_follow_the_concept_map() {
    let obs = observation("OBX|1|NM|X^Y^LN||9|mmol/L||HH~A|||F");
    let i = obs["interpretation"].as_array().unwrap();
    assert_eq!(i.len(), 2);
    assert_eq!(
        i[0]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    );
    assert_eq!(i[0]["coding"][0]["code"], "HH");
    assert_eq!(i[0]["coding"][0]["display"], "Critical high");
    assert_eq!(i[1]["coding"][0]["code"], "A");
    // Inactive v2 code: kept in the v2 table; unknown: text.
    let obs = observation("OBX|1|NM|X^Y^LN||9|mmol/L||TOX~ZZ|||F");
    assert_eq!(
        obs["interpretation"][0]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0078"
    );
    assert_eq!(obs["interpretation"][1]["text"], "ZZ");
}

#[test]
fn observation_statuses() {
    let cases = [
        ("F", "final"),
        ("P", "preliminary"),
        ("C", "corrected"),
        ("A", "amended"),
        ("D", "entered-in-error"),
        ("W", "entered-in-error"),
        ("X", "cancelled"),
        ("I", "registered"),
        ("R", "preliminary"),
        ("S", "preliminary"),
        ("U", "final"),
        ("", "unknown"),
    ];
    for (code, status) in cases {
        let obs = observation(&format!("OBX|1|NM|X^Y^LN||4|mmol/L|||||{code}"));
        assert_eq!(obs["status"], status, "OBX-11 {code:?}");
    }
    // Pending: no value, no absent reason; cannot be obtained: absent reason.
    let obs = observation("OBX|1|NM|11156-7^LEUKOCYTES^LN||||||||I|");
    assert!(obs.get("valueQuantity").is_none());
    assert!(obs.get("dataAbsentReason").is_none());
    let obs = observation("OBX|1|NM|11156-7^LEUKOCYTES^LN||||||||X|");
    assert_eq!(
        obs["dataAbsentReason"]["coding"][0]["code"],
        "not-performed"
    );
}

#[test]
fn report_and_record_statuses() {
    let status = |obr25: &str, obx11: &[&str]| {
        let mut rest = vec![obr(&[(25, obr25)])];
        for (i, s) in obx11.iter().enumerate() {
            rest.push(format!("OBX|{}|NM|X^Y^LN||4|mmol/L|||||{s}", i + 1));
        }
        let out = adapt(&message(&rest));
        let r = &out.records[0];
        (
            one(&json(r), "DiagnosticReport")["status"]
                .as_str()
                .unwrap()
                .to_string(),
            r.status,
        )
    };
    assert_eq!(
        status("F", &["F", "F"]),
        ("final".into(), RecordStatus::Final)
    );
    assert_eq!(
        status("P", &["P", "F"]),
        ("preliminary".into(), RecordStatus::Preliminary)
    );
    assert_eq!(
        status("C", &["C", "F"]),
        ("corrected".into(), RecordStatus::Corrected)
    );
    assert_eq!(
        status("X", &["X"]),
        ("cancelled".into(), RecordStatus::Cancelled)
    );
    assert_eq!(
        status("I", &["I"]),
        ("registered".into(), RecordStatus::Preliminary)
    );
    assert_eq!(
        status("A", &["F", "I"]),
        ("partial".into(), RecordStatus::Preliminary)
    );
    // OBR-25 empty: from the results.
    assert_eq!(
        status("", &["F", "F"]),
        ("final".into(), RecordStatus::Final)
    );
    assert_eq!(
        status("", &["F", "I"]),
        ("partial".into(), RecordStatus::Preliminary)
    );
    // Final report with corrected or withdrawn results.
    assert_eq!(
        status("F", &["F", "C"]),
        ("corrected".into(), RecordStatus::Corrected)
    );
    assert_eq!(
        status("F", &["D", "D"]),
        ("entered-in-error".into(), RecordStatus::EnteredInError)
    );
}

#[test]
fn nte_after_obx_is_a_note_and_after_obr_the_conclusion() {
    let out = adapt(&message(&[
        obr(&[]),
        "NTE|1|L|Prélèvement hémolysé\\.br\\à contrôler".into(),
        "NTE|2|L|Deuxième ligne".into(),
        "OBX|1|NM|2823-3^K^LN||5.9|mmol/L|||||F".into(),
        "PRT|1|AD||RCT^^participation".into(),
        "NTE|1|L|Résultat contrôlé".into(),
        "NTE|2|L|".into(),
        "OBX|2|NM|2951-2^Na^LN||140|mmol/L|||||F".into(),
    ]));
    let b = json(&out.records[0]);
    let report = one(&b, "DiagnosticReport");
    assert_eq!(
        report["conclusion"],
        "Prélèvement hémolysé\nà contrôler\nDeuxième ligne"
    );
    let obs = resources(&b, "Observation");
    assert_eq!(
        obs[0]["note"],
        serde_json::json!([{"text": "Résultat contrôlé"}])
    );
    assert!(obs[1].get("note").is_none());
}

#[test]
fn empty_obx3_uses_the_obr4_code() {
    let obs = observation("OBX|1|TX|||Compte rendu||||||F");
    assert_eq!(obs["code"]["coding"][0]["code"], "24326-1");
    assert_eq!(obs["valueString"], "Compte rendu");
    // No code anywhere: a text-only concept, still valid.
    let out = adapt(&message(&[
        obr(&[(4, "")]),
        "OBX|1|TX|||Texte||||||F".into(),
    ]));
    let obs = one(&json(&out.records[0]), "Observation");
    assert_eq!(
        obs["code"],
        serde_json::json!({"text": "Laboratory report"})
    );
}
