//! CI-SIS CDA eP-MED-DM (prescription of health products, LOINC 57833-6, template
//! `1.2.250.1.213.1.1.1.39`) → one `prescription` record.
//!
//! Each `substanceAdministration` entry of the body's sections (FR-Traitement-prescrit,
//! section 57828-6 "Prescriptions") is a line; its subordinate `substanceAdministration`s
//! (FR-Traitement-prescrit-subordonnee: tapered or split doses) are its successive dosages.
//! The document itself is kept as a DocumentReference (base64 XML).

use passerelle_plugin_sdk::cda::{
    self, CdaError, Document, Node, Person, child, children, ii, ivl_pq, location, pq, text_of, ts,
    xsi_type,
};
use passerelle_plugin_sdk::fhir::{
    Annotation, Attachment, Bundle, CodeableConcept, Coding, CompositionStatus, DocumentReference,
    DocumentReferenceRelatesTo, DocumentReferenceStatus, DocumentRelationship, Dosage,
    DosageDoseAndRate, Identifier, MedicationRequest, MedicationRequestDispenseRequest,
    MedicationRequestIntent, MedicationRequestStatus, MedicationRequestSubstitution, Period,
    Quantity, Ratio, Reference, Timing, TimingRepeat, systems,
};
use passerelle_plugin_sdk::prelude::*;

use crate::codes::{self, cda_system};
use crate::timing::{add_days, when_code};
use crate::util::join_texts;
use crate::{CDA_MESSAGE_TYPE, Eprescription, Line, envelope};

/// LOINC of the eP-MED-DM document type.
pub const EP_MED_DM: &str = "57833-6";
/// v3 ActSubstanceAdminSubstitutionCode (CDA `2.16.840.1.113883.5.1070`).
const SUBSTITUTION_OID: &str = "2.16.840.1.113883.5.1070";
const V3_SUBSTITUTION: &str = "http://terminology.hl7.org/CodeSystem/v3-substanceAdminSubstitution";

/// Adapts one eP-MED-DM document.
pub fn adapt(_ep: &Eprescription, message: &InboundMessage) -> Result<Adapted, AdaptError> {
    let text = cda::utf8(&message.payload)?;
    let doc = Document::parse(text)?;
    let root = doc.root();
    match doc.code() {
        Some(c) if c.code.as_deref() == Some(EP_MED_DM) => {}
        Some(c) => {
            return Err(malformed(
                "/ClinicalDocument/code/@code",
                format!(
                    "{EP_MED_DM} (eP-MED-DM prescription) expected, got {}",
                    c.code.as_deref().unwrap_or("no code")
                ),
            ));
        }
        None => return Err(CdaError::missing(root, "code").into()),
    }
    let Some(doc_id) = doc.id() else {
        return Err(CdaError::missing(root, "id/@root").into());
    };
    let Some(patient) = doc.patient() else {
        return Err(CdaError::missing(root, "recordTarget/patientRole").into());
    };
    let identity = patient.identity();
    if identity.ins.is_none() && identity.local_ids.is_empty() {
        return Err(malformed(
            "/ClinicalDocument/recordTarget/patientRole/id",
            "no patient identifier (INS or local id with an extension)",
        ));
    }
    let mut bundle = Bundle::collection(doc_id.key());
    let subject = bundle.add_keyed("recordTarget", patient.to_fhir());
    let mut people = People::default();
    let doc_author = doc
        .authors()
        .into_iter()
        .find(|a| !a.person.ids.is_empty() || !a.person.names.is_empty());
    let doc_requester = doc_author
        .as_ref()
        .map(|a| people.add(&mut bundle, &a.person));
    let authored_fallback = doc_author
        .as_ref()
        .and_then(|a| a.time.clone())
        .or_else(|| doc.effective_time());
    let group_identifier = doc_id.to_identifier();

    let mut lines = Vec::new();
    for section in doc.all_sections() {
        for entry in section.entries() {
            if !cda::is(entry, "substanceAdministration") {
                continue;
            }
            let ctx = LineCtx {
                subject: &subject,
                group_identifier: &group_identifier,
                requester: doc_requester.as_ref(),
                authored_on: authored_fallback.as_deref(),
            };
            let request = ctx.request(entry, &mut bundle, &mut people)?;
            lines.push(Line {
                request,
                changed: false,
                key: location(entry),
            });
        }
    }

    // The document itself.
    let title = doc.title();
    let mut attachment = Attachment::from_bytes("text/xml", &message.payload);
    attachment.title = title.clone();
    attachment.language = doc.language();
    let date = doc.effective_time().filter(|t| t.contains('T'));
    let replaced = doc.replaced_document();
    let reference = DocumentReference {
        master_identifier: Some(group_identifier.clone()),
        identifier: doc
            .set_id()
            .map(|s| s.to_identifier())
            .into_iter()
            .collect(),
        doc_status: Some(CompositionStatus::Final),
        type_: doc
            .code()
            .map(|c| codeable(&c))
            .filter(|c| !c.coding.is_empty() || c.text.is_some()),
        subject: Some(subject.clone()),
        date,
        author: doc_requester.iter().cloned().collect(),
        relates_to: replaced
            .iter()
            .map(|id| DocumentReferenceRelatesTo {
                code: DocumentRelationship::Replaces,
                target: Reference::logical("DocumentReference", id.to_identifier()),
            })
            .collect(),
        description: title,
        ..DocumentReference::new(DocumentReferenceStatus::Current, attachment)
    };
    bundle.add_keyed("ClinicalDocument", reference);

    let confidentiality = doc
        .confidentiality_level()
        .unwrap_or(ConfidentialityLevel::Normal);
    let record = envelope(
        bundle,
        lines,
        identity,
        confidentiality,
        replaced.is_some(),
        authored_fallback,
    );
    Ok(Adapted {
        source_message_id: Some(doc_id.key()),
        message_type: Some(CDA_MESSAGE_TYPE.to_string()),
        records: vec![record],
    })
}

