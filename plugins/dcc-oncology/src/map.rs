//! The Fiche RCP → FHIR document Bundle and routing envelope.

use passerelle_plugin_sdk::cda::{self, Cd, Ii, Node, Participation, Section, oids};
use passerelle_plugin_sdk::fhir::*;
use passerelle_plugin_sdk::prelude::*;
use serde::Serialize;

use crate::{FRCP_LOINC, Fiche, LOINC};

/// LOINC codes of the sections that carry the proposal (CarePlan).
const PROPOSAL_STATUS: &str = "21874-3";
const CARE_PLAN: &str = "18776-5";
/// Diagnosis section (Conditions).
const DIAGNOSIS: &str = "72135-7";

/// National RCP identifiers of `encompassingEncounter/id` (CI-SIS FRCP), and their labels.
const ENCOUNTER_IDS: &[(&str, &str)] = &[
    ("1.2.250.1.161.1.20.1.1", "Identifiant national du RRC"),
    (
        "1.2.250.1.161.1.20.2.1",
        "Identifiant national du gestionnaire RCP (GestRCP)",
    ),
    ("1.2.250.1.161.1.20.3.1", "Identifiant national de la RCP"),
    ("1.2.250.1.213.1.1.9", "Identifiant de la session de RCP"),
];

/// `Composition.section.emptyReason` for sections without narrative.
const LIST_EMPTY_REASON: &str = "http://terminology.hl7.org/CodeSystem/list-empty-reason";

/// TNM: the clinical (75620-5) and pathological (21902-2) stage groups, and the T, N, M codes.
const TNM_STAGES: &[&str] = &["75620-5", "21902-2", "21908-9"];
const TNM_PARTS: &[&str] = &[
    "21905-5", "21906-3", "21907-1", "21899-0", "21900-6", "21901-4",
];
const STAGE_GROUP_QUALIFIER: &str = "21909-7";

