//! Native tests: one per mapping rule, the samples, errors.

use passerelle_plugin_sdk::fhir::{Decimal, TimingRepeat, UnitsOfTime, base64, systems};
use serde_json::Value;

use super::*;
use crate::timing::{add_days, pattern};

// --- Helpers ---

fn sample(rel: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const RDE_01: &str = "ms-fhir-converter/data/SampleData/Hl7v2/RDE-O11-01.hl7";
const RDE_02: &str = "ms-fhir-converter/data/SampleData/Hl7v2/RDE-O11-02.hl7";
const EP_MED_DM: &str = "ansforge-testcontenucda/ExemplesCDA/eP-MED-DM_2022.01_PosoStruct.xml";

/// A segment from `(field number, raw value)` pairs.
fn seg(name: &str, fields: &[(usize, &str)]) -> String {
    let max = fields.iter().map(|f| f.0).max().unwrap_or(0);
    let mut v = vec![""; max];
    for (n, val) in fields {
        v[n - 1] = val;
    }
    format!("{name}|{}", v.join("|"))
}

const MSH: &str = "MSH|^~\\&|LOGICIEL|CHU|PHARMA|CHU|20240131123000+0100||RDE^O11^RDE_O11|RX42|P|2.5|||||FRA|UNICODE UTF-8";
const PID: &str = "PID|1||279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS~IPP123^^^CHU&1.2.250.1.71.4.2.7&ISO^PI||DUPONT^MARIE^^^^^L||19790328|F";
const ORC: &str = "ORC|NW|CMD1^DPI||GRP1^DPI|||||20240131101500|||801234567897^MARTIN^JEAN^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS";
const RXE: &str = "RXE||3400892169026^DOLIPRANE 1000MG CPR EFFV^UCD|1||{tablet}^comprimé^UCUM||^A prendre au cours du repas||G|30|{tablet}^comprimé^UCUM|2";
const TQ1: &str = "TQ1|1||TID|||5^D&jour&ISO+|20240201";
const RXR: &str = "RXR|20053000^Voie orale^EDQM";

/// MSH + PID + the segments.
fn msg(rest: &[&str]) -> String {
    let mut segs = vec![MSH, PID];
    segs.extend(rest);
    segs.join("\r")
}

/// One full order line, with replacements for some of its segments.
fn order(orc: &str, rxe: &str, tq1: &str, rxr: &str) -> String {
    msg(&[orc, rxe, tq1, rxr])
}

fn ep() -> Eprescription {
    configure::<Eprescription>("{}").unwrap()
}

fn try_adapt_with(settings: &str, payload: &[u8]) -> Result<Adapted, AdaptError> {
    configure::<Eprescription>(settings)
        .unwrap()
        .adapt(&inbound_message(payload, HL7_V2, "test"))
}

fn try_adapt(payload: &[u8]) -> Result<Adapted, AdaptError> {
    try_adapt_with("{}", payload)
}

fn adapt(text: &str) -> Adapted {
    try_adapt(text.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn bundle(out: &Adapted) -> Value {
    assert_eq!(out.records.len(), 1);
    serde_json::from_str(&out.records[0].bundle).unwrap()
}

fn resources<'a>(b: &'a Value, kind: &str) -> Vec<&'a Value> {
    b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == kind)
        .collect()
}

/// The only MedicationRequest of a message.
fn request(text: &str) -> Value {
    let b = bundle(&adapt(text));
    let r = resources(&b, "MedicationRequest");
    assert_eq!(r.len(), 1);
    r[0].clone()
}

fn malformed_at(result: Result<Adapted, AdaptError>) -> (String, String) {
    match result {
        Err(AdaptError::Malformed(m)) => (m.location, m.reason),
        other => panic!("expected malformed, got {other:?}"),
    }
}

fn problems_free(out: &Adapted) {
    for r in &out.records {
        let mut b: passerelle_plugin_sdk::fhir::Bundle = serde_json::from_str(&r.bundle).unwrap();
        b.set_seed("x");
        assert!(b.problems().is_empty(), "{:?}", b.problems());
    }
}

// --- HL7 v2: the Microsoft samples ---

