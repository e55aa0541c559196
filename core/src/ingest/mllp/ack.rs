//! HL7 v2 original-mode acknowledgements (ACK) for MLLP.
//!
//! ```text
//! MSH|^~\&|<MSH-5>|<MSH-6>|<MSH-3>|<MSH-4>|<now>||ACK^<MSH-9.2>^ACK|<new id>|<MSH-11 or P>|<MSH-12 or 2.5>[|||||<MSH-18>]
//! MSA|AA|<MSH-10>
//! MSA|AE|<MSH-10>|<short text>          (rejected by the plugin: stored as failed)
//! ERR||<ERR-2 location>|<ERR-3 code^text^HL70357>|E||||<ERR-8 error text>
//! MSA|AR|<MSH-10 or empty>|<short text> (not HL7 v2 at all: stored as failed)
//! ```
//!
//! - The inbound delimiters are kept (the standard `|^~\&` when unknown), and so is MSH-18;
//!   the ACK is encoded in the inbound character set (MSH-18, else the source's `charset`,
//!   else UTF-8 when the inbound header is valid UTF-8, else Latin-1). Inbound header fields
//!   are echoed raw (still escaped), so they stay valid with the same delimiters.
//! - MSH-7 is the current UTC time, `YYYYMMDDHHMMSS+0000`.
//! - MSH-10 is a new control id: the process start time in ms followed by a counter (unique
//!   across restarts, 20 characters for the first 10 million ACKs of a run).
//! - MSH-12 echoes the inbound MSH-12 whole (e.g. `2.5^FRA^2.11`), `2.5` when empty.
//! - ERR-3 (HL7 table 0357): a plugin's `Malformed` rejection is `102^Data type error` when its
//!   location names a field (`OBX[3]-5`), else `100^Segment sequence error` (a segment or a line
//!   is wrong, not a value); `Unsupported` is `200^Unsupported message type`; anything else (trap,
//!   invalid output, internal adapter error, host error) is `207^Application internal error`;
//!   a payload that is not HL7 v2 (AR) is `100^Segment sequence error` (MSH expected first).
//! - ERR-2 (ERL) is built from the location when it is a path: `OBX[3]-5` → `OBX^3^5`,
//!   `PID-3(2).4` → `PID^1^3^2^4`, a bare segment name → `PID`; otherwise empty (the location is
//!   still in the ERR-8 text).
//! - ERR-8 is the error text, cut to 250 characters and escaped with the HL7 escape rules
//!   (separators replaced by spaces when the message has no escape character).

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use passerelle_plugin_sdk::hl7::charset::Charset;
use passerelle_plugin_sdk::hl7::{Delimiters, Message, ParseError, Path, escape};

use crate::plugin::{PluginError, Rejection};

/// Longest ERR-8 text (characters, before escaping): the TX length of ERR-8 in v2.5.
const MAX_ERROR_TEXT: usize = 250;
/// How far into a non-HL7 payload to look for an `MSH` header (for the AR's MSA-2).
const SNIFF_WINDOW: usize = 1024;

/// What the ACK needs from the inbound MSH segment. Fields are raw (escaped with `delims`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundHeader {
    pub delims: Delimiters,
    /// The character set to encode the ACK in.
    pub charset: Charset,
    pub sending_application: String,
    pub sending_facility: String,
    pub receiving_application: String,
    pub receiving_facility: String,
    /// MSH-9.2.
    pub trigger_event: String,
    /// MSH-10.
    pub control_id: String,
    /// MSH-11.
    pub processing_id: String,
    /// MSH-12.
    pub version: String,
    /// MSH-18.
    pub charset_label: String,
}

/// What the listener makes of a payload before handing it to the pipeline.
#[derive(Debug)]
pub enum Sniffed {
    /// Starts (after an optional BOM and blank lines) with `MSH` and a field separator.
    Hl7(InboundHeader),
    /// Anything else. `header` is an `MSH` found further on, if any (for MSA-2).
    NotHl7 {
        header: Option<InboundHeader>,
        reason: String,
    },
}

