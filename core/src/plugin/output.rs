//! Checking what a plugin returns before anything downstream sees it: the envelope's required
//! fields, identifiers and times, the Bundle's shape, and size caps. A plugin cannot inject
//! garbage into the journal or a destination.

mod bundle;

use super::bindings::types;
use super::{Inbound, PluginError, PluginLimits};
use crate::record::{
    self, Coding, Confidentiality, Envelope, Identifier, Ins, Patient, PluginRef, Record,
};

/// A message adapted and checked: ready for routing.
#[derive(Debug, Clone)]
pub struct AdaptOutput {
    pub source_message_id: String,
    pub message_type: Option<String>,
    pub records: Vec<Record>,
}

/// Longest value accepted in an envelope string field.
const MAX_FIELD: usize = 1_024;

pub fn check(
    plugin: &str,
    plugin_version: &str,
    inbound: &Inbound,
    adapted: types::Adapted,
    limits: &PluginLimits,
) -> Result<AdaptOutput, PluginError> {
    let invalid = |reason: String| PluginError::InvalidOutput {
        plugin: plugin.to_string(),
        reason,
    };
    if adapted.records.len() > limits.max_records as usize {
        return Err(invalid(format!(
            "{} records from one message, more than the limit of {}",
            adapted.records.len(),
            limits.max_records
        )));
    }
    let total: usize = adapted.records.iter().map(|r| r.bundle.len()).sum();
    if total > limits.max_output_bytes() {
        return Err(invalid(format!(
            "{total} bytes of output, more than the limit of {} MiB",
            limits.max_output_mib
        )));
    }
    if let Some(id) = &adapted.source_message_id {
        short_text("source-message-id", id).map_err(&invalid)?;
    }
    let source_message_id =
        record::source_message_id_for(adapted.source_message_id.as_deref(), &inbound.payload);
    let message_type = adapted.message_type.filter(|t| !t.trim().is_empty());
    let mut records = Vec::with_capacity(adapted.records.len());
    for (position, r) in adapted.records.into_iter().enumerate() {
        let position = position as u32;
        let rec = check_record(
            plugin,
            plugin_version,
            inbound,
            &source_message_id,
            &message_type,
            position,
            r,
        )
        .map_err(|reason| invalid(format!("record {position}: {reason}")))?;
        records.push(rec);
    }
    Ok(AdaptOutput {
        source_message_id,
        message_type,
        records,
    })
}

fn check_record(
    plugin: &str,
    plugin_version: &str,
    inbound: &Inbound,
    source_message_id: &str,
    message_type: &Option<String>,
    position: u32,
    r: types::Record,
) -> Result<Record, String> {
    let kind = match r.kind {
        types::RecordKind::LabResult => "lab-result".to_string(),
        types::RecordKind::Prescription => "prescription".to_string(),
        types::RecordKind::OncologyMeeting => "oncology-meeting".to_string(),
        types::RecordKind::ClinicalDocument => "clinical-document".to_string(),
        types::RecordKind::ImagingReport => "imaging-report".to_string(),
        types::RecordKind::Allergy => "allergy".to_string(),
        types::RecordKind::PatientIdentity => "patient-identity".to_string(),
        types::RecordKind::Other(k) => {
            let ok = (1..=64).contains(&k.len())
                && k.starts_with(|c: char| c.is_ascii_lowercase())
                && k.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(format!(
                    "kind {k:?} is not a lowercase-kebab name of at most 64 characters"
                ));
            }
            k
        }
    };
    let patient = check_patient(r.patient)?;
    if let Some(t) = &r.event_time
        && !is_fhir_datetime(t)
    {
        return Err(format!("event-time {t:?} is not a FHIR dateTime"));
    }
    let mut codes = Vec::with_capacity(r.codes.len());
    for c in r.codes {
        short_text("code system", &c.system)?;
        short_text("code", &c.code)?;
        if let Some(d) = &c.display {
            short_text("code display", d)?;
        }
        codes.push(Coding {
            system: c.system,
            code: c.code,
            display: c.display,
        });
    }
    let bundle = bundle::check_bundle(r.bundle)?;
    let envelope = Envelope {
        id: record::record_id(&inbound.source, source_message_id, position),
        kind,
        source: inbound.source.clone(),
        source_message_id: source_message_id.to_string(),
        position,
        message_type: message_type.clone(),
        patient,
        event_time: r.event_time,
        received_at: inbound.received_at.clone(),
        status: status_name(r.status).to_string(),
        confidentiality: Confidentiality {
            level: match r.confidentiality.level {
                types::ConfidentialityLevel::Normal => "N",
                types::ConfidentialityLevel::Restricted => "R",
                types::ConfidentialityLevel::VeryRestricted => "V",
            }
            .to_string(),
            flags: r
                .confidentiality
                .flags
                .iter()
                .map(|f| match f {
                    types::VisibilityFlag::MasquePs => "MASQUE_PS",
                    types::VisibilityFlag::InvisiblePatient => "INVISIBLE_PATIENT",
                    types::VisibilityFlag::InvisibleRepresentantsLegaux => {
                        "INVISIBLE_REPRESENTANTS_LEGAUX"
                    }
                })
                .map(str::to_string)
                .collect(),
        },
        codes,
        plugin: PluginRef {
            name: plugin.to_string(),
            version: plugin_version.to_string(),
        },
    };
    Ok(Record { envelope, bundle })
}

