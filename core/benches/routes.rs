//! `RuleSet::route` of one lab-result envelope against 10, 1,000 and 10,000 routes.
//!
//! The rule sets are what a large installation would write: routes keyed on distinct LOINC
//! codes, on sources, on kinds, on combinations, with extra conditions (status, INS, flags),
//! and a few unkeyed (wildcard) routes. The record matches a handful of them. A second group
//! makes 1 % of the routes wildcards, to show what the index cannot skip.
//!
//! Run: `cargo bench -p passerelle --bench routes`. See docs/benchmarks.md.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use passerelle::record::{Coding, Confidentiality, Envelope, Identifier, Ins, Patient, PluginRef};
use passerelle::route::RuleSet;

const DESTINATIONS: usize = 20;

/// A routes file of `n` routes, `wildcards` of them unkeyed.
fn routes_file(n: usize, wildcards: usize) -> String {
    let mut s = String::from("mode = \"fan-out\"\nunmatched = \"hold\"\n\n");
    let route = |s: &mut String, name: String, dests: &[usize], matcher: &str| {
        let dests: Vec<String> = dests.iter().map(|d| format!("\"d{d}\"")).collect();
        let _ = writeln!(
            s,
            "[[route]]\nname = \"{name}\"\ndestinations = [{}]",
            dests.join(", ")
        );
        if !matcher.is_empty() {
            let _ = writeln!(s, "match = {{ {matcher} }}");
        }
        s.push('\n');
    };
    // Routes the record matches (2) and a few that look at it but do not match (wildcards).
    route(
        &mut s,
        "lab-to-dmp".into(),
        &[0],
        r#"source = "lab-mllp", kind = "lab-result", ins_system = ["nir", "nia"]"#,
    );
    route(
        &mut s,
        "hemoglobin".into(),
        &[1],
        r#"code = "http://loinc.org|718-7", status = ["final", "corrected"]"#,
    );
    let fixed_wildcards = [
        r#"confidentiality = "V""#,
        r#"has_ins = false, status = "final""#,
        r#"any = [{ flag = "MASQUE_PS" }, { ins_system = ["nir-test", "nir-demo"] }]"#,
        r#"message_type = "ADT^A08", not = { confidentiality = "N" }"#,
    ];
    let mut added = 2;
    for (k, w) in fixed_wildcards.iter().enumerate().take(wildcards.min(4)) {
        if added >= n {
            break;
        }
        route(&mut s, format!("wildcard-{k}"), &[2 + k], w);
        added += 1;
    }
    let mut extra_wildcards = wildcards.saturating_sub(4);
    let mut i = 0usize;
    while added < n {
        let d = [(i % DESTINATIONS), ((i * 7 + 3) % DESTINATIONS)];
        let name = format!("r{i}");
        if extra_wildcards > 0 && i.is_multiple_of((n / wildcards.max(1)).max(1)) {
            // Unkeyed: conditions on status / plugin / confidentiality only.
            route(
                &mut s,
                name,
                &d,
                &format!(r#"plugin = "plugin-{i}", status = ["final", "preliminary"]"#),
            );
            extra_wildcards -= 1;
        } else {
            let m = match i % 10 {
                0..=5 => format!(
                    r#"code = ["http://loinc.org|{}-{}", "LOC{i}"], status = "final""#,
                    10_000 + i,
                    i % 10
                ),
                6 | 7 => format!(r#"source = "src-{i}", not = {{ flag = "MASQUE_PS" }}"#),
                8 => format!(r#"kind = "kind-{i}", has_ins = true"#),
                _ => format!(
                    r#"source = ["src-{i}", "lab-mllp"], kind = "kind-{i}", code = "|{}-1""#,
                    20_000 + i
                ),
            };
            route(&mut s, name, &d, &m);
        }
        added += 1;
        i += 1;
    }
    s
}

fn envelope() -> Envelope {
    let codes = ["718-7", "6690-2", "789-8", "4544-3", "777-3"]
        .iter()
        .map(|c| Coding {
            system: "http://loinc.org".into(),
            code: (*c).into(),
            display: None,
        })
        .collect();
    Envelope {
        id: "3f2a9c0d5e6b7a8190a1b2c3d4e5f607".into(),
        kind: "lab-result".into(),
        source: "lab-mllp".into(),
        source_message_id: "MSG0001".into(),
        position: 0,
        message_type: Some("ORU^R01".into()),
        patient: Patient {
            ins: Some(Ins {
                system: "urn:oid:1.2.250.1.213.1.4.8".into(),
                value: "279035121518989".into(),
            }),
            local_ids: vec![Identifier {
                system: "urn:oid:1.2.250.1.71.4.2.7".into(),
                value: "IPP42".into(),
            }],
        },
        event_time: Some("2024-01-31T12:00:00+01:00".into()),
        received_at: "2026-01-31T11:30:00.000Z".into(),
        status: "final".into(),
        confidentiality: Confidentiality {
            level: "N".into(),
            flags: vec![],
        },
        codes,
        plugin: PluginRef {
            name: "hl7v2-lab".into(),
            version: "0.1.0".into(),
        },
    }
}

fn bench_routes(c: &mut Criterion) {
    let known: HashSet<String> = (0..DESTINATIONS).map(|d| format!("d{d}")).collect();
    let env = envelope();
    for (group_name, wildcard_share) in [
        ("route/few-wildcards", None),
        ("route/1pct-wildcards", Some(100)),
    ] {
        let mut group = c.benchmark_group(group_name);
        group.measurement_time(Duration::from_secs(3));
        for n in [10usize, 1_000, 10_000] {
            let wildcards = match wildcard_share {
                None => 4,
                Some(per) => (n / per).max(4),
            };
            if wildcard_share.is_some() && n == 10 {
                continue;
            }
            let src = routes_file(n, wildcards);
            let set =
                RuleSet::parse("bench-routes.toml", &src, &known).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(set.route_count(), n);
            let decision = set.route(&env);
            assert!(
                decision.destinations.len() >= 2,
                "the record matches at least 2 routes: {decision:?}"
            );
            group.bench_with_input(BenchmarkId::from_parameter(n), &set, |b, set| {
                b.iter(|| black_box(set.route(black_box(&env))))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_routes);
criterion_main!(benches);
