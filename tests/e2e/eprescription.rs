//! The eprescription adapter, built as a component and run in the sandbox: every RDE^O11 and
//! eP-MED-DM sample adapts and validates against FHIR R4 (external validator); RDE-O11-01's
//! line carries the facts of its input and agrees with Microsoft FHIR-Converter's expected
//! output on values; bad inputs are rejected with a location.

use std::io::Write;
use std::path::{Path, PathBuf};

use passerelle::plugin::{Plugin, PluginEngine, PluginError, Rejection};
use passerelle_tests::adapt::{self, inbound, message_type};
use passerelle_tests::{files_under, samples, validate_fhir_file};
use serde_json::Value;

const HL7: &str = "x-application/hl7-v2+er7";
const XML: &str = "text/xml";

fn plugin(engine: &PluginEngine) -> Plugin {
    adapt::load_plugin(engine, "eprescription", "{}")
}

fn label(path: &Path) -> String {
    path.strip_prefix(samples())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Every RDE^O11 message and every eP-MED-DM (57833-6) CDA document of the sample corpus.
fn prescription_samples() -> Vec<(String, Vec<u8>, &'static str)> {
    let s = samples();
    let mut out = Vec::new();
    for file in files_under(&s, &[".hl7", ".er7"]) {
        let bytes = std::fs::read(&file).unwrap();
        if message_type(&String::from_utf8_lossy(&bytes)) == "RDE^O11" {
            out.push((label(&file), bytes, HL7));
        }
    }
    for file in files_under(&s.join("ansforge-testcontenucda"), &[".xml"]) {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let head = &text[..text.find("<component").unwrap_or(text.len())];
        if head.contains("code=\"57833-6\"") {
            out.push((label(&file), bytes, XML));
        }
    }
    out
}

/// Whether the external validator can run; panics when it cannot and the tools are required.

#[test]
fn every_prescription_sample_adapts_and_validates() {
    let all = prescription_samples();
    let hl7 = all.iter().filter(|s| s.2 == HL7).count();
    let cda = all.len() - hl7;
    assert!(hl7 >= 2, "only {hl7} RDE^O11 samples found");
    assert!(cda >= 1, "no eP-MED-DM sample found");
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("bundles.ndjson");
    let mut file = std::fs::File::create(&path).unwrap();
    let mut count = 0;
    for (label, payload, content_type) in &all {
        let out = plugin
            .adapt(&inbound(payload, content_type))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(out.records.len(), 1, "{label}: one record per message");
        let expected_type = if *content_type == HL7 {
            "RDE^O11"
        } else {
            "CDA^57833-6"
        };
        assert_eq!(out.message_type.as_deref(), Some(expected_type), "{label}");
        for record in &out.records {
            assert_eq!(record.envelope.kind, "prescription", "{label}");
            assert!(
                !record.envelope.codes.is_empty(),
                "{label}: no medication code"
            );
            let bundle: Value = serde_json::from_str(record.bundle.get()).unwrap();
            let lines = resources(&bundle, "MedicationRequest");
            assert!(!lines.is_empty(), "{label}: no MedicationRequest");
            let groups: Vec<&Value> = lines.iter().map(|l| &l["groupIdentifier"]).collect();
            assert!(
                groups.iter().all(|g| *g == groups[0] && !g.is_null()),
                "{label}: groupIdentifier"
            );
            writeln!(file, "{}", record.bundle.get()).unwrap();
            count += 1;
        }
    }
    file.flush().unwrap();
    drop(file);
    assert_eq!(plugin.trap_count(), 0);
    validate_fhir_file(&path, count);
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

/// A FHIR dateTime with time and zone as seconds since the epoch (to compare instants written
/// in different zones).
fn instant(text: &str) -> i64 {
    let (date, time) = text
        .split_once('T')
        .unwrap_or_else(|| panic!("{text}: no time"));
    let n: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let (y, m, d) = (n[0], n[1], n[2]);
    let (clock, sign, zone) = match time.find(['+', '-', 'Z']) {
        Some(i) => (&time[..i], &time[i..i + 1], &time[i + 1..]),
        None => panic!("{text}: no zone"),
    };
    let c: Vec<i64> = clock
        .split(['.', ':'])
        .take(3)
        .map(|p| p.parse().unwrap())
        .collect();
    let offset = if sign == "Z" {
        0
    } else {
        let z: Vec<i64> = zone.split(':').map(|p| p.parse().unwrap()).collect();
        let s = (z[0] * 60 + z[1]) * 60;
        if sign == "-" { -s } else { s }
    };
    // Days from civil (proleptic Gregorian).
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400 + c[0] * 3600 + c[1] * 60 + c[2] - offset
}

/// The fields of the first segment named `name` after the first segment named `after`
/// (HL7 v2 read by hand, without the SDK).
fn segment_after(text: &str, after: &str, name: &str) -> Vec<String> {
    text.split(['\r', '\n'])
        .skip_while(|l| !l.starts_with(&format!("{after}|")))
        .find(|l| l.starts_with(&format!("{name}|")))
        .unwrap_or_else(|| panic!("no {name} after {after}"))
        .split('|')
        .map(str::to_string)
        .collect()
}

fn comp(field: &str, n: usize) -> &str {
    field.split('^').nth(n - 1).unwrap_or("")
}

#[test]
fn rde_o11_01_carries_its_input_and_agrees_with_microsoft() {
    let path = samples().join("ms-fhir-converter/data/SampleData/Hl7v2/RDE-O11-01.hl7");
    let bytes = std::fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let engine = passerelle_tests::adapt::engine();
    let out = plugin(&engine).adapt(&inbound(&bytes, HL7)).unwrap();
    let bundle: Value = serde_json::from_str(out.records[0].bundle.get()).unwrap();
    let lines = resources(&bundle, "MedicationRequest");
    assert_eq!(lines.len(), 1);
    let mr = lines[0];
    let dosage = &mr["dosageInstruction"][0];

    // Facts read from the input.
    let rxe = segment_after(&text, "ORC", "RXE");
    let rxr = segment_after(&text, "RXE", "RXR");
    let orc = segment_after(&text, "MSH", "ORC");
    assert_eq!(
        mr["medicationCodeableConcept"]["coding"][0]["code"],
        comp(&rxe[2], 1)
    );
    assert_eq!(
        mr["medicationCodeableConcept"]["coding"][0]["display"],
        comp(&rxe[2], 2)
    );
    let dose = &dosage["doseAndRate"][0]["doseQuantity"];
    assert_eq!(dose["value"].as_f64(), rxe[3].parse::<f64>().ok());
    assert_eq!(dose["unit"], comp(&rxe[5], 2));
    assert_eq!(dosage["route"]["coding"][0]["code"], comp(&rxr[1], 1));
    assert_eq!(dosage["route"]["coding"][0]["display"], comp(&rxr[1], 2));
    assert_eq!(
        mr["dispenseRequest"]["quantity"]["value"].as_f64(),
        rxe[10].parse::<f64>().ok()
    );
    assert_eq!(
        mr["dispenseRequest"]["numberOfRepeatsAllowed"].as_u64(),
        rxe[12].parse::<u64>().ok()
    );
    assert_eq!(mr["status"], "active", "ORC-1 {}", orc[1]);
    assert_eq!(
        out.records[0].envelope.event_time.as_deref(),
        mr["authoredOn"].as_str()
    );

    // Microsoft's expected output for the same message: the RXE MedicationRequest
    // (filler-order) and its Medication. Values, not structure.
    let expected_path = samples().join(
        "ms-fhir-converter/src/Microsoft.Health.Fhir.Liquid.Converter.FunctionalTests/TestData/Expected/Hl7v2/RDE_O11/RDE-O11-01-expected.json",
    );
    let expected: Value = serde_json::from_slice(&std::fs::read(expected_path).unwrap()).unwrap();
    let ms = resources(&expected, "MedicationRequest")
        .into_iter()
        .find(|r| r["intent"] == "filler-order")
        .expect("Microsoft's RXE MedicationRequest");
    let ms_med_id = ms["medicationReference"]["reference"]
        .as_str()
        .unwrap()
        .trim_start_matches("Medication/");
    let ms_med = resources(&expected, "Medication")
        .into_iter()
        .find(|m| m["id"] == ms_med_id)
        .unwrap();
    let coding = &mr["medicationCodeableConcept"]["coding"][0];
    assert_eq!(coding["code"], ms_med["code"]["coding"][0]["code"]);
    assert_eq!(coding["system"], ms_med["code"]["coding"][0]["system"]);
    assert_eq!(
        mr["medicationCodeableConcept"]["text"],
        ms_med["code"]["text"]
    );
    let ms_dosage = &ms["dosageInstruction"][0];
    let ms_dose = &ms_dosage["doseAndRate"][0]["doseQuantity"];
    assert_eq!(dose["value"], ms_dose["value"]);
    assert_eq!(dose["unit"], ms_dose["unit"]);
    assert_eq!(
        dosage["route"]["coding"][0]["code"],
        ms_dosage["route"]["coding"][0]["code"]
    );
    assert_eq!(
        dosage["site"]["coding"][0]["code"],
        ms_dosage["site"]["coding"][0]["code"]
    );
    assert_eq!(
        dosage["asNeededCodeableConcept"]["text"],
        ms_dosage["asNeededCodeableConcept"]["text"]
    );
    let (repeat, ms_repeat) = (&dosage["timing"]["repeat"], &ms_dosage["timing"]["repeat"]);
    for key in ["period", "periodUnit", "count", "when"] {
        assert_eq!(repeat[key], ms_repeat[key], "timing.repeat.{key}");
    }
    for bound in ["start", "end"] {
        assert_eq!(
            instant(repeat["boundsPeriod"][bound].as_str().unwrap()),
            instant(ms_repeat["boundsPeriod"][bound].as_str().unwrap()),
            "boundsPeriod.{bound}"
        );
    }
    assert_eq!(
        instant(mr["authoredOn"].as_str().unwrap()),
        instant(ms["authoredOn"].as_str().unwrap())
    );
    let (dr, ms_dr) = (&mr["dispenseRequest"], &ms["dispenseRequest"]);
    assert_eq!(dr["quantity"]["value"], ms_dr["quantity"]["value"]);
    assert_eq!(dr["quantity"]["unit"], ms_dr["quantity"]["unit"]);
    assert_eq!(
        dr["numberOfRepeatsAllowed"],
        ms_dr["numberOfRepeatsAllowed"]
    );
    // The requester: RXE-13 (ORC-12 is empty), the same person as Microsoft's.
    let requester = mr["requester"]["reference"].as_str().unwrap();
    let ours = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["fullUrl"] == requester)
        .map(|e| &e["resource"])
        .unwrap();
    assert_eq!(ours["name"][0]["family"], "TEST ONE");
    assert!(
        resources(&expected, "Practitioner")
            .iter()
            .any(|p| p["name"][0]["family"] == ours["name"][0]["family"]
                && p["name"][0]["given"] == ours["name"][0]["given"])
    );
}

/// The location of a malformed-input rejection.
fn rejected_at(plugin: &Plugin, payload: &[u8], content_type: &str) -> String {
    match plugin.adapt(&inbound(payload, content_type)) {
        Err(PluginError::Rejected {
            rejection: Rejection::Malformed { location, reason },
            ..
        }) => {
            assert!(!reason.is_empty());
            location
        }
        other => panic!("expected a malformed rejection, got {other:?}"),
    }
}

#[test]
fn bad_inputs_are_rejected_with_a_location() {
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    let msh = "MSH|^~\\&|APP|CHU|PHARMA|CHU|20240131123000+0100||RDE^O11^RDE_O11|RX1|P|2.5";
    let pid = "PID|1||IPP123^^^CHU&1.2.250.1.71.4.2.7&ISO^PI||DUPONT^MARIE";
    let orc = "ORC|NW|CMD1";
    let rxe = "RXE||3400892169026^DOLIPRANE 1000MG CPR EFFV^UCD|1";
    let good = [msh, pid, orc, rxe].join("\r");
    assert!(plugin.adapt(&inbound(good.as_bytes(), HL7)).is_ok());

    // Not an RDE^O11: unsupported.
    match plugin.adapt(&inbound(
        good.replace("RDE^O11^RDE_O11", "ORU^R01^ORU_R01")
            .as_bytes(),
        HL7,
    )) {
        Err(PluginError::Rejected {
            rejection: Rejection::Unsupported(text),
            ..
        }) => {
            assert!(text.contains("ORU^R01"), "{text}")
        }
        other => panic!("expected unsupported, got {other:?}"),
    }
    // No PID.
    assert_eq!(
        rejected_at(&plugin, [msh, orc, rxe].join("\r").as_bytes(), HL7),
        "PID"
    );
    // RXE without a medication code.
    let no_code = [msh, pid, orc, "RXE||^texte libre|1"].join("\r");
    assert_eq!(rejected_at(&plugin, no_code.as_bytes(), HL7), "RXE[1]-2");
    // Invalid XML.
    let bad_xml = b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><id></ClinicalDocument>";
    assert!(rejected_at(&plugin, bad_xml, XML).starts_with("line 1, column"));
    // A CDA of another type (the CR-BIO sample).
    let cr_bio = std::fs::read(
        samples().join("ansforge-testcontenucda/ExemplesCDA/BIO-CR-BIO_2024.01_TSH_1.xml"),
    )
    .unwrap();
    assert_eq!(
        rejected_at(&plugin, &cr_bio, XML),
        "/ClinicalDocument/code/@code"
    );
    // Neither HL7 nor XML.
    assert_eq!(rejected_at(&plugin, b"bonjour", HL7), "payload");
    // No trap, and the instance still works.
    assert_eq!(plugin.trap_count(), 0);
    assert!(plugin.adapt(&inbound(good.as_bytes(), HL7)).is_ok());
}

/// One instance adapting the samples in turn gives the same output every time.
#[test]
fn repeated_adapts_give_identical_records() {
    let all = prescription_samples();
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    let run = |(label, payload, ct): &(String, Vec<u8>, &str)| -> Vec<String> {
        let out = plugin
            .adapt(&inbound(payload, ct))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        out.records
            .iter()
            .map(|r| r.bundle.get().to_string())
            .collect()
    };
    let first: Vec<Vec<String>> = all.iter().map(run).collect();
    for (i, s) in all.iter().enumerate().rev() {
        assert_eq!(run(s), first[i], "{} differs", s.0);
    }
}
