//! French specifics: MetaDMPMSS flags, INS and statuses of the ANS samples, Latin-1 MSH-18.

use super::*;

// --- French specifics ---

#[test]
fn meta_dmp_mss_sets_flags_and_is_not_an_observation() {
    let out = adapt(&with_obx(&[
        "OBX|1|ED|11502-2^CR d'examens biologiques^LN||^TEXT^XML^Base64^RG9jdW1lbnQ=||||||F",
        "OBX|2|CE|MASQUE_PS^Masqué aux professionnels de Santé^MetaDMPMSS||Y^^expandedYes-NoIndicator||||||F",
        "OBX|3|CE|INVISIBLE_PATIENT^Document Non Visible par le patient^MetaDMPMSS||N^^expandedYes-NoIndicator||||||F",
        "OBX|4|CE|INVISIBLE_REP_LEGAUX^Non visible par les représentants Légaux^MetaDMPMSS||Y^^expandedYes-NoIndicator||||||F",
        "OBX|5|CE|DESTDMP^Destinataire DMP^MetaDMPMSS||Y^^expandedYes-NoIndicator||||||F",
        "OBX|6|ED|CORPSMAIL_PS^Corps du mail^MetaDMPMSS||^TEXT^^Base64^Q2hlcg||||||F",
    ]));
    let r = &out.records[0];
    assert_eq!(
        r.confidentiality.flags,
        vec![
            VisibilityFlag::MasquePs,
            VisibilityFlag::InvisibleRepresentantsLegaux
        ]
    );
    let b = json(r);
    assert!(resources(&b, "Observation").is_empty());
    let doc = one(&b, "DocumentReference");
    let labels: Vec<&str> = doc["securityLabel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["MASQUE_PS", "INVISIBLE_REPRESENTANTS_LEGAUX"]);
    assert!(!r.bundle.contains("DESTDMP") && !r.bundle.contains("CORPSMAIL"));
}

const ANS_ORU: &str = "ansforge-hl7v2-exemples/Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU";

#[test]
fn ins_from_the_ans_sample() {
    let payload = sample(&format!(
        "{ANS_ORU}/Transmission initiale ORU/message_ORU_CR_Bio_INIT_N1_N3.hl7"
    ));
    let out = lab().adapt(&inbound_message(&payload, CT, "ans")).unwrap();
    assert_eq!(out.source_message_id.as_deref(), Some("015"));
    assert_eq!(out.message_type.as_deref(), Some("ORU^R01"));
    assert_eq!(out.records.len(), 1);
    let r = &out.records[0];
    check_bundle(&r.bundle);
    let ins = r.patient.ins.as_ref().unwrap();
    assert_eq!(
        (ins.kind, ins.value.as_str()),
        (InsKind::NirTest, "279035121518989")
    );
    assert!(r.patient.local_ids.is_empty());
    assert_eq!(r.status, RecordStatus::Final);
    assert!(matches!(r.kind, RecordKind::LabResult));
    assert!(r.confidentiality.flags.is_empty());
    assert_eq!(r.codes[0].code, "11502-2");
    let b = json(r);
    let patient = one(&b, "Patient");
    assert_eq!(
        patient["identifier"][0],
        serde_json::json!({
            "use": "official",
            "type": {"coding": [{"system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203", "code": "INS-NIR-TEST"}]},
            "system": "urn:oid:1.2.250.1.213.1.4.10",
            "value": "279035121518989"
        })
    );
    assert_eq!(
        patient["extension"][0]["url"],
        "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability"
    );
    assert_eq!(
        patient["extension"][0]["extension"][0]["valueCoding"]["code"],
        "VALI"
    );
    assert_eq!(patient["name"][0]["family"], "PAT-TROIS");
    assert_eq!(patient["birthDate"], "1979-03-28");
    // N1 and N3 CDA: two documents; the metadata OBX are not observations.
    assert_eq!(resources(&b, "DocumentReference").len(), 2);
    assert!(resources(&b, "Observation").is_empty());
    let enc = one(&b, "Encounter");
    assert_eq!(enc["class"]["code"], "IMP");
    assert_eq!(enc["identifier"][0]["value"], "000897406");
}

#[test]
fn ans_replacement_and_deletion_statuses() {
    for (file, status, doc_status) in [
        (
            "Remplacement ORU/message_ORU_CR_Bio_RPLC_N1_N3.er7",
            RecordStatus::Corrected,
            "current",
        ),
        (
            "Suppression ORU/message_ORU_CR_Bio_DEL_N1_N3.er7",
            RecordStatus::EnteredInError,
            "entered-in-error",
        ),
    ] {
        let payload = sample(&format!("{ANS_ORU}/{file}"));
        let out = lab().adapt(&inbound_message(&payload, CT, "ans")).unwrap();
        let r = &out.records[0];
        assert_eq!(r.status, status, "{file}");
        let b = json(r);
        for doc in resources(&b, "DocumentReference") {
            assert_eq!(doc["status"], doc_status, "{file}");
        }
    }
}

#[test]
fn latin1_declared_in_msh18() {
    let mut text = Vec::new();
    text.extend_from_slice(b"MSH|^~\\&|SIL|LABO|||20240131||ORU^R01|L1|P|2.5|||||FRA|8859/1\r");
    text.extend_from_slice(b"PID|1||IPP9^^^LABO||M\xdcLLER^H\xe9l\xe8ne||19800101|F\r");
    text.extend_from_slice(b"OBR|1||R1|X^Y^LN|||20240131\r");
    text.extend_from_slice(b"OBX|1|ST|X^Y^LN||r\xe9sultat \xe0 contr\xf4ler||||||F\r");
    let out = lab().adapt(&inbound_message(&text, CT, "t")).unwrap();
    let b = json(&out.records[0]);
    assert_eq!(one(&b, "Patient")["name"][0]["given"][0], "Hélène");
    assert_eq!(one(&b, "Patient")["name"][0]["family"], "MÜLLER");
    assert_eq!(
        one(&b, "Observation")["valueString"],
        "résultat à contrôler"
    );
    // The source's configured charset applies when MSH-18 is empty.
    let text = b"MSH|^~\\&|SIL|LABO|||20240131||ORU^R01|L2|P|2.5\rPID|1||IPP9^^^LABO||REN\xc9E\rOBR|1||R1|X^Y^LN\rOBX|1|ST|X^Y^LN||\xe9||||||F\r";
    let mut msg = inbound_message(text, CT, "t");
    msg.charset = Some("ISO-8859-15".into());
    let out = lab().adapt(&msg).unwrap();
    assert_eq!(
        one(&json(&out.records[0]), "Patient")["name"][0]["family"],
        "RENÉE"
    );
}
