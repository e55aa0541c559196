//! The patient and identifiers, the encounter, practitioners and the specimen.

use super::*;

// --- Patient, encounter, practitioners, specimen ---

#[test]
fn patient_demographics() {
    let out = adapt(&with_obx(&["OBX|1|NM|X^Y^LN||4|mmol/L|||||F"]));
    let r = &out.records[0];
    let ids: Vec<(&str, &str)> = r
        .patient
        .local_ids
        .iter()
        .map(|i| (i.system.as_str(), i.value.as_str()))
        .collect();
    assert_eq!(ids, [("urn:oid:1.2.250.1.71.4.2.7", "IPP123")]);
    let p = one(&json(r), "Patient");
    assert_eq!(p["identifier"][1]["type"]["coding"][0]["code"], "PI");
    let uses: Vec<&str> = p["name"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["use"].as_str().unwrap())
        .collect();
    assert_eq!(uses, ["official", "usual", "maiden"]);
    assert_eq!(p["gender"], "female");
    // The birth place (BDL) is not an address.
    assert_eq!(p["address"].as_array().unwrap().len(), 1);
    assert_eq!(p["address"][0]["postalCode"], "75002");
    assert_eq!(
        p["telecom"],
        serde_json::json!([
            {"system": "phone", "value": "0102030405", "use": "home"},
            {"system": "email", "value": "marie@example.org", "use": "home"}
        ])
    );
    for (sex, gender) in [
        ("M", "male"),
        ("O", "other"),
        ("U", "unknown"),
        ("A", "unknown"),
        ("N", "unknown"),
    ] {
        let text = with_obx(&[]).replace("|19790328|F|", &format!("|19790328|{sex}|"));
        let out = adapt(&text);
        assert_eq!(
            one(&json(&out.records[0]), "Patient")["gender"],
            gender,
            "{sex}"
        );
    }
}

