//! Code systems (medications above all), coded values (CE/CWE), units and status tables.

use std::borrow::Cow;

use passerelle_plugin_sdk::fhir::{
    CodeableConcept, Coding, Decimal, MedicationRequestStatus, Quantity, UnitsOfTime, systems,
};
use passerelle_plugin_sdk::hl7::{Component, Repetition};

use passerelle_plugin_sdk::hl7::fhir::text::{fhir_code, is_uri, trim_cow};

/// UCD (Unités Communes de Dispensation): the ANS ePrescription IG's `$UCD` alias
/// (`input/fsh/aliases.fsh`, used by its examples: `$UCD#3400890020275`). Its CI-SIS OID is
/// `1.2.250.1.213.2.61` (CI-SIS eP-MED-DM `manufacturedMaterial/code` rules).
pub const UCD: &str = "http://data.esante.gouv.fr/ansm/medicament/UCD";
/// SMS substance codes (EMA Substance Management Service): the IG's `$SMS` alias; the
/// eP-MED-DM sample writes the same codes (`100000090270` paracétamol) under the OID
/// `2.16.840.1.113883.3.6905.2`.
pub const SMS: &str = "http://data.esante.gouv.fr/ansm/medicament/codeSMS";
/// CIS (Code Identifiant de Spécialité), OID `1.2.250.1.213.2.3.1` (eP-MED-DM sample).
pub const CIS: &str = "urn:oid:1.2.250.1.213.2.3.1";
/// Médicament virtuel (Medicabase), OID `1.2.250.1.213.2.59` (eP-MED-DM sample).
pub const MV: &str = "urn:oid:1.2.250.1.213.2.59";
/// ATC (WHO), the FHIR URL; OID `2.16.840.1.113883.6.73`.
pub const ATC: &str = "http://www.whocc.no/atc";
/// NDC (US), the FHIR URL; OID `2.16.840.1.113883.6.69`.
pub const NDC: &str = "http://hl7.org/fhir/sid/ndc";
/// HL7 v2 table 0162, routes of administration.
pub const V2_0162: &str = "http://terminology.hl7.org/CodeSystem/v2-0162";
/// HL7 v2 table 0165, administration methods.
pub const V2_0165: &str = "http://terminology.hl7.org/CodeSystem/v2-0165";
/// HL7 v2 table 0335, repeat patterns.
pub const V2_0335: &str = "http://terminology.hl7.org/CodeSystem/v2-0335";
/// The EDQM Standard Terms OID (CDA `codeSystem`).
pub const EDQM_OID: &str = "0.4.0.127.0.16.1.1.2.1";

/// The medication (and EDQM) code systems known by name or OID.
fn medication_system(name: &str) -> Option<&'static str> {
    let is = |s: &str| name.eq_ignore_ascii_case(s);
    Some(
        if is("UCD") || is("UCD7") || is("UCD13") || name == "1.2.250.1.213.2.61" || name == UCD {
            UCD
        } else if is("CIP") || is("CIP7") || is("CIP13") || name == "1.2.250.1.213.2.3.2" {
            systems::CIP
        } else if is("CIS") || name == "1.2.250.1.213.2.3.1" {
            CIS
        } else if is("MV") || name == "1.2.250.1.213.2.59" {
            MV
        } else if is("SMS") || name == "2.16.840.1.113883.3.6905.2" {
            SMS
        } else if is("ATC") || is("WHOATC") || name == "2.16.840.1.113883.6.73" {
            ATC
        } else if is("NDC") || name == "2.16.840.1.113883.6.69" {
            NDC
        } else if is("EDQM") || name == EDQM_OID {
            systems::EDQM
        } else {
            return None;
        },
    )
}

/// The FHIR system of an HL7 v2 coding system name (CWE-3) or of a CDA code system OID;
/// `None` when empty.
///
/// Medication systems first (UCD, CIP, CIS, MV, SMS, ATC, NDC, EDQM: see the constants), then
/// the SDK's [`hl7::fhir::system_uri`](passerelle_plugin_sdk::hl7::fhir::system_uri): LN →
/// LOINC, SCT → SNOMED CT, UCUM, I10 → ICD-10, `HL7nnnn` → terminology.hl7.org v2 table;
/// another OID becomes `urn:oid:`; a URI is kept; any other name becomes
/// `urn:passerelle:cs:<name>`.
pub fn system_uri(name: &str) -> Option<Cow<'_, str>> {
    let name = name.trim();
    if let Some(s) = medication_system(name) {
        return Some(Cow::Borrowed(s));
    }
    passerelle_plugin_sdk::hl7::fhir::system_uri(name)
}

