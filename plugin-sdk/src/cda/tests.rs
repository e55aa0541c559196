//! Tests on the ANS TestContenuCDA examples (`shared/samples`) and on edge cases.

use std::path::PathBuf;

use super::*;
use crate::fhir::{
    Address, AdministrativeGender, ContactPointSystem, ContactPointUse, HumanName, NameUse, Period,
    systems,
};
use crate::types::{ConfidentialityLevel, InsKind};

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/samples/ansforge-testcontenucda/ExemplesCDA")
}

/// Every CDA example of the ANS TestContenuCDA corpus: (file name, text).
fn samples() -> Vec<(String, String)> {
    let dir = samples_dir();
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (shared/samples must be beside the checkout)",
                dir.display()
            )
        })
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(out.len() >= 8, "only {} CDA samples", out.len());
    out
}

fn sample(name: &str) -> String {
    std::fs::read_to_string(samples_dir().join(name)).unwrap()
}

const HEADER: &str = r#"<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#;

fn doc(body: &str) -> String {
    format!("{HEADER}{body}</ClinicalDocument>")
}

#[test]
fn every_sample_reads_its_header() {
    for (name, text) in samples() {
        let d = Document::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let id = d.id().unwrap_or_else(|| panic!("{name}: no id"));
        assert!(id.root.starts_with("1.2.250.1.213"), "{name}: {id:?}");
        let code = d.code().unwrap();
        assert_eq!(code.code_system.as_deref(), Some(oids::LOINC), "{name}");
        assert_eq!(code.system().as_deref(), Some("http://loinc.org"), "{name}");
        assert!(d.title().is_some(), "{name}: no title");
        let t = d
            .effective_time()
            .unwrap_or_else(|| panic!("{name}: no effectiveTime"));
        assert!(t.len() == 25 && t.ends_with("+01:00"), "{name}: {t}");
        assert_eq!(d.confidentiality().as_deref(), Some("N"), "{name}");
        assert_eq!(
            d.confidentiality_level(),
            Some(ConfidentialityLevel::Normal)
        );
        assert!(d.set_id().is_some(), "{name}: no setId");
        assert!(d.version_number().is_some(), "{name}: no versionNumber");
        assert_eq!(d.language().as_deref(), Some("fr-FR"), "{name}");

        let p = d.patient().unwrap_or_else(|| panic!("{name}: no patient"));
        assert_eq!(
            p.ins,
            Some((InsKind::NirTest, "279035121518989".into())),
            "{name}"
        );
        assert!(crate::record::ins_key_is_valid(&p.ins.as_ref().unwrap().1));
        let identity = p.identity();
        assert!(identity.ins.is_some());
        let fhir = p.to_fhir();
        assert_eq!(
            fhir.identifier[0].system.as_deref(),
            Some(systems::INS_NIR_TEST)
        );
        assert!(!p.names.is_empty(), "{name}: no patient name");
        assert!(p.gender.is_some() && p.birth_date.is_some(), "{name}");
        if !name.starts_with("BIO-TROD") {
            let ipp = p
                .local_ids()
                .next()
                .unwrap_or_else(|| panic!("{name}: no IPP"));
            assert_eq!(ipp.system(), "urn:oid:1.2.3.4.567.8.9.10", "{name}");
            assert_eq!(identity.local_ids[0].value, "1234567890121", "{name}");
            assert_eq!(fhir.identifier.len(), 2, "{name}");
        }

        let authors = d.authors();
        assert!(!authors.is_empty(), "{name}: no author");
        for a in &authors {
            assert!(
                a.person.idnat_ps().is_some(),
                "{name}: author without IdNat_PS"
            );
            assert!(!a.person.names.is_empty(), "{name}: author without name");
            assert!(a.time.is_some(), "{name}: author without time");
            let pr = a.person.to_practitioner();
            assert_eq!(pr.identifier[0].system.as_deref(), Some(systems::IDNAT_PS));
        }
        assert!(
            d.legal_authenticator().is_some(),
            "{name}: no legal authenticator"
        );
    }
}

