//! The dcc-oncology adapter (CDA R2 Fiche RCP), built as a component and run in the sandbox:
//! both ANS Fiche RCP examples adapt, their Bundles validate against FHIR R4 (external
//! validator), the Composition carries every section of the CDA and the Condition the ICD-10
//! topography (both read here from the XML independently of the SDK), and malformed input is
//! rejected with a location.

use std::io::Write;

use passerelle::plugin::{Inbound, Plugin, PluginEngine, PluginError, Rejection};
use passerelle_tests::adapt;
use passerelle_tests::{samples, validate_fhir_file};
use serde_json::Value;

const SAMPLES: [&str; 2] = [
    "CANCER-FRCP_2022.01_Appareil.xml",
    "CANCER-FRCP_2022.01_Transversale.xml",
];

fn plugin(engine: &PluginEngine) -> Plugin {
    adapt::load_plugin(engine, "dcc-oncology", "{}")
}

fn inbound(payload: &[u8]) -> Inbound {
    adapt::inbound(payload, "application/xml")
}

fn sample(name: &str) -> String {
    let path = samples()
        .join("ansforge-testcontenucda/ExemplesCDA")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The XML without its comments (the ANS examples comment out alternative markup).
fn without_comments(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        rest = rest[start..]
            .find("-->")
            .map_or("", |end| &rest[start + end + 3..]);
    }
    out.push_str(rest);
    out
}

/// The value of `name="…"` in a start tag.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    tag[start..].split('"').next()
}

/// The LOINC code of every `<section>` (nested ones included), from the first `<code …>` that
/// follows its start tag.
fn section_codes(xml: &str) -> Vec<String> {
    let xml = without_comments(xml);
    let mut codes: Vec<String> = xml
        .split("<section>")
        .skip(1)
        .filter_map(|after| {
            let tag = &after[after.find("<code ")?..];
            let tag = &tag[..tag.find('>')?];
            Some(attribute(tag, "code")?.to_string())
        })
        .collect();
    codes.sort();
    codes
}

/// Every ICD-10 code (code system 2.16.840.1.113883.6.3) of the document: the topography.
fn icd10_codes(xml: &str) -> Vec<String> {
    let xml = without_comments(xml);
    let mut codes: Vec<String> = xml
        .split('<')
        .map(|tag| tag.split('>').next().unwrap_or(""))
        .filter(|tag| attribute(tag, "codeSystem") == Some("2.16.840.1.113883.6.3"))
        .filter_map(|tag| attribute(tag, "code").map(str::to_string))
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

fn resources<'a>(bundle: &'a Value, kind: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == kind)
        .collect()
}

/// The LOINC codes of a Composition's sections, nested ones included.
fn composition_codes(sections: &Value, out: &mut Vec<String>) {
    for s in sections.as_array().into_iter().flatten() {
        if let Some(code) = s["code"]["coding"][0]["code"].as_str() {
            out.push(code.to_string());
        }
        composition_codes(&s["section"], out);
    }
}

/// Whether the external validator can run; panics when it cannot and the tools are required.

