//! One record per ORDER_OBSERVATION group: its Bundle (Patient, Encounter, DiagnosticReport,
//! Observations, DocumentReferences, Specimens, Practitioners) and its envelope.

use passerelle_plugin_sdk::fhir::{
    Annotation, Bundle, CodeableConcept, CompositionStatus, DiagnosticReport,
    DiagnosticReportStatus, DocumentReference, DocumentReferenceContext,
    DocumentReferenceRelatesTo, DocumentReferenceStatus, DocumentRelationship, Observation,
    OncePerKey, Reference, Resource, Specimen, SpecimenCollection, systems,
};
use passerelle_plugin_sdk::hl7::fhir::text::{
    comp, envelope_text, fcomp, fhir_code, owned, sub, trim_cow,
};
use passerelle_plugin_sdk::hl7::fhir::{
    IdPolicy, PatientInfo, ei, ei_sub, encounter, ndl, system_uri, xcn, xon,
};
use passerelle_plugin_sdk::hl7::{Field, Segment, datetime};
use passerelle_plugin_sdk::prelude::*;

use crate::structure::Group;
use crate::values::ObxContent;
use crate::{Hl7v2Lab, codes, crbio, values};

pub(crate) struct RecordCtx<'a, 'm> {
    pub(crate) lab: &'a Hl7v2Lab,
    pub(crate) seed: &'a str,
    pub(crate) ids: &'a IdPolicy<'a>,
    pub(crate) pid: Segment<'m>,
    pub(crate) pv1: Option<Segment<'m>>,
}

/// A document OBX waiting for the group's visibility flags.
struct PendingDocument<'m> {
    obx: Segment<'m>,
    code: CodeableConcept,
    status: String,
    attachment: passerelle_plugin_sdk::fhir::Attachment,
}

fn segment_key(seg: &Segment<'_>) -> String {
    // Once per resource: plain concatenation, not the `fmt` machinery.
    [
        seg.name(),
        "[",
        itoa::Buffer::new().format(seg.occurrence()),
        "]",
    ]
    .concat()
}

/// A MetaDMPMSS OBX: the visibility flag it sets (`None` for the other metadata, or `N`).
fn meta_dmp(obx: &Segment<'_>) -> Option<Option<VisibilityFlag>> {
    let code_field = obx.field(3);
    if !fcomp(&code_field, 3).eq_ignore_ascii_case("MetaDMPMSS") {
        return None;
    }
    let yes = fcomp(&obx.field(5), 1).eq_ignore_ascii_case("Y");
    let flag = match fcomp(&code_field, 1).as_ref() {
        "MASQUE_PS" => Some(VisibilityFlag::MasquePs),
        "INVISIBLE_PATIENT" => Some(VisibilityFlag::InvisiblePatient),
        "INVISIBLE_REP_LEGAUX" | "INVISIBLE_REPRESENTANTS_LEGAUX" => {
            Some(VisibilityFlag::InvisibleRepresentantsLegaux)
        }
        _ => None,
    };
    Some(flag.filter(|_| yes))
}

fn flag_code(flag: VisibilityFlag) -> &'static str {
    match flag {
        VisibilityFlag::MasquePs => "MASQUE_PS",
        VisibilityFlag::InvisiblePatient => "INVISIBLE_PATIENT",
        VisibilityFlag::InvisibleRepresentantsLegaux => "INVISIBLE_REPRESENTANTS_LEGAUX",
    }
}

fn confidentiality_code(level: ConfidentialityLevel) -> &'static str {
    match level {
        ConfidentialityLevel::Normal => "N",
        ConfidentialityLevel::Restricted => "R",
        ConfidentialityLevel::VeryRestricted => "V",
    }
}

/// The stricter of two levels (V > R > N): a record is as confidential as its most
/// confidential document.
fn most_restrictive(
    a: Option<ConfidentialityLevel>,
    b: ConfidentialityLevel,
) -> ConfidentialityLevel {
    use ConfidentialityLevel as L;
    let rank = |l: L| match l {
        L::Normal => 0,
        L::Restricted => 1,
        L::VeryRestricted => 2,
    };
    match a {
        Some(a) if rank(a) >= rank(b) => a,
        _ => b,
    }
}

