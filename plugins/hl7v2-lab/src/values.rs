//! OBX-5 typed by OBX-2, OBX-7 reference ranges, ED/RP attachments.

use std::borrow::Cow;

use passerelle_plugin_sdk::fhir::{
    Attachment, Decimal, ObservationReferenceRange, ObservationValue, Period, QuantityComparator,
    Range, Ratio, base64,
};
use passerelle_plugin_sdk::hl7::{Field, Repetition, datetime};

use crate::codes::{Unit, cwe, quantity, simple_quantity};
use passerelle_plugin_sdk::hl7::fhir::text::{comp, is_uri, trim_cow};

/// What an OBX carries.
pub enum ObxContent {
    /// A result (`None`: no value, e.g. pending).
    Value(Option<ObservationValue>),
    /// A document (ED) or a reference to one (RP).
    Document(Attachment),
}

/// Why an OBX-5 could not be read (only documents can fail: everything else degrades to text).
pub struct ValueError(pub &'static str);

/// OBX-5 typed by OBX-2 (see the crate docs for the rules).
pub fn obx_value(
    value_type: &str,
    field: &Field<'_>,
    unit: &Unit,
    tz: &str,
) -> Result<ObxContent, ValueError> {
    let vt = value_type.trim();
    if vt.eq_ignore_ascii_case("ED") {
        return Ok(match ed(&field.repetition(1))? {
            Some(a) => ObxContent::Document(a),
            None => ObxContent::Value(None),
        });
    }
    if vt.eq_ignore_ascii_case("RP") {
        return Ok(match rp(&field.repetition(1)) {
            Some(a) => ObxContent::Document(a),
            None => ObxContent::Value(None),
        });
    }
    if field.is_empty() || field.is_null() {
        return Ok(ObxContent::Value(None));
    }
    let text_types = ["ST", "TX", "FT"];
    let is_text = vt.is_empty() || text_types.iter().any(|t| vt.eq_ignore_ascii_case(t));
    if is_text {
        return Ok(ObxContent::Value(text_value(field)));
    }
    // Several values in a non-text field: one string, values in order.
    let vt = vt.to_ascii_uppercase();
    let non_empty = || field.repetitions().filter(|r| !r.raw().trim().is_empty());
    if non_empty().nth(1).is_some() {
        let parts: Vec<String> = non_empty().map(|r| rep_display(&vt, &r)).collect();
        return Ok(ObxContent::Value(Some(ObservationValue::String(
            parts.join(", "),
        ))));
    }
    let rep = field.repetition(1);
    let value = match vt.as_str() {
        "NM" => Some(numeric(&rep, unit)),
        "SN" => Some(structured_numeric(&rep, unit)),
        "CE" | "CWE" | "CNE" | "CF" | "IS" | "ID" => {
            cwe(&rep, None).map(ObservationValue::CodeableConcept)
        }
        "DT" => match datetime::to_fhir_date(&comp(&rep, 1)) {
            Some(d) => Some(ObservationValue::DateTime(d)),
            None => raw_string(&rep),
        },
        "TS" | "DTM" => match datetime::to_fhir_datetime(&comp(&rep, 1), tz) {
            Some(d) => Some(ObservationValue::DateTime(d)),
            None => raw_string(&rep),
        },
        "NR" => {
            let low = Decimal::parse(&comp(&rep, 1));
            let high = Decimal::parse(&comp(&rep, 2));
            if low.is_some() || high.is_some() {
                Some(ObservationValue::Range(Range::new(
                    low.map(|v| simple_quantity(v, unit)),
                    high.map(|v| simple_quantity(v, unit)),
                )))
            } else {
                raw_string(&rep)
            }
        }
        "DR" => {
            let start = datetime::to_fhir_datetime(&comp(&rep, 1), tz);
            let end = datetime::to_fhir_datetime(&comp(&rep, 2), tz);
            if start.is_some() || end.is_some() {
                Some(ObservationValue::Period(Period { start, end }))
            } else {
                raw_string(&rep)
            }
        }
        // NA, TM, and any other type: the text as sent.
        _ => raw_string(&rep),
    };
    Ok(ObxContent::Value(value))
}

/// ST/TX/FT: the unescaped text, repetitions on separate lines (`\.br\` is already a newline).
fn text_value(field: &Field<'_>) -> Option<ObservationValue> {
    let mut out = String::new();
    for (i, rep) in field.repetitions().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&rep.text());
    }
    let trimmed = out.trim_end();
    if trimmed.trim().is_empty() {
        return None;
    }
    if trimmed.len() != out.len() {
        out.truncate(trimmed.len());
    }
    Some(ObservationValue::String(out))
}

