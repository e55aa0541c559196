//! HL7 v2 escape sequences (chapter 2.7): decoding raw field text and encoding text for output.
//!
//! [`unescape`] understands:
//!
//! | sequence | result |
//! |---|---|
//! | `\F\` `\S\` `\T\` `\R\` `\E\` `\P\` | the field, component, subcomponent, repetition, escape, truncation character |
//! | `\Xhhhh…\` | the bytes `hh…`, decoded as UTF-8 when valid, else as Latin-1; adjacent `\X…\` sequences are joined first, so a UTF-8 character split over two sequences survives |
//! | `\.br\` | `\n` |
//! | `\.sp\`, `\.sp n\` | `n` line breaks (1 when `n` is absent; at most 64) |
//! | `\H\` `\N\` (highlighting) | dropped |
//! | `\.fi\` `\.nf\` `\.ce\` `\.in±n\` `\.ti±n\` `\.sk n\` (formatting) | dropped |
//! | `\Cxxyy\` `\Mxxyy\` `\Mxxyyzz\` (ISO 2022 / multi-byte charset switches) | dropped: not supported |
//!
//! Anything else — an unknown sequence (`\Zxx\`, `\\`), a sequence containing a separator, or
//! an unterminated one (`C:\temp`) — is kept literally: the escape character is output as is and
//! decoding resumes right after it.
//!
//! [`escape`] is the inverse: it escapes the delimiters and the escape character, and writes CR
//! and LF as `\X0D\` and `\X0A\` (valid in every data type, unlike `\.br\` which only FT allows),
//! so that `unescape(escape(s)) == s` for every string `s` and every valid set of delimiters.
//! Both borrow their input when there is nothing to change.
//!
//! ```
//! use std::borrow::Cow;
//! use passerelle_plugin_sdk::hl7::{escape, Delimiters};
//!
//! let d = Delimiters::STANDARD;
//! assert_eq!(escape::unescape(r"Na\S\K \T\ Cl\.br\ok", &d), "Na^K & Cl\nok");
//! assert_eq!(escape::escape("a|b\r\n", &d), r"a\F\b\X0D\\X0A\");
//! assert!(matches!(escape::unescape("plain", &d), Cow::Borrowed("plain")));
//! ```

use std::borrow::Cow;

use super::Delimiters;
use super::scan;

/// Most line breaks a single `\.sp n\` may produce (a guard against tiny inputs that would
/// expand to huge outputs).
const MAX_SP_LINES: usize = 64;

