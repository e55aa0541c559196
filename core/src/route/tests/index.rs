//! The indexed router against a linear scan, on random rule sets and envelopes.

use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SOURCES: &[&str] = &["lab-mllp", "rad-http", "inbox", "s3"];
const KINDS: &[&str] = &["lab-result", "prescription", "imaging-report"];
const STATUSES: &[&str] = &["final", "preliminary", "corrected"];
const TYPES: &[&str] = &["ORU^R01", "MDM^T02"];
const PLUGINS: &[&str] = &["hl7v2-lab", "hprim"];
const LEVELS: &[&str] = &["N", "R", "V"];
const FLAGS: &[&str] = &["MASQUE_PS", "INVISIBLE_PATIENT"];
const SYSTEMS: &[&str] = &["http://loinc.org", "urn:oid:1.2.3"];
const CODES: &[&str] = &["c0", "c1", "c2", "c3", "c4"];
const INS: &[&str] = &["nir", "nir-test"];

fn pick<'a>(r: &mut StdRng, v: &[&'a str]) -> &'a str {
    v[r.random_range(0..v.len())]
}

fn value(r: &mut StdRng, v: &[&str]) -> String {
    if r.random_bool(0.6) {
        format!("{:?}", pick(r, v))
    } else {
        let n = r.random_range(1..=3);
        let items: Vec<String> = (0..n).map(|_| format!("{:?}", pick(r, v))).collect();
        format!("[{}]", items.join(", "))
    }
}

fn code_pattern(r: &mut StdRng) -> String {
    let code = pick(r, CODES);
    match r.random_range(0..3) {
        0 => format!("{}|{code}", pick(r, SYSTEMS)),
        1 => format!("|{code}"),
        _ => code.to_owned(),
    }
}

fn table(r: &mut StdRng, depth: usize) -> String {
    let mut fields = Vec::new();
    let n = r.random_range(0..=3);
    for _ in 0..n {
        let f = match r.random_range(0..11) {
            0 => format!("source = {}", value(r, SOURCES)),
            1 => format!("kind = {}", value(r, KINDS)),
            2 => format!("status = {}", value(r, STATUSES)),
            3 => format!("message_type = {}", value(r, TYPES)),
            4 => format!("plugin = {}", value(r, PLUGINS)),
            5 => format!("confidentiality = {}", value(r, LEVELS)),
            6 => format!("flag = {}", value(r, FLAGS)),
            7 | 8 => {
                let n = r.random_range(1..=3);
                let pats: Vec<String> = (0..n).map(|_| format!("{:?}", code_pattern(r))).collect();
                format!("code = [{}]", pats.join(", "))
            }
            9 => format!("has_ins = {}", r.random_bool(0.5)),
            _ => format!("ins_system = {}", value(r, INS)),
        };
        let key = f.split(' ').next().unwrap_or_default().to_owned();
        if !fields
            .iter()
            .any(|x: &String| x.starts_with(&format!("{key} ")))
        {
            fields.push(f);
        }
    }
    if depth < 3 && r.random_bool(0.35) {
        let n = r.random_range(1..=3);
        let subs: Vec<String> = (0..n).map(|_| table(r, depth + 1)).collect();
        let which = if r.random_bool(0.5) { "all" } else { "any" };
        fields.push(format!("{which} = [{}]", subs.join(", ")));
    }
    if depth < 3 && r.random_bool(0.15) {
        fields.push(format!("not = {}", table(r, depth + 1)));
    }
    format!("{{ {} }}", fields.join(", "))
}

fn rule_set(r: &mut StdRng, n: usize) -> String {
    let mut src = String::new();
    if r.random_bool(0.5) {
        src.push_str("mode = \"first-match\"\n");
    }
    if r.random_bool(0.5) {
        src.push_str("unmatched = \"quarantine\"\n");
    }
    for i in 0..n {
        let k = r.random_range(1..=3);
        let d: Vec<String> = (0..k).map(|_| format!("{:?}", pick(r, DESTS))).collect();
        src.push_str(&format!(
            "[[route]]\nname = \"r{i}\"\ndestinations = [{}]\n",
            d.join(", ")
        ));
        if r.random_bool(0.1) {
            src.push_str("enabled = false\n");
        }
        if r.random_bool(0.9) {
            src.push_str(&format!("match = {}\n", table(r, 0)));
        }
    }
    src
}