#[test]
fn every_sample_has_locatable_sections_with_text() {
    for (name, text) in samples() {
        let d = Document::parse(&text).unwrap();
        let sections = d.all_sections();
        if name.starts_with("IMG_") {
            assert!(sections.is_empty(), "{name}");
            let body = d.non_xml_body().expect("IMG level 1: nonXMLBody");
            assert_eq!(body.attribute("mediaType"), Some("application/pdf"));
            continue;
        }
        assert!(!sections.is_empty(), "{name}: no section");
        for s in &sections {
            let loc = s.location();
            assert!(
                loc.starts_with("/ClinicalDocument/component/structuredBody/component"),
                "{loc}"
            );
            assert_eq!(
                find_all(d.root(), &loc),
                vec![s.node],
                "{name}: {loc} does not find its section"
            );
            assert!(
                s.code().is_some_and(|c| c.code.is_some()),
                "{name}: {loc} has no code"
            );
            let has_content = !s.text().is_empty()
                || s.sections().next().is_some()
                || s.entries().next().is_some();
            assert!(
                has_content,
                "{name}: {loc} has neither text, subsections nor entries"
            );
            assert!(
                !s.text().contains("  "),
                "{name}: {loc}: whitespace not collapsed"
            );
        }
    }
}

#[test]
fn frcp_sections_codes_and_references() {
    let text = sample("CANCER-FRCP_2022.01_Appareil.xml");
    let d = Document::parse(&text).unwrap();
    let codes: Vec<String> = d.sections().filter_map(|s| s.code()?.code).collect();
    for expected in [
        "42349-1", "72135-7", "11348-0", "21874-3", "18776-5", "35510-7", "55112-7",
    ] {
        assert!(
            codes.iter().any(|c| c == expected),
            "{expected} missing from {codes:?}"
        );
    }
    let diagnosis = d.section("72135-7").unwrap();
    assert_eq!(diagnosis.title().as_deref(), Some("TUMEUR"));
    assert!(
        diagnosis
            .text()
            .contains("Topographie | C50.2 [CIM-10] | Quadrant supéro-interne du sein"),
        "{}",
        diagnosis.text()
    );
    let site = descendants(diagnosis.node, "targetSiteCode")
        .next()
        .unwrap();
    let site = cd(site);
    assert!(site.is(oids::ICD_10, "C50.2"));
    assert_eq!(
        site.original_text.as_deref(),
        Some("Quadrant supéro-interne du sein")
    );
    let cc = site.to_codeable_concept().unwrap();
    assert_eq!(cc.coding[0].system.as_deref(), Some(systems::ICD_10));
    assert_eq!(
        location(
            *descendants(diagnosis.node, "targetSiteCode")
                .collect::<Vec<_>>()
                .first()
                .unwrap()
        ),
        format!(
            "{}/entry/act/entryRelationship/observation/targetSiteCode",
            diagnosis.location()
        )
    );
    // The third top-level section, as in the module's example location.
    let third = d.sections().nth(2).unwrap();
    assert_eq!(
        location(child(third.node, "code").unwrap()),
        "/ClinicalDocument/component/structuredBody/component[3]/section/code"
    );
    // Nested subsections with an empty title.
    let functional = d.section("47420-5").unwrap();
    assert_eq!(functional.sections().count(), 3);
    // Header: participants, serviceEvents, encounter.
    let participants = d.participants();
    assert!(
        participants
            .iter()
            .any(|p| p.type_code.as_deref() == Some("RESP"))
    );
    let resp = participants
        .iter()
        .find(|p| p.type_code.as_deref() == Some("RESP"))
        .unwrap();
    assert_eq!(resp.person.rpps(), Some("01234567897"));
    assert_eq!(
        resp.function.as_ref().unwrap().original_text.as_deref(),
        Some("PS Coordonnateur de la RCP")
    );
    assert_eq!(
        resp.person.code.as_ref().unwrap().code.as_deref(),
        Some("G15_10/SM36")
    );
    assert_eq!(resp.person.label().as_deref(), Some("DR Charles MULLER"));
    assert_eq!(
        resp.person.organization.as_deref(),
        Some("Centre Hospitalier d'Angers")
    );
    let unknown = participants
        .iter()
        .find(|p| p.person.ids.is_empty())
        .unwrap();
    assert_eq!(unknown.person.names[0].family.as_deref(), Some("LILOU"));
    let events = d.service_events();
    assert_eq!(events.len(), 2);
    let rcp = cd(child(events[0], "code").unwrap());
    assert_eq!(
        rcp.original_text.as_deref(),
        Some("ONCO PAYS DE LA LOIRE / 3C CHU Angers / Sein")
    );
    assert!(cd(child(events[1], "code").unwrap()).is(oids::ICD_10, "C50.2"));
    assert_eq!(d.performers().len(), 1);
    let enc = d.encompassing_encounter().unwrap();
    let ids: Vec<Ii> = children(enc, "id").filter_map(ii).collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(
        ids[2].to_identifier().system.as_deref(),
        Some("urn:oid:1.2.250.1.161.1.20.3.1")
    );
    let period = ivl_ts(child(enc, "effectiveTime").unwrap()).unwrap();
    assert_eq!(period.start.as_deref(), Some("2019-02-18T17:11:00+01:00"));
    assert!(cd(child(enc, "code").unwrap()).is(oids::ACT_CODE, "VR"));
    // Patient names: birth and used.
    let names = d.patient().unwrap().names;
    assert_eq!(names.len(), 2);
    assert_eq!(names[0].use_, Some(NameUse::Official));
    assert_eq!(names[0].given, ["DOMINIQUE"]);
    assert_eq!(names[1].use_, Some(NameUse::Usual));
    assert!(d.replaced_document().is_none());
}