#[test]
fn local_ids_without_oid() {
    let text = message(&[obr(&[]), "OBX|1|NM|X^Y^LN||4||||||F".into()]).replace(
        "IPP123^^^CHU&1.2.250.1.71.4.2.7&ISO^PI",
        "IPP123^^^CH Nord^PI~999^^^^MR",
    );
    let out = adapt(&text);
    let ids = &out.records[0].patient.local_ids;
    assert_eq!(ids[0].system, "urn:passerelle:id:CH%20Nord");
    // No authority: the sending facility (MSH-4).
    assert_eq!(ids[1].system, "urn:passerelle:id:LABO");
    let out = try_adapt_with(r#"{"local_id_system": "urn:oid:1.2.3.4"}"#, &text).unwrap();
    let ids = &out.records[0].patient.local_ids;
    assert_eq!(ids[0].system, "urn:oid:1.2.3.4");
}

#[test]
fn encounter_from_pv1() {
    for (class, code) in [("I", "IMP"), ("O", "AMB"), ("E", "EMER"), ("R", "AMB")] {
        let out = adapt(&message(&[
            seg(
                "PV1",
                &[
                    (1, "1"),
                    (2, class),
                    (19, "V123^^^CHU&1.2.250.1.71.4.2.7&ISO^VN"),
                ],
            ),
            obr(&[]),
            "OBX|1|NM|X^Y^LN||4||||||F".into(),
        ]));
        let b = json(&out.records[0]);
        let enc = one(&b, "Encounter");
        assert_eq!(enc["class"]["code"], code);
        assert_eq!(
            enc["class"]["system"],
            "http://terminology.hl7.org/CodeSystem/v3-ActCode"
        );
        assert_eq!(enc["identifier"][0]["system"], "urn:oid:1.2.250.1.71.4.2.7");
        assert_eq!(enc["identifier"][0]["value"], "V123");
        let obs = one(&b, "Observation");
        assert_eq!(obs["encounter"]["type"], "Encounter");
    }
}

#[test]
fn practitioners_requester_interpreter_observer() {
    let out = adapt(&message(&[
        seg(
            "ORC",
            &[
                (1, "RE"),
                (2, "CMD1^DPI"),
                (
                    12,
                    "801234567897^MARTIN^JEAN^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^L^^^RPPS",
                ),
            ],
        ),
        obr(&[(16, "^BLUE^Eva^^^DR"), (32, "L07&LABBIO&JULIE^20240131")]),
        seg(
            "OBX",
            &[
                (1, "1"),
                (2, "NM"),
                (3, "X^Y^LN"),
                (5, "4"),
                (6, "mmol/L"),
                (11, "F"),
                (16, "123^OBS^Paul"),
                (
                    23,
                    "Labo Central^^^^^CHU&1.2.250.1.71.4.2.2&ISO^FINEG^^^330000001",
                ),
            ],
        ),
    ]));
    let b = json(&out.records[0]);
    let pracs = resources(&b, "Practitioner");
    // ORC-12 wins over OBR-16; OBR-32; OBX-16.
    assert_eq!(pracs.len(), 3);
    assert_eq!(
        pracs[0]["identifier"][0]["system"],
        "urn:oid:1.2.250.1.71.4.2.1"
    );
    assert_eq!(pracs[0]["identifier"][0]["value"], "801234567897");
    assert_eq!(pracs[0]["name"][0]["family"], "MARTIN");
    assert_eq!(pracs[1]["name"][0]["family"], "LABBIO");
    let report = one(&b, "DiagnosticReport");
    assert_eq!(report["resultsInterpreter"][0]["type"], "Practitioner");
    let obs = one(&b, "Observation");
    assert_eq!(obs["performer"][0]["type"], "Practitioner");
    assert_eq!(obs["performer"][1]["display"], "Labo Central");
    assert_eq!(
        obs["performer"][1]["identifier"]["system"],
        "urn:oid:1.2.250.1.71.4.2.2"
    );
    assert_eq!(report["performer"][0]["display"], "Labo Central");
    // Placer from OBR-2, filler from ORC-3 when OBR-3 is empty.
    let out = adapt(&message(&[
        seg("ORC", &[(1, "RE"), (3, "F-9^SIL")]),
        obr(&[(3, "")]),
        "OBX|1|NM|X^Y^LN||4||||||F".into(),
    ]));
    let report = one(&json(&out.records[0]), "DiagnosticReport");
    assert_eq!(report["identifier"][0]["type"]["coding"][0]["code"], "PLAC");
    assert_eq!(report["identifier"][1]["value"], "F-9");
}

#[test]
fn specimen_from_spm_or_obr15() {
    let out = adapt(&message(&[
        obr(&[]),
        "OBX|1|NM|X^Y^LN||4|mmol/L|||||F".into(),
        "SPM|1|SP1&LABO||BLD^Sang total^HL70487|||||||P||||||20240131070000|20240131080000".into(),
    ]));
    let b = json(&out.records[0]);
    let s = one(&b, "Specimen");
    assert_eq!(s["type"]["coding"][0]["code"], "BLD");
    assert_eq!(
        s["collection"]["collectedDateTime"],
        "2024-01-31T07:00:00+01:00"
    );
    assert_eq!(s["receivedTime"], "2024-01-31T08:00:00+01:00");
    assert_eq!(s["identifier"][0]["value"], "SP1");
    assert_eq!(one(&b, "Observation")["specimen"]["type"], "Specimen");
    assert_eq!(
        one(&b, "DiagnosticReport")["specimen"][0]["type"],
        "Specimen"
    );
    // v2.3 OBR-15 specimen source.
    let out = adapt(&message(&[
        obr(&[(15, "SER&Serum")]),
        "OBX|1|NM|X^Y^LN||4|mmol/L|||||F".into(),
    ]));
    let s = one(&json(&out.records[0]), "Specimen");
    assert_eq!(s["type"]["coding"][0]["code"], "SER");
    assert_eq!(
        s["collection"]["collectedDateTime"],
        "2024-01-31T08:30:00+01:00"
    );
}
