//! The parsed message and its zero-copy views: segments, fields, repetitions, components,
//! subcomponents.

use std::borrow::Cow;
use std::fmt;

use super::charset::{self, Charset};
use super::error::preview;
use super::escape::unescape;
use super::scan;
use super::{Delimiters, ParseError, Path};

/// A parsed HL7 v2 message: the text decoded once into a `String`, plus an index of segment
/// and field boundaries. Everything else is read lazily as `&str` views into that text.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
///
/// let msg = Message::parse(
///     b"MSH|^~\\&|LAB|CHU|||20240131123000+0100||ORU^R01^ORU_R01|MSG001|P|2.5\r\
///       PID|1||12345^^^CHU^PI||DUPONT^Jean||19800101|M\r\
///       OBR|1||R-1|24317-0^Hemogram^LN\r\
///       OBX|1|NM|718-7^Hemoglobin^LN||13.4|g/dL^^UCUM|||||F\r\
///       OBX|2|NM|4544-3^Hematocrit^LN||40.1|%|||||F\r",
/// )
/// .unwrap();
/// assert_eq!(msg.message_type().as_deref(), Some("ORU^R01"));
/// assert_eq!(msg.control_id().as_deref(), Some("MSG001"));
/// assert_eq!(msg.get("PID-5.1").as_deref(), Some("DUPONT"));
/// let values: Vec<_> = msg.segments_named("OBX").map(|obx| obx.field(5).value()).collect();
/// assert_eq!(values, ["13.4", "40.1"]);
/// ```
#[derive(Clone)]
pub struct Message {
    text: String,
    delims: Delimiters,
    charset: Charset,
    segs: Vec<SegInfo>,
    /// Byte offsets (in `text`) of the field separators after each segment name.
    seps: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
struct SegInfo {
    start: u32,
    end: u32,
    seps_start: u32,
    seps_end: u32,
    occurrence: u32,
}

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
            charset,
            segs: Vec::new(),
            seps: Vec::new(),
        };
        msg.index()?;
        Ok(msg)
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
            let mut end = start;
            loop {
                match scan::find_any(bytes, end, [b'\r', b'\n', fs]) {
                    Some(i) if bytes[i] != b'\r' && bytes[i] != b'\n' => {
                        seps.push(i as u32);
                        end = i + 1;
                    }
                    Some(i) => {
                        end = i;
                        break;
                    }
                    None => {
                        end = bytes.len();
                        break;
                    }
                }
            }
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

    /// The whole decoded text, line ends as received.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1").unwrap();
    /// assert_eq!(msg.as_str(), "MSH|^~\\&|A\rPID|1");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The delimiters read from MSH-1 and MSH-2.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH#$%*@#A").unwrap();
    /// assert_eq!(msg.delimiters().component, '$');
    /// assert_eq!(msg.get("MSH-3").as_deref(), Some("A"));
    /// ```
    pub fn delimiters(&self) -> &Delimiters {
        &self.delims
    }

    /// The character set the message was decoded from.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::{charset::Charset, Message};
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||Andr\xe9").unwrap();
    /// assert_eq!(msg.charset(), Charset::Latin1); // empty MSH-18, not UTF-8
    /// ```
    pub fn charset(&self) -> Charset {
        self.charset
    }

    /// The number of segments.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\r\rPID|1\r").unwrap();
    /// assert_eq!(msg.segment_count(), 2);
    /// ```
    pub fn segment_count(&self) -> usize {
        self.segs.len()
    }

    /// The segment at a 0-based position.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1\r").unwrap();
    /// assert_eq!(msg.segment(1).unwrap().name(), "PID");
    /// assert!(msg.segment(2).is_none());
    /// ```
    pub fn segment(&self, index: usize) -> Option<Segment<'_>> {
        self.segs.get(index).map(|info| Segment {
            msg: self,
            info,
            index,
        })
    }

    /// The `MSH` segment (always the first).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|LAB\r").unwrap();
    /// assert_eq!(msg.msh().field(3).value(), "LAB");
    /// ```
    pub fn msh(&self) -> Segment<'_> {
        Segment {
            msg: self,
            info: &self.segs[0],
            index: 0,
        }
    }

    /// All segments in order.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1\rPV1|1\r").unwrap();
    /// let names: Vec<_> = msg.segments().map(|s| s.name()).collect();
    /// assert_eq!(names, ["MSH", "PID", "PV1"]);
    /// ```
    pub fn segments(&self) -> impl ExactSizeIterator<Item = Segment<'_>> + '_ {
        self.segs
            .iter()
            .enumerate()
            .map(move |(index, info)| Segment {
                msg: self,
                info,
                index,
            })
    }

    /// The segments named `name`, in order.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rOBX|1\rNTE|1\rOBX|2\r").unwrap();
    /// let ids: Vec<_> = msg.segments_named("OBX").map(|s| s.field(1).value()).collect();
    /// assert_eq!(ids, ["1", "2"]);
    /// ```
    pub fn segments_named<'m, 'n>(
        &'m self,
        name: &'n str,
    ) -> impl Iterator<Item = Segment<'m>> + use<'m, 'n> {
        self.segments().filter(move |s| s.name() == name)
    }

    /// The first segment named `name`.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||42\r").unwrap();
    /// assert_eq!(msg.first("PID").unwrap().field(3).value(), "42");
    /// assert!(msg.first("PV1").is_none());
    /// ```
    pub fn first(&self, name: &str) -> Option<Segment<'_>> {
        self.segments().find(|s| s.name() == name)
    }

    /// Reads one value by [`Path`] (`PID-5.1`, `OBX[2]-5`, `PID-3(2).4.2`, `MSH-9.2`),
    /// unescaped. `None` when the path is malformed or has no segment name, when the segment
    /// does not exist, or when the value is empty. A path without a component reads the first
    /// component (`PID-5` is `PID-5.1.1`).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(
    ///     b"MSH|^~\\&|A||||||ORU^R01\rPID|1||1^^^X&1.2&ISO~2^^^Y&3.4&ISO||O\\T\\NEIL^ANN\r",
    /// )
    /// .unwrap();
    /// assert_eq!(msg.get("MSH-9.2").as_deref(), Some("R01"));
    /// assert_eq!(msg.get("PID-5").as_deref(), Some("O&NEIL"));
    /// assert_eq!(msg.get("PID-5.2").as_deref(), Some("ANN"));
    /// assert_eq!(msg.get("PID-3(2).4.2").as_deref(), Some("3.4"));
    /// assert_eq!(msg.get("PID-3.4.2").as_deref(), Some("1.2"));
    /// assert_eq!(msg.get("PID-7"), None);
    /// assert_eq!(msg.get("OBX-5"), None);
    /// ```
    pub fn get(&self, path: &str) -> Option<Cow<'_, str>> {
        self.get_path(&Path::parse(path).ok()?)
    }

    /// [`get`](Self::get) with a path parsed beforehand (for hot loops).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::{Message, Path};
    /// let name = Path::parse("PID-5.2").unwrap();
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||DOE^JOHN\r").unwrap();
    /// assert_eq!(msg.get_path(&name).as_deref(), Some("JOHN"));
    /// ```
    pub fn get_path(&self, path: &Path) -> Option<Cow<'_, str>> {
        let name = path.segment()?;
        let seg = self.segments_named(name).nth(path.occurrence() - 1)?;
        seg.get_path(path)
    }

    /// The message type as `code^event` from MSH-9.1 and MSH-9.2 (just `code` when there is
    /// no event), e.g. `ORU^R01`. `None` when MSH-9.1 is empty.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A||||||ADT^A01^ADT_A01|1|P|2.5").unwrap();
    /// assert_eq!(msg.message_type().as_deref(), Some("ADT^A01"));
    /// let ack = Message::parse(b"MSH|^~\\&|A||||||ACK^|1|P|2.5").unwrap();
    /// assert_eq!(ack.message_type().as_deref(), Some("ACK"));
    /// ```
    pub fn message_type(&self) -> Option<String> {
        let field = self.msh().field(9);
        let code = field.component(1).value();
        if code.is_empty() {
            return None;
        }
        let event = field.component(2).value();
        Some(if event.is_empty() {
            code.into_owned()
        } else {
            format!("{code}^{event}")
        })
    }

    /// The message control id (MSH-10), unescaped; `None` when empty.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A||||||ORU^R01|MSG-42|P|2.5").unwrap();
    /// assert_eq!(msg.control_id().as_deref(), Some("MSG-42"));
    /// ```
    pub fn control_id(&self) -> Option<Cow<'_, str>> {
        non_empty(self.msh().field(10).value())
    }

    /// The version id (MSH-12.1), e.g. `2.5`; `None` when empty.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A||||||ADT^A01|1|P|2.5^FRA^2.11").unwrap();
    /// assert_eq!(msg.version().as_deref(), Some("2.5"));
    /// ```
    pub fn version(&self) -> Option<Cow<'_, str>> {
        non_empty(self.msh().field(12).value())
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("delimiters", &self.delims)
            .field("charset", &self.charset)
            .field(
                "segments",
                &self.segments().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// One segment of a [`Message`]: a cheap, copyable view.
///
/// Fields use HL7 numbering from 1. For `MSH`, field 1 is the field separator itself and field
/// 2 the encoding characters, so `MSH-9` is the message type as in the standard. Field 0 is
/// the segment name.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
///
/// let msg = Message::parse(b"MSH|^~\\&|A\rOBX|1|NM\rOBX|2|ST|X^Y||high\r").unwrap();
/// let obx = msg.segments_named("OBX").nth(1).unwrap();
/// assert_eq!((obx.name(), obx.index(), obx.occurrence()), ("OBX", 2, 2));
/// assert_eq!(obx.field(5).value(), "high");
/// assert_eq!(obx.field_count(), 5);
/// assert_eq!(obx.location(3, 2), "OBX[2]-3.2");
/// assert_eq!(msg.msh().field(1).raw(), "|");
/// assert_eq!(msg.msh().field(2).raw(), "^~\\&");
/// ```
#[derive(Clone, Copy)]
pub struct Segment<'m> {
    msg: &'m Message,
    info: &'m SegInfo,
    index: usize,
}

