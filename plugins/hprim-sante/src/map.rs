//! HPRIM records → FHIR R4 resources and the routing envelope (see the crate docs for the
//! mapping tables).

use std::collections::HashMap;

use passerelle_plugin_sdk::fhir::{
    Address, AdministrativeGender, Annotation, Bundle, CodeableConcept, Coding, ContactPoint,
    ContactPointSystem, Decimal, DiagnosticReport, DiagnosticReportStatus, HumanName, Identifier,
    NameUse, Observation, ObservationReferenceRange, ObservationStatus, ObservationValue, Patient,
    Quantity, QuantityComparator, Reference, Specimen, SpecimenCollection, non_empty, systems,
};
use passerelle_plugin_sdk::hl7::fhir::interpretation_code;
use passerelle_plugin_sdk::log;
use passerelle_plugin_sdk::prelude::*;
use passerelle_plugin_sdk::record::{ins_key_is_valid, ins_kind_from_oid};
use passerelle_plugin_sdk::types::{Identifier as EnvelopeId, Ins};

use crate::parse::{self, Delims, Field, OrderGroup, PatientGroup, Rep, ResultGroup};
use crate::tz::{self, Tz};

/// Prefix of the identifier and code systems made up for the parties of a file.
pub const URN_PREFIX: &str = "urn:passerelle:hprim:";
/// LOINC "Laboratory report": the report code when OBR-4 names no single analysis.
pub const LAB_REPORT: (&str, &str) = ("11502-2", "Laboratory report");
/// LOINC "Annotation comment [Interpretation] Narrative": the code of patient comments.
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

/// A patient's resource and envelope identity.
#[derive(Clone)]
pub struct PatientInfo {
    pub resource: Patient,
    pub identity: PatientIdentity,
}

/// Where an identifier field's value belongs.
enum Authority {
    Ins(InsKind),
    Oid(String),
}

/// An INS or other OID named in components 2+ of an identifier (`value~oid`, or HL7-like
/// `value~~~name&oid&ISO~type`).
fn authority(rep: &Rep<'_>) -> Option<Authority> {
    let mut other = None;
    for v in rep.values_from(2) {
        let oid = v.strip_prefix("urn:oid:").unwrap_or(&v);
        if let Some(kind) = ins_kind_from_oid(oid) {
            return Some(Authority::Ins(kind));
        }
        if other.is_none() && is_oid(oid) {
            other = Some(oid.to_string());
        }
    }
    other.map(Authority::Oid)
}

fn is_oid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3
        && matches!(b[0], b'0' | b'1' | b'2')
        && b.contains(&b'.')
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'.')
        && !s.ends_with('.')
        && !s.contains("..")
}

/// P → Patient and the envelope identity (see the crate docs).
pub fn patient(ctx: &Ctx<'_>, p: &parse::Record) -> Result<PatientInfo, AdaptError> {
    let d = ctx.d;
    let mut identifiers = Vec::new();
    let mut identity = PatientIdentity {
        ins: None,
        local_ids: Vec::new(),
    };
    let fields = [
        (2, &ctx.requester_ids, true),
        (3, &ctx.lab_ids, true),
        (4, &ctx.third_ids, false),
    ];
    for (n, default_system, internal) in fields {
        for rep in p.field(d, n).reps() {
            let value = rep.comp(1);
            if value.is_empty() {
                continue;
            }
            if !envelope_ok(&value) {
                return Err(malformed(
                    p.loc_field(n),
                    "patient identifier longer than 1 KiB or with control characters",
                ));
            }
            let system = match authority(&rep) {
                Some(Authority::Ins(kind)) => {
                    if !ins_key_is_valid(&value) {
                        return Err(malformed(
                            p.loc_field(n),
                            "the INS is not 13 characters plus a valid 2-digit key",
                        ));
                    }
                    identifiers.push(Identifier::ins(kind, value.as_str()));
                    // The first INS, but a NIR wins over a temporary NIA.
                    let replace = match &identity.ins {
                        None => true,
                        Some(i) => i.kind == InsKind::Nia && kind != InsKind::Nia,
                    };
                    if replace {
                        identity.ins = Some(Ins { kind, value });
                    }
                    continue;
                }
                Some(Authority::Oid(oid)) => format!("urn:oid:{oid}"),
                None => default_system.clone(),
            };
            let mut id = Identifier::new(system.clone(), value.clone());
            if internal {
                id = id.with_type(systems::V2_0203, "PI");
            }
            if !identifiers.contains(&id) {
                identifiers.push(id);
                identity.local_ids.push(EnvelopeId { system, value });
            }
        }
    }
    if identifiers.is_empty() {
        return Err(malformed(
            p.loc_field(2),
            "no patient identifier (P-2, P-3 and P-4 are empty)",
        ));
    }
    let resource = Patient {
        identifier: identifiers,
        name: names(d, p),
        telecom: p
            .field(d, 12)
            .reps()
            .filter_map(|r| non_empty(&r.joined(" ")))
            .map(|t| ContactPoint::new(ContactPointSystem::Phone, t))
            .collect(),
        gender: AdministrativeGender::from_v2(&p.field(d, 8).value()),
        birth_date: tz::date(&p.field(d, 7).value()),
        address: address(&p.field(d, 10).first()).into_iter().collect(),
        ..Patient::new()
    };
    Ok(PatientInfo { resource, identity })
}

