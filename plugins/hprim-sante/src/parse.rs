//! Reading an HPRIM Santé file: physical lines (CR, LF or CRLF), records with their `A`
//! continuations joined, the delimiters of the H record, fields / repetitions / components /
//! subcomponents, and the `H (P C* (OBR C* (OBX C*)*)*)* L` structure.
//!
//! Field numbers follow the HL7 v2 convention, as in the rest of Passerelle: `OBX-5` is the
//! fifth field after the record name; in the H record, as in MSH, `H-1` is the field separator
//! and `H-2` the four other delimiters, so `H-3` (file name) is the third `|`-separated item.

use passerelle_plugin_sdk::hl7::{Delimiters, escape};
use passerelle_plugin_sdk::log;
use passerelle_plugin_sdk::prelude::*;

/// The five delimiters of a file, read from its H record (`H|~^\&`: field `|`, then component,
/// repetition, escape and subcomponent). HPRIM's usual component and repetition characters are
/// HL7's swapped (`~` component, `^` repetition), and real files use other orders still, so
/// they are always read, never assumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delims {
    pub field: char,
    pub component: char,
    pub repetition: char,
    pub escape: char,
    pub subcomponent: char,
    /// The same, for the SDK's escape decoder (`\F\ \S\ \R\ \E\ \T\ \Xhh\ \.br\`).
    sdk: Delimiters,
}

impl Delims {
    /// Reads the delimiters of an H line: the 5 characters after `H`, which must be distinct
    /// ASCII punctuation, followed by the field separator (or the end of the line).
    pub fn from_header(line: &str) -> Result<Delims, String> {
        let mut chars = line.chars();
        if chars.next() != Some('H') {
            return Err("not an H record".into());
        }
        let d: Vec<char> = chars.by_ref().take(5).collect();
        if d.len() < 5 {
            return Err(format!(
                "the H record must start with H, the field separator and 4 delimiters, got {:?}",
                shorten(line, 12)
            ));
        }
        if let Some(bad) = d
            .iter()
            .find(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || !c.is_ascii_graphic())
        {
            return Err(format!(
                "delimiter {bad:?} is not an ASCII punctuation character (delimiters {:?})",
                d.iter().collect::<String>()
            ));
        }
        for (i, c) in d.iter().enumerate() {
            if d[..i].contains(c) {
                return Err(format!(
                    "the delimiters {:?} are not 5 distinct characters ({c:?} repeats)",
                    d.iter().collect::<String>()
                ));
            }
        }
        if let Some(next) = chars.next()
            && next != d[0]
        {
            return Err(format!(
                "H-2 must be exactly 4 delimiters followed by the field separator {:?}, got {:?}",
                d[0],
                shorten(line, 12)
            ));
        }
        let sdk = Delimiters {
            field: d[0],
            component: d[1],
            repetition: d[2],
            escape: Some(d[3]),
            subcomponent: Some(d[4]),
            truncation: None,
        };
        Ok(Delims {
            field: d[0],
            component: d[1],
            repetition: d[2],
            escape: d[3],
            subcomponent: d[4],
            sdk,
        })
    }

    /// The H-2 text (`~^\&`).
    #[cfg(test)]
    pub fn encoding_characters(&self) -> String {
        [
            self.component,
            self.repetition,
            self.escape,
            self.subcomponent,
        ]
        .iter()
        .collect()
    }
}

/// At most `n` characters of `s`, for messages.
fn shorten(s: &str, n: usize) -> String {
    s.chars()
        .take(n)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `line 12 (OBX)`.
pub fn at(line: usize, name: &str) -> String {
    if name.is_empty() {
        format!("line {line}")
    } else {
        format!("line {line} ({name})")
    }
}

/// One logical record: a physical line plus its `A` continuation lines.
#[derive(Debug, Clone)]
pub struct Record {
    /// Line number (1-based) of its first physical line.
    pub line: usize,
    /// The record type (`H`, `P`, `OBR`...), as written.
    pub name: String,
    /// The whole text, continuations joined.
    pub text: String,
}

impl Record {
    /// `line 12 (OBX)`.
    pub fn loc(&self) -> String {
        at(self.line, &shorten(&self.name, 8))
    }

    /// `line 12 (OBX-5)`.
    pub fn loc_field(&self, n: usize) -> String {
        format!("line {} ({}-{n})", self.line, shorten(&self.name, 8))
    }

    /// Field `n` (HL7 numbering, see the module docs); empty when absent.
    pub fn field<'a>(&'a self, d: &'a Delims, n: usize) -> Field<'a> {
        let index = if self.name == "H" {
            // H-1 is the separator itself, H-2 the delimiters (item 1).
            n.checked_sub(1).filter(|i| *i >= 1)
        } else {
            Some(n).filter(|i| *i >= 1)
        };
        let raw = index
            .and_then(|i| self.text.split(d.field).nth(i))
            .unwrap_or("");
        Field { raw, d }
    }
}

/// A field of a record.
#[derive(Clone, Copy)]
pub struct Field<'a> {
    pub raw: &'a str,
    d: &'a Delims,
}