/// A repetition as text (its whole unescaped text; the code's text for coded types).
fn rep_display(vt: &str, rep: &Repetition<'_>) -> String {
    if matches!(vt, "CE" | "CWE" | "CNE" | "CF") {
        let text = comp(rep, 2);
        if !text.is_empty() {
            return text.into_owned();
        }
        return comp(rep, 1).into_owned();
    }
    trim_cow(rep.text()).into_owned()
}

fn raw_string(rep: &Repetition<'_>) -> Option<ObservationValue> {
    let t = trim_cow(rep.text());
    (!t.is_empty()).then(|| ObservationValue::String(t.into_owned()))
}

/// NM: a Quantity keeping the source digits; `<5`-style text gives a comparator; anything
/// else is kept as a string.
fn numeric(rep: &Repetition<'_>, unit: &Unit) -> ObservationValue {
    let text = comp(rep, 1);
    if let Some(v) = Decimal::parse(&text) {
        return ObservationValue::Quantity(quantity(v, unit));
    }
    let (cmp, rest) = QuantityComparator::split_prefix(&text);
    if let (Some(c), Some(v)) = (cmp, Decimal::parse(rest)) {
        return ObservationValue::Quantity(quantity(v, unit).with_comparator(c));
    }
    ObservationValue::String(trim_cow(rep.text()).into_owned())
}

/// SN: `<^5` → Quantity with comparator; `^10^-^20` → Range; `^1^:^128` (or `/`) → Ratio;
/// `^182` → Quantity; `<>`, `+` and anything unreadable → the parts as a string (with the unit).
fn structured_numeric(rep: &Repetition<'_>, unit: &Unit) -> ObservationValue {
    let cmp_text = comp(rep, 1);
    let n1 = comp(rep, 2);
    let sep = comp(rep, 3);
    let n2 = comp(rep, 4);
    let comparator = match cmp_text.as_ref() {
        "" | "=" => Ok(None),
        other => QuantityComparator::parse(other).map(Some).ok_or(()),
    };
    let v1 = Decimal::parse(&n1);
    let v2 = Decimal::parse(&n2);
    let typed = match (comparator, sep.as_ref(), v1, v2) {
        (Ok(c), "", Some(v), None) if n2.is_empty() => {
            let q = quantity(v, unit);
            Some(ObservationValue::Quantity(match c {
                Some(c) => q.with_comparator(c),
                None => q,
            }))
        }
        (Ok(None), "-", Some(low), Some(high)) => Some(ObservationValue::Range(Range::new(
            Some(simple_quantity(low, unit)),
            Some(simple_quantity(high, unit)),
        ))),
        (Ok(c), ":" | "/", Some(num), Some(den)) => {
            let mut numerator = quantity(num, unit);
            numerator.comparator = c;
            Some(ObservationValue::Ratio(Ratio::new(
                numerator,
                quantity(den, unit),
            )))
        }
        _ => None,
    };
    typed.unwrap_or_else(|| {
        let mut parts: Vec<&str> = [cmp_text.as_ref(), &n1, &sep, &n2]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        if let Some(u) = &unit.text {
            parts.push(u);
        }
        ObservationValue::String(parts.join(" "))
    })
}