/// P-5 (`name~first name~second first name~suffix~title`) and P-6 (birth name): the birth
/// name is `official`, the name used `usual`; a lone P-5 has no `use`.
fn names(d: &Delims, p: &parse::Record) -> Vec<HumanName> {
    let rep = p.field(d, 5).first();
    let family = rep.comp(1);
    let mut given: Vec<String> = Vec::new();
    for g in [rep.comp(2), rep.comp(3)] {
        if !g.is_empty() && !given.contains(&g) {
            given.push(g);
        }
    }
    let name = HumanName {
        family: non_empty(&family),
        given: given.clone(),
        suffix: non_empty(&rep.comp(4)).into_iter().collect(),
        prefix: non_empty(&rep.comp(5)).into_iter().collect(),
        ..Default::default()
    };
    let birth = p.field(d, 6).value();
    let has_name = name.family.is_some() || !name.given.is_empty();
    if birth.is_empty() {
        return if has_name { vec![name] } else { Vec::new() };
    }
    if birth.eq_ignore_ascii_case(&family) {
        return vec![name.with_use(NameUse::Official)];
    }
    let official = HumanName {
        family: Some(birth),
        given,
        ..Default::default()
    }
    .with_use(NameUse::Official);
    if has_name {
        vec![official, name.with_use(NameUse::Usual)]
    } else {
        vec![official]
    }
}

