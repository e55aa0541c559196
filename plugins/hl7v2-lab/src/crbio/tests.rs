//! Native tests of the CR-BIO extraction: the ANS example CDA documents wrapped in the ANS
//! ORU^R01, statuses, confidentiality, errors.

use passerelle_plugin_sdk::fhir::{Bundle, base64};
use passerelle_plugin_sdk::prelude::*;
use serde_json::Value;

use crate::Hl7v2Lab;

const CT: &str = "x-application/hl7-v2+er7";
const CDA_DIR: &str = "ansforge-testcontenucda/ExemplesCDA";
const TSH: &str = "BIO-CR-BIO_2024.01_TSH_1.xml";
const CRP: &str = "BIO-CR-BIO_2024.01_CRP_non_LOINC.xml";
const MICRO: &str = "BIO-CR-BIO_2021.01_Microbiologie_V2.xml";
const PLACEHOLDER: &str = "RG9jdW1lbnQgbWVkY2lhbCBhdSBmb3JtYXQgQ0RBIG5pdmVhdSAx";

fn shared(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn cda(name: &str) -> String {
    shared(&format!("{CDA_DIR}/{name}"))
}

/// The ANS initial-transmission ORU^R01 with `cda` base64-encoded in OBX[1]-5 (the N3 slot)
/// and OBX-11 of both documents set to `status`; `meta` replaces the MetaDMPMSS values
/// (`("MASQUE_PS", "Y")`).
fn oru(cda: &str, status: &str, meta: &[(&str, &str)]) -> String {
    let text = shared(
        "ansforge-hl7v2-exemples/Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/Transmission initiale ORU/message_ORU_CR_Bio_INIT_N1_N3.hl7",
    );
    let mut lines: Vec<String> = Vec::new();
    let mut first = true;
    for line in text.lines() {
        let mut line = line.to_string();
        if line.starts_with("OBX|") && line.contains(PLACEHOLDER) {
            if first {
                line = line.replacen(PLACEHOLDER, &base64(cda.as_bytes()), 1);
                first = false;
            }
            line = line.replacen("||||||F|", &format!("||||||{status}|"), 1);
        }
        for (code, value) in meta {
            if line.contains(&format!("|{code}^")) {
                line = line.replacen("|N^^expandedYes", &format!("|{value}^^expandedYes"), 1);
            }
        }
        lines.push(line);
    }
    lines.join("\r")
}

fn adapt(text: &str) -> Result<Adapted, AdaptError> {
    configure::<Hl7v2Lab>("{}")
        .unwrap()
        .adapt(&inbound_message(text.as_bytes(), CT, "test"))
}

fn record(text: &str) -> (Record, Value) {
    let mut out = adapt(text).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(out.records.len(), 1);
    let r = out.records.remove(0);
    let mut bundle: Bundle = serde_json::from_str(&r.bundle).unwrap();
    bundle.set_seed("check");
    assert!(bundle.problems().is_empty(), "{:?}", bundle.problems());
    let v = serde_json::from_str(&r.bundle).unwrap();
    (r, v)
}

fn resources(b: &Value, ty: &str) -> Vec<Value> {
    b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .filter(|r| r["resourceType"] == ty)
        .collect()
}

fn by_code(b: &Value, code: &str) -> Vec<Value> {
    resources(b, "Observation")
        .into_iter()
        .filter(|o| {
            o["code"]["coding"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["code"] == code)
        })
        .collect()
}

fn full_url_of(b: &Value, resource: &Value) -> String {
    b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| &e["resource"] == resource)
        .map(|e| e["fullUrl"].as_str().unwrap().to_string())
        .unwrap()
}

/// `text` with the element that starts at the first `start` renamed (its end tag too).
fn rename_first(text: &str, start: &str, from: &str, to: &str) -> String {
    let at = text.find(start).expect("start tag");
    let end_tag = format!("</{from}>");
    let end = at + text[at..].find(&end_tag).expect("end tag");
    let mut out = text[..at].to_string();
    out.push_str(&text[at..end].replacen(&format!("<{from}"), &format!("<{to}"), 1));
    out.push_str(&format!("</{to}>"));
    out.push_str(&text[end + end_tag.len()..]);
    out
}

