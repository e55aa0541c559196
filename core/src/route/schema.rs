//! The routes file as serde reads it, and its checked compilation into [`Cond`]s.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

use super::cond::{CodePat, CodeSet, Cond, StrSet};
use crate::config::TomlError;
use crate::record::ins_system;

/// How many routes a record takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The destinations of every matching route, deduplicated, in file order.
    #[default]
    FanOut,
    /// Only the first matching route in file order.
    FirstMatch,
}

/// `hold` is reserved: it cannot be a destination's name in `unmatched`.
pub(super) const HOLD: &str = "hold";

/// Record statuses (the WIT `record-status` names).
pub(super) const STATUSES: &[&str] = &[
    "preliminary",
    "final",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
];
/// HL7 v3 Confidentiality levels.
pub(super) const LEVELS: &[&str] = &["N", "R", "V"];
/// DMP visibility flags.
pub(super) const FLAGS: &[&str] = &[
    "MASQUE_PS",
    "INVISIBLE_PATIENT",
    "INVISIBLE_REPRESENTANTS_LEGAUX",
];
/// INS namespaces: short name and FHIR identifier system.
pub(super) const INS_SYSTEMS: &[(&str, &str)] = &[
    ("nir", ins_system::NIR),
    ("nia", ins_system::NIA),
    ("nir-test", ins_system::NIR_TEST),
    ("nir-demo", ins_system::NIR_DEMO),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) mode: Mode,
    #[serde(default)]
    pub(super) unmatched: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) route: Vec<RawRoute>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) name: Spanned<String>,
    pub(super) destinations: Spanned<Vec<Spanned<String>>>,
    #[serde(default = "yes")]
    pub(super) enabled: bool,
    #[serde(default, rename = "match")]
    pub(super) matcher: Option<Spanned<RawMatch>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMatch {
    #[serde(default)]
    source: Option<Spanned<Values>>,
    #[serde(default)]
    kind: Option<Spanned<Values>>,
    #[serde(default)]
    status: Option<Spanned<Values>>,
    #[serde(default)]
    message_type: Option<Spanned<Values>>,
    #[serde(default)]
    plugin: Option<Spanned<Values>>,
    #[serde(default)]
    confidentiality: Option<Spanned<Values>>,
    #[serde(default)]
    flag: Option<Spanned<Values>>,
    #[serde(default)]
    code: Option<Spanned<Values>>,
    #[serde(default)]
    has_ins: Option<bool>,
    #[serde(default)]
    ins_system: Option<Spanned<Values>>,
    #[serde(default)]
    all: Option<Spanned<Vec<Spanned<RawMatch>>>>,
    #[serde(default)]
    any: Option<Spanned<Vec<Spanned<RawMatch>>>>,
    #[serde(default)]
    not: Option<Box<Spanned<RawMatch>>>,
}

