//! The delimiter characters of a message (MSH-1 and MSH-2).

use std::fmt;

/// The delimiters of a message, read from MSH-1 (field separator) and MSH-2 (encoding
/// characters: component, repetition, escape, subcomponent and, from v2.7, truncation).
///
/// The escape, subcomponent and truncation characters are optional because old messages omit
/// them (`MSH|^~}|` has no subcomponent separator, `MSH|^~|` no escape character). A parsed
/// message always has distinct ASCII delimiters that are neither letters, digits, spaces nor
/// line breaks.
///
/// ```
/// use passerelle_plugin_sdk::hl7::{Delimiters, Message};
///
/// let msg = Message::parse(b"MSH|^~\\&|LAB\r").unwrap();
/// assert_eq!(*msg.delimiters(), Delimiters::default());
/// assert_eq!(msg.delimiters().encoding_characters(), "^~\\&");
///
/// let msg = Message::parse(b"MSH|^~\\&#|LAB\r").unwrap();
/// assert_eq!(msg.delimiters().truncation, Some('#'));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delimiters {
    /// Field separator (MSH-1), normally `|`.
    pub field: char,
    /// Component separator, normally `^`.
    pub component: char,
    /// Repetition separator, normally `~`.
    pub repetition: char,
    /// Escape character, normally `\`.
    pub escape: Option<char>,
    /// Subcomponent separator, normally `&`.
    pub subcomponent: Option<char>,
    /// Truncation character (v2.7+), normally `#` when present.
    pub truncation: Option<char>,
}

impl Delimiters {
    /// The standard delimiters `|^~\&` (without a truncation character).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Delimiters;
    /// assert_eq!(Delimiters::STANDARD.field, '|');
    /// assert_eq!(Delimiters::STANDARD.escape, Some('\\'));
    /// ```
    pub const STANDARD: Delimiters = Delimiters {
        field: '|',
        component: '^',
        repetition: '~',
        escape: Some('\\'),
        subcomponent: Some('&'),
        truncation: None,
    };

    /// The MSH-2 text for these delimiters (e.g. `^~\&`).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Delimiters;
    /// assert_eq!(Delimiters::STANDARD.encoding_characters(), "^~\\&");
    /// ```
    pub fn encoding_characters(&self) -> String {
        let mut s = String::with_capacity(5);
        s.push(self.component);
        s.push(self.repetition);
        let optional = [self.escape, self.subcomponent, self.truncation];
        for c in optional.into_iter().map_while(|c| c) {
            s.push(c);
        }
        s
    }

    /// Whether `c` is one of the structural separators (field, component, repetition,
    /// subcomponent); the escape and truncation characters are not separators.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Delimiters;
    /// assert!(Delimiters::STANDARD.is_separator('&'));
    /// assert!(!Delimiters::STANDARD.is_separator('\\'));
    /// ```
    pub fn is_separator(&self, c: char) -> bool {
        c == self.field
            || c == self.component
            || c == self.repetition
            || Some(c) == self.subcomponent
    }

