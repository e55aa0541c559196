//! French CR-BIO lab reports carried as a CDA R2 document in an ORU^R01 OBX of type ED (ANS volet
//! "Transmission de document(s) CDA en HL7v2"), through the real hl7v2-lab component in the
//! sandbox: every result of each ANS CR-BIO example (read here from the XML independently of
//! the plugin SDK) reaches an Observation with its code, value and unit; the Bundles validate;
//! OBX-11 C/D, the MetaDMPMSS flags and malformed documents are handled.

use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use passerelle::plugin::{Inbound, Plugin, PluginEngine, PluginError, Rejection};
use passerelle::record::Record;
use passerelle_tests::adapt;
use passerelle_tests::{files_under, passerelle_bin, samples, validate_fhir_file, wasm};
use serde_json::Value;

const HL7: &str = "urn:hl7-org:v3";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
const LOINC_OID: &str = "2.16.840.1.113883.6.1";
const PLACEHOLDER: &str = "RG9jdW1lbnQgbWVkY2lhbCBhdSBmb3JtYXQgQ0RBIG5pdmVhdSAx";
const ANS_ORU: &str = "ansforge-hl7v2-exemples/Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/Transmission initiale ORU/message_ORU_CR_Bio_INIT_N1_N3.hl7";
const SEGUR_ORU: &str = "ansforge-hl7v2-exemples/Vague 2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/ORU/Transmission initiale ORU/message_ORU_CR_Bio_INIT_N3_SEGUR.hl7";

fn plugin(engine: &PluginEngine) -> Plugin {
    adapt::load_plugin(engine, "hl7v2-lab", "{}")
}

fn inbound(payload: &str) -> Inbound {
    adapt::inbound(payload.as_bytes(), "x-application/hl7-v2+er7")
}

fn read(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every CR-BIO CDA of the ANS corpus: the TestContenuCDA examples and the CDA inside the
/// Ségur ORU (the only ANS ORU whose ED holds a real document).
fn cr_bio_documents() -> Vec<(String, String)> {
    let dir = samples().join("ansforge-testcontenucda/ExemplesCDA");
    let mut out: Vec<(String, String)> = files_under(&dir, &[".xml"])
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("CR-BIO"))
        .map(|p| {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            (name, read(&p))
        })
        .collect();
    assert_eq!(out.len(), 3, "the 3 ANS CR-BIO examples");
    let segur = read(&samples().join(SEGUR_ORU));
    let obx5 = segur
        .lines()
        .find(|l| l.starts_with("OBX|1|ED|"))
        .and_then(|l| l.split('|').nth(5))
        .expect("the Ségur ORU's OBX-5");
    let data = obx5.split('^').nth(4).expect("ED data");
    let cda = B64.decode(data.trim()).expect("Ségur base64");
    out.push((
        "Ségur ORU".into(),
        String::from_utf8(cda).expect("Ségur CDA is UTF-8"),
    ));
    out
}

