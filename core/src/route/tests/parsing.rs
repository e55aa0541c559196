//! Reading routes.toml: what is accepted, and where an error is reported.

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
    let src = "[[route]]\nname = \"a\"\ndestinations = [\"dmp\"]\nmatch = { has_ins = \"yes\" }\n";
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