/// The one record of a Fiche RCP.
pub(crate) fn record(fiche: &Fiche, message: &InboundMessage) -> Record {
    let doc = fiche.doc;
    let replaced = doc.replaced_document();
    let document_code = doc
        .code()
        .and_then(|c| c.to_codeable_concept())
        .unwrap_or_else(|| CodeableConcept::coded(LOINC, FRCP_LOINC, None));
    let display = doc
        .code()
        .and_then(|c| c.display_name)
        .unwrap_or_else(|| "CR de réunion de concertation pluridisciplinaire".to_string());

    // A FHIR `instant` for the Bundle: the CDA time when it has one, else the reception time.
    let timestamp = if fiche.effective_time.contains('T') {
        fiche.effective_time.clone()
    } else {
        message.received_at.clone()
    };
    let mut bundle = Bundle::document(fiche.id.key(), fiche.id.to_identifier(), timestamp.clone());

    let patient = bundle.add(fiche.patient.to_fhir());

    // --- The meeting --------------------------------------------------------------------------
    let meeting = Meeting::read(doc, &fiche.effective_time);
    let encounter = bundle.add(Encounter {
        identifier: meeting.identifiers.clone(),
        type_: meeting.kind.iter().cloned().collect(),
        subject: Some(patient.clone()),
        period: Some(meeting.period.clone()),
        ..Encounter::new(EncounterStatus::Finished, meeting.class.clone())
    });

    // --- Participants -------------------------------------------------------------------------
    let mut people = People::default();
    let author_refs: Vec<Reference> = fiche
        .authors
        .iter()
        .map(|a| people.add(&mut bundle, a))
        .collect();
    let legal = doc.legal_authenticator();
    if let Some(la) = &legal {
        people.add(&mut bundle, la);
    }
    for p in doc.participants().iter().chain(&doc.performers()) {
        people.add(&mut bundle, p);
    }
    let coordinator = people
        .roles
        .iter()
        .find(|(p, _)| p.type_code.as_deref() == Some("RESP"))
        .or_else(|| {
            people
                .roles
                .iter()
                .find(|(p, _)| p.type_code.as_deref() == Some("LA"))
        })
        .map(|(_, r)| r.clone())
        .or_else(|| author_refs.first().cloned());

    // --- The tumour(s) ------------------------------------------------------------------------
    let tumours = tumours(fiche);
    let conditions: Vec<Reference> = tumours
        .iter()
        .map(|t| {
            bundle.add(Condition {
                clinical_status: t.active.then(|| Condition::clinical_status("active")),
                verification_status: Some(Condition::verification_status("confirmed")),
                code: Some(t.code.clone()),
                encounter: Some(encounter.clone()),
                onset_date_time: t.onset.clone(),
                stage: t.stage.iter().cloned().collect(),
                note: t.notes.iter().map(Annotation::new).collect(),
                ..Condition::new(patient.clone())
            })
        })
        .collect();

    // --- The proposal -------------------------------------------------------------------------
    let proposal_section = find_section(&fiche.sections, PROPOSAL_STATUS);
    let plan_section = find_section(&fiche.sections, CARE_PLAN);
    let care_plan = (proposal_section.is_some() || plan_section.is_some()).then(|| {
        let description: Vec<String> = [proposal_section, plan_section]
            .iter()
            .flatten()
            .map(|s| s.text())
            .filter(|t| !t.is_empty())
            .collect();
        let (activity, note) = plan_section.map(activities).unwrap_or_default();
        bundle.add(CarePlan {
            title: Some(
                proposal_section
                    .and_then(|s| s.title())
                    .unwrap_or_else(|| "Proposition de la RCP".to_string()),
            ),
            description: non_empty(&description.join("\n\n")),
            encounter: Some(encounter.clone()),
            period: None,
            created: Some(meeting.date.clone()),
            author: coordinator.clone(),
            addresses: conditions.clone(),
            activity,
            note,
            ..CarePlan::new(
                CarePlanStatus::Active,
                CarePlanIntent::Proposal,
                patient.clone(),
            )
        })
    });

    // --- The document itself ------------------------------------------------------------------
    let status = if replaced.is_some() {
        CompositionStatus::Amended
    } else {
        CompositionStatus::Final
    };
    let confidentiality = doc.confidentiality().unwrap_or_else(|| "N".to_string());
    let mut events: Vec<CodeableConcept> = meeting.kind.iter().cloned().collect();
    events.extend(tumours.iter().map(|t| t.code.clone()));
    bundle.add(DocumentReference {
        master_identifier: Some(fiche.id.to_identifier()),
        identifier: doc
            .set_id()
            .map(|s| s.to_identifier())
            .into_iter()
            .collect(),
        doc_status: Some(status),
        type_: Some(document_code.clone()),
        subject: Some(patient.clone()),
        date: Some(timestamp),
        author: author_refs.clone(),
        relates_to: replaced
            .iter()
            .map(|parent| DocumentReferenceRelatesTo {
                code: DocumentRelationship::Replaces,
                target: Reference::logical("DocumentReference", parent.to_identifier()),
            })
            .collect(),
        description: doc.title(),
        security_label: vec![CodeableConcept::coded(
            systems::V3_CONFIDENTIALITY,
            &confidentiality,
            None,
        )],
        context: Some(DocumentReferenceContext {
            encounter: vec![encounter.clone()],
            event: events,
            period: Some(meeting.period.clone()),
            ..Default::default()
        }),
        ..DocumentReference::new(DocumentReferenceStatus::Current, {
            let mut a = Attachment::from_bytes("text/xml", &message.payload);
            a.language = doc.language();
            a.title = doc.title();
            a.creation = Some(fiche.effective_time.clone());
            a
        })
    });

    // --- The Composition ----------------------------------------------------------------------
    let mut sections: Vec<CompositionSection> = fiche
        .sections
        .iter()
        .map(|s| {
            composition_section(*s, 0, &|s: &Section| {
                if s.has_loinc(DIAGNOSIS) {
                    conditions.clone()
                } else if s.has_loinc(PROPOSAL_STATUS) || s.has_loinc(CARE_PLAN) {
                    care_plan.iter().cloned().collect()
                } else {
                    Vec::new()
                }
            })
        })
        .collect();
    if !people.roles.is_empty() {
        sections.push(people.section());
    }
    let mut authors = author_refs.into_iter();
    // `Fiche::read` guarantees an author; the patient stands in should that ever change.
    let first_author = authors.next().unwrap_or_else(|| patient.clone());
    let mut composition = Composition {
        identifier: doc.set_id().map(|s| s.to_identifier()),
        subject: Some(patient),
        encounter: Some(encounter),
        confidentiality: Some(confidentiality),
        section: sections,
        ..Composition::new(
            status,
            document_code,
            fiche.effective_time.clone(),
            first_author,
            doc.title().unwrap_or_else(|| display.clone()),
        )
    };
    composition.author.extend(authors);
    bundle.add(composition);

    // --- The envelope -------------------------------------------------------------------------
    let mut envelope = RecordBuilder::new(RecordKind::OncologyMeeting)
        .patient(fiche.patient.identity())
        .event_time(meeting.date.clone())
        .status(if replaced.is_some() {
            RecordStatus::Corrected
        } else {
            RecordStatus::Final
        })
        .confidentiality(fiche.confidentiality)
        .code(LOINC, FRCP_LOINC, Some(&display));
    let mut seen = Vec::new();
    for t in &tumours {
        for c in t
            .code
            .coding
            .iter()
            .filter(|c| c.system.as_deref() == Some(systems::ICD_10))
        {
            if let Some(code) = c.code.as_deref()
                && !seen.contains(&code)
            {
                seen.push(code);
                envelope = envelope.code(systems::ICD_10, code, c.display.as_deref());
            }
        }
    }
    envelope.build(people.splice_qualifications(bundle.to_json()))
}

