//! Parsing: the bytes decoded once, then the index of segment and field boundaries.

use super::{Message, SegInfo};
use crate::hl7::charset::{self, Charset};
use crate::hl7::error::preview;
use crate::hl7::scan;
use crate::hl7::{Delimiters, ParseError};
use crate::types::InboundMessage;

impl Message {
    /// Parses a message from its raw bytes.
    ///
    /// - A UTF-8 byte-order mark, an MLLP start byte (0x0B), leading blank lines and a trailing
    ///   MLLP end byte (0x1C) are skipped; the message must then start with `MSH`.
    /// - Delimiters come from MSH-1 and MSH-2 (see [`Delimiters`]); a doubled escape character
    ///   (`^~\\&`) counts once.
    /// - The character set comes from MSH-18 (first repetition, first component), read from
    ///   the raw bytes: `UNICODE UTF-8`/`UTF-8` → UTF-8, and then invalid UTF-8 is an error
    ///   ([`ParseError::InvalidUtf8`], with the byte offset); `8859/1` and its aliases →
    ///   Latin-1; `8859/15` → Latin-9; `ASCII` → ASCII (bytes ≥ 0x80 read as Latin-1). An empty
    ///   MSH-18 means UTF-8 when the bytes are valid UTF-8, else Latin-1. Any other label is
    ///   [`ParseError::UnsupportedCharset`]; a source can override it with
    ///   [`parse_with_charset`](Self::parse_with_charset).
    /// - Segments end with CR, LF or CRLF, mixed freely; empty (or blank) lines are ignored.
    ///   Some systems write the two characters `\r` before the real line end: such a trailing
    ///   literal `\r` is removed when it cannot be the end of an escape sequence (when the
    ///   escape character is `\`, i.e. when its backslash opens rather than closes a
    ///   sequence), and kept otherwise (e.g. `\E\r`).
    /// - Every line must start with a segment name (an upper-case letter, then two upper-case
    ///   letters or digits) followed by the field separator or the line end; a second `MSH` is
    ///   an error (split batches and files of messages first).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::{charset::Charset, Message};
    ///
    /// // BOM, LF and CRLF line ends, an empty line, Latin-1 declared in MSH-18.
    /// let msg = Message::parse(
    ///     b"\xef\xbb\xbfMSH|^~\\&||||||||||||||||8859/1\nPID|1||||H\xe9l\xe8ne\r\n\r\nPV1|1\n",
    /// )
    /// .unwrap();
    /// assert_eq!(msg.charset(), Charset::Latin1);
    /// assert_eq!(msg.get("PID-5").as_deref(), Some("Hélène"));
    /// assert_eq!(msg.segment_count(), 3);
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        Self::parse_with_charset(bytes, None)
    }

    /// Parses an inbound message as an adapter receives it: the character set from MSH-18;
    /// when MSH-18 is empty and the source declares a character set
    /// ([`InboundMessage::charset`], `charset` in the source's configuration), that one — the
    /// bytes are decoded again only when they are not plain ASCII. An error converts into
    /// [`AdaptError::Malformed`](crate::types::AdaptError::Malformed) with `?`.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// use passerelle_plugin_sdk::inbound_message;
    ///
    /// let mut inbound = inbound_message(b"MSH|^~\\&|A\rPID|1||||M\xfcller\r", "x-application/hl7-v2+er7", "lab");
    /// inbound.charset = Some("8859/1".into());
    /// let msg = Message::parse_inbound(&inbound).unwrap();
    /// assert_eq!(msg.get("PID-5").as_deref(), Some("Müller"));
    /// ```
    pub fn parse_inbound(message: &InboundMessage) -> Result<Message, ParseError> {
        let msg = Message::parse(&message.payload)?;
        if let Some(cs) = message.charset.as_deref().map(str::trim)
            && !cs.is_empty()
            && msg.msh().field(18).value().trim().is_empty()
            && Charset::from_label(cs).is_some_and(|c| c != msg.charset())
            && !message.payload.is_ascii()
        {
            return Message::parse_with_charset(&message.payload, Some(cs));
        }
        Ok(msg)
    }

    /// Like [`parse`](Self::parse), but when `charset` is `Some(label)` the message is decoded
    /// in that character set whatever MSH-18 says (for sources known to lie). The label is
    /// read by [`Charset::from_label`]; an unknown one is [`ParseError::UnsupportedCharset`].
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::{charset::Charset, Message};
    ///
    /// let raw = b"MSH|^~\\&||||||||||||||||UNICODE UTF-8\rPID|1||||M\xfcller\r";
    /// assert!(Message::parse(raw).is_err()); // declared UTF-8, but it is not
    /// let msg = Message::parse_with_charset(raw, Some("8859/1")).unwrap();
    /// assert_eq!(msg.get("PID-5").as_deref(), Some("Müller"));
    /// assert_eq!(msg.charset(), Charset::Latin1);
    /// ```
    pub fn parse_with_charset(bytes: &[u8], charset: Option<&str>) -> Result<Message, ParseError> {
        let (raw, base) = trim_frame(bytes);
        if !raw.starts_with(b"MSH") {
            return Err(ParseError::NotHl7 {
                offset: base,
                found: preview(raw, 12),
            });
        }
        if u32::try_from(raw.len()).is_err() {
            return Err(ParseError::TooLarge { len: bytes.len() });
        }
        let delims = Delimiters::from_msh(raw, base)
            .map_err(|(offset, reason)| ParseError::InvalidDelimiters { offset, reason })?;
        let declared =
            match charset {
                Some(label) => Some(Charset::from_label(label).ok_or_else(|| {
                    ParseError::UnsupportedCharset {
                        label: label.to_owned(),
                        forced: true,
                    }
                })?),
                None => match msh18(raw, &delims) {
                    Some(label) => Some(
                        Charset::from_label(&String::from_utf8_lossy(label)).ok_or_else(|| {
                            ParseError::UnsupportedCharset {
                                label: String::from_utf8_lossy(label).into_owned(),
                                forced: false,
                            }
                        })?,
                    ),
                    None => None,
                },
            };
        let (text, charset) = match declared {
            Some(cs) => match charset::try_decode(raw, cs) {
                Ok(text) => (text, cs),
                Err(e) => {
                    let line = 1 + count_lines(&raw[..e.offset]);
                    return Err(ParseError::InvalidUtf8 {
                        offset: base + e.offset,
                        line,
                    });
                }
            },
            None => charset::decode_auto(raw),
        };
        // Latin-1 text can be up to twice as long as its bytes: check again.
        if u32::try_from(text.len()).is_err() {
            return Err(ParseError::TooLarge { len: bytes.len() });
        }
        let mut msg = Message {
            text,
            delims,
            view_delims: delims,
            charset,
            segs: Vec::new(),
            seps: Vec::new(),
        };
        msg.index()?;
        if !msg.has_escapes() {
            msg.view_delims.escape = None;
        }
        Ok(msg)
    }

    /// True when the escape character occurs after MSH-2 (which holds it, literally).
    fn has_escapes(&self) -> bool {
        let Some(esc) = self.delims.escape else {
            return false;
        };
        // MSH is the first segment; its second separator ends MSH-2.
        let from = match self.segs.first() {
            Some(msh) if msh.seps_end > msh.seps_start + 1 => {
                self.seps[msh.seps_start as usize + 1] as usize
            }
            Some(msh) => msh.end as usize,
            None => return false,
        };
        let rest = &self.text[from..];
        if esc.is_ascii() {
            scan::find_byte(rest.as_bytes(), 0, esc as u8).is_some()
        } else {
            rest.contains(esc)
        }
    }

    /// Builds the segment and field-separator index over `self.text`.
    fn index(&mut self) -> Result<(), ParseError> {
        let bytes = self.text.as_bytes();
        let fs = self.delims.field as u8; // ASCII, checked by `Delimiters::from_msh`
        let mut segs = Vec::with_capacity(bytes.len() / 64 + 4);
        let mut seps = Vec::with_capacity(bytes.len() / 8 + 16);
        let mut counts: Vec<([u8; 3], u32)> = Vec::new();
        let mut pos = 0;
        let mut line_no = 0;
        while pos < bytes.len() {
            line_no += 1;
            let start = pos;
            let seps_start = seps.len();
            let end = scan::line_seps(bytes, start, fs, &mut seps);
            pos = match bytes.get(end..end + 2) {
                Some(b"\r\n") => end + 2,
                _ => end + 1,
            };
            let line = &bytes[start..end];
            let len = strip_literal_cr(line, &self.delims);
            let line = &line[..len];
            let end = start + len;
            // The stripped literal `\r` holds a separator only when the field separator is
            // the backslash itself (found by fuzzing): drop it, or a field would end before
            // it starts.
            while seps[seps_start..]
                .last()
                .is_some_and(|&p| p as usize >= end)
            {
                seps.pop();
            }
            if line.iter().all(|b| *b == b' ' || *b == b'\t') {
                seps.truncate(seps_start);
                continue;
            }
            let name_ok = line.len() >= 3
                && line[0].is_ascii_uppercase()
                && line[1..3]
                    .iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            let reason = if !name_ok {
                Some("a segment must start with a 3-character name (A-Z, then A-Z or 0-9)")
            } else if line.len() > 3 && line[3] != fs {
                Some("the segment name must be followed by the field separator")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(ParseError::InvalidSegment {
                    line: line_no,
                    segment: segs.len(),
                    found: preview(line, 12),
                    reason,
                });
            }
            let name = [line[0], line[1], line[2]];
            if &name == b"MSH" && !segs.is_empty() {
                return Err(ParseError::UnexpectedMsh {
                    line: line_no,
                    segment: segs.len(),
                });
            }
            let occurrence = match counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, c)) => {
                    *c += 1;
                    *c
                }
                None => {
                    counts.push((name, 1));
                    1
                }
            };
            segs.push(SegInfo {
                start: start as u32,
                end: end as u32,
                seps_start: seps_start as u32,
                seps_end: seps.len() as u32,
                occurrence,
            });
        }
        self.segs = segs;
        self.seps = seps;
        Ok(())
    }
}