/// P-10: `street~complement~city~state~postal code~country`.
fn address(rep: &Rep<'_>) -> Option<Address> {
    let line: Vec<String> = [rep.comp(1), rep.comp(2)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let a = Address {
        line,
        city: non_empty(&rep.comp(3)),
        state: non_empty(&rep.comp(4)),
        postal_code: non_empty(&rep.comp(5)),
        country: non_empty(&rep.comp(6)),
        ..Default::default()
    };
    (a != Address::default()).then_some(a)
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

// --- Units ---

/// Units as written in French lab files → UCUM (exact, case-sensitive: `g/l` is grams, `G/l`
/// giga-cells per litre).
const UCUM_UNITS: &[(&str, &str)] = &[
    ("%", "%"),
    ("g/l", "g/L"),
    ("g/L", "g/L"),
    ("mg/l", "mg/L"),
    ("mg/L", "mg/L"),
    ("mg/dl", "mg/dL"),
    ("mg/dL", "mg/dL"),
    ("g/dl", "g/dL"),
    ("g/dL", "g/dL"),
    ("µg/l", "ug/L"),
    ("µg/L", "ug/L"),
    ("ug/l", "ug/L"),
    ("ug/L", "ug/L"),
    ("ng/ml", "ng/mL"),
    ("ng/mL", "ng/mL"),
    ("ng/l", "ng/L"),
    ("ng/L", "ng/L"),
    ("pg/ml", "pg/mL"),
    ("pg/mL", "pg/mL"),
    ("mmol/l", "mmol/L"),
    ("mmol/L", "mmol/L"),
    ("µmol/l", "umol/L"),
    ("µmol/L", "umol/L"),
    ("umol/l", "umol/L"),
    ("umol/L", "umol/L"),
    ("nmol/l", "nmol/L"),
    ("nmol/L", "nmol/L"),
    ("pmol/l", "pmol/L"),
    ("pmol/L", "pmol/L"),
    ("mEq/l", "meq/L"),
    ("mEq/L", "meq/L"),
    ("meq/l", "meq/L"),
    ("UI/l", "[IU]/L"),
    ("UI/L", "[IU]/L"),
    ("UI/ml", "[IU]/mL"),
    ("UI/mL", "[IU]/mL"),
    ("mUI/l", "m[IU]/L"),
    ("mUI/L", "m[IU]/L"),
    ("mUI/ml", "m[IU]/mL"),
    ("mUI/mL", "m[IU]/mL"),
    ("µUI/ml", "u[IU]/mL"),
    ("µUI/mL", "u[IU]/mL"),
    ("kUI/l", "k[IU]/L"),
    ("kUI/L", "k[IU]/L"),
    ("U/l", "U/L"),
    ("U/L", "U/L"),
    ("U/ml", "U/mL"),
    ("G/l", "10*9/L"),
    ("G/L", "10*9/L"),
    ("T/l", "10*12/L"),
    ("T/L", "10*12/L"),
    ("/mm3", "/mm3"),
    ("/µl", "/uL"),
    ("/µL", "/uL"),
    ("fl", "fL"),
    ("fL", "fL"),
    ("pg", "pg"),
    ("mm/h", "mm/h"),
    ("s", "s"),
    ("sec", "s"),
    ("min", "min"),
    ("mmHg", "mm[Hg]"),
    ("ml/min", "mL/min"),
    ("mL/min", "mL/min"),
    ("mosm/kg", "mosm/kg"),
    ("mOsm/kg", "mosm/kg"),
    ("g/24h", "g/(24.h)"),
    ("mg/24h", "mg/(24.h)"),
    ("mmol/24h", "mmol/(24.h)"),
    ("ml", "mL"),
    ("mL", "mL"),
    ("l", "L"),
    ("L", "L"),
    ("kg", "kg"),
    ("g", "g"),
    ("cm", "cm"),
];

/// An OBX-6 unit: as written, and its UCUM code when known.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Unit {
    pub text: Option<String>,
    pub ucum: Option<&'static str>,
}

impl Unit {
    pub fn read(text: &str) -> Unit {
        let t = text.trim();
        if t.is_empty() {
            return Unit::default();
        }
        // The Greek mu (UTF-8 files) for the micro sign (Latin-1).
        let key = t.replace('\u{3bc}', "\u{b5}");
        Unit {
            text: Some(t.to_string()),
            ucum: UCUM_UNITS.iter().find(|(k, _)| *k == key).map(|(_, u)| *u),
        }
    }

    pub fn quantity(&self, value: Decimal) -> Quantity {
        Quantity {
            value: Some(value),
            comparator: None,
            unit: self.text.clone(),
            system: self.ucum.map(|_| systems::UCUM.to_string()),
            code: self.ucum.map(str::to_string),
        }
    }
}

// --- Values ---

/// A decimal as written in French files: `5.2`, `5,2`, `+5`, `.5`.
pub fn decimal(s: &str) -> Option<Decimal> {
    let s = s.trim();
    if s.contains(',') {
        if s.contains('.') || s.matches(',').count() != 1 {
            return None;
        }
        return Decimal::parse(&s.replace(',', "."));
    }
    Decimal::parse(s)
}

/// A leading `<`, `<=`, `>`, `>=` (`≤`, `≥`) and the rest.
fn split_comparator(t: &str) -> (Option<QuantityComparator>, &str) {
    let t = t.trim();
    let prefixes = [
        ("<=", QuantityComparator::LessOrEqual),
        (">=", QuantityComparator::GreaterOrEqual),
        ("≤", QuantityComparator::LessOrEqual),
        ("≥", QuantityComparator::GreaterOrEqual),
        ("<", QuantityComparator::Less),
        (">", QuantityComparator::Greater),
    ];
    for (p, c) in prefixes {
        if let Some(rest) = t.strip_prefix(p) {
            return (Some(c), rest.trim());
        }
    }
    (None, t)
}

/// What an OBX-5 gives.
#[derive(Debug, Default)]
pub struct Value {
    pub value: Option<ObservationValue>,
    /// A data-absent-reason code when there is no value for a known reason.
    pub absent: Option<&'static str>,
    /// A note to add to the observation.
    pub note: Option<String>,
}

/// NM: a quantity (with comparator: `<0,5`); a non-number stays text.
fn numeric(text: &str, unit: &Unit, line: usize) -> ObservationValue {
    let (cmp, rest) = split_comparator(text);
    match decimal(rest) {
        Some(v) => {
            let q = unit.quantity(v);
            ObservationValue::Quantity(match cmp {
                Some(c) => q.with_comparator(c),
                None => q,
            })
        }
        None => {
            log::info(&format!(
                "line {line}: NM result that is not a number kept as text"
            ));
            ObservationValue::String(text.trim().to_string())
        }
    }
}

/// The text of a field: repetitions on separate lines, components separated by spaces.
fn text(f: &Field<'_>) -> Option<ObservationValue> {
    let lines: Vec<String> = f.reps().map(|r| r.joined(" ")).collect();
    let joined = lines.join("\n");
    let t = joined.trim();
    (!t.is_empty()).then(|| ObservationValue::String(t.to_string()))
}

/// OBX-5 typed by OBX-2 (see the crate docs).
pub fn value(ctx: &Ctx<'_>, vt: &str, f: Field<'_>, unit: &Unit, line: usize) -> Value {
    if f.is_empty() {
        return Value::default();
    }
    let non_empty_reps = f.reps().filter(|r| !r.is_empty()).count();
    let first = f.first();
    let value = match vt {
        "NM" if non_empty_reps == 1 => Some(numeric(&first.joined(" "), unit, line)),
        "" if non_empty_reps == 1 && decimal(&first.joined(" ")).is_some() => {
            Some(numeric(&first.joined(" "), unit, line))
        }
        "CE" if non_empty_reps == 1 => {
            coded(ctx, &first, false).map(ObservationValue::CodeableConcept)
        }
        "DT" => tz::date(&first.comp(1))
            .map(ObservationValue::DateTime)
            .or_else(|| text(&f)),
        "TS" | "DTM" => ctx
            .tz
            .datetime(&first.comp(1))
            .map(ObservationValue::DateTime)
            .or_else(|| text(&f)),
        "FIC" => {
            return Value {
                value: None,
                absent: Some("unsupported"),
                note: Some(format!(
                    "HPRIM FIC result: external file not carried ({})",
                    first.joined(" / ")
                )),
            };
        }
        // ST, TX, FT, AD, CK, CNA, PN, TN, GB, GN, GC, unknown types, several values.
        _ => text(&f),
    };
    Value {
        value,
        ..Value::default()
    }
}

/// OBX-7: `10 - 40`, `3,5-5,1`, `10 à 40` → low and high; `< 5` → high, `> 60` → low (the
/// strictness stays in the text); the text is always kept.
pub fn reference_range(text: &str, unit: &Unit) -> Option<ObservationReferenceRange> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let mut range = ObservationReferenceRange {
        text: Some(t.to_string()),
        ..Default::default()
    };
    let (cmp, rest) = split_comparator(t);
    if let Some(c) = cmp {
        if let Some(v) = decimal(rest) {
            let q = Some(unit.quantity(v));
            match c {
                QuantityComparator::Less | QuantityComparator::LessOrEqual => range.high = q,
                _ => range.low = q,
            }
        }
    } else if let Some((a, b)) = split_range(t)
        && let (Some(low), Some(high)) = (decimal(a), decimal(b))
    {
        range.low = Some(unit.quantity(low));
        range.high = Some(unit.quantity(high));
    }
    Some(range)
}