/// The ANS initial-transmission ORU^R01 with `cda` base64-encoded in OBX[1]-5 (segments joined
/// with CR), OBX-11 of both documents set to `status`, and the MetaDMPMSS values of `meta`.
fn oru(cda: &str, status: &str, meta: &[&str]) -> String {
    let mut first = true;
    read(&samples().join(ANS_ORU))
        .lines()
        .map(|line| {
            let mut line = line.to_string();
            if line.starts_with("OBX|") && line.contains(PLACEHOLDER) {
                if first {
                    line = line.replacen(PLACEHOLDER, &B64.encode(cda), 1);
                    first = false;
                }
                line = line.replacen("||||||F|", &format!("||||||{status}|"), 1);
            }
            if meta.iter().any(|m| line.contains(&format!("|{m}^"))) {
                line = line.replacen("|N^^expandedYes", "|Y^^expandedYes", 1);
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\r")
}

/// One result as the CDA states it: code system (FHIR URI) and code, value and unit.
#[derive(Debug, Clone)]
struct Expected {
    system: String,
    code: String,
    value: ExpectedValue,
}

#[derive(Debug, Clone)]
enum ExpectedValue {
    /// PQ, or an IVL_PQ with one bound: number and UCUM unit.
    Quantity(f64, String),
    /// IVL_PQ with both bounds.
    Range(f64, f64, String),
    /// CD: the code, or only a text.
    Coded(Option<String>),
}

fn is(node: roxmltree::Node, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(HL7)
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|c| is(*c, name))
}

fn number(node: roxmltree::Node) -> (f64, String) {
    let v = node.attribute("value").expect("PQ value");
    (
        v.parse().unwrap_or_else(|_| panic!("PQ value {v}")),
        node.attribute("unit").unwrap_or("1").to_string(),
    )
}

/// The valued result observations of a CR-BIO, read with roxmltree alone: every `observation`
/// inside a section `entry`, except in the "Copie du document" section (55108-5, the PDF) and
/// the prior results ("antériorités") a result carries in its own `entryRelationship`.
fn expected_results(cda: &str) -> Vec<Expected> {
    let doc = roxmltree::Document::parse(cda).expect("CDA XML");
    let mut out = Vec::new();
    for obs in doc.descendants().filter(|n| is(*n, "observation")) {
        let in_entry = obs.ancestors().any(|a| is(a, "entry"));
        let prior = obs.ancestors().skip(1).any(|a| is(a, "observation"));
        let section = obs.ancestors().find(|a| is(*a, "section"));
        let pdf_copy = section
            .and_then(|s| child(s, "code"))
            .is_some_and(|c| c.attribute("code") == Some("55108-5"));
        let Some(value) = child(obs, "value") else {
            continue;
        };
        if !in_entry || pdf_copy || prior {
            continue;
        }
        let code = child(obs, "code").expect("observation code");
        let (system, code) = match (code.attribute("code"), code.attribute("codeSystem")) {
            (Some(c), Some(LOINC_OID)) => ("http://loinc.org".to_string(), c.to_string()),
            _ => {
                let t = child(code, "translation").expect("a translation when no LOINC");
                (
                    format!("urn:oid:{}", t.attribute("codeSystem").expect("system")),
                    t.attribute("code").expect("code").to_string(),
                )
            }
        };
        let value = match value.attribute((XSI, "type")) {
            Some("PQ") => {
                let (v, u) = number(value);
                ExpectedValue::Quantity(v, u)
            }
            Some("IVL_PQ") => match (child(value, "low"), child(value, "high")) {
                (Some(l), Some(h)) => {
                    let ((l, u), (h, _)) = (number(l), number(h));
                    ExpectedValue::Range(l, h, u)
                }
                (Some(b), None) | (None, Some(b)) => {
                    let (v, u) = number(b);
                    ExpectedValue::Quantity(v, u)
                }
                (None, None) => panic!("IVL_PQ without bounds"),
            },
            Some("CD") | Some("CE") => {
                ExpectedValue::Coded(value.attribute("code").map(str::to_string))
            }
            other => panic!("value type {other:?} not expected in the ANS examples"),
        };
        out.push(Expected {
            system,
            code,
            value,
        });
    }
    out
}

fn close(v: &Value, expected: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - expected).abs() < 1e-9)
}

/// Whether an Observation carries the expected result.
fn carries(obs: &Value, e: &Expected) -> bool {
    let coded = obs["code"]["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["system"] == e.system.as_str() && c["code"] == e.code.as_str());
    let value = match &e.value {
        ExpectedValue::Quantity(v, unit) => {
            let q = &obs["valueQuantity"];
            close(&q["value"], *v)
                && q["code"] == unit.as_str()
                && q["system"] == "http://unitsofmeasure.org"
        }
        ExpectedValue::Range(low, high, unit) => {
            let r = &obs["valueRange"];
            close(&r["low"]["value"], *low)
                && close(&r["high"]["value"], *high)
                && r["low"]["code"] == unit.as_str()
        }
        ExpectedValue::Coded(Some(code)) => obs["valueCodeableConcept"]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["code"] == code.as_str()),
        ExpectedValue::Coded(None) => obs["valueCodeableConcept"]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
    };
    coded && value
}

fn resources<'a>(bundle: &'a Value, ty: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == ty)
        .collect()
}

fn bundle(record: &Record) -> Value {
    serde_json::from_str(record.bundle.get()).expect("bundle JSON")
}

/// Writes the bundles to a file and validates them with the external FHIR validator.
fn validate(records: &[Record]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bundles.ndjson");
    let lines: Vec<&str> = records.iter().map(|r| r.bundle.get()).collect();
    std::fs::write(&path, lines.join("\n")).expect("writing bundles");
    validate_fhir_file(&path, records.len());
}

