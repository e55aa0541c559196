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

mod parsing {
    use super::*;

    #[test]
    fn example_file_in_config_is_valid() {
        // The destinations of config/passerelle.toml.
        let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        let config = crate::config::Config::load(&config_dir.join("passerelle.toml"), None)
            .unwrap_or_else(|e| panic!("{e}"));
        let known: HashSet<String> = config.destinations.keys().cloned().collect();
        let set = RuleSet::load(&config.routes, &known).unwrap_or_else(|e| panic!("{e}"));
        // Every route but the disabled example is in force.
        assert_eq!(set.route_count() + 1, set.total_routes());
        assert_eq!(set.mode(), Mode::FanOut);
        assert_eq!(*set.unmatched(), Unmatched::Destination("held-file".into()));
        let d = set.route(&env());
        assert_eq!(d.route.as_deref(), Some("lab-results-to-dmp"));
        // Lab results of a production INS go to the DMP export and the shared record.
        assert_eq!(dests(&d), ["dmp-file", "shared-record"]);
        let mut e = env();
        e.patient.ins = None;
        assert_eq!(dests(&set.route(&e)), ["held-file"]);
    }

    #[test]
    fn every_feature_parses() {
        let src = r#"
mode = "first-match"
unmatched = "quarantine"

[[route]]
name = "a"
destinations = ["dmp", "ehr", "dmp"]
enabled = true
[route.match]
source = "lab-mllp"
kind = ["lab-result", "imaging-report"]
status = ["final", "corrected", "entered-in-error"]
message_type = "ORU^R01"
plugin = ["hl7v2-lab"]
confidentiality = ["N", "R"]
has_ins = true
ins_system = ["nir", "urn:oid:1.2.250.1.213.1.4.9"]
code = ["http://loinc.org|2345-7", "|718-7", "789-8"]
all = [{ status = "final" }, { any = [{ kind = "x" }, { not = { source = "y" } }] }]
not = { flag = ["MASQUE_PS", "INVISIBLE_PATIENT"] }

[[route.match.any]]
source = "lab-mllp"
[[route.match.any]]
kind = "lab-result"

[[route]]
name = "disabled"
destinations = ["archive"]
enabled = false

[[route]]
name = "everything"
destinations = ["archive"]
match = {}
"#;
        let set = rs(src);
        assert_eq!(set.mode(), Mode::FirstMatch);
        assert_eq!(
            *set.unmatched(),
            Unmatched::Destination("quarantine".into())
        );
        assert_eq!(set.route_count(), 2);
        assert_eq!(set.total_routes(), 3);
        assert_eq!(set.route_names().collect::<Vec<_>>(), ["a", "everything"]);
        let d = set.route(&env());
        assert_eq!(d.route.as_deref(), Some("a"));
        assert_eq!(
            dests(&d),
            ["dmp", "ehr"],
            "first-match, destinations deduplicated"
        );
        assert!(!d.held);
    }

    #[test]
    fn defaults() {
        let set = rs("");
        assert_eq!(set.mode(), Mode::FanOut);
        assert_eq!(*set.unmatched(), Unmatched::Hold);
        assert_eq!(set.route_count(), 0);
        let d = set.route(&env());
        assert_eq!(
            d,
            RouteDecision {
                route: None,
                destinations: vec![],
                held: true
            }
        );
        // A route without `match` matches everything.
        let set = rs("[[route]]\nname = \"all\"\ndestinations = [\"ehr\"]\n");
        assert_eq!(dests(&set.route(&env())), ["ehr"]);
    }

    #[test]
    fn version_is_content_addressed() {
        use sha2::{Digest, Sha256};
        let src = "mode = \"fan-out\"\n";
        let a = rs(src);
        let b = rs(src);
        assert_eq!(a.version(), b.version());
        assert_eq!(
            a.version(),
            &hex::encode(Sha256::digest(src.as_bytes()))[..12]
        );
        assert_ne!(rs("mode = \"first-match\"\n").version(), a.version());
        assert!(a.loaded_at() <= std::time::SystemTime::now());
    }

    #[test]
    fn unknown_mode() {
        let src = "# routes\nmode = \"broadcast\"\n";
        let e = assert_err_at(src, "\"broadcast\"", "broadcast");
        assert_eq!((e.line, e.column), (2, 8));
        assert!(
            e.message.contains("fan-out") && e.message.contains("first-match"),
            "{}",
            e.message
        );
    }