fn find_section<'a, 'i>(sections: &[Section<'a, 'i>], loinc: &str) -> Option<Section<'a, 'i>> {
    sections.iter().copied().find(|s| s.has_loinc(loinc))
}

/// A CDA section as a Composition section: LOINC code, title (the code's display name when
/// the CDA has none), narrative as plain text, nested sections, and entries from `entries`.
fn composition_section(
    s: Section,
    depth: usize,
    entries: &dyn Fn(&Section) -> Vec<Reference>,
) -> CompositionSection {
    let code = s.code();
    let title = s
        .title()
        .or_else(|| code.as_ref().and_then(|c| c.display_name.clone()))
        .or_else(|| code.as_ref().and_then(|c| c.code.clone()))
        .unwrap_or_else(|| "Section".to_string());
    let text = s.text();
    let section = if depth < 8 {
        s.sections()
            .map(|sub| composition_section(sub, depth + 1, entries))
            .collect()
    } else {
        Vec::new()
    };
    let entry = entries(&s);
    let empty = text.is_empty() && section.is_empty() && entry.is_empty();
    CompositionSection {
        title: Some(title),
        code: code.as_ref().and_then(Cd::to_codeable_concept),
        text: (!text.is_empty()).then(|| Narrative::from_text(&text)),
        entry,
        empty_reason: empty
            .then(|| CodeableConcept::coded(LIST_EMPTY_REASON, "unavailable", Some("Unavailable"))),
        section,
    }
}

// ---------------------------------------------------------------------------------------------
// The meeting
// ---------------------------------------------------------------------------------------------

struct Meeting {
    /// The RCP date (FHIR dateTime): `encompassingEncounter/effectiveTime`, else the
    /// serviceEvent's, else the document's.
    date: String,
    period: Period,
    class: Coding,
    /// The serviceEvent "RCP" (TRE_R213 code 39) with its "RRC / 3C / RCP" text.
    kind: Option<CodeableConcept>,
    identifiers: Vec<Identifier>,
}