/// Decides whether `payload` is an HL7 v2 message and reads its MSH for the ACK.
/// `default_charset` is the source's configured charset (used when MSH-18 is empty).
pub fn sniff(payload: &[u8], default_charset: Option<&str>) -> Sniffed {
    let body = payload.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(payload);
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let body = &body[start..];
    if starts_with_msh(body) {
        return Sniffed::Hl7(read_header(body, default_charset));
    }
    let reason = if body.is_empty() {
        "not an HL7 v2 message: the payload is empty".to_string()
    } else if body.starts_with(b"MSH") {
        "not an HL7 v2 message: MSH is not followed by a field separator".to_string()
    } else {
        "not an HL7 v2 message: it does not start with an MSH segment".to_string()
    };
    let window = &body[..body.len().min(SNIFF_WINDOW)];
    let header = (1..window.len().saturating_sub(3))
        .find(|&i| starts_with_msh(&window[i..]))
        .map(|i| read_header(&body[i..], default_charset));
    Sniffed::NotHl7 { header, reason }
}

fn starts_with_msh(bytes: &[u8]) -> bool {
    bytes.starts_with(b"MSH")
        && bytes
            .get(3)
            .is_some_and(|&b| b.is_ascii_graphic() && !b.is_ascii_alphanumeric())
}

/// Reads the header of `bytes`, which starts with `MSH` and a field separator. Never fails:
/// what cannot be read is left empty.
fn read_header(bytes: &[u8], default_charset: Option<&str>) -> InboundHeader {
    let line_end = bytes
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(bytes.len());
    let line = &bytes[..line_end];
    let auto = || {
        if std::str::from_utf8(line).is_ok() {
            Charset::Utf8
        } else {
            Charset::Latin1
        }
    };
    let (msg, charset) = match Message::parse(line) {
        Ok(msg) if msg.msh().field(18).is_empty() => {
            match default_charset
                .and_then(|label| Message::parse_with_charset(line, Some(label)).ok())
            {
                Some(forced) => (forced, None),
                None => (msg, None),
            }
        }
        Ok(msg) => (msg, None),
        // MSH-18 names a charset we cannot read, or lies: read the header as Latin-1 (its
        // fields are ASCII in practice) and answer in UTF-8 or Latin-1.
        Err(ParseError::UnsupportedCharset { .. } | ParseError::InvalidUtf8 { .. }) => {
            match Message::parse_with_charset(line, Some("8859/1")) {
                Ok(msg) => (msg, Some(auto())),
                Err(_) => return fallback_header(line, auto()),
            }
        }
        Err(_) => return fallback_header(line, auto()),
    };
    header_of(&msg, charset.unwrap_or_else(|| msg.charset()))
}

fn header_of(msg: &Message, charset: Charset) -> InboundHeader {
    let msh = msg.msh();
    let raw = |n: usize| msh.field(n).raw().to_string();
    let charset_label = raw(18);
    InboundHeader {
        delims: *msg.delimiters(),
        charset,
        sending_application: raw(3),
        sending_facility: raw(4),
        receiving_application: raw(5),
        receiving_facility: raw(6),
        trigger_event: msh.field(9).component(2).raw().to_string(),
        control_id: raw(10),
        processing_id: raw(11),
        version: raw(12),
        charset_label,
    }
}

/// The header of an MSH whose MSH-2 is unusable: split on MSH-1, standard delimiters otherwise.
fn fallback_header(line: &[u8], charset: Charset) -> InboundHeader {
    let text = passerelle_plugin_sdk::hl7::charset::decode(line, Charset::Latin1);
    let sep = text[3..].chars().next().unwrap_or('|');
    let mut delims = Delimiters::STANDARD;
    if !delims.is_separator(sep) && delims.escape != Some(sep) {
        delims.field = sep;
    }
    // fields[0] = "MSH", fields[1] = MSH-2, fields[k] = MSH-(k+1).
    let fields: Vec<&str> = text.split(sep).collect();
    let f = |n: usize| {
        let v = fields.get(n - 1).copied().unwrap_or("");
        // Keep only what is safe with the delimiters used for the ACK.
        v.chars().filter(|&c| c != delims.field).collect::<String>()
    };
    let trigger = f(9)
        .split(delims.component)
        .nth(1)
        .unwrap_or("")
        .to_string();
    InboundHeader {
        delims,
        charset,
        sending_application: f(3),
        sending_facility: f(4),
        receiving_application: f(5),
        receiving_facility: f(6),
        trigger_event: trigger,
        control_id: f(10),
        processing_id: f(11),
        version: f(12),
        charset_label: f(18),
    }
}

