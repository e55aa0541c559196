//! HL7 v2 RDE^O11 (pharmacy/treatment encoded order) → one `prescription` record.
//!
//! Message structure (HL7 v2.5–2.8, `[]` optional, `{}` repeating):
//!
//! ```text
//! MSH [{SFT}] [{NTE}] [PID [PD1] [{NTE}] [PV1 [PV2]] [{IN1...}] [GT1] [{AL1}]]
//! { ORC [{PRT}] [{TQ1 [{TQ2}]}] [RXO [{NTE}] {RXR} [{RXC [{NTE}]}]] RXE [{PRT}] [{NTE}]
//!   {TQ1 [{TQ2}]} {RXR} [{RXC}] [{CDO}] [{OBX [{NTE}]}] [{FT1}] [BLG] [{CTI}] }
//! ```
//!
//! TQ1 and RXR before the RXE belong to the order (ORC/RXO), after it to the encoded order
//! (RXE); the RXE's win when both exist.

use passerelle_plugin_sdk::fhir::{
    Annotation, Bundle, CodeableConcept, Decimal, Dosage, DosageDoseAndRate, Identifier,
    MedicationRequest, MedicationRequestDispenseRequest, MedicationRequestIntent,
    MedicationRequestSubstitution, Meta, OncePerKey, Quantity, Range, Ratio, Reference,
};
use passerelle_plugin_sdk::hl7::fhir::text::{comp, fcomp, fnv1a_hex, owned, sub, trim_cow};
use passerelle_plugin_sdk::hl7::fhir::{IdPolicy, default_authority, ei, encounter, patient, xcn};
use passerelle_plugin_sdk::hl7::{Message, Segment, datetime};
use passerelle_plugin_sdk::prelude::*;

use crate::codes::{self, V2_0162, V2_0165};
use crate::timing::{self, Spec};
use crate::util::join_texts;
use crate::{Eprescription, Line, envelope};

/// One ORDER group.
#[derive(Default)]
struct Group<'m> {
    orc: Option<Segment<'m>>,
    rxo: Option<Segment<'m>>,
    rxe: Option<Segment<'m>>,
    /// TQ1 of the order (before RXE) and of the encoded order (after RXE).
    order_tq1: Vec<Segment<'m>>,
    tq1: Vec<Segment<'m>>,
    /// RXR of the order detail (before RXE) and of the encoded order.
    order_rxr: Vec<Segment<'m>>,
    rxr: Vec<Segment<'m>>,
    /// NTE of the order, order detail and encoded order (not those of OBX or RXC).
    notes: Vec<Segment<'m>>,
}

/// The segments that matter, grouped.
struct Structure<'m> {
    pid: Segment<'m>,
    pv1: Option<Segment<'m>>,
    groups: Vec<Group<'m>>,
}

/// What the last segment was, for the NTE that follow it.
#[derive(Clone, Copy, PartialEq)]
enum Last {
    /// Notes belong to the order line.
    Order,
    /// Notes belong to something else (OBX, RXC, PID...).
    Other,
}