/// OBX-7: `3.5-5.0`, `3.5 - 5.0`, `4.3 to 6.2` → low/high with the OBX unit; `<5`, `>10` →
/// high or low plus the text (a bound's strictness has no other place); anything else → text.
pub fn reference_range(text: &str, unit: &Unit) -> Option<ObservationReferenceRange> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let (cmp, rest) = QuantityComparator::split_prefix(t);
    if let Some(c) = cmp {
        if let Some(v) = Decimal::parse(rest) {
            let q = Some(simple_quantity(v, unit));
            let (low, high) = match c {
                QuantityComparator::Less | QuantityComparator::LessOrEqual => (None, q),
                _ => (q, None),
            };
            return Some(ObservationReferenceRange {
                low,
                high,
                text: Some(t.to_string()),
                ..Default::default()
            });
        }
    } else if let Some((a, b)) = split_range(t)
        && let (Some(low), Some(high)) = (Decimal::parse(a), Decimal::parse(b))
    {
        return Some(ObservationReferenceRange {
            low: Some(simple_quantity(low, unit)),
            high: Some(simple_quantity(high, unit)),
            ..Default::default()
        });
    }
    Some(ObservationReferenceRange {
        text: Some(t.to_string()),
        ..Default::default()
    })
}

/// Splits `a-b`, `a - b`, `a to b` (a may be negative).
fn split_range(t: &str) -> Option<(&str, &str)> {
    // Most ranges hold no space: skip `str::find`'s searcher, slow to set up in the sandbox.
    if t.as_bytes().contains(&b' ')
        && let Some(i) = t.find(" to ")
    {
        return Some((&t[..i], &t[i + 4..]));
    }
    let bytes = t.as_bytes();
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        if b == b'-' {
            let before = t[..i].trim_end();
            if before
                .as_bytes()
                .last()
                .is_some_and(|c| c.is_ascii_digit() || *c == b'.')
            {
                return Some((before, &t[i + 1..]));
            }
        }
    }
    None
}

// --- Documents ---

/// The MIME type of an ED/RP type of data (table 0191) and subtype (table 0291).
pub fn mime_type(type_of_data: &str, subtype: &str) -> String {
    let t = type_of_data.trim();
    let s = subtype.trim();
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    // Subtypes that name a full MIME type whatever the type says.
    let by_subtype = [
        ("PDF", "application/pdf"),
        ("Octet-stream", "application/octet-stream"),
        ("RTF", "application/rtf"),
        ("PostScript", "application/postscript"),
        ("DICOM", "application/dicom"),
        ("HTML", "text/html"),
        ("JPEG", "image/jpeg"),
        ("JPG", "image/jpeg"),
        ("GIF", "image/gif"),
        ("PNG", "image/png"),
        ("TIFF", "image/tiff"),
    ];
    if let Some((_, m)) = by_subtype.iter().find(|(k, _)| is(k, s)) {
        return (*m).to_string();
    }
    if s.contains('/') && is_uri(s) {
        return s.to_ascii_lowercase();
    }
    let top = if is(t, "TEXT") || is(t, "FT") {
        "text"
    } else if is(t, "IM") || is(t, "SI") || is(t, "NS") || is(t, "IMAGE") {
        "image"
    } else if is(t, "AU") || is(t, "AUDIO") {
        "audio"
    } else if is(t, "VIDEO") {
        "video"
    } else if is(t, "multipart") {
        "multipart"
    } else if t.contains('/') && is_uri(t) {
        return t.to_ascii_lowercase();
    } else {
        "application"
    };
    let valid_sub = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'+' | b'_'));
    match (top, valid_sub) {
        (_, true) => format!("{top}/{}", s.to_ascii_lowercase()),
        ("text", false) => "text/plain".to_string(),
        _ => "application/octet-stream".to_string(),
    }
}