fn malformed(text: &str) -> (String, String) {
    match adapt(text) {
        Err(AdaptError::Malformed(m)) => (m.location, m.reason),
        other => panic!("malformed expected, got {other:?}"),
    }
}

#[test]
fn tsh_results_with_loinc_ucum_interpretation_and_range() {
    let (r, b) = record(&oru(&cda(TSH), "F", &[]));
    assert_eq!(r.status, RecordStatus::Final);
    assert_eq!(r.confidentiality.level, ConfidentialityLevel::Normal);
    let tsh = &by_code(&b, "3016-3")[0];
    assert_eq!(tsh["code"]["coding"][0]["system"], "http://loinc.org");
    assert_eq!(tsh["code"]["text"], "Thyréostimuline (TSH)");
    assert_eq!(tsh["status"], "final");
    assert_eq!(tsh["effectiveDateTime"], "2014-04-02T14:55:21+02:00");
    assert_eq!(
        tsh["valueQuantity"],
        serde_json::json!({"value": 1.950, "unit": "m[IU]/L", "system": "http://unitsofmeasure.org", "code": "m[IU]/L"})
    );
    // The digits as written (serde_json's Value would drop the trailing zero).
    assert!(r.bundle.contains(r#""valueQuantity":{"value":1.950,"#));
    assert_eq!(tsh["interpretation"][0]["coding"][0]["code"], "N");
    assert!(
        r.bundle
            .contains(r#""referenceRange":[{"low":{"value":0.270,"unit":"m[IU]/L","#)
    );
    assert!(r.bundle.contains(r#""high":{"value":4.200,"#));
    assert_eq!(tsh["method"]["text"], "(ECL Modular)");
    let ft4 = &by_code(&b, "3024-7")[0];
    assert_eq!(ft4["valueQuantity"]["unit"], "pg/mL");
    assert_eq!(ft4["interpretation"][0]["coding"][0]["code"], "L");
    // The report lists both; the routing codes carry them.
    let report = &resources(&b, "DiagnosticReport")[0];
    let results: Vec<&str> = report["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reference"].as_str().unwrap())
        .collect();
    assert!(results.contains(&full_url_of(&b, tsh).as_str()));
    assert!(results.contains(&full_url_of(&b, ft4).as_str()));
    assert!(r.codes.iter().any(|c| c.code == "3016-3"));
    // The document: the CDA id, the attachment as sent, the confidentiality label.
    let docs = resources(&b, "DocumentReference");
    let doc = docs
        .iter()
        .find(|d| d["masterIdentifier"].is_object())
        .unwrap();
    assert_eq!(
        doc["masterIdentifier"]["value"],
        "urn:oid:1.2.250.1.213.1.1.1.55.2024.9.1"
    );
    assert_eq!(doc["content"][0]["attachment"]["contentType"], "text/xml");
    assert_eq!(
        doc["content"][0]["attachment"]["data"],
        base64(cda(TSH).as_bytes())
    );
    assert_eq!(doc["type"]["coding"][0]["code"], "11502-2");
    assert_eq!(doc["securityLabel"][0]["coding"][0]["code"], "N");
}

#[test]
fn crp_without_loinc_keeps_the_local_translation_and_the_comparator() {
    let (_, b) = record(&oru(&cda(CRP), "F", &[]));
    let crp = &by_code(&b, "1234")[0];
    let coding = &crp["code"]["coding"];
    assert_eq!(coding.as_array().unwrap().len(), 1);
    assert_eq!(coding[0]["system"], "urn:oid:1.2.250.1.2.3.4");
    assert_eq!(crp["code"]["text"], "CRP");
    let q = &crp["valueQuantity"];
    assert_eq!(
        (q["comparator"].as_str(), q["code"].as_str()),
        (Some("<="), Some("mg/L"))
    );
    assert_eq!(q["value"], 1.0);
    assert_eq!(crp["referenceRange"][0]["high"]["value"], 5.0);
}

#[test]
fn microbiology_batteries_isolates_and_specimen_collection() {
    let (_, b) = record(&oru(&cda(MICRO), "F", &[]));
    let specimens = resources(&b, "Specimen");
    let urine = specimens
        .iter()
        .find(|s| s["type"]["coding"][0]["code"] == "UR")
        .expect("the urine specimen");
    assert_eq!(urine["collection"]["method"]["coding"][0]["code"], "5201");
    assert_eq!(
        urine["collection"]["collectedDateTime"],
        "2021-01-04T07:35:00+01:00"
    );
    assert_eq!(urine["receivedTime"], "2021-01-04T07:52:00+01:00");
    let isolate = specimens
        .iter()
        .find(|s| s["type"]["coding"][0]["code"] == "112283007")
        .expect("isolate 1");
    let isolate_url = full_url_of(&b, isolate);
    // Antibiogram panels hold their members; the isolate's results refer to the isolate.
    let panels = by_code(&b, "18769-0");
    assert_eq!(panels.len(), 2);
    assert_eq!(panels[0]["hasMember"].as_array().unwrap().len(), 3);
    let amox = by_code(&b, "20-8");
    assert_eq!(amox.len(), 2);
    assert_eq!(amox[0]["specimen"]["reference"], isolate_url.as_str());
    assert_eq!(amox[0]["valueQuantity"]["comparator"], ">=");
    assert_eq!(amox[0]["interpretation"][0]["coding"][0]["code"], "R");
    let leuco = &by_code(&b, "30405-5")[0];
    assert_eq!(leuco["valueQuantity"]["code"], "/mL");
    assert_eq!(
        leuco["specimen"]["reference"],
        full_url_of(&b, urine).as_str()
    );
    // A coded result given only as text.
    let colour = &by_code(&b, "5778-6")[0];
    assert!(
        colour["valueCodeableConcept"]["text"].is_string(),
        "{colour}"
    );
}

#[test]
fn replacement_relates_to_the_replaced_document() {
    let (r, b) = record(&oru(&cda(MICRO), "C", &[]));
    assert_eq!(r.status, RecordStatus::Corrected);
    let doc = resources(&b, "DocumentReference")
        .into_iter()
        .find(|d| d["masterIdentifier"].is_object())
        .unwrap();
    assert_eq!(doc["relatesTo"][0]["code"], "replaces");
    assert_eq!(
        doc["relatesTo"][0]["target"]["identifier"]["value"],
        "urn:oid:1.2.250.1.213.1.1.1.55.12345.8"
    );
    assert_eq!(by_code(&b, "30405-5")[0]["status"], "corrected");
    assert_eq!(resources(&b, "DiagnosticReport")[0]["status"], "corrected");
    // A replacement must say what it replaces.
    let (loc, reason) = malformed(&oru(&cda(TSH), "C", &[]));
    assert_eq!(loc, "OBX[1]-5 /ClinicalDocument/relatedDocument");
    assert!(reason.contains("RPLC"), "{reason}");
}

#[test]
fn deletion_withdraws_every_result() {
    let (r, b) = record(&oru(&cda(TSH), "D", &[]));
    assert_eq!(r.status, RecordStatus::EnteredInError);
    let observations = resources(&b, "Observation");
    assert_eq!(observations.len(), 2);
    assert!(
        observations
            .iter()
            .all(|o| o["status"] == "entered-in-error")
    );
    assert_eq!(
        resources(&b, "DiagnosticReport")[0]["status"],
        "entered-in-error"
    );
    assert!(
        resources(&b, "DocumentReference")
            .iter()
            .all(|d| d["status"] == "entered-in-error")
    );
}

#[test]
fn confidentiality_from_the_cda_and_the_meta_dmp_flags() {
    let restricted = cda(TSH).replacen(
        "<confidentialityCode code=\"N\"",
        "<confidentialityCode code=\"R\"",
        1,
    );
    assert_ne!(restricted, cda(TSH));
    let (r, b) = record(&oru(
        &restricted,
        "F",
        &[("MASQUE_PS", "Y"), ("INVISIBLE_REP_LEGAUX", "Y")],
    ));
    assert_eq!(r.confidentiality.level, ConfidentialityLevel::Restricted);
    assert_eq!(
        r.confidentiality.flags,
        [
            VisibilityFlag::MasquePs,
            VisibilityFlag::InvisibleRepresentantsLegaux
        ]
    );
    let doc = resources(&b, "DocumentReference")
        .into_iter()
        .find(|d| d["masterIdentifier"].is_object())
        .unwrap();
    let labels: Vec<&str> = doc["securityLabel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["R", "MASQUE_PS", "INVISIBLE_REPRESENTANTS_LEGAUX"]);
}

#[test]
fn placeholders_that_are_not_xml_stay_plain_documents() {
    // The ANS examples carry a text placeholder, not a CDA: kept as is, no results.
    let text = oru("Document medical au format CDA niveau 1", "F", &[]);
    let (r, b) = record(&text);
    assert_eq!(r.status, RecordStatus::Final);
    assert!(resources(&b, "Observation").is_empty());
    assert_eq!(resources(&b, "DocumentReference").len(), 2);
}

#[test]
fn malformed_documents_say_where_and_why() {
    let tsh = cda(TSH);
    // Truncated document: an XML error with its line in the decoded CDA.
    let (loc, reason) = malformed(&oru(&tsh[..tsh.len() / 2], "F", &[]));
    assert!(loc.starts_with("OBX[1]-5 line "), "{loc}");
    assert!(reason.contains("not well-formed XML"), "{reason}");
    // Not XML at all once decoded, but claiming to be: stays a document (see above); bad
    // base64 is refused at the OBX.
    let bad = oru(&tsh, "F", &[]).replacen("PD94bWwg", "PD9*bWwg", 1);
    let (loc, reason) = malformed(&bad);
    assert_eq!(loc, "OBX[1]-5");
    assert!(reason.contains("base64"), "{reason}");
    // Another CDA volet announced as a CR-BIO.
    let rcp = cda("CANCER-FRCP_2022.01_Appareil.xml");
    let (loc, reason) = malformed(&oru(&rcp, "F", &[]));
    assert_eq!(loc, "OBX[1]-5 /ClinicalDocument/code");
    assert!(reason.contains("34794-8"), "{reason}");
    // A result without a code.
    let no_code = rename_first(&tsh, "<code code=\"3016-3\"", "code", "codeX");
    let (loc, reason) = malformed(&oru(&no_code, "F", &[]));
    assert!(
        loc.starts_with("OBX[1]-5 /ClinicalDocument/component/structuredBody/"),
        "{loc}"
    );
    assert!(loc.ends_with("/observation/code"), "{loc}");
    assert_eq!(reason, "missing");
    // A quantity that is not a number.
    let nan = tsh.replacen("value=\"1.950\"", "value=\"1,950\"", 1);
    let (loc, reason) = malformed(&oru(&nan, "F", &[]));
    assert!(loc.ends_with("/observation/value/@value"), "{loc}");
    assert!(reason.contains("not a decimal"), "{reason}");
    // No document id.
    let no_id = tsh.replacen(
        "<id root=\"1.2.250.1.213.1.1.1.55.2024.9.1\"",
        "<idX root=\"x\"",
        1,
    );
    assert_ne!(no_id, tsh);
    let (loc, _) = malformed(&oru(&no_id, "F", &[]));
    assert_eq!(loc, "OBX[1]-5 /ClinicalDocument/id");
    // Another patient's document.
    let other = tsh.replacen(
        "extension=\"279035121518989\"",
        "extension=\"180035121518911\"",
        1,
    );
    assert_ne!(other, tsh);
    let (loc, reason) = malformed(&oru(&other, "F", &[]));
    assert_eq!(
        loc,
        "OBX[1]-5 /ClinicalDocument/recordTarget/patientRole/id"
    );
    assert!(reason.contains("INS"), "{reason}");
}

#[test]
fn the_segur_sample_as_sent() {
    let text = shared(
        "ansforge-hl7v2-exemples/Vague 2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/ORU/Transmission initiale ORU/message_ORU_CR_Bio_INIT_N3_SEGUR.hl7",
    );
    let (r, b) = record(&text);
    assert_eq!(r.status, RecordStatus::Final);
    let valued = resources(&b, "Observation")
        .into_iter()
        .filter(|o| {
            o.as_object()
                .is_some_and(|m| m.keys().any(|k| k.starts_with("value")))
        })
        .count();
    // 64 observations with a value in the lab sections (the 65th is the PDF copy's type), of
    // which 20 are prior results (`entryRelationship[@typeCode='REFR']` of a result): 44.
    assert_eq!(valued, 44);
    assert!(by_code(&b, "2885-2")[0]["valueQuantity"]["code"] == "g/L");
}