/// Practitioners already in the bundle, by identity.
#[derive(Default)]
struct People {
    seen: Vec<(String, Reference)>,
}

impl People {
    fn add(&mut self, bundle: &mut Bundle, person: &Person) -> Reference {
        let key = person
            .ids
            .iter()
            .map(|i| i.key())
            .chain(person.label())
            .collect::<Vec<_>>()
            .join("|");
        if let Some((_, r)) = self.seen.iter().find(|(k, _)| *k == key) {
            return r.clone();
        }
        let reference = bundle.add_keyed(&format!("author:{key}"), person.to_practitioner());
        self.seen.push((key, reference.clone()));
        reference
    }
}

/// A CDA coded value as a CodeableConcept, with this adapter's medication systems (UCD and
/// SMS get the ANS ePrescription IG URLs, other OIDs `urn:oid:`).
fn codeable(c: &cda::Cd) -> CodeableConcept {
    let coding = std::iter::once(c)
        .chain(&c.translations)
        .filter_map(|c| {
            let code = c.code.as_deref()?;
            let mut coding = match c.code_system.as_deref() {
                Some(oid) => Coding::new(cda_system(oid), code),
                None => Coding {
                    code: Some(code.to_string()),
                    ..Default::default()
                },
            };
            coding.display = c.display_name.clone().filter(|d| d != "None");
            Some(coding)
        })
        .collect();
    CodeableConcept {
        coding,
        text: c.original_text.clone(),
    }
}

fn some_codeable(node: Option<Node>) -> Option<CodeableConcept> {
    let cc = codeable(&cda::cd(node?));
    (!cc.coding.is_empty() || cc.text.is_some()).then_some(cc)
}

/// A PQ as a quantity: a unit made of digits is an EDQM code (the CI-SIS writes packaging
/// units so: `30009000` "Boîte"), any other one UCUM.
fn quantity(node: Node) -> Option<Quantity> {
    let p = pq(node);
    match p.unit.as_deref() {
        Some(u) if !u.is_empty() && u.bytes().all(|b| b.is_ascii_digit()) => Some(Quantity {
            value: Some(p.decimal()?),
            system: Some(systems::EDQM.to_string()),
            code: Some(u.to_string()),
            ..Default::default()
        }),
        _ => p.to_quantity(),
    }
}

/// `entryRelationship/<name>` children of a node whose `code/@code` is `code`.
fn related<'a, 'i>(node: Node<'a, 'i>, name: &str, code: &str) -> Option<Node<'a, 'i>> {
    children(node, "entryRelationship")
        .filter_map(|r| child(r, name))
        .find(|a| child(*a, "code").and_then(|c| c.attribute("code")) == Some(code))
}

