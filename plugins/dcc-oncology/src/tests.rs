//! Native tests: the two ANS Fiche RCP examples, and bad input.

use std::path::PathBuf;

use passerelle_plugin_sdk::fhir::{Bundle, Resource, base64};
use passerelle_plugin_sdk::prelude::*;
use passerelle_plugin_sdk::types::InsKind;
use serde_json::Value;

use super::*;

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples/ansforge-testcontenucda/ExemplesCDA")
}

fn sample(name: &str) -> String {
    let path = samples_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const APPAREIL: &str = "CANCER-FRCP_2022.01_Appareil.xml";
const TRANSVERSALE: &str = "CANCER-FRCP_2022.01_Transversale.xml";

fn adapter() -> DccOncology {
    configure::<DccOncology>("{}").unwrap()
}

fn adapt(xml: &str) -> Result<Adapted, AdaptError> {
    adapter().adapt(&inbound_message(xml.as_bytes(), "application/xml", "test"))
}

fn bundle_of(record: &Record) -> Value {
    serde_json::from_str(&record.bundle).unwrap()
}

fn resources<'a>(bundle: &'a Value, kind: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == kind)
        .collect()
}

fn malformed_at(xml: &str) -> (String, String) {
    match adapt(xml) {
        Err(AdaptError::Malformed(m)) => (m.location, m.reason),
        Err(other) => panic!("expected malformed, got {other:?}"),
        Ok(out) => panic!("expected malformed, got {} record(s)", out.records.len()),
    }
}

#[test]
fn both_samples_give_one_oncology_meeting_record() {
    for name in [APPAREIL, TRANSVERSALE] {
        let xml = sample(name);
        let out = adapt(&xml).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(out.message_type.as_deref(), Some("34794-8"));
        assert!(
            out.source_message_id
                .as_deref()
                .unwrap()
                .starts_with("1.2.250.1.213.1.1.1.8.2022")
        );
        assert_eq!(out.records.len(), 1, "{name}");
        let r = &out.records[0];
        assert!(matches!(r.kind, RecordKind::OncologyMeeting));
        assert_eq!(r.status, RecordStatus::Final);
        assert_eq!(
            r.event_time.as_deref(),
            Some("2019-02-18T17:11:00+01:00"),
            "{name}"
        );
        let ins = r.patient.ins.as_ref().unwrap();
        assert_eq!(
            (ins.kind, ins.value.as_str()),
            (InsKind::NirTest, "279035121518989")
        );
        assert_eq!(r.patient.local_ids[0].system, "urn:oid:1.2.3.4.567.8.9.10");
        assert_eq!(r.patient.local_ids[0].value, "1234567890121");
        assert_eq!(r.confidentiality.level, ConfidentialityLevel::Normal);
        let codes: Vec<(&str, &str)> = r
            .codes
            .iter()
            .map(|c| (c.system.as_str(), c.code.as_str()))
            .collect();
        assert_eq!(codes[0], ("http://loinc.org", "34794-8"));
        assert!(
            codes.contains(&("http://hl7.org/fhir/sid/icd-10", "C50.2")),
            "{codes:?}"
        );

        // The bundle reads back through the SDK's types and is structurally sound.
        let mut typed: Bundle = serde_json::from_str(&r.bundle).unwrap();
        typed.set_seed("x");
        assert!(
            typed.problems().is_empty(),
            "{name}: {:?}",
            typed.problems()
        );
        assert!(matches!(
            typed.entry[0].resource,
            Some(Resource::Composition(_))
        ));
    }
}