    #[test]
    fn unknown_keys() {
        let e = assert_err_at("mode = \"fan-out\"\nmodes = 1\n", "modes", "modes");
        assert_eq!((e.line, e.column), (2, 1));
        assert!(
            e.message.contains("unmatched"),
            "lists the expected keys: {}",
            e.message
        );

        let src = "[[route]]\nname = \"a\"\ndestinations = [\"dmp\"]\ndestination = \"ehr\"\n";
        assert_err_at(src, "destination =", "destination");

        let src = "[[route]]\nname = \"a\"\ndestinations = [\"dmp\"]\n[route.match]\nsource = \"x\"\nsauce = \"y\"\n";
        let e = assert_err_at(src, "sauce", "sauce");
        assert_eq!((e.line, e.column), (6, 1));

        let src = "[[route]]\nname = \"a\"\ndestinations = [\"dmp\"]\nmatch = { any = [{ kind = \"x\" }, { knid = \"y\" }] }\n";
        assert_err_at(src, "knid", "knid");
    }

    #[test]
    fn wrong_types() {
        let src = "[[route]]\nname = \"a\"\ndestinations = [\"dmp\"]\nmatch = { source = 3 }\n";
        assert_err_at(src, "3 }", "a string or a list of strings");
        let src =
            "[[route]]\nname = \"a\"\ndestinations = [\"dmp\"]\nmatch = { has_ins = \"yes\" }\n";
        assert_err_at(src, "\"yes\"", "bool");
        let src = "[[route]]\nname = \"a\"\ndestinations = \"dmp\"\n";
        assert_err_at(src, "\"dmp\"", "sequence");
    }

    #[test]
    fn duplicate_route_name() {
        let src = "[[route]]\nname = \"a\"\ndestinations = [\"dmp\"]\n\n[[route]]\nname = \"b\"\ndestinations = [\"dmp\"]\n\n[[route]]\nname = \"a\"\ndestinations = [\"ehr\"]\n";
        let e = err(src);
        assert_eq!((e.line, e.column), (10, 8));
        assert!(
            e.message.contains("duplicate route name `a`") && e.message.contains("line 2"),
            "{}",
            e.message
        );
    }

    #[test]
    fn unknown_destination() {
        let src = "[[route]]\nname = \"a\"\ndestinations = [\"dmp\", \"nowhere\"]\n";
        let e = assert_err_at(src, "\"nowhere\"", "unknown destination `nowhere`");
        assert_eq!((e.line, e.column), (3, 24));
        assert!(
            e.message
                .contains("archive, dmp, ehr, quarantine, registry"),
            "{}",
            e.message
        );
        // Checked on disabled routes too.
        let src = "[[route]]\nname = \"a\"\nenabled = false\ndestinations = [\"nowhere\"]\n";
        assert_err_at(src, "\"nowhere\"", "nowhere");
        // And for `unmatched`.
        let e = assert_err_at("unmatched = \"nowhere\"\n", "\"nowhere\"", "nowhere");
        assert!(e.message.contains("hold"), "{}", e.message);
    }

    #[test]
    fn empty_destinations() {
        let src = "[[route]]\nname = \"a\"\ndestinations = []\n";
        let e = assert_err_at(src, "[]", "at least one destination");
        assert_eq!((e.line, e.column), (3, 16));
    }

    #[test]
    fn missing_required_keys() {
        let e = err("[[route]]\ndestinations = [\"dmp\"]\n");
        assert!(e.message.contains("missing field `name`"), "{}", e.message);
        assert_eq!(e.line, 1, "{e}");
        let e = err("[[route]]\nname = \"a\"\n");
        assert!(
            e.message.contains("missing field `destinations`"),
            "{}",
            e.message
        );
        assert_eq!(e.line, 1, "{e}");
        assert_err_at(
            "[[route]]\nname = \" \"\ndestinations = [\"dmp\"]\n",
            "\" \"",
            "non-empty route name",
        );
    }