#[test]
fn rde_o11_01_facts_from_the_input() {
    let out = ep()
        .adapt(&inbound_message(&sample(RDE_01), HL7_V2, "t"))
        .unwrap();
    problems_free(&out);
    assert_eq!(out.message_type.as_deref(), Some("RDE^O11"));
    assert_eq!(out.source_message_id.as_deref(), Some("MSG00001"));
    let record = &out.records[0];
    assert!(matches!(record.kind, RecordKind::Prescription));
    assert_eq!(record.status, RecordStatus::Final);
    assert_eq!(
        record.event_time.as_deref(),
        Some("2019-11-04T06:27:26+02:15")
    );
    assert_eq!(record.patient.local_ids[0].value, "PATID1234");
    assert_eq!(record.codes[0].code, "0143963401");
    assert_eq!(record.codes[0].system, codes::NDC);
    let b = bundle(&out);
    let mr = resources(&b, "MedicationRequest");
    assert_eq!(mr.len(), 1, "one ORDER group, one line");
    let mr = mr[0];
    assert_eq!(mr["status"], "active");
    assert_eq!(mr["intent"], "order");
    assert_eq!(
        mr["medicationCodeableConcept"]["coding"][0]["code"],
        "0143963401"
    );
    let d = &mr["dosageInstruction"][0];
    // RXE-3 = 5, RXE-5 = 43^mg/hr: a text unit (no coding system).
    assert_eq!(d["doseAndRate"][0]["doseQuantity"]["value"], 5);
    assert_eq!(d["doseAndRate"][0]["doseQuantity"]["unit"], "mg/hr");
    assert!(d["doseAndRate"][0]["doseQuantity"]["code"].is_null());
    // The encoded order's RXR (IV Intravenous) wins over the order detail's (IV Infusion).
    assert_eq!(d["route"]["coding"][0]["code"], "IV");
    assert_eq!(d["route"]["coding"][0]["display"], "Intravenous");
    assert_eq!(d["route"]["coding"][0]["system"], codes::V2_0162);
    assert_eq!(d["site"]["coding"][0]["code"], "HAND");
    // The encoded order's TQ1: P (post) with event PCM, every 180 min, 2 times, start/end.
    let repeat = &d["timing"]["repeat"];
    assert_eq!(repeat["period"], 180);
    assert_eq!(repeat["periodUnit"], "min");
    assert_eq!(repeat["when"][0], "PCM");
    assert_eq!(repeat["count"], 2);
    assert!(repeat["timeOfDay"].is_null(), "timeOfDay excludes when");
    assert_eq!(repeat["boundsPeriod"]["start"], "2019-11-04T10:30:00+02:15");
    assert_eq!(d["timing"]["code"]["coding"][0]["system"], codes::V2_0335);
    assert_eq!(d["asNeededCodeableConcept"]["text"], "Its a condition text");
    // RXE-7 (3 repetitions) and TQ1-11 make the text; no patientInstruction.
    let text = d["text"].as_str().unwrap();
    assert!(text.starts_with("Titrate to BP less than 180\nStarting dose"));
    assert!(text.ends_with("Text instruction latest"));
    assert!(d["patientInstruction"].is_null());
    assert_eq!(mr["dispenseRequest"]["quantity"]["value"], 3);
    assert_eq!(mr["dispenseRequest"]["quantity"]["unit"], "Bag");
    assert_eq!(mr["dispenseRequest"]["numberOfRepeatsAllowed"], 12);
    assert_eq!(mr["groupIdentifier"]["value"], "MSG00001");
    assert_eq!(mr["identifier"][0]["value"], "1163422591");
    assert_eq!(mr["identifier"][1]["value"], "PN15");
    // ORC-12 is empty: RXE-13 (ordering provider) is the requester.
    let practitioners = resources(&b, "Practitioner");
    assert_eq!(practitioners[0]["name"][0]["family"], "TEST ONE");
    assert_eq!(resources(&b, "Encounter").len(), 1);
    // Not a French medication code: no FRMedicationRequest claim.
    assert!(mr["meta"].is_null());
}

#[test]
fn rde_o11_02_lines_share_the_group_identifier() {
    let out = ep()
        .adapt(&inbound_message(&sample(RDE_02), HL7_V2, "t"))
        .unwrap();
    problems_free(&out);
    let b = bundle(&out);
    let mr = resources(&b, "MedicationRequest");
    assert_eq!(mr.len(), 2);
    assert_eq!(mr[0]["groupIdentifier"], mr[1]["groupIdentifier"]);
    assert_eq!(
        mr[1]["medicationCodeableConcept"]["coding"][0]["code"],
        "2669"
    );
    assert_eq!(
        mr[1]["dosageInstruction"][0]["route"]["coding"][0]["code"],
        "IP"
    );
    // RXE-19 total daily dose.
    assert_eq!(
        mr[1]["dosageInstruction"][0]["maxDosePerPeriod"]["denominator"]["code"],
        "d"
    );
    assert_eq!(out.records[0].codes.len(), 2);
    // One prescriber for both lines (RXE-13 is the same).
    assert_eq!(resources(&b, "Practitioner").len(), 1);
}

#[test]
fn the_same_message_gives_the_same_bundle() {
    let a = ep()
        .adapt(&inbound_message(&sample(RDE_02), HL7_V2, "t"))
        .unwrap();
    let b = ep()
        .adapt(&inbound_message(&sample(RDE_02), HL7_V2, "u"))
        .unwrap();
    assert_eq!(a.records[0].bundle, b.records[0].bundle);
}

// --- HL7 v2: one rule each ---

