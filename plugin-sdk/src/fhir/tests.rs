//! Tests of the FHIR builders on whole bundles, including an external validation with the
//! Python `fhir.resources` package (`tests/fhir_validate.py` at the repository root).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::*;
use crate::types::InsKind;

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// Paths (`$.entry[0].resource...`) of the empty elements FHIR forbids: `null`, `[]`, `{}`,
/// `""`.
fn empty_elements(value: &Value) -> Vec<String> {
    fn walk(value: &Value, path: &str, out: &mut Vec<String>) {
        match value {
            Value::Null => out.push(format!("{path}: null")),
            Value::String(s) if s.is_empty() => out.push(format!("{path}: empty string")),
            Value::Array(items) if items.is_empty() => out.push(format!("{path}: empty array")),
            Value::Object(map) if map.is_empty() => out.push(format!("{path}: empty object")),
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{path}[{i}]"), out);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    walk(v, &format!("{path}.{k}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, "$", &mut out);
    out
}

#[test]
fn empty_element_checker_finds_each_kind() {
    let v: Value =
        serde_json::from_str(r#"{"a":null,"b":[],"c":{},"d":"","e":[{"f":{}}],"g":1}"#).unwrap();
    let found = empty_elements(&v);
    assert_eq!(
        found,
        [
            "$.a: null",
            "$.b: empty array",
            "$.c: empty object",
            "$.d: empty string",
            "$.e[0].f: empty object"
        ]
    );
    assert!(empty_elements(&serde_json::json!({"a": [1], "b": {"c": false}})).is_empty());
}

/// The bundle of an HL7 v2 ORU lab result: Patient (INS + IPP), DiagnosticReport, a
/// quantitative Observation (unit, reference range, interpretation) and a coded one.
fn lab_result_bundle(seed: &str) -> Bundle {
    let mut bundle = Bundle::collection(seed);
    let patient = bundle.add(Patient {
        identifier: vec![
            Identifier::ins(InsKind::NirTest, "279035121518989"),
            Identifier::new("urn:oid:1.2.250.1.71.4.2.7", "IPP123")
                .with_type(systems::V2_0203, "PI")
                .with_use(IdentifierUse::Usual),
        ],
        name: vec![HumanName::new("DUPONT", ["Marie", "Louise"]).with_use(NameUse::Official)],
        gender: Some(AdministrativeGender::Female),
        birth_date: Some("1979-03-05".into()),
        ..Patient::new()
    });
    let potassium = bundle.add(Observation {
        category: vec![Observation::laboratory_category()],
        subject: Some(patient.clone()),
        effective_date_time: Some("2024-01-31T08:10:00+01:00".into()),
        issued: Some("2024-01-31T12:30:00+01:00".into()),
        value: Some(ObservationValue::Quantity(Quantity::ucum(
            dec("5.10"),
            "mmol/L",
        ))),
        interpretation: vec![Observation::interpretation("H")],
        reference_range: vec![ObservationReferenceRange {
            low: Some(Quantity::ucum(dec("3.50"), "mmol/L")),
            high: Some(Quantity::ucum(dec("5.00"), "mmol/L")),
            text: Some("3.50 - 5.00".into()),
            ..Default::default()
        }],
        ..Observation::new(
            ObservationStatus::Final,
            CodeableConcept::coded(
                systems::LOINC,
                "2823-3",
                Some("Potassium [Moles/volume] in Serum or Plasma"),
            )
            .with_coding(Coding::new("urn:oid:1.2.250.1.999.1", "K").with_display("Potassium")),
        )
    });
    let serology = bundle.add(Observation {
        category: vec![Observation::laboratory_category()],
        subject: Some(patient.clone()),
        value: Some(ObservationValue::CodeableConcept(CodeableConcept::coded(
            systems::SNOMED_CT,
            "260385009",
            Some("Negative"),
        ))),
        ..Observation::new(
            ObservationStatus::Final,
            CodeableConcept::coded(
                systems::LOINC,
                "22327-3",
                Some("HIV 1 Ab [Presence] in Serum"),
            ),
        )
    });
    bundle.add(DiagnosticReport {
        category: vec![DiagnosticReport::lab_category()],
        subject: Some(patient),
        effective_date_time: Some("2024-01-31T08:10:00+01:00".into()),
        issued: Some("2024-01-31T12:30:00+01:00".into()),
        result: vec![potassium, serology],
        conclusion: Some("Hyperkaliémie modérée".into()),
        ..DiagnosticReport::new(
            DiagnosticReportStatus::Final,
            CodeableConcept::coded(systems::LOINC, "11502-2", Some("CR d'examens biologiques")),
        )
    });
    bundle
}

fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if let ("reference", Value::String(s)) = (k.as_str(), v) {
                    out.push(s.clone());
                } else {
                    references(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

#[test]
fn lab_result_bundle_json() {
    let bundle = lab_result_bundle("MSG00042");
    let json = bundle.to_json();
    let v: Value = serde_json::from_str(&json).unwrap();

    assert_eq!(v["resourceType"], "Bundle");
    assert_eq!(v["type"], "collection");
    assert!(json.starts_with(r#"{"resourceType":"Bundle","#), "{json}");
    let entries = v["entry"].as_array().unwrap();
    let types: Vec<&str> = entries
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["Patient", "Observation", "Observation", "DiagnosticReport"]
    );
    // resourceType comes first in every resource.
    assert_eq!(json.matches(r#""resource":{"resourceType":"#).count(), 4);

    // Every reference resolves to a fullUrl of the bundle.
    let full_urls: Vec<&str> = entries
        .iter()
        .map(|e| e["fullUrl"].as_str().unwrap())
        .collect();
    for url in &full_urls {
        assert!(url.starts_with("urn:uuid:") && url.len() == 45, "{url}");
    }
    let mut refs = Vec::new();
    references(&v, &mut refs);
    assert_eq!(refs.len(), 3 + 2, "{refs:?}"); // 3 subjects, 2 results
    for r in &refs {
        assert!(full_urls.contains(&r.as_str()), "unresolved {r}");
    }
    let report = &entries[3]["resource"];
    assert_eq!(report["result"][0]["reference"], entries[1]["fullUrl"]);
    assert_eq!(report["result"][1]["reference"], entries[2]["fullUrl"]);
    assert_eq!(report["subject"]["reference"], entries[0]["fullUrl"]);
    assert_eq!(report["subject"]["type"], "Patient");

    // No empty element anywhere.
    assert_eq!(empty_elements(&v), Vec::<String>::new());

    // The patient's identifiers.
    let ids = &entries[0]["resource"]["identifier"];
    assert_eq!(ids[0]["system"], systems::INS_NIR_TEST);
    assert_eq!(ids[0]["type"]["coding"][0]["code"], "INS-NIR-TEST");
    assert_eq!(ids[1]["type"]["coding"][0]["code"], "PI");

    // The quantitative result keeps its decimals' text.
    let k = &entries[1]["resource"];
    assert_eq!(k["status"], "final");
    assert_eq!(
        k["interpretation"][0]["coding"][0]["system"],
        systems::V3_OBSERVATION_INTERPRETATION
    );
    assert_eq!(k["valueQuantity"]["system"], systems::UCUM);
    assert!(json.contains(r#""valueQuantity":{"value":5.10,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"}"#));
    assert!(json.contains(r#""low":{"value":3.50,"#) && json.contains(r#""high":{"value":5.00,"#));
    assert_eq!(
        entries[2]["resource"]["valueCodeableConcept"]["coding"][0]["code"],
        "260385009"
    );

    assert_eq!(bundle.problems(), Vec::<String>::new());
}

#[test]
fn bundles_are_deterministic_and_seeded() {
    let a = lab_result_bundle("MSG00042").to_json();
    assert_eq!(a, lab_result_bundle("MSG00042").to_json());
    let b = lab_result_bundle("MSG00043").to_json();
    assert_ne!(a, b);
    let mut bundle = Bundle::collection("MSG00042");
    let r = bundle.add(Patient::new());
    assert_eq!(
        r.reference.as_deref(),
        Some(format!("urn:uuid:{}", uuid_for(&["MSG00042", "entry", "0"])).as_str())
    );
    // Keyed entries do not depend on order.
    let mut x = Bundle::collection("S");
    x.add(Patient::new());
    let kx = x.add_keyed(
        "OBX-1",
        Observation::new(ObservationStatus::Final, CodeableConcept::from_text("a")),
    );
    let mut y = Bundle::collection("S");
    let ky = y.add_keyed(
        "OBX-1",
        Observation::new(ObservationStatus::Final, CodeableConcept::from_text("a")),
    );
    assert_eq!(kx, ky);
    assert_eq!(
        kx.reference.unwrap(),
        format!("urn:uuid:{}", uuid_for(&["S", "Observation", "OBX-1"]))
    );
    // Duplicate keys are reported.
    y.add_keyed(
        "OBX-1",
        Observation::new(ObservationStatus::Final, CodeableConcept::from_text("b")),
    );
    assert!(
        y.problems().iter().any(|p| p.contains("duplicate fullUrl")),
        "{:?}",
        y.problems()
    );
}

#[test]
fn uuid_for_is_frozen() {
    assert_eq!(
        UUID_NAMESPACE,
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, b"urn:passerelle:fhir")
    );
    // Vectors computed independently in Python (see `uuid_for`'s documentation).
    assert_eq!(
        uuid_for(&["MSG00042", "entry", "0"]),
        "94733656-81da-5777-904f-d3311c35f1c9"
    );
    assert_eq!(uuid_for(&[]), "5fb0b7ef-61fd-52bf-b028-d72d9d107df3");
    assert_eq!(
        uuid_for(&["a|b", "c"]),
        "0c474fdc-27a7-5cbc-9b46-e9d7b3f818be"
    );
    assert_eq!(
        uuid_for(&["a", "b|c"]),
        "7f572dba-443a-5bc1-b01c-a55d45d92e91"
    );
    assert_eq!(uuid_for(&["é"]), "30a30828-166f-504e-86f3-93cc6f5ca3ba");
}

#[test]
fn problems_are_reported() {
    let mut bundle = Bundle::collection("S");
    bundle.add(Observation {
        subject: Some(Reference::to(
            "urn:uuid:00000000-0000-0000-0000-000000000000",
        )),
        ..Observation::new(ObservationStatus::Final, CodeableConcept::from_text("x"))
    });
    assert_eq!(
        bundle.problems(),
        ["unresolved reference urn:uuid:00000000-0000-0000-0000-000000000000"]
    );
    let mut doc = Bundle::new(BundleType::Document, "S");
    doc.add(Patient::new());
    let problems = doc.problems();
    assert_eq!(problems.len(), 3, "{problems:?}");
}

/// Example bundles using every resource type and most elements.
pub(super) fn example_bundles() -> Vec<(&'static str, Bundle)> {
    let mut out = vec![("lab-result", lab_result_bundle("MSG00042"))];

    // A lab result with every kind of Observation value, a specimen, an encounter and a
    // validating biologist.
    let mut lab = Bundle::collection("HPRIM-0001");
    let patient = lab.add(Patient {
        identifier: vec![Identifier::ins(InsKind::Nia, "179035121518989")],
        active: Some(true),
        telecom: vec![
            ContactPoint::new(ContactPointSystem::Phone, "+33600000000")
                .with_use(ContactPointUse::Mobile),
        ],
        address: vec![Address {
            use_: Some(AddressUse::Home),
            line: vec!["1 rue de la Paix".into()],
            city: Some("Paris".into()),
            postal_code: Some("75002".into()),
            country: Some("FR".into()),
            ..Default::default()
        }],
        extension: vec![Extension::new(
            "https://example.org/fhir/StructureDefinition/test",
            ExtensionValue::Coding(Coding::new("https://example.org/cs", "x")),
        )],
        meta: Some(Meta {
            security: vec![Coding::new(systems::DMP_VISIBILITY, "MASQUE_PS")],
            ..Meta::profile("https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient")
        }),
        ..Patient::new()
    });
    let biologist = lab.add(Practitioner {
        identifier: vec![
            Identifier::new(systems::IDNAT_PS, "810002909371").with_type(systems::V2_0203, "PRN"),
        ],
        name: vec![HumanName::new("MARTIN", ["Jean"]).with_prefix("DR")],
        ..Practitioner::new()
    });
    let encounter = lab.add(Encounter {
        subject: Some(patient.clone()),
        period: Some(Period::between(
            "2024-01-30T10:00:00+01:00",
            "2024-01-31T18:00:00+01:00",
        )),
        identifier: vec![Identifier::new("urn:oid:1.2.250.1.999.2", "V42")],
        ..Encounter::new(EncounterStatus::Finished, Encounter::class_v3("IMP"))
    });
    let specimen = lab.add(Specimen {
        accession_identifier: Some(Identifier::new("urn:oid:1.2.250.1.999.3", "A123")),
        type_: Some(CodeableConcept::coded(
            systems::V2_0487,
            "BLD",
            Some("Whole blood"),
        )),
        subject: Some(patient.clone()),
        received_time: Some("2024-01-31T09:00:00+01:00".into()),
        collection: Some(SpecimenCollection {
            collected_date_time: Some("2024-01-31T08:10:00+01:00".into()),
            body_site: Some(CodeableConcept::from_text("bras gauche")),
            ..Default::default()
        }),
        note: vec![
            Annotation::new("Prélèvement hémolysé")
                .with_author("IDE")
                .with_time("2024-01-31T08:15:00+01:00"),
        ],
        ..Specimen::new()
    });
    let values = [
        ObservationValue::String("présence de cristaux".into()),
        ObservationValue::Boolean(false),
        ObservationValue::Integer(-3),
        ObservationValue::Range(Range::new(
            Some(Quantity::ucum(dec("1"), "/[HPF]")),
            Some(Quantity::ucum(dec("5"), "/[HPF]")),
        )),
        ObservationValue::Ratio(Ratio::new(
            Quantity::new(dec("1")),
            Quantity::new(dec("64")),
        )),
        ObservationValue::DateTime("2024-01-31".into()),
        ObservationValue::Period(Period::starting("2024-01-31")),
        ObservationValue::Quantity(
            Quantity::ucum(dec("0.5"), "g/L").with_comparator(QuantityComparator::Less),
        ),
    ];
    let mut results = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        results.push(lab.add_keyed(
            &format!("OBX-{i}"),
            Observation {
                identifier: vec![Identifier::new("urn:oid:1.2.250.1.999.4", format!("R{i}"))],
                subject: Some(patient.clone()),
                encounter: Some(encounter.clone()),
                performer: vec![biologist.clone()],
                specimen: Some(specimen.clone()),
                method: Some(CodeableConcept::from_text("méthode")),
                note: vec![Annotation::new("commentaire")],
                value: Some(value),
                ..Observation::new(
                    ObservationStatus::Preliminary,
                    CodeableConcept::from_text(format!("analyse {i}")),
                )
            },
        ));
    }
    let absent = lab.add(Observation {
        data_absent_reason: Some(Observation::data_absent("not-performed")),
        derived_from: vec![results[0].clone()],
        ..Observation::new(
            ObservationStatus::Cancelled,
            CodeableConcept::coded(systems::LOINC, "718-7", None),
        )
    });
    let panel = lab.add(Observation {
        has_member: results.clone(),
        based_on: vec![Reference::logical(
            "ServiceRequest",
            Identifier::new("urn:oid:1.2.250.1.999.5", "ORD1"),
        )],
        ..Observation::new(
            ObservationStatus::Final,
            CodeableConcept::from_text("panel"),
        )
    });
    results.push(absent);
    results.push(panel);
    lab.add(DiagnosticReport {
        identifier: vec![
            Identifier::new("urn:oid:1.2.250.1.999.5", "ORD1").with_type(systems::V2_0203, "FILL"),
        ],
        based_on: vec![Reference::logical(
            "ServiceRequest",
            Identifier::new("urn:oid:1.2.250.1.999.5", "ORD1"),
        )],
        subject: Some(patient.clone()),
        encounter: Some(encounter),
        performer: vec![biologist.clone()],
        results_interpreter: vec![biologist],
        specimen: vec![specimen],
        result: results,
        presented_form: vec![
            Attachment::from_bytes("application/pdf", b"%PDF-1.4 test").with_title("CR"),
        ],
        ..DiagnosticReport::new(
            DiagnosticReportStatus::Partial,
            CodeableConcept::from_text("bilan"),
        )
    });
    out.push(("lab-all-values", lab));

    // An e-prescription.
    let mut rx = Bundle::collection("RX-0001");
    let patient = rx.add(Patient {
        identifier: vec![Identifier::ins(InsKind::NirDemo, "279035121518989")],
        ..Patient::new()
    });
    let prescriber = rx.add(Practitioner {
        identifier: vec![Identifier::new(systems::IDNAT_PS, "810002909371")],
        ..Practitioner::new()
    });
    rx.add(MedicationRequest {
        identifier: vec![Identifier::new("urn:oid:1.2.250.1.999.6", "L1")],
        group_identifier: Some(Identifier::new("urn:oid:1.2.250.1.999.6", "RX1")),
        authored_on: Some("2024-01-31".into()),
        requester: Some(prescriber),
        note: vec![Annotation::new("à prendre au cours du repas")],
        extension: vec![Extension::new(
            "https://example.org/fhir/ext/ald",
            ExtensionValue::Boolean(true),
        )],
        dosage_instruction: vec![
            Dosage {
                sequence: Some(1),
                text: Some("1 comprimé 3 fois par jour pendant 7 jours".into()),
                timing: Some(Timing {
                    repeat: Some(TimingRepeat {
                        bounds_duration: Some(Quantity::ucum(dec("7"), "d")),
                        ..TimingRepeat::every(3, dec("1"), UnitsOfTime::Day)
                    }),
                    ..Default::default()
                }),
                route: Some(CodeableConcept::coded(
                    systems::EDQM,
                    "20053000",
                    Some("Oral use"),
                )),
                dose_and_rate: vec![DosageDoseAndRate::quantity(Quantity::with_unit(
                    dec("1"),
                    "comprimé",
                ))],
                max_dose_per_period: Some(Ratio::new(
                    Quantity::ucum(dec("4"), "g"),
                    Quantity::ucum(dec("1"), "d"),
                )),
                ..Default::default()
            },
            Dosage {
                sequence: Some(2),
                as_needed_codeable_concept: Some(CodeableConcept::from_text("si douleur")),
                timing: Some(Timing {
                    repeat: Some(TimingRepeat {
                        bounds_period: Some(Period::between("2024-01-31", "2024-02-07")),
                        when: vec!["HS".into()],
                        ..Default::default()
                    }),
                    code: Some(CodeableConcept::from_text("le soir")),
                    ..Default::default()
                }),
                dose_and_rate: vec![DosageDoseAndRate::range(Range::new(
                    Some(Quantity::with_unit(dec("1"), "comprimé")),
                    Some(Quantity::with_unit(dec("2"), "comprimé")),
                ))],
                ..Default::default()
            },
        ],
        dispense_request: Some(MedicationRequestDispenseRequest {
            validity_period: Some(Period::between("2024-01-31", "2024-04-30")),
            number_of_repeats_allowed: Some(2),
            quantity: Some(Quantity::with_unit(dec("2"), "boîte")),
            expected_supply_duration: Some(Quantity::ucum(dec("30"), "d")),
        }),
        substitution: Some(MedicationRequestSubstitution {
            reason: Some(CodeableConcept::from_text("MTE")),
            ..MedicationRequestSubstitution::allowed(false)
        }),
        ..MedicationRequest::new(
            MedicationRequestStatus::Active,
            MedicationRequestIntent::Order,
            CodeableConcept::coded(systems::CIP, "3400930000000", Some("PARACETAMOL 500 mg cp")),
            patient,
        )
    });
    out.push(("prescription", rx));

    // A document: a multidisciplinary oncology meeting report (CDA RCP).
    let mut doc = Bundle::document(
        "RCP-0001",
        Identifier::urn_uuid(&uuid_for(&["RCP-0001", "document"])),
        "2024-01-31T14:00:00+01:00",
    );
    let patient = doc.add(Patient {
        identifier: vec![Identifier::ins(InsKind::Nir, "279035121518989")],
        ..Patient::new()
    });
    let author = doc.add(Practitioner {
        name: vec![HumanName::new("MARTIN", ["Jean"])],
        ..Practitioner::new()
    });
    let condition = doc.add(Condition {
        clinical_status: Some(Condition::clinical_status("active")),
        verification_status: Some(Condition::verification_status("confirmed")),
        category: vec![CodeableConcept::from_text("diagnostic")],
        code: Some(CodeableConcept::coded(
            systems::ICD_10,
            "C50.9",
            Some("Tumeur maligne du sein"),
        )),
        body_site: vec![CodeableConcept::from_text("sein gauche")],
        onset_date_time: Some("2023-12-01".into()),
        recorded_date: Some("2024-01-31".into()),
        recorder: Some(author.clone()),
        stage: vec![ConditionStage {
            summary: Some(CodeableConcept::from_text("pT2N0M0")),
            ..Default::default()
        }],
        note: vec![Annotation::new("RH+")],
        ..Condition::new(patient.clone())
    });
    let plan = doc.add(CarePlan {
        title: Some("Proposition thérapeutique".into()),
        description: Some("Chimiothérapie adjuvante puis radiothérapie".into()),
        created: Some("2024-01-31".into()),
        author: Some(author.clone()),
        addresses: vec![condition.clone()],
        activity: vec![CarePlanActivity {
            detail: Some(CarePlanActivityDetail {
                kind: Some(CarePlanActivityKind::ServiceRequest),
                code: Some(CodeableConcept::from_text("radiothérapie")),
                description: Some("50 Gy en 25 fractions".into()),
                ..CarePlanActivityDetail::new(CarePlanActivityStatus::NotStarted)
            }),
            ..Default::default()
        }],
        ..CarePlan::new(
            CarePlanStatus::Active,
            CarePlanIntent::Proposal,
            patient.clone(),
        )
    });
    let document_reference = doc.add(DocumentReference {
        master_identifier: Some(Identifier::urn_uuid(&uuid_for(&["RCP-0001", "cda"]))),
        doc_status: Some(CompositionStatus::Final),
        type_: Some(CodeableConcept::coded(systems::LOINC, "75496-0", None)),
        subject: Some(patient.clone()),
        date: Some("2024-01-31T14:00:00+01:00".into()),
        author: vec![author.clone()],
        relates_to: vec![DocumentReferenceRelatesTo {
            code: DocumentRelationship::Replaces,
            target: Reference::logical(
                "DocumentReference",
                Identifier::new(systems::URN_IETF_RFC_3986, "urn:oid:1.2.3.4"),
            ),
        }],
        description: Some("Fiche RCP (CDA)".into()),
        security_label: vec![CodeableConcept::coded(
            systems::DMP_VISIBILITY,
            "INVISIBLE_PATIENT",
            None,
        )],
        content: vec![DocumentReferenceContent {
            format: Some(Coding::new(
                "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
                "urn:ihe:iti:xds-sd:pdf:2008",
            )),
            ..DocumentReferenceContent::new(Attachment::url(
                "application/pdf",
                "https://example.org/doc.pdf",
            ))
        }],
        context: Some(DocumentReferenceContext {
            period: Some(Period::starting("2024-01-31")),
            practice_setting: Some(CodeableConcept::from_text("oncologie")),
            ..Default::default()
        }),
        ..DocumentReference::new(
            DocumentReferenceStatus::Current,
            Attachment::inline("text/plain", "SGVsbG8="),
        )
    });
    doc.add(Composition {
        subject: Some(patient),
        confidentiality: Some("N".into()),
        section: vec![
            CompositionSection::new("Diagnostic", "Carcinome canalaire infiltrant <pT2>")
                .with_entry(condition),
            CompositionSection::new(
                "Proposition",
                "Chimiothérapie adjuvante\npuis radiothérapie",
            )
            .with_entry(plan)
            .with_section(CompositionSection::new("Source", "CDA").with_entry(document_reference)),
        ],
        ..Composition::new(
            CompositionStatus::Final,
            CodeableConcept::coded(systems::LOINC, "75496-0", Some("Fiche RCP")),
            "2024-01-31T14:00:00+01:00",
            author,
            "Fiche de réunion de concertation pluridisciplinaire",
        )
    });
    out.push(("document", doc));

    // A transaction: conditional update of the patient, creates of the rest.
    let mut tx = Bundle::transaction("TX-0001");
    let ins = Identifier::ins(InsKind::NirTest, "279035121518989");
    let patient = tx.add_conditional(
        Patient {
            identifier: vec![ins.clone()],
            ..Patient::new()
        },
        &ins,
    );
    tx.add(Observation {
        subject: Some(patient),
        value: Some(ObservationValue::Quantity(Quantity::ucum(
            dec("12.0"),
            "g/dL",
        ))),
        ..Observation::new(
            ObservationStatus::Final,
            CodeableConcept::coded(systems::LOINC, "718-7", None),
        )
    });
    out.push(("transaction", tx));
    out
}

#[test]
fn example_bundles_are_well_formed_and_round_trip() {
    let examples = example_bundles();
    let mut types = std::collections::BTreeSet::new();
    for (name, bundle) in &examples {
        let json = bundle.to_json();
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(empty_elements(&v), Vec::<String>::new(), "{name}");
        assert_eq!(bundle.problems(), Vec::<String>::new(), "{name}");
        for e in &bundle.entry {
            types.insert(e.resource.as_ref().unwrap().resource_type());
        }
        // Read back: equal, and the same bytes (decimals keep their text).
        let back: Bundle =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{name}: {e}\n{json}"));
        assert_eq!(&back, bundle, "{name}");
        assert_eq!(back.to_json(), json, "{name}");
        let as_resource: Resource = serde_json::from_str(&json).unwrap();
        assert_eq!(as_resource.to_json(), json, "{name}");
        let mut buffer = b"x".to_vec();
        bundle.write_json(&mut buffer);
        assert_eq!(&buffer[1..], json.as_bytes());
    }
    let all = [
        "CarePlan",
        "Composition",
        "Condition",
        "DiagnosticReport",
        "DocumentReference",
        "Encounter",
        "MedicationRequest",
        "Observation",
        "Patient",
        "Practitioner",
        "Specimen",
    ];
    assert_eq!(types.into_iter().collect::<Vec<_>>(), all);

    let doc = &examples.iter().find(|(n, _)| *n == "document").unwrap().1;
    assert_eq!(
        doc.entry[0].resource.as_ref().unwrap().resource_type(),
        "Composition"
    );
    let tx = serde_json::to_value(
        &examples
            .iter()
            .find(|(n, _)| *n == "transaction")
            .unwrap()
            .1,
    )
    .unwrap();
    assert_eq!(tx["entry"][0]["request"]["method"], "PUT");
    assert_eq!(
        tx["entry"][1]["request"],
        serde_json::json!({"method": "POST", "url": "Observation"})
    );
}

#[test]
fn invalid_json_is_rejected() {
    let obs = r#"{"resourceType":"Observation","status":"final","code":{"text":"x"}"#;
    assert!(serde_json::from_str::<Observation>(&format!("{obs}}}")).is_ok());
    // Two value[x].
    let two = format!(r#"{obs},"valueString":"a","valueBoolean":true}}"#);
    assert!(
        serde_json::from_str::<Observation>(&two)
            .unwrap_err()
            .to_string()
            .contains("more than one value[x]")
    );
    // Missing mandatory element, wrong or unknown resourceType, unknown code.
    assert!(
        serde_json::from_str::<Observation>(r#"{"resourceType":"Observation","status":"final"}"#)
            .is_err()
    );
    assert!(
        serde_json::from_str::<Observation>(
            r#"{"resourceType":"Patient","status":"final","code":{}}"#
        )
        .is_err()
    );
    assert!(serde_json::from_str::<Observation>(r#"{"status":"final","code":{}}"#).is_err());
    assert!(serde_json::from_str::<Resource>(r#"{"resourceType":"Medication"}"#).is_err());
    assert!(
        serde_json::from_str::<Resource>(
            r#"{"resourceType":"Observation","status":"done","code":{}}"#
        )
        .is_err()
    );
    let parsed: Resource =
        serde_json::from_str(&format!(r#"{obs},"valueQuantity":{{"value":1.50}}}}"#)).unwrap();
    assert!(
        parsed
            .to_json()
            .contains(r#""valueQuantity":{"value":1.50}"#)
    );
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn python_has_fhir_resources() -> bool {
    Command::new("python3")
        .args(["-c", "import fhir.resources.R4B.bundle"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Validates the example bundles with `tests/fhir_validate.py` (Python `fhir.resources`, R4B
/// models), and checks that the script does reject an invalid bundle. Skipped, with a
/// message, when the package is not installed (CI installs it).
#[test]
fn example_bundles_pass_external_validation() {
    if !python_has_fhir_resources() {
        assert!(
            std::env::var_os("PASSERELLE_REQUIRE_TOOLS").is_none(),
            "PASSERELLE_REQUIRE_TOOLS is set but python3 cannot import fhir.resources"
        );
        eprintln!(
            "SKIPPED example_bundles_pass_external_validation: python3 module fhir.resources missing \
             (pip install 'fhir.resources>=8,<9')"
        );
        return;
    }
    let script = repository_root().join("tests/fhir_validate.py");
    let dir = std::env::temp_dir().join(format!("passerelle-fhir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (name, bundle) in example_bundles() {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, bundle.to_json()).unwrap();
        files.push(path);
    }
    let output = Command::new("python3")
        .arg(&script)
        .args(&files)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "validation failed:\n{report}");
    assert!(
        report.contains(&format!("{} valid", files.len())),
        "{report}"
    );

    // The validator does catch errors, nested in entries too (an Observation without status).
    let mut v = serde_json::to_value(lab_result_bundle("BAD")).unwrap();
    v["entry"][1]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("status");
    let bad_path = dir.join("bad.json");
    std::fs::write(&bad_path, v.to_string()).unwrap();
    let output = Command::new("python3")
        .arg(&script)
        .arg(&bad_path)
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "an Observation without status passed validation"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn uuid_names_carry_each_part_length_in_decimal() {
    let long = "x".repeat(1234);
    let name = format!("1234:{long}0:2:ab");
    let expected = uuid::Uuid::new_v5(&super::UUID_NAMESPACE, name.as_bytes())
        .hyphenated()
        .to_string();
    assert_eq!(super::uuid_for(&[&long, "", "ab"]), expected);
}