/// The acknowledgement code (MSA-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// Application accept: stored and adapted.
    Aa,
    /// Application error: stored, but the plugin rejected it.
    Ae,
    /// Application reject: not an HL7 v2 message (stored as failed).
    Ar,
}

impl AckCode {
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::Aa => "AA",
            AckCode::Ae => "AE",
            AckCode::Ar => "AR",
        }
    }
}

/// An ERR segment, before encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrInfo {
    /// ERR-2 as a location path (`OBX[3]-5`); converted to ERL when it is one.
    pub location: Option<String>,
    /// ERR-3.1 and ERR-3.2 (HL7 table 0357).
    pub code: (&'static str, &'static str),
    /// MSA-3: a short summary.
    pub summary: &'static str,
    /// ERR-8: the full error text (unescaped).
    pub text: String,
}

pub const SEGMENT_SEQUENCE_ERROR: (&str, &str) = ("100", "Segment sequence error");
pub const DATA_TYPE_ERROR: (&str, &str) = ("102", "Data type error");
pub const UNSUPPORTED_MESSAGE_TYPE: (&str, &str) = ("200", "Unsupported message type");
pub const APPLICATION_INTERNAL_ERROR: (&str, &str) = ("207", "Application internal error");

impl ErrInfo {
    /// The ERR of a message the plugin (or the host around it) refused.
    pub fn for_plugin_error(error: &PluginError) -> ErrInfo {
        let text = error.to_string();
        match error {
            PluginError::Rejected {
                rejection: Rejection::Malformed { location, .. },
                ..
            } => {
                let names_field = Path::parse(location).is_ok_and(|p| p.segment().is_some());
                ErrInfo {
                    location: Some(location.clone()),
                    code: if names_field {
                        DATA_TYPE_ERROR
                    } else {
                        SEGMENT_SEQUENCE_ERROR
                    },
                    summary: "Message malformed",
                    text,
                }
            }
            PluginError::Rejected {
                rejection: Rejection::Unsupported(_),
                ..
            } => ErrInfo {
                location: None,
                code: UNSUPPORTED_MESSAGE_TYPE,
                summary: "Message type not supported",
                text,
            },
            _ => ErrInfo {
                location: None,
                code: APPLICATION_INTERNAL_ERROR,
                summary: "Application error",
                text,
            },
        }
    }

    /// The ERR of a payload that is not an HL7 v2 message.
    pub fn not_hl7(reason: &str) -> ErrInfo {
        ErrInfo {
            location: None,
            code: SEGMENT_SEQUENCE_ERROR,
            summary: "Not an HL7 v2 message",
            text: reason.to_string(),
        }
    }
}

/// ERR-2 (ERL: segment ^ sequence ^ field ^ repetition ^ component ^ subcomponent) from a
/// location like `OBX[3]-5`; empty when the location is not a path.
pub fn erl(location: &str, delims: &Delimiters) -> String {
    let location = location.trim();
    let c = delims.component;
    if location.len() == 3
        && location.as_bytes()[0].is_ascii_uppercase()
        && location
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return location.to_string();
    }
    let Ok(path) = Path::parse(location) else {
        return String::new();
    };
    let Some(segment) = path.segment() else {
        return String::new();
    };
    let mut out = format!("{segment}{c}{}{c}{}", path.occurrence(), path.field());
    if let Some(component) = path.component() {
        out.push_str(&format!("{c}{}{c}{component}", path.repetition()));
        if let Some(sub) = path.subcomponent() {
            out.push_str(&format!("{c}{sub}"));
        }
    } else if path.repetition() > 1 {
        out.push_str(&format!("{c}{}", path.repetition()));
    }
    out
}

/// Escapes free text for a field of the ACK.
fn escape_text(text: &str, delims: &Delimiters) -> String {
    let cut: Cow<'_, str> = if text.chars().count() > MAX_ERROR_TEXT {
        Cow::Owned(
            text.chars()
                .take(MAX_ERROR_TEXT - 1)
                .chain(std::iter::once('…'))
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    };
    if delims.escape.is_some() {
        escape::escape(&cut, delims).into_owned()
    } else {
        cut.chars()
            .map(|ch| {
                if delims.is_separator(ch) || ch == '\r' || ch == '\n' {
                    ' '
                } else {
                    ch
                }
            })
            .collect()
    }
}

