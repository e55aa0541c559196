//! The P record: the patient's identifiers, INS and demographics.

use super::*;

// --- Patient ---

#[test]
fn patient_identity_and_demographics() {
    let out = adapt(&[
        H,
        "P|1|IPP1^IPP1B|LABP1|X3|DUPONT~Hélène~Marie~~MME|DURAND|19790328|F||12 rue des Écoles~Bât. B~Vélizy~~78140~FRANCE||0139000000^0600000000",
        OBR,
        OBX,
        "L|1",
    ]);
    let r = &out.records[0];
    let p = one(r, "Patient");
    assert_eq!(
        p["name"],
        json!([
            {"use": "official", "family": "DURAND", "given": ["Hélène", "Marie"]},
            {"use": "usual", "family": "DUPONT", "given": ["Hélène", "Marie"], "prefix": ["MME"]}
        ])
    );
    assert_eq!(p["gender"], "female");
    assert_eq!(p["birthDate"], "1979-03-28");
    assert_eq!(
        p["address"],
        json!([{"line": ["12 rue des Écoles", "Bât. B"], "city": "Vélizy", "postalCode": "78140", "country": "FRANCE"}])
    );
    assert_eq!(p["telecom"].as_array().unwrap().len(), 2);
    let ids: Vec<(String, String)> = r
        .patient
        .local_ids
        .iter()
        .map(|i| (i.system.clone(), i.value.clone()))
        .collect();
    assert_eq!(
        ids,
        [
            (
                "urn:passerelle:hprim:REQ1:patient".to_string(),
                "IPP1".to_string()
            ),
            (
                "urn:passerelle:hprim:REQ1:patient".to_string(),
                "IPP1B".to_string()
            ),
            (
                "urn:passerelle:hprim:LAB1:patient".to_string(),
                "LABP1".to_string()
            ),
            (
                "urn:passerelle:hprim:LAB1:patient-id-3".to_string(),
                "X3".to_string()
            ),
        ]
    );
    assert!(r.patient.ins.is_none());
    assert_eq!(p["identifier"][0]["type"]["coding"][0]["code"], "PI");
    assert!(p["identifier"][3].get("type").is_none());
    // Configured systems; a lone name has no use; same birth name → one official name.
    let out = adapt_with(
        r#"{"requester_id_system": "urn:oid:1.2.250.1.71.4.2.7", "lab_id_system": "urn:oid:1.2.3.4"}"#,
        &file(&[H, "P|1|IPP1|LABP1||MARTIN~Paul|MARTIN||M", OBR, OBX, "P|2|IPP2|||ROUX~Léa|||U", OBR, OBX, "L|1"]),
    )
    .unwrap();
    let r = &out.records[0];
    assert_eq!(r.patient.local_ids[0].system, "urn:oid:1.2.250.1.71.4.2.7");
    assert_eq!(r.patient.local_ids[1].system, "urn:oid:1.2.3.4");
    let p = one(r, "Patient");
    assert_eq!(
        p["name"],
        json!([{"use": "official", "family": "MARTIN", "given": ["Paul"]}])
    );
    assert_eq!(p["gender"], "male");
    let p = one(&out.records[1], "Patient");
    assert_eq!(p["name"], json!([{"family": "ROUX", "given": ["Léa"]}]));
    assert_eq!(p["gender"], "unknown");
    assert!(p.get("birthDate").is_none());
}

#[test]
fn an_ins_is_recognised_by_its_oid() {
    // value~OID in P-4.
    let out = adapt(&[
        H,
        "P|1|IPP1||279035121518989~1.2.250.1.213.1.4.10|DURAND~Rémi",
        OBR,
        OBX,
        "L|1",
    ]);
    let r = &out.records[0];
    let ins = r.patient.ins.as_ref().expect("INS");
    assert_eq!(
        (ins.kind, ins.value.as_str()),
        (InsKind::NirTest, "279035121518989")
    );
    let p = one(r, "Patient");
    assert_eq!(p["identifier"][1]["system"], "urn:oid:1.2.250.1.213.1.4.10");
    assert_eq!(
        p["identifier"][1]["type"]["coding"][0]["code"],
        "INS-NIR-TEST"
    );
    assert_eq!(r.patient.local_ids.len(), 1);
    // HL7-like CX with the authority's OID as a subcomponent, in any id field; a NIR wins over
    // an earlier NIA; other OIDs become urn:oid: systems.
    let out = adapt(&[
        H,
        "P|1|IPP9~~~CHU&1.2.250.1.999&ISO~PI|155059938801282~urn:oid:1.2.250.1.213.1.4.9|279035121518989~~~ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO~INS",
        OBR,
        OBX,
        "L|1",
    ]);
    let r = &out.records[0];
    let ins = r.patient.ins.as_ref().unwrap();
    assert_eq!(
        (ins.kind, ins.value.as_str()),
        (InsKind::Nir, "279035121518989")
    );
    assert_eq!(r.patient.local_ids[0].system, "urn:oid:1.2.250.1.999");
    assert_eq!(
        resources(r, "Patient")[0]["identifier"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // A 15-digit number without OID is a local identifier, not an INS.
    let out = adapt(&[H, "P|1|IPP1||279035121518989|DURAND", OBR, OBX, "L|1"]);
    assert!(out.records[0].patient.ins.is_none());
    // A bad key is refused.
    let (location, reason) = refused(adapt_with(
        "{}",
        &file(&[
            H,
            "P|1|IPP1||279035121518988~1.2.250.1.213.1.4.8",
            OBR,
            OBX,
            "L|1",
        ]),
    ));
    assert_eq!(location, "line 2 (P-4)");
    assert!(reason.contains("INS"), "{reason}");
}

#[test]
fn a_patient_needs_an_identifier() {
    let (location, reason) = refused(adapt_with(
        "{}",
        &file(&[H, "P|1||~~||DURAND", OBR, OBX, "L|1"]),
    ));
    assert_eq!(location, "line 2 (P-2)");
    assert!(reason.contains("no patient identifier"), "{reason}");
    let bad = format!("P|1|IPP{}", '\u{90}');
    assert_eq!(
        refused(adapt_with("{}", &file(&[H, &bad, OBR, OBX, "L|1"]))).0,
        "line 2 (P-2)"
    );
}