impl Meeting {
    fn read(doc: &cda::Document, document_time: &str) -> Meeting {
        let enc = doc.encompassing_encounter();
        let rcp_event = doc.service_events().into_iter().find(|e| {
            cda::child(*e, "code").is_some_and(|c| c.attribute("codeSystem") != Some(oids::ICD_10))
        });
        let period = enc
            .and_then(|e| cda::child(e, "effectiveTime"))
            .and_then(cda::ivl_ts)
            .or_else(|| {
                rcp_event
                    .and_then(|e| cda::child(e, "effectiveTime"))
                    .and_then(cda::ivl_ts)
            })
            .unwrap_or_else(|| Period::starting(document_time));
        let date = period
            .start
            .clone()
            .or_else(|| period.end.clone())
            .unwrap_or_else(|| document_time.to_string());
        let class = enc
            .and_then(|e| cda::child(e, "code"))
            .map(cda::cd)
            .filter(|c| c.code_system.as_deref() == Some(oids::ACT_CODE))
            .and_then(|c| c.to_coding())
            .unwrap_or_else(|| Encounter::class_v3("VR"));
        let kind = rcp_event
            .and_then(|e| cda::child(e, "code"))
            .map(cda::cd)
            .and_then(|c| c.to_codeable_concept());
        let mut identifiers: Vec<Identifier> = enc
            .into_iter()
            .flat_map(|e| cda::children(e, "id"))
            .filter_map(cda::ii)
            .map(|id| {
                let label = ENCOUNTER_IDS
                    .iter()
                    .find(|(root, _)| *root == id.root)
                    .map_or("Identifiant local de la RCP", |(_, l)| l);
                typed(&id, label)
            })
            .collect();
        identifiers.extend(
            cda::find_all(doc.root(), "inFulfillmentOf/order/id")
                .into_iter()
                .filter_map(cda::ii)
                .map(|id| typed(&id, "Inscription du patient à la session de RCP")),
        );
        Meeting {
            date,
            period,
            class,
            kind,
            identifiers,
        }
    }
}

fn typed(id: &Ii, label: &str) -> Identifier {
    Identifier {
        type_: Some(CodeableConcept::from_text(label)),
        ..id.to_identifier()
    }
}

// ---------------------------------------------------------------------------------------------
// Participants
// ---------------------------------------------------------------------------------------------

/// The Practitioners of the bundle, one per distinct person (same ids and names), with their
/// specialties, and every participation with the reference of its person.
#[derive(Default)]
struct People {
    practitioners: Vec<Known>,
    roles: Vec<(Participation, Reference)>,
}

/// A Practitioner of the bundle.
struct Known {
    /// The person's ids and names: what makes two participations the same person.
    ids: Vec<Ii>,
    names: Vec<HumanName>,
    /// The Practitioner's JSON as serialized in the bundle.
    json: String,
    /// Professions / specialties.
    specialties: Vec<Cd>,
    reference: Reference,
}

#[derive(Serialize)]
struct Qualification {
    code: CodeableConcept,
}

impl People {
    fn add(&mut self, bundle: &mut Bundle, p: &Participation) -> Reference {
        let person = &p.person;
        let reference = match self
            .practitioners
            .iter_mut()
            .find(|k| k.ids == person.ids && k.names == person.names)
        {
            Some(known) => {
                if let Some(code) = &person.code
                    && !known.specialties.contains(code)
                {
                    known.specialties.push(code.clone());
                }
                known.reference.clone()
            }
            None => {
                let practitioner = person.to_practitioner();
                let json = FhirResource::to_json(&practitioner);
                let r = bundle.add(practitioner);
                self.practitioners.push(Known {
                    ids: person.ids.clone(),
                    names: person.names.clone(),
                    json,
                    specialties: person.code.iter().cloned().collect(),
                    reference: r.clone(),
                });
                r
            }
        };
        let reference = match person.label() {
            Some(label) => reference.with_display(label),
            None => reference,
        };
        self.roles.push((p.clone(), reference.clone()));
        reference
    }

    /// A "Participants" section: one line per participation (role, name, specialty,
    /// organization), the Practitioners as entries.
    fn section(&self) -> CompositionSection {
        let lines: Vec<String> = self
            .roles
            .iter()
            .map(|(p, _)| {
                let role = p
                    .function
                    .as_ref()
                    .and_then(function_label)
                    .unwrap_or_else(|| role_label(p.type_code.as_deref()).to_string());
                let mut line = format!(
                    "{role} : {}",
                    p.person.label().unwrap_or_else(|| "(sans nom)".to_string())
                );
                if let Some(s) = p.person.code.as_ref().and_then(Cd::label) {
                    line.push_str(&format!(" — {s}"));
                }
                if let Some(o) = &p.person.organization {
                    line.push_str(&format!(" — {o}"));
                }
                line
            })
            .collect();
        let mut section = CompositionSection::new("Participants", &lines.join("\n"));
        section.entry = self
            .practitioners
            .iter()
            .map(|p| p.reference.clone())
            .collect();
        section
    }