/// Decodes the escape sequences of a raw HL7 value (see the [module docs](self) for the exact
/// list). Returns the input borrowed when it contains no escape character; never fails: what it
/// does not understand it keeps literally.
///
/// ```
/// use passerelle_plugin_sdk::hl7::{escape::unescape, Delimiters};
///
/// let d = Delimiters::STANDARD;
/// assert_eq!(unescape(r"A\F\B\R\C\E\D", &d), r"A|B~C\D");
/// assert_eq!(unescape(r"\X0D\\X0A\", &d), "\r\n");
/// assert_eq!(unescape(r"\XC3A9\", &d), "é"); // valid UTF-8
/// assert_eq!(unescape(r"\XE9\", &d), "é"); // not UTF-8: Latin-1
/// assert_eq!(unescape(r"\H\bold\N\ \.sp 2\x", &d), "bold \n\nx");
/// assert_eq!(unescape(r"C:\temp\Z1\x", &d), r"C:\temp\Z1\x");
/// ```
pub fn unescape<'a>(raw: &'a str, delims: &Delimiters) -> Cow<'a, str> {
    let Some(esc) = delims.escape else {
        return Cow::Borrowed(raw);
    };
    // Most values hold no escape: find out without `str::find`'s searcher (costly in the
    // sandbox on these short strings).
    let first = if esc.is_ascii() {
        scan::find_byte(raw.as_bytes(), 0, esc as u8)
    } else {
        raw.find(esc)
    };
    let Some(first) = first else {
        return Cow::Borrowed(raw);
    };
    let esc_len = esc.len_utf8();
    let mut out = String::with_capacity(raw.len());
    out.push_str(&raw[..first]);
    // Bytes of consecutive `\X…\` sequences, decoded together.
    let mut hex: Vec<u8> = Vec::new();
    // `rest` always starts with an escape character.
    let mut rest = &raw[first..];
    loop {
        let after_open = &rest[esc_len..];
        let next = match after_open.find(esc) {
            None => {
                // Unterminated: literal to the end.
                flush_hex(&mut hex, &mut out);
                out.push_str(rest);
                return Cow::Owned(out);
            }
            Some(close) => {
                let body = &after_open[..close];
                let after_close = &after_open[close + esc_len..];
                match classify(body, delims) {
                    Seq::Char(c) => {
                        flush_hex(&mut hex, &mut out);
                        out.push(c);
                        after_close
                    }
                    Seq::Newlines(n) => {
                        flush_hex(&mut hex, &mut out);
                        out.extend(std::iter::repeat_n('\n', n));
                        after_close
                    }
                    Seq::Hex(digits) => {
                        push_hex(digits, &mut hex);
                        after_close
                    }
                    Seq::Drop => {
                        flush_hex(&mut hex, &mut out);
                        after_close
                    }
                    Seq::Literal => {
                        flush_hex(&mut hex, &mut out);
                        out.push(esc);
                        after_open
                    }
                }
            }
        };
        match next.find(esc) {
            None => {
                flush_hex(&mut hex, &mut out);
                out.push_str(next);
                return Cow::Owned(out);
            }
            Some(i) => {
                if i > 0 {
                    flush_hex(&mut hex, &mut out);
                    out.push_str(&next[..i]);
                }
                rest = &next[i..];
            }
        }
    }
}

/// Escapes `text` for writing into an HL7 field: the field, component, repetition,
/// subcomponent, escape and truncation characters become `\F\ \S\ \R\ \T\ \E\ \P\`, CR and LF
/// become `\X0D\` and `\X0A\`. Returns the input borrowed when nothing needs escaping (always
/// the case when the delimiters have no escape character).
///
/// `unescape(&escape(s, d), d) == s` holds for every `s` when the delimiters are distinct and
/// not letters or digits (as in every parsed message).
///
/// ```
/// use passerelle_plugin_sdk::hl7::{escape::{escape, unescape}, Delimiters};
///
/// let d = Delimiters::STANDARD;
/// let s = "Ca^2+ & K~ 5|6 \\ ok\r\n";
/// let e = escape(s, &d);
/// assert_eq!(e, r"Ca\S\2+ \T\ K\R\ 5\F\6 \E\ ok\X0D\\X0A\");
/// assert_eq!(unescape(&e, &d), s);
/// ```
pub fn escape<'a>(text: &'a str, delims: &Delimiters) -> Cow<'a, str> {
    let Some(esc) = delims.escape else {
        return Cow::Borrowed(text);
    };
    let code = |c: char| -> Option<&'static str> {
        if c == esc {
            Some("E")
        } else if c == delims.field {
            Some("F")
        } else if c == delims.component {
            Some("S")
        } else if c == delims.repetition {
            Some("R")
        } else if Some(c) == delims.subcomponent {
            Some("T")
        } else if Some(c) == delims.truncation {
            Some("P")
        } else if c == '\r' {
            Some("X0D")
        } else if c == '\n' {
            Some("X0A")
        } else {
            None
        }
    };
    let Some(first) = text.find(|c| code(c).is_some()) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        match code(c) {
            Some(k) => {
                out.push(esc);
                out.push_str(k);
                out.push(esc);
            }
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

enum Seq<'a> {
    Char(char),
    Newlines(usize),
    Hex(&'a str),
    Drop,
    Literal,
}

fn classify<'a>(body: &'a str, d: &Delimiters) -> Seq<'a> {
    let known = |c: Option<char>| c.map_or(Seq::Literal, Seq::Char);
    match body {
        "F" => return Seq::Char(d.field),
        "S" => return Seq::Char(d.component),
        "R" => return Seq::Char(d.repetition),
        "E" => return known(d.escape),
        "T" => return known(d.subcomponent),
        "P" => return known(d.truncation),
        "H" | "N" => return Seq::Drop,
        _ => {}
    }
    if body.contains(|c| d.is_separator(c)) {
        return Seq::Literal;
    }
    let bytes = body.as_bytes();
    let all_hex = |s: &[u8]| s.iter().all(u8::is_ascii_hexdigit);
    match bytes.first() {
        Some(b'X') => {
            let digits = &bytes[1..];
            if !digits.is_empty() && digits.len().is_multiple_of(2) && all_hex(digits) {
                Seq::Hex(&body[1..])
            } else {
                Seq::Literal
            }
        }
        Some(b'C') if bytes.len() == 5 && all_hex(&bytes[1..]) => Seq::Drop,
        Some(b'M') if (bytes.len() == 5 || bytes.len() == 7) && all_hex(&bytes[1..]) => Seq::Drop,
        Some(b'.') if bytes.len() >= 3 => {
            let (cmd, arg) = (&bytes[1..3], &bytes[3..]);
            match cmd {
                b"br" if arg.is_empty() => Seq::Newlines(1),
                b"fi" | b"nf" | b"ce" if arg.is_empty() => Seq::Drop,
                b"sp" => match number(arg, false) {
                    Some(n) => Seq::Newlines(n.unwrap_or(1).clamp(1, MAX_SP_LINES)),
                    None => Seq::Literal,
                },
                b"sk" if matches!(number(arg, false), Some(Some(_))) => Seq::Drop,
                b"in" | b"ti" if matches!(number(arg, true), Some(Some(_))) => Seq::Drop,
                _ => Seq::Literal,
            }
        }
        _ => Seq::Literal,
    }
}

