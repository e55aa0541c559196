//! Terser-like paths: `PID-5.1`, `OBX[2]-5`, `PID-3(2).4.2`.

use std::fmt;
use std::str::FromStr;

use super::PathError;

/// A parsed path to a value of a message, in the spirit of HAPI's Terser:
///
/// `SEG[n]-F(r).C.S`, where everything but the field number is optional:
///
/// - `SEG` — segment name (case-insensitive); `[n]` or `(n)` — its occurrence, 1-based
///   (default 1). Without a segment name the path is relative to a segment
///   ([`Segment::get`](super::Segment::get)).
/// - `F` — field number (HL7 numbering, `MSH-9` is the message type); `(r)` — repetition,
///   1-based (default 1).
/// - `.C` — component, `.S` — subcomponent, 1-based; `-` is accepted instead of `.`.
///
/// Without a component the path designates the field's first component (and without a
/// subcomponent, the component's first subcomponent): `PID-5` reads the same as `PID-5.1.1`.
/// All numbers start at 1.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Path;
///
/// let p = Path::parse("OBX[3]-5(2).1.2").unwrap();
/// assert_eq!(p.segment(), Some("OBX"));
/// assert_eq!((p.occurrence(), p.field(), p.repetition()), (3, 5, 2));
/// assert_eq!((p.component(), p.subcomponent()), (Some(1), Some(2)));
/// assert_eq!(p.to_string(), "OBX[3]-5(2).1.2");
///
/// let p: Path = "5.1".parse().unwrap();
/// assert_eq!((p.segment(), p.field(), p.component()), (None, 5, Some(1)));
/// assert!(Path::parse("PID-0").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Path {
    segment: Option<[u8; 3]>,
    occurrence: usize,
    field: usize,
    repetition: usize,
    component: Option<usize>,
    subcomponent: Option<usize>,
}

impl Path {
    /// Parses a path; see the [type docs](Path) for the syntax.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Path;
    /// assert!(Path::parse("PID-3(2).4.2").is_ok());
    /// assert!(Path::parse("pid-5-1").is_ok());
    /// assert_eq!(Path::parse("PID-").unwrap_err().reason, "expected a field number");
    /// ```
    pub fn parse(path: &str) -> Result<Path, PathError> {
        let err = |reason| PathError {
            path: path.to_owned(),
            reason,
        };
        let mut s = path.trim().as_bytes();
        let mut segment = None;
        let mut occurrence = 1;
        if s.first().is_some_and(u8::is_ascii_alphabetic) {
            let name = s
                .get(..3)
                .ok_or_else(|| err("segment name must have 3 characters"))?;
            if !name.iter().all(u8::is_ascii_alphanumeric) {
                return Err(err("segment name must have 3 letters or digits"));
            }
            segment = Some([
                name[0].to_ascii_uppercase(),
                name[1].to_ascii_uppercase(),
                name[2].to_ascii_uppercase(),
            ]);
            s = &s[3..];
            if let Some((n, rest)) = bracketed(s, &[(b'[', b']'), (b'(', b')')]) {
                occurrence = n.ok_or_else(|| err("segment occurrence must be a number ≥ 1"))?;
                s = rest;
            }
            s = s
                .strip_prefix(b"-")
                .ok_or_else(|| err("expected `-` after the segment name"))?;
        }
        let (field, rest) = number(s).ok_or_else(|| err("expected a field number"))?;
        s = rest;
        let mut repetition = 1;
        if let Some((n, rest)) = bracketed(s, &[(b'(', b')')]) {
            repetition = n.ok_or_else(|| err("repetition must be a number ≥ 1"))?;
            s = rest;
        }
        let mut parts = [None, None];
        for part in &mut parts {
            match s.split_first() {
                Some((b'.' | b'-', rest)) => {
                    let (n, rest) = number(rest).ok_or_else(|| err("expected a number ≥ 1"))?;
                    *part = Some(n);
                    s = rest;
                }
                Some(_) => return Err(err("unexpected character")),
                None => break,
            }
        }
        if !s.is_empty() {
            return Err(err("unexpected text after the subcomponent"));
        }
        Ok(Path {
            segment,
            occurrence,
            field,
            repetition,
            component: parts[0],
            subcomponent: parts[1],
        })
    }

    /// The segment name, when the path has one.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Path;
    /// assert_eq!(Path::parse("pid-5").unwrap().segment(), Some("PID"));
    /// ```
    pub fn segment(&self) -> Option<&str> {
        self.segment
            .as_ref()
            .and_then(|s| std::str::from_utf8(s).ok())
    }

