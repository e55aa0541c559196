//! Result (OBX-11) and report (OBR-25) statuses (the record status of a report status is
//! `DiagnosticReportStatus::record_status`, in the SDK).

use passerelle_plugin_sdk::fhir::{DiagnosticReportStatus, ObservationStatus};

/// OBX-11: F, U → final; P, R → preliminary; C → corrected; I → registered; D →
/// entered-in-error; X → cancelled.
pub fn observation_status_of(code: &str) -> Option<ObservationStatus> {
    match code.trim().to_ascii_uppercase().as_str() {
        "F" | "U" => Some(ObservationStatus::Final),
        "P" | "R" => Some(ObservationStatus::Preliminary),
        "C" => Some(ObservationStatus::Corrected),
        "I" => Some(ObservationStatus::Registered),
        "D" => Some(ObservationStatus::EnteredInError),
        "X" => Some(ObservationStatus::Cancelled),
        _ => None,
    }
}

/// The status an OBX without OBX-11 inherits from OBR-25.
pub(super) fn inherited_status(obr25: &str) -> Option<ObservationStatus> {
    match obr25.trim().to_ascii_uppercase().as_str() {
        "F" => Some(ObservationStatus::Final),
        "P" => Some(ObservationStatus::Preliminary),
        "C" => Some(ObservationStatus::Corrected),
        "X" => Some(ObservationStatus::Cancelled),
        "I" | "O" => Some(ObservationStatus::Registered),
        _ => None,
    }
}

/// The report status: OBR-25 (F, P, C, X, I/O), else from the results; a final report whose
/// results are all deleted is entered-in-error, one with corrected results corrected.
pub fn report_status(obr25: &str, statuses: &[ObservationStatus]) -> DiagnosticReportStatus {
    use DiagnosticReportStatus as D;
    use ObservationStatus as O;
    let any = |s: O| statuses.contains(&s);
    let all = |f: fn(&O) -> bool| !statuses.is_empty() && statuses.iter().all(f);
    match obr25.trim().to_ascii_uppercase().as_str() {
        "F" => {
            if all(|s| *s == O::EnteredInError) {
                D::EnteredInError
            } else if any(O::Corrected) || any(O::Amended) {
                D::Corrected
            } else {
                D::Final
            }
        }
        "P" => D::Preliminary,
        "C" => D::Corrected,
        "X" => D::Cancelled,
        "I" | "O" => D::Registered,
        _ => {
            if statuses.is_empty() {
                D::Unknown
            } else if all(|s| *s == O::EnteredInError) {
                D::EnteredInError
            } else if all(|s| *s == O::Cancelled) {
                D::Cancelled
            } else if any(O::Corrected) || any(O::Amended) {
                D::Corrected
            } else if all(|s| matches!(s, O::Final | O::Cancelled | O::EnteredInError)) {
                D::Final
            } else if all(|s| *s == O::Registered) {
                D::Registered
            } else if any(O::Final) || any(O::Preliminary) {
                if any(O::Registered) {
                    D::Partial
                } else {
                    D::Preliminary
                }
            } else {
                D::Unknown
            }
        }
    }
}