/// A string or a list of strings.
#[derive(Debug)]
pub(super) enum Values {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Values;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Values, E> {
                Ok(Values::One(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Values, E> {
                Ok(Values::One(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Values, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Spanned<String>>()? {
                    out.push(v);
                }
                Ok(Values::Many(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Compiles match tables, reporting semantic errors at their position in `src`.
pub(super) struct Compiler<'a> {
    pub(super) file: &'a Path,
    pub(super) src: &'a str,
}

impl Compiler<'_> {
    pub(super) fn err(&self, span: Range<usize>, msg: impl Into<String>) -> TomlError {
        TomlError::at(self.file, self.src, Some(span.start), msg)
    }

    /// The non-empty values of a field, each with its position.
    fn values(
        &self,
        field: &str,
        v: &Spanned<Values>,
    ) -> Result<Vec<(String, Range<usize>)>, TomlError> {
        let out: Vec<(String, Range<usize>)> = match v.get_ref() {
            Values::One(s) => vec![(s.clone(), v.span())],
            Values::Many(list) => list
                .iter()
                .map(|s| (s.get_ref().clone(), s.span()))
                .collect(),
        };
        if out.is_empty() {
            return Err(self.err(
                v.span(),
                format!("`{field}`: expected a string or a non-empty list of strings"),
            ));
        }
        for (s, span) in &out {
            if s.is_empty() {
                return Err(self.err(
                    span.clone(),
                    format!("`{field}`: expected a non-empty string"),
                ));
            }
        }
        Ok(out)
    }

    fn strings(&self, field: &str, v: &Spanned<Values>) -> Result<StrSet, TomlError> {
        Ok(StrSet::new(
            self.values(field, v)?.into_iter().map(|(s, _)| s).collect(),
        ))
    }

    fn vocabulary(
        &self,
        field: &str,
        v: &Spanned<Values>,
        allowed: &[&str],
    ) -> Result<StrSet, TomlError> {
        let values = self.values(field, v)?;
        for (s, span) in &values {
            if !allowed.contains(&s.as_str()) {
                return Err(self.err(
                    span.clone(),
                    format!(
                        "unknown {field} `{s}`, expected one of: {}",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(StrSet::new(values.into_iter().map(|(s, _)| s).collect()))
    }

    fn ins_systems(&self, v: &Spanned<Values>) -> Result<StrSet, TomlError> {
        let mut out = Vec::new();
        for (s, span) in self.values("ins_system", v)? {
            match INS_SYSTEMS
                .iter()
                .find(|(short, oid)| *short == s || *oid == s)
            {
                Some((_, oid)) => out.push((*oid).to_owned()),
                None => {
                    let names: Vec<String> = INS_SYSTEMS
                        .iter()
                        .map(|(short, oid)| format!("{short} ({oid})"))
                        .collect();
                    return Err(self.err(
                        span,
                        format!(
                            "unknown ins_system `{s}`, expected one of: {}",
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(StrSet::new(out))
    }

    fn codes(&self, v: &Spanned<Values>) -> Result<CodeSet, TomlError> {
        let mut pats = Vec::new();
        for (s, span) in self.values("code", v)? {
            let (system, code) = match s.split_once('|') {
                Some((sys, code)) => ((!sys.is_empty()).then(|| sys.into()), code),
                None => (None, s.as_str()),
            };
            if code.is_empty() || code.contains('|') {
                return Err(self.err(
                    span,
                    format!(
                        "invalid code `{s}`, expected `system|code`, `|code` or `code` (any system)"
                    ),
                ));
            }
            pats.push(CodePat {
                system,
                code: code.into(),
            });
        }
        Ok(CodeSet::new(pats))
    }

    fn list(
        &self,
        name: &str,
        list: &Spanned<Vec<Spanned<RawMatch>>>,
        depth: usize,
    ) -> Result<Vec<Cond>, TomlError> {
        if list.get_ref().is_empty() {
            return Err(self.err(
                list.span(),
                format!("`{name}`: expected a non-empty list of match tables"),
            ));
        }
        list.get_ref()
            .iter()
            .map(|m| self.compile(m, depth + 1))
            .collect()
    }

    /// Compiles one match table: all of its fields must hold.
    pub(super) fn compile(&self, m: &Spanned<RawMatch>, depth: usize) -> Result<Cond, TomlError> {
        if depth > 32 {
            return Err(self.err(
                m.span(),
                "match conditions nested too deeply (at most 32 levels)",
            ));
        }
        let r = m.get_ref();
        let mut conds = Vec::new();
        if let Some(v) = &r.source {
            conds.push(Cond::Source(self.strings("source", v)?));
        }
        if let Some(v) = &r.kind {
            conds.push(Cond::Kind(self.strings("kind", v)?));
        }
        if let Some(v) = &r.status {
            conds.push(Cond::Status(self.vocabulary("status", v, STATUSES)?));
        }
        if let Some(v) = &r.message_type {
            conds.push(Cond::MessageType(self.strings("message_type", v)?));
        }
        if let Some(v) = &r.plugin {
            conds.push(Cond::Plugin(self.strings("plugin", v)?));
        }
        if let Some(v) = &r.confidentiality {
            conds.push(Cond::Confidentiality(self.vocabulary(
                "confidentiality",
                v,
                LEVELS,
            )?));
        }
        if let Some(b) = r.has_ins {
            conds.push(Cond::HasIns(b));
        }
        if let Some(v) = &r.ins_system {
            conds.push(Cond::InsSystem(self.ins_systems(v)?));
        }
        if let Some(v) = &r.flag {
            conds.push(Cond::Flag(self.vocabulary("flag", v, FLAGS)?));
        }
        if let Some(v) = &r.code {
            conds.push(Cond::Code(self.codes(v)?));
        }
        if let Some(list) = &r.all {
            conds.push(Cond::all(self.list("all", list, depth)?));
        }
        if let Some(list) = &r.any {
            conds.push(Cond::Any(self.list("any", list, depth)?.into_boxed_slice()));
        }
        if let Some(inner) = &r.not {
            conds.push(Cond::Not(Box::new(self.compile(inner, depth + 1)?)));
        }
        Ok(Cond::all(conds))
    }

    /// Checks a destination name against the known destinations.
    pub(super) fn destination(
        &self,
        name: &Spanned<String>,
        known: &HashSet<String>,
    ) -> Result<(), TomlError> {
        if known.contains(name.get_ref()) {
            return Ok(());
        }
        let mut names: Vec<&str> = known.iter().map(String::as_str).collect();
        names.sort_unstable();
        let expected = if names.is_empty() {
            "no destination is configured".to_owned()
        } else {
            format!("expected one of: {}", names.join(", "))
        };
        Err(self.err(
            name.span(),
            format!("unknown destination `{}`, {expected}", name.get_ref()),
        ))
    }
}