/// `a - b`, `a-b`, `a à b`, `a to b` (a may be negative).
fn split_range(t: &str) -> Option<(&str, &str)> {
    for sep in [" à ", " a ", " to "] {
        if let Some(i) = t.find(sep) {
            return Some((&t[..i], &t[i + sep.len()..]));
        }
    }
    let b = t.as_bytes();
    for i in 1..b.len() {
        if b[i] == b'-' {
            let before = t[..i].trim_end();
            if before.ends_with(|c: char| c.is_ascii_digit() || c == '.' || c == ',') {
                return Some((before, &t[i + 1..]));
            }
        }
    }
    None
}

/// One result flag (HL7 v2 table 0078 codes, any case) as an interpretation; a flag outside
/// the table is kept as text.
pub fn interpretation(code: &str) -> Option<CodeableConcept> {
    let c = code.trim();
    if c.is_empty() {
        return None;
    }
    Some(
        interpretation_code(&c.to_ascii_uppercase())
            .unwrap_or_else(|| CodeableConcept::from_text(c)),
    )
}

// --- Statuses ---

/// OBX-11: F, U → final; P, R → preliminary; C → corrected; I → registered; D →
/// entered-in-error; X → cancelled.
pub fn observation_status_of(code: &str) -> Option<ObservationStatus> {
    match code.trim().to_ascii_uppercase().as_str() {
        "F" | "U" => Some(ObservationStatus::Final),
        "P" | "R" => Some(ObservationStatus::Preliminary),
        "C" => Some(ObservationStatus::Corrected),
        "I" => Some(ObservationStatus::Registered),
        "D" => Some(ObservationStatus::EnteredInError),
        "X" => Some(ObservationStatus::Cancelled),
        _ => None,
    }
}

