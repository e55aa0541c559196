//! Native unit tests: every reading and mapping rule, on inline files and on the files of
//! `tests/data/hprim/`.

mod dates_and_ids;
mod files;
mod patient;
mod reading;
mod results;

use serde_json::{Value, json};

use super::*;

const H: &str = r"H|~^\&|RES1.HPR||LAB1~Laboratoire Un||ORU|||REQ1~Clinique||P|H2.2~C|202401151030";
const P: &str = "P|1|IPP1|LABP1||DURAND~Rémi||19800101|M";
const OBR: &str = "OBR|1|D1|L1|GLY~Glycémie~L|||202401150800||||||||||||||||||F";
const OBX: &str = "OBX|1|NM|GLY~Glycémie~L||5.2|mmol/l|4.1 - 6.1|N|||F|||202401150900";

fn lab(settings: &str) -> HprimSante {
    configure::<HprimSante>(settings).unwrap_or_else(|e| panic!("settings {settings}: {e}"))
}

/// ISO-8859-1 bytes of a text (every char must be ≤ U+00FF).
fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("Latin-1 character"))
        .collect()
}

/// Lines joined with CRLF, in ISO-8859-1.
fn file(lines: &[&str]) -> Vec<u8> {
    latin1(&(lines.join("\r\n") + "\r\n"))
}

fn message(bytes: &[u8]) -> InboundMessage {
    inbound_message(bytes, "application/x-hprim-sante", "test")
}

fn adapt_with(settings: &str, bytes: &[u8]) -> Result<Adapted, AdaptError> {
    lab(settings).adapt(&message(bytes))
}

fn adapt(lines: &[&str]) -> Adapted {
    adapt_with("{}", &file(lines)).unwrap_or_else(|e| panic!("{e:?}"))
}

/// The malformed error's location and reason.
fn refused(result: Result<Adapted, AdaptError>) -> (String, String) {
    match result {
        Err(AdaptError::Malformed(m)) => (m.location, m.reason),
        Err(other) => panic!("expected malformed, got {other:?}"),
        Ok(a) => panic!("expected malformed, got {} records", a.records.len()),
    }
}

fn bundle(r: &Record) -> Value {
    serde_json::from_str(&r.bundle).expect("bundle JSON")
}

fn resources(r: &Record, resource_type: &str) -> Vec<Value> {
    bundle(r)["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .filter(|res| res["resourceType"] == resource_type)
        .collect()
}

fn one(r: &Record, resource_type: &str) -> Value {
    let mut all = resources(r, resource_type);
    assert_eq!(all.len(), 1, "{resource_type} in {}", r.bundle);
    all.remove(0)
}

/// The OBX observations (not the patient comments).
fn results(r: &Record) -> Vec<Value> {
    resources(r, "Observation")
        .into_iter()
        .filter(|o| o["code"]["coding"][0]["code"] != map::COMMENT.0)
        .collect()
}