pub(super) fn count_lines(bytes: &[u8]) -> usize {
    let mut n = 0;
    let mut prev = 0u8;
    for &b in bytes {
        if b == b'\n' && prev != b'\r' || b == b'\r' {
            n += 1;
        }
        prev = b;
    }
    n
}

/// Skips a UTF-8 BOM, an MLLP start byte and leading line breaks, and drops a trailing MLLP
/// end byte (with what follows it). Returns the remaining bytes and their offset.
fn trim_frame(bytes: &[u8]) -> (&[u8], usize) {
    let mut start = 0;
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        start = 3;
    }
    while let Some(b'\r' | b'\n' | 0x0B) = bytes.get(start) {
        start += 1;
    }
    let mut end = bytes.len();
    while end > start && matches!(bytes[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    if end > start && bytes[end - 1] == 0x1C {
        end -= 1;
    } else {
        end = bytes.len();
    }
    (&bytes[start..end], start)
}

/// MSH-18 (first repetition, first component, trimmed), from the raw bytes of the MSH line.
fn msh18<'a>(raw: &'a [u8], d: &Delimiters) -> Option<&'a [u8]> {
    // Word-at-a-time searches: a byte loop over the MSH line costs more inside the sandbox.
    let mut seps = Vec::new();
    let line = &raw[..scan::line_seps(raw, 0, d.field as u8, &mut seps)];
    // Separator k-1 opens part k; part 0 is "MSH", part k is MSH-(k+1).
    let start = *seps.get(16)? as usize + 1;
    let end = seps.get(17).map_or(line.len(), |&e| e as usize);
    let field = &line[start..end];
    let (comp, rep) = (d.component as u8, d.repetition as u8);
    let value = field.split(|&b| b == comp || b == rep).next()?.trim_ascii();
    (!value.is_empty()).then_some(value)
}

/// The length of `line` without a trailing literal `\r` (two characters) that is not the end
/// of an escape sequence.
fn strip_literal_cr(line: &[u8], d: &Delimiters) -> usize {
    let len = line.len();
    if !line.ends_with(b"\\r") {
        return len;
    }
    let backslash = len - 2;
    if d.escape != Some('\\') {
        return backslash;
    }
    // Escape sequences never span separators: count the escape characters before the
    // backslash in the current separator-free run; an even count means it opens a sequence
    // (unterminated, hence not an escape sequence).
    let run_start = line[..backslash]
        .iter()
        .rposition(|&b| d.is_separator(char::from(b)))
        .map_or(0, |p| p + 1);
    let escapes = line[run_start..backslash]
        .iter()
        .filter(|&&b| b == b'\\')
        .count();
    if escapes.is_multiple_of(2) {
        backslash
    } else {
        len
    }
}