impl<'m> Segment<'m> {
    /// The 3-character segment name, e.g. `OBX`.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rZBE|1").unwrap();
    /// assert_eq!(msg.segment(1).unwrap().name(), "ZBE");
    /// ```
    pub fn name(&self) -> &'m str {
        let s = self.info.start as usize;
        &self.msg.text[s..s + 3]
    }

    /// The 0-based position of the segment in the message (MSH is 0).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1").unwrap();
    /// assert_eq!(msg.first("PID").unwrap().index(), 1);
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// The 1-based number of this segment among the segments of the same name (the third
    /// `OBX` has occurrence 3).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rOBX|1\rNTE|1\rOBX|2").unwrap();
    /// assert_eq!(msg.segment(3).unwrap().occurrence(), 2);
    /// ```
    pub fn occurrence(&self) -> usize {
        self.info.occurrence as usize
    }

    /// The raw text of the segment, without its line end.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\r\nPID|1|\\F\\\r\n").unwrap();
    /// assert_eq!(msg.segment(1).unwrap().raw(), "PID|1|\\F\\");
    /// ```
    pub fn raw(&self) -> &'m str {
        &self.msg.text[self.info.start as usize..self.info.end as usize]
    }

    /// The delimiters of the message.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A").unwrap();
    /// assert_eq!(msg.msh().delimiters().field, '|');
    /// ```
    pub fn delimiters(&self) -> &'m Delimiters {
        &self.msg.delims
    }

    fn is_msh(&self) -> bool {
        self.name() == "MSH"
    }

    fn seps(&self) -> &'m [u32] {
        &self.msg.seps[self.info.seps_start as usize..self.info.seps_end as usize]
    }

    /// The number of fields, counting empty ones up to the last field separator (for `MSH`,
    /// MSH-1 included). `PID|1||` has 3 fields.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||\rPV1").unwrap();
    /// assert_eq!(msg.msh().field_count(), 3);
    /// assert_eq!(msg.first("PID").unwrap().field_count(), 3);
    /// assert_eq!(msg.first("PV1").unwrap().field_count(), 0);
    /// ```
    pub fn field_count(&self) -> usize {
        self.seps().len() + usize::from(self.is_msh())
    }

    /// Field `n` (HL7 numbering). A missing field is empty, never an error. For `MSH`, fields
    /// 1 and 2 are literal: never split nor unescaped.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A||||||ORU^R01\rPID|1||123").unwrap();
    /// assert_eq!(msg.msh().field(9).raw(), "ORU^R01");
    /// let pid = msg.first("PID").unwrap();
    /// assert_eq!(pid.field(0).raw(), "PID");
    /// assert_eq!(pid.field(3).value(), "123");
    /// assert!(pid.field(30).is_empty());
    /// ```
    pub fn field(&self, n: usize) -> Field<'m> {
        let text = self.msg.text.as_str();
        let delims = &self.msg.delims;
        let start = self.info.start as usize;
        let literal = |raw| Field {
            raw,
            delims,
            literal: true,
        };
        let is_msh = self.is_msh();
        if n == 0 {
            return literal(self.name());
        }
        if is_msh && n == 1 {
            return literal(&text[start + 3..start + 4]);
        }
        let k = if is_msh { n - 2 } else { n - 1 };
        let seps = self.seps();
        let raw = match seps.get(k) {
            Some(&from) => {
                let to = seps
                    .get(k + 1)
                    .map_or(self.info.end as usize, |&t| t as usize);
                &text[from as usize + 1..to]
            }
            None => "",
        };
        Field {
            raw,
            delims,
            literal: is_msh && n == 2,
        }
    }

    /// The fields from 1 to [`field_count`](Self::field_count), in order.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rNTE|1||Hello").unwrap();
    /// let raws: Vec<_> = msg.first("NTE").unwrap().fields().map(|f| f.raw()).collect();
    /// assert_eq!(raws, ["1", "", "Hello"]);
    /// ```
    pub fn fields(&self) -> impl Iterator<Item = Field<'m>> + use<'m> {
        let seg = *self;
        (1..=seg.field_count()).map(move |n| seg.field(n))
    }

    /// A location for error messages: `OBX[3]-5.1` (`component` 0 gives `OBX[3]-5`).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1").unwrap();
    /// let pid = msg.first("PID").unwrap();
    /// assert_eq!(pid.location(3, 0), "PID[1]-3");
    /// assert_eq!(pid.location(5, 1), "PID[1]-5.1");
    /// ```
    pub fn location(&self, field: usize, component: usize) -> String {
        let mut s = format!("{}[{}]-{}", self.name(), self.occurrence(), field);
        if component > 0 {
            s.push('.');
            s.push_str(&component.to_string());
        }
        s
    }

    /// Reads a value by a path relative to this segment (`5`, `5.1`, `3(2).4.2`); a path
    /// with a segment name also works when the name matches (its occurrence is ignored).
    /// Same rules as [`Message::get`].
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rOBX|1|CWE|X||123^Present^SCT").unwrap();
    /// let obx = msg.first("OBX").unwrap();
    /// assert_eq!(obx.get("5.2").as_deref(), Some("Present"));
    /// assert_eq!(obx.get("OBX-5").as_deref(), Some("123"));
    /// assert_eq!(obx.get("PID-5"), None);
    /// ```
    pub fn get(&self, path: &str) -> Option<Cow<'m, str>> {
        self.get_path(&Path::parse(path).ok()?)
    }

    /// [`get`](Self::get) with a path parsed beforehand.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::{Message, Path};
    /// let p = Path::parse("5").unwrap();
    /// let msg = Message::parse(b"MSH|^~\\&|A\rOBX|1|NM|X||7.2").unwrap();
    /// assert_eq!(msg.first("OBX").unwrap().get_path(&p).as_deref(), Some("7.2"));
    /// ```
    pub fn get_path(&self, path: &Path) -> Option<Cow<'m, str>> {
        if path.segment().is_some_and(|s| s != self.name()) {
            return None;
        }
        let rep = self.field(path.field()).repetition(path.repetition());
        let value = match (path.component(), path.subcomponent()) {
            (None, _) => rep.value(),
            (Some(c), None) => rep.component(c).value(),
            (Some(c), Some(s)) => rep.component(c).subcomponent(s).value(),
        };
        non_empty(value)
    }

    /// Shortcut for `field(field).component(component).value()`: the unescaped first
    /// subcomponent of that component of the first repetition.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||DOE^JOHN").unwrap();
    /// assert_eq!(msg.first("PID").unwrap().value(5, 2), "JOHN");
    /// ```
    pub fn value(&self, field: usize, component: usize) -> Cow<'m, str> {
        self.field(field).component(component).value()
    }
}