impl<'m> RecordCtx<'_, 'm> {
    pub(crate) fn record(&self, patient: PatientInfo, g: &Group<'m>) -> Result<Record, AdaptError> {
        let lab = self.lab;
        let tz = lab.tz.as_str();
        let Some(obr) = g.obr else {
            return Err(AdaptError::Internal("order group without OBR".into()));
        };
        let mut bundle = Bundle::collection(self.seed);
        let mut practitioners = OncePerKey::new();
        let PatientInfo { resource, identity } = patient;
        let subject = bundle.add_keyed(&segment_key(&self.pid), resource);
        let encounter = self.pv1.and_then(|pv1| {
            let e = encounter(&pv1, subject.clone(), self.ids, tz)?;
            Some(bundle.add_keyed(&segment_key(&pv1), e))
        });

        let report_code = codes::cwe_field(&obr.field(4), None)
            .unwrap_or_else(|| CodeableConcept::from_text("Laboratory report"));
        let obr7 = lab.dt(&obr.field(7));
        let effective = obr7.or_else(|| lab.dt(&obr.field(22)));
        let issued = lab.instant(&obr.field(22));

        // Requester: ORC-12, else OBR-16 (a Practitioner of the bundle; R4 DiagnosticReport
        // has no requester element).
        let orc12 = g.orc.map(|orc| orc.field(12).repetition(1));
        let requester = match orc12.filter(|r| !r.raw().trim().is_empty()) {
            Some(r) => Some(r),
            None => Some(obr.field(16).repetition(1)),
        };
        if let Some(rep) = requester {
            practitioners.add(&mut bundle, rep.raw(), || xcn(&rep));
        }
        let interpreter_field = obr.field(32);
        let interpreter = practitioners.add(&mut bundle, interpreter_field.raw(), || {
            ndl(&interpreter_field)
        });

        // Specimens: SPM, else OBR-15 (v2.3–2.6 specimen source).
        let mut specimens = Vec::new();
        for spm in &g.spm {
            let s = self.specimen_from_spm(spm, &subject);
            specimens.push(bundle.add_keyed(&segment_key(spm), s));
        }
        if g.spm.is_empty()
            && let Some(s) = self.specimen_from_obr(&obr, &subject)
        {
            specimens.push(bundle.add_keyed(&format!("{}-15", segment_key(&obr)), s));
        }

        let mut flags: Vec<VisibilityFlag> = Vec::new();
        let mut results = Vec::with_capacity(g.obx.len());
        let mut statuses = Vec::with_capacity(g.obx.len());
        let mut documents: Vec<PendingDocument<'m>> = Vec::new();
        let mut organizations: Vec<Reference> = Vec::new();
        // OBX-14 is usually the same for every OBX: convert it once.
        let mut obx_time = TimeCache { tz, last: None };
        for (obx, notes) in &g.obx {
            if let Some(flag) = meta_dmp(obx) {
                if let Some(flag) = flag
                    && !flags.contains(&flag)
                {
                    flags.push(flag);
                }
                continue;
            }
            let value_type = trim_cow(obx.field(2).value());
            let unit = codes::unit(&obx.field(6));
            let content = values::obx_value(&value_type, &obx.field(5), &unit, tz)
                .map_err(|e| malformed(obx.location(5, 0), e.0))?;
            let is_document_type =
                value_type.eq_ignore_ascii_case("ED") || value_type.eq_ignore_ascii_case("RP");
            if is_document_type && matches!(content, ObxContent::Value(None)) {
                // An ED/RP without data or pointer: nothing to carry.
                continue;
            }
            let status_field = obx.field(11);
            let status_code = trim_cow(status_field.value());
            let status = codes::observation_status(&status_code);
            statuses.push(status);
            let code = lab
                .obx_code(&obx.field(3))
                .unwrap_or_else(|| report_code.clone());
            let value = match content {
                ObxContent::Document(attachment) => {
                    documents.push(PendingDocument {
                        obx: *obx,
                        code,
                        status: status_code.into_owned(),
                        attachment,
                    });
                    continue;
                }
                ObxContent::Value(v) => v,
            };
            let mut performer = Vec::new();
            for rep in obx.field(16).repetitions() {
                if let Some(r) = practitioners.add(&mut bundle, rep.raw(), || xcn(&rep)) {
                    performer.push(r);
                }
            }
            if let Some(org) = xon(&obx.field(23).repetition(1), self.ids) {
                if !organizations.contains(&org) {
                    organizations.push(org.clone());
                }
                performer.push(org);
            }
            let data_absent_reason = match (&value, status_code.as_ref()) {
                (None, "X") => Some(Observation::data_absent("not-performed")),
                (None, "N") => Some(Observation::data_absent("not-asked")),
                _ => None,
            };
            let range_text = obx.field(7).repetition(1).text();
            let observation = Observation {
                category: vec![Observation::laboratory_category()],
                subject: Some(subject.clone()),
                encounter: encounter.clone(),
                effective_date_time: obx_time.get(&obx.field(14)).or_else(|| effective.clone()),
                issued: issued.clone(),
                performer,
                value,
                data_absent_reason,
                interpretation: obx
                    .field(8)
                    .repetitions()
                    .filter_map(|r| codes::interpretation(&r))
                    .collect(),
                note: notes.iter().filter_map(note).collect(),
                method: codes::cwe_field(&obx.field(17), None),
                specimen: specimens.first().cloned(),
                reference_range: values::reference_range(&range_text, &unit)
                    .into_iter()
                    .collect(),
                ..Observation::new(status, code)
            };
            results.push(bundle.add_keyed(&segment_key(obx), observation));
        }

        // Documents (ED/RP), with the visibility flags as security labels.
        let security_label: Vec<CodeableConcept> = flags
            .iter()
            .map(|f| CodeableConcept::coded(systems::DMP_VISIBILITY, flag_code(*f), None))
            .collect();
        let mut presented_form = Vec::with_capacity(documents.len());
        let mut document_status: Option<String> = None;
        let mut level: Option<ConfidentialityLevel> = None;
        let patient_ins = identity.ins.as_ref().map(|i| i.value.clone());
        for doc in documents {
            // A CR-BIO CDA in the ED: its results join the report (see `crbio`).
            let cr_bio = crbio::read(
                &doc.attachment,
                &crbio::DocumentObx {
                    location: doc.obx.location(5, 0),
                    key: segment_key(&doc.obx),
                    code: &doc.code,
                    mode: match doc.status.as_str() {
                        "D" | "W" => crbio::StatusMode::Deletion,
                        "C" => crbio::StatusMode::Replacement,
                        _ => crbio::StatusMode::AsWritten,
                    },
                },
                &crbio::RecordContext {
                    subject: &subject,
                    encounter: encounter.as_ref(),
                    patient_ins: patient_ins.as_deref(),
                    effective: effective.as_deref(),
                },
                &mut bundle,
            )?;
            let (status, doc_status) = match doc.status.as_str() {
                "D" | "W" => (
                    DocumentReferenceStatus::EnteredInError,
                    Some(CompositionStatus::EnteredInError),
                ),
                "C" | "A" => (
                    DocumentReferenceStatus::Current,
                    Some(CompositionStatus::Amended),
                ),
                "P" | "R" | "S" => (
                    DocumentReferenceStatus::Current,
                    Some(CompositionStatus::Preliminary),
                ),
                "F" | "U" | "V" | "B" => (
                    DocumentReferenceStatus::Current,
                    Some(CompositionStatus::Final),
                ),
                _ => (DocumentReferenceStatus::Current, None),
            };
            if document_status.is_none() {
                document_status = Some(doc.status.clone());
            }
            let mut attachment = doc.attachment;
            attachment.title = doc
                .code
                .text
                .clone()
                .or_else(|| doc.code.coding.iter().find_map(|c| c.display.clone()));
            presented_form.push(attachment.clone());
            let mut reference = DocumentReference {
                doc_status,
                type_: Some(doc.code),
                subject: Some(subject.clone()),
                date: issued.clone(),
                security_label: security_label.clone(),
                context: encounter.clone().map(|e| DocumentReferenceContext {
                    encounter: vec![e],
                    ..Default::default()
                }),
                ..DocumentReference::new(status, attachment)
            };
            if let Some(c) = cr_bio {
                reference.master_identifier = Some(c.id);
                reference.identifier.extend(c.set_id);
                reference
                    .relates_to
                    .extend(c.replaces.map(|target| DocumentReferenceRelatesTo {
                        code: DocumentRelationship::Replaces,
                        target: Reference::logical("DocumentReference", target),
                    }));
                if let Some(l) = c.confidentiality {
                    reference.security_label.insert(
                        0,
                        CodeableConcept::coded(
                            systems::V3_CONFIDENTIALITY,
                            confidentiality_code(l),
                            None,
                        ),
                    );
                    level = Some(most_restrictive(level, l));
                }
                results.extend(c.results);
                specimens.extend(c.specimens);
                statuses.extend(c.statuses);
            }
            bundle.add_keyed(&segment_key(&doc.obx), reference);
        }

        let report_status = match codes::report_status(&obr.field(25).value()) {
            Some(DiagnosticReportStatus::Final) => codes::refine_final(&statuses),
            Some(s) => s,
            None => codes::report_status_from(&statuses),
        };
        let mut identifier = Vec::with_capacity(2);
        for (n, type_code) in [(2, "PLAC"), (3, "FILL")] {
            let from_obr = obr.field(n).repetition(1);
            let rep = match g.orc {
                Some(orc) if from_obr.raw().trim().is_empty() => orc.field(n).repetition(1),
                _ => from_obr,
            };
            identifier.extend(ei(&rep, type_code));
        }
        let mut category = vec![DiagnosticReport::lab_category()];
        let section = fcomp(&obr.field(24), 1);
        if !section.is_empty()
            && section != "LAB"
            && let Some(code) = fhir_code(&section)
        {
            category.push(CodeableConcept::coded(
                systems::V2_0074,
                code.as_ref(),
                None,
            ));
        }
        let conclusion = {
            let texts: Vec<String> = g.notes.iter().filter_map(nte_text).collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        };
        let report = DiagnosticReport {
            identifier,
            category,
            subject: Some(subject),
            encounter,
            effective_date_time: effective.clone(),
            issued,
            performer: organizations,
            results_interpreter: interpreter.into_iter().collect(),
            specimen: specimens,
            result: results,
            conclusion,
            presented_form,
            ..DiagnosticReport::new(report_status, report_code)
        };
        // Record status: the document's OBX-11 when there is a document, else the report's.
        let status = match document_status.as_deref() {
            Some("D" | "W") => RecordStatus::EnteredInError,
            Some("C" | "A") => RecordStatus::Corrected,
            Some("X") => RecordStatus::Cancelled,
            Some("P" | "R" | "S") => RecordStatus::Preliminary,
            Some("F" | "U" | "V" | "B") => RecordStatus::Final,
            _ => report_status.record_status(),
        };
        let mut builder = RecordBuilder::new(RecordKind::LabResult)
            .patient(identity)
            .status(status);
        if let Some(t) = effective {
            builder = builder.event_time(t);
        }
        for flag in flags {
            builder = builder.flag(flag);
        }
        if let Some(level) = level {
            builder = builder.confidentiality(level);
        }
        bundle.add_keyed(&segment_key(&obr), report);
        let builder = routing_codes(builder, &bundle);
        Ok(builder.build(bundle.to_json()))
    }

    /// SPM → Specimen: ids (SPM-2), type (SPM-4, table 0487 by default), collection (SPM-17,
    /// method SPM-7, site SPM-8), received (SPM-18), description (SPM-14), accession (SPM-30).
    fn specimen_from_spm(&self, spm: &Segment<'_>, subject: &Reference) -> Specimen {
        let tz = self.lab.tz.as_str();
        let ids = spm.field(2).repetition(1);
        let identifier = [(1, "PGN"), (2, "FGN")]
            .into_iter()
            .filter_map(|(n, t)| ei_sub(&ids.component(n), t))
            .collect();
        let collected = datetime::to_fhir_datetime(&spm.field(17).component(1).value(), tz);
        let method = codes::cwe_field(&spm.field(7), None);
        let body_site = codes::cwe_field(&spm.field(8), None);
        let collection = (collected.is_some() || method.is_some() || body_site.is_some())
            .then_some(SpecimenCollection {
                collected_date_time: collected,
                method,
                body_site,
                ..Default::default()
            });
        let accession = spm.field(30).repetition(1);
        let accession_value = comp(&accession, 1);
        Specimen {
            identifier,
            accession_identifier: (!accession_value.is_empty()).then(|| {
                passerelle_plugin_sdk::fhir::Identifier::new(
                    self.ids.system(&accession.component(4)),
                    accession_value.into_owned(),
                )
            }),
            type_: codes::cwe_field(&spm.field(4), Some(systems::V2_0487)),
            subject: Some(subject.clone()),
            received_time: self.lab.dt(&spm.field(18)),
            collection,
            note: spm
                .field(14)
                .repetitions()
                .filter_map(|r| owned(trim_cow(r.text())))
                .map(Annotation::new)
                .collect(),
            ..Specimen::new()
        }
    }

    /// OBR-15 (specimen source, v2.3–2.6) → Specimen with OBR-7 as collection time and OBR-14
    /// as received time; `None` when OBR-15 is empty.
    fn specimen_from_obr(&self, obr: &Segment<'_>, subject: &Reference) -> Option<Specimen> {
        let source = obr.field(15).component(1);
        if source.raw().trim().is_empty() {
            return None;
        }
        let (code, text, system) = (sub(&source, 1), sub(&source, 2), sub(&source, 3));
        let type_ = match fhir_code(&code) {
            Some(c) => {
                let system = system_uri(&system)
                    .map(|s| s.into_owned())
                    .unwrap_or_else(|| "http://terminology.hl7.org/CodeSystem/v2-0070".into());
                Some(CodeableConcept::coded(
                    system,
                    c.as_ref(),
                    (!text.is_empty()).then_some(text.as_ref()),
                ))
            }
            None => owned(text).map(CodeableConcept::from_text),
        };
        let collected = self.lab.dt(&obr.field(7));
        Some(Specimen {
            type_,
            subject: Some(subject.clone()),
            received_time: self.lab.dt(&obr.field(14)),
            collection: collected.map(|c| SpecimenCollection {
                collected_date_time: Some(c),
                ..Default::default()
            }),
            ..Specimen::new()
        })
    }
}