    #[test]
    fn bad_values() {
        let route = "[[route]]\nname = \"a\"\ndestinations = [\"dmp\"]\n[route.match]\n";
        let cases: &[(&str, &str, &str)] = &[
            (
                "status = [\"final\", \"finale\"]\n",
                "\"finale\"",
                "unknown status `finale`",
            ),
            (
                "confidentiality = \"X\"\n",
                "\"X\"",
                "expected one of: N, R, V",
            ),
            ("flag = \"MASKED\"\n", "\"MASKED\"", "MASQUE_PS"),
            (
                "ins_system = \"urn:oid:1.2.3\"\n",
                "\"urn:oid:1.2.3\"",
                "nir-test",
            ),
            (
                "code = [\"http://loinc.org|\"]\n",
                "\"http://loinc.org|\"",
                "system|code",
            ),
            ("code = \"a|b|c\"\n", "\"a|b|c\"", "invalid code"),
            ("source = []\n", "[]", "non-empty list"),
            ("kind = [\"x\", \"\"]\n", "\"\"", "non-empty string"),
            ("any = []\n", "[]", "non-empty list of match tables"),
            ("all = []\n", "[]", "non-empty list of match tables"),
        ];
        for (body, needle, mentions) in cases {
            let src = format!("{route}{body}");
            let e = err(&src);
            let at = src.rfind(needle).unwrap_or(0);
            assert_eq!((e.line, e.column), line_col(&src, at), "{body}: {e}");
            assert!(e.message.contains(mentions), "{body}: {e}");
        }
    }

    #[test]
    fn too_deep() {
        let mut table = String::from("{}");
        for _ in 0..40 {
            table = format!("{{ not = {table} }}");
        }
        let e = err(&format!(
            "[[route]]\nname = \"a\"\ndestinations = [\"dmp\"]\nmatch = {table}\n"
        ));
        assert!(e.message.contains("nested too deeply"), "{e}");
        assert_eq!(e.line, 4);
    }
}

mod matching {
    use super::*;

    #[test]
    fn string_and_list_values() {
        let e = env();
        assert!(matches("{ source = \"lab-mllp\" }", &e));
        assert!(!matches("{ source = \"other\" }", &e));
        assert!(matches("{ source = [\"other\", \"lab-mllp\"] }", &e));
        assert!(!matches("{ source = [\"other\", \"more\"] }", &e));
        assert!(matches(
            "{ kind = \"lab-result\", status = \"final\", plugin = \"hl7v2-lab\" }",
            &e
        ));
        assert!(
            !matches("{ kind = \"lab-result\", status = \"corrected\" }", &e),
            "all fields must hold"
        );
        assert!(matches("{ message_type = [\"ORU^R01\", \"ORM^O01\"] }", &e));
        let mut no_type = env();
        no_type.message_type = None;
        assert!(!matches("{ message_type = \"ORU^R01\" }", &no_type));
        assert!(matches(
            "{ not = { message_type = \"ORU^R01\" } }",
            &no_type
        ));
        assert!(matches("{ confidentiality = \"N\" }", &e));
        assert!(!matches("{ confidentiality = [\"R\", \"V\"] }", &e));
        // Many values (hash-set representation).
        let many: Vec<String> = (0..20).map(|i| format!("\"s{i}\"")).collect();
        assert!(!matches(
            &format!("{{ source = [{}] }}", many.join(", ")),
            &e
        ));
        assert!(matches(
            &format!("{{ source = [{}, \"lab-mllp\"] }}", many.join(", ")),
            &e
        ));
    }

    #[test]
    fn combinators_nest() {
        let e = env();
        assert!(matches(
            "{ all = [{ source = \"lab-mllp\" }, { kind = \"lab-result\" }] }",
            &e
        ));
        assert!(!matches(
            "{ all = [{ source = \"lab-mllp\" }, { kind = \"prescription\" }] }",
            &e
        ));
        assert!(matches(
            "{ any = [{ source = \"x\" }, { kind = \"lab-result\" }] }",
            &e
        ));
        assert!(!matches(
            "{ any = [{ source = \"x\" }, { kind = \"y\" }] }",
            &e
        ));
        assert!(matches("{ not = { source = \"x\" } }", &e));
        assert!(!matches("{ not = { source = \"lab-mllp\" } }", &e));
        assert!(matches(
            "{ any = [{ not = { any = [{ source = \"x\" }, { kind = \"y\" }] } }] }",
            &e
        ));
        assert!(!matches(
            "{ source = \"lab-mllp\", any = [{ all = [{ status = \"final\" }, { not = { has_ins = true } }] }, { kind = \"z\" }] }",
            &e
        ));
        assert!(
            matches("{ any = [{}, { source = \"x\" }] }", &e),
            "an empty table matches everything"
        );
        assert!(!matches("{ not = {} }", &e));
    }