    /// The 1-based occurrence of the segment (1 when not given).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Path;
    /// assert_eq!(Path::parse("OBX(2)-5").unwrap().occurrence(), 2);
    /// ```
    pub fn occurrence(&self) -> usize {
        self.occurrence
    }

    /// The field number.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Path;
    /// assert_eq!(Path::parse("MSH-9.2").unwrap().field(), 9);
    /// ```
    pub fn field(&self) -> usize {
        self.field
    }

    /// The 1-based repetition (1 when not given).
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Path;
    /// assert_eq!(Path::parse("PID-3(2)").unwrap().repetition(), 2);
    /// ```
    pub fn repetition(&self) -> usize {
        self.repetition
    }

    /// The component, when given.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Path;
    /// assert_eq!(Path::parse("PID-5.2").unwrap().component(), Some(2));
    /// ```
    pub fn component(&self) -> Option<usize> {
        self.component
    }

    /// The subcomponent, when given.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Path;
    /// assert_eq!(Path::parse("PID-3.4.2").unwrap().subcomponent(), Some(2));
    /// ```
    pub fn subcomponent(&self) -> Option<usize> {
        self.subcomponent
    }
}

impl FromStr for Path {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Path::parse(s)
    }
}

impl fmt::Display for Path {
    /// The canonical form, e.g. `OBX[2]-5(1).3`: the occurrence only when not 1, the
    /// repetition only when not 1.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(seg) = self.segment() {
            f.write_str(seg)?;
            if self.occurrence != 1 {
                write!(f, "[{}]", self.occurrence)?;
            }
            f.write_str("-")?;
        }
        write!(f, "{}", self.field)?;
        if self.repetition != 1 {
            write!(f, "({})", self.repetition)?;
        }
        if let Some(c) = self.component {
            write!(f, ".{c}")?;
        }
        if let Some(s) = self.subcomponent {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

/// A number ≥ 1 at the start of `s`, and what follows it.
fn number(s: &[u8]) -> Option<(usize, &[u8])> {
    let len = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || len > 9 {
        return None;
    }
    let n = s[..len]
        .iter()
        .fold(0usize, |n, &b| n * 10 + usize::from(b - b'0'));
    (n >= 1).then_some((n, &s[len..]))
}

/// `[n]` / `(n)` at the start of `s`: `None` when there is no opening bracket,
/// `Some((None, _))` when the content is malformed.
fn bracketed<'a>(s: &'a [u8], pairs: &[(u8, u8)]) -> Option<(Option<usize>, &'a [u8])> {
    let (&open, rest) = s.split_first()?;
    let &(_, close) = pairs.iter().find(|(o, _)| *o == open)?;
    match number(rest) {
        Some((n, rest)) => match rest.split_first() {
            Some((&c, rest)) if c == close => Some((Some(n), rest)),
            _ => Some((None, rest)),
        },
        None => Some((None, rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid() {
        let p = Path::parse("PID-5").unwrap();
        assert_eq!(
            (p.segment(), p.occurrence(), p.field(), p.repetition()),
            (Some("PID"), 1, 5, 1)
        );
        assert_eq!((p.component(), p.subcomponent()), (None, None));
        let p = Path::parse("OBX(12)-5-2-1").unwrap();
        assert_eq!(
            (p.occurrence(), p.component(), p.subcomponent()),
            (12, Some(2), Some(1))
        );
        let p = Path::parse("ZB1-1").unwrap();
        assert_eq!(p.segment(), Some("ZB1"));
        let p = Path::parse("3(2)").unwrap();
        assert_eq!((p.segment(), p.field(), p.repetition()), (None, 3, 2));
        for s in ["PID-5", "OBX[3]-5.1", "PID-3(2).4.2", "5.1", "MSH-9.2"] {
            assert_eq!(Path::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn invalid() {
        for s in [
            "",
            "P",
            "PI",
            "PI-5",
            "P#D-5",
            "PID",
            "PID5",
            "PID-",
            "PID-0",
            "PID-a",
            "PID[0]-1",
            "PID[1-1",
            "PID[x]-1",
            "PID-1(0)",
            "PID-1(1",
            "PID-1.",
            "PID-1.0",
            "PID-1.1.1.1",
            "PID-1x",
            "PID-1 .2",
            "PID-9999999999",
            "-1",
        ] {
            assert!(Path::parse(s).is_err(), "{s:?}");
        }
    }
}