fn envelope(r: &mut StdRng) -> Envelope {
    let mut e = env();
    let other = |r: &mut StdRng, v: &[&str]| {
        if r.random_bool(0.1) {
            "zz".to_owned()
        } else {
            pick(r, v).to_owned()
        }
    };
    e.source = other(r, SOURCES);
    e.kind = other(r, KINDS);
    e.status = pick(r, STATUSES).to_owned();
    e.message_type = r.random_bool(0.8).then(|| pick(r, TYPES).to_owned());
    e.plugin.name = pick(r, PLUGINS).to_owned();
    e.confidentiality.level = pick(r, LEVELS).to_owned();
    e.confidentiality.flags = FLAGS
        .iter()
        .filter(|_| r.random_bool(0.3))
        .map(|s| s.to_string())
        .collect();
    e.codes = (0..r.random_range(0..=3))
        .map(|_| coding(pick(r, SYSTEMS), &other(r, CODES)))
        .collect();
    e.patient.ins = match r.random_range(0..3) {
        0 => None,
        1 => Some(Ins {
            system: ins_system::NIR.into(),
            value: "1".into(),
        }),
        _ => Some(Ins {
            system: ins_system::NIR_TEST.into(),
            value: "1".into(),
        }),
    };
    e
}

#[test]
fn indexed_equals_linear_scan() {
    let mut r = StdRng::seed_from_u64(0x5EED_0001);
    let mut matched = 0usize;
    let mut held = 0usize;
    for round in 0..400 {
        let n = r.random_range(0..=40);
        let src = rule_set(&mut r, n);
        let set =
            RuleSet::parse("random.toml", &src, &known()).unwrap_or_else(|e| panic!("{e}\n{src}"));
        for _ in 0..100 {
            let e = envelope(&mut r);
            let (a, b) = (set.route(&e), set.route_linear(&e));
            assert_eq!(a, b, "round {round}\n{src}\n{e:#?}");
            matched += usize::from(a.route.is_some());
            held += usize::from(a.held);
        }
    }
    // The generator must exercise both outcomes.
    assert!(
        matched > 5_000 && held > 1_000,
        "matched {matched}, held {held}"
    );
}

#[test]
fn many_candidate_lists_overflow_correctly() {
    // Rules keyed on code, source+code, kind+code and source+kind+code; an envelope with
    // 30 codes gathers far more than the inline capacity of candidate lists.
    let mut src = String::new();
    for i in 0..30 {
        let m = match i % 4 {
            0 => format!("{{ code = \"c{i}\" }}"),
            1 => format!("{{ source = \"lab-mllp\", code = \"c{i}\" }}"),
            2 => format!(
                "{{ kind = \"lab-result\", code = [\"c{i}\", \"c{}\"] }}",
                (i + 1) % 30
            ),
            _ => {
                format!("{{ source = \"lab-mllp\", kind = \"lab-result\", code = \"x|c{i}\" }}")
            }
        };
        src.push_str(&format!(
            "[[route]]\nname = \"r{i}\"\ndestinations = [\"{}\"]\nmatch = {m}\n",
            DESTS[i % 5]
        ));
    }
    let set = rs(&src);
    let mut e = env();
    e.codes = (0..30)
        .rev()
        .map(|i| coding(if i % 2 == 0 { "x" } else { "y" }, &format!("c{i}")))
        .collect();
    let d = set.route(&e);
    assert_eq!(d, set.route_linear(&e));
    assert_eq!(d.route.as_deref(), Some("r0"));
    assert_eq!(d.destinations.len(), 5);
    let set = rs(&format!("mode = \"first-match\"\n{src}"));
    e.codes
        .retain(|c| c.code != "c0" && c.code != "c1" && c.code != "c2");
    let d = set.route(&e);
    assert_eq!(d, set.route_linear(&e));
    assert_eq!(d.route.as_deref(), Some("r2"), "{d:?}");
}