#[test]
fn french_line_maps_every_element_and_claims_the_profile() {
    let out = adapt(&msg(&[ORC, RXE, "NTE|1||Ne pas écraser", TQ1, RXR]));
    problems_free(&out);
    let record = &out.records[0];
    let ins = record.patient.ins.as_ref().unwrap();
    assert_eq!(
        (ins.kind, ins.value.as_str()),
        (InsKind::NirTest, "279035121518989")
    );
    assert_eq!(
        record.patient.local_ids[0].system,
        "urn:oid:1.2.250.1.71.4.2.7"
    );
    assert_eq!(
        record.event_time.as_deref(),
        Some("2024-01-31T10:15:00+01:00")
    );
    assert_eq!(record.codes[0].system, codes::UCD);
    let b = bundle(&out);
    let mr = resources(&b, "MedicationRequest")[0];
    assert_eq!(mr["meta"]["profile"][0], v2::FR_MEDICATION_REQUEST);
    assert_eq!(
        mr["medicationCodeableConcept"]["coding"][0]["system"],
        codes::UCD
    );
    assert_eq!(
        mr["medicationCodeableConcept"]["coding"][0]["code"],
        "3400892169026"
    );
    assert_eq!(mr["authoredOn"], "2024-01-31T10:15:00+01:00");
    assert_eq!(mr["groupIdentifier"]["value"], "GRP1");
    assert_eq!(mr["groupIdentifier"]["type"]["coding"][0]["code"], "PGN");
    assert_eq!(mr["identifier"][0]["type"]["coding"][0]["code"], "PLAC");
    let d = &mr["dosageInstruction"][0];
    assert_eq!(d["doseAndRate"][0]["doseQuantity"]["code"], "{tablet}");
    assert_eq!(d["doseAndRate"][0]["doseQuantity"]["system"], systems::UCUM);
    assert_eq!(d["doseAndRate"][0]["doseQuantity"]["unit"], "comprimé");
    assert_eq!(d["route"]["coding"][0]["system"], systems::EDQM);
    assert_eq!(d["route"]["coding"][0]["code"], "20053000");
    assert_eq!(d["text"], "A prendre au cours du repas");
    let repeat = &d["timing"]["repeat"];
    assert_eq!(
        (repeat["frequency"].as_u64(), repeat["periodUnit"].as_str()),
        (Some(3), Some("d"))
    );
    // TQ1-7 start + TQ1-6 5 days: the end is computed.
    assert_eq!(repeat["boundsPeriod"]["start"], "2024-02-01");
    assert_eq!(repeat["boundsPeriod"]["end"], "2024-02-06");
    assert_eq!(d["timing"]["code"]["coding"][0]["code"], "TID");
    assert_eq!(mr["dispenseRequest"]["quantity"]["value"], 30);
    assert_eq!(mr["dispenseRequest"]["numberOfRepeatsAllowed"], 2);
    assert_eq!(mr["substitution"]["allowedBoolean"], true);
    assert_eq!(mr["note"][0]["text"], "Ne pas écraser");
    // ORC-12 with the IdNat_PS OID: the RPPS-based identifier.
    let dr = resources(&b, "Practitioner")[0];
    assert_eq!(dr["identifier"][0]["system"], systems::IDNAT_PS);
    assert_eq!(dr["identifier"][0]["value"], "801234567897");
    assert_eq!(dr["name"][0]["family"], "MARTIN");
    let patient = resources(&b, "Patient")[0];
    assert_eq!(patient["identifier"][0]["system"], systems::INS_NIR_TEST);
}

#[test]
fn status_from_orc5_then_orc1() {
    let status = |orc1: &str, orc5: &str| {
        let orc = seg("ORC", &[(1, orc1), (2, "CMD1"), (5, orc5)]);
        let out = adapt(&order(&orc, RXE, TQ1, RXR));
        let b = bundle(&out);
        let s = resources(&b, "MedicationRequest")[0]["status"].clone();
        (s.as_str().unwrap().to_string(), out.records[0].status)
    };
    assert_eq!(status("NW", ""), ("active".into(), RecordStatus::Final));
    assert_eq!(
        status("CA", ""),
        ("cancelled".into(), RecordStatus::Cancelled)
    );
    assert_eq!(status("DC", ""), ("stopped".into(), RecordStatus::Final));
    assert_eq!(status("HD", ""), ("on-hold".into(), RecordStatus::Final));
    assert_eq!(status("XO", ""), ("active".into(), RecordStatus::Corrected));
    assert_eq!(status("ZZ", ""), ("unknown".into(), RecordStatus::Unknown));
    // ORC-5 wins.
    assert_eq!(
        status("NW", "CA"),
        ("cancelled".into(), RecordStatus::Cancelled)
    );
    assert_eq!(
        status("SC", "CM"),
        ("completed".into(), RecordStatus::Final)
    );
    assert_eq!(
        status("NW", "ER"),
        ("entered-in-error".into(), RecordStatus::EnteredInError)
    );
}

