//! The message's structure: the ORDER_OBSERVATION groups of an ORU^R01 and what belongs to
//! each (OBR, ORC, OBX, NTE, SPM), whatever the order of the segments.

use passerelle_plugin_sdk::hl7::{Message, Segment};
use passerelle_plugin_sdk::prelude::*;

/// One ORDER_OBSERVATION group.
pub(crate) struct Group<'m> {
    /// Index in [`Structure::patients`].
    pub(crate) patient: usize,
    pub(crate) orc: Option<Segment<'m>>,
    pub(crate) obr: Option<Segment<'m>>,
    /// NTE after OBR.
    pub(crate) notes: Vec<Segment<'m>>,
    /// OBX with their NTE.
    pub(crate) obx: Vec<(Segment<'m>, Vec<Segment<'m>>)>,
    pub(crate) spm: Vec<Segment<'m>>,
}

/// The segments that matter, grouped: patients (PID and its PV1) and order groups.
pub(crate) struct Structure<'m> {
    pub(crate) patients: Vec<(Segment<'m>, Option<Segment<'m>>)>,
    pub(crate) groups: Vec<Group<'m>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Last {
    Other,
    Obr,
    Obx,
}

impl<'m> Structure<'m> {
    /// Groups the segments. Everything but PID, PV1, ORC, OBR, OBX, NTE and SPM is skipped
    /// (Z-segments, PRT, SFT, TQ1, CTD, FT1, CTI, NK1, PD1, PV2, TXA...); OBX before any order
    /// (patient observations) too.
    pub(crate) fn of(msg: &'m Message) -> Result<Self, AdaptError> {
        if msg.first("PID").is_none() {
            return Err(malformed("PID", "no PID segment"));
        }
        let mut patients: Vec<(Segment<'m>, Option<Segment<'m>>)> = Vec::new();
        let mut groups: Vec<Group<'m>> = Vec::new();
        // Whether the last group belongs to the current patient and is still open.
        let mut open = false;
        let mut last = Last::Other;
        for seg in msg.segments().skip(1) {
            match seg.name() {
                "PID" => {
                    patients.push((seg, None));
                    open = false;
                    last = Last::Other;
                }
                "PV1" => {
                    if let Some(p) = patients.last_mut()
                        && p.1.is_none()
                    {
                        p.1 = Some(seg);
                    }
                }
                "ORC" | "OBR" => {
                    let Some(patient) = patients.len().checked_sub(1) else {
                        return Err(malformed(
                            format!("{}[{}]", seg.name(), seg.occurrence()),
                            "order before the PID segment",
                        ));
                    };
                    let is_obr = seg.name() == "OBR";
                    match groups.last_mut() {
                        Some(g) if open && is_obr && g.obr.is_none() => g.obr = Some(seg),
                        _ => {
                            groups.push(Group {
                                patient,
                                orc: (!is_obr).then_some(seg),
                                obr: is_obr.then_some(seg),
                                notes: Vec::new(),
                                obx: Vec::new(),
                                spm: Vec::new(),
                            });
                            open = true;
                        }
                    }
                    last = if is_obr { Last::Obr } else { Last::Other };
                }
                "OBX" => match groups.last_mut() {
                    Some(g) if open => {
                        g.obx.push((seg, Vec::new()));
                        last = Last::Obx;
                    }
                    _ => last = Last::Other,
                },
                "NTE" => {
                    if let Some(g) = groups.last_mut().filter(|_| open) {
                        match last {
                            Last::Obr => g.notes.push(seg),
                            Last::Obx => {
                                if let Some((_, notes)) = g.obx.last_mut() {
                                    notes.push(seg);
                                }
                            }
                            Last::Other => {}
                        }
                    }
                }
                "SPM" => {
                    if let Some(g) = groups.last_mut().filter(|_| open) {
                        g.spm.push(seg);
                    }
                    last = Last::Other;
                }
                // PRT, TQ1, Z-segments...: skipped; an NTE after a PRT still follows its OBX.
                _ => {}
            }
        }
        groups.retain(|g| g.obr.is_some());
        if groups.is_empty() {
            return Err(malformed("OBR", "no OBR segment"));
        }
        Ok(Structure { patients, groups })
    }
}