/// The FHIR system of a CDA `codeSystem` OID: the medication systems of [`system_uri`], else
/// the SDK's mapping (`cda::system_for_oid`).
pub fn cda_system(oid: &str) -> String {
    match medication_system(oid.trim()) {
        Some(s) => s.to_string(),
        None => passerelle_plugin_sdk::cda::system_for_oid(oid),
    }
}

/// One CWE component, unescaped (first subcomponent) and trimmed.
fn part<'m>(parts: &[Option<Component<'m>>], n: usize) -> Cow<'m, str> {
    match parts.get(n - 1).copied().flatten() {
        Some(c) => trim_cow(c.value()),
        None => Cow::Borrowed(""),
    }
}

/// A CE/CWE value as a CodeableConcept: the identifier triplets (1-3, 4-6) as codings, the
/// original text (9) as text, else the first triplet's text when no triplet is coded.
/// `default_system` applies to triplets without a coding system. `None` when there is nothing.
pub fn cwe(rep: &Repetition<'_>, default_system: Option<&str>) -> Option<CodeableConcept> {
    let mut parts: [Option<Component<'_>>; 9] = [None; 9];
    for (i, c) in rep.components().take(9).enumerate() {
        parts[i] = Some(c).filter(|c| !c.is_empty());
    }
    if parts.iter().all(Option::is_none) {
        return None;
    }
    let mut cc = CodeableConcept::default();
    let mut texts: Vec<Cow<'_, str>> = Vec::new();
    for (c, t, s) in [(1, 2, 3), (4, 5, 6)] {
        let text = part(&parts, t);
        if !text.is_empty() {
            texts.push(text.clone());
        }
        let Some(code) = fhir_code(&part(&parts, c)).map(Cow::into_owned) else {
            continue;
        };
        let system = match system_uri(&part(&parts, s)) {
            Some(s) => Some(s.into_owned()),
            None => default_system.map(str::to_string),
        };
        if cc
            .coding
            .iter()
            .any(|x| x.code.as_deref() == Some(&code) && x.system == system)
        {
            continue;
        }
        cc.coding.push(Coding {
            system,
            code: Some(code),
            display: (!text.is_empty()).then(|| text.into_owned()),
            ..Default::default()
        });
    }
    let original = part(&parts, 9);
    if !original.is_empty() {
        cc.text = Some(original.into_owned());
    } else if cc.coding.is_empty() {
        cc.text = texts.into_iter().next().map(Cow::into_owned);
    }
    (!cc.coding.is_empty() || cc.text.is_some()).then_some(cc)
}

/// The text of a CWE: original text (9), else text (2), else the identifier (1).
pub fn cwe_text(rep: &Repetition<'_>) -> Option<String> {
    [9, 2, 5, 1]
        .into_iter()
        .map(|n| trim_cow(rep.component(n).value()))
        .find(|t| !t.is_empty())
        .map(Cow::into_owned)
}

// --- Units and quantities ---

/// UCUM codes accepted as such when the unit names no coding system (case-sensitive, exact).
const KNOWN_UCUM: &[&str] = &[
    "mg",
    "g",
    "ug",
    "ng",
    "kg",
    "mL",
    "L",
    "dL",
    "uL",
    "[iU]",
    "[IU]",
    "m[iU]",
    "m[IU]",
    "U",
    "mU",
    "mmol",
    "umol",
    "mol",
    "meq",
    "%",
    "mg/h",
    "mL/h",
    "ug/h",
    "[iU]/h",
    "mg/kg",
    "ug/kg",
    "mg/d",
    "mg/(kg.d)",
    "{tablet}",
    "{capsule}",
    "{drop}",
    "{puff}",
    "{dose}",
    "s",
    "min",
    "h",
    "d",
    "wk",
    "mo",
    "a",
];

/// A quantity with the unit of a CWE (`code^text^system`): UCUM when the system says so (or
/// names none and the code is a well-known UCUM unit), EDQM when coded so, else the unit as
/// text only (FHIR wants a system with a coded unit).
pub fn quantity(value: Decimal, unit: &Repetition<'_>) -> Quantity {
    let code = trim_cow(unit.component(1).value());
    let text = trim_cow(unit.component(2).value());
    let system = trim_cow(unit.component(3).value());
    let shown = if text.is_empty() { &code } else { &text };
    let coded_system = if code.is_empty() || !is_uri(&code) {
        None
    } else if system.eq_ignore_ascii_case("UCUM")
        || system == "2.16.840.1.113883.6.8"
        || (system.is_empty() && KNOWN_UCUM.contains(&code.as_ref()))
    {
        Some(systems::UCUM)
    } else if system.eq_ignore_ascii_case("EDQM") || system == EDQM_OID {
        Some(systems::EDQM)
    } else {
        None
    };
    Quantity {
        value: Some(value),
        comparator: None,
        unit: (!shown.is_empty()).then(|| shown.to_string()),
        system: coded_system.map(str::to_string),
        code: coded_system.map(|_| code.to_string()),
    }
}

/// A time unit as written in HL7 v2 (table 0335 letters `S M H D W L`, ISO+ and UCUM codes,
/// English words): the FHIR unit of time.
pub fn time_unit(unit: &str) -> Option<UnitsOfTime> {
    let u = unit.trim();
    let lower = u.to_ascii_lowercase();
    Some(match lower.as_str() {
        "s" | "sec" | "second" | "seconds" => UnitsOfTime::Second,
        "min" | "minute" | "minutes" => UnitsOfTime::Minute,
        // `M` alone is minutes in table 0335 (Q<n>M); UCUM `mo` is months.
        "m" if u == "M" => UnitsOfTime::Minute,
        "h" | "hr" | "hrs" | "hour" | "hours" => UnitsOfTime::Hour,
        "d" | "day" | "days" => UnitsOfTime::Day,
        "w" | "wk" | "week" | "weeks" => UnitsOfTime::Week,
        "l" | "mo" | "month" | "months" => UnitsOfTime::Month,
        "a" | "y" | "yr" | "year" | "years" => UnitsOfTime::Year,
        _ => return None,
    })
}

/// The UCUM code of a unit of time.
pub fn ucum_time(unit: UnitsOfTime) -> &'static str {
    match unit {
        UnitsOfTime::Second => "s",
        UnitsOfTime::Minute => "min",
        UnitsOfTime::Hour => "h",
        UnitsOfTime::Day => "d",
        UnitsOfTime::Week => "wk",
        UnitsOfTime::Month => "mo",
        UnitsOfTime::Year => "a",
    }
}