impl<'m> Structure<'m> {
    fn of(msg: &'m Message) -> Result<Self, AdaptError> {
        let mut pid: Option<Segment<'m>> = None;
        let mut pv1 = None;
        let mut groups: Vec<Group<'m>> = Vec::new();
        let mut last = Last::Other;
        for seg in msg.segments().skip(1) {
            let at = || format!("{}[{}]", seg.name(), seg.occurrence());
            match seg.name() {
                "PID" if pid.is_some() => {
                    return Err(malformed(
                        at(),
                        "a second PID: an RDE^O11 message carries one patient",
                    ));
                }
                "PID" => {
                    if !groups.is_empty() {
                        return Err(malformed(at(), "PID after the first order"));
                    }
                    pid = Some(seg);
                    last = Last::Other;
                }
                "PV1" => {
                    if pid.is_some() && pv1.is_none() && groups.is_empty() {
                        pv1 = Some(seg);
                    }
                    last = Last::Other;
                }
                "ORC" => {
                    groups.push(Group {
                        orc: Some(seg),
                        ..Group::default()
                    });
                    last = Last::Order;
                }
                "RXO" | "RXE" | "TQ1" | "RXR" => {
                    let Some(g) = groups.last_mut() else {
                        return Err(malformed(at(), "before any ORC segment"));
                    };
                    let encoded = g.rxe.is_some();
                    match seg.name() {
                        "RXO" if encoded || g.rxo.is_some() => {
                            return Err(malformed(at(), "unexpected RXO in this order group"));
                        }
                        "RXO" => g.rxo = Some(seg),
                        "RXE" if encoded => {
                            return Err(malformed(
                                at(),
                                "a second RXE in the order group (each order needs its ORC)",
                            ));
                        }
                        "RXE" => g.rxe = Some(seg),
                        "TQ1" if encoded => g.tq1.push(seg),
                        "TQ1" => g.order_tq1.push(seg),
                        "RXR" if encoded => g.rxr.push(seg),
                        _ => g.order_rxr.push(seg),
                    }
                    last = if matches!(seg.name(), "RXO" | "RXE") {
                        Last::Order
                    } else {
                        Last::Other
                    };
                }
                "NTE" => {
                    if last == Last::Order
                        && let Some(g) = groups.last_mut()
                    {
                        g.notes.push(seg);
                    }
                }
                // Participations keep the notes' owner (`RXE [{PRT}] [{NTE}]`).
                "PRT" => {}
                // TQ2, RXC, CDO, OBX, FT1, BLG, CTI, PD1, PV2, IN1, GT1, AL1, SFT, Z...: not
                // mapped; their NTE are not the line's.
                _ => last = Last::Other,
            }
        }
        let Some(pid) = pid else {
            return Err(malformed("PID", "no PID segment: the patient is required"));
        };
        if groups.is_empty() {
            return Err(malformed(
                "ORC",
                "no ORC segment: an RDE^O11 carries orders",
            ));
        }
        for g in &groups {
            if g.rxe.is_none()
                && let Some(orc) = g.orc
            {
                return Err(malformed(
                    format!("ORC[{}]", orc.occurrence()),
                    "order without RXE segment",
                ));
            }
        }
        Ok(Structure { pid, pv1, groups })
    }
}

/// Adapts one RDE^O11 message.
pub fn adapt(ep: &Eprescription, message: &InboundMessage) -> Result<Adapted, AdaptError> {
    let msg = Message::parse_inbound(message)?;
    let msh = msg.msh();
    let mtype = msh.field(9);
    let (code, event) = (fcomp(&mtype, 1), fcomp(&mtype, 2));
    if code != "RDE" || !matches!(event.as_ref(), "O11" | "O01") {
        let got = match (code.is_empty(), event.is_empty()) {
            (true, _) => "no MSH-9".to_string(),
            (false, true) => code.into_owned(),
            _ => format!("{code}^{event}"),
        };
        return Err(AdaptError::Unsupported(format!(
            "RDE^O11 (or RDE^O01) expected, got {got}"
        )));
    }
    let message_type = format!("{code}^{event}");
    let control_id = msg.control_id().and_then(|c| owned(trim_cow(c)));
    let seed = control_id
        .clone()
        .unwrap_or_else(|| fnv1a_hex(&message.payload));
    let default_authority = default_authority(&msh);
    let ids = IdPolicy {
        local_id_system: ep.local_id_system.as_deref(),
        default_authority: &default_authority,
    };
    let structure = Structure::of(&msg)?;
    let patient = patient(&structure.pid, &ids)?;
    let mut bundle = Bundle::collection(seed.as_str());
    let subject = bundle.add_keyed("PID[1]", patient.resource);
    let encounter = structure.pv1.and_then(|pv1| {
        let e = encounter(&pv1, subject.clone(), &ids, &ep.tz)?;
        Some(bundle.add_keyed("PV1[1]", e))
    });
    let mut practitioners = OncePerKey::new();
    let mut lines = Vec::with_capacity(structure.groups.len());
    for g in &structure.groups {
        let ctx = LineCtx {
            ep,
            msg: &msg,
            subject: &subject,
            encounter: encounter.as_ref(),
        };
        let (request, orc1) = ctx.request(g, &mut bundle, &mut practitioners)?;
        let key = g
            .orc
            .map(|o| format!("ORC[{}]", o.occurrence()))
            .unwrap_or_default();
        let changed = codes::is_change(&orc1);
        lines.push(Line {
            request,
            changed,
            key,
        });
    }
    let record = envelope(
        bundle,
        lines,
        patient.identity,
        ConfidentialityLevel::Normal,
        false,
        None,
    );
    Ok(Adapted {
        source_message_id: control_id,
        message_type: Some(message_type),
        records: vec![record],
    })
}