/// Appends a new ACK control id (MSH-10), unique within the process and across restarts: the
/// process start time in ms, then a counter of 7 digits or more.
fn push_control_id(out: &mut String) {
    static START_MS: LazyLock<String> = LazyLock::new(|| {
        let ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        itoa::Buffer::new().format(ms).to_owned()
    });
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    out.push_str(&START_MS);
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    for _ in digits.len()..7 {
        out.push('0');
    }
    out.push_str(digits);
}

/// Appends now in UTC as an HL7 DTM with offset: `YYYYMMDDHHMMSS+0000`. The digits are made
/// once per second per thread: an ACK is sent for every message.
fn push_hl7_now(out: &mut String) {
    thread_local! {
        static LAST: Cell<(u64, [u8; 14])> = const { Cell::new((u64::MAX, [b'0'; 14])) };
    }
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let digits = LAST.with(|last| {
        let (at, digits) = last.get();
        if at == secs {
            return digits;
        }
        let digits = hl7_digits(secs);
        last.set((secs, digits));
        digits
    });
    // The digits are ASCII by construction.
    out.push_str(std::str::from_utf8(&digits).unwrap_or("00000000000000"));
    out.push_str("+0000");
}

/// `YYYYMMDDHHMMSS` of a Unix time, in UTC.
fn hl7_digits(secs: u64) -> [u8; 14] {
    let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    let rfc = humantime::format_rfc3339_seconds(at).to_string();
    let mut digits = [b'0'; 14];
    for (slot, b) in digits
        .iter_mut()
        .zip(rfc.bytes().filter(u8::is_ascii_digit))
    {
        *slot = b;
    }
    digits
}

/// Builds the ACK message (without MLLP framing), encoded in the inbound character set.
/// `header` is `None` when the inbound message has no readable MSH.
pub fn build_ack(header: Option<&InboundHeader>, code: AckCode, err: Option<&ErrInfo>) -> Vec<u8> {
    let mut now = String::with_capacity(19);
    push_hl7_now(&mut now);
    let mut control_id = String::with_capacity(24);
    push_control_id(&mut control_id);
    let text = ack_text(header, code, err, &control_id, &now);
    encode(text, header.map_or(Charset::Utf8, |h| h.charset))
}

/// The header of an ACK to a payload without a readable MSH.
static NO_HEADER: InboundHeader = InboundHeader {
    delims: Delimiters::STANDARD,
    charset: Charset::Utf8,
    sending_application: String::new(),
    sending_facility: String::new(),
    receiving_application: String::new(),
    receiving_facility: String::new(),
    trigger_event: String::new(),
    control_id: String::new(),
    processing_id: String::new(),
    version: String::new(),
    charset_label: String::new(),
};

fn ack_text(
    header: Option<&InboundHeader>,
    code: AckCode,
    err: Option<&ErrInfo>,
    control_id: &str,
    now: &str,
) -> String {
    let h = header.unwrap_or(&NO_HEADER);
    let d = &h.delims;
    let f = d.field;
    let c = d.component;
    fn or<'a>(v: &'a str, default: &'static str) -> &'a str {
        if v.is_empty() { default } else { v }
    }
    let mut out = String::with_capacity(160);
    // MSH: sender and receiver swapped, a new control id, the inbound MSH-11, -12 and -18.
    out.push_str("MSH");
    out.push(f);
    out.push_str(&d.encoding_characters());
    for v in [
        h.receiving_application.as_str(),
        &h.receiving_facility,
        &h.sending_application,
        &h.sending_facility,
        now,
        "",
    ] {
        out.push(f);
        out.push_str(v);
    }
    out.push(f);
    out.push_str("ACK");
    out.push(c);
    out.push_str(&h.trigger_event);
    out.push(c);
    out.push_str("ACK");
    for v in [control_id, or(&h.processing_id, "P"), or(&h.version, "2.5")] {
        out.push(f);
        out.push_str(v);
    }
    if !h.charset_label.is_empty() {
        // MSH-13 to MSH-17 empty.
        for _ in 0..6 {
            out.push(f);
        }
        out.push_str(&h.charset_label);
    }
    out.push('\r');
    out.push_str("MSA");
    out.push(f);
    out.push_str(code.as_str());
    out.push(f);
    out.push_str(&h.control_id);
    if let Some(e) = err {
        out.push(f);
        out.push_str(&escape_text(e.summary, d));
        out.push('\r');
        let location = e.location.as_deref().map(|l| erl(l, d)).unwrap_or_default();
        out.push_str(&format!(
            "ERR{f}{f}{location}{f}{}{c}{}{c}HL70357{f}E{f}{f}{f}{f}{}",
            e.code.0,
            e.code.1,
            escape_text(&e.text, d)
        ));
    }
    out.push('\r');
    out
}