    /// Adds `Practitioner.qualification` (the specialties) to the bundle JSON: the SDK's
    /// Practitioner has no such member, so each Practitioner's JSON (unique in the bundle: one
    /// per distinct ids and names) gets the member appended in place. `qualification` is the
    /// last member the Practitioner has here (after identifier, name, telecom), as FHIR JSON
    /// order wants.
    fn splice_qualifications(&self, mut json: String) -> String {
        for Known {
            json: practitioner,
            specialties,
            ..
        } in &self.practitioners
        {
            let qualifications: Vec<Qualification> = specialties
                .iter()
                .filter_map(Cd::to_codeable_concept)
                .map(|code| Qualification { code })
                .collect();
            if qualifications.is_empty() || !practitioner.ends_with('}') {
                continue;
            }
            let Ok(list) = serde_json::to_string(&qualifications) else {
                continue;
            };
            let open = &practitioner[..practitioner.len() - 1];
            let separator = if open.ends_with('{') { "" } else { "," };
            let with = format!("{open}{separator}\"qualification\":{list}}}");
            if let Some(at) = json.find(practitioner.as_str()) {
                json.replace_range(at..at + practitioner.len(), &with);
            }
        }
        json
    }
}

/// A function code as `display (comment)`: CI-SIS puts a comment on the participant in the
/// function code's original text ("Participant du quorum", "Inconnu").
fn function_label(function: &Cd) -> Option<String> {
    let display = function.display_name.as_deref().filter(|d| *d != "None");
    match (display, function.original_text.as_deref()) {
        (Some(d), Some(t)) if d != t => Some(format!("{d} ({t})")),
        (Some(d), _) => Some(d.to_string()),
        (None, Some(t)) => Some(t.to_string()),
        (None, None) => function.code.clone(),
    }
}

fn role_label(type_code: Option<&str>) -> &'static str {
    match type_code {
        Some("AUT") => "Auteur",
        Some("LA") => "Responsable du document",
        Some("RESP") => "Coordonnateur",
        Some("REFB") => "Demandeur",
        Some("PRF") => "Participant",
        Some("INF") => "Informateur",
        Some("CON") => "Correspondant",
        _ => "Participant",
    }
}

// ---------------------------------------------------------------------------------------------
// The tumour
// ---------------------------------------------------------------------------------------------

struct Tumour {
    code: CodeableConcept,
    onset: Option<String>,
    active: bool,
    stage: Option<ConditionStage>,
    notes: Vec<String>,
}

/// The cancer diagnoses of the diagnosis section (observations with a `targetSiteCode`: the
/// ICD-10 topography); when there is none, the topography serviceEvent(s) of the header.
fn tumours(fiche: &Fiche) -> Vec<Tumour> {
    let mut out = Vec::new();
    if let Some(section) = find_section(&fiche.sections, DIAGNOSIS) {
        for obs in cda::descendants(section.node, "observation")
            .filter(|o| cda::child(*o, "targetSiteCode").is_some())
        {
            let Some(code) = cda::child(obs, "targetSiteCode")
                .map(cda::cd)
                .and_then(|c| c.to_codeable_concept())
            else {
                continue;
            };
            // The concern act around the diagnosis says whether it is active.
            let concern = obs
                .ancestors()
                .skip(1)
                .find(|a| cda::is(*a, "act"))
                .and_then(|a| cda::child(a, "statusCode"))
                .and_then(|s| s.attribute("code"));
            let mut notes = Vec::new();
            if let Some(morphology) = cda::child(obs, "value").map(cda::cd)
                && let Some(label) = morphology.label()
            {
                let code = morphology.code.as_deref().unwrap_or("");
                notes.push(format!("Morphologie : {code} {label}").replace("  ", " "));
            }
            if let Some(side) = cda::descendants(obs, "qualifier")
                .find(|q| {
                    cda::child(*q, "name").is_some_and(|n| n.attribute("code") == Some("20228-3"))
                })
                .and_then(|q| cda::child(q, "value"))
                .map(cda::cd)
                .and_then(|c| c.label().map(str::to_string))
            {
                notes.push(format!("Latéralité : {side}"));
            }
            out.push(Tumour {
                code,
                onset: cda::child(obs, "effectiveTime")
                    .and_then(cda::ivl_ts)
                    .and_then(|p| p.start),
                active: concern.is_none_or(|c| c == "active"),
                stage: stage(obs),
                notes,
            });
        }
    }
    if out.is_empty() {
        for event in fiche.doc.service_events() {
            let Some(code) = cda::child(event, "code").map(cda::cd) else {
                continue;
            };
            let topography = code.code_system.as_deref() == Some(oids::ICD_10)
                || code.code.as_deref() == Some("GEN-243");
            if !topography {
                continue;
            }
            let cc = if code.code_system.as_deref() == Some(oids::ICD_10) {
                code.to_codeable_concept()
            } else {
                code.original_text.clone().map(CodeableConcept::from_text)
            };
            if let Some(code) = cc {
                out.push(Tumour {
                    code,
                    onset: None,
                    active: true,
                    stage: None,
                    notes: Vec::new(),
                });
            }
        }
    }
    out
}