    /// Reads the delimiters from the raw start of an `MSH` segment (`bytes` starts with `MSH`).
    /// `base` is the offset of `bytes` in the caller's input, for error locations.
    pub(crate) fn from_msh(bytes: &[u8], base: usize) -> Result<Delimiters, (usize, String)> {
        let Some(&field) = bytes.get(3) else {
            return Err((base + 3, "MSH-1 (field separator) is missing".into()));
        };
        check_delimiter(field, "MSH-1 (field separator)").map_err(|e| (base + 3, e))?;
        let mut enc = [0u8; 6];
        let mut len = 0;
        let mut i = 4;
        while let Some(&b) = bytes.get(i) {
            if b == field || b == b'\r' || b == b'\n' {
                break;
            }
            // A doubled escape character (`^~\\&`, written by some systems) counts once.
            if !(len == 3 && b == enc[2]) {
                if len == enc.len() {
                    return Err((base + i, "MSH-2 has more than 5 encoding characters".into()));
                }
                enc[len] = b;
                len += 1;
            }
            i += 1;
        }
        if len < 2 {
            return Err((
                base + i,
                "MSH-2 (encoding characters) needs at least the component and repetition \
                 separators"
                    .into(),
            ));
        }
        if len > 5 {
            return Err((base + i, "MSH-2 has more than 5 encoding characters".into()));
        }
        let names = [
            "component separator",
            "repetition separator",
            "escape character",
            "subcomponent separator",
            "truncation character",
        ];
        for (k, &b) in enc[..len].iter().enumerate() {
            check_delimiter(b, names[k]).map_err(|e| (base + 4 + k, format!("MSH-2 {e}")))?;
        }
        let all = [field, enc[0], enc[1], enc[2], enc[3], enc[4]];
        for a in 0..=len {
            for b in a + 1..=len {
                if all[a] == all[b] {
                    return Err((
                        base + 3,
                        format!(
                            "delimiter `{}` is used twice",
                            char::from(all[a]).escape_debug()
                        ),
                    ));
                }
            }
        }
        let opt = |k: usize| (k < len).then(|| char::from(enc[k]));
        Ok(Delimiters {
            field: char::from(field),
            component: char::from(enc[0]),
            repetition: char::from(enc[1]),
            escape: opt(2),
            subcomponent: opt(3),
            truncation: opt(4),
        })
    }
}

fn check_delimiter(b: u8, what: &str) -> Result<(), String> {
    if !b.is_ascii() || b.is_ascii_alphanumeric() || b.is_ascii_whitespace() || b == 0x0B {
        let shown: String = String::from_utf8_lossy(&[b]).escape_debug().collect();
        return Err(format!(
            "{what} `{shown}` (byte 0x{b:02X}) must be an ASCII symbol, not a letter, digit or space"
        ));
    }
    Ok(())
}

impl Default for Delimiters {
    /// [`Delimiters::STANDARD`].
    fn default() -> Self {
        Delimiters::STANDARD
    }
}

impl fmt::Display for Delimiters {
    /// MSH-1 followed by MSH-2, e.g. `|^~\&`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.field, self.encoding_characters())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Delimiters, (usize, String)> {
        Delimiters::from_msh(s.as_bytes(), 0)
    }

    #[test]
    fn standard_and_variants() {
        assert_eq!(parse("MSH|^~\\&|X").unwrap(), Delimiters::STANDARD);
        assert_eq!(parse("MSH|^~\\\\&|X").unwrap(), Delimiters::STANDARD);
        assert_eq!(parse("MSH|^~\\&").unwrap(), Delimiters::STANDARD);
        assert_eq!(parse("MSH|^~\\&\rPID").unwrap(), Delimiters::STANDARD);
        let d = parse("MSH|^~\\&#|").unwrap();
        assert_eq!(d.truncation, Some('#'));
        assert_eq!(d.to_string(), "|^~\\&#");
        let d = parse("MSH|^~\\}|").unwrap();
        assert_eq!(d.subcomponent, Some('}'));
        let d = parse("MSH|^~}|").unwrap();
        assert_eq!((d.escape, d.subcomponent), (Some('}'), None));
        let d = parse("MSH#$%*@|").unwrap();
        assert_eq!(d.to_string(), "#$%*@|");
    }

    #[test]
    fn rejected() {
        assert!(parse("MSH").unwrap_err().1.contains("missing"));
        assert!(parse("MSH|^|").unwrap_err().1.contains("at least"));
        assert!(parse("MSH|^~\\&#!|").unwrap_err().1.contains("more than 5"));
        assert!(parse("MSH|^^\\&|").unwrap_err().1.contains("twice"));
        assert!(parse("MSH|^~|&|").is_ok());
        assert!(parse("MSH|^|\\&|").unwrap_err().1.contains("at least"));
        assert!(parse("MSH|^~\\|").is_ok());
        assert!(parse("MSHA^~\\&").unwrap_err().1.contains("MSH-1"));
        assert!(
            parse("MSH|^~a&")
                .unwrap_err()
                .1
                .contains("escape character")
        );
        assert!(parse("MSH|^~\\& |").unwrap_err().1.contains("truncation"));
        assert!(parse("MSH\r^~\\&").is_err());
        assert!(parse("MSH|^~\\é|").is_err());
    }
}