#[test]
fn medication_code_systems() {
    let system_of = |rxe2: &str, settings: &str| -> Value {
        let rxe = format!("RXE||{rxe2}|1");
        let out = try_adapt_with(settings, order(ORC, &rxe, TQ1, RXR).as_bytes()).unwrap();
        let b = bundle(&out);
        resources(&b, "MedicationRequest")[0]["medicationCodeableConcept"].clone()
    };
    assert_eq!(
        system_of("3400933516390^PARACETAMOL^CIP", "{}")["coding"][0]["system"],
        systems::CIP
    );
    assert_eq!(
        system_of("3400933516390^PARACETAMOL^1.2.250.1.213.2.3.2", "{}")["coding"][0]["system"],
        systems::CIP
    );
    assert_eq!(
        system_of("3400892169026^X^1.2.250.1.213.2.61", "{}")["coding"][0]["system"],
        codes::UCD
    );
    assert_eq!(
        system_of("N02BE01^paracetamol^ATC", "{}")["coding"][0]["system"],
        codes::ATC
    );
    assert_eq!(
        system_of("PARA500^Paracétamol 500^99LOC", "{}")["coding"][0]["system"],
        "urn:passerelle:cs:99LOC"
    );
    // No coding system: a local coding and the text.
    let local = system_of("PARA500^Paracétamol 500 mg cp", "{}");
    assert!(local["coding"][0]["system"].is_null());
    assert_eq!(local["coding"][0]["code"], "PARA500");
    assert_eq!(local["text"], "Paracétamol 500 mg cp");
    let configured = system_of(
        "PARA500^Paracétamol 500 mg cp",
        r#"{"local_code_system":"urn:oid:1.2.3.4"}"#,
    );
    assert_eq!(configured["coding"][0]["system"], "urn:oid:1.2.3.4");
    // Alternate identifier (RXE-2.4-6) kept as a second coding.
    let both = system_of(
        "3400892169026^DOLIPRANE^UCD^100000090270^paracétamol^SMS",
        "{}",
    );
    assert_eq!(both["coding"][1]["system"], codes::SMS);
}