#[test]
fn replacements_name_their_parent() {
    let text = sample("BIO-CR-BIO_2021.01_Microbiologie_V2.xml");
    let d = Document::parse(&text).unwrap();
    let parent = d.replaced_document().unwrap();
    assert_eq!(parent.root, "1.2.250.1.213.1.1.1.55.12345.8");
    assert_eq!(
        parent.to_identifier().value.as_deref(),
        Some("urn:oid:1.2.250.1.213.1.1.1.55.12345.8")
    );
    let text = sample("IMG_CR_IMG_2024.01_CDA-R2-Niveau-1.xml");
    let parent = Document::parse(&text).unwrap().replaced_document().unwrap();
    assert_eq!(
        parent.value(),
        "urn:uuid:90e1c8ec-f951-4b26-a305-a34848818dd6"
    );
}

#[test]
fn cr_bio_values_and_reference_ranges() {
    let text = sample("BIO-CR-BIO_2024.01_TSH_1.xml");
    let d = Document::parse(&text).unwrap();
    let values: Vec<Node> = descendants(d.root(), "value")
        .filter(|v| xsi_type(*v) == Some("PQ"))
        .collect();
    let first = pq(values[0]);
    assert_eq!(first.value.as_deref(), Some("1.950"));
    assert_eq!(
        first.to_quantity().unwrap().value.unwrap().as_str(),
        "1.950"
    );
    let range = descendants(d.root(), "value")
        .find(|v| xsi_type(*v) == Some("IVL_PQ"))
        .map(ivl_pq)
        .unwrap();
    assert_eq!(range.low.as_ref().unwrap().unit.as_deref(), Some("m[IU]/L"));
    let r = range.to_range().unwrap();
    assert_eq!(r.low.unwrap().value.unwrap().as_str(), "0.270");
    // A result without LOINC: code with no @code, an originalText and a local translation.
    let text = sample("BIO-CR-BIO_2024.01_CRP_non_LOINC.xml");
    let d = Document::parse(&text).unwrap();
    let local = descendants(d.root(), "code")
        .map(cd)
        .find(|c| c.code.is_none() && !c.translations.is_empty())
        .expect("a non-LOINC result code");
    let cc = local.to_codeable_concept().unwrap();
    assert!(
        cc.coding[0]
            .system
            .as_deref()
            .unwrap()
            .starts_with("urn:oid:")
    );
}

#[test]
fn medication_sample_reads() {
    let text = sample("eP-MED-DM_2022.01_PosoStruct.xml");
    let d = Document::parse(&text).unwrap();
    let administrations: Vec<Node> = descendants(d.root(), "substanceAdministration").collect();
    assert!(!administrations.is_empty());
    let periods = administrations
        .iter()
        .filter_map(|a| children(*a, "effectiveTime").find(|t| xsi_type(*t) == Some("IVL_TS")))
        .filter_map(ivl_ts)
        .count();
    assert!(periods > 0);
}