struct LineCtx<'a, 'm> {
    ep: &'a Eprescription,
    msg: &'m Message,
    subject: &'a Reference,
    encounter: Option<&'a Reference>,
}

/// A number field: `None` when empty, an error naming the field when not a number.
fn number(seg: &Segment<'_>, n: usize) -> Result<Option<Decimal>, AdaptError> {
    let text = seg.field(n).value();
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    Decimal::parse(text)
        .map(Some)
        .ok_or_else(|| malformed(seg.location(n, 0), format!("{text:?} is not a number")))
}

impl<'m> LineCtx<'_, 'm> {
    fn dt(&self, value: &str) -> Option<String> {
        datetime::to_fhir_datetime(value, &self.ep.tz)
    }

    /// One ORDER group → MedicationRequest (and its prescriber in the bundle). Also returns
    /// ORC-1.
    fn request(
        &self,
        g: &Group<'m>,
        bundle: &mut Bundle,
        practitioners: &mut OncePerKey<'m>,
    ) -> Result<(MedicationRequest, String), AdaptError> {
        let (Some(orc), Some(rxe)) = (g.orc, g.rxe) else {
            return Err(AdaptError::Internal("order group without ORC/RXE".into()));
        };
        // Medication: RXE-2 (give code).
        let give = rxe.field(2).repetition(1);
        let mut medication = codes::cwe(&give, self.ep.local_code_system.as_deref())
            .filter(|cc| !cc.coding.is_empty())
            .ok_or_else(|| {
                malformed(
                    rxe.location(2, 0),
                    "no medication code: RXE-2 (give code) has no identifier",
                )
            })?;
        if medication.text.is_none() {
            medication.text = codes::cwe_text(&give);
        }

        // Status: ORC-5, else ORC-1.
        let orc1 = trim_cow(orc.field(1).value()).into_owned();
        let status = codes::status_from_orc5(&orc.field(5).value())
            .unwrap_or_else(|| codes::status_from_orc1(&orc1));

        // Identifiers: placer (ORC-2), filler (ORC-3), prescription number (RXE-15).
        let mut identifier: Vec<Identifier> = Vec::new();
        identifier.extend(ei(&orc.field(2).repetition(1), "PLAC"));
        identifier.extend(ei(&orc.field(3).repetition(1), "FILL"));
        if let Some(rx) = owned(trim_cow(rxe.field(15).value())) {
            identifier.push(Identifier {
                value: Some(rx),
                ..Default::default()
            });
        }
        // The prescription (all lines): ORC-4 placer group number, else MSH-10.
        let group_identifier = ei(&orc.field(4).repetition(1), "PGN").or_else(|| {
            self.msg
                .control_id()
                .and_then(|c| owned(trim_cow(c)))
                .map(|v| Identifier {
                    value: Some(v),
                    ..Default::default()
                })
        });
        let authored_on = self
            .dt(&orc.field(9).value())
            .or_else(|| self.dt(&rxe.field(32).value()));

        // Prescriber: ORC-12, else RXE-13 (ordering provider), else RXO-14.
        let mut candidates = vec![orc.field(12).repetition(1), rxe.field(13).repetition(1)];
        if let Some(rxo) = g.rxo {
            candidates.push(rxo.field(14).repetition(1));
        }
        let requester = candidates
            .iter()
            .find(|r| !r.raw().trim().is_empty())
            .and_then(|r| practitioners.add(bundle, r.raw(), || xcn(r)));

        let dosage_instruction = self.dosages(g, &rxe)?;

        // What to dispense: RXE-10/11 amount, RXE-12 refills.
        let dispense_quantity =
            number(&rxe, 10)?.map(|v| codes::quantity(v, &rxe.field(11).repetition(1)));
        let refills = {
            let text = rxe.field(12).value();
            let text = text.trim();
            if text.is_empty() {
                None
            } else {
                Some(text.parse::<u32>().map_err(|_| {
                    malformed(
                        rxe.location(12, 0),
                        format!("{text:?} is not a number of refills"),
                    )
                })?)
            }
        };
        let dispense_request = (dispense_quantity.is_some() || refills.is_some()).then(|| {
            MedicationRequestDispenseRequest {
                quantity: dispense_quantity,
                number_of_repeats_allowed: refills,
                ..Default::default()
            }
        });
        // RXE-9 (table 0167): 1/7/N no substitution; G, T, 2-5, 8 substitution allowed.
        let substitution = match fcomp(&rxe.field(9), 1).as_ref() {
            "1" | "7" | "N" => Some(MedicationRequestSubstitution::allowed(false)),
            "G" | "T" | "2" | "3" | "4" | "5" | "8" => {
                Some(MedicationRequestSubstitution::allowed(true))
            }
            _ => None,
        };
        let note = g
            .notes
            .iter()
            .filter_map(nte_text)
            .map(Annotation::new)
            .collect();
        let mut request = MedicationRequest {
            identifier,
            encounter: self.encounter.cloned(),
            authored_on,
            requester,
            group_identifier,
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
        claim_profile(&mut request);
        Ok((request, orc1))
    }

    /// The dosages: one per TQ1 of the encoded order (else of the order, else the old TQ of
    /// RXE-1 / ORC-7, else one without timing).
    fn dosages(&self, g: &Group<'m>, rxe: &Segment<'m>) -> Result<Vec<Dosage>, AdaptError> {
        let dt = |v: &str| self.dt(v);
        let tq1 = if g.tq1.is_empty() {
            &g.order_tq1
        } else {
            &g.tq1
        };
        let mut specs: Vec<Spec> = tq1.iter().map(|s| timing::from_tq1(s, dt)).collect();
        if specs.is_empty() {
            let orc7 = g.orc.map(|o| o.field(7).repetition(1));
            specs.extend(
                timing::from_tq(&rxe.field(1).repetition(1), dt)
                    .or_else(|| orc7.and_then(|r| timing::from_tq(&r, dt))),
            );
        }
        if specs.is_empty() {
            specs.push(Spec::default());
        }

        // Dose: RXE-3 (minimum) / RXE-4 (maximum), units RXE-5.
        let units = rxe.field(5).repetition(1);
        let dose = match (number(rxe, 3)?, number(rxe, 4)?) {
            (Some(min), Some(max)) if min != max => Some(DosageDoseAndRate::range(Range::new(
                Some(codes::quantity(min, &units)),
                Some(codes::quantity(max, &units)),
            ))),
            (Some(v), _) | (None, Some(v)) => {
                Some(DosageDoseAndRate::quantity(codes::quantity(v, &units)))
            }
            (None, None) => None,
        };
        // RXE-19 total daily dose (CQ) → at most that much per day.
        let daily = rxe.field(19).repetition(1);
        let max_dose_per_period = match Decimal::parse(&daily.component(1).value()) {
            Some(v) => {
                let unit = daily.component(2);
                let unit_text = sub(&unit, 2);
                let unit_code = sub(&unit, 1);
                let shown = if unit_text.is_empty() {
                    unit_code
                } else {
                    unit_text
                };
                let numerator = if shown.is_empty() {
                    Quantity::new(v)
                } else {
                    Quantity::with_unit(v, shown.into_owned())
                };
                Some(Ratio::new(
                    numerator,
                    codes::duration(
                        Decimal::from(1),
                        passerelle_plugin_sdk::fhir::UnitsOfTime::Day,
                    ),
                ))
            }
            None => None,
        };
        // Route, site, method: the encoded order's first RXR, else the order's.
        let rxr = g.rxr.first().or(g.order_rxr.first());
        let route = rxr.and_then(|r| codes::cwe(&r.field(1).repetition(1), Some(V2_0162)));
        let site = rxr.and_then(|r| codes::cwe(&r.field(2).repetition(1), None));
        let method = rxr.and_then(|r| codes::cwe(&r.field(4).repetition(1), Some(V2_0165)));
        // Administration instructions (RXE-7): the dosage text, as the French profile
        // forbids patientInstruction.
        let instructions: Vec<String> = rxe
            .field(7)
            .repetitions()
            .filter_map(|r| codes::cwe_text(&r))
            .collect();
        // RXE-21 special dispensing instructions: `PRN` marks an as-needed order.
        let prn_flag = rxe.field(21).repetitions().any(|r| {
            comp(&r, 1).eq_ignore_ascii_case("PRN")
                || codes::cwe_text(&r).is_some_and(|t| t.eq_ignore_ascii_case("PRN"))
        });
        let several = specs.len() > 1;
        let mut out = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let (timing, prn) = timing::timing(spec);
            let condition = spec
                .condition
                .as_deref()
                .filter(|c| !c.eq_ignore_ascii_case("PRN"));
            let as_needed_codeable_concept = condition.map(CodeableConcept::from_text);
            let as_needed = prn
                || prn_flag
                || spec
                    .condition
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case("PRN"));
            let dose = dose
                .clone()
                .or_else(|| spec.quantity.clone().map(DosageDoseAndRate::quantity));
            out.push(Dosage {
                sequence: if several {
                    spec.sequence.or(i32::try_from(i + 1).ok())
                } else {
                    spec.sequence
                },
                text: join_texts(
                    instructions
                        .iter()
                        .map(String::as_str)
                        .chain(spec.text.as_deref()),
                    "\n",
                ),
                timing,
                as_needed_boolean: (as_needed && as_needed_codeable_concept.is_none())
                    .then_some(true),
                as_needed_codeable_concept,
                site: site.clone(),
                route: route.clone(),
                method: method.clone(),
                dose_and_rate: dose.into_iter().collect(),
                max_dose_per_period: max_dose_per_period.clone(),
                ..Default::default()
            });
        }
        Ok(out)
    }
}