impl fmt::Debug for Segment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Segment({}[{}] #{}: {:?})",
            self.name(),
            self.occurrence(),
            self.index,
            self.raw()
        )
    }
}

impl fmt::Display for Segment<'_> {
    /// The raw segment text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw())
    }
}

/// Accessors shared by the four levels (`raw`, `is_empty`, `is_null`).
macro_rules! common_accessors {
    ($ty:ident, $example:literal) => {
        impl<'m> $ty<'m> {
            /// The raw text, still escaped, with every nested separator.
            ///
            /// ```
            /// use passerelle_plugin_sdk::hl7::Message;
            /// let msg = Message::parse(b"MSH|^~\\&|A\rOBX|1|ST|X||a\\T\\b^c&d~e").unwrap();
            #[doc = $example]
            /// ```
            pub fn raw(&self) -> &'m str {
                self.raw
            }

            /// Whether the raw text is empty.
            ///
            /// ```
            /// use passerelle_plugin_sdk::hl7::Message;
            /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||").unwrap();
            /// assert!(msg.first("PID").unwrap().field(2).is_empty());
            /// ```
            pub fn is_empty(&self) -> bool {
                self.raw.is_empty()
            }

            /// Whether the value is the HL7 explicit null `""` (meaning "delete the value"),
            /// as opposed to empty (meaning "not sent").
            ///
            /// ```
            /// use passerelle_plugin_sdk::hl7::Message;
            /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1|\"\"|").unwrap();
            /// assert!(msg.first("PID").unwrap().field(2).is_null());
            /// assert!(!msg.first("PID").unwrap().field(3).is_null());
            /// ```
            pub fn is_null(&self) -> bool {
                self.raw == "\"\""
            }
        }
    };
}