#[test]
fn parse_errors_say_where_and_why() {
    let e =
        Document::parse("<ClinicalDocument xmlns=\"urn:hl7-org:v3\">\n  <id>\n</ClinicalDocument>")
            .unwrap_err();
    assert_eq!(e.location, "line 3, column 1", "{e}");
    assert!(e.reason.starts_with("not well-formed XML"), "{e}");
    let e = Document::parse("not xml").unwrap_err();
    assert!(e.location.starts_with("line 1"), "{e}");
    let e = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v2"/>"#).unwrap_err();
    assert_eq!(e.location, "/{urn:hl7-org:v2}ClinicalDocument");
    assert!(e.reason.contains("namespace urn:hl7-org:v2"), "{e}");
    let e = Document::parse("<ClinicalDocument/>").unwrap_err();
    assert!(e.reason.contains("no namespace"), "{e}");
    let e = Document::parse(r#"<hl7:Patient xmlns:hl7="urn:hl7-org:v3"/>"#).unwrap_err();
    assert_eq!(e.location, "/Patient");
    // No DTD, hence no entity expansion.
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><ClinicalDocument xmlns="urn:hl7-org:v3">&a;</ClinicalDocument>"#;
    assert!(Document::parse(bomb).unwrap_err().reason.contains("DTD"));
    // BOM and prefixed root.
    let ok = "\u{feff}<v3:ClinicalDocument xmlns:v3=\"urn:hl7-org:v3\"><v3:title>T</v3:title></v3:ClinicalDocument>";
    assert_eq!(Document::parse(ok).unwrap().title().as_deref(), Some("T"));
    assert_eq!(utf8(b"\xff").unwrap_err().location, "byte 0");
}

#[test]
fn declared_latin1_text_is_read_as_given() {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{}",
        doc("<title>Réunion</title>")
    );
    assert_eq!(
        Document::parse(&xml).map(|d| d.title()),
        Ok(Some("Réunion".into())).map_err(|e: CdaError| e)
    );
}

#[test]
fn locations_of_attributes_texts_and_foreign_elements() {
    let xml = doc(
        r#"<a/><a><b>x</b><sdtc:c xmlns:sdtc="urn:hl7-org:sdtc"/><o:d xmlns:o="urn:other"/></a>"#,
    );
    let d = Document::parse(&xml).unwrap();
    let b = find_path(d.root(), "a[2]/b").unwrap();
    assert_eq!(
        location(b.first_child().unwrap()),
        "/ClinicalDocument/a[2]/b/text()"
    );
    assert_eq!(
        CdaError::at_attribute(b, "code", "bad").location,
        "/ClinicalDocument/a[2]/b/@code"
    );
    let c = find_path(d.root(), "a/sdtc:c").unwrap();
    assert_eq!(location(c), "/ClinicalDocument/a[2]/sdtc:c");
    let o = d
        .root()
        .descendants()
        .find(|n| n.tag_name().name() == "d")
        .unwrap();
    assert_eq!(location(o), "/ClinicalDocument/a[2]/{urn:other}d");
    assert!(find_path(d.root(), "a[0]").is_none());
    assert!(find_path(d.root(), "a[3]").is_none());
    assert!(find_path(d.root(), "a[x]").is_none());
    assert_eq!(find_all(d.root(), "a").len(), 2);
    assert_eq!(find_path(d.root(), "/ClinicalDocument/a[2]/b"), Some(b));
}