pub fn status_name(s: types::RecordStatus) -> &'static str {
    match s {
        types::RecordStatus::Preliminary => "preliminary",
        types::RecordStatus::Final => "final",
        types::RecordStatus::Corrected => "corrected",
        types::RecordStatus::Cancelled => "cancelled",
        types::RecordStatus::EnteredInError => "entered-in-error",
        types::RecordStatus::Unknown => "unknown",
    }
}

fn check_patient(p: types::PatientIdentity) -> Result<Patient, String> {
    let ins = match p.ins {
        Some(ins) => {
            let system = passerelle_plugin_sdk_ins_system(ins.kind);
            if !passerelle_plugin_sdk::record::ins_key_is_valid(&ins.value) {
                return Err(format!(
                    "patient INS {:?} ({system}) is not 13 characters plus a valid 2-digit key",
                    ins.value
                ));
            }
            Some(Ins {
                system: system.to_string(),
                value: ins.value,
            })
        }
        None => None,
    };
    let mut local_ids = Vec::with_capacity(p.local_ids.len());
    for id in p.local_ids {
        short_text("patient identifier system", &id.system)?;
        short_text("patient identifier value", &id.value)?;
        local_ids.push(Identifier {
            system: id.system,
            value: id.value,
        });
    }
    if ins.is_none() && local_ids.is_empty() {
        return Err("no patient identity: neither an INS nor a local identifier".into());
    }
    Ok(Patient { ins, local_ids })
}

fn passerelle_plugin_sdk_ins_system(kind: types::InsKind) -> &'static str {
    match kind {
        types::InsKind::Nir => record::ins_system::NIR,
        types::InsKind::Nia => record::ins_system::NIA,
        types::InsKind::NirTest => record::ins_system::NIR_TEST,
        types::InsKind::NirDemo => record::ins_system::NIR_DEMO,
    }
}

fn short_text(what: &str, s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err(format!("{what} is empty"));
    }
    if s.len() > MAX_FIELD {
        return Err(format!("{what} is longer than {MAX_FIELD} bytes"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{what} {s:?} contains control characters"));
    }
    Ok(())
}

/// FHIR `dateTime`: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or `YYYY-MM-DDThh:mm:ss[.f+](Z|±hh:mm)`.
pub fn is_fhir_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let num =
        |r: std::ops::Range<usize>| s.get(r).and_then(|d| d.parse::<u32>().ok()).unwrap_or(99);
    if !digits(0..4) {
        return false;
    }
    match b.len() {
        4 => return true,
        7 => return b[4] == b'-' && digits(5..7) && (1..=12).contains(&num(5..7)),
        10 => {
            return b[4] == b'-'
                && b[7] == b'-'
                && digits(5..7)
                && digits(8..10)
                && (1..=12).contains(&num(5..7))
                && (1..=31).contains(&num(8..10));
        }
        _ => {}
    }
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return false;
    }
    if !(digits(5..7) && digits(8..10) && digits(11..13) && digits(14..16) && digits(17..19)) {
        return false;
    }
    if !(1..=12).contains(&num(5..7))
        || !(1..=31).contains(&num(8..10))
        || num(11..13) > 23
        || num(14..16) > 59
        || num(17..19) > 60
    {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    rest == "Z"
        || (rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && rest.as_bytes()[3] == b':'
            && rest[1..3].bytes().all(|c| c.is_ascii_digit())
            && rest[4..6].bytes().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fhir_datetimes() {
        for ok in [
            "2024",
            "2024-01",
            "2024-01-31",
            "2024-01-31T12:30:00Z",
            "2024-01-31T12:30:00.123+01:00",
        ] {
            assert!(is_fhir_datetime(ok), "{ok}");
        }
        for bad in [
            "",
            "24",
            "2024-13",
            "2024-01-31T12:30",
            "2024-01-31T12:30:00",
            "20240131",
            "2024-01-31T25:00:00Z",
        ] {
            assert!(!is_fhir_datetime(bad), "{bad}");
        }
    }
}
