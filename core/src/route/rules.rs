//! The compiled rule set: validation, index and routing.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::cond::Cond;
use super::schema::{Compiler, HOLD, Mode, RawFile};
use crate::config::{TomlError, parse_toml};
use crate::record::Envelope;

/// What happens to a record that no route matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmatched {
    /// Stored in the journal and held until an operator acts.
    Hold,
    /// Sent to this destination.
    Destination(String),
}

/// Where one record goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteDecision {
    /// The first matching route (in file order), `None` when no route matched.
    pub route: Option<String>,
    /// Destinations, deduplicated, in route order then list order. Empty when held.
    pub destinations: Vec<String>,
    /// No route matched and `unmatched = "hold"`.
    pub held: bool,
}

/// One enabled route.
#[derive(Debug)]
struct Rule {
    name: Box<str>,
    cond: Cond,
    /// Indexes into `RuleSet::dest_names`, deduplicated.
    dests: Box<[u32]>,
}

/// A validated, compiled, indexed routes file. Immutable; share it as `Arc<RuleSet>`.
#[derive(Debug)]
pub struct RuleSet {
    version: String,
    digest: [u8; 32],
    loaded_at: SystemTime,
    path: PathBuf,
    mode: Mode,
    unmatched: Unmatched,
    /// Enabled routes, in file order.
    rules: Vec<Rule>,
    /// Routes in the file, enabled or not.
    total_routes: usize,
    dest_names: Vec<Box<str>>,
    index: Index,
}

impl RuleSet {
    /// Reads, validates and compiles the routes file at `path`.
    pub fn load(
        path: impl AsRef<Path>,
        known_destinations: &HashSet<String>,
    ) -> Result<RuleSet, TomlError> {
        let path = path.as_ref();
        let src = std::fs::read_to_string(path).map_err(|e| TomlError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the routes file: {e}"),
        })?;
        RuleSet::parse(path, &src, known_destinations)
    }

    /// Validates and compiles `src`, the content of the routes file `path` (used in messages).
    pub fn parse(
        path: impl AsRef<Path>,
        src: &str,
        known_destinations: &HashSet<String>,
    ) -> Result<RuleSet, TomlError> {
        let path = path.as_ref();
        let raw: RawFile = parse_toml(path, src)?;
        let c = Compiler { file: path, src };

        let unmatched = match &raw.unmatched {
            None => Unmatched::Hold,
            Some(u) if u.get_ref() == HOLD => Unmatched::Hold,
            Some(u) => {
                c.destination(u, known_destinations).map_err(|mut e| {
                    e.message = format!(
                        "`unmatched`: expected \"hold\" or a destination name; {}",
                        e.message
                    );
                    e
                })?;
                Unmatched::Destination(u.get_ref().clone())
            }
        };

        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut dest_names: Vec<Box<str>> = Vec::new();
        let mut rules = Vec::new();
        for r in &raw.route {
            let name = r.name.get_ref();
            if name.trim().is_empty() {
                return Err(c.err(r.name.span(), "expected a non-empty route name"));
            }
            if let Some(&first) = names.get(name.as_str()) {
                let (line, _) = crate::config::line_col(src, first);
                return Err(c.err(
                    r.name.span(),
                    format!("duplicate route name `{name}` (already used by the route at line {line}); names must be unique"),
                ));
            }
            names.insert(name, r.name.span().start);

            if r.destinations.get_ref().is_empty() {
                return Err(c.err(r.destinations.span(), "expected at least one destination"));
            }
            let mut dests: Vec<u32> = Vec::new();
            for d in r.destinations.get_ref() {
                c.destination(d, known_destinations)?;
                let i = match dest_names.iter().position(|n| **n == **d.get_ref()) {
                    Some(i) => i,
                    None => {
                        dest_names.push(d.get_ref().as_str().into());
                        dest_names.len() - 1
                    }
                } as u32;
                if !dests.contains(&i) {
                    dests.push(i);
                }
            }

            let cond = match &r.matcher {
                Some(m) => c.compile(m, 0)?,
                None => Cond::True,
            };
            if r.enabled {
                rules.push(Rule {
                    name: name.as_str().into(),
                    cond,
                    dests: dests.into_boxed_slice(),
                });
            }
        }

        let digest: [u8; 32] = Sha256::digest(src.as_bytes()).into();
        let index = Index::build(&rules);
        Ok(RuleSet {
            version: hex::encode(&digest[..6]),
            digest,
            loaded_at: SystemTime::now(),
            path: path.to_path_buf(),
            mode: raw.mode,
            unmatched,
            rules,
            total_routes: raw.route.len(),
            dest_names,
            index,
        })
    }

    /// Content-addressed version: the first 12 hex digits of the SHA-256 of the file content.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub(crate) fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// When this rule set was compiled.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn unmatched(&self) -> &Unmatched {
        &self.unmatched
    }

    /// Number of enabled routes (the ones that route records).
    pub fn route_count(&self) -> usize {
        self.rules.len()
    }

    /// Number of routes in the file, disabled ones included.
    pub fn total_routes(&self) -> usize {
        self.total_routes
    }

    /// Names of the enabled routes, in file order.
    pub fn route_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| &*r.name)
    }

    /// Routes one record. Evaluates only the candidate routes the index yields for the
    /// envelope's source, kind and codes (plus the unindexed routes), in file order.
    pub fn route(&self, env: &Envelope) -> RouteDecision {
        let mut out = Collector::new(self);
        let mut cands = Candidates::new();
        self.index.candidates(env, &mut cands);
        cands.for_each_until(|i| {
            let rule = &self.rules[i as usize];
            rule.cond.eval(env) && out.matched(rule)
        });
        out.finish()
    }

    /// Reference implementation: a linear scan over every enabled route.
    #[cfg(test)]
    pub(crate) fn route_linear(&self, env: &Envelope) -> RouteDecision {
        let mut out = Collector::new(self);
        for rule in &self.rules {
            if rule.cond.eval(env) && out.matched(rule) {
                break;
            }
        }
        out.finish()
    }
}