#[test]
fn datatypes_edge_cases() {
    let xml = doc(r#"
        <id nullFlavor="UNK"/><id root=""/><id root="1.2.3"/>
        <code nullFlavor="OTH"><originalText>texte libre</originalText></code>
        <value xsi:type="PQ" value="abc" unit="mg"/>
        <value xsi:type="IVL_PQ" value="5"/>
        <effectiveTime><low value="2019"/><high value="bad"/></effectiveTime>
        <effectiveTime nullFlavor="UNK"/>
        <name>Jean Martin</name>
        <name nullFlavor="MSK"/>
        <addr nullFlavor="NAV"/><addr><streetAddressLine>1 rue X</streetAddressLine><city>Paris</city></addr>
        <telecom nullFlavor="UNK"/><telecom value="tel: "/><telecom value="https://x.fr" use="WP"/>
    "#);
    let d = Document::parse(&xml).unwrap();
    let ids: Vec<Option<Ii>> = children(d.root(), "id").map(ii).collect();
    assert_eq!(ids[0], None);
    assert_eq!(ids[1], None);
    assert_eq!(ids[2].as_ref().unwrap().key(), "1.2.3");
    let code = cd(child(d.root(), "code").unwrap());
    assert_eq!(code.null_flavor.as_deref(), Some("OTH"));
    assert_eq!(code.to_coding(), None);
    assert_eq!(
        code.to_codeable_concept().unwrap().text.as_deref(),
        Some("texte libre")
    );
    assert_eq!(code.label(), Some("texte libre"));
    assert_eq!(Cd::default().to_codeable_concept(), None);
    let values: Vec<Node> = children(d.root(), "value").collect();
    assert_eq!(pq(values[0]).to_quantity(), None);
    assert_eq!(ivl_pq(values[1]).value.unwrap().value.as_deref(), Some("5"));
    assert_eq!(ivl_pq(values[1]).to_range(), None);
    let times: Vec<Node> = children(d.root(), "effectiveTime").collect();
    assert_eq!(
        ivl_ts(times[0]),
        Some(Period {
            start: Some("2019".into()),
            end: None
        })
    );
    assert_eq!(ivl_ts(times[1]), None);
    let names: Vec<Vec<HumanName>> = children(d.root(), "name").map(pn).collect();
    assert_eq!(names[0][0].text.as_deref(), Some("Jean Martin"));
    assert!(names[1].is_empty());
    let addrs: Vec<Address> = children(d.root(), "addr").filter_map(addr).collect();
    assert_eq!(addrs.len(), 1);
    assert_eq!(addrs[0].line, ["1 rue X"]);
    let t = telecoms(d.root());
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].system, t[0].use_),
        (Some(ContactPointSystem::Url), Some(ContactPointUse::Work))
    );
    assert_eq!(system_for_oid("2.16.840.1.113883.6.96"), systems::SNOMED_CT);
    assert_eq!(system_for_oid("2.16.840.1.113883.6.8"), systems::UCUM);
    assert_eq!(system_for_oid("urn:x"), "urn:x");
    assert_eq!(
        ts_value("20190218171100.5+0200").as_deref(),
        Some("2019-02-18T17:11:00.5+02:00")
    );
    assert_eq!(ts_value(""), None);
}

#[test]
fn patient_prefers_a_nir_and_skips_null_ids() {
    let xml = doc(r#"<recordTarget><patientRole>
        <id nullFlavor="NI"/><id root="1.2.250.1.213.1.4.9" extension="100000000000012"/>
        <id root="1.2.250.1.213.1.4.8" extension="279035121518989"/><id root="1.2.9"/>
        <patient><administrativeGenderCode code="UN"/></patient></patientRole></recordTarget>"#);
    let d = Document::parse(&xml).unwrap();
    let p = d.patient().unwrap();
    assert_eq!(p.ins, Some((InsKind::Nir, "279035121518989".into())));
    assert_eq!(p.ids.len(), 3);
    assert_eq!(
        p.local_ids().count(),
        0,
        "INS and ids without extension are not local ids"
    );
    assert_eq!(p.gender, Some(AdministrativeGender::Other));
    assert!(Document::parse(&doc("")).unwrap().patient().is_none());
}

#[test]
fn deep_nesting_does_not_overflow() {
    let depth = 5_000;
    let body = format!(
        "<text>{}deep{}</text>",
        "<content>".repeat(depth),
        "</content>".repeat(depth)
    );
    let xml = doc(&body);
    let d = Document::parse(&xml).unwrap();
    let text = child(d.root(), "text").unwrap();
    assert_eq!(narrative_text(text), "");
    let deep = d.root().descendants().next_back().unwrap();
    assert!(location(deep).ends_with("content/text()"));
}
