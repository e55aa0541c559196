//! Code systems, coded values (CE/CWE/CNE), units and status tables.

use std::borrow::Cow;

use passerelle_plugin_sdk::fhir::{
    CodeableConcept, Coding, DiagnosticReportStatus, ObservationStatus, Quantity, systems,
};
use passerelle_plugin_sdk::fhir::{Decimal, SimpleQuantity};
use passerelle_plugin_sdk::hl7::{Component, Field, Repetition};

use passerelle_plugin_sdk::hl7::fhir::text::{Comps, comp, fhir_code, is_uri, trim_cow};
use passerelle_plugin_sdk::hl7::fhir::{interpretation_code, system_uri};

fn coding(code: &str, display: &str, system: &str, default_system: Option<&str>) -> Option<Coding> {
    let code = fhir_code(code)?;
    let system = match system_uri(system) {
        Some(s) => Some(s.into_owned()),
        None => default_system.map(str::to_string),
    };
    Some(Coding {
        system,
        code: Some(code.into_owned()),
        display: (!display.is_empty()).then(|| display.to_string()),
        ..Default::default()
    })
}

/// A CE/CWE/CNE value as a CodeableConcept: the identifier triplets (1-3, 4-6, 10-12) as
/// codings, the original text (9) as text. A triplet without a code contributes its text.
/// `default_system` applies to triplets without a coding system (the field's default table).
/// `None` when there is nothing.
pub fn cwe(rep: &Repetition<'_>, default_system: Option<&str>) -> Option<CodeableConcept> {
    // Split once: the components are read several times.
    let mut parts: [Option<Component<'_>>; 12] = [None; 12];
    for (i, c) in rep.components().take(12).enumerate() {
        parts[i] = Some(c).filter(|c| !c.is_empty());
    }
    if parts.iter().all(Option::is_none) {
        return None;
    }
    let get = |n: usize| -> Cow<'_, str> {
        match parts[n - 1] {
            Some(c) => trim_cow(c.value()),
            None => Cow::Borrowed(""),
        }
    };
    let mut cc = CodeableConcept::default();
    let mut fallback_text: Option<Cow<'_, str>> = None;
    for (c, t, s) in [(1, 2, 3), (4, 5, 6), (10, 11, 12)] {
        let code = get(c);
        if code.is_empty() {
            let text = get(t);
            if fallback_text.is_none() && !text.is_empty() {
                fallback_text = Some(text);
            }
            continue;
        }
        if let Some(coding) = coding(&code, &get(t), &get(s), default_system)
            && !cc
                .coding
                .iter()
                .any(|x| x.code == coding.code && x.system == coding.system)
        {
            cc.coding.push(coding);
        }
    }
    let original = get(9);
    if !original.is_empty() {
        cc.text = Some(original.into_owned());
    } else if cc.coding.is_empty() {
        cc.text = fallback_text.map(Cow::into_owned);
    }
    (!cc.coding.is_empty() || cc.text.is_some()).then_some(cc)
}

/// The first repetition of a coded field.
pub fn cwe_field(field: &Field<'_>, default_system: Option<&str>) -> Option<CodeableConcept> {
    cwe(&field.repetition(1), default_system)
}

/// Whether a concept has a LOINC coding.
pub fn has_loinc(cc: &CodeableConcept) -> bool {
    cc.coding
        .iter()
        .any(|c| c.system.as_deref() == Some(systems::LOINC))
}

// --- Units ---

/// UCUM codes accepted as such when OBX-6 names no coding system (case-sensitive, exact).
const KNOWN_UCUM: &[&str] = &[
    "%",
    "g/L",
    "g/dL",
    "mg/dL",
    "mg/L",
    "ug/L",
    "ug/mL",
    "ng/mL",
    "ng/L",
    "pg/mL",
    "mmol/L",
    "umol/L",
    "nmol/L",
    "pmol/L",
    "mol/L",
    "meq/L",
    "mosm/kg",
    "U/L",
    "[IU]/L",
    "m[IU]/L",
    "m[IU]/mL",
    "u[IU]/mL",
    "mU/L",
    "10*9/L",
    "10*12/L",
    "10*3/uL",
    "10*6/uL",
    "/uL",
    "fL",
    "pg",
    "s",
    "min",
    "h",
    "mm/h",
    "mm[Hg]",
    "mL/min",
    "mL/min/{1.73_m2}",
    "kg",
    "g",
    "mg",
    "cm",
    "m",
    "L",
    "mL",
    "Cel",
    "[pH]",
    "{ratio}",
    "kU/L",
    "g/(24.h)",
    "mmol/(24.h)",
];

/// A unit from OBX-6: the displayed text and, when it is one, the UCUM code.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Unit {
    pub text: Option<String>,
    pub ucum: Option<String>,
}

/// OBX-6: `unit` = text (6.2, else 6.1); UCUM `code` = 6.1 when 6.3 says UCUM, or when 6.3 is
/// empty and 6.1 is a well-known UCUM code.
pub fn unit(field: &Field<'_>) -> Unit {
    let rep = field.repetition(1);
    if rep.is_empty() {
        return Unit::default();
    }
    let c = Comps::of(&rep);
    let (id, text, system) = (c.get(1), c.get(2), c.get(3));
    let is_ucum = !id.is_empty()
        && (system.eq_ignore_ascii_case("UCUM")
            || system == "2.16.840.1.113883.6.8"
            || (system.is_empty() && KNOWN_UCUM.contains(&id.as_ref())))
        && is_uri(&id);
    let shown = if text.is_empty() { &id } else { &text };
    Unit {
        text: (!shown.is_empty()).then(|| shown.to_string()),
        ucum: is_ucum.then(|| id.to_string()),
    }
}