#[test]
fn dose_range_and_units() {
    let dose = |rxe: &str| -> Value {
        request(&order(ORC, rxe, TQ1, RXR))["dosageInstruction"][0]["doseAndRate"][0].clone()
    };
    let range = dose("RXE||X^Y^UCD|1|2|{tablet}^comprimé^UCUM");
    assert_eq!(range["doseRange"]["low"]["value"], 1);
    assert_eq!(range["doseRange"]["high"]["value"], 2);
    assert_eq!(range["doseRange"]["high"]["code"], "{tablet}");
    // Same minimum and maximum: a quantity.
    assert_eq!(dose("RXE||X^Y^UCD|2|2|mg")["doseQuantity"]["value"], 2);
    // A well-known UCUM unit without coding system.
    assert_eq!(
        dose("RXE||X^Y^UCD|500||mg")["doseQuantity"]["system"],
        systems::UCUM
    );
    // EDQM units.
    let edqm = dose("RXE||X^Y^UCD|1||15054000^Comprimé^EDQM")["doseQuantity"].clone();
    assert_eq!(
        (edqm["system"].as_str(), edqm["code"].as_str()),
        (Some(systems::EDQM), Some("15054000"))
    );
    // No RXE-3: TQ1-2's quantity.
    let from_tq1 = request(&order(ORC, "RXE||X^Y^UCD", "TQ1|1|2^&cp|BID", RXR));
    assert_eq!(
        from_tq1["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"],
        2
    );
    assert_eq!(
        from_tq1["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["unit"],
        "cp"
    );
}

#[test]
fn repeat_patterns() {
    let every = |f: u32, p: u32, u: UnitsOfTime| TimingRepeat {
        frequency: Some(f),
        period: Some(Decimal::from(p)),
        period_unit: Some(u),
        ..Default::default()
    };
    assert_eq!(pattern("Q8H").repeat, every(1, 8, UnitsOfTime::Hour));
    assert_eq!(pattern("Q30M").repeat, every(1, 30, UnitsOfTime::Minute));
    assert_eq!(pattern("Q2D").repeat, every(1, 2, UnitsOfTime::Day));
    assert_eq!(pattern("Q1L").repeat, every(1, 1, UnitsOfTime::Month));
    assert_eq!(pattern("BID").repeat, every(2, 1, UnitsOfTime::Day));
    assert_eq!(pattern("tid").repeat, every(3, 1, UnitsOfTime::Day));
    assert_eq!(pattern("QID").repeat, every(4, 1, UnitsOfTime::Day));
    assert_eq!(pattern("5ID").repeat, every(5, 1, UnitsOfTime::Day));
    assert_eq!(pattern("QOD").repeat, every(1, 2, UnitsOfTime::Day));
    assert_eq!(pattern("QHS").repeat.when, ["HS"]);
    assert_eq!(pattern("QAM").repeat.when, ["MORN"]);
    assert_eq!(pattern("Once").repeat.count, Some(1));
    assert_eq!(pattern("Q1J13").repeat.day_of_week, ["mon", "wed"]);
    assert_eq!(pattern("ACM").repeat.when, ["ACM"]);
    let prn = pattern("PRN");
    assert!(prn.as_needed && prn.understood);
    let q6 = pattern("Q6H PRN");
    assert!(q6.as_needed);
    assert_eq!(q6.repeat, every(1, 6, UnitsOfTime::Hour));
    assert!(pattern("PRNQ4H").as_needed);
    assert!(!pattern("WHENEVER").understood);
    assert!(!pattern("Q0H").understood);
    assert!(!pattern("Q1J8").understood);
}

#[test]
fn tq1_timing_elements() {
    let timing = |tq1: &str| -> Value {
        request(&order(ORC, RXE, tq1, RXR))["dosageInstruction"][0].clone()
    };
    // Explicit times, count, start and end.
    let d = timing(&seg(
        "TQ1",
        &[
            (1, "1"),
            (3, "Q12H"),
            (4, "0800~2000"),
            (7, "20240201"),
            (8, "20240210"),
            (14, "14"),
        ],
    ));
    let r = &d["timing"]["repeat"];
    assert_eq!(r["timeOfDay"], serde_json::json!(["08:00:00", "20:00:00"]));
    assert_eq!(r["count"], 14);
    assert_eq!(r["boundsPeriod"]["end"], "2024-02-10");
    // Duration without start: boundsDuration (UCUM).
    let d = timing("TQ1|1||BID|||7^D");
    assert_eq!(d["timing"]["repeat"]["boundsDuration"]["value"], 7);
    assert_eq!(d["timing"]["repeat"]["boundsDuration"]["code"], "d");
    // RPT-5/6 explicit period.
    let d = timing("TQ1|1||Q^^^^6^H");
    assert_eq!(d["timing"]["repeat"]["period"], 6);
    assert_eq!(d["timing"]["repeat"]["periodUnit"], "h");
    // PRN pattern: as needed; condition text: as needed for.
    assert_eq!(timing("TQ1|1||PRN")["asNeededBoolean"], true);
    let d = timing("TQ1|1||Q6H|||||||si douleur");
    assert_eq!(d["asNeededCodeableConcept"]["text"], "si douleur");
    assert!(d["asNeededBoolean"].is_null());
    // An unknown pattern stays as the timing's text.
    let d = timing("TQ1|1||TOUS LES MATINS");
    assert_eq!(d["timing"]["code"]["text"], "TOUS LES MATINS");
    assert!(d["timing"]["repeat"].is_null());
}

#[test]
fn several_tq1_give_several_dosages() {
    let mr = request(&msg(&[
        ORC,
        RXE,
        "TQ1|1||TID|||2^D|20240201",
        "TQ1|2||BID|||3^D|20240203",
        RXR,
    ]));
    let d = mr["dosageInstruction"].as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(
        (d[0]["sequence"].as_i64(), d[1]["sequence"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(d[1]["timing"]["repeat"]["frequency"], 2);
    assert_eq!(
        d[1]["timing"]["repeat"]["boundsPeriod"]["end"],
        "2024-02-06"
    );
}

#[test]
fn order_timing_and_old_tq_are_fallbacks() {
    // TQ1 before the RXE (order timing) when the encoded order has none.
    let mr = request(&msg(&[ORC, "TQ1|1||QID", RXE, RXR]));
    assert_eq!(
        mr["dosageInstruction"][0]["timing"]["repeat"]["frequency"],
        4
    );
    // RXE-1 (TQ of v2.3/2.4): quantity^interval^duration^start.
    let rxe = "RXE|1&TAB^Q8H^D7^20240201|X^Y^UCD";
    let mr = request(&msg(&[ORC, rxe, RXR]));
    let d = &mr["dosageInstruction"][0];
    assert_eq!(d["timing"]["repeat"]["period"], 8);
    assert_eq!(d["timing"]["repeat"]["boundsPeriod"]["end"], "2024-02-08");
    assert_eq!(d["doseAndRate"][0]["doseQuantity"]["unit"], "TAB");
    // ORC-7 when RXE-1 is empty; X3 is a count.
    let orc = seg("ORC", &[(1, "NW"), (2, "CMD1"), (7, "^BID^X3")]);
    let mr = request(&msg(&[&orc, "RXE||X^Y^UCD", RXR]));
    assert_eq!(mr["dosageInstruction"][0]["timing"]["repeat"]["count"], 3);
    // Nothing at all: one dosage without timing.
    let mr = request(&msg(&[ORC, "RXE||X^Y^UCD|1||mg"]));
    assert!(mr["dosageInstruction"][0]["timing"].is_null());
}

#[test]
fn as_needed_flag_in_rxe21() {
    let rxe = seg("RXE", &[(2, "X^Y^UCD"), (3, "1"), (5, "mg"), (21, "PRN")]);
    let mr = request(&order(ORC, &rxe, "TQ1|1||Q6H", RXR));
    assert_eq!(mr["dosageInstruction"][0]["asNeededBoolean"], true);
}

#[test]
fn substitution_from_rxe9() {
    let sub = |v: &str| {
        let rxe = seg("RXE", &[(2, "X^Y^UCD"), (3, "1"), (5, "mg"), (9, v)]);
        request(&order(ORC, &rxe, TQ1, RXR))["substitution"].clone()
    };
    assert_eq!(sub("N")["allowedBoolean"], false);
    assert_eq!(sub("1")["allowedBoolean"], false);
    assert_eq!(sub("G")["allowedBoolean"], true);
    assert!(sub("").is_null());
}

#[test]
fn group_identifier_falls_back_to_msh10_and_no_requester_means_no_claim() {
    let mr = request(&order("ORC|NW|CMD1", RXE, TQ1, RXR));
    assert_eq!(mr["groupIdentifier"]["value"], "RX42");
    assert!(mr["requester"].is_null());
    assert!(
        mr["meta"].is_null(),
        "requester is required by FRMedicationRequest"
    );
    assert!(mr["authoredOn"].is_null());
}

#[test]
fn notes_of_the_order_not_of_its_observations() {
    let mr = request(&msg(&[
        ORC,
        RXE,
        "NTE|1||Note de la ligne",
        TQ1,
        RXR,
        "OBX|1|NM|29463-7^Poids^LN||70|kg",
        "NTE|1||Note du poids",
    ]));
    let notes = mr["note"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["text"], "Note de la ligne");
}

// --- HL7 v2: errors ---

#[test]
fn not_rde_o11_is_unsupported() {
    let text = msg(&[]).replace("RDE^O11^RDE_O11", "ORU^R01^ORU_R01");
    match try_adapt(text.as_bytes()) {
        Err(AdaptError::Unsupported(s)) => assert!(s.contains("ORU^R01"), "{s}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_pid_is_malformed() {
    let text = [MSH, ORC, RXE, TQ1, RXR].join("\r");
    let (at, why) = malformed_at(try_adapt(text.as_bytes()));
    assert_eq!(at, "PID");
    assert!(why.contains("no PID"), "{why}");
}

#[test]
fn rxe_without_medication_code_is_malformed() {
    let text = msg(&[
        ORC,
        RXE,
        TQ1,
        RXR,
        "ORC|NW|CMD2",
        "RXE||^texte seul|1",
        TQ1,
        RXR,
    ]);
    let (at, why) = malformed_at(try_adapt(text.as_bytes()));
    assert_eq!(at, "RXE[2]-2");
    assert!(why.contains("no medication code"), "{why}");
}

#[test]
fn structure_errors_name_the_segment() {
    let (at, _) = malformed_at(try_adapt(msg(&[ORC, TQ1]).as_bytes()));
    assert_eq!(at, "ORC[1]");
    let (at, _) = malformed_at(try_adapt(msg(&[RXE, ORC]).as_bytes()));
    assert_eq!(at, "RXE[1]");
    let (at, _) = malformed_at(try_adapt(msg(&[]).as_bytes()));
    assert_eq!(at, "ORC");
    let (at, _) = malformed_at(try_adapt(msg(&[ORC, RXE, RXE]).as_bytes()));
    assert_eq!(at, "RXE[2]");
    let (at, _) = malformed_at(try_adapt(msg(&[PID, ORC, RXE]).as_bytes()));
    assert_eq!(at, "PID[2]");
}

#[test]
fn bad_numbers_and_identities_say_where() {
    let (at, why) = malformed_at(try_adapt(
        order(ORC, "RXE||X^Y^UCD|un", TQ1, RXR).as_bytes(),
    ));
    assert_eq!(at, "RXE[1]-3");
    assert!(why.contains("not a number"), "{why}");
    let rxe = seg("RXE", &[(2, "X^Y^UCD"), (3, "1"), (10, "x")]);
    let (at, _) = malformed_at(try_adapt(order(ORC, &rxe, TQ1, RXR).as_bytes()));
    assert_eq!(at, "RXE[1]-10");
    let rxe = seg("RXE", &[(2, "X^Y^UCD"), (3, "1"), (10, "1"), (12, "deux")]);
    let (at, _) = malformed_at(try_adapt(order(ORC, &rxe, TQ1, RXR).as_bytes()));
    assert_eq!(at, "RXE[1]-12");
    let bad_ins = msg(&[ORC, RXE]).replace("279035121518989", "279035121518988");
    let (at, _) = malformed_at(try_adapt(bad_ins.as_bytes()));
    assert_eq!(at, "PID[1]-3");
    let (at, _) = malformed_at(try_adapt(b"MSH|^~\\&|A\rpid|1"));
    assert_eq!(at, "line 2");
}

#[test]
fn neither_hl7_nor_cda_is_malformed() {
    let (at, _) = malformed_at(try_adapt(b"bonjour"));
    assert_eq!(at, "payload");
    let (at, _) = malformed_at(try_adapt(b""));
    assert_eq!(at, "payload");
}

#[test]
fn settings_are_checked() {
    assert!(configure::<Eprescription>(r#"{"default_timezone":"Paris"}"#).is_err());
    assert!(configure::<Eprescription>(r#"{"local_code_system":"a b"}"#).is_err());
    assert!(configure::<Eprescription>(r#"{"unknown":1}"#).is_err());
    let ep = configure::<Eprescription>(r#"{"default_timezone":"Z"}"#).unwrap();
    let out = ep.adapt(&inbound_message(
        order(
            &seg("ORC", &[(1, "NW"), (2, "CMD1"), (9, "202401311015")]),
            RXE,
            TQ1,
            RXR,
        )
        .as_bytes(),
        HL7_V2,
        "t",
    ));
    assert_eq!(
        out.unwrap().records[0].event_time.as_deref(),
        Some("2024-01-31T10:15:00Z")
    );
}

// --- CDA eP-MED-DM ---

fn cda_adapt(bytes: &[u8]) -> Result<Adapted, AdaptError> {
    ep().adapt(&inbound_message(bytes, "text/xml", "t"))
}

#[test]
fn ep_med_dm_sample() {
    let bytes = sample(EP_MED_DM);
    let out = cda_adapt(&bytes).unwrap();
    problems_free(&out);
    assert_eq!(out.message_type.as_deref(), Some(CDA_MESSAGE_TYPE));
    assert_eq!(
        out.source_message_id.as_deref(),
        Some("1.2.250.1.213.1.1.1.39.2022.2.1")
    );
    let record = &out.records[0];
    assert!(matches!(record.kind, RecordKind::Prescription));
    assert_eq!(record.status, RecordStatus::Final);
    assert_eq!(
        record.patient.ins.as_ref().unwrap().value,
        "279035121518989"
    );
    assert_eq!(record.patient.local_ids[0].value, "1234567890121");
    assert_eq!(
        record.event_time.as_deref(),
        Some("2021-12-01T09:30:00+01:00")
    );
    assert!(
        record
            .codes
            .iter()
            .any(|c| c.code == "63107752" && c.system == codes::CIS)
    );
    assert!(
        record
            .codes
            .iter()
            .any(|c| c.code == "3400933516390" && c.system == systems::CIP)
    );
    let b = bundle(&out);
    let mr = resources(&b, "MedicationRequest");
    assert_eq!(mr.len(), 2, "two prescription lines");
    for m in &mr {
        assert_eq!(
            m["groupIdentifier"]["value"],
            "urn:oid:1.2.250.1.213.1.1.1.39.2022.2.1"
        );
        assert_eq!(m["status"], "active");
        assert_eq!(m["authoredOn"], "2021-12-01T09:30:00+01:00");
        assert!(m["requester"]["reference"].is_string());
        assert_eq!(
            m["substitution"]["allowedCodeableConcept"]["coding"][0]["code"],
            "N"
        );
    }
    // Line 1: tapered doses in two subordinate administrations.
    let d = mr[0]["dosageInstruction"].as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0]["sequence"], 1);
    assert_eq!(d[0]["timing"]["repeat"]["period"], 8);
    assert_eq!(d[0]["timing"]["repeat"]["periodUnit"], "h");
    assert_eq!(
        d[0]["timing"]["repeat"]["boundsPeriod"]["start"],
        "2021-12-01"
    );
    assert_eq!(
        d[0]["timing"]["repeat"]["boundsPeriod"]["end"],
        "2021-12-03"
    );
    assert_eq!(d[1]["timing"]["repeat"]["period"], 12);
    assert_eq!(d[0]["doseAndRate"][0]["doseQuantity"]["code"], "{tablet}");
    assert_eq!(d[0]["route"]["coding"][0]["system"], systems::EDQM);
    assert_eq!(d[0]["route"]["coding"][0]["code"], "20053000");
    assert_eq!(d[0]["maxDosePerPeriod"]["denominator"]["code"], "d");
    assert!(
        d[0]["text"]
            .as_str()
            .unwrap()
            .contains("A prendre au cours d'un repas")
    );
    // The sample's preconditions point at nothing: no "as needed".
    assert!(d[0]["asNeededBoolean"].is_null());
    assert_eq!(mr[0]["dispenseRequest"]["quantity"]["code"], "30009000");
    assert_eq!(mr[0]["dispenseRequest"]["numberOfRepeatsAllowed"], 3);
    // Line 2: a magistral preparation (no code: its text), applied on the face.
    assert!(mr[1]["medicationCodeableConcept"]["coding"].is_null());
    assert!(
        mr[1]["medicationCodeableConcept"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Préparation magistrale")
    );
    assert_eq!(mr[1]["dosageInstruction"][0]["site"]["text"], "visage");
    // The document.
    let docs = resources(&b, "DocumentReference");
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["type"]["coding"][0]["code"], "57833-6");
    assert_eq!(docs[0]["content"][0]["attachment"]["data"], base64(&bytes));
    assert_eq!(
        docs[0]["masterIdentifier"]["value"],
        "urn:oid:1.2.250.1.213.1.1.1.39.2022.2.1"
    );
    let dr = resources(&b, "Practitioner")[0];
    assert_eq!(dr["identifier"][0]["value"], "801234567897");
    assert_eq!(dr["identifier"][0]["system"], systems::IDNAT_PS);
}

/// A small eP-MED-DM document around one line.
fn cda(line: &str) -> String {
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <id root="1.2.3.4" extension="DOC1"/>
  <code code="57833-6" codeSystem="2.16.840.1.113883.6.1"/>
  <title>Ordonnance</title>
  <effectiveTime value="20240131101500+0100"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <recordTarget><patientRole>
    <id root="1.2.250.1.213.1.4.10" extension="279035121518989"/>
  </patientRole></recordTarget>
  <author><time value="20240131101500+0100"/><assignedAuthor>
    <id root="1.2.250.1.71.4.2.1" extension="801234567897"/>
    <assignedPerson><name><family>MARTIN</family></name></assignedPerson>
  </assignedAuthor></author>
  <component><structuredBody><component><section>
    <code code="57828-6" codeSystem="2.16.840.1.113883.6.1"/>
    <text><content ID="cond">si douleur</content></text>
    <entry>{line}</entry>
  </section></component></structuredBody></component>
</ClinicalDocument>"##
    )
}

#[test]
fn cda_line_timing_precondition_and_profile() {
    let line = r##"<substanceAdministration classCode="SBADM" moodCode="INT">
      <statusCode code="completed"/>
      <effectiveTime xsi:type="IVL_TS"><low value="20240201"/><width value="5" unit="d"/></effectiveTime>
      <effectiveTime xsi:type="EIVL_TS" operator="A"><event code="ACM"/></effectiveTime>
      <doseQuantity value="1000" unit="mg"/>
      <consumable><manufacturedProduct><manufacturedMaterial>
        <code code="3400892169026" codeSystem="1.2.250.1.213.2.61" displayName="DOLIPRANE 1000MG CPR EFFV"/>
      </manufacturedMaterial></manufacturedProduct></consumable>
      <precondition><criterion><text><reference value="#cond"/></text></criterion></precondition>
    </substanceAdministration>"##;
    let out = cda_adapt(cda(line).as_bytes()).unwrap();
    let b = bundle(&out);
    let mr = resources(&b, "MedicationRequest")[0];
    assert_eq!(
        mr["medicationCodeableConcept"]["coding"][0]["system"],
        codes::UCD
    );
    // UCD code, author, authoredOn and a dosage: FRMedicationRequest claimed.
    assert_eq!(mr["meta"]["profile"][0], v2::FR_MEDICATION_REQUEST);
    let d = &mr["dosageInstruction"][0];
    assert_eq!(d["timing"]["repeat"]["when"][0], "ACM");
    assert_eq!(d["timing"]["repeat"]["boundsPeriod"]["end"], "2024-02-06");
    assert_eq!(d["doseAndRate"][0]["doseQuantity"]["code"], "mg");
    assert_eq!(d["asNeededCodeableConcept"]["text"], "si douleur");
}

#[test]
fn cda_errors_say_where() {
    let (at, why) = malformed_at(cda_adapt(
        b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><id>",
    ));
    assert!(at.starts_with("line 1, column"), "{at}");
    assert!(why.contains("not well-formed"), "{why}");
    let wrong = cda("").replace("57833-6", "11502-2");
    let (at, why) = malformed_at(cda_adapt(wrong.as_bytes()));
    assert_eq!(at, "/ClinicalDocument/code/@code");
    assert!(why.contains("11502-2"), "{why}");
    let (at, _) = malformed_at(cda_adapt(b"<Bundle xmlns=\"http://hl7.org/fhir\"/>"));
    assert_eq!(at, "/{http://hl7.org/fhir}Bundle");
    let no_patient = cda("")
        .replace("<recordTarget>", "<!--")
        .replace("</recordTarget>", "-->");
    let (at, _) = malformed_at(cda_adapt(no_patient.as_bytes()));
    assert_eq!(at, "/ClinicalDocument/recordTarget/patientRole");
    let no_medication = cda(
        r#"<substanceAdministration classCode="SBADM" moodCode="INT">
        <consumable><manufacturedProduct><manufacturedMaterial><code nullFlavor="NA"/></manufacturedMaterial></manufacturedProduct></consumable>
      </substanceAdministration>"#,
    );
    let (at, why) = malformed_at(cda_adapt(no_medication.as_bytes()));
    assert_eq!(
        at,
        "/ClinicalDocument/component/structuredBody/component/section/entry/substanceAdministration/consumable/manufacturedProduct/manufacturedMaterial/code"
    );
    assert!(why.contains("no medication"), "{why}");
    let (at, _) = malformed_at(cda_adapt(b"<ClinicalDocument>\xff</ClinicalDocument>"));
    assert_eq!(at, "byte 18");
}

#[test]
fn cda_replacement_is_a_correction() {
    let doc = cda("").replace(
        "<title>",
        r#"<relatedDocument typeCode="RPLC"><parentDocument><id root="1.2.3.4" extension="DOC0"/></parentDocument></relatedDocument><title>"#,
    );
    let out = cda_adapt(doc.as_bytes()).unwrap();
    assert_eq!(out.records[0].status, RecordStatus::Corrected);
    // No line: the document alone, dated by its author.
    assert_eq!(
        out.records[0].event_time.as_deref(),
        Some("2024-01-31T10:15:00+01:00")
    );
    let b = bundle(&out);
    assert_eq!(
        resources(&b, "DocumentReference")[0]["relatesTo"][0]["code"],
        "replaces"
    );
}

// --- Helpers' rules ---

#[test]
fn dates_move_by_days() {
    assert_eq!(add_days("2024-02-27", 3).as_deref(), Some("2024-03-01"));
    assert_eq!(
        add_days("2023-12-31T10:00:00+01:00", 1).as_deref(),
        Some("2024-01-01T10:00:00+01:00")
    );
    assert_eq!(add_days("2024-03-01", -1).as_deref(), Some("2024-02-29"));
    assert_eq!(add_days("2024-01", 1), None);
    assert_eq!(add_days("2024-01-é1", 1), None);
}

#[test]
fn sniffing() {
    assert_eq!(sniff(b"\xEF\xBB\xBF\x0bMSH|^~\\&"), Some(Input::Hl7));
    assert_eq!(
        sniff(b"  <?xml version='1.0'?><ClinicalDocument/>"),
        Some(Input::Xml)
    );
    assert_eq!(
        sniff(b"garbage <ClinicalDocument xmlns='urn:hl7-org:v3'/>"),
        Some(Input::Xml)
    );
    assert_eq!(sniff(b"PID|1"), None);
}
