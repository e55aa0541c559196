//! The hl7v2-lab adapter, built as a component and run in the sandbox: every ORU^R01 message of
//! the sample corpus adapts and validates against FHIR R4 (external validator), the Microsoft
//! FHIR-Converter samples' OBX values reach the Observations, and `passerelle adapt` runs it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use passerelle::plugin::{Inbound, Plugin, PluginEngine};
use passerelle_tests::adapt::{self, message_type};
use passerelle_tests::{files_under, passerelle_bin, samples, validate_fhir_file, wasm};
use serde_json::Value;

const CONTENT_TYPE: &str = "x-application/hl7-v2+er7";

fn plugin(engine: &PluginEngine) -> Plugin {
    adapt::load_plugin(engine, "hl7v2-lab", "{}")
}

fn inbound(payload: &[u8]) -> Inbound {
    adapt::inbound(payload, CONTENT_TYPE)
}

/// Splits a file into messages: a line starting with `MSH` starts one, a blank line ends it;
/// comment lines (`//`, `/*`, ` *`, `*/`) are dropped. Segments are joined with CR.
fn split_messages(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines().flat_map(|l| l.split('\r')) {
        let t = line.trim_start_matches('\u{feff}');
        let is_comment = ["//", "/*", " *", "*/"].iter().any(|p| t.starts_with(p));
        if (t.trim().is_empty() || t.starts_with("MSH")) && !current.is_empty() {
            out.push(current.join("\r"));
            current.clear();
        }
        if t.starts_with("MSH") || (!current.is_empty() && !is_comment && !t.trim().is_empty()) {
            current.push(t);
        }
    }
    if !current.is_empty() {
        out.push(current.join("\r"));
    }
    out
}

/// Every ORU^R01 message of the sample corpus: (label, raw bytes).
fn oru_samples() -> Vec<(String, Vec<u8>)> {
    let s = samples();
    let mut files: Vec<PathBuf> =
        files_under(&s.join("ansforge-hl7v2-exemples"), &[".hl7", ".er7"]);
    for name in [
        "LAB-ORU-1",
        "LAB-ORU-2",
        "LRI_2.0-NG_CBC_Typ_Message",
        "ORU-R01-01",
        "ORU-R01-RMGEAD",
    ] {
        files.push(s.join(format!(
            "ms-fhir-converter/data/SampleData/Hl7v2/{name}.hl7"
        )));
    }
    files.extend(
        files_under(
            &s.join("linuxforhealth-hl7v2-fhir-converter/src/test/resources"),
            &[".hl7"],
        )
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("ORU-"))
        }),
    );
    let hapi = s.join("hapi-hl7v2/hapi-test/src/test/resources/ca/uhn/hl7v2");
    let multi = hapi.join("util/messages.txt");
    files.push(hapi.join("parser/cv.04_001_chem.hl7"));
    let mut out = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if message_type(&String::from_utf8_lossy(&bytes)) == "ORU^R01" {
            out.push((label(file), bytes));
        }
    }
    let text =
        std::fs::read_to_string(&multi).unwrap_or_else(|e| panic!("{}: {e}", multi.display()));
    for (i, m) in split_messages(&text).into_iter().enumerate() {
        if message_type(&m) == "ORU^R01" {
            out.push((format!("{}#{}", label(&multi), i + 1), m.into_bytes()));
        }
    }
    out
}