/// A quantity with the unit.
pub fn quantity(value: Decimal, unit: &Unit) -> Quantity {
    Quantity {
        value: Some(value),
        comparator: None,
        unit: unit.text.clone(),
        system: unit.ucum.as_ref().map(|_| systems::UCUM.to_string()),
        code: unit.ucum.clone(),
    }
}

/// A simple quantity (no comparator) with the unit.
pub fn simple_quantity(value: Decimal, unit: &Unit) -> SimpleQuantity {
    quantity(value, unit)
}

// --- Interpretation (OBX-8): v2 table 0078 → v3 ObservationInterpretation ---

/// One OBX-8 repetition as an interpretation concept.
pub fn interpretation(rep: &Repetition<'_>) -> Option<CodeableConcept> {
    let code = comp(rep, 1);
    if code.is_empty() {
        return None;
    }
    if let Some(coded) = interpretation_code(&code) {
        return Some(coded);
    }
    // Not a table 0078 code: keep what was sent as text.
    let text = comp(rep, 2);
    Some(CodeableConcept::from_text(if text.is_empty() {
        code.into_owned()
    } else {
        text.into_owned()
    }))
}

// --- Statuses ---

/// OBX-11 (table 0085) → Observation.status, per the ConceptMap
/// `ObservationResultStatusCodesInterpretation` for the codes it maps (F, P, C, A, D, W, X);
/// for the codes it leaves unmapped: I and O (no result yet) → registered, R and S (results not
/// verified / partial) → preliminary, U, V and B (final, verified, appended) → final, N (not
/// asked) → cancelled; anything else → unknown.
pub fn observation_status(code: &str) -> ObservationStatus {
    match code.trim() {
        "F" | "U" | "V" | "B" => ObservationStatus::Final,
        "P" | "R" | "S" => ObservationStatus::Preliminary,
        "C" => ObservationStatus::Corrected,
        "A" => ObservationStatus::Amended,
        "D" | "W" => ObservationStatus::EnteredInError,
        "X" | "N" => ObservationStatus::Cancelled,
        "I" | "O" => ObservationStatus::Registered,
        _ => ObservationStatus::Unknown,
    }
}

/// OBR-25 (table 0123) → DiagnosticReport.status; `None` when empty or unknown (the caller
/// derives it from the OBX statuses).
pub fn report_status(code: &str) -> Option<DiagnosticReportStatus> {
    match code.trim() {
        "F" => Some(DiagnosticReportStatus::Final),
        "P" => Some(DiagnosticReportStatus::Preliminary),
        "C" | "M" => Some(DiagnosticReportStatus::Corrected),
        "A" => Some(DiagnosticReportStatus::Partial),
        "R" | "S" | "I" | "O" => Some(DiagnosticReportStatus::Registered),
        "X" => Some(DiagnosticReportStatus::Cancelled),
        "D" | "W" => Some(DiagnosticReportStatus::EnteredInError),
        _ => None,
    }
}

/// The report status from its observations when OBR-25 says nothing.
pub fn report_status_from(statuses: &[ObservationStatus]) -> DiagnosticReportStatus {
    use ObservationStatus as O;
    if statuses.is_empty() {
        return DiagnosticReportStatus::Unknown;
    }
    let all = |f: fn(&O) -> bool| statuses.iter().all(f);
    let any = |s: O| statuses.contains(&s);
    if all(|s| *s == O::EnteredInError) {
        DiagnosticReportStatus::EnteredInError
    } else if all(|s| *s == O::Cancelled) {
        DiagnosticReportStatus::Cancelled
    } else if any(O::Corrected) || any(O::Amended) {
        DiagnosticReportStatus::Corrected
    } else if all(|s| matches!(s, O::Final | O::Cancelled | O::EnteredInError)) {
        DiagnosticReportStatus::Final
    } else if all(|s| *s == O::Registered) {
        DiagnosticReportStatus::Registered
    } else if any(O::Final) || any(O::Preliminary) {
        if any(O::Registered) {
            DiagnosticReportStatus::Partial
        } else {
            DiagnosticReportStatus::Preliminary
        }
    } else {
        DiagnosticReportStatus::Unknown
    }
}

/// A report OBR-25 says is final, refined by its results: all withdrawn → entered-in-error;
/// some corrected → corrected.
pub fn refine_final(statuses: &[ObservationStatus]) -> DiagnosticReportStatus {
    use ObservationStatus as O;
    if !statuses.is_empty() && statuses.iter().all(|s| *s == O::EnteredInError) {
        DiagnosticReportStatus::EnteredInError
    } else if statuses
        .iter()
        .any(|s| matches!(s, O::Corrected | O::Amended))
    {
        DiagnosticReportStatus::Corrected
    } else {
        DiagnosticReportStatus::Final
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_status_derivation() {
        use ObservationStatus as O;
        assert_eq!(
            report_status_from(&[O::Final, O::Final]),
            DiagnosticReportStatus::Final
        );
        assert_eq!(
            report_status_from(&[O::Final, O::Registered]),
            DiagnosticReportStatus::Partial
        );
        assert_eq!(
            report_status_from(&[O::Final, O::Corrected]),
            DiagnosticReportStatus::Corrected
        );
        assert_eq!(report_status_from(&[]), DiagnosticReportStatus::Unknown);
    }
}
