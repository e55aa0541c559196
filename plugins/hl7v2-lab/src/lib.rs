//! # hl7v2-lab: HL7 v2 ORU^R01 (v2.3–2.8) lab results → Passerelle records
//!
//! One record (kind `lab-result`) per ORDER_OBSERVATION group (per OBR). Its Bundle
//! (`collection`, deterministic `urn:uuid:` fullUrls keyed by MSH-10 and the segment) holds:
//!
//! - **Patient** (PID): every PID-3 identifier (an INS, recognised by its assigning authority
//!   OID 1.2.250.1.213.1.4.8/.9/.10/.11, with the FR Core type; other ids with the type of
//!   PID-3.5 and the authority's `urn:oid:`, else `local_id_system`, else
//!   `urn:passerelle:id:<authority name>`), names (PID-5, name type per the v2-to-FHIR
//!   ConceptMap), birth date, gender, addresses, telecoms, FR Core identity reliability
//!   (PID-32 `VALI`/`QUAL`/`PROV`).
//! - **Encounter** (PV1-2 class, PV1-19 visit number) when there is a PV1.
//! - **DiagnosticReport** (OBR/ORC): code OBR-4, status OBR-25 (else from the OBX statuses),
//!   effective OBR-7 (else OBR-22), issued OBR-22, placer/filler ids, results interpreter
//!   OBR-32, specimens, results, conclusion from the NTEs after OBR, presented forms (ED).
//! - **Observation** per OBX, typed by OBX-2 (see [`values`]), with reference range (OBX-7),
//!   interpretation (OBX-8), status (OBX-11), effective time (OBX-14), performers (OBX-16,
//!   OBX-23), method (OBX-17), notes (NTE after OBX).
//! - **DocumentReference** per ED/RP OBX (a document, e.g. the CDA of a French CR-BIO), also in
//!   the report's `presentedForm`. A CR-BIO CDA is also decoded: its results, panels and
//!   specimens join the report (module `crbio`).
//! - **Specimen** per SPM (else from OBR-15); **Practitioner** for the ordering provider
//!   (ORC-12/OBR-16), the results interpreter and responsible observers.
//!
//! OBX whose OBX-3.3 is `MetaDMPMSS` are DMP/MSSanté metadata, not results: `MASQUE_PS`,
//! `INVISIBLE_PATIENT`, `INVISIBLE_REP_LEGAUX` valued `Y` set the record's visibility flags
//! (and the documents' security labels); the others are left out.

#[cfg(any(target_arch = "wasm32", test))]
mod arena;
mod codes;
mod crbio;
mod record;
mod structure;
mod values;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use passerelle_plugin_sdk::fhir::{CodeableConcept, Coding, systems};
use passerelle_plugin_sdk::hl7::fhir::text::{fcomp, fhir_code, fnv1a_hex, is_uri};
use passerelle_plugin_sdk::hl7::fhir::{IdPolicy, PatientInfo, default_authority, patient};
use passerelle_plugin_sdk::hl7::{Field, Message, datetime};
use passerelle_plugin_sdk::prelude::*;
use serde::Deserialize;

use crate::record::RecordCtx;
use crate::structure::Structure;

/// The plugin's settings (all optional).
#[derive(Deserialize, Default, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Offset of HL7 times written without one (`+01:00`, `-05:00`, `Z`). Default `+01:00`.
    pub default_timezone: Option<String>,
    /// Identifier system for PID-3 identifiers whose assigning authority has no OID (e.g.
    /// `urn:oid:1.2.250.1.71.4.2.7`). Default: `urn:passerelle:id:<authority name>`.
    pub local_id_system: Option<String>,
    /// Local OBX-3 code → LOINC code (`"GLU": "2345-7"` or `"GLU": {"code": "2345-7",
    /// "display": "Glucose"}`), for OBX-3 codes that are not LOINC.
    pub code_map: HashMap<String, CodeMapEntry>,
}

/// A `code_map` value.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum CodeMapEntry {
    /// Just the LOINC code.
    Code(String),
    /// The LOINC code and its display.
    Full {
        code: String,
        #[serde(default)]
        display: Option<String>,
    },
}

/// The adapter.
pub struct Hl7v2Lab {
    tz: String,
    local_id_system: Option<String>,
    code_map: HashMap<String, Coding>,
}

impl Adapter for Hl7v2Lab {
    type Settings = Settings;

    fn info() -> PluginInfo {
        plugin_info(
            "hl7v2-lab",
            env!("CARGO_PKG_VERSION"),
            &["x-application/hl7-v2+er7"],
            &["ORU^R01"],
        )
    }