    #[test]
    fn codes_with_and_without_system() {
        let mut e = env();
        e.codes = vec![
            coding("urn:oid:1.2.3", "X1"),
            coding("http://loinc.org", "2345-7"),
        ];
        assert!(matches("{ code = \"http://loinc.org|2345-7\" }", &e));
        assert!(
            !matches("{ code = \"http://snomed.info/sct|2345-7\" }", &e),
            "system must match"
        );
        assert!(matches("{ code = \"|2345-7\" }", &e), "any system");
        assert!(matches("{ code = \"2345-7\" }", &e), "any system");
        assert!(!matches("{ code = \"2345\" }", &e));
        assert!(matches("{ code = [\"nope\", \"urn:oid:1.2.3|X1\"] }", &e));
        let many: Vec<String> = (0..20)
            .map(|i| format!("\"http://loinc.org|{i}\""))
            .collect();
        assert!(!matches(&format!("{{ code = [{}] }}", many.join(", ")), &e));
        assert!(matches(
            &format!("{{ code = [{}, \"|X1\"] }}", many.join(", ")),
            &e
        ));
        assert!(!matches(
            &format!("{{ code = [{}, \"http://x|X1\"] }}", many.join(", ")),
            &e
        ));
        e.codes.clear();
        assert!(!matches("{ code = \"2345-7\" }", &e));
        assert!(matches("{ not = { code = \"2345-7\" } }", &e));
    }

    #[test]
    fn ins() {
        let mut e = env();
        assert!(matches("{ has_ins = true }", &e));
        assert!(!matches("{ has_ins = false }", &e));
        assert!(matches("{ ins_system = \"nir\" }", &e));
        assert!(matches(
            "{ ins_system = \"urn:oid:1.2.250.1.213.1.4.8\" }",
            &e
        ));
        assert!(!matches(
            "{ ins_system = [\"nir-test\", \"nir-demo\"] }",
            &e
        ));
        if let Some(ins) = e.patient.ins.as_mut() {
            ins.system = ins_system::NIR_TEST.into();
        }
        assert!(matches("{ ins_system = [\"nir-test\", \"nir-demo\"] }", &e));
        e.patient.ins = None;
        assert!(!matches("{ has_ins = true }", &e));
        assert!(matches("{ has_ins = false }", &e));
        assert!(!matches("{ ins_system = \"nir\" }", &e));
    }

    #[test]
    fn flags() {
        let mut e = env();
        assert!(!matches("{ flag = \"MASQUE_PS\" }", &e));
        assert!(matches("{ not = { flag = \"MASQUE_PS\" } }", &e));
        e.confidentiality.flags = vec!["INVISIBLE_PATIENT".into(), "MASQUE_PS".into()];
        assert!(matches("{ flag = \"MASQUE_PS\" }", &e));
        assert!(matches(
            "{ flag = [\"INVISIBLE_REPRESENTANTS_LEGAUX\", \"INVISIBLE_PATIENT\"] }",
            &e
        ));
        assert!(!matches(
            "{ flag = \"INVISIBLE_REPRESENTANTS_LEGAUX\" }",
            &e
        ));
    }

    const THREE_ROUTES: &str = r#"
[[route]]
name = "labs"
destinations = ["ehr", "dmp"]
match = { kind = "lab-result" }

[[route]]
name = "glucose"
destinations = ["registry", "ehr"]
match = { code = "2345-7" }

[[route]]
name = "lab-mllp"
destinations = ["archive", "dmp"]
match = { source = "lab-mllp" }
"#;

    #[test]
    fn fan_out_deduplicates_in_order() {
        let set = rs(THREE_ROUTES);
        let d = set.route(&env());
        assert_eq!(d.route.as_deref(), Some("labs"));
        assert_eq!(dests(&d), ["ehr", "dmp", "registry", "archive"]);
        let mut e = env();
        e.kind = "prescription".into();
        let d = set.route(&e);
        assert_eq!(d.route.as_deref(), Some("glucose"));
        assert_eq!(dests(&d), ["registry", "ehr", "archive", "dmp"]);
    }

