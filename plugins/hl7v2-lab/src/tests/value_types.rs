//! OBX-2 value types: NM, SN, ST/TX/FT, CE/CWE/CNE, DT/TS, ED and RP.

use super::*;

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
