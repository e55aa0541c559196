mod hot_reload;
mod index;
mod matching;
mod parsing;

use std::collections::HashSet;
use std::path::Path;

use super::*;
use crate::config::{TomlError, line_col};
use crate::record::{Coding, Confidentiality, Envelope, Ins, Patient, PluginRef, ins_system};

const DESTS: &[&str] = &["dmp", "ehr", "registry", "archive", "quarantine"];

fn known() -> HashSet<String> {
    DESTS.iter().map(|s| s.to_string()).collect()
}

fn rs(src: &str) -> RuleSet {
    RuleSet::parse("routes.toml", src, &known()).unwrap_or_else(|e| panic!("{e}\n{src}"))
}

fn err(src: &str) -> TomlError {
    match RuleSet::parse("routes.toml", src, &known()) {
        Ok(_) => panic!("expected an error for:\n{src}"),
        Err(e) => e,
    }
}

/// 1-based (line, column) of the first occurrence of `needle` in `src`.
fn pos(src: &str, needle: &str) -> (usize, usize) {
    line_col(
        src,
        src.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in source")),
    )
}

fn assert_err_at(src: &str, needle: &str, mentions: &str) -> TomlError {
    let e = err(src);
    assert_eq!(
        (e.line, e.column),
        pos(src, needle),
        "wrong position for {e}"
    );
    assert!(
        e.message.contains(mentions),
        "message {:?} should mention {mentions:?}",
        e.message
    );
    let prefix = format!("routes.toml:{}:{}: ", e.line, e.column);
    assert!(e.to_string().starts_with(&prefix), "{e}");
    e
}

/// A lab result from `lab-mllp`, final, level N, INS NIR, LOINC 2345-7.
fn env() -> Envelope {
    Envelope {
        id: "r1".into(),
        kind: "lab-result".into(),
        source: "lab-mllp".into(),
        source_message_id: "m1".into(),
        position: 0,
        message_type: Some("ORU^R01".into()),
        patient: Patient {
            ins: Some(Ins {
                system: ins_system::NIR.into(),
                value: "279035121518989".into(),
            }),
            local_ids: vec![],
        },
        event_time: None,
        received_at: "2026-11-23T10:15:00Z".into(),
        status: "final".into(),
        confidentiality: Confidentiality {
            level: "N".into(),
            flags: vec![],
        },
        codes: vec![coding("http://loinc.org", "2345-7")],
        plugin: PluginRef {
            name: "hl7v2-lab".into(),
            version: "0.1.0".into(),
        },
    }
}

fn coding(system: &str, code: &str) -> Coding {
    Coding {
        system: system.into(),
        code: code.into(),
        display: None,
    }
}

/// Does a single route with this match table (TOML inline table) match `e`?
fn matches(table: &str, e: &Envelope) -> bool {
    let set = rs(&format!(
        "[[route]]\nname = \"r\"\ndestinations = [\"dmp\"]\nmatch = {table}\n"
    ));
    let d = set.route(e);
    assert_eq!(d, set.route_linear(e));
    d.route.is_some()
}

fn dests(d: &RouteDecision) -> Vec<&str> {
    d.destinations.iter().map(String::as_str).collect()
}

/// `cargo test -p passerelle --release --lib route::tests::bench -- --ignored --nocapture`
///
/// Two shapes of rule sets: "distinct" (every route has its own code, as per-test routing
/// does; the index isolates ~1 candidate) and "shared" (routes only on source and kind: 100
/// keys, so n/100 routes share each key and are all evaluated, and all match in fan-out).
#[test]
#[ignore]
fn bench_route_ns_per_record() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::hint::black_box;
    use std::time::Instant;

    const SOURCES: usize = 20;
    const KINDS: &[&str] = &[
        "lab-result",
        "prescription",
        "imaging-report",
        "clinical-document",
        "allergy",
    ];
    let source_of = |i: usize| format!("src-{}", i % SOURCES);
    let kind_of = |i: usize| KINDS[(i / SOURCES) % KINDS.len()];

    let rules = |n: usize, mode: &str, shared: bool| -> String {
        let mut src = format!("mode = \"{mode}\"\n");
        // Two unindexed routes, evaluated for every record.
        src.push_str("[[route]]\nname = \"masked\"\ndestinations = [\"quarantine\"]\nmatch = { flag = \"MASQUE_PS\" }\n");
        src.push_str("[[route]]\nname = \"no-ins\"\ndestinations = [\"archive\"]\nmatch = { has_ins = false, status = \"final\" }\n");
        for i in 0..n.saturating_sub(2) {
            let (source, kind) = (source_of(i), kind_of(i));
            let m = if shared {
                format!(
                    "{{ source = \"{source}\", kind = \"{kind}\", status = [\"final\", \"corrected\"] }}"
                )
            } else if i % 4 == 0 {
                format!("{{ code = \"|{i}\", status = [\"final\", \"corrected\"] }}")
            } else {
                format!(
                    "{{ source = \"{source}\", kind = \"{kind}\", code = \"http://loinc.org|{i}\", not = {{ confidentiality = \"V\" }} }}"
                )
            };
            src.push_str(&format!(
                "[[route]]\nname = \"r{i}\"\ndestinations = [\"{}\"]\nmatch = {m}\n",
                DESTS[i % 4]
            ));
        }
        src
    };

    let mut r = StdRng::seed_from_u64(7);
    for shared in [false, true] {
        for mode in ["fan-out", "first-match"] {
            for n in [10usize, 1_000, 10_000] {
                let set = rs(&rules(n, mode, shared));
                // Records aimed at a random route (80%) or at its code only.
                let envs: Vec<Envelope> = (0..4096)
                    .map(|_| {
                        let i = r.random_range(0..n.saturating_sub(2).max(1));
                        let mut e = env();
                        let j = if r.random_bool(0.8) {
                            i
                        } else {
                            r.random_range(0..n)
                        };
                        e.source = source_of(j);
                        e.kind = kind_of(j).to_owned();
                        e.codes = vec![
                            coding("http://loinc.org", &i.to_string()),
                            coding("urn:oid:1.2.3", "X"),
                        ];
                        if r.random_bool(0.05) {
                            e.patient.ins = None;
                        }
                        e
                    })
                    .collect();
                let iters = 400_000;
                let mut dests = 0usize;
                let t = Instant::now();
                for i in 0..iters {
                    dests += set
                        .route(black_box(&envs[i % envs.len()]))
                        .destinations
                        .len();
                }
                let indexed = t.elapsed().as_nanos() as f64 / iters as f64;
                let lin_iters = if n > 1000 { 2_000 } else { 20_000 };
                let t = Instant::now();
                for i in 0..lin_iters {
                    black_box(set.route_linear(black_box(&envs[i % envs.len()])));
                }
                let linear = t.elapsed().as_nanos() as f64 / lin_iters as f64;
                println!(
                    "{:8} {mode:11} {n:>6} rules: {indexed:7.1} ns/record indexed, {linear:9.1} linear scan, {:.2} dest/record",
                    if shared { "shared" } else { "distinct" },
                    dests as f64 / iters as f64
                );
            }
        }
    }
}
