//! Small text helpers over the HL7 toolkit's views: trimmed component values, OIDs, URNs, FHIR
//! `code`/`uri` checks.
//!
//! ```
//! use passerelle_plugin_sdk::hl7::Message;
//! use passerelle_plugin_sdk::hl7::fhir::text::{comp, is_oid, urn};
//!
//! let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||123^^^ HOP ")?;
//! let rep = msg.first("PID").expect("PID").field(3).repetition(1);
//! assert_eq!(comp(&rep, 4), "HOP");
//! assert!(is_oid("1.2.250.1.71.4.2.1"));
//! assert_eq!(urn("urn:passerelle:id:", "HOP A"), "urn:passerelle:id:HOP%20A");
//! # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
//! ```

use std::borrow::Cow;

use crate::hl7::{Component, Field, Repetition};
use crate::words::{HIGH, ONES, any_word, zero_mask};

/// Trims a value, keeping it borrowed when it was.
///
/// ```
/// use std::borrow::Cow;
/// use passerelle_plugin_sdk::hl7::fhir::text::trim_cow;
///
/// assert!(matches!(trim_cow(Cow::Borrowed(" a ")), Cow::Borrowed("a")));
/// assert_eq!(trim_cow(Cow::Owned(" b".to_string())), "b");
/// ```
pub fn trim_cow(value: Cow<'_, str>) -> Cow<'_, str> {
    match value {
        Cow::Borrowed(s) => Cow::Borrowed(trim(s)),
        Cow::Owned(s) => {
            let t = trim(&s);
            if t.len() == s.len() {
                Cow::Owned(s)
            } else {
                Cow::Owned(t.to_string())
            }
        }
    }
}

/// `s.trim()`, without the call when neither end can be whitespace — the usual case. Every
/// whitespace character is either ASCII ≤ `' '` or non-ASCII, so ends that are ASCII above
/// `' '` are not. Inside the sandbox `str::trim` stays an out-of-line call (≈ 150 per 5-OBX
/// message).
#[inline(always)]
pub(crate) fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(&a), Some(&z)) if a > b' ' && a < 0x80 && z > b' ' && z < 0x80 => s,
        _ => s.trim(),
    }
}

/// Component `n` of a repetition: unescaped first subcomponent, trimmed.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
/// use passerelle_plugin_sdk::hl7::fhir::text::comp;
///
/// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||DUPONT^ Jean ~MARTIN^Marie")?;
/// let names = msg.first("PID").expect("PID").field(5);
/// assert_eq!(comp(&names.repetition(1), 2), "Jean");
/// assert_eq!(comp(&names.repetition(2), 1), "MARTIN");
/// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
/// ```
pub fn comp<'m>(rep: &Repetition<'m>, n: usize) -> Cow<'m, str> {
    trim_cow(rep.component(n).value())
}

/// Component `n` of a field's first repetition, unescaped and trimmed.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
/// use passerelle_plugin_sdk::hl7::fhir::text::fcomp;
///
/// let msg = Message::parse(b"MSH|^~\\&|LAB^1.2.3^ISO| CHU ")?;
/// let msh = msg.first("MSH").expect("MSH");
/// assert_eq!(fcomp(&msh.field(3), 2), "1.2.3");
/// assert_eq!(fcomp(&msh.field(4), 1), "CHU");
/// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
/// ```
pub fn fcomp<'m>(field: &Field<'m>, n: usize) -> Cow<'m, str> {
    trim_cow(field.component(n).value())
}

/// The components of a repetition, split once (composite types read many of them).
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
/// use passerelle_plugin_sdk::hl7::fhir::text::Comps;
///
/// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||123^^^HOP&1.2.3&ISO^PI")?;
/// let c = Comps::of(&msg.first("PID").expect("PID").field(3).repetition(1));
/// assert_eq!(c.get(1), "123");
/// assert_eq!(c.comp(4).subcomponent(2).value(), "1.2.3");
/// assert_eq!(c.get(5), "PI");
/// assert_eq!(c.get(20), "");
/// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
/// ```
pub struct Comps<'m> {
    rep: Repetition<'m>,
    parts: [Option<Component<'m>>; 16],
}

impl<'m> Comps<'m> {
    /// Splits a repetition into its (first 16) components.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// use passerelle_plugin_sdk::hl7::fhir::text::Comps;
    ///
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||DUPONT^Jean")?;
    /// let c = Comps::of(&msg.first("PID").expect("PID").field(5).repetition(1));
    /// assert_eq!(c.get(2), "Jean");
    /// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
    /// ```
    pub fn of(rep: &Repetition<'m>) -> Self {
        let mut parts = [None; 16];
        for (i, c) in rep.components().take(16).enumerate() {
            parts[i] = Some(c);
        }
        Comps { rep: *rep, parts }
    }