struct LineCtx<'a> {
    subject: &'a Reference,
    group_identifier: &'a Identifier,
    requester: Option<&'a Reference>,
    authored_on: Option<&'a str>,
}

impl LineCtx<'_> {
    fn request(
        &self,
        sa: Node,
        bundle: &mut Bundle,
        people: &mut People,
    ) -> Result<MedicationRequest, AdaptError> {
        let material = cda::find_path(sa, "consumable/manufacturedProduct/manufacturedMaterial");
        let code = material.and_then(|m| child(m, "code"));
        let mut medication = code.map(|c| codeable(&cda::cd(c))).unwrap_or_default();
        if medication.text.is_none() {
            medication.text = material
                .and_then(|m| child(m, "name"))
                .and_then(text_of)
                .or_else(|| child(sa, "text").and_then(text_of));
        }
        if medication.coding.is_empty() && medication.text.is_none() {
            let at = match (code, material) {
                (Some(c), _) => location(c),
                (None, Some(m)) => format!("{}/code", location(m)),
                (None, None) => format!("{}/consumable", location(sa)),
            };
            return Err(malformed(at, "no medication: neither a code nor a name"));
        }

        let status = match child(sa, "statusCode").and_then(|s| s.attribute("code")) {
            // IHE PRE fixes `completed` on prescription items: the prescribing act is done,
            // the prescription itself is in force.
            None | Some("completed" | "active" | "new") => MedicationRequestStatus::Active,
            Some("aborted") => MedicationRequestStatus::Stopped,
            Some("suspended" | "held") => MedicationRequestStatus::OnHold,
            Some("cancelled") => MedicationRequestStatus::Cancelled,
            Some("nullified") => MedicationRequestStatus::EnteredInError,
            Some(_) => MedicationRequestStatus::Unknown,
        };

        // Author of the line, else of the document.
        let line_author = child(sa, "author");
        let authored_on = line_author
            .and_then(|a| child(a, "time"))
            .and_then(ts)
            .or_else(|| self.authored_on.map(str::to_string));
        let requester = line_author
            .and_then(|a| child(a, "assignedAuthor"))
            .map(cda::person)
            .filter(|p| !p.ids.is_empty() || !p.names.is_empty())
            .map(|p| people.add(bundle, &p))
            .or_else(|| self.requester.cloned());

        // Dosages: the line's own, refined by its subordinate administrations.
        let base = dosage(sa);
        let mut subordinates: Vec<(Option<i32>, Node)> = children(sa, "entryRelationship")
            .filter_map(|r| {
                let seq = child(r, "sequenceNumber")
                    .and_then(|s| s.attribute("value"))
                    .and_then(|v| v.trim().parse().ok());
                Some((seq, child(r, "substanceAdministration")?))
            })
            .collect();
        subordinates.sort_by_key(|(seq, _)| seq.unwrap_or(i32::MAX));
        let mut dosage_instruction: Vec<Dosage> = if subordinates.is_empty() {
            vec![base.clone()]
        } else {
            subordinates
                .iter()
                .enumerate()
                .map(|(i, (seq, node))| {
                    let own = dosage(*node);
                    merge(&base, own, seq.or(i32::try_from(i + 1).ok()))
                })
                .collect()
        };
        // Patient instructions (FR-Instructions-au-patient): the dosage text.
        let instructions = related(sa, "act", "PINSTRUCT")
            .and_then(|a| child(a, "text"))
            .and_then(text_of)
            .filter(|t| meaningful(t));
        for d in &mut dosage_instruction {
            d.text = join_texts(d.text.iter().chain(&instructions), "\n");
        }
        // Dispenser instructions (FR-Instructions-au-dispensateur): a note.
        let note = related(sa, "act", "FINSTRUCT")
            .and_then(|a| child(a, "text"))
            .and_then(text_of)
            .filter(|t| meaningful(t))
            .map(Annotation::new)
            .into_iter()
            .collect();

        // Quantity to dispense (FR-Quantite-de-produit) and renewals (repeatNumber).
        let supply_quantity = children(sa, "entryRelationship")
            .filter_map(|r| child(r, "supply"))
            .find_map(|s| child(s, "quantity").and_then(quantity));
        let repeats = child(sa, "repeatNumber")
            .and_then(|r| r.attribute("value"))
            .and_then(|v| v.trim().parse::<u32>().ok());
        let dispense_request = (supply_quantity.is_some() || repeats.is_some()).then(|| {
            MedicationRequestDispenseRequest {
                quantity: supply_quantity,
                number_of_repeats_allowed: repeats,
                ..Default::default()
            }
        });
        // Substitution (FR-Autorisation-Substitution).
        let substitution = children(sa, "entryRelationship")
            .filter_map(|r| child(r, "act"))
            .filter_map(|a| child(a, "code"))
            .find(|c| c.attribute("codeSystem") == Some(SUBSTITUTION_OID))
            .and_then(|c| {
                let code = c.attribute("code")?.trim();
                let cd = cda::cd(c);
                let mut coding = Coding::new(V3_SUBSTITUTION, code);
                coding.display = cd.display_name.clone();
                Some(MedicationRequestSubstitution {
                    allowed_boolean: None,
                    allowed_codeable_concept: Some(coding.into()),
                    reason: cd
                        .original_text
                        .filter(|t| meaningful(t))
                        .map(CodeableConcept::from_text),
                })
            });
        let mut request = MedicationRequest {
            identifier: children(sa, "id")
                .filter_map(ii)
                .map(|i| i.to_identifier())
                .collect(),
            authored_on,
            requester,
            group_identifier: Some(self.group_identifier.clone()),
            note,
            dosage_instruction,
            dispense_request,
            substitution,
            ..MedicationRequest::new(
                status,
                MedicationRequestIntent::Order,
                medication,
                self.subject.clone(),
            )
        };
        crate::v2::claim_profile(&mut request);
        Ok(request)
    }
}