#[test]
fn every_cda_result_reaches_an_observation_with_code_value_and_unit() {
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    let mut all = Vec::new();
    for (label, cda) in cr_bio_documents() {
        let expected = expected_results(&cda);
        assert!(!expected.is_empty(), "{label}: no result found in the CDA");
        let out = plugin
            .adapt(&inbound(&oru(&cda, "F", &[])))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(out.records.len(), 1, "{label}");
        let record = &out.records[0];
        assert_eq!(record.envelope.status, "final", "{label}");
        let b = bundle(record);
        let valued: Vec<&Value> = resources(&b, "Observation")
            .into_iter()
            .filter(|o| {
                o.as_object()
                    .is_some_and(|m| m.keys().any(|k| k.starts_with("value")))
            })
            .collect();
        // Each CDA result is found once (a multiset match: the same antibiotic is tested on
        // two isolates), and there is no other valued Observation.
        let mut used = vec![false; valued.len()];
        for e in &expected {
            let found = valued
                .iter()
                .enumerate()
                .position(|(i, o)| !used[i] && carries(o, e));
            match found {
                Some(i) => used[i] = true,
                None => panic!("{label}: no Observation carries {e:?}"),
            }
        }
        assert_eq!(valued.len(), expected.len(), "{label}: extra Observations");
        // The document itself is kept, with its id and the attachment as sent.
        let docs = resources(&b, "DocumentReference");
        let doc = docs
            .iter()
            .find(|d| d["masterIdentifier"].is_object())
            .unwrap_or_else(|| panic!("{label}: no DocumentReference for the CDA"));
        assert_eq!(
            doc["content"][0]["attachment"]["data"],
            B64.encode(&cda).as_str(),
            "{label}"
        );
        assert_eq!(doc["type"]["coding"][0]["code"], "11502-2", "{label}");
        // The routing codes include the results' LOINC codes.
        let loinc = expected.iter().find(|e| e.system == "http://loinc.org");
        if let Some(e) = loinc {
            assert!(
                record.envelope.codes.iter().any(|c| c.code == e.code),
                "{label}: {} not in the envelope codes",
                e.code
            );
        }
        eprintln!("{label}: {} results found", expected.len());
        all.extend(out.records);
    }
    validate(&all);
}

#[test]
fn the_segur_sample_as_sent_gives_its_results() {
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    let text = read(&samples().join(SEGUR_ORU));
    let out = plugin.adapt(&inbound(&text)).expect("Ségur ORU");
    let b = bundle(&out.records[0]);
    let report = resources(&b, "DiagnosticReport")[0];
    assert!(report["result"].as_array().is_some_and(|r| r.len() > 10));
    assert!(!resources(&b, "Specimen").is_empty());
    validate(&out.records);
}

#[test]
fn replacement_and_deletion() {
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    let docs = cr_bio_documents();
    let micro = &docs
        .iter()
        .find(|(n, _)| n.contains("Microbiologie"))
        .expect("microbiology example")
        .1;
    // C: the replacement names the document it replaces (CDA relatedDocument RPLC).
    let out = plugin
        .adapt(&inbound(&oru(micro, "C", &[])))
        .expect("replacement");
    let r = &out.records[0];
    assert_eq!(r.envelope.status, "corrected");
    let b = bundle(r);
    let doc = resources(&b, "DocumentReference")
        .into_iter()
        .find(|d| d["masterIdentifier"].is_object())
        .expect("the CDA's DocumentReference");
    assert_eq!(doc["relatesTo"][0]["code"], "replaces");
    assert_eq!(
        doc["relatesTo"][0]["target"]["identifier"]["value"],
        "urn:oid:1.2.250.1.213.1.1.1.55.12345.8"
    );
    assert!(
        resources(&b, "Observation")
            .iter()
            .all(|o| o["status"] == "corrected")
    );
    let mut records = out.records;
    // D: a deletion record; every result withdrawn.
    let out = plugin
        .adapt(&inbound(&oru(micro, "D", &[])))
        .expect("deletion");
    let r = &out.records[0];
    assert_eq!(r.envelope.status, "entered-in-error");
    let b = bundle(r);
    assert!(!resources(&b, "Observation").is_empty());
    for ty in ["Observation", "DiagnosticReport", "DocumentReference"] {
        for res in resources(&b, ty) {
            assert_eq!(res["status"], "entered-in-error", "{ty}");
        }
    }
    records.extend(out.records);
    validate(&records);
}

#[test]
fn meta_dmp_flags_and_cda_confidentiality_reach_the_envelope() {
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    let docs = cr_bio_documents();
    let tsh = &docs.iter().find(|(n, _)| n.contains("TSH")).expect("TSH").1;
    let out = plugin
        .adapt(&inbound(&oru(tsh, "F", &[])))
        .expect("no flags");
    let c = &out.records[0].envelope.confidentiality;
    assert_eq!((c.level.as_str(), c.flags.len()), ("N", 0));
    let restricted = tsh.replacen(
        r#"<confidentialityCode code="N""#,
        r#"<confidentialityCode code="V""#,
        1,
    );
    assert_ne!(&restricted, tsh);
    let flags = ["MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REP_LEGAUX"];
    let out = plugin
        .adapt(&inbound(&oru(&restricted, "F", &flags)))
        .expect("flags");
    let c = &out.records[0].envelope.confidentiality;
    assert_eq!(c.level, "V");
    assert_eq!(
        c.flags,
        [
            "MASQUE_PS",
            "INVISIBLE_PATIENT",
            "INVISIBLE_REPRESENTANTS_LEGAUX"
        ]
    );
    validate(&out.records);
}