/// The status an OBX without OBX-11 inherits from OBR-25.
fn inherited_status(obr25: &str) -> Option<ObservationStatus> {
    match obr25.trim().to_ascii_uppercase().as_str() {
        "F" => Some(ObservationStatus::Final),
        "P" => Some(ObservationStatus::Preliminary),
        "C" => Some(ObservationStatus::Corrected),
        "X" => Some(ObservationStatus::Cancelled),
        "I" | "O" => Some(ObservationStatus::Registered),
        _ => None,
    }
}

/// The report status: OBR-25 (F, P, C, X, I/O), else from the results; a final report whose
/// results are all deleted is entered-in-error, one with corrected results corrected.
pub fn report_status(obr25: &str, statuses: &[ObservationStatus]) -> DiagnosticReportStatus {
    use DiagnosticReportStatus as D;
    use ObservationStatus as O;
    let any = |s: O| statuses.contains(&s);
    let all = |f: fn(&O) -> bool| !statuses.is_empty() && statuses.iter().all(f);
    match obr25.trim().to_ascii_uppercase().as_str() {
        "F" => {
            if all(|s| *s == O::EnteredInError) {
                D::EnteredInError
            } else if any(O::Corrected) || any(O::Amended) {
                D::Corrected
            } else {
                D::Final
            }
        }
        "P" => D::Preliminary,
        "C" => D::Corrected,
        "X" => D::Cancelled,
        "I" | "O" => D::Registered,
        _ => {
            if statuses.is_empty() {
                D::Unknown
            } else if all(|s| *s == O::EnteredInError) {
                D::EnteredInError
            } else if all(|s| *s == O::Cancelled) {
                D::Cancelled
            } else if any(O::Corrected) || any(O::Amended) {
                D::Corrected
            } else if all(|s| matches!(s, O::Final | O::Cancelled | O::EnteredInError)) {
                D::Final
            } else if all(|s| *s == O::Registered) {
                D::Registered
            } else if any(O::Final) || any(O::Preliminary) {
                if any(O::Registered) {
                    D::Partial
                } else {
                    D::Preliminary
                }
            } else {
                D::Unknown
            }
        }
    }
}

/// The record status of a report status.
pub fn record_status(report: DiagnosticReportStatus) -> RecordStatus {
    use DiagnosticReportStatus as D;
    match report {
        D::Final => RecordStatus::Final,
        D::Corrected | D::Amended | D::Appended => RecordStatus::Corrected,
        D::Preliminary | D::Partial | D::Registered => RecordStatus::Preliminary,
        D::Cancelled => RecordStatus::Cancelled,
        D::EnteredInError => RecordStatus::EnteredInError,
        D::Unknown => RecordStatus::Unknown,
    }
}

// --- Records ---