    /// Component `n` (1-based); empty when missing.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// use passerelle_plugin_sdk::hl7::fhir::text::Comps;
    ///
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||123^^^HOP&1.2.3")?;
    /// let c = Comps::of(&msg.first("PID").expect("PID").field(3).repetition(1));
    /// assert_eq!(c.comp(4).subcomponent(1).value(), "HOP");
    /// assert!(c.comp(9).is_empty());
    /// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
    /// ```
    pub fn comp(&self, n: usize) -> Component<'m> {
        match self.parts.get(n.wrapping_sub(1)) {
            Some(Some(c)) => *c,
            Some(None) => self.rep.component(0),
            None => self.rep.component(n),
        }
    }

    /// Component `n`, unescaped (first subcomponent) and trimmed.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// use passerelle_plugin_sdk::hl7::fhir::text::Comps;
    ///
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||DUPONT\\S\\X^ Jean ")?;
    /// let c = Comps::of(&msg.first("PID").expect("PID").field(5).repetition(1));
    /// assert_eq!(c.get(1), "DUPONT^X");
    /// assert_eq!(c.get(2), "Jean");
    /// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
    /// ```
    pub fn get(&self, n: usize) -> Cow<'m, str> {
        let c = self.comp(n);
        if c.is_empty() {
            Cow::Borrowed("")
        } else {
            trim_cow(c.value())
        }
    }
}

/// Subcomponent `n` of a component, unescaped and trimmed.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
/// use passerelle_plugin_sdk::hl7::fhir::text::sub;
///
/// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||123^^^HOP& 1.2.3 &ISO")?;
/// let hd = msg.first("PID").expect("PID").field(3).repetition(1).component(4);
/// assert_eq!(sub(&hd, 2), "1.2.3");
/// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
/// ```
pub fn sub<'m>(c: &Component<'m>, n: usize) -> Cow<'m, str> {
    trim_cow(c.subcomponent(n).value())
}

/// `Some(owned)` when not empty.
///
/// ```
/// use std::borrow::Cow;
/// use passerelle_plugin_sdk::hl7::fhir::text::owned;
///
/// assert_eq!(owned(Cow::Borrowed("a")), Some("a".to_string()));
/// assert_eq!(owned(Cow::Borrowed("")), None);
/// ```
pub fn owned(value: Cow<'_, str>) -> Option<String> {
    (!value.is_empty()).then(|| value.into_owned())
}

/// An ISO object identifier: digits and single dots, starting with 0, 1 or 2, at least two arcs.
///
/// ```
/// use passerelle_plugin_sdk::hl7::fhir::text::is_oid;
///
/// assert!(is_oid("1.2.250.1.213.1.4.10"));
/// assert!(!is_oid("1204567809"));
/// assert!(!is_oid("3.1"));
/// ```
pub fn is_oid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3
        && matches!(b[0], b'0' | b'1' | b'2')
        && b.contains(&b'.')
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'.')
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !b.windows(2).any(|w| w == b"..")
}

/// Appends `text` percent-encoded for the last part of a URN: keeps ASCII letters, digits and
/// `-._~`, encodes everything else as UTF-8 `%XX`.
fn urn_encode_into(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// `prefix` followed by `name` percent-encoded for the last part of a URN: keeps ASCII
/// letters, digits and `-._~`, encodes everything else as UTF-8 `%XX`.
///
/// ```
/// use passerelle_plugin_sdk::hl7::fhir::text::urn;
///
/// assert_eq!(urn("urn:passerelle:id:", "IA PHIMS/é"), "urn:passerelle:id:IA%20PHIMS%2F%C3%A9");
/// ```
pub fn urn(prefix: &str, name: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + name.len() + 8);
    s.push_str(prefix);
    urn_encode_into(name, &mut s);
    s
}

/// `urn:oid:` followed by `oid` (which the caller checked with [`is_oid`]).
///
/// Without `format!`: its machinery costs ≈ 1 k instructions a call inside the sandbox, and
/// every identifier and coding with an OID makes one.
///
/// ```
/// use passerelle_plugin_sdk::hl7::fhir::text::urn_oid;
///
/// assert_eq!(urn_oid("1.2.250.1.213.1.4.8"), "urn:oid:1.2.250.1.213.1.4.8");
/// ```
pub fn urn_oid(oid: &str) -> String {
    let mut s = String::with_capacity(8 + oid.len());
    s.push_str("urn:oid:");
    s.push_str(oid);
    s
}

/// A valid FHIR `code`: trimmed, internal whitespace runs collapsed to one space; `None` when
/// empty.
///
/// ```
/// use passerelle_plugin_sdk::hl7::fhir::text::fhir_code;
///
/// assert_eq!(fhir_code(" A B ").as_deref(), Some("A B"));
/// assert_eq!(fhir_code("A  B\tC").as_deref(), Some("A B C"));
/// assert_eq!(fhir_code("  "), None);
/// ```
pub fn fhir_code(s: &str) -> Option<Cow<'_, str>> {
    let t = trim(s);
    if t.is_empty() {
        return None;
    }
    let clean = !t.contains(|c: char| c.is_whitespace() && c != ' ')
        && !t.as_bytes().windows(2).any(|w| w == b"  ");
    if clean {
        return Some(Cow::Borrowed(t));
    }
    Some(Cow::Owned(
        t.split_whitespace().collect::<Vec<_>>().join(" "),
    ))
}