/// ED (`source^type^subtype^encoding^data`): the data as base64 (`Base64` kept as given, only
/// padded; `A` (ASCII/text) and `Hex` encoded). `None` when there is no data.
fn ed(rep: &Repetition<'_>) -> Result<Option<Attachment>, ValueError> {
    let content_type = mime_type(&comp(rep, 2), &comp(rep, 3));
    let encoding = comp(rep, 4);
    let data: Cow<'_, str> = rep.component(5).text();
    if data.trim().is_empty() {
        return Ok(None);
    }
    let b64 = if encoding.eq_ignore_ascii_case("Base64") {
        clean_base64(&data).ok_or(ValueError("ED data is not valid base64"))?
    } else if encoding.eq_ignore_ascii_case("Hex") {
        base64(&decode_hex(&data).ok_or(ValueError("ED data is not valid hex"))?)
    } else {
        base64(data.as_bytes())
    };
    Ok(Some(Attachment::inline(content_type, b64)))
}

/// RP (`pointer^application^type^subtype`): an attachment by URL; `None` without a usable
/// pointer.
fn rp(rep: &Repetition<'_>) -> Option<Attachment> {
    let pointer = comp(rep, 1);
    if !is_uri(&pointer) {
        return None;
    }
    Some(Attachment::url(
        mime_type(&comp(rep, 3), &comp(rep, 4)),
        pointer.into_owned(),
    ))
}

/// Base64 as given, without whitespace, padded to a multiple of 4; `None` when it is not
/// base64.
pub fn clean_base64(data: &str) -> Option<String> {
    let b = data.as_bytes();
    let alphabet = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    let mut out: Option<String> = None;
    let mut len = 0usize;
    let mut pad = 0usize;
    for (i, &c) in b.iter().enumerate() {
        if c.is_ascii_whitespace() {
            if out.is_none() {
                let mut s = String::with_capacity(b.len());
                s.push_str(&data[..i]);
                out = Some(s);
            }
            continue;
        }
        if c == b'=' {
            pad += 1;
        } else if !alphabet(c) || pad > 0 {
            return None;
        }
        len += 1;
        if let Some(s) = out.as_mut() {
            s.push(char::from(c));
        }
    }
    if pad > 2 || len == 0 {
        return None;
    }
    let mut s = out.unwrap_or_else(|| data.to_string());
    match len % 4 {
        0 => {}
        2 if pad == 0 => s.push_str("=="),
        3 if pad == 0 => s.push('='),
        3 if pad == 1 => s.push('='),
        _ => return None,
    }
    Some(s)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let val = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    digits
        .chunks(2)
        .map(|p| Some(val(p[0])? * 16 + val(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_checked_and_padded() {
        assert_eq!(clean_base64("QUJD").as_deref(), Some("QUJD"));
        assert_eq!(clean_base64("QUI").as_deref(), Some("QUI="));
        assert_eq!(clean_base64("QU").as_deref(), Some("QU=="));
        assert_eq!(clean_base64("QU\nJD").as_deref(), Some("QUJD"));
        assert_eq!(clean_base64("QUJ="), Some("QUJ=".into()));
        assert_eq!(clean_base64("Q"), None);
        assert_eq!(clean_base64("QU=J"), None);
        assert_eq!(clean_base64("QU*D"), None);
    }

    #[test]
    fn mime_types() {
        assert_eq!(mime_type("TEXT", "XML"), "text/xml");
        assert_eq!(mime_type("AP", "PDF"), "application/pdf");
        assert_eq!(mime_type("application", "pdf"), "application/pdf");
        assert_eq!(mime_type("TEXT", ""), "text/plain");
        assert_eq!(mime_type("NS", "Octet-stream"), "application/octet-stream");
        assert_eq!(mime_type("image", "PICT"), "image/pict");
        assert_eq!(mime_type("", ""), "application/octet-stream");
    }

    #[test]
    fn ranges_split() {
        assert_eq!(split_range("3.5-5.0"), Some(("3.5", "5.0")));
        assert_eq!(split_range("3.5 - 5.0"), Some(("3.5", " 5.0")));
        assert_eq!(split_range("4.3 to 6.2"), Some(("4.3", "6.2")));
        assert_eq!(split_range("-5 - 5"), Some(("-5", " 5")));
        assert_eq!(split_range("70_105"), None);
    }
}
