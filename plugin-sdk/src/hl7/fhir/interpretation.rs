//! Abnormal flags (HL7 v2 table 0078) → `Observation.interpretation`.
//!
//! The v2-to-FHIR ConceptMap `InterpretationCodes` keeps each active code and moves it to
//! v3 ObservationInterpretation; the five codes it leaves unmapped (inactive in v3) stay in
//! the v2 system. HPRIM Santé's result flags use the same codes.

use crate::fhir::{CodeableConcept, systems};

/// An abnormal flag as a coded interpretation: in v3 ObservationInterpretation with its
/// display for the codes the ConceptMap maps, in v2 table 0078 for the five it leaves out,
/// `None` for anything else (the caller keeps what was sent, as text). Codes are matched
/// exactly, as the tables spell them (upper case, `<`, `>`).
///
/// ```
/// use passerelle_plugin_sdk::fhir::systems;
/// use passerelle_plugin_sdk::hl7::fhir::interpretation_code;
///
/// let high = interpretation_code("H").expect("a table 0078 code");
/// assert_eq!(high.coding[0].system.as_deref(), Some(systems::V3_OBSERVATION_INTERPRETATION));
/// assert_eq!(high.coding[0].display.as_deref(), Some("High"));
/// let tox = interpretation_code("TOX").expect("kept in v2");
/// assert_eq!(tox.coding[0].system.as_deref(), Some(systems::V2_0078));
/// assert!(interpretation_code("ZZ").is_none());
/// ```
pub fn interpretation_code(code: &str) -> Option<CodeableConcept> {
    if let Some(display) = v3_display(code) {
        return Some(CodeableConcept::coded(
            systems::V3_OBSERVATION_INTERPRETATION,
            code,
            Some(display),
        ));
    }
    if matches!(code, "AC" | "HM" | "OBX" | "QCF" | "TOX") {
        return Some(CodeableConcept::coded(systems::V2_0078, code, None));
    }
    None
}

/// The active codes of the ConceptMap and their v3 displays. A `match`, not a table searched
/// at run time: the compiler compares each code as one or two loads, where a table search
/// calls `memcmp` (a byte loop inside the sandbox) for every entry of the same length.
fn v3_display(code: &str) -> Option<&'static str> {
    Some(match code {
        "<" => "Off scale low",
        ">" => "Off scale high",
        "A" => "Abnormal",
        "AA" => "Critical abnormal",
        "B" => "Better",
        "CAR" => "Carrier",
        "D" => "Significant change down",
        "DET" => "Detected",
        "E" => "Equivocal",
        "EX" => "outside threshold",
        "EXP" => "Expected",
        "H" => "High",
        "HH" => "Critical high",
        "HU" => "Significantly high",
        "I" => "Intermediate",
        "IE" => "Insufficient evidence",
        "IND" => "Indeterminate",
        "L" => "Low",
        "LL" => "Critical low",
        "LU" => "Significantly low",
        "MS" => "moderately susceptible",
        "N" => "Normal",
        "NCL" => "No CLSI defined breakpoint",
        "ND" => "Not detected",
        "NEG" => "Negative",
        "NR" => "Non-reactive",
        "NS" => "Non-susceptible",
        "POS" => "Positive",
        "R" => "Resistant",
        "RR" => "Reactive",
        "S" => "Susceptible",
        "SDD" => "Susceptible-dose dependent",
        "SYN-R" => "Synergy - resistant",
        "SYN-S" => "Synergy - susceptible",
        "U" => "Significant change up",
        "VS" => "very susceptible",
        "UNE" => "Unexpected",
        "W" => "Worse",
        "WR" => "Weakly reactive",
        _ => return None,
    })
}