impl<'a> Field<'a> {
    /// Whether the field holds nothing but spaces and delimiters.
    pub fn is_empty(&self) -> bool {
        self.reps().all(|r| r.is_empty())
    }

    /// Its repetitions (at least one, maybe empty).
    pub fn reps(&self) -> impl Iterator<Item = Rep<'a>> + use<'a> {
        let d = self.d;
        self.raw.split(d.repetition).map(move |raw| Rep { raw, d })
    }

    /// The first repetition.
    pub fn first(&self) -> Rep<'a> {
        let raw = self.raw.split(self.d.repetition).next().unwrap_or("");
        Rep { raw, d: self.d }
    }

    /// Component `n` of the first repetition, unescaped and trimmed.
    pub fn comp(&self, n: usize) -> String {
        self.first().comp(n)
    }

    /// The first component of the first repetition, unescaped and trimmed.
    pub fn value(&self) -> String {
        self.comp(1)
    }
}

/// A repetition of a field.
#[derive(Clone, Copy)]
pub struct Rep<'a> {
    pub raw: &'a str,
    d: &'a Delims,
}

impl<'a> Rep<'a> {
    /// Whether it holds nothing but spaces and delimiters.
    pub fn is_empty(&self) -> bool {
        self.raw
            .chars()
            .all(|c| c.is_whitespace() || c == self.d.component || c == self.d.subcomponent)
    }

    fn comp_raw(&self, n: usize) -> &'a str {
        n.checked_sub(1)
            .and_then(|i| self.raw.split(self.d.component).nth(i))
            .unwrap_or("")
    }

    /// Component `n` (1-based): its first subcomponent, unescaped and trimmed.
    pub fn comp(&self, n: usize) -> String {
        let raw = self.comp_raw(n);
        let first = raw.split(self.d.subcomponent).next().unwrap_or("");
        unescape(first, self.d)
    }

    /// Every subcomponent of every component from `from` on, unescaped and trimmed.
    pub fn values_from(&self, from: usize) -> Vec<String> {
        self.raw
            .split(self.d.component)
            .skip(from.saturating_sub(1))
            .flat_map(|c| c.split(self.d.subcomponent))
            .map(|s| unescape(s, self.d))
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The non-empty components, unescaped, trimmed and joined with `sep`.
    pub fn joined(&self, sep: &str) -> String {
        let parts: Vec<String> = self
            .raw
            .split(self.d.component)
            .map(|c| {
                let subs: Vec<String> = c
                    .split(self.d.subcomponent)
                    .map(|s| unescape(s, self.d))
                    .filter(|s| !s.is_empty())
                    .collect();
                subs.join(" ")
            })
            .filter(|s| !s.is_empty())
            .collect();
        parts.join(sep)
    }
}

/// Decodes the escape sequences of a value and trims it.
pub fn unescape(raw: &str, d: &Delims) -> String {
    escape::unescape(raw, &d.sdk).trim().to_string()
}

/// The physical lines of a text, numbered from 1 (CRLF, CR and LF each end one line); blank
/// lines (spaces, NUL, DOS end-of-file `^Z`) are left out.
pub fn lines(text: &str) -> Vec<(usize, &str)> {
    fn blank(line: &str) -> bool {
        line.chars()
            .all(|c| c.is_whitespace() || c == '\u{1a}' || c == '\0')
    }
    let mut out = Vec::new();
    let b = text.as_bytes();
    let (mut start, mut number, mut i) = (0, 1, 0);
    while i < b.len() {
        if b[i] == b'\r' || b[i] == b'\n' {
            let line = &text[start..i];
            if !blank(line) {
                out.push((number, line));
            }
            if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            number += 1;
            start = i + 1;
        }
        i += 1;
    }
    if start < b.len() && !blank(&text[start..]) {
        out.push((number, &text[start..]));
    }
    out
}

/// The record type of a line: the text before the first field separator.
fn record_name(line: &str, field: char) -> String {
    line.split(field).next().unwrap_or("").trim().to_string()
}

/// The record type of a line whose field separator is unknown: its leading letters and digits.
pub fn leading_name(line: &str) -> String {
    line.chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect()
}

/// A result (OBX) and its comments.
#[derive(Debug)]
pub struct ResultGroup {
    pub rec: Record,
    pub comments: Vec<Record>,
}