/// Narrative placeholders (`-`) are not content.
fn meaningful(text: &str) -> bool {
    !matches!(text.trim(), "" | "-" | "--" | "/")
}

/// A dosage from one `substanceAdministration`: timing (IVL_TS bounds, PIVL_TS period,
/// EIVL_TS event, SXPR_TS of those), route, site, dose, maximum dose, precondition.
fn dosage(sa: Node) -> Dosage {
    let mut repeat = TimingRepeat::default();
    let mut texts: Vec<String> = Vec::new();
    for et in children(sa, "effectiveTime") {
        read_time(et, &mut repeat, &mut texts, 0);
    }
    let timing = (repeat != TimingRepeat::default()).then(|| Timing {
        repeat: Some(repeat),
        ..Default::default()
    });
    let dose = child(sa, "doseQuantity").and_then(|d| {
        let ivl = ivl_pq(d);
        let single = ivl.value.as_ref().and_then(|p| p.to_quantity());
        let low = child(d, "low").and_then(quantity);
        let high = child(d, "high").and_then(quantity);
        match (single, low, high) {
            (Some(q), _, _) => Some(DosageDoseAndRate::quantity(q)),
            (None, Some(l), Some(h)) if l == h => Some(DosageDoseAndRate::quantity(l)),
            (None, l, h) if l.is_some() || h.is_some() => Some(DosageDoseAndRate::range(
                passerelle_plugin_sdk::fhir::Range::new(l, h),
            )),
            _ => None,
        }
    });
    let max_dose_per_period = child(sa, "maxDoseQuantity").and_then(|m| {
        let n = child(m, "numerator").and_then(quantity)?;
        let d = child(m, "denominator").and_then(quantity)?;
        Some(Ratio::new(n, d))
    });
    // Precondition: "as needed", for the reason its criterion gives (text or code). A
    // criterion without content (a `-` in the narrative, a dangling reference) is no
    // condition.
    let as_needed_codeable_concept = child(sa, "precondition")
        .and_then(|p| child(p, "criterion"))
        .and_then(|criterion| {
            let text = child(criterion, "text")
                .and_then(text_of)
                .filter(|t| meaningful(t));
            match some_codeable(child(criterion, "code")).filter(|c| !c.coding.is_empty()) {
                Some(mut c) => {
                    c.text = c.text.or(text);
                    Some(c)
                }
                None => text.map(CodeableConcept::from_text),
            }
        });
    Dosage {
        text: join_texts(&texts, "\n"),
        timing,
        as_needed_codeable_concept,
        site: some_codeable(child(sa, "approachSiteCode")),
        route: some_codeable(child(sa, "routeCode")),
        dose_and_rate: dose.into_iter().collect(),
        max_dose_per_period,
        ..Default::default()
    }
}

