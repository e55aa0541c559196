//! HPRIM records → FHIR R4 resources and the routing envelope (see the crate docs for the
//! mapping tables).

mod patient;
mod record;
mod status;
mod units;
mod values;

use std::collections::HashMap;

use passerelle_plugin_sdk::fhir::{CodeableConcept, Coding, Reference, non_empty, systems};

use crate::parse::{self, Delims, Rep};
use crate::tz::Tz;

pub use patient::{PatientInfo, patient};
pub use record::record;
pub use status::{observation_status_of, report_status};
pub use units::Unit;
pub use values::{interpretation, reference_range};

/// Prefix of the identifier and code systems made up for the parties of a file.
pub const URN_PREFIX: &str = "urn:passerelle:hprim:";
/// LOINC "Laboratory report": the report code when OBR-4 names no single analysis.
pub const LAB_REPORT: (&str, &str) = ("11502-2", "Laboratory report");
/// LOINC "Annotation comment \[Interpretation\] Narrative": the code of patient comments.
pub const COMMENT: (&str, &str) = ("48767-8", "Annotation comment [Interpretation] Narrative");

/// What the H record says.
#[derive(Debug, Default)]
pub struct Header {
    /// H-3.
    pub file_name: String,
    /// H-5.1 and H-5.2: the sender (the laboratory).
    pub sender_code: String,
    pub sender_name: String,
    /// H-7 (`ORU`).
    pub message_type: String,
    /// H-10.1 (else H-10.2): the receiver (the requester).
    pub receiver_code: String,
    /// H-13.1 (`H2.2`).
    pub version: String,
    /// H-14 as written.
    pub time: String,
}

impl Header {
    pub fn read(h: &parse::Record, d: &Delims) -> Header {
        let sender = h.field(d, 5);
        let receiver = h.field(d, 10);
        let receiver_code = match receiver.comp(1) {
            c if c.is_empty() => receiver.comp(2),
            c => c,
        };
        Header {
            file_name: h.field(d, 3).value(),
            sender_code: sender.comp(1),
            sender_name: sender.comp(2),
            message_type: h.field(d, 7).value(),
            receiver_code,
            version: h.field(d, 13).value(),
            time: h.field(d, 14).value(),
        }
    }

    /// The laboratory's code (H-5.1, else its name, else `lab`).
    pub fn lab(&self) -> &str {
        [&self.sender_code, &self.sender_name]
            .into_iter()
            .find(|s| !s.is_empty())
            .map_or("lab", |s| s.as_str())
    }

    /// The requester's code (H-10, else `requester`).
    pub fn requester(&self) -> &str {
        if self.receiver_code.is_empty() {
            "requester"
        } else {
            &self.receiver_code
        }
    }

    /// `sender:file@time` (parts present), `None` without file name and time.
    pub fn message_id(&self) -> Option<String> {
        if self.file_name.is_empty() && self.time.is_empty() {
            return None;
        }
        let mut id = String::new();
        if !self.sender_code.is_empty() {
            id.push_str(&self.sender_code);
            id.push(':');
        }
        id.push_str(&self.file_name);
        id.push('@');
        id.push_str(&self.time);
        envelope_ok(&id).then_some(id)
    }
}

/// `urn:passerelle:hprim:<party>:<what>` with the party percent-encoded.
pub fn urn(party: &str, what: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::from(URN_PREFIX);
    for &b in party.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            s.push(char::from(b));
        } else {
            s.push('%');
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    s.push(':');
    s.push_str(what);
    s
}

/// Whether a text fits the envelope: not blank, at most 1 KiB, no control characters.
pub fn envelope_ok(s: &str) -> bool {
    !s.trim().is_empty() && s.len() <= 1024 && !s.contains(char::is_control)
}

/// A valid FHIR `code`: trimmed, inner whitespace runs collapsed; `None` when empty.
fn fhir_code(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Everything the mapping needs besides the records.
pub struct Ctx<'a> {
    pub d: &'a Delims,
    pub tz: &'a Tz,
    /// Local analysis code → LOINC coding.
    pub loinc: &'a HashMap<String, Coding>,
    /// System of local analysis codes.
    pub code_system: String,
    /// Systems of P-2 (requester's patient id), P-3 (laboratory's), P-4 (third id).
    pub requester_ids: String,
    pub lab_ids: String,
    pub third_ids: String,
    /// Systems of OBR-2 (requester's request number) and OBR-3 (laboratory's).
    pub requester_requests: String,
    pub lab_requests: String,
    /// The laboratory (H-5) as performer.
    pub lab: Option<Reference>,
    /// H-14 as an instant: `issued` when OBR-22 is empty.
    pub file_time: Option<String>,
    /// Seed of the bundles' UUIDs.
    pub seed: &'a str,
}

/// A `code~label~system` value: the code in the local code system (LOINC when the system is
/// `LN`), preceded by its LOINC translation from the `loinc` table when `map_loinc`; the label
/// as display and text. Text only when there is no code; `None` when empty.
fn coded(ctx: &Ctx<'_>, rep: &Rep<'_>, map_loinc: bool) -> Option<CodeableConcept> {
    let label = non_empty(&rep.comp(2));
    let Some(code) = fhir_code(&rep.comp(1)) else {
        return label.map(CodeableConcept::from_text);
    };
    let system_name = rep.comp(3);
    let is_loinc =
        system_name.eq_ignore_ascii_case("LN") || system_name.eq_ignore_ascii_case("LOINC");
    let mut cc = CodeableConcept::default();
    if map_loinc
        && !is_loinc
        && let Some(loinc) = ctx.loinc.get(&code)
    {
        cc.coding.push(loinc.clone());
    }
    let system = if is_loinc {
        systems::LOINC.to_string()
    } else {
        ctx.code_system.clone()
    };
    let mut coding = Coding::new(system, code);
    coding.display = label.clone();
    cc.coding.push(coding);
    cc.text = label;
    Some(cc)
}

/// C-3: repetitions on separate lines, components separated by spaces; `None` when empty.
pub fn comment_text(d: &Delims, c: &parse::Record) -> Option<String> {
    let lines: Vec<String> = c
        .field(d, 3)
        .reps()
        .map(|r| r.joined(" "))
        .filter(|l| !l.is_empty())
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}