    #[test]
    fn first_match_takes_the_first_in_file_order() {
        let set = rs(&format!("mode = \"first-match\"\n{THREE_ROUTES}"));
        let d = set.route(&env());
        assert_eq!(d.route.as_deref(), Some("labs"));
        assert_eq!(dests(&d), ["ehr", "dmp"]);
        let mut e = env();
        e.kind = "prescription".into();
        assert_eq!(set.route(&e).route.as_deref(), Some("glucose"));
        e.codes.clear();
        let d = set.route(&e);
        assert_eq!(d.route.as_deref(), Some("lab-mllp"));
        assert_eq!(dests(&d), ["archive", "dmp"]);
        // A wildcard route before indexed ones wins in first-match.
        let set = rs(&format!(
            "mode = \"first-match\"\n[[route]]\nname = \"w\"\ndestinations = [\"quarantine\"]\nmatch = {{ has_ins = true }}\n{THREE_ROUTES}"
        ));
        assert_eq!(set.route(&env()).route.as_deref(), Some("w"));
    }

    #[test]
    fn unmatched_hold_or_fallback() {
        let mut e = env();
        e.source = "other".into();
        e.kind = "other".into();
        e.codes.clear();
        let d = rs(THREE_ROUTES).route(&e);
        assert_eq!(
            d,
            RouteDecision {
                route: None,
                destinations: vec![],
                held: true
            }
        );
        let d = rs(&format!("unmatched = \"hold\"\n{THREE_ROUTES}")).route(&e);
        assert!(d.held && d.destinations.is_empty());
        let d = rs(&format!("unmatched = \"quarantine\"\n{THREE_ROUTES}")).route(&e);
        assert_eq!(
            d,
            RouteDecision {
                route: None,
                destinations: vec!["quarantine".into()],
                held: false
            }
        );
        // A matched record does not go to the fallback.
        let d = rs(&format!("unmatched = \"quarantine\"\n{THREE_ROUTES}")).route(&env());
        assert!(!d.destinations.contains(&"quarantine".to_string()) && !d.held);
    }

    #[test]
    fn disabled_routes_do_not_route() {
        let set = rs("[[route]]\nname = \"a\"\ndestinations = [\"dmp\"]\nenabled = false\n");
        assert!(set.route(&env()).held);
    }
}

/// The indexed router against a linear scan, on random rule sets and envelopes.
mod index {
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
                    let pats: Vec<String> =
                        (0..n).map(|_| format!("{:?}", code_pattern(r))).collect();
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
            let set = RuleSet::parse("random.toml", &src, &known())
                .unwrap_or_else(|e| panic!("{e}\n{src}"));
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
}

mod hot_reload {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    const V1: &str = "[[route]]\nname = \"a\"\ndestinations = [\"dmp\"]\n";
    const V2: &str = "[[route]]\nname = \"a\"\ndestinations = [\"ehr\"]\n\n[[route]]\nname = \"b\"\ndestinations = [\"dmp\"]\n";
    const V3: &str =
        "mode = \"first-match\"\n[[route]]\nname = \"c\"\ndestinations = [\"archive\"]\n";

    fn version_of(src: &str) -> String {
        rs(src).version().to_owned()
    }

    fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "not within 2 s: {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn reload_now_swaps_and_rejects() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, V1).unwrap();
        let h = RoutesHandle::load(&path, known()).unwrap();
        let before = h.current();
        assert_eq!(before.version(), version_of(V1));
        assert_eq!(h.reload_now(), Ok(ReloadOutcome::Unchanged));
        assert_eq!(h.reloads(), 0);

        std::fs::write(&path, V2).unwrap();
        let out = h.reload_now().unwrap();
        assert_eq!(
            out,
            ReloadOutcome::Reloaded {
                version: version_of(V2),
                routes: 2
            }
        );
        assert_eq!(h.reloads(), 1);
        assert_eq!(
            before.version(),
            version_of(V1),
            "a snapshot keeps its version"
        );
        assert_eq!(h.current().version(), version_of(V2));

        std::fs::write(
            &path,
            "[[route]]\nname = \"a\"\ndestinations = [\"nowhere\"]\n",
        )
        .unwrap();
        let e = h.reload_now().unwrap_err();
        assert_eq!((e.line, e.column), (3, 17));
        assert_eq!(h.current().version(), version_of(V2));
        assert_eq!(h.reload_failures(), 1);
        let last = h.last_error().unwrap();
        assert!(
            last.contains("routes.toml:3:17: unknown destination `nowhere`"),
            "{last}"
        );