/// Encodes the ACK text; characters the charset lacks become `?`.
fn encode(text: String, charset: Charset) -> Vec<u8> {
    match charset {
        Charset::Utf8 => text.into_bytes(),
        Charset::Ascii => text
            .chars()
            .map(|ch| if ch.is_ascii() { ch as u8 } else { b'?' })
            .collect(),
        Charset::Latin1 => text
            .chars()
            .map(|ch| u8::try_from(u32::from(ch)).unwrap_or(b'?'))
            .collect(),
        Charset::Latin9 => text
            .chars()
            .map(|ch| match ch {
                '€' => 0xA4,
                'Š' => 0xA6,
                'š' => 0xA8,
                'Ž' => 0xB4,
                'ž' => 0xB8,
                'Œ' => 0xBC,
                'œ' => 0xBD,
                'Ÿ' => 0xBE,
                '\u{A4}' | '\u{A6}' | '\u{A8}' | '\u{B4}' | '\u{B8}' | '\u{BC}' | '\u{BD}'
                | '\u{BE}' => b'?',
                _ => u8::try_from(u32::from(ch)).unwrap_or(b'?'),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::TrapCause;

    const ORU: &[u8] = b"MSH|^~\\&|LAB|CHU^1.2.3^ISO|DPI|HOSP|20240131123000||ORU^R01^ORU_R01|MSG001|P|2.5^FRA^2.11\rPID|1\r";

    fn header(bytes: &[u8]) -> InboundHeader {
        match sniff(bytes, None) {
            Sniffed::Hl7(h) => h,
            other => panic!("not HL7: {other:?}"),
        }
    }

    #[test]
    fn aa_swaps_sender_and_receiver() {
        let h = header(ORU);
        let ack = ack_text(Some(&h), AckCode::Aa, None, "ID1", "20260101120000+0000");
        assert_eq!(
            ack,
            "MSH|^~\\&|DPI|HOSP|LAB|CHU^1.2.3^ISO|20260101120000+0000||ACK^R01^ACK|ID1|P|2.5^FRA^2.11\rMSA|AA|MSG001\r"
        );
        let msg = Message::parse(ack.as_bytes()).unwrap();
        assert_eq!(msg.get("MSA-2").as_deref(), Some("MSG001"));
        assert_eq!(msg.message_type().as_deref(), Some("ACK^R01"));
    }

    #[test]
    fn ae_names_the_location_and_escapes_the_text() {
        let h = header(ORU);
        let error = PluginError::Rejected {
            plugin: "lab".into(),
            rejection: Rejection::Malformed {
                location: "OBX[3]-5".into(),
                reason: "not a number: 1|2^3".into(),
            },
        };
        let err = ErrInfo::for_plugin_error(&error);
        let ack = ack_text(
            Some(&h),
            AckCode::Ae,
            Some(&err),
            "ID2",
            "20260101120000+0000",
        );
        let lines: Vec<&str> = ack.split('\r').collect();
        assert_eq!(lines[1], "MSA|AE|MSG001|Message malformed");
        assert_eq!(
            lines[2],
            "ERR||OBX^3^5|102^Data type error^HL70357|E||||plugin lab rejected the message: malformed input at OBX[3]-5: not a number: 1\\F\\2\\S\\3"
        );
        let msg = Message::parse(ack.as_bytes()).unwrap();
        let err_seg = msg.first("ERR").unwrap();
        assert_eq!(err_seg.field(8).value(), error.to_string());
        assert_eq!(err_seg.value(3, 1), "102");
    }

    #[test]
    fn error_codes() {
        let malformed_line = PluginError::Rejected {
            plugin: "p".into(),
            rejection: Rejection::Malformed {
                location: "line 1".into(),
                reason: "x".into(),
            },
        };
        let e = ErrInfo::for_plugin_error(&malformed_line);
        assert_eq!(
            (e.code, erl("line 1", &Delimiters::STANDARD)),
            (SEGMENT_SEQUENCE_ERROR, String::new())
        );
        let unsupported = PluginError::Rejected {
            plugin: "p".into(),
            rejection: Rejection::Unsupported("ADT".into()),
        };
        assert_eq!(
            ErrInfo::for_plugin_error(&unsupported).code,
            UNSUPPORTED_MESSAGE_TYPE
        );
        let trap = PluginError::Trap {
            plugin: "p".into(),
            cause: TrapCause::Timeout,
        };
        assert_eq!(
            ErrInfo::for_plugin_error(&trap).code,
            APPLICATION_INTERNAL_ERROR
        );
        let d = Delimiters::STANDARD;
        assert_eq!(erl("PID-3(2).4", &d), "PID^1^3^2^4");
        assert_eq!(erl("OBX[2]-5.1.2", &d), "OBX^2^5^1^1^2");
        assert_eq!(erl("PID", &d), "PID");
    }

    #[test]
    fn ar_without_header_uses_standard_delimiters() {
        let Sniffed::NotHl7 { header, reason } = sniff(b"hello world", None) else {
            panic!()
        };
        assert!(header.is_none());
        let ack = ack_text(
            header.as_ref(),
            AckCode::Ar,
            Some(&ErrInfo::not_hl7(&reason)),
            "ID3",
            "20260101120000+0000",
        );
        assert!(ack.starts_with("MSH|^~\\&|||||20260101120000+0000||ACK^^ACK|ID3|P|2.5\rMSA|AR||Not an HL7 v2 message\rERR|||100^"), "{ack}");
        // An MSH further on still gives MSA-2.
        let Sniffed::NotHl7 { header, .. } =
            sniff(b"junk\rMSH|^~\\&|A||||||ORU^R01|X9|P|2.5", None)
        else {
            panic!()
        };
        assert_eq!(header.unwrap().control_id, "X9");
    }

    #[test]
    fn delimiters_and_charset_are_kept() {
        let raw =
            b"\xEF\xBB\xBFMSH#$%*@#LAB#H\xe9pital#DPI##20240101##ORU$R01#M1#P#2.4######8859/1\r";
        let h = header(raw);
        assert_eq!(h.delims.field, '#');
        assert_eq!(h.charset, Charset::Latin1);
        let ack = build_ack(Some(&h), AckCode::Aa, None);
        assert!(
            ack.starts_with(b"MSH#$%*@#DPI##LAB#H\xe9pital#"),
            "{}",
            String::from_utf8_lossy(&ack)
        );
        let msg = Message::parse(&ack).unwrap();
        assert_eq!(msg.get("MSH-6").as_deref(), Some("H\u{e9}pital"));
        assert_eq!(msg.get("MSH-18").as_deref(), Some("8859/1"));
        assert_eq!(msg.get("MSA-2").as_deref(), Some("M1"));
        assert_eq!(msg.version().as_deref(), Some("2.4"));
    }

    #[test]
    fn control_ids_are_unique() {
        let next = || {
            let mut id = String::new();
            push_control_id(&mut id);
            id
        };
        let (a, b) = (next(), next());
        assert_ne!(a, b);
        assert!(a.len() <= 20, "{a}");
        // The start time in ms (13 digits until 2286), then the counter on 7 digits.
        assert!(a.bytes().all(|b| b.is_ascii_digit()), "{a}");
        assert_eq!(a[..13], b[..13]);
        let (n, m): (u64, u64) = (a[13..].parse().unwrap(), b[13..].parse().unwrap());
        assert!(m > n, "{a} {b}");
        assert_eq!(a.len(), 20, "{a}");
    }

    #[test]
    fn msh_7_is_utc_to_the_second() {
        assert_eq!(&hl7_digits(0), b"19700101000000");
        assert_eq!(&hl7_digits(1_709_210_096), b"20240229123456");
        // The same second as humantime's, unless the clock ticked in between: then again.
        let same = (0..3).any(|_| {
            let mut now = String::new();
            push_hl7_now(&mut now);
            let expected = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
            let expected: String = expected.chars().filter(char::is_ascii_digit).collect();
            now == format!("{expected}+0000")
        });
        assert!(same);
    }
}