/// A request (OBR), its comments and results.
#[derive(Debug)]
pub struct OrderGroup {
    pub rec: Record,
    pub comments: Vec<Record>,
    pub results: Vec<ResultGroup>,
}

/// A patient (P), its comments and requests.
#[derive(Debug)]
pub struct PatientGroup {
    pub rec: Record,
    pub comments: Vec<Record>,
    pub orders: Vec<OrderGroup>,
}

/// A parsed file.
#[derive(Debug)]
pub struct File {
    pub delims: Delims,
    pub header: Record,
    pub patients: Vec<PatientGroup>,
}

/// What a C record comments on.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    None,
    Patient,
    Order,
    Result,
}

/// Parses a decoded file. A file without L record is refused unless `accept_truncated`.
pub fn parse(text: &str, accept_truncated: bool) -> Result<File, AdaptError> {
    let lines = lines(text);
    let Some(&(first_no, first)) = lines.first() else {
        return Err(malformed("line 1", "empty file: no H (header) record"));
    };
    if !first.starts_with('H') {
        return Err(malformed(
            at(first_no, &leading_name(first)),
            "the file does not start with an H (header) record",
        ));
    }
    let d = Delims::from_header(first).map_err(|reason| malformed(at(first_no, "H-2"), reason))?;

    // Join the A continuation lines to the record before them.
    let mut records: Vec<Record> = Vec::with_capacity(lines.len());
    let mut continuation = String::from("A");
    continuation.push(d.field);
    for (number, line) in lines {
        if let Some(rest) = line.strip_prefix(continuation.as_str())
            && let Some(last) = records.last_mut()
        {
            last.text.push_str(rest);
            continue;
        }
        records.push(Record {
            line: number,
            name: record_name(line, d.field),
            text: line.to_string(),
        });
    }

    let mut records = records.into_iter();
    let Some(header) = records.next() else {
        return Err(malformed("line 1", "no H (header) record"));
    };
    let mut patients: Vec<PatientGroup> = Vec::new();
    let mut target = Target::None;
    let mut end: Option<usize> = None;
    let mut last_loc = header.loc();
    for rec in records {
        if let Some(l) = end {
            return Err(malformed(
                rec.loc(),
                format!("record after the L (end) record of line {l}"),
            ));
        }
        last_loc = rec.loc();
        match rec.name.as_str() {
            "H" => {
                return Err(malformed(
                    rec.loc(),
                    "second H (header) record: a file holds one message",
                ));
            }
            "P" => {
                patients.push(PatientGroup {
                    rec,
                    comments: Vec::new(),
                    orders: Vec::new(),
                });
                target = Target::Patient;
            }
            "OBR" => {
                let Some(p) = patients.last_mut() else {
                    return Err(malformed(
                        rec.loc(),
                        "request (OBR) before any patient (P) record",
                    ));
                };
                p.orders.push(OrderGroup {
                    rec,
                    comments: Vec::new(),
                    results: Vec::new(),
                });
                target = Target::Order;
            }
            "OBX" => {
                let Some(o) = patients.last_mut().and_then(|p| p.orders.last_mut()) else {
                    return Err(malformed(
                        rec.loc(),
                        "result (OBX) before any request (OBR) record of its patient",
                    ));
                };
                o.results.push(ResultGroup {
                    rec,
                    comments: Vec::new(),
                });
                target = Target::Result;
            }
            "C" => {
                let p = patients.last_mut();
                match (target, p) {
                    (Target::Patient, Some(p)) => p.comments.push(rec),
                    (Target::Order, Some(p)) => {
                        if let Some(o) = p.orders.last_mut() {
                            o.comments.push(rec);
                        }
                    }
                    (Target::Result, Some(p)) => {
                        if let Some(x) = p.orders.last_mut().and_then(|o| o.results.last_mut()) {
                            x.comments.push(rec);
                        }
                    }
                    _ => log::warn(&format!(
                        "line {}: comment (C) with no P, OBR or OBX record before it: skipped",
                        rec.line
                    )),
                }
            }
            "L" => end = Some(rec.line),
            other => {
                log::warn(&format!(
                    "line {}: unknown record type {:?} skipped",
                    rec.line,
                    shorten(other, 8)
                ));
                // Comments after it are about it: skipped too.
                target = Target::None;
            }
        }
    }
    if end.is_none() {
        if !accept_truncated {
            return Err(malformed(
                last_loc,
                "truncated file: no L (end) record after this last record",
            ));
        }
        log::warn("no L (end) record: the file may be truncated (accepted: accept_truncated)");
    }
    Ok(File {
        delims: d,
        header,
        patients,
    })
}