/// One field of a segment (all its repetitions).
///
/// - [`raw`](Field::raw): the escaped text of the whole field, separators included.
/// - [`value`](Field::value): the unescaped *first atomic value*: subcomponent 1 of
///   component 1 of repetition 1 (what HAPI's Terser returns for `PID-5`). This is what you
///   want for simple fields (`NM`, `ST`, `ID`, `TX`, `DTM`).
/// - [`text`](Field::text): the whole raw text unescaped; separators stay as they are, so
///   only use it on values known to have no components (an escaped `\S\` and a real `^` both
///   become `^`).
/// - [`component`](Field::component), [`repetition`](Field::repetition),
///   [`repetitions`](Field::repetitions) to go deeper.
///
/// Missing parts are empty values, never errors.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
///
/// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||ID1^^^A~ID2^^^B||DUPONT^MARIE\r").unwrap();
/// let pid = msg.first("PID").unwrap();
/// assert_eq!(pid.field(5).value(), "DUPONT");
/// assert_eq!(pid.field(5).component(2).value(), "MARIE");
/// let ids: Vec<_> = pid.field(3).repetitions().map(|r| r.component(4).value()).collect();
/// assert_eq!(ids, ["A", "B"]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Field<'m> {
    raw: &'m str,
    delims: &'m Delimiters,
    literal: bool,
}

common_accessors!(
    Field,
    "assert_eq!(msg.first(\"OBX\").unwrap().field(5).raw(), \"a\\\\T\\\\b^c&d~e\");"
);

impl<'m> Field<'m> {
    /// The repetitions (none for an empty field).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||A~B~~C").unwrap();
    /// let reps: Vec<_> = msg.first("PID").unwrap().field(3).repetitions().map(|r| r.raw()).collect();
    /// assert_eq!(reps, ["A", "B", "", "C"]);
    /// ```
    pub fn repetitions(&self) -> impl Iterator<Item = Repetition<'m>> + use<'m> {
        let (delims, literal, empty) = (self.delims, self.literal, self.raw.is_empty());
        let sep = if literal {
            None
        } else {
            Some(delims.repetition)
        };
        split(self.raw, sep)
            .filter(move |_| !empty)
            .map(move |raw| Repetition {
                raw,
                delims,
                literal,
            })
    }

    /// The number of repetitions (0 for an empty field).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||A~B|").unwrap();
    /// assert_eq!(msg.first("PID").unwrap().field(3).repetition_count(), 2);
    /// assert_eq!(msg.first("PID").unwrap().field(4).repetition_count(), 0);
    /// ```
    pub fn repetition_count(&self) -> usize {
        self.repetitions().count()
    }

    /// Repetition `n` (1-based); empty when missing.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||A~B").unwrap();
    /// let f = msg.first("PID").unwrap().field(3);
    /// assert_eq!(f.repetition(2).value(), "B");
    /// assert!(f.repetition(3).is_empty());
    /// ```
    pub fn repetition(&self, n: usize) -> Repetition<'m> {
        let sep = if self.literal {
            None
        } else {
            Some(self.delims.repetition)
        };
        Repetition {
            raw: nth(self.raw, sep, n),
            delims: self.delims,
            literal: self.literal,
        }
    }

    /// Component `n` (1-based) of the first repetition; empty when missing.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A||||||ORU^R01").unwrap();
    /// assert_eq!(msg.msh().field(9).component(2).value(), "R01");
    /// ```
    pub fn component(&self, n: usize) -> Component<'m> {
        self.repetition(1).component(n)
    }

    /// The unescaped first atomic value: repetition 1, component 1, subcomponent 1.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||O\\T\\BRIEN&X^ANN~B").unwrap();
    /// assert_eq!(msg.first("PID").unwrap().field(5).value(), "O&BRIEN");
    /// ```
    pub fn value(&self) -> Cow<'m, str> {
        self.repetition(1).value()
    }

    /// The whole raw text unescaped (separators left as they are).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rNTE|1||Line 1\\.br\\Ca\\S\\2+").unwrap();
    /// assert_eq!(msg.first("NTE").unwrap().field(3).text(), "Line 1\nCa^2+");
    /// ```
    pub fn text(&self) -> Cow<'m, str> {
        if self.literal {
            Cow::Borrowed(self.raw)
        } else {
            unescape(self.raw, self.delims)
        }
    }
}

/// One repetition of a field. Same accessors as [`Field`], one level down.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
/// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||1^^^A&1.2&ISO~2^^^B&3.4&ISO").unwrap();
/// let rep = msg.first("PID").unwrap().field(3).repetition(2);
/// assert_eq!(rep.value(), "2");
/// assert_eq!(rep.component(4).subcomponent(2).value(), "3.4");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Repetition<'m> {
    raw: &'m str,
    delims: &'m Delimiters,
    literal: bool,
}

common_accessors!(
    Repetition,
    "assert_eq!(msg.first(\"OBX\").unwrap().field(5).repetition(2).raw(), \"e\");"
);