#[test]
fn fiche_rcp_samples_adapt_and_validate() {
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    let dir = tempfile::tempdir().unwrap();
    let bundles_path = dir.path().join("bundles.ndjson");
    let mut bundles = std::fs::File::create(&bundles_path).unwrap();
    for name in SAMPLES {
        let xml = sample(name);
        let out = plugin
            .adapt(&inbound(xml.as_bytes()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.records.len(), 1, "{name}");
        assert_eq!(out.message_type.as_deref(), Some("34794-8"));
        let record = &out.records[0];
        let envelope = &record.envelope;
        assert_eq!(envelope.kind, "oncology-meeting", "{name}");
        assert_eq!(
            envelope.event_time.as_deref(),
            Some("2019-02-18T17:11:00+01:00"),
            "{name}"
        );
        let ins = envelope.patient.ins.as_ref().expect("an INS");
        assert_eq!(
            (ins.system.as_str(), ins.value.as_str()),
            ("urn:oid:1.2.250.1.213.1.4.10", "279035121518989")
        );
        assert_eq!(envelope.patient.local_ids[0].value, "1234567890121");
        assert_eq!(envelope.confidentiality.level, "N");
        let codes: Vec<&str> = envelope.codes.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes[0], "34794-8", "{name}");

        let bundle: Value = serde_json::from_str(record.bundle.get()).unwrap();
        assert_eq!(bundle["type"], "document");
        assert_eq!(
            bundle["entry"][0]["resource"]["resourceType"],
            "Composition"
        );

        // Every section of the CDA, counted in the XML, is in the Composition with its code.
        let expected = section_codes(&xml);
        assert!(
            expected.len() >= 20,
            "{name}: only {} sections read",
            expected.len()
        );
        let composition = resources(&bundle, "Composition")[0];
        let mut found = Vec::new();
        composition_codes(&composition["section"], &mut found);
        found.sort();
        assert_eq!(
            found, expected,
            "{name}: Composition sections differ from the CDA's"
        );
        for s in composition["section"].as_array().unwrap() {
            let has_text = s["text"]["div"]
                .as_str()
                .is_some_and(|d| d.contains("xhtml"));
            assert!(
                s["title"].is_string() && (has_text || s["section"].is_array()),
                "{name}: {s}"
            );
        }

        // The Condition carries the ICD-10 topography of the document, and so does the envelope.
        let topography = icd10_codes(&xml);
        assert_eq!(topography, ["C50.2"], "{name}");
        let conditions = resources(&bundle, "Condition");
        assert!(!conditions.is_empty(), "{name}: no Condition");
        for code in &topography {
            assert!(
                conditions.iter().any(|c| c["code"]["coding"][0]["system"]
                    == "http://hl7.org/fhir/sid/icd-10"
                    && c["code"]["coding"][0]["code"] == code.as_str()),
                "{name}: no Condition coded {code}"
            );
            assert!(
                codes.contains(&code.as_str()),
                "{name}: {code} not in the envelope codes"
            );
        }

        let plan = resources(&bundle, "CarePlan");
        assert_eq!(plan.len(), 1, "{name}");
        assert_eq!(
            (plan[0]["intent"].as_str(), plan[0]["status"].as_str()),
            (Some("proposal"), Some("active"))
        );
        assert!(
            plan[0]["description"]
                .as_str()
                .is_some_and(|d| d.contains("Radiothérapie")),
            "{name}"
        );
        let encounter = resources(&bundle, "Encounter")[0];
        assert_eq!(encounter["class"]["code"], "VR");
        assert!(
            encounter["identifier"]
                .to_string()
                .contains("urn:oid:1.2.250.1.161.1.20.3.1")
        );
        let practitioners = resources(&bundle, "Practitioner");
        assert!(
            practitioners.len() >= 5,
            "{name}: {} practitioners",
            practitioners.len()
        );
        assert!(
            practitioners
                .iter()
                .any(|p| p["qualification"][0]["code"]["coding"][0]["code"] == "G15_10/SM36")
        );
        let document = resources(&bundle, "DocumentReference")[0];
        assert_eq!(document["type"]["coding"][0]["code"], "34794-8");
        assert_eq!(
            document["content"][0]["attachment"]["contentType"],
            "text/xml"
        );
        assert_eq!(document["content"][0]["attachment"]["size"], xml.len());

        writeln!(bundles, "{}", record.bundle.get()).unwrap();

        // A second run gives the same bundle.
        let again = plugin.adapt(&inbound(xml.as_bytes())).unwrap();
        assert_eq!(
            again.records[0].bundle.get(),
            record.bundle.get(),
            "{name}: not deterministic"
        );
    }
    bundles.flush().unwrap();
    drop(bundles);
    validate_fhir_file(&bundles_path, SAMPLES.len());
}

#[test]
fn malformed_fiches_are_rejected_with_a_location() {
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    let good = sample(SAMPLES[0]);
    let cr_bio = std::fs::read_to_string(
        samples().join("ansforge-testcontenucda/ExemplesCDA/BIO-CR-BIO_2024.01_TSH_1.xml"),
    )
    .unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "invalid XML",
            good.as_bytes()[..good.len() / 2].to_vec(),
            "line ",
        ),
        (
            "not UTF-8",
            b"<ClinicalDocument>\xff</ClinicalDocument>".to_vec(),
            "byte ",
        ),
        (
            "wrong root",
            br#"<Bundle xmlns="http://hl7.org/fhir"/>"#.to_vec(),
            "/{http://hl7.org/fhir}Bundle",
        ),
        (
            "wrong namespace",
            good.replacen(r#"xmlns="urn:hl7-org:v3""#, r#"xmlns="urn:example""#, 1)
                .into_bytes(),
            "/{urn:example}ClinicalDocument",
        ),
        (
            "wrong document code",
            cr_bio.into_bytes(),
            "/ClinicalDocument/code/@code",
        ),
        (
            "no patient identifier",
            good.replacen(
                r#"<id extension="279035121518989" root="1.2.250.1.213.1.4.10"/>"#,
                "",
                1,
            )
            .replacen(
                r#"<id extension="1234567890121" root="1.2.3.4.567.8.9.10" />"#,
                "",
                1,
            )
            .into_bytes(),
            "/ClinicalDocument/recordTarget/patientRole/id",
        ),
        (
            "no effectiveTime",
            good.replacen(r#"<effectiveTime value="20190218094914+0100" />"#, "", 1)
                .into_bytes(),
            "/ClinicalDocument/effectiveTime/@value",
        ),
    ];
    for (what, payload, location) in cases {
        let err = plugin.adapt(&inbound(&payload)).expect_err(what);
        assert!(err.is_rejection(), "{what}: {err}");
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
                assert!(!reason.is_empty(), "{what}: no reason");
            }
            other => panic!("{what}: expected a malformed rejection, got {other}"),
        }
    }
    // The plugin still works after the rejections.
    assert_eq!(
        plugin
            .adapt(&inbound(good.as_bytes()))
            .unwrap()
            .records
            .len(),
        1
    );
}
