//! What the store reads out of a record: the document's metadata (type code, author, logical
//! key, visibility flags) and the searchable resources of its bundle.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::record::{Record, ins_system};

/// The RPPS identifier system (ASIP-SANTE-PS, `1.2.250.1.71.4.2.1`).
pub const RPPS_SYSTEM: &str = "urn:oid:1.2.250.1.71.4.2.1";
const LOINC: &str = "http://loinc.org";

/// Resource types indexed for search.
pub const SEARCHABLE: &[&str] = &[
    "Observation",
    "DiagnosticReport",
    "MedicationRequest",
    "Composition",
    "DocumentReference",
];

/// One resource of a bundle, indexed.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedResource {
    pub resource_type: String,
    /// Its date (effective, issued, authored, date), a FHIR dateTime or date.
    pub date: Option<String>,
    /// `system|code` of its code (and, for documents, type) codings.
    pub codes: Vec<String>,
    pub json: String,
}

/// The document metadata derived from a record.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentInfo {
    /// The DMP document type (LOINC): see [`type_code`].
    pub type_code: String,
    /// RPPS of the author: see `author()` below.
    pub author: Option<String>,
    pub author_org: Option<String>,
    /// The logical document: versions of one document share it (see `doc_key()` below).
    pub doc_key: String,
    pub masque_ps: bool,
    pub invisible_patient: bool,
    pub invisible_rep: bool,
    /// The patient resource of the bundle, if any.
    pub patient: Option<String>,
    pub resources: Vec<IndexedResource>,
}

/// Whether the INS namespace is a qualified INS (R1): INS-NIR or INS-NIA, plus the test and
/// demo namespaces when `accept_test_ins` (test platforms use only those).
pub fn ins_qualified(record: &Record, accept_test_ins: bool) -> bool {
    match &record.envelope.patient.ins {
        Some(ins) => match ins.system.as_str() {
            ins_system::NIR | ins_system::NIA => true,
            ins_system::NIR_TEST | ins_system::NIR_DEMO => accept_test_ins,
            _ => false,
        },
        None => false,
    }
}

/// Reads the bundle. A bundle that is not JSON cannot reach here (the host checks it).
pub fn describe(record: &Record, patient_id: &str) -> Result<DocumentInfo, serde_json::Error> {
    let bundle: Value = serde_json::from_str(record.bundle.get())?;
    let resources: Vec<&Value> = bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| &e["resource"]).collect())
        .unwrap_or_default();
    let flags = &record.envelope.confidentiality.flags;
    let has = |f: &str| flags.iter().any(|x| x == f);
    let mut indexed = Vec::new();
    for r in &resources {
        let Some(rt) = r["resourceType"].as_str() else {
            continue;
        };
        if SEARCHABLE.contains(&rt) {
            indexed.push(IndexedResource {
                resource_type: rt.to_string(),
                date: resource_date(r),
                codes: resource_codes(r),
                json: r.to_string(),
            });
        }
    }
    Ok(DocumentInfo {
        type_code: type_code(record),
        author: author(&resources),
        author_org: author_org(&resources),
        doc_key: doc_key(record, patient_id, &resources),
        masque_ps: has("MASQUE_PS"),
        invisible_patient: has("INVISIBLE_PATIENT"),
        invisible_rep: has("INVISIBLE_REPRESENTANTS_LEGAUX"),
        patient: resources
            .iter()
            .find(|r| r["resourceType"] == "Patient")
            .map(|r| r.to_string()),
        resources: indexed,
    })
}