/// A subordinate administration's dosage completed with the line's: the subordinate's own
/// timing, dose and texts win; route, site, maximum dose, as-needed and, when it has none,
/// the treatment bounds come from the line.
fn merge(base: &Dosage, own: Dosage, sequence: Option<i32>) -> Dosage {
    let timing = match (&base.timing, own.timing) {
        (_, Some(mut t)) => {
            if let (Some(r), Some(b)) = (
                t.repeat.as_mut(),
                base.timing.as_ref().and_then(|b| b.repeat.as_ref()),
            ) && r.bounds_period.is_none()
                && r.bounds_duration.is_none()
            {
                r.bounds_period = b.bounds_period.clone();
                r.bounds_duration = b.bounds_duration.clone();
            }
            Some(t)
        }
        (b, None) => b.clone(),
    };
    Dosage {
        sequence,
        text: own.text.or_else(|| base.text.clone()),
        timing,
        as_needed_boolean: own.as_needed_boolean.or(base.as_needed_boolean),
        as_needed_codeable_concept: own
            .as_needed_codeable_concept
            .or_else(|| base.as_needed_codeable_concept.clone()),
        site: own.site.or_else(|| base.site.clone()),
        route: own.route.or_else(|| base.route.clone()),
        dose_and_rate: if own.dose_and_rate.is_empty() {
            base.dose_and_rate.clone()
        } else {
            own.dose_and_rate
        },
        max_dose_per_period: own
            .max_dose_per_period
            .or_else(|| base.max_dose_per_period.clone()),
        ..Default::default()
    }
}

/// Reads one `effectiveTime` (or SXPR_TS `comp`) into the repetition.
fn read_time(node: Node, repeat: &mut TimingRepeat, texts: &mut Vec<String>, depth: usize) {
    let kind = xsi_type(node);
    match kind {
        Some("SXPR_TS") if depth < 8 => {
            for comp in children(node, "comp") {
                read_time(comp, repeat, texts, depth + 1);
            }
        }
        Some("PIVL_TS") => {
            if let Some(period) = child(node, "period") {
                let p = pq(period);
                let unit = p.unit.as_deref().and_then(codes::time_unit);
                if let (Some(v), Some(unit)) = (p.decimal(), unit) {
                    repeat.frequency = Some(repeat.frequency.unwrap_or(1));
                    repeat.period = Some(v);
                    repeat.period_unit = Some(unit);
                }
                if let Some(t) = child(period, "translation")
                    .and_then(|t| child(t, "originalText"))
                    .and_then(text_of)
                    .filter(|t| meaningful(t))
                {
                    texts.push(t);
                }
            }
        }
        Some("EIVL_TS") => {
            if let Some(w) = child(node, "event")
                .and_then(|e| e.attribute("code"))
                .and_then(when_code)
                && !repeat.when.contains(&w)
            {
                repeat.when.push(w);
            }
        }
        // IVL_TS, or an untyped interval: the treatment's bounds.
        Some("IVL_TS") | None => {
            let start = child(node, "low").and_then(ts);
            let mut end = child(node, "high").and_then(ts);
            let width = child(node, "width").map(pq);
            let width = width.and_then(|w| {
                let unit = codes::time_unit(w.unit.as_deref()?)?;
                Some((w.decimal()?, unit))
            });
            if end.is_none()
                && let (Some(s), Some((v, unit))) = (&start, &width)
            {
                let per = match unit {
                    passerelle_plugin_sdk::fhir::UnitsOfTime::Day => Some(1),
                    passerelle_plugin_sdk::fhir::UnitsOfTime::Week => Some(7),
                    _ => None,
                };
                end = per
                    .zip(v.as_str().parse::<i64>().ok())
                    .and_then(|(per, n)| add_days(s, per * n));
            }
            if start.is_some() || end.is_some() {
                repeat.bounds_period = Some(Period { start, end });
                repeat.bounds_duration = None;
            } else if let Some((v, unit)) = width
                && repeat.bounds_period.is_none()
            {
                repeat.bounds_duration = Some(codes::duration(v, unit));
            } else if kind.is_none()
                && let Some(t) = ts(node)
            {
                // A single point in time: one administration then.
                repeat.count = Some(1);
                repeat.bounds_period = Some(Period {
                    start: Some(t.clone()),
                    end: Some(t),
                });
            }
        }
        _ => {}
    }
}
