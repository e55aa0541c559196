//! Native tests: one per mapping rule, the ANS samples, errors.

use passerelle_plugin_sdk::fhir::Bundle;
use serde_json::Value;

use super::*;

const CT: &str = "x-application/hl7-v2+er7";

/// A segment from `(field number, raw value)` pairs.
fn seg(name: &str, fields: &[(usize, &str)]) -> String {
    let max = fields.iter().map(|f| f.0).max().unwrap_or(0);
    let mut v = vec![""; max];
    for (n, val) in fields {
        v[n - 1] = val;
    }
    format!("{name}|{}", v.join("|"))
}

const MSH: &str = "MSH|^~\\&|SIL|LABO|DPI|CHU|20240131123000+0100||ORU^R01^ORU_R01|MSG1|P|2.5|||||FRA|UNICODE UTF-8";

fn pid() -> String {
    seg(
        "PID",
        &[
            (1, "1"),
            (
                3,
                "279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS~IPP123^^^CHU&1.2.250.1.71.4.2.7&ISO^PI",
            ),
            (5, "DUPONT^MARIE^^^^^L~MARTIN^MARIE^^^^^D~DURAND^^^^^^M"),
            (7, "19790328"),
            (8, "F"),
            (11, "1 rue de la Paix^^PARIS^^75002^FRA^H~^^^^^^BDL^^63220"),
            (13, "0102030405^PRN^PH~^NET^Internet^marie@example.org"),
            (32, "VALI"),
        ],
    )
}

fn obr(fields: &[(usize, &str)]) -> String {
    let mut all: Vec<(usize, &str)> = vec![
        (1, "1"),
        (2, "CMD1^DPI"),
        (3, "LAB1^SIL"),
        (4, "24326-1^Electrolytes panel^LN"),
        (7, "20240131083000"),
        (22, "20240131120000"),
        (25, "F"),
    ];
    for f in fields {
        all.retain(|(n, _)| *n != f.0);
        all.push(*f);
    }
    seg("OBR", &all)
}

/// A whole message: MSH, PID, then `rest` (segments joined with CR).
fn message(rest: &[String]) -> String {
    let mut segs = vec![MSH.to_string(), pid()];
    segs.extend(rest.iter().cloned());
    segs.join("\r")
}

/// MSH, PID, OBR and the OBX lines.
fn with_obx(obx: &[&str]) -> String {
    let mut rest = vec![obr(&[])];
    rest.extend(obx.iter().map(|s| s.to_string()));
    message(&rest)
}

fn lab() -> Hl7v2Lab {
    configure::<Hl7v2Lab>("{}").unwrap()
}

fn try_adapt_with(settings: &str, text: &str) -> Result<Adapted, AdaptError> {
    configure::<Hl7v2Lab>(settings)
        .unwrap()
        .adapt(&inbound_message(text.as_bytes(), CT, "test"))
}

fn adapt(text: &str) -> Adapted {
    match lab().adapt(&inbound_message(text.as_bytes(), CT, "test")) {
        Ok(a) => {
            for r in &a.records {
                check_bundle(&r.bundle);
            }
            a
        }
        Err(e) => panic!("adapt failed: {e:?}\n{text}"),
    }
}

fn adapt_err(text: &[u8]) -> AdaptError {
    lab()
        .adapt(&inbound_message(text, CT, "test"))
        .expect_err("must fail")
}

/// The bundle reads back as a Bundle with no structural problem (unresolved references,
/// duplicate fullUrls...).
fn check_bundle(json: &str) {
    let mut bundle: Bundle = serde_json::from_str(json).expect("bundle JSON");
    bundle.set_seed("check");
    let problems = bundle.problems();
    assert!(problems.is_empty(), "{problems:?}\n{json}");
}

fn json(record: &Record) -> Value {
    serde_json::from_str(&record.bundle).unwrap()
}

fn resources(bundle: &Value, ty: &str) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .filter(|r| r["resourceType"] == ty)
        .collect()
}

fn one(bundle: &Value, ty: &str) -> Value {
    let mut all = resources(bundle, ty);
    assert_eq!(all.len(), 1, "one {ty} expected in {bundle}");
    all.remove(0)
}