impl<'m> Repetition<'m> {
    /// The components, in order (none when empty).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||DOE^JOHN^^^DR").unwrap();
    /// let parts: Vec<_> =
    ///     msg.first("PID").unwrap().field(5).repetition(1).components().map(|c| c.raw()).collect();
    /// assert_eq!(parts, ["DOE", "JOHN", "", "", "DR"]);
    /// ```
    pub fn components(&self) -> impl Iterator<Item = Component<'m>> + use<'m> {
        let (delims, literal, empty) = (self.delims, self.literal, self.raw.is_empty());
        let sep = if literal {
            None
        } else {
            Some(delims.component)
        };
        split(self.raw, sep)
            .filter(move |_| !empty)
            .map(move |raw| Component {
                raw,
                delims,
                literal,
            })
    }

    /// The number of components (0 when empty).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||DOE^JOHN^").unwrap();
    /// assert_eq!(msg.first("PID").unwrap().field(5).repetition(1).component_count(), 3);
    /// ```
    pub fn component_count(&self) -> usize {
        self.components().count()
    }

    /// Component `n` (1-based); empty when missing.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||DOE^JOHN").unwrap();
    /// assert_eq!(msg.first("PID").unwrap().field(5).repetition(1).component(2).value(), "JOHN");
    /// ```
    pub fn component(&self, n: usize) -> Component<'m> {
        let sep = if self.literal {
            None
        } else {
            Some(self.delims.component)
        };
        Component {
            raw: nth(self.raw, sep, n),
            delims: self.delims,
            literal: self.literal,
        }
    }

    /// The unescaped first atomic value (component 1, subcomponent 1).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||X~DOE^JOHN").unwrap();
    /// assert_eq!(msg.first("PID").unwrap().field(5).repetition(2).value(), "DOE");
    /// ```
    pub fn value(&self) -> Cow<'m, str> {
        self.component(1).value()
    }

    /// The whole raw text unescaped (separators left as they are).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||A^\\F\\").unwrap();
    /// assert_eq!(msg.first("PID").unwrap().field(5).repetition(1).text(), "A^|");
    /// ```
    pub fn text(&self) -> Cow<'m, str> {
        if self.literal {
            Cow::Borrowed(self.raw)
        } else {
            unescape(self.raw, self.delims)
        }
    }
}

/// One component of a repetition.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
/// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||1^^^CHU&1.2.250&ISO^PI").unwrap();
/// let authority = msg.first("PID").unwrap().field(3).component(4);
/// assert_eq!(authority.raw(), "CHU&1.2.250&ISO");
/// assert_eq!(authority.value(), "CHU");
/// assert_eq!(authority.subcomponent(2).value(), "1.2.250");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Component<'m> {
    raw: &'m str,
    delims: &'m Delimiters,
    literal: bool,
}

common_accessors!(
    Component,
    "assert_eq!(msg.first(\"OBX\").unwrap().field(5).component(2).raw(), \"c&d\");"
);

impl<'m> Component<'m> {
    fn sub_sep(&self) -> Option<char> {
        if self.literal {
            None
        } else {
            self.delims.subcomponent
        }
    }

    /// The subcomponents, in order (none when empty).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||1^^^CHU&1.2.250&ISO").unwrap();
    /// let c = msg.first("PID").unwrap().field(3).component(4);
    /// assert_eq!(c.subcomponents().map(|s| s.raw()).collect::<Vec<_>>(), ["CHU", "1.2.250", "ISO"]);
    /// ```
    pub fn subcomponents(&self) -> impl Iterator<Item = Subcomponent<'m>> + use<'m> {
        let (delims, literal, empty) = (self.delims, self.literal, self.raw.is_empty());
        split(self.raw, self.sub_sep())
            .filter(move |_| !empty)
            .map(move |raw| Subcomponent {
                raw,
                delims,
                literal,
            })
    }

    /// The number of subcomponents (0 when empty).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||1^^^CHU&1.2.250&ISO").unwrap();
    /// assert_eq!(msg.first("PID").unwrap().field(3).component(4).subcomponent_count(), 3);
    /// ```
    pub fn subcomponent_count(&self) -> usize {
        self.subcomponents().count()
    }

    /// Subcomponent `n` (1-based); empty when missing.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||1^^^CHU&1.2.250&ISO").unwrap();
    /// assert_eq!(msg.first("PID").unwrap().field(3).component(4).subcomponent(3).value(), "ISO");
    /// ```
    pub fn subcomponent(&self, n: usize) -> Subcomponent<'m> {
        Subcomponent {
            raw: nth(self.raw, self.sub_sep(), n),
            delims: self.delims,
            literal: self.literal,
        }
    }

    /// The unescaped first subcomponent.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||VAN\\S\\DER&X^JO").unwrap();
    /// assert_eq!(msg.first("PID").unwrap().field(5).component(1).value(), "VAN^DER");
    /// ```
    pub fn value(&self) -> Cow<'m, str> {
        self.subcomponent(1).value()
    }

    /// The whole raw text unescaped (subcomponent separators left as they are).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||||A\\E\\B&C").unwrap();
    /// assert_eq!(msg.first("PID").unwrap().field(5).component(1).text(), "A\\B&C");
    /// ```
    pub fn text(&self) -> Cow<'m, str> {
        if self.literal {
            Cow::Borrowed(self.raw)
        } else {
            unescape(self.raw, self.delims)
        }
    }
}

/// One subcomponent: the atomic level, where [`value`](Subcomponent::value) and
/// [`text`](Subcomponent::text) are the same.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
/// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||1^^^CHU&1.2\\T\\3&ISO").unwrap();
/// let sub = msg.first("PID").unwrap().field(3).component(4).subcomponent(2);
/// assert_eq!(sub.raw(), "1.2\\T\\3");
/// assert_eq!(sub.value(), "1.2&3");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Subcomponent<'m> {
    raw: &'m str,
    delims: &'m Delimiters,
    literal: bool,
}