/// NTE-3 (FT, repeating): unescaped, repetitions on separate lines; `None` when empty.
fn nte_text(nte: &Segment<'_>) -> Option<String> {
    join_texts(
        nte.field(3).repetitions().map(|r| r.text().into_owned()),
        "\n",
    )
}

/// The ANS ePrescription IG profile FRMedicationRequest: canonical
/// `https://interop.esante.gouv.fr/ig/fhir/eprescription` (the IG's `sushi-config.yaml`) +
/// `StructureDefinition/` + profile id `fr-medicationrequest` (`FrMedicationRequest.fsh`).
pub const FR_MEDICATION_REQUEST: &str =
    "https://interop.esante.gouv.fr/ig/fhir/eprescription/StructureDefinition/fr-medicationrequest";

/// Claims FRMedicationRequest only when the line meets its rules that we can check:
/// `authoredOn`, `requester` and `dosageInstruction` present, no `patientInstruction`, and a
/// medication code from its required value set `fr-medication-code` (UCD, SMS, ANSM
/// substance or spécialité systems).
pub fn claim_profile(request: &mut MedicationRequest) {
    const ALLOWED: &[&str] = &[
        codes::UCD,
        codes::SMS,
        "http://data.esante.gouv.fr/ansm/medicament/substance",
        "http://data.esante.gouv.fr/ansm/medicament/SpecialitePharmaceutique",
    ];
    let coded = request
        .medication_codeable_concept
        .coding
        .iter()
        .any(|c| c.system.as_deref().is_some_and(|s| ALLOWED.contains(&s)));
    let ok = coded
        && request.authored_on.is_some()
        && request.requester.is_some()
        && !request.dosage_instruction.is_empty()
        && request
            .dosage_instruction
            .iter()
            .all(|d| d.patient_instruction.is_none());
    if ok {
        request.meta = Some(Meta::profile(FR_MEDICATION_REQUEST));
    }
}