        // Back to valid content clears the error.
        std::fs::write(&path, V2).unwrap();
        assert_eq!(h.reload_now(), Ok(ReloadOutcome::Unchanged));
        assert_eq!(h.last_error(), None);

        std::fs::remove_file(&path).unwrap();
        assert!(h.reload_now().unwrap_err().message.contains("cannot read"));
        assert_eq!(h.current().version(), version_of(V2));
        assert_eq!(h.reload_failures(), 2);
    }

    #[test]
    fn watcher_follows_writes_renames_and_rejects_invalid_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, V1).unwrap();
        let h = Arc::new(RoutesHandle::load(&path, known()).unwrap());
        let watcher = watch(h.clone(), &path, known()).unwrap();

        // In-place write.
        std::fs::write(&path, V2).unwrap();
        let v2 = version_of(V2);
        wait_for("in-place write", || h.current().version() == v2);
        assert_eq!(h.current().route_count(), 2);

        // Write a temporary file, then rename it over the routes file (as editors do).
        let tmp = dir.path().join(".routes.toml.tmp");
        std::fs::write(&tmp, V3).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        let v3 = version_of(V3);
        wait_for("rename", || h.current().version() == v3);
        assert_eq!(h.current().mode(), Mode::FirstMatch);
        let reloads = h.reloads();
        assert_eq!(reloads, 2, "each change reloads once");

        // An invalid file is rejected; the rules in force stay.
        let bad = "[[route]]\nname = \"c\"\ndestinations = [\"archive\"]\n[route.match]\nkind = \"x\"\nsorce = \"y\"\n";
        std::fs::write(&path, bad).unwrap();
        wait_for("rejection", || h.reload_failures() >= 1);
        assert_eq!(h.current().version(), v3);
        let last = h.last_error().unwrap();
        assert!(
            last.contains("routes.toml:6:1:") && last.contains("sorce"),
            "{last}"
        );

        // Unrelated files in the directory are ignored; same content is not a reload.
        std::fs::write(dir.path().join("other.toml"), "x").unwrap();
        std::fs::write(&path, V3).unwrap();
        wait_for("error cleared", || h.last_error().is_none());
        assert_eq!(h.reloads(), reloads);
        assert_eq!(h.reload_failures(), 1);

        // Dropping the watcher stops watching.
        drop(watcher);
        std::fs::write(&path, V1).unwrap();
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(h.current().version(), v3);
        // reload_now still works (SIGHUP).
        assert!(matches!(h.reload_now(), Ok(ReloadOutcome::Reloaded { .. })));
        assert_eq!(h.current().version(), version_of(V1));
    }

    /// Kubernetes ConfigMap layout: `routes.toml -> ..data/routes.toml`, `..data -> ..v1`,
    /// updated by renaming a new `..data` symlink over the old one.
    #[cfg(unix)]
    #[test]
    fn watcher_follows_symlink_swaps() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("..v1")).unwrap();
        std::fs::write(dir.path().join("..v1/routes.toml"), V1).unwrap();
        symlink("..v1", dir.path().join("..data")).unwrap();
        let path = dir.path().join("routes.toml");
        symlink("..data/routes.toml", &path).unwrap();
        let h = Arc::new(RoutesHandle::load(&path, known()).unwrap());
        let _w = watch(h.clone(), &path, known()).unwrap();

        std::fs::create_dir(dir.path().join("..v2")).unwrap();
        std::fs::write(dir.path().join("..v2/routes.toml"), V2).unwrap();
        symlink("..v2", dir.path().join("..data_tmp")).unwrap();
        std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
        let v2 = version_of(V2);
        wait_for("symlink swap", || h.current().version() == v2);
        assert_eq!(h.reloads(), 1);
    }

    #[test]
    fn burst_of_writes_is_one_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.toml");
        std::fs::write(&path, V1).unwrap();
        let h = Arc::new(RoutesHandle::load(&path, known()).unwrap());
        let _w = watch(h.clone(), &path, known()).unwrap();
        for i in 0..10 {
            std::fs::write(&path, format!("{V2}# edit {i}\n")).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        let last = version_of(&format!("{V2}# edit 9\n"));
        wait_for("burst", || h.current().version() == last);
        assert_eq!(h.reloads(), 1);
    }
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
