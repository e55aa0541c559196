//! Compiled match conditions and their evaluation against an [`Envelope`].

use std::collections::{HashMap, HashSet};

use crate::record::{Coding, Envelope};

/// Above this many values a set switches from a linear scan to a hash set.
const LINEAR_MAX: usize = 8;

/// A set of accepted string values ("any of").
#[derive(Debug)]
pub(crate) enum StrSet {
    One(Box<str>),
    Few(Box<[Box<str>]>),
    Many(HashSet<Box<str>>),
}

impl StrSet {
    /// Deduplicates, keeping the first occurrence order.
    pub(crate) fn new(values: Vec<String>) -> StrSet {
        let mut uniq: Vec<Box<str>> = Vec::with_capacity(values.len());
        for v in values {
            if !uniq.iter().any(|u| **u == *v) {
                uniq.push(v.into_boxed_str());
            }
        }
        match uniq.len() {
            1 => StrSet::One(uniq.pop().unwrap_or_default()),
            n if n <= LINEAR_MAX => StrSet::Few(uniq.into_boxed_slice()),
            _ => StrSet::Many(uniq.into_iter().collect()),
        }
    }

    #[inline]
    pub(crate) fn contains(&self, s: &str) -> bool {
        match self {
            StrSet::One(v) => **v == *s,
            StrSet::Few(vs) => vs.iter().any(|v| **v == *s),
            StrSet::Many(set) => set.contains(s),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            StrSet::One(_) => 1,
            StrSet::Few(vs) => vs.len(),
            StrSet::Many(set) => set.len(),
        }
    }

    pub(crate) fn iter(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            StrSet::One(v) => Box::new(std::iter::once(&**v)),
            StrSet::Few(vs) => Box::new(vs.iter().map(|v| &**v)),
            StrSet::Many(set) => Box::new(set.iter().map(|v| &**v)),
        }
    }
}

/// A routing code pattern: `system|code`, or `code` alone (any system).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodePat {
    pub(crate) system: Option<Box<str>>,
    pub(crate) code: Box<str>,
}

impl CodePat {
    #[inline]
    fn matches(&self, c: &Coding) -> bool {
        *self.code == *c.code && self.system.as_deref().is_none_or(|s| s == c.system)
    }
}

/// Accepted codes: the record matches when any of its codings matches any pattern.
#[derive(Debug)]
pub(crate) enum CodeSet {
    Few(Box<[CodePat]>),
    /// code -> accepted systems (`None` = any system).
    Many(HashMap<Box<str>, Systems>),
}

/// Accepted systems for one code; `None` = any system.
type Systems = Box<[Option<Box<str>>]>;

impl CodeSet {
    pub(crate) fn new(pats: Vec<CodePat>) -> CodeSet {
        let mut uniq: Vec<CodePat> = Vec::with_capacity(pats.len());
        for p in pats {
            if !uniq.contains(&p) {
                uniq.push(p);
            }
        }
        if uniq.len() <= LINEAR_MAX {
            return CodeSet::Few(uniq.into_boxed_slice());
        }
        let mut by_code: HashMap<Box<str>, Vec<Option<Box<str>>>> = HashMap::new();
        for p in uniq {
            by_code.entry(p.code).or_default().push(p.system);
        }
        CodeSet::Many(
            by_code
                .into_iter()
                .map(|(k, v)| (k, v.into_boxed_slice()))
                .collect(),
        )
    }

    #[inline]
    fn matches(&self, codings: &[Coding]) -> bool {
        match self {
            CodeSet::Few(pats) => codings.iter().any(|c| pats.iter().any(|p| p.matches(c))),
            CodeSet::Many(by_code) => codings.iter().any(|c| {
                by_code.get(c.code.as_str()).is_some_and(|systems| {
                    systems
                        .iter()
                        .any(|s| s.as_deref().is_none_or(|s| s == c.system))
                })
            }),
        }
    }

    /// The distinct bare codes (systems ignored), for the index.
    pub(crate) fn codes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = match self {
            CodeSet::Few(pats) => pats.iter().map(|p| &*p.code).collect(),
            CodeSet::Many(by_code) => by_code.keys().map(|k| &**k).collect(),
        };
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// A compiled match condition.
#[derive(Debug)]
pub(crate) enum Cond {
    True,
    Source(StrSet),
    Kind(StrSet),
    Status(StrSet),
    MessageType(StrSet),
    Plugin(StrSet),
    Confidentiality(StrSet),
    /// Any of these DMP visibility flags is present.
    Flag(StrSet),
    Code(CodeSet),
    HasIns(bool),
    InsSystem(StrSet),
    All(Box<[Cond]>),
    Any(Box<[Cond]>),
    Not(Box<Cond>),
}

impl Cond {
    /// Evaluates the condition; never allocates.
    pub(crate) fn eval(&self, env: &Envelope) -> bool {
        match self {
            Cond::True => true,
            Cond::Source(s) => s.contains(&env.source),
            Cond::Kind(s) => s.contains(&env.kind),
            Cond::Status(s) => s.contains(&env.status),
            Cond::MessageType(s) => env.message_type.as_deref().is_some_and(|m| s.contains(m)),
            Cond::Plugin(s) => s.contains(&env.plugin.name),
            Cond::Confidentiality(s) => s.contains(&env.confidentiality.level),
            Cond::Flag(s) => env.confidentiality.flags.iter().any(|f| s.contains(f)),
            Cond::Code(c) => c.matches(&env.codes),
            Cond::HasIns(b) => env.patient.ins.is_some() == *b,
            Cond::InsSystem(s) => env
                .patient
                .ins
                .as_ref()
                .is_some_and(|i| s.contains(&i.system)),
            Cond::All(cs) => cs.iter().all(|c| c.eval(env)),
            Cond::Any(cs) => cs.iter().any(|c| c.eval(env)),
            Cond::Not(c) => !c.eval(env),
        }
    }

    /// Builds a conjunction, flattening the trivial cases.
    pub(crate) fn all(mut conds: Vec<Cond>) -> Cond {
        conds.retain(|c| !matches!(c, Cond::True));
        match conds.len() {
            0 => Cond::True,
            1 => conds.pop().unwrap_or(Cond::True),
            _ => Cond::All(conds.into_boxed_slice()),
        }
    }

    /// The mandatory equality constraints of the top-level conjunction (fields of the match table
    /// and of nested `all`, never under `any`/`not`): the smallest source, kind and code sets.
    pub(crate) fn index_constraints(&self) -> Constraints<'_> {
        let mut c = Constraints::default();
        self.collect_constraints(&mut c);
        c
    }

    fn collect_constraints<'a>(&'a self, out: &mut Constraints<'a>) {
        fn smaller<'a>(slot: &mut Option<&'a StrSet>, s: &'a StrSet) {
            if slot.is_none_or(|cur| s.len() < cur.len()) {
                *slot = Some(s);
            }
        }
        match self {
            Cond::Source(s) => smaller(&mut out.source, s),
            Cond::Kind(s) => smaller(&mut out.kind, s),
            Cond::Code(c) => {
                let codes = c.codes();
                if out.codes.as_ref().is_none_or(|cur| codes.len() < cur.len()) {
                    out.codes = Some(codes);
                }
            }
            Cond::All(cs) => cs.iter().for_each(|c| c.collect_constraints(out)),
            _ => {}
        }
    }
}

/// See [`Cond::index_constraints`].
#[derive(Default)]
pub(crate) struct Constraints<'a> {
    pub(crate) source: Option<&'a StrSet>,
    pub(crate) kind: Option<&'a StrSet>,
    pub(crate) codes: Option<Vec<&'a str>>,
}