fn label(path: &Path) -> String {
    path.strip_prefix(samples())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn every_oru_sample_adapts_and_validates() {
    let messages = oru_samples();
    // 4 ANS, 5 Microsoft, 2 LinuxForHealth, 1 HAPI (messages.txt).
    assert!(
        messages.len() >= 12,
        "only {} ORU^R01 samples found",
        messages.len()
    );
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    let dir = tempfile::tempdir().unwrap();
    let bundles_path = dir.path().join("bundles.ndjson");
    let mut bundles = std::fs::File::create(&bundles_path).unwrap();
    let mut count = 0;
    for (label, payload) in &messages {
        let out = plugin
            .adapt(&inbound(payload))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert!(!out.records.is_empty(), "{label}: no record");
        assert_eq!(out.message_type.as_deref(), Some("ORU^R01"), "{label}");
        for record in &out.records {
            assert_eq!(record.envelope.kind, "lab-result", "{label}");
            writeln!(bundles, "{}", record.bundle.get()).unwrap();
            count += 1;
        }
    }
    bundles.flush().unwrap();
    drop(bundles);
    validate_fhir_file(&bundles_path, count);
}

/// One instance adapting big and small messages in turn gives the same output every time (the
/// plugin recycles its per-call memory between calls).
#[test]
fn repeated_adapts_give_identical_records() {
    let messages = oru_samples();
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    let run = |(label, payload): &(String, Vec<u8>)| -> Vec<String> {
        let out = plugin
            .adapt(&inbound(payload))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        out.records
            .iter()
            .map(|r| r.bundle.get().to_string())
            .collect()
    };
    let first: Vec<Vec<String>> = messages.iter().map(run).collect();
    for round in 0..3 {
        for (i, m) in messages.iter().enumerate().rev() {
            assert_eq!(run(m), first[i], "{} differs in round {round}", m.0);
        }
    }
}

/// The OBX segments of a message, read without the SDK: (OBX-2, OBX-3.1, OBX-5, OBX-6.1,
/// OBX-6.2).
fn obx_segments(text: &str) -> Vec<[String; 5]> {
    text.trim_start_matches('\u{feff}')
        .split(['\r', '\n'])
        .filter(|l| l.starts_with("OBX|"))
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            let get = |n: usize| f.get(n).copied().unwrap_or("").to_string();
            let unit: Vec<String> = get(6).split('^').map(str::to_string).collect();
            [
                get(2),
                get(3).split('^').next().unwrap_or("").to_string(),
                get(5),
                unit.first().cloned().unwrap_or_default(),
                unit.get(1).cloned().unwrap_or_default(),
            ]
        })
        .collect()
}

fn observations(bundles: &[Value]) -> Vec<&Value> {
    bundles
        .iter()
        .flat_map(|b| b["entry"].as_array().into_iter().flatten())
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Observation")
        .collect()
}

fn has_code(obs: &Value, code: &str) -> bool {
    obs["code"]["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["code"] == code)
}

/// Whether an Observation carries an OBX's value and unit.
fn carries(obs: &Value, [value_type, _, value, unit_id, unit_text]: &[String; 5]) -> bool {
    if value.is_empty() {
        return true;
    }
    match value_type.as_str() {
        "NM" | "SN" => {
            // SN `^182`: the number is the second component.
            let number = if value_type == "SN" {
                value.split('^').nth(1).unwrap_or("")
            } else {
                value
            };
            let expected: f64 = number.parse().unwrap_or(f64::NAN);
            let q = &obs["valueQuantity"];
            let same_value = q["value"]
                .as_f64()
                .is_some_and(|v| (v - expected).abs() < 1e-9);
            let units = [q["unit"].as_str(), q["code"].as_str()];
            let same_unit = unit_id.is_empty()
                || units.contains(&Some(unit_id.as_str()))
                || (!unit_text.is_empty() && units.contains(&Some(unit_text.as_str())));
            same_value && same_unit
        }
        "CE" | "CWE" | "CNE" => {
            let code = value.split('^').next().unwrap_or("");
            obs["valueCodeableConcept"]["coding"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["code"] == code)
        }
        _ => obs["valueString"] == value.as_str(),
    }
}

#[test]
fn microsoft_samples_obx_values_reach_the_observations() {
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    for name in [
        "LAB-ORU-1",
        "LAB-ORU-2",
        "LRI_2.0-NG_CBC_Typ_Message",
        "ORU-R01-RMGEAD",
    ] {
        let path = samples().join(format!(
            "ms-fhir-converter/data/SampleData/Hl7v2/{name}.hl7"
        ));
        let bytes = std::fs::read(&path).unwrap();
        let out = plugin
            .adapt(&inbound(&bytes))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let bundles: Vec<Value> = out
            .records
            .iter()
            .map(|r| serde_json::from_str(r.bundle.get()).unwrap())
            .collect();
        let all = observations(&bundles);
        let obx = obx_segments(&String::from_utf8_lossy(&bytes));
        assert!(!obx.is_empty(), "{name}: no OBX read");
        assert_eq!(all.len(), obx.len(), "{name}: one Observation per OBX");
        for o in &obx {
            let code = &o[1];
            assert!(
                all.iter().any(|obs| has_code(obs, code) && carries(obs, o)),
                "{name}: OBX {o:?} not found in the Observations"
            );
        }
    }
}

#[test]
fn cli_adapts_an_ans_sample() {
    let file = samples().join(
        "ansforge-hl7v2-exemples/Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/Transmission initiale ORU/message_ORU_CR_Bio_INIT_N1_N3.hl7",
    );
    let out = Command::new(passerelle_bin())
        .args(["adapt", "--plugin"])
        .arg(wasm("hl7v2-lab"))
        .arg(&file)
        .output()
        .expect("running passerelle adapt");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "passerelle adapt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no record printed");
    for line in lines {
        let record: Value = serde_json::from_str(line).expect("each line is a JSON record");
        let ins = &record["envelope"]["patient"]["ins"];
        assert_eq!(ins["system"], "urn:oid:1.2.250.1.213.1.4.10", "{line}");
        assert_eq!(ins["value"], "279035121518989", "{line}");
        assert_eq!(record["bundle"]["resourceType"], "Bundle");
    }
}

