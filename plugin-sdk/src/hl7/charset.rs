//! Character sets of HL7 v2 (MSH-18) and other legacy lab formats, decoded to Rust strings.
//!
//! Only the character sets met in practice in French and international lab feeds are supported:
//! UTF-8, ISO-8859-1 (Latin-1), ISO-8859-15 (Latin-9) and ASCII. Latin-1 is decoded by mapping
//! each byte to U+0000–U+00FF (true ISO-8859-1, *not* windows-1252: bytes 0x80–0x9F become C1
//! control characters). ASCII is decoded like Latin-1, so a stray byte ≥ 0x80 never fails.
//!
//! This module is public so that other adapters (HPRIM, flat files) can reuse it.
//!
//! ```
//! use passerelle_plugin_sdk::hl7::charset::{decode, Charset};
//!
//! assert_eq!(decode(b"caf\xe9", Charset::Latin1), "café");
//! assert_eq!(decode(b"\xa4", Charset::Latin9), "€");
//! assert_eq!(Charset::from_label("UNICODE UTF-8"), Some(Charset::Utf8));
//! ```

use std::fmt;

/// A supported character set.
///
/// ```
/// use passerelle_plugin_sdk::hl7::charset::Charset;
/// assert_eq!(Charset::from_label("8859/1"), Some(Charset::Latin1));
/// assert_eq!(Charset::Latin1.label(), "8859/1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Charset {
    /// UTF-8 (HL7 `UNICODE UTF-8`).
    Utf8,
    /// ISO-8859-1, Latin-1 (HL7 `8859/1`): every byte maps to the code point of the same value.
    Latin1,
    /// ISO-8859-15, Latin-9 (HL7 `8859/15`): Latin-1 with `€ Š š Ž ž Œ œ Ÿ`.
    Latin9,
    /// US-ASCII (HL7 `ASCII`); bytes ≥ 0x80 are tolerated and decoded as Latin-1.
    Ascii,
}

impl Charset {
    /// Recognises a character set label: the HL7 table 0211 values (`UNICODE UTF-8`, `8859/1`,
    /// `8859/15`, `ASCII`) and the usual IANA / DICOM spellings (`UTF-8`, `ISO-8859-1`,
    /// `ISO IR100`, `ISO_IR 100`, `Latin1`, `ISO-8859-15`, `US-ASCII`…). Case, spaces, `-`,
    /// `_` and `/` are ignored. Returns `None` for anything else (including an empty label).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::charset::Charset;
    /// assert_eq!(Charset::from_label(" iso-8859-1 "), Some(Charset::Latin1));
    /// assert_eq!(Charset::from_label("ISO IR100"), Some(Charset::Latin1));
    /// assert_eq!(Charset::from_label("8859/15"), Some(Charset::Latin9));
    /// assert_eq!(Charset::from_label("UTF-8"), Some(Charset::Utf8));
    /// assert_eq!(Charset::from_label("ASCII"), Some(Charset::Ascii));
    /// assert_eq!(Charset::from_label("UNICODE UTF-16"), None);
    /// ```
    pub fn from_label(label: &str) -> Option<Charset> {
        let mut buf = [0u8; 24];
        let mut len = 0;
        for b in label.bytes() {
            if matches!(b, b' ' | b'-' | b'_' | b'/' | b'\t') {
                continue;
            }
            if len == buf.len() {
                return None;
            }
            buf[len] = b.to_ascii_uppercase();
            len += 1;
        }
        match &buf[..len] {
            b"UNICODEUTF8" | b"UTF8" => Some(Charset::Utf8),
            b"88591" | b"ISO88591" | b"ISOIR100" | b"LATIN1" => Some(Charset::Latin1),
            b"885915" | b"ISO885915" | b"ISOIR203" | b"LATIN9" => Some(Charset::Latin9),
            b"ASCII" | b"USASCII" | b"ISOIR6" => Some(Charset::Ascii),
            _ => None,
        }
    }

    /// The HL7 table 0211 label of this character set (what MSH-18 should say).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::charset::Charset;
    /// assert_eq!(Charset::Utf8.label(), "UNICODE UTF-8");
    /// assert_eq!(Charset::Latin9.label(), "8859/15");
    /// ```
    pub fn label(self) -> &'static str {
        match self {
            Charset::Utf8 => "UNICODE UTF-8",
            Charset::Latin1 => "8859/1",
            Charset::Latin9 => "8859/15",
            Charset::Ascii => "ASCII",
        }
    }
}

impl fmt::Display for Charset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Invalid UTF-8 met by [`try_decode`].
///
/// ```
/// use passerelle_plugin_sdk::hl7::charset::{try_decode, Charset};
/// let err = try_decode(b"ab\xffc", Charset::Utf8).unwrap_err();
/// assert_eq!(err.offset, 2);
/// assert_eq!(err.to_string(), "invalid UTF-8 at byte 2");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset of the first invalid byte.
    pub offset: usize,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid UTF-8 at byte {}", self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes `bytes` in `charset`. Never fails: invalid UTF-8 sequences become U+FFFD (use
/// [`try_decode`] to reject them instead); the single-byte charsets cannot fail.
///
/// ```
/// use passerelle_plugin_sdk::hl7::charset::{decode, Charset};
/// assert_eq!(decode("é".as_bytes(), Charset::Utf8), "é");
/// assert_eq!(decode(b"\xe9", Charset::Utf8), "\u{FFFD}");
/// assert_eq!(decode(b"\xe9\x80", Charset::Latin1), "é\u{80}"); // not windows-1252's €
/// assert_eq!(decode(b"\xe9", Charset::Ascii), "é");
/// ```
pub fn decode(bytes: &[u8], charset: Charset) -> String {
    match charset {
        Charset::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        Charset::Latin1 | Charset::Ascii => single_byte(bytes, latin1_char),
        Charset::Latin9 => single_byte(bytes, latin9_char),
    }
}