/// Parses the argument of a formatting command: optional spaces, an optional sign (when
/// `signed`, `+` always allowed), then digits. `Some(None)` when there is no argument at all,
/// `None` when it is malformed. The value saturates instead of overflowing.
fn number(arg: &[u8], signed: bool) -> Option<Option<usize>> {
    let mut s = arg;
    while let [b' ', tail @ ..] = s {
        s = tail;
    }
    if s.is_empty() {
        return if arg.is_empty() { Some(None) } else { None };
    }
    match s {
        [b'+', tail @ ..] => s = tail,
        [b'-', tail @ ..] if signed => s = tail,
        _ => {}
    }
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = s.iter().fold(0usize, |n, &b| {
        n.saturating_mul(10).saturating_add(usize::from(b - b'0'))
    });
    Some(Some(n))
}

fn push_hex(digits: &str, out: &mut Vec<u8>) {
    let val = |b: u8| match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0, // unreachable: the digits were checked by `classify`
    };
    out.extend(
        digits
            .as_bytes()
            .chunks_exact(2)
            .map(|p| (val(p[0]) << 4) | val(p[1])),
    );
}

fn flush_hex(hex: &mut Vec<u8>, out: &mut String) {
    if hex.is_empty() {
        return;
    }
    match std::str::from_utf8(hex) {
        Ok(s) => out.push_str(s),
        Err(_) => out.extend(hex.iter().map(|&b| char::from(b))),
    }
    hex.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Delimiters = Delimiters::STANDARD;

    fn u(s: &str) -> String {
        unescape(s, &D).into_owned()
    }

    #[test]
    fn delimiter_sequences() {
        assert_eq!(u(r"\F\"), "|");
        assert_eq!(u(r"\S\"), "^");
        assert_eq!(u(r"\T\"), "&");
        assert_eq!(u(r"\R\"), "~");
        assert_eq!(u(r"\E\"), "\\");
        assert_eq!(u(r"a\F\b\S\c\T\d\R\e\E\f"), r"a|b^c&d~e\f");
        // \P\ only when a truncation character is defined.
        assert_eq!(u(r"\P\"), r"\P\");
        let d7 = Delimiters {
            truncation: Some('#'),
            ..D
        };
        assert_eq!(unescape(r"1\P\", &d7), "1#");
    }

    #[test]
    fn custom_delimiters() {
        let d = Delimiters {
            field: '#',
            component: '$',
            repetition: '%',
            escape: Some('*'),
            subcomponent: Some('@'),
            truncation: None,
        };
        assert_eq!(unescape("*F**S**T**R**E*", &d), "#$@%*");
        assert_eq!(escape("#$@%*\\|^", &d), "*F**S**T**R**E*\\|^");
        // No escape character: nothing to decode or encode.
        let none = Delimiters { escape: None, ..D };
        assert!(matches!(unescape(r"\F\", &none), Cow::Borrowed(r"\F\")));
        assert!(matches!(escape("a|b", &none), Cow::Borrowed("a|b")));
    }

    #[test]
    fn hex() {
        assert_eq!(u(r"\X0D\\X0A\"), "\r\n");
        assert_eq!(u(r"\X0D0A\"), "\r\n");
        assert_eq!(u(r"\X41\\X42\"), "AB");
        assert_eq!(u(r"\Xc3a9\"), "é");
        assert_eq!(u(r"\XC3\\XA9\"), "é"); // split UTF-8 joined
        assert_eq!(u(r"\XC3\x\XA9\"), "Ãx©"); // not adjacent: each Latin-1
        assert_eq!(u(r"\XE9\t\XE9\"), "été");
        assert_eq!(u(r"\X\"), r"\X\");
        assert_eq!(u(r"\X4\"), r"\X4\");
        assert_eq!(u(r"\XGG\"), r"\XGG\");
    }

    #[test]
    fn formatting() {
        assert_eq!(u(r"a\.br\b"), "a\nb");
        assert_eq!(u(r"a\.sp\b"), "a\nb");
        assert_eq!(u(r"a\.sp 3\b"), "a\n\n\nb");
        assert_eq!(u(r"a\.sp3\b"), "a\n\n\nb");
        assert_eq!(
            u(r"a\.sp 999999999999999999999999\b").len(),
            2 + MAX_SP_LINES
        );
        assert_eq!(u(r"\H\Bold\N\"), "Bold");
        assert_eq!(
            u(r"\.fi\\.nf\\.ce\x\.in+4\\.in-2\\.ti-4\\.ti3\\.sk 2\y"),
            "xy"
        );
        assert_eq!(u(r"\.in\x"), r"\.in\x");
        assert_eq!(u(r"\.sk\x"), r"\.sk\x");
        assert_eq!(u(r"\.br2\x"), r"\.br2\x");
        assert_eq!(u(r"\.xx\"), r"\.xx\");
        assert_eq!(u(r"\.\"), r"\.\");
    }

    #[test]
    fn charset_switches_dropped() {
        assert_eq!(u(r"a\C2842\b"), "ab");
        assert_eq!(u(r"a\M2442\b\M244F42\c"), "abc");
        assert_eq!(u(r"a\C28\b"), r"a\C28\b");
    }

    #[test]
    fn unknown_and_unterminated_kept() {
        assert_eq!(u(r"\Zfoo\"), r"\Zfoo\");
        assert_eq!(u(r"a\\b"), r"a\\b");
        assert_eq!(u(r"abc\"), r"abc\");
        assert_eq!(u(r"\"), r"\");
        assert_eq!(u(r"trailing\r"), r"trailing\r");
        assert_eq!(u(r"C:\temp\F\x"), r"C:\temp|x");
        assert_eq!(u(r"\unknown\F\"), r"\unknown|");
        // A sequence cannot span a separator.
        assert_eq!(u(r"\a^b\"), r"\a^b\");
        assert_eq!(u(r"\X0^0\"), r"\X0^0\");
    }

    #[test]
    fn borrows_when_possible() {
        assert!(matches!(unescape("abc", &D), Cow::Borrowed("abc")));
        assert!(matches!(escape("abc é", &D), Cow::Borrowed("abc é")));
        assert!(matches!(escape("", &D), Cow::Borrowed("")));
    }

    #[test]
    fn escape_round_trips_examples() {
        for s in [
            "",
            "\\",
            "\\\\",
            "\\F\\",
            "|^~&\\",
            "\r\n\r",
            "é\u{0}\u{1F600}",
            "\\X0D\\",
        ] {
            let e = escape(s, &D);
            assert_eq!(unescape(&e, &D), s, "{e}");
        }
    }
}