common_accessors!(
    Subcomponent,
    "assert_eq!(msg.first(\"OBX\").unwrap().field(5).component(2).subcomponent(2).raw(), \"d\");"
);

impl<'m> Subcomponent<'m> {
    /// The unescaped value.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||1^^^A&B\\F\\C").unwrap();
    /// let c = msg.first("PID").unwrap().field(3).component(4);
    /// assert_eq!(c.subcomponent(2).value(), "B|C");
    /// ```
    pub fn value(&self) -> Cow<'m, str> {
        if self.literal {
            Cow::Borrowed(self.raw)
        } else {
            unescape(self.raw, self.delims)
        }
    }

    /// Same as [`value`](Self::value) at this level.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||1^^^A&B\\F\\C").unwrap();
    /// let c = msg.first("PID").unwrap().field(3).component(4);
    /// assert_eq!(c.subcomponent(2).text(), "B|C");
    /// ```
    pub fn text(&self) -> Cow<'m, str> {
        self.value()
    }
}

/// Splits on `sep`, or yields the whole text when there is no separator.
fn split(raw: &str, sep: Option<char>) -> impl Iterator<Item = &str> {
    // An ASCII separator (the norm) is searched a word at a time, like in `nth`.
    let ascii = sep.filter(char::is_ascii).map(|c| c as u8);
    let mut other = sep.filter(|c| !c.is_ascii()).map(|c| raw.split(c));
    let mut rest = Some(raw);
    std::iter::from_fn(move || {
        if let Some(parts) = &mut other {
            return parts.next();
        }
        let text = rest?;
        match ascii.and_then(|sep| scan::find_byte(text.as_bytes(), 0, sep)) {
            Some(i) => {
                rest = Some(&text[i + 1..]);
                Some(&text[..i])
            }
            None => rest.take(),
        }
    })
}

/// Part `n` (1-based) of `raw` split on `sep`; `""` when missing.
fn nth(raw: &str, sep: Option<char>, n: usize) -> &str {
    match (sep, n) {
        (_, 0) => "",
        (None, 1) => raw,
        (None, _) => "",
        // Delimiters are ASCII in practice: a word-at-a-time search beats `str::split`'s
        // searcher on these short strings (it was 6 % of an adapter's time in the sandbox),
        // and cutting at an ASCII byte always leaves valid UTF-8.
        (Some(c), n) if c.is_ascii() => {
            let (bytes, sep) = (raw.as_bytes(), c as u8);
            let mut start = 0;
            for _ in 1..n {
                match scan::find_byte(bytes, start, sep) {
                    Some(i) => start = i + 1,
                    None => return "",
                }
            }
            let end = scan::find_byte(bytes, start, sep).unwrap_or(bytes.len());
            &raw[start..end]
        }
        (Some(c), n) => raw.split(c).nth(n - 1).unwrap_or(""),
    }
}

