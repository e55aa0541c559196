//! Which routes match an envelope, and what a decision holds.

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