/// The TSH example with its first result's `code` element renamed (so absent).
fn without_result_code(tsh: &str) -> String {
    let at = tsh.find(r#"<code code="3016-3""#).expect("TSH code");
    let end = at + tsh[at..].find("</code>").expect("end of the code");
    format!(
        "{}<codeX{}</codeX>{}",
        &tsh[..at],
        &tsh[at + "<code".len()..end],
        &tsh[end + "</code>".len()..]
    )
}

#[test]
fn malformed_documents_are_rejected_naming_the_place() {
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    let docs = cr_bio_documents();
    let tsh = docs
        .iter()
        .find(|(n, _)| n.contains("TSH"))
        .expect("TSH")
        .1
        .clone();
    let good = oru(&tsh, "F", &[]);
    let rcp = read(
        &samples().join("ansforge-testcontenucda/ExemplesCDA/CANCER-FRCP_2022.01_Appareil.xml"),
    );
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "truncated CDA",
            oru(&tsh[..tsh.len() * 2 / 3], "F", &[]),
            "OBX[1]-5 line ",
            "not well-formed XML",
        ),
        (
            "invalid XML",
            oru(&tsh.replacen("<title>", "<title><<", 1), "F", &[]),
            "OBX[1]-5 line ",
            "not well-formed XML",
        ),
        (
            "bad base64",
            good.replacen("PD94bWwg", "PD9!bWwg", 1),
            "OBX[1]-5",
            "base64",
        ),
        (
            "truncated base64",
            {
                let encoded = B64.encode(&tsh);
                good.replacen(&encoded, &encoded[..4001], 1)
            },
            "OBX[1]-5",
            "not valid base64",
        ),
        (
            "another volet announced as CR-BIO",
            oru(&rcp, "F", &[]),
            "OBX[1]-5 /ClinicalDocument/code",
            "34794-8",
        ),
        (
            "result without a code",
            oru(&without_result_code(&tsh), "F", &[]),
            "OBX[1]-5 /ClinicalDocument/component/structuredBody/component",
            "missing",
        ),
        (
            "replacement without relatedDocument",
            oru(&tsh, "C", &[]),
            "OBX[1]-5 /ClinicalDocument/relatedDocument",
            "RPLC",
        ),
        (
            "no document id",
            oru(
                &tsh.replacen(r#"<id root="1.2.250.1.213.1.1.1.55.2024.9.1"/>"#, "", 1),
                "F",
                &[],
            ),
            "OBX[1]-5 /ClinicalDocument/id",
            "missing",
        ),
    ];
    for (what, payload, location, reason_part) in cases {
        let err = plugin.adapt(&inbound(&payload)).expect_err(what);
        match &err {
            PluginError::Rejected {
                rejection:
                    Rejection::Malformed {
                        location: at,
                        reason,
                    },
                ..
            } => {
                assert!(
                    at.starts_with(location),
                    "{what}: location {at:?}, expected {location:?}"
                );
                assert!(reason.contains(reason_part), "{what}: reason {reason:?}");
            }
            other => panic!("{what}: expected a malformed rejection, got {other}"),
        }
    }
    // The instance still works after the rejections (no trap, no poisoned state).
    assert_eq!(
        plugin.adapt(&inbound(&good)).expect("good").records.len(),
        1
    );
}

#[test]
fn cli_adapt_prints_the_results() {
    let docs = cr_bio_documents();
    let crp = &docs.iter().find(|(n, _)| n.contains("CRP")).expect("CRP").1;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("crp.hl7");
    std::fs::write(&file, oru(crp, "F", &[])).expect("writing the ORU");
    let out = Command::new(passerelle_bin())
        .args(["adapt", "--plugin"])
        .arg(wasm("hl7v2-lab"))
        .arg(&file)
        .output()
        .expect("running passerelle adapt");
    assert!(
        out.status.success(),
        "passerelle adapt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| !l.trim().is_empty())
        .expect("a record");
    let record: Value = serde_json::from_str(line).expect("a JSON record");
    let crp_obs = resources(&record["bundle"], "Observation")
        .into_iter()
        .find(|o| o["code"]["coding"][0]["code"] == "1234")
        .expect("the CRP result (local code)");
    assert_eq!(
        crp_obs["code"]["coding"][0]["system"],
        "urn:oid:1.2.250.1.2.3.4"
    );
    assert_eq!(crp_obs["valueQuantity"]["comparator"], "<=");
    assert_eq!(crp_obs["valueQuantity"]["code"], "mg/L");
}
