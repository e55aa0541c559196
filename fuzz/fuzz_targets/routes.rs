//! The routes file: `RuleSet::parse` on arbitrary text, and when it compiles, routing a few
//! envelopes built from the file's own words must agree with itself (fan-out decisions are
//! deterministic, and a decision is either held, or has a route or an unmatched destination).
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use passerelle::record::{Coding, Confidentiality, Envelope, Patient, PluginRef};
use passerelle::route::{RuleSet, Unmatched};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    // The route docs' names, config/routes.toml's and fuzz/seeds/routes'.
    let known: HashSet<String> = [
        "dmp",
        "ehr",
        "registry",
        "archive",
        "quarantine",
        "dmp-file",
        "held-file",
        "diabetes-registry",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let rules = match RuleSet::parse("routes.toml", src, &known) {
        Ok(rules) => rules,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    // Quoted words of the file are the likeliest values to match something.
    let words: Vec<&str> = src.split('"').skip(1).step_by(2).take(16).collect();
    for (i, w) in words.iter().enumerate() {
        let env = envelope(w, words.get(i + 1).copied().unwrap_or("lab-result"));
        let d = rules.route(&env);
        assert_eq!(d, rules.route(&env), "routing is deterministic");
        match (&d.route, rules.unmatched()) {
            (Some(_), _) => assert!(!d.held && !d.destinations.is_empty()),
            (None, Unmatched::Hold) => assert!(d.held && d.destinations.is_empty()),
            (None, Unmatched::Destination(x)) => assert_eq!(d.destinations, vec![x.clone()]),
        }
        let unique: HashSet<&String> = d.destinations.iter().collect();
        assert_eq!(
            unique.len(),
            d.destinations.len(),
            "destinations are deduplicated"
        );
    }
});

fn envelope(a: &str, b: &str) -> Envelope {
    Envelope {
        id: "r1".into(),
        kind: b.into(),
        source: a.into(),
        source_message_id: "m1".into(),
        position: 0,
        message_type: Some(a.into()),
        patient: Patient {
            ins: None,
            local_ids: vec![],
        },
        event_time: None,
        received_at: "2026-11-23T10:15:00Z".into(),
        status: b.into(),
        confidentiality: Confidentiality {
            level: "N".into(),
            flags: vec![a.into()],
        },
        codes: vec![Coding {
            system: "http://loinc.org".into(),
            code: b.into(),
            display: None,
        }],
        plugin: PluginRef {
            name: a.into(),
            version: "0.1.0".into(),
        },
    }
}
