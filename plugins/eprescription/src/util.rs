//! Small text helpers over the HL7 toolkit's views.
//!
//! Copied from `plugins/hl7v2-lab/src/util.rs` (no shared helper in the SDK yet), trimmed to
//! what this adapter uses.

use std::borrow::Cow;

use passerelle_plugin_sdk::hl7::{Component, Field, Repetition};

/// Trims a value, keeping it borrowed when it was.
pub fn trim_cow(value: Cow<'_, str>) -> Cow<'_, str> {
    match value {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => {
            let t = s.trim();
            if t.len() == s.len() {
                Cow::Owned(s)
            } else {
                Cow::Owned(t.to_string())
            }
        }
    }
}

/// Component `n` of a repetition: unescaped first subcomponent, trimmed.
pub fn comp<'m>(rep: &Repetition<'m>, n: usize) -> Cow<'m, str> {
    trim_cow(rep.component(n).value())
}

/// Component `n` of a field's first repetition, unescaped and trimmed.
pub fn fcomp<'m>(field: &Field<'m>, n: usize) -> Cow<'m, str> {
    trim_cow(field.component(n).value())
}

/// Subcomponent `n` of a component, unescaped and trimmed.
pub fn sub<'m>(c: &Component<'m>, n: usize) -> Cow<'m, str> {
    trim_cow(c.subcomponent(n).value())
}

/// `Some(owned)` when not empty.
pub fn owned(value: Cow<'_, str>) -> Option<String> {
    (!value.is_empty()).then(|| value.into_owned())
}

/// An ISO object identifier: digits and single dots, starting with 0, 1 or 2, at least two arcs.
pub fn is_oid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3
        && matches!(b[0], b'0' | b'1' | b'2')
        && b.contains(&b'.')
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'.')
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
}

/// `prefix` followed by `name` percent-encoded: keeps ASCII letters, digits and `-._~`,
/// encodes everything else as UTF-8 `%XX`.
pub fn urn(prefix: &str, name: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(prefix.len() + name.len() + 8);
    out.push_str(prefix);
    for &b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// A valid FHIR `code`: trimmed, internal whitespace runs collapsed to one space; `None` when
/// empty.
pub fn fhir_code(s: &str) -> Option<Cow<'_, str>> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let clean = !t.contains(|c: char| c.is_whitespace() && c != ' ') && !t.contains("  ");
    if clean {
        return Some(Cow::Borrowed(t));
    }
    Some(Cow::Owned(
        t.split_whitespace().collect::<Vec<_>>().join(" "),
    ))
}

/// Whether a string can be a FHIR `uri` (no whitespace, not empty).
pub fn is_uri(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c.is_control())
}

/// A short text for the envelope: at most 1 KiB, no control characters.
pub fn envelope_text(s: &str) -> bool {
    !s.trim().is_empty() && s.len() <= 1024 && !s.contains(char::is_control)
}

/// 64-bit FNV-1a, hex: a seed for messages without an id.
pub fn fnv1a_hex(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a:{h:016x}")
}

/// Joins the non-empty texts with `sep`; `None` when there is none.
pub fn join_texts<I, S>(texts: I, sep: &str) -> Option<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for t in texts {
        let t = t.as_ref().trim();
        if t.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str(sep);
        }
        out.push_str(t);
    }
    (!out.is_empty()).then_some(out)
}