/// Builds a [`RouteDecision`] from the matching rules, in file order.
struct Collector<'a> {
    set: &'a RuleSet,
    decision: RouteDecision,
    /// Destinations already added (bit per `dest_names` index), when there are at most 256.
    seen: [u64; 4],
}

impl<'a> Collector<'a> {
    fn new(set: &'a RuleSet) -> Self {
        Collector {
            set,
            decision: RouteDecision::default(),
            seen: [0; 4],
        }
    }

    /// Records a matching rule; returns true when routing is done (first-match).
    fn matched(&mut self, rule: &Rule) -> bool {
        if self.decision.route.is_none() {
            self.decision.route = Some(rule.name.to_string());
        }
        for &d in &rule.dests {
            let name = &*self.set.dest_names[d as usize];
            let new = if (d as usize) < 256 {
                let (w, b) = ((d / 64) as usize, d % 64);
                let new = self.seen[w] & (1 << b) == 0;
                self.seen[w] |= 1 << b;
                new
            } else {
                !self.decision.destinations.iter().any(|x| x == name)
            };
            if new {
                self.decision.destinations.push(name.to_owned());
            }
        }
        self.set.mode == Mode::FirstMatch
    }

    fn finish(mut self) -> RouteDecision {
        if self.decision.route.is_none() {
            match &self.set.unmatched {
                Unmatched::Hold => self.decision.held = true,
                Unmatched::Destination(d) => self.decision.destinations.push(d.clone()),
            }
        }
        self.decision
    }
}

// ---------------------------------------------------------------------------------------------
// Index
// ---------------------------------------------------------------------------------------------

const BY_SOURCE: u8 = 1;
const BY_KIND: u8 = 2;
const BY_CODE: u8 = 4;
/// Above this many keys for one rule (product of its source, kind and code sets), the rule
/// drops its largest dimension from its key.
const MAX_KEYS_PER_RULE: usize = 4096;
/// Bits of `Index::patterns` for the patterns keyed on a code.
const CODE_PATTERNS: u8 = (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7);
/// Record codes whose hashes are kept on the stack.
const CODE_HASHES: usize = 8;

/// The map's keys are already hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Candidate rules by index key.
///
/// Each rule gets one *pattern* — which of its source, kind and code it is keyed on, from the
/// mandatory equality constraints of its top-level conjunction — and one key per combination of
/// accepted values (`source × kind × code`). A rule with none of them is a wildcard. Keys are
/// 64-bit hashes of (pattern, values): a collision only adds a candidate, and every candidate
/// is fully evaluated, so collisions cannot change a decision.
#[derive(Debug, Default)]
struct Index {
    wildcard: Box<[u32]>,
    /// Bit `p` set when some rule uses pattern `p` (1..=7).
    patterns: u8,
    /// Rule indexes per key, ascending (file order).
    map: HashMap<u64, Box<[u32]>, BuildHasherDefault<IdentityHasher>>,
}