/// A FHIR `Duration`: a value with a UCUM unit of time.
pub fn duration(value: Decimal, unit: UnitsOfTime) -> Quantity {
    Quantity::ucum(value, ucum_time(unit))
}

// --- Statuses ---

/// ORC-5 order status (table 0038) → MedicationRequest.status; `None` when empty or unknown.
/// IP (in process), SC (scheduled) and A (some results) are `active`; RP (replaced) is
/// `stopped`: the order no longer applies, its replacement does.
pub fn status_from_orc5(code: &str) -> Option<MedicationRequestStatus> {
    use MedicationRequestStatus as S;
    Some(match code.trim() {
        "IP" | "SC" | "A" => S::Active,
        "CA" => S::Cancelled,
        "CM" => S::Completed,
        "DC" | "RP" => S::Stopped,
        "ER" => S::EnteredInError,
        "HD" => S::OnHold,
        _ => return None,
    })
}

/// ORC-1 order control (table 0119) → MedicationRequest.status, when ORC-5 says nothing:
/// new, accepted, changed or released orders are `active`; cancelled ones `cancelled`;
/// discontinued ones `stopped`; held ones `on-hold`; anything else `unknown`.
pub fn status_from_orc1(code: &str) -> MedicationRequestStatus {
    use MedicationRequestStatus as S;
    match code.trim() {
        "NW" | "OK" | "SN" | "NA" | "RL" | "OR" | "XO" | "XR" | "XX" | "RP" | "RO" | "RU"
        | "PA" | "CH" | "SC" | "SS" | "UA" | "UX" => S::Active,
        "CA" | "CR" | "OC" | "UC" => S::Cancelled,
        "DC" | "DR" | "OD" | "UD" => S::Stopped,
        "HD" | "HR" | "OH" | "UH" => S::OnHold,
        "DE" => S::EnteredInError,
        _ => S::Unknown,
    }
}

/// Whether ORC-1 says the order replaces or changes an earlier one.
pub fn is_change(orc1: &str) -> bool {
    matches!(orc1.trim(), "XO" | "XX" | "XR" | "RP" | "RO" | "RU")
}