/// Decodes `bytes` in `charset`, failing on invalid UTF-8 (only possible for
/// [`Charset::Utf8`]) with the byte offset of the first bad byte.
///
/// ```
/// use passerelle_plugin_sdk::hl7::charset::{try_decode, Charset};
/// assert_eq!(try_decode(b"caf\xc3\xa9", Charset::Utf8).unwrap(), "café");
/// assert_eq!(try_decode(b"caf\xe9", Charset::Utf8).unwrap_err().offset, 3);
/// assert_eq!(try_decode(b"caf\xe9", Charset::Latin1).unwrap(), "café");
/// ```
pub fn try_decode(bytes: &[u8], charset: Charset) -> Result<String, DecodeError> {
    match charset {
        Charset::Utf8 => match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(DecodeError {
                offset: e.valid_up_to(),
            }),
        },
        other => Ok(decode(bytes, other)),
    }
}

/// Decodes bytes of unknown charset: UTF-8 when they are valid UTF-8, Latin-1 otherwise.
/// Returns the text and the charset chosen.
///
/// ```
/// use passerelle_plugin_sdk::hl7::charset::{decode_auto, Charset};
/// assert_eq!(decode_auto("é".as_bytes()), ("é".to_string(), Charset::Utf8));
/// assert_eq!(decode_auto(b"\xe9"), ("é".to_string(), Charset::Latin1));
/// ```
pub fn decode_auto(bytes: &[u8]) -> (String, Charset) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_owned(), Charset::Utf8),
        Err(_) => (decode(bytes, Charset::Latin1), Charset::Latin1),
    }
}

fn latin1_char(b: u8) -> char {
    char::from(b)
}

fn latin9_char(b: u8) -> char {
    match b {
        0xA4 => '€',
        0xA6 => 'Š',
        0xA8 => 'š',
        0xB4 => 'Ž',
        0xB8 => 'ž',
        0xBC => 'Œ',
        0xBD => 'œ',
        0xBE => 'Ÿ',
        _ => char::from(b),
    }
}

/// Decodes a single-byte charset, copying ASCII runs in bulk.
fn single_byte(bytes: &[u8], map: fn(u8) -> char) -> String {
    let high = bytes.iter().filter(|b| !b.is_ascii()).count();
    let mut out = String::with_capacity(bytes.len() + 2 * high);
    let mut rest = bytes;
    while !rest.is_empty() {
        let ascii = rest
            .iter()
            .position(|b| !b.is_ascii())
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(ascii);
        // An ASCII run is always valid UTF-8.
        if let Ok(s) = std::str::from_utf8(run) {
            out.push_str(s);
        }
        if let Some((&b, tail)) = tail.split_first() {
            out.push(map(b));
            rest = tail;
        } else {
            rest = tail;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_maps_every_byte_to_its_code_point() {
        let all: Vec<u8> = (0..=255).collect();
        let s = decode(&all, Charset::Latin1);
        assert_eq!(s.chars().count(), 256);
        for (i, c) in s.chars().enumerate() {
            assert_eq!(c as u32, i as u32);
        }
        // Not windows-1252: 0x80 is U+0080, not €; 0x92 is U+0092, not ’.
        assert_eq!(decode(b"\x80\x92", Charset::Latin1), "\u{80}\u{92}");
    }

    #[test]
    fn latin9_differs_from_latin1_on_eight_bytes() {
        let s = decode(b"\xa4\xa6\xa8\xb4\xb8\xbc\xbd\xbe\xe9", Charset::Latin9);
        assert_eq!(s, "€ŠšŽžŒœŸé");
        assert_eq!(decode(b"\xa4", Charset::Latin1), "¤");
    }

    #[test]
    fn ascii_tolerates_high_bytes() {
        assert_eq!(decode(b"A\xe9B", Charset::Ascii), "AéB");
        assert_eq!(try_decode(b"A\xe9B", Charset::Ascii).unwrap(), "AéB");
    }

    #[test]
    fn utf8_strict_and_lossy() {
        assert_eq!(
            try_decode(b"ok\xc3", Charset::Utf8),
            Err(DecodeError { offset: 2 })
        );
        assert_eq!(decode(b"ok\xc3", Charset::Utf8), "ok\u{FFFD}");
    }

    #[test]
    fn labels() {
        for l in ["UNICODE UTF-8", "utf-8", "UTF8", "Unicode UTF-8"] {
            assert_eq!(Charset::from_label(l), Some(Charset::Utf8), "{l}");
        }
        for l in [
            "8859/1",
            "ISO-8859-1",
            "ISO IR100",
            "ISO_IR 100",
            "iso8859-1",
            "latin1",
        ] {
            assert_eq!(Charset::from_label(l), Some(Charset::Latin1), "{l}");
        }
        for l in ["8859/15", "ISO-8859-15", "LATIN-9"] {
            assert_eq!(Charset::from_label(l), Some(Charset::Latin9), "{l}");
        }
        for l in ["ASCII", "US-ASCII"] {
            assert_eq!(Charset::from_label(l), Some(Charset::Ascii), "{l}");
        }
        for l in [
            "",
            "UNICODE",
            "8859/2",
            "ISO IR87",
            "windows-1252",
            "a very long label indeed",
        ] {
            assert_eq!(Charset::from_label(l), None, "{l}");
        }
    }
}
