//! Native tests: one per mapping rule, the ANS samples, errors.

mod french;
mod messages;
mod patient;
mod results;
mod value_types;

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

fn sample(path: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
