//! Property tests of routing against an independent model: random routes files (nested
//! `all`/`any`/`not`, disabled routes, both modes, both `unmatched` settings) and random
//! envelopes; the model evaluates the generated match trees itself, so these check the
//! parser, the compiled conditions, the index and the decision together.

use std::collections::HashSet;

use proptest::prelude::*;

use super::{RouteDecision, RuleSet};
use crate::record::{Coding, Confidentiality, Envelope, Ins, Patient, PluginRef, ins_system};

const DESTS: &[&str] = &["dmp", "ehr", "registry", "archive"];
const SOURCES: &[&str] = &["lab", "rad", "pharma"];
const KINDS: &[&str] = &["lab-result", "prescription", "imaging-report"];
const STATUSES: &[&str] = &["final", "preliminary", "corrected"];
const FLAGS: &[&str] = &["MASQUE_PS", "INVISIBLE_PATIENT"];
const SYSTEMS: &[&str] = &["http://loinc.org", "urn:oid:1.2.3"];
const CODES: &[&str] = &["1-1", "2-2", "3-3"];

/// One condition of a match table.
#[derive(Debug, Clone)]
enum M {
    Source(Vec<&'static str>),
    Kind(Vec<&'static str>),
    Status(Vec<&'static str>),
    Flag(Vec<&'static str>),
    /// (system or any, code)
    Code(Vec<(Option<&'static str>, &'static str)>),
    HasIns(bool),
    All(Vec<Table>),
    Any(Vec<Table>),
    Not(Box<Table>),
}

/// A match table: all its conditions hold. Rendered with one condition per key (the first).
type Table = Vec<M>;

impl M {
    fn key(&self) -> &'static str {
        match self {
            M::Source(_) => "source",
            M::Kind(_) => "kind",
            M::Status(_) => "status",
            M::Flag(_) => "flag",
            M::Code(_) => "code",
            M::HasIns(_) => "has_ins",
            M::All(_) => "all",
            M::Any(_) => "any",
            M::Not(_) => "not",
        }
    }

    fn toml(&self) -> String {
        let list = |v: &[&str]| {
            let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", items.join(", "))
        };
        let tables = |ts: &[Table]| {
            let items: Vec<String> = ts.iter().map(render).collect();
            format!("[{}]", items.join(", "))
        };
        let value = match self {
            M::Source(v) | M::Kind(v) | M::Status(v) | M::Flag(v) => list(v),
            M::Code(v) => {
                let pats: Vec<String> = v
                    .iter()
                    .map(|(s, c)| s.map_or_else(|| c.to_string(), |s| format!("{s}|{c}")))
                    .collect();
                let pats: Vec<&str> = pats.iter().map(String::as_str).collect();
                list(&pats)
            }
            M::HasIns(b) => b.to_string(),
            M::All(ts) | M::Any(ts) => tables(ts),
            M::Not(t) => render(t),
        };
        format!("{} = {value}", self.key())
    }

    fn eval(&self, e: &Envelope) -> bool {
        match self {
            M::Source(v) => v.contains(&e.source.as_str()),
            M::Kind(v) => v.contains(&e.kind.as_str()),
            M::Status(v) => v.contains(&e.status.as_str()),
            M::Flag(v) => e
                .confidentiality
                .flags
                .iter()
                .any(|f| v.contains(&f.as_str())),
            M::Code(v) => e.codes.iter().any(|c| {
                v.iter()
                    .any(|(s, code)| *code == c.code && s.is_none_or(|s| s == c.system))
            }),
            M::HasIns(b) => e.patient.ins.is_some() == *b,
            M::All(ts) => ts.iter().all(|t| eval(t, e)),
            M::Any(ts) => ts.iter().any(|t| eval(t, e)),
            M::Not(t) => !eval(t, e),
        }
    }
}

/// The conditions of a table as written: TOML keys are unique, so later repeats are dropped.
fn dedup(t: &Table) -> Vec<&M> {
    let mut seen = HashSet::new();
    t.iter().filter(|m| seen.insert(m.key())).collect()
}

fn render(t: &Table) -> String {
    let parts: Vec<String> = dedup(t).iter().map(|m| m.toml()).collect();
    format!("{{ {} }}", parts.join(", "))
}

fn eval(t: &Table, e: &Envelope) -> bool {
    dedup(t).iter().all(|m| m.eval(e))
}

#[derive(Debug, Clone)]
struct Route {
    dests: Vec<&'static str>,
    enabled: bool,
    matcher: Option<Table>,
}

#[derive(Debug, Clone)]
struct File {
    first_match: bool,
    /// `None`: hold (default or written); `Some(d)`: a destination.
    unmatched: Option<&'static str>,
    write_hold: bool,
    routes: Vec<Route>,
}

impl File {
    /// The routes file; route `i` is named `r{i}` whatever its position.
    fn toml(&self, order: &[usize]) -> String {
        let mut s = String::new();
        if self.first_match {
            s.push_str("mode = \"first-match\"\n");
        }
        match (self.unmatched, self.write_hold) {
            (Some(d), _) => s.push_str(&format!("unmatched = {d:?}\n")),
            (None, true) => s.push_str("unmatched = \"hold\"\n"),
            (None, false) => {}
        }
        for &i in order {
            let r = &self.routes[i];
            s.push_str(&format!(
                "\n[[route]]\nname = \"r{i}\"\ndestinations = {:?}\n",
                r.dests
            ));
            if !r.enabled {
                s.push_str("enabled = false\n");
            }
            if let Some(t) = &r.matcher {
                s.push_str(&format!("match = {}\n", render(t)));
            }
        }
        s
    }

    fn parse(&self, order: &[usize]) -> RuleSet {
        let src = self.toml(order);
        let known: HashSet<String> = DESTS.iter().map(|d| d.to_string()).collect();
        RuleSet::parse("prop.toml", &src, &known).unwrap_or_else(|e| panic!("{e}\n{src}"))
    }

    /// Indexes of the enabled routes matching `e`, in `order`.
    fn matching(&self, order: &[usize], e: &Envelope) -> Vec<usize> {
        order
            .iter()
            .copied()
            .filter(|&i| {
                let r = &self.routes[i];
                r.enabled && r.matcher.as_ref().is_none_or(|t| eval(t, e))
            })
            .collect()
    }

    /// The documented decision, from the model.
    fn expected(&self, order: &[usize], e: &Envelope) -> RouteDecision {
        let mut hits = self.matching(order, e);
        if self.first_match {
            hits.truncate(1);
        }
        let mut destinations: Vec<String> = Vec::new();
        for &i in &hits {
            for d in &self.routes[i].dests {
                if !destinations.iter().any(|x| x == d) {
                    destinations.push(d.to_string());
                }
            }
        }
        let held = hits.is_empty() && self.unmatched.is_none();
        if hits.is_empty()
            && let Some(d) = self.unmatched
        {
            destinations.push(d.to_string());
        }
        RouteDecision {
            route: hits.first().map(|i| format!("r{i}")),
            destinations,
            held,
        }
    }
}

fn some_of(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    prop::sample::subsequence(pool, 1..=pool.len())
}

fn condition() -> impl Strategy<Value = M> {
    let code = (
        prop::option::of(prop::sample::select(SYSTEMS)),
        prop::sample::select(CODES),
    );
    let leaf = prop_oneof![
        some_of(SOURCES).prop_map(M::Source),
        some_of(KINDS).prop_map(M::Kind),
        some_of(STATUSES).prop_map(M::Status),
        some_of(FLAGS).prop_map(M::Flag),
        prop::collection::vec(code, 1..4).prop_map(M::Code),
        any::<bool>().prop_map(M::HasIns),
    ];
    leaf.prop_recursive(3, 24, 3, |inner| {
        let table = prop::collection::vec(inner, 1..4);
        prop_oneof![
            prop::collection::vec(table.clone(), 1..3).prop_map(M::All),
            prop::collection::vec(table.clone(), 1..3).prop_map(M::Any),
            table.prop_map(|t| M::Not(Box::new(t))),
        ]
    })
}

fn table() -> impl Strategy<Value = Table> {
    prop::collection::vec(condition(), 1..4)
}

fn file() -> impl Strategy<Value = File> {
    let route = (
        some_of(DESTS).prop_shuffle(),
        prop::bool::weighted(0.85),
        prop::option::weighted(0.85, table()),
    )
        .prop_map(|(dests, enabled, matcher)| Route {
            dests,
            enabled,
            matcher,
        });
    (
        any::<bool>(),
        prop::option::of(prop::sample::select(DESTS)),
        any::<bool>(),
        prop::collection::vec(route, 0..8),
    )
        .prop_map(|(first_match, unmatched, write_hold, routes)| File {
            first_match,
            unmatched,
            write_hold,
            routes,
        })
}

fn envelope() -> impl Strategy<Value = Envelope> {
    let coding =
        (prop::sample::select(SYSTEMS), prop::sample::select(CODES)).prop_map(|(s, c)| Coding {
            system: s.into(),
            code: c.into(),
            display: None,
        });
    (
        prop::sample::select(SOURCES),
        prop::sample::select(KINDS),
        prop::sample::select(STATUSES),
        prop::sample::subsequence(FLAGS, 0..=FLAGS.len()),
        prop::collection::vec(coding, 0..4),
        any::<bool>(),
    )
        .prop_map(|(source, kind, status, flags, codes, ins)| Envelope {
            id: "r1".into(),
            kind: kind.into(),
            source: source.into(),
            source_message_id: "m1".into(),
            position: 0,
            message_type: Some("ORU^R01".into()),
            patient: Patient {
                ins: ins.then(|| Ins {
                    system: ins_system::NIR.into(),
                    value: "279035121518989".into(),
                }),
                local_ids: vec![],
            },
            event_time: None,
            received_at: "2026-11-23T10:15:00Z".into(),
            status: status.into(),
            confidentiality: Confidentiality {
                level: "N".into(),
                flags: flags.into_iter().map(String::from).collect(),
            },
            codes,
            plugin: PluginRef {
                name: "hl7v2-lab".into(),
                version: "0.1.0".into(),
            },
        })
}

fn file_order(f: &File) -> Vec<usize> {
    (0..f.routes.len()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// The decision is the model's: in fan-out the first matching route and the deduplicated
    /// union of the destinations of every matching enabled route in file order; in first-match
    /// only the first matching route's; held (no destination) iff nothing matched and
    /// `unmatched` is hold; exactly the `unmatched` destination iff nothing matched otherwise.
    #[test]
    fn decision_is_the_models(f in file(), envs in prop::collection::vec(envelope(), 1..6)) {
        let order = file_order(&f);
        let set = f.parse(&order);
        for e in &envs {
            let d = set.route(e);
            prop_assert_eq!(&d, &set.route_linear(e), "index and linear scan agree");
            prop_assert_eq!(&d, &f.expected(&order, e), "{}", f.toml(&order));
            prop_assert!(d.held != (d.route.is_some() || !d.destinations.is_empty()));
            if f.first_match && let Some(r) = &d.route {
                // One route: its own destinations, nothing more.
                let i: usize = r[1..].parse().unwrap_or(usize::MAX);
                prop_assert_eq!(d.destinations.len(), f.routes[i].dests.len());
            }
        }
    }

    /// In fan-out, the order of the routes in the file changes the order of the destinations
    /// (and which route is named first), never the set of destinations or whether it is held.
    #[test]
    fn fan_out_ignores_route_order(
        f in file().prop_map(|f| File { first_match: false, ..f }),
        shuffle in any::<prop::sample::Index>(),
        envs in prop::collection::vec(envelope(), 1..6),
    ) {
        let order = file_order(&f);
        let mut reversed = order.clone();
        reversed.reverse();
        let mut rotated = order.clone();
        if !rotated.is_empty() {
            let k = shuffle.index(rotated.len());
            rotated.rotate_left(k);
        }
        let (a, b, c) = (f.parse(&order), f.parse(&reversed), f.parse(&rotated));
        for e in &envs {
            let da = a.route(e);
            for other in [b.route(e), c.route(e)] {
                let set = |d: &RouteDecision| d.destinations.iter().cloned().collect::<HashSet<_>>();
                prop_assert_eq!(set(&da), set(&other));
                prop_assert_eq!(da.held, other.held);
                prop_assert_eq!(da.route.is_some(), other.route.is_some());
            }
        }
    }

    /// `not = T` matches exactly the envelopes `T` does not; `all = [T]` and `any = [T]` match
    /// exactly like `T`.
    #[test]
    fn not_inverts_and_singletons_are_neutral(t in table(), envs in prop::collection::vec(envelope(), 1..8)) {
        let one = |m: String| File {
            first_match: false,
            unmatched: None,
            write_hold: false,
            routes: vec![Route { dests: vec!["dmp"], enabled: true, matcher: None }],
        }
        .toml(&[0])
            + &format!("match = {m}\n");
        let known: HashSet<String> = DESTS.iter().map(|d| d.to_string()).collect();
        let compile = |src: String| RuleSet::parse("prop.toml", &src, &known).unwrap_or_else(|e| panic!("{e}\n{src}"));
        let plain = compile(one(render(&t)));
        let not = compile(one(format!("{{ not = {} }}", render(&t))));
        let all = compile(one(format!("{{ all = [{}] }}", render(&t))));
        let any = compile(one(format!("{{ any = [{}] }}", render(&t))));
        for e in &envs {
            let hit = plain.route(e).route.is_some();
            prop_assert_eq!(hit, eval(&t, e));
            prop_assert_eq!(not.route(e).route.is_some(), !hit);
            prop_assert_eq!(all.route(e).route.is_some(), hit);
            prop_assert_eq!(any.route(e).route.is_some(), hit);
        }
    }
}