/// The last HL7 time converted, to reuse when the next one is the same text.
struct TimeCache<'a, 'm> {
    tz: &'a str,
    last: Option<(&'m str, Option<String>)>,
}

impl<'m> TimeCache<'_, 'm> {
    fn get(&mut self, field: &Field<'m>) -> Option<String> {
        let raw = field.raw();
        if raw.is_empty() {
            return None;
        }
        if let Some((r, v)) = &self.last
            && *r == raw
        {
            return v.clone();
        }
        let v = datetime::to_fhir_datetime(&field.value(), self.tz);
        self.last = Some((raw, v.clone()));
        v
    }
}

/// The envelope's routing codes: the report's codings (OBR-4), then the LOINC codes of the
/// results and documents, once each.
fn routing_codes(mut builder: RecordBuilder, bundle: &Bundle) -> RecordBuilder {
    // (code, system): codes differ early, systems are mostly the same (and comparing equal
    // strings is a byte loop inside the sandbox).
    let mut seen: Vec<(&str, &str)> = Vec::new();
    let report = bundle.entry.iter().rev().find_map(|e| match &e.resource {
        Some(Resource::DiagnosticReport(r)) => Some(r),
        _ => None,
    });
    let report_codes = report.into_iter().flat_map(|r| r.code.coding.iter());
    let result_codes = bundle
        .entry
        .iter()
        .filter_map(|e| match &e.resource {
            Some(Resource::Observation(o)) => Some(&o.code),
            Some(Resource::DocumentReference(d)) => d.type_.as_ref(),
            _ => None,
        })
        .flat_map(|cc| cc.coding.iter())
        .filter(|c| c.system.as_deref() == Some(systems::LOINC));
    for c in report_codes.chain(result_codes) {
        let (Some(system), Some(code)) = (c.system.as_deref(), c.code.as_deref()) else {
            continue;
        };
        if seen.contains(&(code, system)) || !envelope_text(system) || !envelope_text(code) {
            continue;
        }
        seen.push((code, system));
        let display = c.display.as_deref().filter(|d| envelope_text(d));
        builder = builder.code(system, code, display);
    }
    builder
}

/// NTE-3 (FT, repeating): unescaped, repetitions on separate lines; `None` when empty.
fn nte_text(nte: &Segment<'_>) -> Option<String> {
    let field = nte.field(3);
    let mut out = String::new();
    for (i, rep) in field.repetitions().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&rep.text());
    }
    let t = out.trim();
    if t.is_empty() {
        None
    } else if t.len() == out.len() {
        Some(out)
    } else {
        Some(t.to_string())
    }
}

fn note(nte: &Segment<'_>) -> Option<Annotation> {
    nte_text(nte).map(Annotation::new)
}