/// `cargo test --release -p passerelle-tests --test e2e hl7v2_lab_throughput -- --ignored
/// --nocapture`: adapt calls per second through the sandbox on one thread.
#[test]
#[ignore]
fn hl7v2_lab_throughput() {
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    let five = [
        "MSH|^~\\&|SIL|LABO|DPI|CHU|20240131123000+0100||ORU^R01^ORU_R01|MSG1|P|2.5|||||FRA|UNICODE UTF-8",
        "PID|1||279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS~IPP123^^^CHU&1.2.250.1.71.4.2.7&ISO^PI||DUPONT^MARIE^^^^^L||19790328|F",
        "OBR|1|CMD1^DPI|LAB1^SIL|24326-1^Electrolytes panel^LN|||20240131083000|||||||||||||||20240131120000|||F",
        "OBX|1|NM|2823-3^Potassium^LN||4.2|mmol/L^^UCUM|3.5-5.0|N|||F|||20240131081000",
        "OBX|2|NM|2951-2^Sodium^LN||140|mmol/L^^UCUM|135-145|N|||F|||20240131081000",
        "OBX|3|NM|2075-0^Chlorure^LN||101|mmol/L^^UCUM|98-107|N|||F|||20240131081000",
        "OBX|4|NM|1963-8^Bicarbonates^LN||25|mmol/L^^UCUM|22-29|N|||F|||20240131081000",
        "OBX|5|NM|2160-0^Creatinine^LN||78|umol/L^^UCUM|45-90|N|||F|||20240131081000",
    ]
    .join("\r");
    let lab_oru_2 =
        std::fs::read(samples().join("ms-fhir-converter/data/SampleData/Hl7v2/LAB-ORU-2.hl7"))
            .unwrap();
    for (name, payload) in [("5-OBX", five.into_bytes()), ("LAB-ORU-2", lab_oru_2)] {
        let msg = inbound(&payload);
        for _ in 0..2_000 {
            plugin.adapt(&msg).unwrap();
        }
        let n = 20_000;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(plugin.adapt(&msg).unwrap());
        }
        let per = t.elapsed().as_secs_f64() / f64::from(n);
        println!(
            "{name}: {:.1} µs/adapt, {:.0} adapt/s",
            per * 1e6,
            1.0 / per
        );
    }
}
