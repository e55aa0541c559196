//! One request (OBR) → one `lab-result` record: its Observations, Specimen, DiagnosticReport
//! and envelope.

use passerelle_plugin_sdk::fhir::{
    Annotation, Bundle, CodeableConcept, Coding, DiagnosticReport, Identifier, Observation,
    ObservationStatus, ObservationValue, Reference, Specimen, SpecimenCollection, non_empty,
    systems,
};
use passerelle_plugin_sdk::log;
use passerelle_plugin_sdk::prelude::*;

use super::status::inherited_status;
use super::values::value;
use super::{
    COMMENT, Ctx, LAB_REPORT, PatientInfo, Unit, coded, comment_text, envelope_ok, interpretation,
    observation_status_of, reference_range, report_status,
};
use crate::parse::{self, Field, OrderGroup, PatientGroup, ResultGroup};

/// OBX → Observation.
fn observation(
    ctx: &Ctx<'_>,
    x: &ResultGroup,
    obr25: &str,
    subject: &Reference,
    specimen: Option<&Reference>,
    collected: Option<&String>,
    issued: Option<&String>,
) -> Result<Observation, AdaptError> {
    let (d, r) = (ctx.d, &x.rec);
    let code = coded(ctx, &r.field(d, 3).first(), true)
        .ok_or_else(|| malformed(r.loc_field(3), "no analysis code (OBX-3 is empty)"))?;
    let value_type = r.field(d, 2).value().to_ascii_uppercase();
    let unit = Unit::read(&r.field(d, 6).value());
    let status_code = r.field(d, 11).value();
    let status = if status_code.is_empty() {
        inherited_status(obr25).unwrap_or(ObservationStatus::Unknown)
    } else {
        observation_status_of(&status_code).unwrap_or_else(|| {
            log::warn(&format!(
                "line {}: unknown OBX-11 status {:?}: status unknown",
                r.line,
                status_code.chars().take(4).collect::<String>()
            ));
            ObservationStatus::Unknown
        })
    };
    let v = value(ctx, &value_type, r.field(d, 5), &unit, r.line);
    let mut note: Vec<Annotation> = v.note.into_iter().map(Annotation::new).collect();
    note.extend(
        x.comments
            .iter()
            .filter_map(|c| comment_text(d, c))
            .map(Annotation::new),
    );
    let data_absent_reason = match (&v.value, v.absent) {
        (Some(_), _) => None,
        (None, Some(reason)) => Some(Observation::data_absent(reason)),
        (None, None) if status == ObservationStatus::Cancelled => {
            Some(Observation::data_absent("not-performed"))
        }
        (None, None) => None,
    };
    Ok(Observation {
        category: vec![Observation::laboratory_category()],
        subject: Some(subject.clone()),
        effective_date_time: ctx
            .tz
            .datetime(&r.field(d, 14).value())
            .or_else(|| collected.cloned()),
        issued: issued.cloned(),
        value: v.value,
        data_absent_reason,
        interpretation: r
            .field(d, 8)
            .reps()
            .filter_map(|rep| interpretation(&rep.comp(1)))
            .collect(),
        note,
        specimen: specimen.cloned(),
        reference_range: reference_range(&r.field(d, 7).first().joined(" "), &unit)
            .into_iter()
            .collect(),
        ..Observation::new(status, code)
    })
}

/// OBR-4: one analysis → its code; none or several → LOINC 11502-2 (with the analyses'
/// labels as text).
fn report_code(ctx: &Ctx<'_>, obr: &parse::Record) -> CodeableConcept {
    let mut analyses: Vec<CodeableConcept> = obr
        .field(ctx.d, 4)
        .reps()
        .filter(|r| !r.is_empty())
        .filter_map(|r| coded(ctx, &r, true))
        .collect();
    let generic = CodeableConcept::coded(systems::LOINC, LAB_REPORT.0, Some(LAB_REPORT.1));
    match analyses.len() {
        0 => generic,
        1 => analyses.pop().unwrap_or(generic),
        _ => {
            let labels: Vec<String> = analyses
                .iter()
                .filter_map(|a| {
                    a.text
                        .clone()
                        .or_else(|| a.coding.last().and_then(|c| c.code.clone()))
                })
                .collect();
            generic.with_text(labels.join(", "))
        }
    }
}

/// OBR-2 / OBR-3: the first non-empty value, typed PLAC / FILL.
fn request_id(f: Field<'_>, system: &str, type_code: &str) -> Option<Identifier> {
    let value = f.first().values_from(1).into_iter().next()?;
    Some(Identifier::new(system, value).with_type(systems::V2_0203, type_code))
}