/// OBX → Observation.
fn observation(
    ctx: &Ctx<'_>,
    x: &ResultGroup,
    obr25: &str,
    subject: &Reference,
    specimen: Option<&Reference>,
    collected: Option<&String>,
    issued: Option<&String>,
) -> Result<Observation, AdaptError> {
    let (d, r) = (ctx.d, &x.rec);
    let code = coded(ctx, &r.field(d, 3).first(), true)
        .ok_or_else(|| malformed(r.loc_field(3), "no analysis code (OBX-3 is empty)"))?;
    let value_type = r.field(d, 2).value().to_ascii_uppercase();
    let unit = Unit::read(&r.field(d, 6).value());
    let status_code = r.field(d, 11).value();
    let status = if status_code.is_empty() {
        inherited_status(obr25).unwrap_or(ObservationStatus::Unknown)
    } else {
        observation_status_of(&status_code).unwrap_or_else(|| {
            log::warn(&format!(
                "line {}: unknown OBX-11 status {:?}: status unknown",
                r.line,
                status_code.chars().take(4).collect::<String>()
            ));
            ObservationStatus::Unknown
        })
    };
    let v = value(ctx, &value_type, r.field(d, 5), &unit, r.line);
    let mut note: Vec<Annotation> = v.note.into_iter().map(Annotation::new).collect();
    note.extend(
        x.comments
            .iter()
            .filter_map(|c| comment_text(d, c))
            .map(Annotation::new),
    );
    let data_absent_reason = match (&v.value, v.absent) {
        (Some(_), _) => None,
        (None, Some(reason)) => Some(Observation::data_absent(reason)),
        (None, None) if status == ObservationStatus::Cancelled => {
            Some(Observation::data_absent("not-performed"))
        }
        (None, None) => None,
    };
    Ok(Observation {
        category: vec![Observation::laboratory_category()],
        subject: Some(subject.clone()),
        effective_date_time: ctx
            .tz
            .datetime(&r.field(d, 14).value())
            .or_else(|| collected.cloned()),
        issued: issued.cloned(),
        value: v.value,
        data_absent_reason,
        interpretation: r
            .field(d, 8)
            .reps()
            .filter_map(|rep| interpretation(&rep.comp(1)))
            .collect(),
        note,
        specimen: specimen.cloned(),
        reference_range: reference_range(&r.field(d, 7).first().joined(" "), &unit)
            .into_iter()
            .collect(),
        ..Observation::new(status, code)
    })
}

/// OBR-4: one analysis → its code; none or several → LOINC 11502-2 (with the analyses'
/// labels as text).
fn report_code(ctx: &Ctx<'_>, obr: &parse::Record) -> CodeableConcept {
    let mut analyses: Vec<CodeableConcept> = obr
        .field(ctx.d, 4)
        .reps()
        .filter(|r| !r.is_empty())
        .filter_map(|r| coded(ctx, &r, true))
        .collect();
    let generic = CodeableConcept::coded(systems::LOINC, LAB_REPORT.0, Some(LAB_REPORT.1));
    match analyses.len() {
        0 => generic,
        1 => analyses.pop().unwrap_or(generic),
        _ => {
            let labels: Vec<String> = analyses
                .iter()
                .filter_map(|a| {
                    a.text
                        .clone()
                        .or_else(|| a.coding.last().and_then(|c| c.code.clone()))
                })
                .collect();
            generic.with_text(labels.join(", "))
        }
    }
}

/// OBR-2 / OBR-3: the first non-empty value, typed PLAC / FILL.
fn request_id(f: Field<'_>, system: &str, type_code: &str) -> Option<Identifier> {
    let value = f.first().values_from(1).into_iter().next()?;
    Some(Identifier::new(system, value).with_type(systems::V2_0203, type_code))
}

/// OBR-15 (`code~label`) → Specimen with OBR-7 collection and OBR-14 reception times.
fn specimen(
    ctx: &Ctx<'_>,
    obr: &parse::Record,
    subject: &Reference,
    collected: Option<String>,
    received: Option<String>,
) -> Option<Specimen> {
    let f = obr.field(ctx.d, 15);
    if f.is_empty() {
        return None;
    }
    let rep = f.first();
    let label = rep.comp(2);
    let text = if label.is_empty() { rep.comp(1) } else { label };
    Some(Specimen {
        type_: non_empty(&text).map(CodeableConcept::from_text),
        subject: Some(subject.clone()),
        received_time: received,
        collection: collected.map(|c| SpecimenCollection {
            collected_date_time: Some(c),
            ..Default::default()
        }),
        ..Specimen::new()
    })
}

