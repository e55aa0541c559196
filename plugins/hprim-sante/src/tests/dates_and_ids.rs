//! Dates and time zones, message id and determinism, the report's ids, the settings check.

use super::*;

// --- Times, ids, determinism ---

#[test]
fn dates_and_time_zones() {
    // Europe/Paris by default: January is +01:00, July +02:00.
    let out = adapt(&[
        H,
        P,
        "OBR|1|D1|L1|A~A~L|||202407150800|||||||202407150830|SANG~Sang|||||||202407151200",
        "OBX|1|NM|A~A~L||1|g/l|||||F|||202407150930",
        "OBX|2|NM|B~B~L||1|g/l|||||F",
        "L|1",
    ]);
    let r = &out.records[0];
    assert_eq!(r.event_time.as_deref(), Some("2024-07-15T08:00:00+02:00"));
    let report = one(r, "DiagnosticReport");
    assert_eq!(report["effectiveDateTime"], "2024-07-15T08:00:00+02:00");
    assert_eq!(report["issued"], "2024-07-15T12:00:00+02:00");
    let obs = results(r);
    assert_eq!(obs[0]["effectiveDateTime"], "2024-07-15T09:30:00+02:00");
    assert_eq!(obs[1]["effectiveDateTime"], "2024-07-15T08:00:00+02:00");
    let specimen = one(r, "Specimen");
    assert_eq!(specimen["receivedTime"], "2024-07-15T08:30:00+02:00");
    assert_eq!(
        specimen["collection"]["collectedDateTime"],
        "2024-07-15T08:00:00+02:00"
    );
    assert_eq!(specimen["type"]["text"], "Sang");
    assert_eq!(obs[0]["specimen"], report["specimen"][0]);
    // A fixed offset; OBR-22 empty: issued is the file's H-14.
    let out = adapt_with(
        r#"{"default_timezone": "-04:00"}"#,
        &file(&[H, P, OBR, OBX, "L|1"]),
    )
    .unwrap();
    let report = one(&out.records[0], "DiagnosticReport");
    assert_eq!(report["effectiveDateTime"], "2024-01-15T08:00:00-04:00");
    assert_eq!(report["issued"], "2024-01-15T10:30:00-04:00");
    // Invalid dates are left out.
    let out = adapt(&[
        H,
        "P|1|IPP1||||||19801345",
        "OBR|1|D1|L1|A~A~L|||2024011",
        OBX,
        "L|1",
    ]);
    assert!(one(&out.records[0], "Patient").get("birthDate").is_none());
    assert!(
        out.records[0]
            .event_time
            .as_deref()
            .unwrap()
            .starts_with("2024-01-15T10:30:00")
    );
}

#[test]
fn source_message_id_and_determinism() {
    let bytes = file(&[H, P, OBR, OBX, "P|2|IPP2", OBR, OBX, "L|1"]);
    let a = adapt_with("{}", &bytes).unwrap();
    let b = adapt_with("{}", &bytes).unwrap();
    assert_eq!(
        a.source_message_id.as_deref(),
        Some("LAB1:RES1.HPR@202401151030")
    );
    assert_eq!(a.message_type.as_deref(), Some("ORU"));
    assert_eq!(a.records.len(), 2);
    for (x, y) in a.records.iter().zip(&b.records) {
        assert_eq!(x.bundle, y.bundle);
    }
    // Different files, different UUIDs.
    let other = file(&[&H.replace("RES1", "RES2"), P, OBR, OBX, "L|1"]);
    let c = adapt_with("{}", &other).unwrap();
    assert_ne!(
        bundle(&a.records[0])["entry"][0]["fullUrl"],
        bundle(&c.records[0])["entry"][0]["fullUrl"]
    );
    // No file name nor time: no id (the host hashes the payload); still deterministic.
    let bare = file(&[r"H|~^\&|||LAB1||ORU", P, OBR, OBX, "L|1"]);
    let d1 = adapt_with("{}", &bare).unwrap();
    let d2 = adapt_with("{}", &bare).unwrap();
    assert_eq!(d1.source_message_id, None);
    assert_eq!(d1.records[0].bundle, d2.records[0].bundle);
}

#[test]
fn the_report_carries_identifiers_and_performer() {
    let out = adapt(&[H, P, "OBR|1|idech~|~20428E9575|A~A~L", OBX, "L|1"]);
    let report = one(&out.records[0], "DiagnosticReport");
    assert_eq!(
        report["identifier"],
        json!([
            {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}]},
             "system": "urn:passerelle:hprim:REQ1:request", "value": "idech"},
            {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "FILL"}]},
             "system": "urn:passerelle:hprim:LAB1:request", "value": "20428E9575"}
        ])
    );
    assert_eq!(
        report["performer"],
        json!([{"type": "Organization", "display": "Laboratoire Un"}])
    );
    assert_eq!(report["category"][0]["coding"][0]["code"], "LAB");
}

#[test]
fn settings_are_checked() {
    for (settings, why) in [
        (r#"{"charset": "EBCDIC"}"#, "settings.charset"),
        (r#"{"default_timezone": "CET"}"#, "default_timezone"),
        (r#"{"loinc": {"GLY": "glucose"}}"#, "not a LOINC code"),
        (r#"{"loinc": {"": "2345-7"}}"#, "empty local code"),
        (r#"{"local_code_system": "my codes"}"#, "not a URI"),
        (r#"{"lab_id_system": "labo"}"#, "needs a scheme"),
        (r#"{"unknown": 1}"#, "unknown field"),
    ] {
        let err = configure::<HprimSante>(settings).err().unwrap_or_default();
        assert!(err.contains(why), "{settings}: {err}");
    }
    assert!(configure::<HprimSante>("").is_ok());
    assert!(
        configure::<HprimSante>(r#"{"charset": "ISO-8859-15", "default_timezone": "Z"}"#).is_ok()
    );
}