/// The observations of a message made of the given OBX lines.
fn observations(obx: &[&str]) -> Vec<Value> {
    let out = adapt(&with_obx(obx));
    resources(&json(&out.records[0]), "Observation")
}

fn observation(obx: &str) -> Value {
    let mut all = observations(&[obx]);
    assert_eq!(all.len(), 1);
    all.remove(0)
}

// --- Value types ---

#[test]
fn nm_is_a_quantity_keeping_its_digits_with_ucum_unit() {
    let out = adapt(&with_obx(&[
        "OBX|1|NM|2823-3^Potassium^LN||5.10|mmol/L^^UCUM|3.5-5.0|H|||F|||20240131081000",
    ]));
    let raw = &out.records[0].bundle;
    assert!(raw.contains(r#""valueQuantity":{"value":5.10,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"}"#), "{raw}");
    let obs = one(&json(&out.records[0]), "Observation");
    assert_eq!(obs["status"], "final");
    assert_eq!(obs["code"]["coding"][0]["system"], "http://loinc.org");
    assert_eq!(obs["category"][0]["coding"][0]["code"], "laboratory");
    assert_eq!(obs["effectiveDateTime"], "2024-01-31T08:10:00+01:00");
    assert_eq!(obs["issued"], "2024-01-31T12:00:00+01:00");
}

#[test]
fn nm_unit_text_only_unless_ucum() {
    let obs = observation("OBX|1|NM|11273-0^ERYTHROCYTES^LN||4.06|tera.l-1||N|||F");
    assert_eq!(
        obs["valueQuantity"],
        serde_json::json!({"value": 4.06, "unit": "tera.l-1"})
    );
    // A well-known UCUM code without coding system, and a display text in 6.2.
    let obs = observation("OBX|1|NM|20570-8^HEMATOCRIT^LN||40.1|%||N|||F");
    assert_eq!(obs["valueQuantity"]["code"], "%");
    let obs = observation("OBX|1|NM|718-7^Hb^LN||12.5|g/dL^grams per deciliter^UCUM||N|||F");
    assert_eq!(obs["valueQuantity"]["unit"], "grams per deciliter");
    assert_eq!(obs["valueQuantity"]["code"], "g/dL");
    // Not numeric after all: kept as text; `<5` in an NM field: a comparator.
    let obs = observation("OBX|1|NM|1-1^X^LN||see comment|||N|||F");
    assert_eq!(obs["valueString"], "see comment");
    let obs = observation("OBX|1|NM|1-1^X^LN||<5|mg/L||N|||F");
    assert_eq!(obs["valueQuantity"]["comparator"], "<");
    assert_eq!(obs["valueQuantity"]["value"], 5);
}

#[test]
fn sn_comparator_range_ratio_and_plain() {
    let obs = observation("OBX|1|SN|1988-5^CRP^LN||<^5|mg/L^^UCUM||N|||F");
    assert_eq!(
        obs["valueQuantity"],
        serde_json::json!({"value": 5, "comparator": "<", "unit": "mg/L", "system": "http://unitsofmeasure.org", "code": "mg/L"})
    );
    let obs = observation("OBX|1|SN|X^Y^LN||>=^10|||N|||F");
    assert_eq!(obs["valueQuantity"]["comparator"], ">=");
    let obs = observation("OBX|1|SN|X^Y^LN||^10^-^20|mg/L^^UCUM||N|||F");
    assert_eq!(obs["valueRange"]["low"]["value"], 10);
    assert_eq!(obs["valueRange"]["high"]["value"], 20);
    assert_eq!(obs["valueRange"]["high"]["code"], "mg/L");
    let obs = observation("OBX|1|SN|5334-9^Titer^LN||^1^:^128|||N|||F");
    assert_eq!(obs["valueRatio"]["numerator"]["value"], 1);
    assert_eq!(obs["valueRatio"]["denominator"]["value"], 128);
    let obs = observation("OBX|1|SN|1554-5^GLUCOSE^LN||^182|mg/dl|70_105|H|||F");
    assert_eq!(
        obs["valueQuantity"],
        serde_json::json!({"value": 182, "unit": "mg/dl"})
    );
    assert_eq!(obs["referenceRange"][0]["text"], "70_105");
    // `<>` and `+` are text, per the v2-to-FHIR map.
    let obs = observation("OBX|1|SN|X^Y^LN||<>^3|||N|||F");
    assert_eq!(obs["valueString"], "<> 3");
    let obs = observation("OBX|1|SN|X^Y^LN||^2^+|||N|||F");
    assert_eq!(obs["valueString"], "2 +");
}

#[test]
fn st_tx_ft_are_unescaped_strings() {
    let obs = observation("OBX|1|ST|X^Y^LN||Na\\S\\K \\T\\ Cl|||N|||F");
    assert_eq!(obs["valueString"], "Na^K & Cl");
    let obs = observation("OBX|1|TX|X^Y^LN||Ligne 1\\.br\\Ligne 2|||N|||F");
    assert_eq!(obs["valueString"], "Ligne 1\nLigne 2");
    let obs = observation("OBX|1|FT|X^Y^LN||Para 1~Para 2|||N|||F");
    assert_eq!(obs["valueString"], "Para 1\nPara 2");
}

#[test]
fn ce_cwe_cne_are_codeable_concepts() {
    let obs = observation(
        "OBX|1|CWE|38892-6^Anisocytosis^LN||260348001^Present ++^SCT^^^^^^Moderate|||A|||F",
    );
    let cc = &obs["valueCodeableConcept"];
    assert_eq!(cc["coding"][0]["system"], "http://snomed.info/sct");
    assert_eq!(cc["coding"][0]["code"], "260348001");
    assert_eq!(cc["coding"][0]["display"], "Present ++");
    assert_eq!(cc["text"], "Moderate");
    let obs = observation("OBX|1|CE|X^Y^LN||POS^Positif^L|||A|||F");
    assert_eq!(
        obs["valueCodeableConcept"]["coding"][0]["system"],
        "urn:passerelle:cs:L"
    );
    let obs = observation("OBX|1|CNE|X^Y^LN||N^Non^HL70136|||A|||F");
    assert_eq!(
        obs["valueCodeableConcept"]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0136"
    );
}

#[test]
fn dt_and_ts_are_datetimes() {
    let obs = observation("OBX|1|DT|X^Y^LN||20240131|||N|||F");
    assert_eq!(obs["valueDateTime"], "2024-01-31");
    let obs = observation("OBX|1|TS|X^Y^LN||202401311230|||N|||F");
    assert_eq!(obs["valueDateTime"], "2024-01-31T12:30:00+01:00");
    let obs = observation("OBX|1|DTM|X^Y^LN||20240131123000-0500|||N|||F");
    assert_eq!(obs["valueDateTime"], "2024-01-31T12:30:00-05:00");
    // Unknown types and NA: the text.
    let obs = observation("OBX|1|NA|X^Y^LN||1^2^3|||N|||F");
    assert_eq!(obs["valueString"], "1^2^3");
    let obs = observation("OBX|1|ZZ|X^Y^LN||hello|||N|||F");
    assert_eq!(obs["valueString"], "hello");
}

#[test]
fn ed_is_a_document_reference_and_presented_form() {
    let out = adapt(&with_obx(&[
        // Not XML once decoded (like the ANS examples' placeholders): kept, not parsed.
        "OBX|1|ED|11502-2^CR d'examens biologiques^LN||^TEXT^XML^Base64^RG9jdW1lbnQ||||||F",
        "OBX|2|ED|11502-2^CR PDF^LN||^AP^PDF^Base64^JVBERi0xLjQ=||||||F",
        "OBX|3|NM|2823-3^Potassium^LN||4.2|mmol/L|||||F",
    ]));
    let b = json(&out.records[0]);
    let docs = resources(&b, "DocumentReference");
    assert_eq!(docs.len(), 2);
    let a = &docs[0]["content"][0]["attachment"];
    assert_eq!(a["contentType"], "text/xml");
    // Base64 as given, padded to a multiple of 4.
    assert_eq!(a["data"], "RG9jdW1lbnQ=");
    assert_eq!(a["title"], "CR d'examens biologiques");
    assert_eq!(docs[0]["status"], "current");
    assert_eq!(docs[0]["docStatus"], "final");
    assert_eq!(
        docs[1]["content"][0]["attachment"]["contentType"],
        "application/pdf"
    );
    let report = one(&b, "DiagnosticReport");
    assert_eq!(report["presentedForm"].as_array().unwrap().len(), 2);
    assert_eq!(report["presentedForm"][1]["data"], "JVBERi0xLjQ=");
    // Only the NM is an Observation.
    assert_eq!(resources(&b, "Observation").len(), 1);
    assert_eq!(report["result"].as_array().unwrap().len(), 1);
}

#[test]
fn ed_with_invalid_base64_says_where() {
    let err = lab()
        .adapt(&inbound_message(
            with_obx(&[
                "OBX|1|NM|2823-3^K^LN||4.2|mmol/L|||||F",
                "OBX|2|ED|11502-2^CR^LN||^TEXT^XML^Base64^P*D9||||||F",
            ])
            .as_bytes(),
            CT,
            "t",
        ))
        .unwrap_err();
    match err {
        AdaptError::Malformed(m) => {
            assert_eq!(m.location, "OBX[2]-5");
            assert!(m.reason.contains("base64"), "{}", m.reason);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rp_is_an_attachment_by_url_and_empty_ed_is_skipped() {
    let out = adapt(&with_obx(&[
        "OBX|1|RP|X^Image^LN||https://pacs.example.org/img/1^^IM^JPEG||||||F",
        "OBX|2|ED|||App5^NS^Octet-stream^Base64^|",
    ]));
    let b = json(&out.records[0]);
    let doc = one(&b, "DocumentReference");
    assert_eq!(
        doc["content"][0]["attachment"],
        serde_json::json!({"contentType": "image/jpeg", "url": "https://pacs.example.org/img/1", "title": "Image"})
    );
    assert!(resources(&b, "Observation").is_empty());
}

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

// --- French specifics ---

#[test]
fn meta_dmp_mss_sets_flags_and_is_not_an_observation() {
    let out = adapt(&with_obx(&[
        "OBX|1|ED|11502-2^CR d'examens biologiques^LN||^TEXT^XML^Base64^RG9jdW1lbnQ=||||||F",
        "OBX|2|CE|MASQUE_PS^Masqué aux professionnels de Santé^MetaDMPMSS||Y^^expandedYes-NoIndicator||||||F",
        "OBX|3|CE|INVISIBLE_PATIENT^Document Non Visible par le patient^MetaDMPMSS||N^^expandedYes-NoIndicator||||||F",
        "OBX|4|CE|INVISIBLE_REP_LEGAUX^Non visible par les représentants Légaux^MetaDMPMSS||Y^^expandedYes-NoIndicator||||||F",
        "OBX|5|CE|DESTDMP^Destinataire DMP^MetaDMPMSS||Y^^expandedYes-NoIndicator||||||F",
        "OBX|6|ED|CORPSMAIL_PS^Corps du mail^MetaDMPMSS||^TEXT^^Base64^Q2hlcg||||||F",
    ]));
    let r = &out.records[0];
    assert_eq!(
        r.confidentiality.flags,
        vec![
            VisibilityFlag::MasquePs,
            VisibilityFlag::InvisibleRepresentantsLegaux
        ]
    );
    let b = json(r);
    assert!(resources(&b, "Observation").is_empty());
    let doc = one(&b, "DocumentReference");
    let labels: Vec<&str> = doc["securityLabel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["MASQUE_PS", "INVISIBLE_REPRESENTANTS_LEGAUX"]);
    assert!(!r.bundle.contains("DESTDMP") && !r.bundle.contains("CORPSMAIL"));
}

fn sample(path: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const ANS_ORU: &str = "ansforge-hl7v2-exemples/Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU";

#[test]
fn ins_from_the_ans_sample() {
    let payload = sample(&format!(
        "{ANS_ORU}/Transmission initiale ORU/message_ORU_CR_Bio_INIT_N1_N3.hl7"
    ));
    let out = lab().adapt(&inbound_message(&payload, CT, "ans")).unwrap();
    assert_eq!(out.source_message_id.as_deref(), Some("015"));
    assert_eq!(out.message_type.as_deref(), Some("ORU^R01"));
    assert_eq!(out.records.len(), 1);
    let r = &out.records[0];
    check_bundle(&r.bundle);
    let ins = r.patient.ins.as_ref().unwrap();
    assert_eq!(
        (ins.kind, ins.value.as_str()),
        (InsKind::NirTest, "279035121518989")
    );
    assert!(r.patient.local_ids.is_empty());
    assert_eq!(r.status, RecordStatus::Final);
    assert!(matches!(r.kind, RecordKind::LabResult));
    assert!(r.confidentiality.flags.is_empty());
    assert_eq!(r.codes[0].code, "11502-2");
    let b = json(r);
    let patient = one(&b, "Patient");
    assert_eq!(
        patient["identifier"][0],
        serde_json::json!({
            "use": "official",
            "type": {"coding": [{"system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203", "code": "INS-NIR-TEST"}]},
            "system": "urn:oid:1.2.250.1.213.1.4.10",
            "value": "279035121518989"
        })
    );
    assert_eq!(
        patient["extension"][0]["url"],
        "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability"
    );
    assert_eq!(
        patient["extension"][0]["extension"][0]["valueCoding"]["code"],
        "VALI"
    );
    assert_eq!(patient["name"][0]["family"], "PAT-TROIS");
    assert_eq!(patient["birthDate"], "1979-03-28");
    // N1 and N3 CDA: two documents; the metadata OBX are not observations.
    assert_eq!(resources(&b, "DocumentReference").len(), 2);
    assert!(resources(&b, "Observation").is_empty());
    let enc = one(&b, "Encounter");
    assert_eq!(enc["class"]["code"], "IMP");
    assert_eq!(enc["identifier"][0]["value"], "000897406");
}

#[test]
fn ans_replacement_and_deletion_statuses() {
    for (file, status, doc_status) in [
        (
            "Remplacement ORU/message_ORU_CR_Bio_RPLC_N1_N3.er7",
            RecordStatus::Corrected,
            "current",
        ),
        (
            "Suppression ORU/message_ORU_CR_Bio_DEL_N1_N3.er7",
            RecordStatus::EnteredInError,
            "entered-in-error",
        ),
    ] {
        let payload = sample(&format!("{ANS_ORU}/{file}"));
        let out = lab().adapt(&inbound_message(&payload, CT, "ans")).unwrap();
        let r = &out.records[0];
        assert_eq!(r.status, status, "{file}");
        let b = json(r);
        for doc in resources(&b, "DocumentReference") {
            assert_eq!(doc["status"], doc_status, "{file}");
        }
    }
}

#[test]
fn latin1_declared_in_msh18() {
    let mut text = Vec::new();
    text.extend_from_slice(b"MSH|^~\\&|SIL|LABO|||20240131||ORU^R01|L1|P|2.5|||||FRA|8859/1\r");
    text.extend_from_slice(b"PID|1||IPP9^^^LABO||M\xdcLLER^H\xe9l\xe8ne||19800101|F\r");
    text.extend_from_slice(b"OBR|1||R1|X^Y^LN|||20240131\r");
    text.extend_from_slice(b"OBX|1|ST|X^Y^LN||r\xe9sultat \xe0 contr\xf4ler||||||F\r");
    let out = lab().adapt(&inbound_message(&text, CT, "t")).unwrap();
    let b = json(&out.records[0]);
    assert_eq!(one(&b, "Patient")["name"][0]["given"][0], "Hélène");
    assert_eq!(one(&b, "Patient")["name"][0]["family"], "MÜLLER");
    assert_eq!(
        one(&b, "Observation")["valueString"],
        "résultat à contrôler"
    );
    // The source's configured charset applies when MSH-18 is empty.
    let text = b"MSH|^~\\&|SIL|LABO|||20240131||ORU^R01|L2|P|2.5\rPID|1||IPP9^^^LABO||REN\xc9E\rOBR|1||R1|X^Y^LN\rOBX|1|ST|X^Y^LN||\xe9||||||F\r";
    let mut msg = inbound_message(text, CT, "t");
    msg.charset = Some("ISO-8859-15".into());
    let out = lab().adapt(&msg).unwrap();
    assert_eq!(
        one(&json(&out.records[0]), "Patient")["name"][0]["family"],
        "RENÉE"
    );
}

// --- Patient, encounter, practitioners, specimen ---

#[test]
fn patient_demographics() {
    let out = adapt(&with_obx(&["OBX|1|NM|X^Y^LN||4|mmol/L|||||F"]));
    let r = &out.records[0];
    let ids: Vec<(&str, &str)> = r
        .patient
        .local_ids
        .iter()
        .map(|i| (i.system.as_str(), i.value.as_str()))
        .collect();
    assert_eq!(ids, [("urn:oid:1.2.250.1.71.4.2.7", "IPP123")]);
    let p = one(&json(r), "Patient");
    assert_eq!(p["identifier"][1]["type"]["coding"][0]["code"], "PI");
    let uses: Vec<&str> = p["name"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["use"].as_str().unwrap())
        .collect();
    assert_eq!(uses, ["official", "usual", "maiden"]);
    assert_eq!(p["gender"], "female");
    // The birth place (BDL) is not an address.
    assert_eq!(p["address"].as_array().unwrap().len(), 1);
    assert_eq!(p["address"][0]["postalCode"], "75002");
    assert_eq!(
        p["telecom"],
        serde_json::json!([
            {"system": "phone", "value": "0102030405", "use": "home"},
            {"system": "email", "value": "marie@example.org", "use": "home"}
        ])
    );
    for (sex, gender) in [
        ("M", "male"),
        ("O", "other"),
        ("U", "unknown"),
        ("A", "unknown"),
        ("N", "unknown"),
    ] {
        let text = with_obx(&[]).replace("|19790328|F|", &format!("|19790328|{sex}|"));
        let out = adapt(&text);
        assert_eq!(
            one(&json(&out.records[0]), "Patient")["gender"],
            gender,
            "{sex}"
        );
    }
}

#[test]
fn local_ids_without_oid() {
    let text = message(&[obr(&[]), "OBX|1|NM|X^Y^LN||4||||||F".into()]).replace(
        "IPP123^^^CHU&1.2.250.1.71.4.2.7&ISO^PI",
        "IPP123^^^CH Nord^PI~999^^^^MR",
    );
    let out = adapt(&text);
    let ids = &out.records[0].patient.local_ids;
    assert_eq!(ids[0].system, "urn:passerelle:id:CH%20Nord");
    // No authority: the sending facility (MSH-4).
    assert_eq!(ids[1].system, "urn:passerelle:id:LABO");
    let out = try_adapt_with(r#"{"local_id_system": "urn:oid:1.2.3.4"}"#, &text).unwrap();
    let ids = &out.records[0].patient.local_ids;
    assert_eq!(ids[0].system, "urn:oid:1.2.3.4");
}

#[test]
fn encounter_from_pv1() {
    for (class, code) in [("I", "IMP"), ("O", "AMB"), ("E", "EMER"), ("R", "AMB")] {
        let out = adapt(&message(&[
            seg(
                "PV1",
                &[
                    (1, "1"),
                    (2, class),
                    (19, "V123^^^CHU&1.2.250.1.71.4.2.7&ISO^VN"),
                ],
            ),
            obr(&[]),
            "OBX|1|NM|X^Y^LN||4||||||F".into(),
        ]));
        let b = json(&out.records[0]);
        let enc = one(&b, "Encounter");
        assert_eq!(enc["class"]["code"], code);
        assert_eq!(
            enc["class"]["system"],
            "http://terminology.hl7.org/CodeSystem/v3-ActCode"
        );
        assert_eq!(enc["identifier"][0]["system"], "urn:oid:1.2.250.1.71.4.2.7");
        assert_eq!(enc["identifier"][0]["value"], "V123");
        let obs = one(&b, "Observation");
        assert_eq!(obs["encounter"]["type"], "Encounter");
    }
}

#[test]
fn practitioners_requester_interpreter_observer() {
    let out = adapt(&message(&[
        seg(
            "ORC",
            &[
                (1, "RE"),
                (2, "CMD1^DPI"),
                (
                    12,
                    "801234567897^MARTIN^JEAN^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^L^^^RPPS",
                ),
            ],
        ),
        obr(&[(16, "^BLUE^Eva^^^DR"), (32, "L07&LABBIO&JULIE^20240131")]),
        seg(
            "OBX",
            &[
                (1, "1"),
                (2, "NM"),
                (3, "X^Y^LN"),
                (5, "4"),
                (6, "mmol/L"),
                (11, "F"),
                (16, "123^OBS^Paul"),
                (
                    23,
                    "Labo Central^^^^^CHU&1.2.250.1.71.4.2.2&ISO^FINEG^^^330000001",
                ),
            ],
        ),
    ]));
    let b = json(&out.records[0]);
    let pracs = resources(&b, "Practitioner");
    // ORC-12 wins over OBR-16; OBR-32; OBX-16.
    assert_eq!(pracs.len(), 3);
    assert_eq!(
        pracs[0]["identifier"][0]["system"],
        "urn:oid:1.2.250.1.71.4.2.1"
    );
    assert_eq!(pracs[0]["identifier"][0]["value"], "801234567897");
    assert_eq!(pracs[0]["name"][0]["family"], "MARTIN");
    assert_eq!(pracs[1]["name"][0]["family"], "LABBIO");
    let report = one(&b, "DiagnosticReport");
    assert_eq!(report["resultsInterpreter"][0]["type"], "Practitioner");
    let obs = one(&b, "Observation");
    assert_eq!(obs["performer"][0]["type"], "Practitioner");
    assert_eq!(obs["performer"][1]["display"], "Labo Central");
    assert_eq!(
        obs["performer"][1]["identifier"]["system"],
        "urn:oid:1.2.250.1.71.4.2.2"
    );
    assert_eq!(report["performer"][0]["display"], "Labo Central");
    // Placer from OBR-2, filler from ORC-3 when OBR-3 is empty.
    let out = adapt(&message(&[
        seg("ORC", &[(1, "RE"), (3, "F-9^SIL")]),
        obr(&[(3, "")]),
        "OBX|1|NM|X^Y^LN||4||||||F".into(),
    ]));
    let report = one(&json(&out.records[0]), "DiagnosticReport");
    assert_eq!(report["identifier"][0]["type"]["coding"][0]["code"], "PLAC");
    assert_eq!(report["identifier"][1]["value"], "F-9");
}

#[test]
fn specimen_from_spm_or_obr15() {
    let out = adapt(&message(&[
        obr(&[]),
        "OBX|1|NM|X^Y^LN||4|mmol/L|||||F".into(),
        "SPM|1|SP1&LABO||BLD^Sang total^HL70487|||||||P||||||20240131070000|20240131080000".into(),
    ]));
    let b = json(&out.records[0]);
    let s = one(&b, "Specimen");
    assert_eq!(s["type"]["coding"][0]["code"], "BLD");
    assert_eq!(
        s["collection"]["collectedDateTime"],
        "2024-01-31T07:00:00+01:00"
    );
    assert_eq!(s["receivedTime"], "2024-01-31T08:00:00+01:00");
    assert_eq!(s["identifier"][0]["value"], "SP1");
    assert_eq!(one(&b, "Observation")["specimen"]["type"], "Specimen");
    assert_eq!(
        one(&b, "DiagnosticReport")["specimen"][0]["type"],
        "Specimen"
    );
    // v2.3 OBR-15 specimen source.
    let out = adapt(&message(&[
        obr(&[(15, "SER&Serum")]),
        "OBX|1|NM|X^Y^LN||4|mmol/L|||||F".into(),
    ]));
    let s = one(&json(&out.records[0]), "Specimen");
    assert_eq!(s["type"]["coding"][0]["code"], "SER");
    assert_eq!(
        s["collection"]["collectedDateTime"],
        "2024-01-31T08:30:00+01:00"
    );
}

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