    fn new(settings: Settings) -> Result<Self, String> {
        let tz = settings
            .default_timezone
            .unwrap_or_else(|| "+01:00".to_string());
        if datetime::to_fhir_datetime("202001011200", &tz).is_none() {
            return Err(format!(
                "settings.default_timezone {tz:?} is not an offset like +01:00, -05:00 or Z"
            ));
        }
        let local_id_system = match settings.local_id_system {
            Some(s) if !is_uri(s.trim()) => {
                return Err(format!(
                    "settings.local_id_system {s:?} is not a URI (e.g. urn:oid:1.2.3)"
                ));
            }
            other => other.map(|s| s.trim().to_string()),
        };
        let mut code_map = HashMap::with_capacity(settings.code_map.len());
        for (local, entry) in settings.code_map {
            let (code, display) = match entry {
                CodeMapEntry::Code(code) => (code, None),
                CodeMapEntry::Full { code, display } => (code, display),
            };
            let code = fhir_code(&code)
                .ok_or_else(|| format!("settings.code_map[{local:?}]: empty LOINC code"))?
                .into_owned();
            let mut coding = Coding::new(systems::LOINC, code);
            coding.display = display.filter(|d| !d.trim().is_empty());
            code_map.insert(local.trim().to_string(), coding);
        }
        Ok(Hl7v2Lab {
            tz,
            local_id_system,
            code_map,
        })
    }

    fn adapt(&self, message: &InboundMessage) -> Result<Adapted, AdaptError> {
        // Inside the component, this call's allocations come from the per-call arena.
        #[cfg(target_arch = "wasm32")]
        let _arena = arena::Call::begin();
        self.adapt_message(message)
    }
}

export_adapter!(Hl7v2Lab);

impl Hl7v2Lab {
    fn adapt_message(&self, message: &InboundMessage) -> Result<Adapted, AdaptError> {
        let msg = Message::parse_inbound(message)?;
        let msh = msg.msh();
        let mtype = msh.field(9);
        let (code, event) = (fcomp(&mtype, 1), fcomp(&mtype, 2));
        if code != "ORU" || event != "R01" {
            let got = if event.is_empty() {
                code.into_owned()
            } else {
                format!("{code}^{event}")
            };
            return Err(AdaptError::Unsupported(format!(
                "ORU^R01 expected, got {}",
                if got.is_empty() { "no MSH-9" } else { &got }
            )));
        }
        let control_id = msg.control_id().map(|c| c.trim().to_string());
        let control_id = control_id.filter(|c| !c.is_empty());
        let seed = control_id
            .clone()
            .unwrap_or_else(|| fnv1a_hex(&message.payload));
        let default_authority = default_authority(&msh);
        let ids = IdPolicy {
            local_id_system: self.local_id_system.as_deref(),
            default_authority: &default_authority,
        };
        let structure = Structure::of(&msg)?;
        let mut patients: Vec<Option<PatientInfo>> =
            structure.patients.iter().map(|_| None).collect();
        // The last group of each patient takes its Patient instead of a copy.
        let mut last_group = vec![usize::MAX; structure.patients.len()];
        for (i, g) in structure.groups.iter().enumerate() {
            last_group[g.patient] = i;
        }
        let mut records = Vec::with_capacity(structure.groups.len());
        for (i, group) in structure.groups.iter().enumerate() {
            let (pid, pv1) = structure.patients[group.patient];
            let slot = &mut patients[group.patient];
            if slot.is_none() {
                *slot = Some(patient(&pid, &ids)?);
            }
            let info = if last_group[group.patient] == i {
                slot.take()
            } else {
                slot.clone()
            };
            let Some(info) = info else {
                return Err(AdaptError::Internal("patient missing".into()));
            };
            let ctx = RecordCtx {
                lab: self,
                seed: &seed,
                ids: &ids,
                pid,
                pv1,
            };
            records.push(ctx.record(info, group)?);
        }
        Ok(Adapted {
            source_message_id: control_id,
            message_type: Some("ORU^R01".to_string()),
            records,
        })
    }

    fn dt(&self, field: &Field<'_>) -> Option<String> {
        datetime::to_fhir_datetime(&field.value(), &self.tz)
    }

    fn instant(&self, field: &Field<'_>) -> Option<String> {
        datetime::to_fhir_instant(&field.value(), &self.tz)
    }

    /// OBX-3 as a CodeableConcept, with the `code_map` LOINC translation first when the code
    /// is not LOINC.
    fn obx_code(&self, field: &Field<'_>) -> Option<CodeableConcept> {
        let mut cc = codes::cwe_field(field, None)?;
        if !self.code_map.is_empty() && !codes::has_loinc(&cc) {
            let local = fcomp(field, 1);
            if let Some(loinc) = self.code_map.get(local.as_ref()) {
                cc.coding.insert(0, loinc.clone());
            }
        }
        Some(cc)
    }
}