/// OBR-15 (`code~label`) → Specimen with OBR-7 collection and OBR-14 reception times.
fn specimen(
    ctx: &Ctx<'_>,
    obr: &parse::Record,
    subject: &Reference,
    collected: Option<String>,
    received: Option<String>,
) -> Option<Specimen> {
    let f = obr.field(ctx.d, 15);
    if f.is_empty() {
        return None;
    }
    let rep = f.first();
    let label = rep.comp(2);
    let text = if label.is_empty() { rep.comp(1) } else { label };
    Some(Specimen {
        type_: non_empty(&text).map(CodeableConcept::from_text),
        subject: Some(subject.clone()),
        received_time: received,
        collection: collected.map(|c| SpecimenCollection {
            collected_date_time: Some(c),
            ..Default::default()
        }),
        ..Specimen::new()
    })
}

/// One request (OBR) of a patient → one `lab-result` record.
pub fn record(
    ctx: &Ctx<'_>,
    p: &PatientGroup,
    patient: &PatientInfo,
    o: &OrderGroup,
) -> Result<Record, AdaptError> {
    let (d, obr) = (ctx.d, &o.rec);
    let mut bundle = Bundle::collection(ctx.seed);
    let subject = bundle.add_keyed(&format!("P{}", p.rec.line), patient.resource.clone());
    let obr25 = obr.field(d, 25).value();
    let collected = ctx.tz.datetime(&obr.field(d, 7).value());
    let received = ctx.tz.datetime(&obr.field(d, 14).value());
    let issued = ctx
        .tz
        .instant(&obr.field(d, 22).value())
        .or_else(|| ctx.file_time.clone());
    let specimen = specimen(ctx, obr, &subject, collected.clone(), received)
        .map(|s| bundle.add_keyed(&format!("OBR{}", obr.line), s));

    // Comments after P: one comment observation each, in every record of the patient.
    for c in &p.comments {
        if let Some(text) = comment_text(d, c) {
            let code = CodeableConcept::coded(systems::LOINC, COMMENT.0, Some(COMMENT.1))
                .with_text("Commentaire patient");
            bundle.add_keyed(
                &format!("C{}", c.line),
                Observation {
                    subject: Some(subject.clone()),
                    value: Some(ObservationValue::String(text)),
                    ..Observation::new(ObservationStatus::Final, code)
                },
            );
        }
    }

    let mut results = Vec::with_capacity(o.results.len());
    let mut statuses = Vec::with_capacity(o.results.len());
    let mut result_codes: Vec<Coding> = Vec::new();
    for x in &o.results {
        let obs = observation(
            ctx,
            x,
            &obr25,
            &subject,
            specimen.as_ref(),
            collected.as_ref(),
            issued.as_ref(),
        )?;
        statuses.push(obs.status);
        result_codes.extend(
            obs.code
                .coding
                .iter()
                .filter(|c| c.system.as_deref() == Some(systems::LOINC))
                .cloned(),
        );
        results.push(bundle.add_keyed(&format!("OBX{}", x.rec.line), obs));
    }
    if o.results.is_empty() {
        log::info(&format!("line {}: request (OBR) without result", obr.line));
    }

    let status = report_status(&obr25, &statuses);
    let code = report_code(ctx, obr);
    let identifier = [
        request_id(obr.field(d, 2), &ctx.requester_requests, "PLAC"),
        request_id(obr.field(d, 3), &ctx.lab_requests, "FILL"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let conclusion: Vec<String> = o
        .comments
        .iter()
        .filter_map(|c| comment_text(d, c))
        .collect();
    let report = DiagnosticReport {
        identifier,
        category: vec![DiagnosticReport::lab_category()],
        subject: Some(subject),
        effective_date_time: collected.clone(),
        issued: issued.clone(),
        performer: ctx.lab.iter().cloned().collect(),
        specimen: specimen.into_iter().collect(),
        result: results,
        conclusion: (!conclusion.is_empty()).then(|| conclusion.join("\n")),
        ..DiagnosticReport::new(status, code.clone())
    };
    bundle.add_keyed(&format!("OBR{}", obr.line), report);

    let mut builder = RecordBuilder::new(RecordKind::LabResult)
        .patient(patient.identity.clone())
        .status(status.record_status());
    if let Some(t) = collected.or(issued) {
        builder = builder.event_time(t);
    }
    // Routing codes: the report's codes, then the results' LOINC codes, once each.
    let mut seen: Vec<(String, String)> = Vec::new();
    for c in code.coding.iter().chain(result_codes.iter()) {
        let (Some(system), Some(code)) = (c.system.as_deref(), c.code.as_deref()) else {
            continue;
        };
        let key = (system.to_string(), code.to_string());
        if seen.contains(&key) || !envelope_ok(system) || !envelope_ok(code) {
            continue;
        }
        seen.push(key);
        let display = c.display.as_deref().filter(|d| envelope_ok(d));
        builder = builder.code(system, code, display);
    }
    Ok(builder.build(bundle.to_json()))
}
