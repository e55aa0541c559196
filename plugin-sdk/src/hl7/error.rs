//! Errors of the HL7 v2 parser and of the path accessor.

use std::fmt;

/// Why an HL7 v2 message could not be parsed, and where.
///
/// Every variant carries a location: a byte offset into the input and/or a 1-based line number
/// (CR, LF and CRLF each end one line; the offset counts from the very first input byte, a BOM
/// included). The `Display` text is meant for operators and always says where and why.
///
/// ```
/// use passerelle_plugin_sdk::hl7::{Message, ParseError};
///
/// let err = Message::parse(b"PID|1||123").unwrap_err();
/// assert!(matches!(err, ParseError::NotHl7 { .. }));
/// assert!(err.to_string().starts_with("not an HL7 v2 message: "));
///
/// let err = Message::parse(b"MSH|^~\\&|A\rpid|1\r").unwrap_err();
/// assert_eq!(err.line(), Some(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The input does not start with an `MSH` segment (after an optional UTF-8 BOM, MLLP start
    /// byte and blank lines).
    NotHl7 {
        /// Byte offset where `MSH` was expected.
        offset: usize,
        /// The first few characters found there (lossy, for the message).
        found: String,
    },
    /// MSH-1 (field separator) or MSH-2 (encoding characters) is missing or unusable.
    InvalidDelimiters {
        /// Byte offset of the offending character (or of the end of MSH-2).
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// The character set named in MSH-18 (or forced by the caller) is not supported.
    UnsupportedCharset {
        /// The label as written.
        label: String,
        /// `true` when the label came from the caller (`parse_with_charset`), not MSH-18.
        forced: bool,
    },
    /// The message is declared (or forced) UTF-8 but contains an invalid UTF-8 sequence.
    InvalidUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
        /// 1-based line of that byte.
        line: usize,
    },
    /// A line does not start with a valid segment name followed by the field separator.
    InvalidSegment {
        /// 1-based line number.
        line: usize,
        /// 0-based index the segment would have had in the message.
        segment: usize,
        /// The beginning of the offending line (lossy, for the message).
        found: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A second `MSH` segment: several messages were concatenated (a batch or a file of
    /// messages). Split them before parsing.
    UnexpectedMsh {
        /// 1-based line number of the second `MSH`.
        line: usize,
        /// 0-based index it would have had in the message.
        segment: usize,
    },
    /// The input is larger than 4 GiB, the most the span index can address.
    TooLarge {
        /// The input length in bytes.
        len: usize,
    },
}

impl ParseError {
    /// The 1-based line number of the problem, when it has one.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let err = Message::parse(b"MSH|^~\\&|A\r\rMSH|^~\\&|B").unwrap_err();
    /// assert_eq!(err.line(), Some(3));
    /// ```
    pub fn line(&self) -> Option<usize> {
        match self {
            ParseError::InvalidUtf8 { line, .. }
            | ParseError::InvalidSegment { line, .. }
            | ParseError::UnexpectedMsh { line, .. } => Some(*line),
            ParseError::InvalidDelimiters { .. } => Some(1),
            _ => None,
        }
    }

    /// The byte offset of the problem in the input, when it has one.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// let err = Message::parse(b"MSH|^~\\&||||||||||||||||UTF-8\rPID|\xff").unwrap_err();
    /// assert_eq!(err.offset(), Some(34));
    /// ```
    pub fn offset(&self) -> Option<usize> {
        match self {
            ParseError::NotHl7 { offset, .. }
            | ParseError::InvalidDelimiters { offset, .. }
            | ParseError::InvalidUtf8 { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotHl7 { offset, found } if found.is_empty() => {
                write!(f, "not an HL7 v2 message: empty input (byte {offset})")
            }
            ParseError::NotHl7 { offset, found } => write!(
                f,
                "not an HL7 v2 message: expected `MSH` at byte {offset}, found `{found}`"
            ),
            ParseError::InvalidDelimiters { offset, reason } => write!(
                f,
                "invalid delimiters in MSH-1/MSH-2 (line 1, byte {offset}): {reason}"
            ),
            ParseError::UnsupportedCharset {
                label,
                forced: false,
            } => {
                write!(f, "unsupported character set `{label}` in MSH-18 (line 1)")
            }
            ParseError::UnsupportedCharset {
                label,
                forced: true,
            } => {
                write!(
                    f,
                    "unsupported character set `{label}` forced by configuration"
                )
            }
            ParseError::InvalidUtf8 { offset, line } => write!(
                f,
                "invalid UTF-8 at byte {offset} (line {line}) in a message declared UTF-8"
            ),
            ParseError::InvalidSegment {
                line,
                segment,
                found,
                reason,
            } => write!(
                f,
                "invalid segment at line {line} (segment #{segment}) `{found}`: {reason}"
            ),
            ParseError::UnexpectedMsh { line, segment } => write!(
                f,
                "second MSH segment at line {line} (segment #{segment}): one message expected, \
                 split batches before parsing"
            ),
            ParseError::TooLarge { len } => {
                write!(f, "message too large: {len} bytes (at most 4 GiB)")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// A message that does not parse is malformed input: located at `MSH` (no MSH, bad
/// delimiters), `MSH-18` (unsupported character set) or the line the parser stopped at.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
/// use passerelle_plugin_sdk::types::AdaptError;
///
/// let err: AdaptError = Message::parse(b"MSH|^~\\&|A\rpid|1\r").unwrap_err().into();
/// assert!(matches!(err, AdaptError::Malformed(m) if m.location == "line 2"));
/// ```
impl From<ParseError> for crate::types::AdaptError {
    fn from(e: ParseError) -> Self {
        let location = match &e {
            ParseError::NotHl7 { .. } | ParseError::InvalidDelimiters { .. } => "MSH".to_string(),
            ParseError::UnsupportedCharset { .. } => "MSH-18".to_string(),
            other => match other.line() {
                Some(line) => format!("line {line}"),
                None => "MSH".to_string(),
            },
        };
        crate::malformed(location, e.to_string())
    }
}

/// A malformed path given to [`Message::get`](super::Message::get) or [`Path::parse`](super::Path::parse).
///
/// ```
/// use passerelle_plugin_sdk::hl7::Path;
/// let err = Path::parse("PID-x").unwrap_err();
/// assert_eq!(err.to_string(), "invalid HL7 path `PID-x`: expected a field number");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    /// The path as given.
    pub path: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid HL7 path `{}`: {}", self.path, self.reason)
    }
}

impl std::error::Error for PathError {}

/// Lossy, printable preview of the start of some bytes, for error messages.
pub(crate) fn preview(bytes: &[u8], max_chars: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max_chars * 4)]);
    text.chars()
        .take(max_chars)
        .flat_map(char::escape_debug)
        .collect()
}