#[inline]
fn str_hash(s: &str) -> u64 {
    // FNV-1a: fast on the short strings routed on.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in s.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[inline]
fn key(pattern: u8, source: u64, kind: u64, code: u64) -> u64 {
    #[inline]
    fn step(h: u64, part: u64) -> u64 {
        (h ^ part)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29)
    }
    let mut h = step(0x243f_6a88_85a3_08d3, u64::from(pattern));
    if pattern & BY_SOURCE != 0 {
        h = step(h, source);
    }
    if pattern & BY_KIND != 0 {
        h = step(h, kind);
    }
    if pattern & BY_CODE != 0 {
        h = step(h, code);
    }
    // splitmix64 finaliser.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl Index {
    fn build(rules: &[Rule]) -> Index {
        let mut wildcard = Vec::new();
        let mut patterns = 0u8;
        let mut map: HashMap<u64, Vec<u32>> = HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            let i = i as u32;
            let c = rule.cond.index_constraints();
            let mut dims: Vec<(u8, Vec<u64>)> = Vec::new();
            if let Some(s) = c.source {
                dims.push((BY_SOURCE, s.iter().map(str_hash).collect()));
            }
            if let Some(k) = c.kind {
                dims.push((BY_KIND, k.iter().map(str_hash).collect()));
            }
            if let Some(codes) = &c.codes {
                dims.push((BY_CODE, codes.iter().map(|s| str_hash(s)).collect()));
            }
            while dims.iter().map(|(_, v)| v.len()).product::<usize>() > MAX_KEYS_PER_RULE {
                let largest = (0..dims.len())
                    .max_by_key(|&d| dims[d].1.len())
                    .unwrap_or(0);
                dims.remove(largest);
            }
            if dims.is_empty() {
                wildcard.push(i);
                continue;
            }
            let pattern = dims.iter().fold(0u8, |p, (bit, _)| p | bit);
            patterns |= 1 << pattern;
            let part = |bit: u8| {
                dims.iter()
                    .find(|(b, _)| *b == bit)
                    .map(|(_, v)| v.as_slice())
                    .unwrap_or(&[0])
            };
            for &s in part(BY_SOURCE) {
                for &k in part(BY_KIND) {
                    for &cd in part(BY_CODE) {
                        let list = map.entry(key(pattern, s, k, cd)).or_default();
                        // Rules are visited in order: a list stays sorted; skip repeats.
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                }
            }
        }
        Index {
            wildcard: wildcard.into_boxed_slice(),
            patterns,
            map: map
                .into_iter()
                .map(|(k, v)| (k, v.into_boxed_slice()))
                .collect(),
        }
    }

    /// Gathers the candidate lists for `env`: the wildcard list plus one lookup per used pattern
    /// (per envelope code for the patterns keyed on a code).
    #[inline]
    fn candidates<'a>(&'a self, env: &Envelope, out: &mut Candidates<'a>) {
        out.push(&self.wildcard);
        if self.patterns == 0 {
            return;
        }
        let hs = str_hash(&env.source);
        let hk = str_hash(&env.kind);
        // Code hashes, computed once (the first CODE_HASHES codes; the others per pattern).
        let mut hc = [0u64; CODE_HASHES];
        if self.patterns & CODE_PATTERNS != 0 {
            for (h, c) in hc.iter_mut().zip(&env.codes) {
                *h = str_hash(&c.code);
            }
        }
        for p in 1..8u8 {
            if self.patterns & (1 << p) == 0 {
                continue;
            }
            if p & BY_CODE == 0 {
                if let Some(list) = self.map.get(&key(p, hs, hk, 0)) {
                    out.push(list);
                }
            } else {
                for (i, c) in env.codes.iter().enumerate() {
                    let h = if i < CODE_HASHES {
                        hc[i]
                    } else {
                        str_hash(&c.code)
                    };
                    if let Some(list) = self.map.get(&key(p, hs, hk, h)) {
                        out.push(list);
                    }
                }
            }
        }
    }
}

/// Up to this many candidate lists are merged on the stack.
const INLINE_LISTS: usize = 16;

/// Candidate lists (each ascending), merged in file order without duplicates.
struct Candidates<'a> {
    lists: [&'a [u32]; INLINE_LISTS],
    len: usize,
    /// Set once there are more lists than fit inline.
    overflow: Option<Vec<u32>>,
}

impl<'a> Candidates<'a> {
    fn new() -> Self {
        Candidates {
            lists: [&[]; INLINE_LISTS],
            len: 0,
            overflow: None,
        }
    }

    #[inline]
    fn push(&mut self, list: &'a [u32]) {
        if list.is_empty() {
            return;
        }
        if let Some(all) = &mut self.overflow {
            all.extend_from_slice(list);
        } else if self.len < INLINE_LISTS {
            self.lists[self.len] = list;
            self.len += 1;
        } else {
            let mut all: Vec<u32> = self.lists.iter().flat_map(|l| l.iter().copied()).collect();
            all.extend_from_slice(list);
            self.overflow = Some(all);
        }
    }

    /// Calls `f` on each candidate in ascending order, once each, until it returns true.
    #[inline]
    fn for_each_until(mut self, mut f: impl FnMut(u32) -> bool) {
        if let Some(mut all) = self.overflow.take() {
            all.sort_unstable();
            all.dedup();
            for i in all {
                if f(i) {
                    return;
                }
            }
            return;
        }
        let lists = &mut self.lists[..self.len];
        if lists.len() == 1 {
            for &i in lists[0] {
                if f(i) {
                    return;
                }
            }
            return;
        }
        loop {
            let mut min = u32::MAX;
            let mut any = false;
            for l in lists.iter() {
                if let Some(&h) = l.first() {
                    any = true;
                    min = min.min(h);
                }
            }
            if !any {
                return;
            }
            for l in lists.iter_mut() {
                if l.first() == Some(&min) {
                    *l = &l[1..];
                }
            }
            if f(min) {
                return;
            }
        }
    }
}