/// The TNM stage of a diagnosis: the stage group (qualifier 21909-7 of a 75620-5/21902-2
/// observation) as summary, its text with the T, N and M values.
fn stage(diagnosis: Node) -> Option<ConditionStage> {
    let obs = cda::descendants(diagnosis, "observation").find(|o| {
        cda::child(*o, "code")
            .and_then(|c| c.attribute("code"))
            .is_some_and(|c| TNM_STAGES.contains(&c))
    })?;
    let group = cda::descendants(obs, "qualifier")
        .find(|q| {
            cda::child(*q, "name")
                .is_some_and(|n| n.attribute("code") == Some(STAGE_GROUP_QUALIFIER))
        })
        .and_then(|q| cda::child(q, "value"))
        .map(cda::cd);
    let parts: Vec<String> = cda::descendants(obs, "observation")
        .filter(|o| {
            cda::child(*o, "code")
                .and_then(|c| c.attribute("code"))
                .is_some_and(|c| TNM_PARTS.contains(&c))
        })
        .filter_map(|o| cda::child(o, "value").map(cda::cd)?.code)
        .collect();
    let mut text: Vec<String> = group.iter().filter_map(|g| g.code.clone()).collect();
    text.extend(parts);
    let mut summary = group
        .as_ref()
        .and_then(Cd::to_coding)
        .map(CodeableConcept::from)
        .unwrap_or_default();
    summary.text = non_empty(&text.join(" "));
    if summary.coding.is_empty() && summary.text.is_none() {
        return None;
    }
    Some(ConditionStage {
        summary: Some(summary),
        type_: cda::child(obs, "code")
            .map(cda::cd)
            .and_then(|c| c.to_codeable_concept()),
        ..Default::default()
    })
}

// ---------------------------------------------------------------------------------------------
// The proposal
// ---------------------------------------------------------------------------------------------

/// The care plan section's entries as CarePlan activities (proposed treatments, requested
/// exams, follow-up, referral to another RCP) and notes (comments).
fn activities(plan: Section) -> (Vec<CarePlanActivity>, Vec<Annotation>) {
    let mut activity = Vec::new();
    let mut notes = Vec::new();
    for entry in plan.entries() {
        let code = cda::child(entry, "code").map(cda::cd);
        let text = cda::child(entry, "text").and_then(cda::text_of);
        if cda::is(entry, "act") {
            if let Some(t) = text {
                notes.push(Annotation::new(t));
            }
            continue;
        }
        let kind = match entry.tag_name().name() {
            "procedure" | "observation" => Some(CarePlanActivityKind::ServiceRequest),
            "encounter" => Some(CarePlanActivityKind::Appointment),
            "substanceAdministration" | "supply" => Some(CarePlanActivityKind::MedicationRequest),
            _ => None,
        };
        let label = code.as_ref().and_then(|c| c.label().map(str::to_string));
        let description = match (label, text) {
            (Some(l), Some(t)) if l == t => Some(l),
            (Some(l), Some(t)) => Some(format!("{l} : {t}")),
            (l, t) => l.or(t),
        };
        if description.is_none() && code.as_ref().is_none_or(|c| c.code.is_none()) {
            continue;
        }
        activity.push(CarePlanActivity {
            detail: Some(CarePlanActivityDetail {
                kind,
                code: code.as_ref().and_then(Cd::to_codeable_concept),
                description,
                ..CarePlanActivityDetail::new(CarePlanActivityStatus::NotStarted)
            }),
            ..Default::default()
        });
    }
    (activity, notes)
}
