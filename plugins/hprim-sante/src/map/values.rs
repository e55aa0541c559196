//! OBX-5 values typed by OBX-2, OBX-7 reference ranges and OBX-8 interpretation flags.

use passerelle_plugin_sdk::fhir::{
    CodeableConcept, Decimal, ObservationReferenceRange, ObservationValue, QuantityComparator,
};
use passerelle_plugin_sdk::hl7::fhir::interpretation_code;
use passerelle_plugin_sdk::log;

use super::{Ctx, Unit, coded};
use crate::parse::Field;
use crate::tz;

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

/// A leading `<`, `<=`, `>`, `>=` (`≤`, `≥`) and the rest, both trimmed.
fn split_comparator(t: &str) -> (Option<QuantityComparator>, &str) {
    let (c, rest) = QuantityComparator::split_prefix(t.trim());
    (c, rest.trim())
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