#[test]
fn composition_has_every_section_with_code_title_and_text() {
    let xml = sample(APPAREIL);
    let doc = cda::Document::parse(&xml).unwrap();
    let expected: Vec<String> = doc.sections().filter_map(|s| s.code()?.code).collect();
    let out = adapt(&xml).unwrap();
    let bundle = bundle_of(&out.records[0]);
    let composition = resources(&bundle, "Composition")[0];
    assert_eq!(composition["type"]["coding"][0]["code"], "34794-8");
    assert_eq!(composition["status"], "final");
    assert_eq!(composition["confidentiality"], "N");
    assert_eq!(composition["date"], "2019-02-18T09:49:14+01:00");
    assert_eq!(
        composition["title"],
        "FRCP ONCO PAYS DE LA LOIRE / 3C CHU Angers / Sein"
    );
    let sections = composition["section"].as_array().unwrap();
    let codes: Vec<&str> = sections
        .iter()
        .filter_map(|s| s["code"]["coding"][0]["code"].as_str())
        .collect();
    assert_eq!(
        codes, expected,
        "one Composition section per CDA section, in order"
    );
    for code in [
        "42349-1", "72135-7", "11348-0", "11450-4", "47420-5", "30954-2", "29554-3", "50397-9",
        "10164-2", "21874-3", "18776-5", "35510-7", "55112-7",
    ] {
        let s = sections
            .iter()
            .find(|s| s["code"]["coding"][0]["code"] == code)
            .unwrap_or_else(|| panic!("section {code} missing"));
        assert_eq!(s["code"]["coding"][0]["system"], "http://loinc.org");
        assert!(
            s["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{code}: no title"
        );
        let has_text = s["text"]["div"].as_str().is_some_and(|d| d.len() > 50);
        assert!(has_text || s["section"].is_array(), "{code}: no narrative");
    }
    let diagnosis = sections
        .iter()
        .find(|s| s["code"]["coding"][0]["code"] == "72135-7")
        .unwrap();
    assert!(
        diagnosis["text"]["div"]
            .as_str()
            .unwrap()
            .contains("C50.2 [CIM-10]")
    );
    assert!(
        diagnosis["entry"][0]["reference"]
            .as_str()
            .unwrap()
            .starts_with("urn:uuid:")
    );
    // 11450-4 has no title in the CDA: its display name stands in.
    let problems = sections
        .iter()
        .find(|s| s["code"]["coding"][0]["code"] == "11450-4")
        .unwrap();
    assert_eq!(problems["title"], "Liste des problèmes actifs");
    // Nested functional status subsections.
    let functional = sections
        .iter()
        .find(|s| s["code"]["coding"][0]["code"] == "47420-5")
        .unwrap();
    assert_eq!(functional["section"].as_array().unwrap().len(), 3);
    // The participants section lists the RCP members.
    let participants = sections
        .iter()
        .find(|s| s["title"] == "Participants")
        .unwrap();
    let div = participants["text"]["div"].as_str().unwrap();
    assert!(
        div.contains("PS Coordonnateur de la RCP : DR Charles MULLER"),
        "{div}"
    );
    assert!(
        div.contains("Correspondant (Participant hors quorum) : Véronique LILOU"),
        "{div}"
    );
}

#[test]
fn tumour_proposal_meeting_people_and_document() {
    let xml = sample(APPAREIL);
    let out = adapt(&xml).unwrap();
    let bundle = bundle_of(&out.records[0]);
    assert_eq!(bundle["type"], "document");
    assert_eq!(
        bundle["identifier"]["value"],
        "urn:oid:1.2.250.1.213.1.1.1.8.2022.1.1"
    );
    assert_eq!(bundle["timestamp"], "2019-02-18T09:49:14+01:00");

    let condition = resources(&bundle, "Condition");
    assert_eq!(condition.len(), 1);
    let c = condition[0];
    assert_eq!(
        c["code"]["coding"][0]["system"],
        "http://hl7.org/fhir/sid/icd-10"
    );
    assert_eq!(c["code"]["coding"][0]["code"], "C50.2");
    assert_eq!(c["code"]["text"], "Quadrant supéro-interne du sein");
    assert_eq!(c["onsetDateTime"], "2019-01-29");
    assert_eq!(c["clinicalStatus"]["coding"][0]["code"], "active");
    assert_eq!(c["stage"][0]["summary"]["coding"][0]["code"], "IB");
    assert_eq!(c["stage"][0]["summary"]["text"], "IB T1b N1 M0");
    let notes = c["note"].to_string();
    assert!(
        notes.contains("Morphologie : 8000/3") && notes.contains("Latéralité : Droit"),
        "{notes}"
    );

    let plan = resources(&bundle, "CarePlan");
    assert_eq!(plan.len(), 1);
    let p = plan[0];
    assert_eq!(
        (p["intent"].as_str(), p["status"].as_str()),
        (Some("proposal"), Some("active"))
    );
    assert_eq!(p["title"], "PROPOSITION DE LA RCP");
    let description = p["description"].as_str().unwrap();
    assert!(
        description.contains("Quorum | Quorum atteint"),
        "{description}"
    );
    assert!(
        description.contains("1 (Première intention) | 1 | Radiothérapie"),
        "{description}"
    );
    assert_eq!(p["addresses"][0]["reference"], c_ref(&bundle, "Condition"));
    let activities = p["activity"].as_array().unwrap();
    assert_eq!(activities.len(), 8, "{activities:?}");
    assert!(
        activities
            .iter()
            .any(|a| a["detail"]["code"]["coding"][0]["code"] == "C15313"
                && a["detail"]["description"] == "Radiothérapie"
                && a["detail"]["kind"] == "ServiceRequest")
    );
    assert!(
        activities
            .iter()
            .any(|a| a["detail"]["description"] == "Passage en RCP recours : OUI")
    );
    assert!(p["created"] == "2019-02-18T17:11:00+01:00");

    let encounter = resources(&bundle, "Encounter")[0];
    assert_eq!(encounter["class"]["code"], "VR");
    assert_eq!(
        encounter["class"]["system"],
        "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    );
    assert_eq!(encounter["period"]["start"], "2019-02-18T17:11:00+01:00");
    assert_eq!(encounter["type"][0]["coding"][0]["code"], "39");
    assert_eq!(
        encounter["type"][0]["text"],
        "ONCO PAYS DE LA LOIRE / 3C CHU Angers / Sein"
    );
    let ids: Vec<(&str, &str)> = encounter["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["system"].as_str().unwrap(), i["value"].as_str().unwrap()))
        .collect();
    for expected in [
        ("urn:oid:1.2.250.1.161.1.20.1.1", "5201"),
        ("urn:oid:1.2.250.1.161.1.20.2.1", "520114"),
        ("urn:oid:1.2.250.1.161.1.20.3.1", "27011113"),
        ("urn:oid:1.2.250.1.213.1.1.9", "234567890"),
        ("urn:oid:1.2.3.4.567.8.9.10", "54678"),
        (
            "urn:ietf:rfc:3986",
            "urn:uuid:2ce71a5b-fd99-4958-ade4-ca39e86625ed",
        ),
    ] {
        assert!(ids.contains(&expected), "{expected:?} not in {ids:?}");
    }

    let practitioners = resources(&bundle, "Practitioner");
    let muller = practitioners
        .iter()
        .find(|p| {
            p["name"][0]["family"] == "MULLER" && p["identifier"][0]["value"] == "801234567897"
        })
        .expect("the coordinator");
    assert_eq!(
        muller["identifier"][0]["system"],
        "urn:oid:1.2.250.1.71.4.2.1"
    );
    assert_eq!(
        muller["qualification"][0]["code"]["coding"][0]["code"],
        "G15_10/SM36"
    );
    assert_eq!(
        muller["qualification"][0]["code"]["coding"][0]["system"],
        "urn:oid:1.2.250.1.213.1.1.4.5"
    );
    let lilou = practitioners
        .iter()
        .find(|p| p["name"][0]["family"] == "LILOU")
        .unwrap();
    assert!(lilou.get("identifier").is_none() && lilou.get("qualification").is_none());
    assert!(
        practitioners
            .iter()
            .any(|p| p["name"][0]["family"] == "MANON")
    );
    // Every Practitioner with a specialty in the CDA got its qualification.
    let with_specialty = practitioners
        .iter()
        .filter(|p| p.get("qualification").is_some())
        .count();
    assert_eq!(
        with_specialty,
        practitioners.len() - 1,
        "all but LILOU have a specialty"
    );

    let patient = resources(&bundle, "Patient")[0];
    assert_eq!(
        patient["identifier"][0]["system"],
        "urn:oid:1.2.250.1.213.1.4.10"
    );
    assert_eq!(
        patient["identifier"][0]["type"]["coding"][0]["code"],
        "INS-NIR-TEST"
    );
    assert_eq!(patient["identifier"][1]["value"], "1234567890121");
    assert_eq!(patient["birthDate"], "1979-03-28");
    assert_eq!(patient["gender"], "female");

    let document = resources(&bundle, "DocumentReference")[0];
    assert_eq!(document["status"], "current");
    assert_eq!(document["type"]["coding"][0]["code"], "34794-8");
    assert_eq!(
        document["content"][0]["attachment"]["contentType"],
        "text/xml"
    );
    assert_eq!(
        document["content"][0]["attachment"]["data"],
        base64(xml.as_bytes())
    );
    assert_eq!(
        document["masterIdentifier"]["value"],
        "urn:oid:1.2.250.1.213.1.1.1.8.2022.1.1"
    );
    assert_eq!(document["securityLabel"][0]["coding"][0]["code"], "N");
    assert!(document.get("relatesTo").is_none());
}

fn c_ref(bundle: &Value, kind: &str) -> Value {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["resourceType"] == kind)
        .map(|e| e["fullUrl"].clone())
        .unwrap()
}

#[test]
fn a_replacement_relates_to_its_parent() {
    let xml = sample(TRANSVERSALE).replacen(
        "<componentOf>",
        r#"<relatedDocument typeCode="RPLC"><parentDocument><id root="1.2.250.1.213.1.1.1.8.2022.2.0"/></parentDocument></relatedDocument><componentOf>"#,
        1,
    );
    let out = adapt(&xml).unwrap();
    let r = &out.records[0];
    assert_eq!(r.status, RecordStatus::Corrected);
    let bundle = bundle_of(r);
    let document = resources(&bundle, "DocumentReference")[0];
    assert_eq!(document["relatesTo"][0]["code"], "replaces");
    assert_eq!(
        document["relatesTo"][0]["target"]["identifier"]["value"],
        "urn:oid:1.2.250.1.213.1.1.1.8.2022.2.0"
    );
    assert_eq!(document["docStatus"], "amended");
    assert_eq!(resources(&bundle, "Composition")[0]["status"], "amended");
}

#[test]
fn confidentiality_and_header_fallbacks() {
    let xml = sample(APPAREIL).replacen(
        r#"<confidentialityCode code="N""#,
        r#"<confidentialityCode code="V""#,
        1,
    );
    let r = &adapt(&xml).unwrap().records[0];
    assert_eq!(
        r.confidentiality.level,
        ConfidentialityLevel::VeryRestricted
    );
    assert_eq!(
        resources(&bundle_of(r), "Composition")[0]["confidentiality"],
        "V"
    );

    // Without the diagnosis section, the tumour comes from the topography serviceEvent.
    let xml = sample(APPAREIL).replacen(r#"code="72135-7""#, r#"code="72135-X""#, 1);
    let r = &adapt(&xml).unwrap().records[0];
    let conditions = resources(&bundle_of(r), "Condition")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(conditions.len(), 1);
    assert_eq!(conditions[0]["code"]["coding"][0]["code"], "C50.2");
    assert!(r.codes.iter().any(|c| c.code == "C50.2"));

    // Without encompassingEncounter time, the meeting date is the serviceEvent's.
    let xml = sample(APPAREIL).replacen(r#"<low value="20190218171100+0100" />"#, "", 1);
    let r = &adapt(&xml).unwrap().records[0];
    assert_eq!(r.event_time.as_deref(), Some("2019-02-18T15:45:00+01:00"));
}

#[test]
fn same_input_same_output() {
    let xml = sample(TRANSVERSALE);
    let a = adapt(&xml).unwrap();
    let b = adapt(&xml).unwrap();
    assert_eq!(a.records[0].bundle, b.records[0].bundle);
    let other = adapt(&sample(APPAREIL)).unwrap();
    assert_ne!(a.records[0].bundle, other.records[0].bundle);
}

// --- Bad input --------------------------------------------------------------------------------

#[test]
fn invalid_xml_is_malformed_with_line_and_column() {
    let (loc, reason) =
        malformed_at("<ClinicalDocument xmlns=\"urn:hl7-org:v3\">\n<id></ClinicalDocument>");
    assert!(loc.starts_with("line 2, column"), "{loc}");
    assert!(reason.contains("not well-formed XML"), "{reason}");
    let (loc, _) = malformed_at("");
    assert!(loc.starts_with("line 1"), "{loc}");
    let truncated = &sample(APPAREIL)[..20_000];
    assert!(malformed_at(truncated).0.starts_with("line "));
}

#[test]
fn non_utf8_is_malformed() {
    let err = adapter()
        .adapt(&inbound_message(
            b"<ClinicalDocument>\xe9</ClinicalDocument>",
            "text/xml",
            "t",
        ))
        .unwrap_err();
    assert!(matches!(err, AdaptError::Malformed(m) if m.location == "byte 18"));
}

#[test]
fn wrong_root_or_namespace_is_malformed() {
    let (loc, reason) = malformed_at(r#"<Bundle xmlns="http://hl7.org/fhir"/>"#);
    assert_eq!(loc, "/{http://hl7.org/fhir}Bundle");
    assert!(reason.contains("expected ClinicalDocument"), "{reason}");
    let xml =
        sample(APPAREIL).replacen(r#"xmlns="urn:hl7-org:v3""#, r#"xmlns="urn:hl7-org:v2""#, 1);
    let (loc, reason) = malformed_at(&xml);
    assert_eq!(loc, "/{urn:hl7-org:v2}ClinicalDocument");
    assert!(reason.contains("urn:hl7-org:v2"), "{reason}");
}

#[test]
fn other_document_types_are_refused() {
    let xml = sample("BIO-CR-BIO_2024.01_TSH_1.xml");
    let (loc, reason) = malformed_at(&xml);
    assert_eq!(loc, "/ClinicalDocument/code/@code");
    assert!(
        reason.contains("unsupported document type (11502-2"),
        "{reason}"
    );
    let xml = sample(APPAREIL).replacen(
        r#"code="34794-8" codeSystem="2.16.840.1.113883.6.1""#,
        r#"code="34794-8" codeSystem="1.2.3""#,
        1,
    );
    assert!(malformed_at(&xml).1.contains("in code system 1.2.3"));
    let xml = sample(APPAREIL).replacen("<code code=\"34794-8\"", "<kode code=\"34794-8\"", 1);
    assert_eq!(
        malformed_at(&xml).0,
        "/ClinicalDocument/code (the document type)"
    );
}

#[test]
fn missing_patient_identifiers_are_malformed() {
    let xml = sample(APPAREIL)
        .replacen(
            r#"<id extension="279035121518989" root="1.2.250.1.213.1.4.10"/>"#,
            "",
            1,
        )
        .replacen(
            r#"<id extension="1234567890121" root="1.2.3.4.567.8.9.10" />"#,
            r#"<id nullFlavor="NI"/>"#,
            1,
        );
    let (loc, reason) = malformed_at(&xml);
    assert_eq!(loc, "/ClinicalDocument/recordTarget/patientRole/id");
    assert!(reason.contains("no patient identifier"), "{reason}");
    // No recordTarget at all.
    let start = sample(APPAREIL).find("<recordTarget>").unwrap();
    let end = sample(APPAREIL).find("</recordTarget>").unwrap() + "</recordTarget>".len();
    let mut xml = sample(APPAREIL);
    xml.replace_range(start..end, "");
    assert_eq!(
        malformed_at(&xml).0,
        "/ClinicalDocument/recordTarget/patientRole"
    );
    // A local id alone is enough.
    let xml = sample(APPAREIL).replacen(
        r#"<id extension="279035121518989" root="1.2.250.1.213.1.4.10"/>"#,
        "",
        1,
    );
    let r = &adapt(&xml).unwrap().records[0];
    assert!(r.patient.ins.is_none() && r.patient.local_ids.len() == 1);
}

#[test]
fn bad_ins_key_is_malformed() {
    let xml = sample(APPAREIL).replacen("279035121518989", "279035121518988", 1);
    let (loc, reason) = malformed_at(&xml);
    assert_eq!(
        loc,
        "/ClinicalDocument/recordTarget/patientRole/id[1]/@extension"
    );
    assert!(reason.contains("invalid key"), "{reason}");
}

#[test]
fn missing_or_bad_effective_time_is_malformed() {
    let xml = sample(APPAREIL).replacen(r#"<effectiveTime value="20190218094914+0100" />"#, "", 1);
    assert_eq!(
        malformed_at(&xml).0,
        "/ClinicalDocument/effectiveTime/@value"
    );
    let xml = sample(APPAREIL).replacen(
        r#"<effectiveTime value="20190218094914+0100" />"#,
        r#"<effectiveTime nullFlavor="UNK"/>"#,
        1,
    );
    assert_eq!(
        malformed_at(&xml).0,
        "/ClinicalDocument/effectiveTime/@value"
    );
    let xml = sample(APPAREIL).replacen(
        r#"<effectiveTime value="20190218094914+0100" />"#,
        r#"<effectiveTime value="20191318094914+0100" />"#,
        1,
    );
    let (loc, reason) = malformed_at(&xml);
    assert_eq!(loc, "/ClinicalDocument/effectiveTime/@value");
    assert!(reason.contains("not a valid CDA time"), "{reason}");
}

#[test]
fn other_refusals() {
    let xml = sample(APPAREIL).replacen(
        r#"<confidentialityCode code="N""#,
        r#"<confidentialityCode code="X""#,
        1,
    );
    assert_eq!(
        malformed_at(&xml).0,
        "/ClinicalDocument/confidentialityCode/@code"
    );
    let xml = r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2.3"/>
      <code code="34794-8" codeSystem="2.16.840.1.113883.6.1"/><effectiveTime value="20240101"/>
      <recordTarget><patientRole><id root="1.2.3" extension="P1"/></patientRole></recordTarget>
      <author><assignedAuthor><id root="1.2.250.1.71.4.2.1" extension="8001"/></assignedAuthor></author>
      <component><nonXMLBody><text mediaType="application/pdf">JVBE</text></nonXMLBody></component>
    </ClinicalDocument>"#;
    let (loc, reason) = malformed_at(xml);
    assert_eq!(loc, "/ClinicalDocument/component/structuredBody");
    assert!(reason.contains("nonXMLBody"), "{reason}");
    let no_author = xml
        .replace("<author>", "<authorx>")
        .replace("</author>", "</authorx>");
    assert_eq!(
        malformed_at(&no_author).0,
        "/ClinicalDocument/author/assignedAuthor"
    );
    let no_id = xml.replacen(r#"<id root="1.2.3"/>"#, "", 1);
    assert_eq!(
        malformed_at(&no_id).0,
        "/ClinicalDocument/id/@root (the document id)"
    );
}

#[test]
fn a_minimal_fiche_adapts() {
    let xml = r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2.3" extension="D1"/>
      <code code="34794-8" codeSystem="2.16.840.1.113883.6.1"/><effectiveTime value="20240101"/>
      <recordTarget><patientRole><id root="1.2.3" extension="P1"/></patientRole></recordTarget>
      <author><assignedAuthor><id root="1.2.250.1.71.4.2.1" extension="8001"/></assignedAuthor></author>
      <component><structuredBody><component><section><code code="55112-7" codeSystem="2.16.840.1.113883.6.1"/></section></component></structuredBody></component>
    </ClinicalDocument>"#;
    let out = adapter()
        .adapt(&inbound_message(xml.as_bytes(), "text/xml", "t"))
        .unwrap();
    let r = &out.records[0];
    assert_eq!(r.event_time.as_deref(), Some("2024-01-01"));
    let bundle = bundle_of(r);
    // A date-only document time: the bundle's instant is the reception time.
    assert_eq!(bundle["timestamp"], "2026-01-01T00:00:00Z");
    let section = &resources(&bundle, "Composition")[0]["section"][0];
    assert_eq!(section["emptyReason"]["coding"][0]["code"], "unavailable");
    assert!(
        resources(&bundle, "CarePlan").is_empty() && resources(&bundle, "Condition").is_empty()
    );
}