/// One request (OBR) of a patient → one `lab-result` record.
pub fn record(
    ctx: &Ctx<'_>,
    p: &PatientGroup,
    patient: &PatientInfo,
    o: &OrderGroup,
) -> Result<Record, AdaptError> {
    let (d, obr) = (ctx.d, &o.rec);
    let mut bundle = Bundle::collection(ctx.seed);
    let subject = bundle.add_keyed(&format!("P{}", p.rec.line), patient.resource.clone());
    let obr25 = obr.field(d, 25).value();
    let collected = ctx.tz.datetime(&obr.field(d, 7).value());
    let received = ctx.tz.datetime(&obr.field(d, 14).value());
    let issued = ctx
        .tz
        .instant(&obr.field(d, 22).value())
        .or_else(|| ctx.file_time.clone());
    let specimen = specimen(ctx, obr, &subject, collected.clone(), received)
        .map(|s| bundle.add_keyed(&format!("OBR{}", obr.line), s));

    // Comments after P: one comment observation each, in every record of the patient.
    for c in &p.comments {
        if let Some(text) = comment_text(d, c) {
            let code = CodeableConcept::coded(systems::LOINC, COMMENT.0, Some(COMMENT.1))
                .with_text("Commentaire patient");
            bundle.add_keyed(
                &format!("C{}", c.line),
                Observation {
                    subject: Some(subject.clone()),
                    value: Some(ObservationValue::String(text)),
                    ..Observation::new(ObservationStatus::Final, code)
                },
            );
        }
    }

    let mut results = Vec::with_capacity(o.results.len());
    let mut statuses = Vec::with_capacity(o.results.len());
    let mut result_codes: Vec<Coding> = Vec::new();
    for x in &o.results {
        let obs = observation(
            ctx,
            x,
            &obr25,
            &subject,
            specimen.as_ref(),
            collected.as_ref(),
            issued.as_ref(),
        )?;
        statuses.push(obs.status);
        result_codes.extend(
            obs.code
                .coding
                .iter()
                .filter(|c| c.system.as_deref() == Some(systems::LOINC))
                .cloned(),
        );
        results.push(bundle.add_keyed(&format!("OBX{}", x.rec.line), obs));
    }
    if o.results.is_empty() {
        log::info(&format!("line {}: request (OBR) without result", obr.line));
    }

    let status = report_status(&obr25, &statuses);
    let code = report_code(ctx, obr);
    let identifier = [
        request_id(obr.field(d, 2), &ctx.requester_requests, "PLAC"),
        request_id(obr.field(d, 3), &ctx.lab_requests, "FILL"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let conclusion: Vec<String> = o
        .comments
        .iter()
        .filter_map(|c| comment_text(d, c))
        .collect();
    let report = DiagnosticReport {
        identifier,
        category: vec![DiagnosticReport::lab_category()],
        subject: Some(subject),
        effective_date_time: collected.clone(),
        issued: issued.clone(),
        performer: ctx.lab.iter().cloned().collect(),
        specimen: specimen.into_iter().collect(),
        result: results,
        conclusion: (!conclusion.is_empty()).then(|| conclusion.join("\n")),
        ..DiagnosticReport::new(status, code.clone())
    };
    bundle.add_keyed(&format!("OBR{}", obr.line), report);

    let mut builder = RecordBuilder::new(RecordKind::LabResult)
        .patient(patient.identity.clone())
        .status(record_status(status));
    if let Some(t) = collected.or(issued) {
        builder = builder.event_time(t);
    }
    // Routing codes: the report's codes, then the results' LOINC codes, once each.
    let mut seen: Vec<(String, String)> = Vec::new();
    for c in code.coding.iter().chain(result_codes.iter()) {
        let (Some(system), Some(code)) = (c.system.as_deref(), c.code.as_deref()) else {
            continue;
        };
        let key = (system.to_string(), code.to_string());
        if seen.contains(&key) || !envelope_ok(system) || !envelope_ok(code) {
            continue;
        }
        seen.push(key);
        let display = c.display.as_deref().filter(|d| envelope_ok(d));
        builder = builder.code(system, code, display);
    }
    Ok(builder.build(bundle.to_json()))
}