/// Whether a string can be a FHIR `uri` (no whitespace, not empty).
///
/// ```
/// use passerelle_plugin_sdk::hl7::fhir::text::is_uri;
///
/// assert!(is_uri("http://loinc.org"));
/// assert!(!is_uri("not a uri"));
/// assert!(!is_uri(""));
/// ```
pub fn is_uri(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c.is_control())
}

/// A short text for the envelope: at most 1 KiB, no control characters.
///
/// ```
/// use passerelle_plugin_sdk::hl7::fhir::text::envelope_text;
///
/// assert!(envelope_text("CHU Nord"));
/// assert!(!envelope_text("  "));
/// assert!(!envelope_text("a\nb"));
/// ```
pub fn envelope_text(s: &str) -> bool {
    !trim(s).is_empty() && s.len() <= 1024 && !has_control(s)
}

/// True when `s` holds a control character (`char::is_control`: C0, DEL, C1). ASCII text
/// (codes, systems, names: nearly every envelope text) is checked eight bytes at a time;
/// inside the sandbox a `char` loop costs ≈ 20 instructions per character.
fn has_control(s: &str) -> bool {
    // High bit of each byte below 0x20, equal to 0x7f, or at or above 0x80.
    let flagged =
        |w: u64| zero_mask(w & (ONES * 0xe0)) | zero_mask(w ^ (ONES * 0x7f)) | (w & HIGH) != 0;
    if !any_word(s.as_bytes(), flagged) {
        return false;
    }
    // A control character, or non-ASCII text: decide character by character.
    s.contains(char::is_control)
}

/// 64-bit FNV-1a, hex: a seed for messages without a control id.
///
/// ```
/// use passerelle_plugin_sdk::hl7::fhir::text::fnv1a_hex;
///
/// assert_eq!(fnv1a_hex(b""), "fnv1a:cbf29ce484222325");
/// ```
pub fn fnv1a_hex(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a:{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn has_control_agrees_with_char_is_control() {
        // Each character at each position of texts of 0 to 20 characters.
        for c in [
            '\0', '\n', '\u{1f}', ' ', '~', '\u{7f}', '\u{80}', '\u{9f}', '\u{a0}', 'é', '🧪',
        ] {
            for len in 0..20 {
                for at in 0..=len {
                    let mut s: String = "x".repeat(len);
                    s.insert(at, c);
                    assert_eq!(has_control(&s), s.contains(char::is_control), "{s:?}");
                }
            }
        }
        assert!(!has_control(""));
        assert!(!has_control("http://loinc.org"));
    }

    proptest! {
        #[test]
        fn has_control_agrees_on_any_text(s in any::<String>()) {
            prop_assert_eq!(has_control(&s), s.contains(char::is_control));
        }
    }

    #[test]
    fn trim_agrees_with_str_trim() {
        // Unicode whitespace at either end (NBSP, ideographic space, vertical tab, NEL) takes
        // the slow path; ASCII ends above ' ' the fast one.
        for s in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\ta\r\n",
            "\u{b}a",
            "a\u{b}",
            "\u{a0}a",
            "a\u{a0}",
            "\u{3000}a\u{3000}",
            "\u{85}a",
            "é",
            " é ",
            "aé",
            "éa",
            "a b",
            "\u{7f}",
            "~x~",
        ] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn trim_agrees_with_str_trim_on_any_text(s in "\\PC*|[ \t\u{a0}\u{3000}]{0,2}[a-z]{0,3}[ \u{b}\u{85}]{0,2}") {
            proptest::prop_assert_eq!(trim(&s), s.trim());
        }
    }

    #[test]
    fn oids() {
        assert!(is_oid("1.2.250.1.213.1.4.10"));
        assert!(is_oid("2.16.840.1.113883.6.1"));
        for bad in [
            "",
            "1",
            "12",
            "1204567809",
            "1..2",
            "1.2.",
            ".1.2",
            "3.1",
            "1.2a",
        ] {
            assert!(!is_oid(bad), "{bad}");
        }
    }

    #[test]
    fn codes_and_urns() {
        assert_eq!(fhir_code(" A B ").as_deref(), Some("A B"));
        assert_eq!(fhir_code("A  B\tC").as_deref(), Some("A B C"));
        assert_eq!(fhir_code("  "), None);
        assert_eq!(
            urn("urn:passerelle:id:", "IA PHIMS/é"),
            "urn:passerelle:id:IA%20PHIMS%2F%C3%A9"
        );
    }
}