fn non_empty(v: Cow<'_, str>) -> Option<Cow<'_, str>> {
    if v.is_empty() { None } else { Some(v) }
}

fn count_lines(bytes: &[u8]) -> usize {
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
    let line_end = raw
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(raw.len());
    // Part 0 is "MSH", part k is MSH-(k+1).
    let field = raw[..line_end].split(|&b| b == d.field as u8).nth(17)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Message {
        Message::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn split_agrees_with_str_split() {
        for raw in [
            "",
            "a",
            "a^b",
            "^",
            "^^",
            "a^^c^",
            "é^ü^ß",
            "ab^cd^ef",
            "12345678^123456789",
        ] {
            let ours: Vec<_> = split(raw, Some('^')).collect();
            assert_eq!(ours, raw.split('^').collect::<Vec<_>>(), "{raw:?}");
            assert_eq!(split(raw, None).collect::<Vec<_>>(), [raw]);
        }
        assert_eq!(split("a§b§", Some('§')).collect::<Vec<_>>(), ["a", "b", ""]);
    }

    #[test]
    fn nth_agrees_with_split() {
        for raw in ["", "a", "a^b", "^", "^^", "a^^c^", "é^ü^ß", "ab^cd^ef"] {
            for n in 1..6 {
                let expected = raw.split('^').nth(n - 1).unwrap_or("");
                assert_eq!(nth(raw, Some('^'), n), expected, "{raw:?} part {n}");
            }
            assert_eq!(nth(raw, Some('^'), 0), "");
            assert_eq!(nth(raw, None, 1), raw);
            assert_eq!(nth(raw, None, 2), "");
        }
        assert_eq!(nth("a§b§c", Some('§'), 2), "b");
    }

    #[test]
    fn line_ends_cr_lf_crlf_mixed() {
        for sep in ["\r", "\n", "\r\n"] {
            let m = parse(&["MSH|^~\\&|A", "PID|1", "PV1|1", ""].join(sep));
            let names: Vec<_> = m.segments().map(|s| s.name()).collect();
            assert_eq!(names, ["MSH", "PID", "PV1"], "{sep:?}");
            assert_eq!(m.first("PV1").unwrap().raw(), "PV1|1");
        }
        let m = parse("MSH|^~\\&|A\r\nPID|1\rPV1|1\n\n\r\r\nOBX|1\r\n");
        assert_eq!(m.segment_count(), 4);
        assert_eq!(m.segment(3).unwrap().raw(), "OBX|1");
        // LF CR is two line ends (an empty line in between), not one.
        let m = parse("MSH|^~\\&|A\n\rPID|1");
        assert_eq!(m.segment_count(), 2);
    }

    #[test]
    fn literal_backslash_r() {
        let m = parse(
            "MSH|^~\\&|A\\r\r\nOBX|1|TX|||x|\\r\r\nAL1|2||SEIZURES~VOMITING\\r\nNTE|1||a\\E\\r\nNTE|2||\\r",
        );
        assert_eq!(m.msh().field(3).raw(), "A");
        let obx = m.first("OBX").unwrap();
        assert_eq!(obx.field_count(), 6);
        assert!(obx.field(6).is_empty());
        assert_eq!(
            m.first("AL1").unwrap().field(3).repetition(2).raw(),
            "VOMITING"
        );
        // `\E\` then `r`: the backslash closes a sequence, so the text is kept.
        assert_eq!(m.first("NTE").unwrap().field(3).raw(), "a\\E\\r");
        assert_eq!(m.first("NTE").unwrap().field(3).value(), "a\\r");
        assert_eq!(m.segments_named("NTE").nth(1).unwrap().field(3).raw(), "");
        // Other escape character: always stripped.
        let m = parse("MSH|^~*&|A\\r\rPID|x\\r");
        assert_eq!(m.first("PID").unwrap().field(1).raw(), "x");
        // A line made of `\r` alone is empty.
        let m = parse("MSH|^~\\&|A\r\\r\rPID|1");
        assert_eq!(m.segment_count(), 2);
    }

    #[test]
    fn framing() {
        let m = parse("\u{feff}\r\n\x0bMSH|^~\\&|A\rPID|1\r\x1c\r");
        assert_eq!(m.segment_count(), 2);
        assert_eq!(m.first("PID").unwrap().raw(), "PID|1");
        let err = Message::parse(b"\xef\xbb\xbf\r\nPID|1").unwrap_err();
        assert_eq!(
            err,
            ParseError::NotHl7 {
                offset: 5,
                found: "PID|1".into()
            }
        );
        assert!(err.to_string().starts_with("not an HL7 v2 message: "));
        let err = Message::parse(b"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "not an HL7 v2 message: empty input (byte 0)"
        );
        assert!(matches!(
            Message::parse(b"msh|^~\\&"),
            Err(ParseError::NotHl7 { .. })
        ));
    }

    #[test]
    fn msh_fields_use_hl7_numbering() {
        let m = parse("MSH|^~\\\\&|SE050|050|PACS|050|20120912011230||ADT^A01|102|T|2.6");
        assert_eq!(*m.delimiters(), Delimiters::STANDARD);
        let msh = m.msh();
        assert_eq!(msh.field(1).raw(), "|");
        assert_eq!(msh.field(2).raw(), "^~\\\\&");
        assert_eq!(msh.field(2).value(), "^~\\\\&");
        assert_eq!(msh.field(2).component(1).raw(), "^~\\\\&");
        assert_eq!(msh.field(2).repetition_count(), 1);
        assert_eq!(msh.field(3).value(), "SE050");
        assert_eq!(msh.field(9).raw(), "ADT^A01");
        assert_eq!(msh.field_count(), 12);
        assert_eq!(m.message_type().as_deref(), Some("ADT^A01"));
        assert_eq!(m.control_id().as_deref(), Some("102"));
        assert_eq!(m.version().as_deref(), Some("2.6"));
        assert_eq!(m.get("MSH-1").as_deref(), Some("|"));
        assert_eq!(m.get("MSH-2").as_deref(), Some("^~\\\\&"));
        assert_eq!(msh.field(0).raw(), "MSH");
    }

    #[test]
    fn sparse_access_is_empty_not_error() {
        let m = parse("MSH|^~\\&|A\rPID");
        let pid = m.first("PID").unwrap();
        assert_eq!(pid.field_count(), 0);
        assert!(pid.field(1).is_empty());
        assert!(pid.field(1).component(3).subcomponent(2).is_empty());
        assert_eq!(pid.field(1).repetition_count(), 0);
        assert_eq!(pid.field(1).repetition(0).raw(), "");
        assert_eq!(pid.field(1).component(0).raw(), "");
        assert_eq!(m.get("PID-1"), None);
        assert_eq!(m.get("ZZZ-1"), None);
        assert_eq!(m.get("not a path"), None);
        assert_eq!(m.get("5"), None); // no segment name
        assert_eq!(m.msh().field(40).raw(), "");
    }

    #[test]
    fn charsets() {
        // Latin-1 declared: é as 0xE9.
        let m =
            Message::parse(b"MSH|^~\\&||||||||||||||||8859/1\rPID|1||||RENAUD^Ren\xe9e").unwrap();
        assert_eq!(m.charset(), Charset::Latin1);
        assert_eq!(m.get("PID-5.2").as_deref(), Some("Renée"));
        // Latin-1 declared and windows-1252-only byte: C1 control, not a curly quote.
        let m = Message::parse(b"MSH|^~\\&||||||||||||||||ISO IR100\rNTE|1||l\x92eau").unwrap();
        assert_eq!(m.get("NTE-3").as_deref(), Some("l\u{92}eau"));
        // Latin-9.
        let m = Message::parse(b"MSH|^~\\&||||||||||||||||8859/15\rNTE|1||5\xa4").unwrap();
        assert_eq!(m.get("NTE-3").as_deref(), Some("5€"));
        // ASCII with a stray high byte: Latin-1, no error.
        let m = Message::parse(b"MSH|^~\\&||||||||||||||||ASCII\rNTE|1||\xe9").unwrap();
        assert_eq!(
            (m.charset(), m.get("NTE-3").as_deref()),
            (Charset::Ascii, Some("é"))
        );
        // UTF-8 declared and valid; repetitions and components of MSH-18 ignored.
        let m =
            Message::parse("MSH|^~\\&||||||||||||||||UNICODE UTF-8~8859/1|FR\rNTE|1||é".as_bytes())
                .unwrap();
        assert_eq!(
            (m.charset(), m.get("NTE-3").as_deref()),
            (Charset::Utf8, Some("é"))
        );
        // UTF-8 declared, invalid: error with offset and line.
        let err =
            Message::parse(b"MSH|^~\\&||||||||||||||||UTF-8\r\nNTE|1||\xe9t\xe9").unwrap_err();
        assert_eq!(
            err,
            ParseError::InvalidUtf8 {
                offset: 38,
                line: 2
            }
        );
        assert!(err.to_string().contains("byte 38 (line 2)"), "{err}");
        // Empty MSH-18: UTF-8 when valid, Latin-1 otherwise.
        let m = parse("MSH|^~\\&|A\rNTE|1||é");
        assert_eq!(
            (m.charset(), m.get("NTE-3").as_deref()),
            (Charset::Utf8, Some("é"))
        );
        let m = Message::parse(b"MSH|^~\\&|A\rNTE|1||\xe9").unwrap();
        assert_eq!(
            (m.charset(), m.get("NTE-3").as_deref()),
            (Charset::Latin1, Some("é"))
        );
        // Unknown label.
        let err = Message::parse(b"MSH|^~\\&||||||||||||||||ISO IR87\rNTE|1").unwrap_err();
        assert_eq!(
            err,
            ParseError::UnsupportedCharset {
                label: "ISO IR87".into(),
                forced: false
            }
        );
        // Forced charset wins over MSH-18; forced unknown label is an error.
        let raw = b"MSH|^~\\&||||||||||||||||UTF-8\rNTE|1||\xe9";
        let m = Message::parse_with_charset(raw, Some("ISO-8859-1")).unwrap();
        assert_eq!(m.get("NTE-3").as_deref(), Some("é"));
        let err = Message::parse_with_charset(raw, Some("EBCDIC")).unwrap_err();
        assert!(matches!(
            err,
            ParseError::UnsupportedCharset { forced: true, .. }
        ));
        let err = Message::parse_with_charset(b"MSH|^~\\&|A\r\xe9", Some("UTF-8")).unwrap_err();
        assert_eq!(
            err,
            ParseError::InvalidUtf8 {
                offset: 11,
                line: 2
            }
        );
    }

    #[test]
    fn segment_errors() {
        let err = Message::parse(b"MSH|^~\\&|A\rPID|1\r// comment\r").unwrap_err();
        assert_eq!(err.line(), Some(3));
        assert!(matches!(err, ParseError::InvalidSegment { segment: 2, .. }));
        assert!(err.to_string().contains("line 3"), "{err}");
        let err = Message::parse(b"MSH|^~\\&|A\nPIDX|1").unwrap_err();
        assert!(
            err.to_string().contains("followed by the field separator"),
            "{err}"
        );
        let err = Message::parse(b"MSH|^~\\&|A\npid|1").unwrap_err();
        assert!(matches!(err, ParseError::InvalidSegment { line: 2, .. }));
        let err = Message::parse(b"MSH|^~\\&|A\nPI").unwrap_err();
        assert!(matches!(err, ParseError::InvalidSegment { line: 2, .. }));
        let err = Message::parse(b"MSH|^~\\&|A\nPID|1\nMSH|^~\\&|B").unwrap_err();
        assert_eq!(
            err,
            ParseError::UnexpectedMsh {
                line: 3,
                segment: 2
            }
        );
        let err = Message::parse(b"MSH|^^\\&|A").unwrap_err();
        assert!(matches!(err, ParseError::InvalidDelimiters { .. }));
        assert!(err.to_string().contains("used twice"), "{err}");
        // Blank lines (spaces) are ignored.
        assert_eq!(parse("MSH|^~\\&|A\r   \rPID|1").segment_count(), 2);
    }

    #[test]
    fn occurrences_and_locations() {
        let m = parse("MSH|^~\\&|A\rOBR|1\rOBX|1\rOBX|2\rOBR|2\rOBX|1\r");
        let obx: Vec<_> = m
            .segments_named("OBX")
            .map(|s| (s.index(), s.occurrence()))
            .collect();
        assert_eq!(obx, [(2, 1), (3, 2), (5, 3)]);
        let third = m.segments_named("OBX").nth(2).unwrap();
        assert_eq!(third.location(5, 1), "OBX[3]-5.1");
        assert_eq!(m.get("OBX[3]-1").as_deref(), Some("1"));
        assert_eq!(m.get("OBX(2)-1").as_deref(), Some("2"));
        assert_eq!(m.get("OBX[4]-1"), None);
        assert_eq!(m.segment(4).unwrap().occurrence(), 2);
    }

    #[test]
    fn levels_and_escapes() {
        let m = parse("MSH|^~\\&|A\rOBX|1|ST|X||a\\T\\b^c&d~e^f\\S\\g&h\\E\\");
        let f = m.first("OBX").unwrap().field(5);
        assert_eq!(f.value(), "a&b");
        assert_eq!(f.text(), "a&b^c&d~e^f^g&h\\");
        assert_eq!(f.repetition_count(), 2);
        assert_eq!(f.component(2).raw(), "c&d");
        assert_eq!(f.component(2).value(), "c");
        assert_eq!(f.component(2).subcomponent(2).value(), "d");
        let r2 = f.repetition(2);
        assert_eq!(r2.component_count(), 2);
        assert_eq!(r2.component(2).value(), "f^g");
        assert_eq!(r2.component(2).subcomponent(2).value(), "h\\");
        assert_eq!(m.get("OBX-5(2).2.2").as_deref(), Some("h\\"));
        // Borrowed when nothing is escaped.
        assert!(matches!(f.component(2).value(), Cow::Borrowed("c")));
    }

    #[test]
    fn missing_subcomponent_separator() {
        let m = parse("MSH|^~}|A\rPID|1||A&B^C}F}D");
        assert_eq!(m.delimiters().subcomponent, None);
        let f = m.first("PID").unwrap().field(3);
        assert_eq!(f.value(), "A&B");
        assert_eq!(f.component(2).value(), "C|D");
        assert_eq!(f.component(1).subcomponent_count(), 1);
        assert_eq!(f.component(1).subcomponent(2).raw(), "");
    }

    #[test]
    fn count_lines_matches_parser() {
        assert_eq!(count_lines(b"a\rb\nc\r\nd"), 3);
        assert_eq!(count_lines(b"\n\r"), 2);
    }
}