/// The DMP document type: a document-type LOINC among the envelope's codes, else the type of
/// the record's kind (lab result → 11502-2 "CR d'examens biologiques", imaging → 18748-4,
/// prescription → 57833-6, oncology meeting → 34794-8), else the first LOINC code, else
/// `unknown` (which the access matrix does not grant to anyone but the author and the MT).
pub fn type_code(record: &Record) -> String {
    let env = &record.envelope;
    let by_kind = match env.kind.as_str() {
        "lab-result" => Some("11502-2"),
        "imaging-report" => Some("18748-4"),
        "prescription" => Some("57833-6"),
        "oncology-meeting" => Some("34794-8"),
        _ => None,
    };
    let loinc = || env.codes.iter().filter(|c| c.system == LOINC);
    loinc()
        .find(|c| Some(c.code.as_str()) == by_kind)
        .map(|c| c.code.clone())
        .or(by_kind.map(str::to_string))
        .or_else(|| loinc().next().map(|c| c.code.clone()))
        .unwrap_or_else(|| "unknown".into())
}

/// The author: the first Practitioner of the bundle with an RPPS identifier (the adapters put
/// the requester — ORC-12/OBR-16 — first, then the interpreter and the performers).
fn author(resources: &[&Value]) -> Option<String> {
    resources
        .iter()
        .filter(|r| r["resourceType"] == "Practitioner")
        .flat_map(|r| r["identifier"].as_array().into_iter().flatten())
        .find(|i| i["system"] == RPPS_SYSTEM)
        .and_then(|i| i["value"].as_str())
        .map(str::to_string)
}

/// The author's organisation: the first Organization identifier value (FINESS…).
fn author_org(resources: &[&Value]) -> Option<String> {
    resources
        .iter()
        .filter(|r| r["resourceType"] == "Organization")
        .flat_map(|r| r["identifier"].as_array().into_iter().flatten())
        .find_map(|i| i["value"].as_str())
        .map(str::to_string)
}

/// The logical document: the filler (else first) identifier of the report, document or
/// prescription, within the patient; a replacement carries the same identifier under a new
/// message id. Without one, the record id (each record is its own document).
fn doc_key(record: &Record, patient_id: &str, resources: &[&Value]) -> String {
    let main = resources.iter().find(|r| {
        matches!(
            r["resourceType"].as_str(),
            Some("DiagnosticReport" | "DocumentReference" | "Composition" | "MedicationRequest")
        )
    });
    let ident = main.and_then(|r| {
        let ids = r["identifier"].as_array()?;
        ids.iter()
            .find(|i| {
                i["type"]["coding"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["code"] == "FILL"))
            })
            .or(ids.first())
            .map(|i| {
                (
                    r["resourceType"].as_str().unwrap_or_default(),
                    i["system"].as_str().unwrap_or_default(),
                    i["value"].as_str().unwrap_or_default(),
                )
            })
    });
    match ident {
        Some((rt, system, value)) if !value.is_empty() => {
            let mut h = Sha256::new();
            for part in [patient_id, rt, system, value] {
                h.update((part.len() as u64).to_be_bytes());
                h.update(part.as_bytes());
            }
            hex::encode(&h.finalize()[..16])
        }
        _ => format!("record:{}", record.envelope.id),
    }
}

fn resource_date(r: &Value) -> Option<String> {
    [
        &r["effectiveDateTime"],
        &r["effectivePeriod"]["start"],
        &r["issued"],
        &r["authoredOn"],
        &r["date"],
    ]
    .into_iter()
    .find_map(|v| v.as_str())
    .map(str::to_string)
}

fn resource_codes(r: &Value) -> Vec<String> {
    [&r["code"], &r["type"], &r["medicationCodeableConcept"]]
        .into_iter()
        .flat_map(|cc| cc["coding"].as_array().into_iter().flatten())
        .filter_map(|c| {
            let code = c["code"].as_str()?;
            Some(format!(
                "{}|{code}",
                c["system"].as_str().unwrap_or_default()
            ))
        })
        .collect()
}

/// The patient's opaque id in the API: derived from the INS, never the INS itself (URLs end
/// up in access logs).
pub fn patient_id(ins_system: &str, ins_value: &str) -> String {
    let mut h = Sha256::new();
    h.update(ins_system.as_bytes());
    h.update(b"|");
    h.update(ins_value.as_bytes());
    format!("p{}", hex::encode(&h.finalize()[..12]))
}
