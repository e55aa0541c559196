//! # dcc-oncology
//!
//! Passerelle adapter for the CI-SIS **Fiche RCP** (Fiche de Réunion de Concertation
//! Pluridisciplinaire, volet CANCER-FRCP of the DCC, LOINC `34794-8`): one CDA R2 document in,
//! one `oncology-meeting` record out. The record's Bundle is a FHIR `document`: a Composition
//! holding the meeting's sections, the Patient, the Encounter of the meeting, the tumour as
//! Condition(s), the proposal as a CarePlan, the participants as Practitioners and the CDA
//! itself as a DocumentReference. `docs/adapters/dcc-oncology.md` lists what goes where.
//!
//! Bad input is a typed `malformed(location, reason)` whose location is an XPath-like path
//! into the document (`/ClinicalDocument/code/@code`) or `line L, column C` for XML syntax.

use passerelle_plugin_sdk::cda::{self, CdaError, Document, Ii, Participation, Section, oids};
use passerelle_plugin_sdk::fhir::systems;
use passerelle_plugin_sdk::prelude::*;
use passerelle_plugin_sdk::record::{ins_key_is_valid, ins_system};

mod map;
#[cfg(test)]
mod tests;

/// LOINC of the Fiche RCP (`ClinicalDocument/code`).
pub const FRCP_LOINC: &str = "34794-8";

/// The adapter (no settings).
pub struct DccOncology;

impl Adapter for DccOncology {
    type Settings = ();

    fn info() -> PluginInfo {
        plugin_info(
            "dcc-oncology",
            env!("CARGO_PKG_VERSION"),
            &["application/xml", "text/xml", "application/hl7-cda+xml"],
            &[FRCP_LOINC],
        )
    }

    fn new(_settings: ()) -> Result<Self, String> {
        Ok(DccOncology)
    }

    fn adapt(&self, message: &InboundMessage) -> Result<Adapted, AdaptError> {
        let text = cda::utf8(&message.payload)?;
        let doc = Document::parse(text)?;
        let fiche = Fiche::read(&doc)?;
        let record = map::record(&fiche, message);
        Ok(Adapted {
            source_message_id: Some(fiche.id.key()),
            message_type: Some(FRCP_LOINC.to_string()),
            records: vec![record],
        })
    }
}

export_adapter!(DccOncology);

/// What the adapter requires of a Fiche RCP, checked up front, plus the document.
pub(crate) struct Fiche<'d, 'input> {
    pub doc: &'d Document<'input>,
    /// `ClinicalDocument/id`.
    pub id: Ii,
    /// `ClinicalDocument/effectiveTime` as a FHIR dateTime.
    pub effective_time: String,
    /// The patient, with at least one identifier.
    pub patient: cda::CdaPatient,
    /// The envelope's confidentiality.
    pub confidentiality: ConfidentialityLevel,
    /// The authors (at least one).
    pub authors: Vec<Participation>,
    /// The top-level sections of the structured body.
    pub sections: Vec<Section<'d, 'input>>,
}

impl<'d, 'input> Fiche<'d, 'input> {
    /// Checks the document is a Fiche RCP the adapter can map.
    pub fn read(doc: &'d Document<'input>) -> Result<Self, CdaError> {
        let root = doc.root();

        let code_node = cda::child(root, "code")
            .ok_or_else(|| CdaError::missing(root, "code (the document type)"))?;
        let code = cda::cd(code_node);
        if !code.is(oids::LOINC, FRCP_LOINC) {
            let found = match (&code.code, &code.code_system) {
                (Some(c), Some(s)) => format!("{c} in code system {s}"),
                (Some(c), None) => format!("{c} without code system"),
                _ => "no code".to_string(),
            };
            return Err(CdaError::at_attribute(
                code_node,
                "code",
                format!(
                    "unsupported document type ({found}): this adapter reads Fiches RCP, \
                     LOINC {FRCP_LOINC}"
                ),
            ));
        }

        let id = doc
            .id()
            .ok_or_else(|| CdaError::missing(root, "id/@root (the document id)"))?;

        let time_node = cda::child(root, "effectiveTime")
            .filter(|t| t.attribute("value").is_some())
            .ok_or_else(|| CdaError::missing(root, "effectiveTime/@value"))?;
        let effective_time = cda::ts(time_node).ok_or_else(|| {
            CdaError::at_attribute(
                time_node,
                "value",
                "not a valid CDA time (YYYYMMDDHHMMSS+ZZZZ)",
            )
        })?;

        let role = cda::find_path(root, "recordTarget/patientRole")
            .ok_or_else(|| CdaError::missing(root, "recordTarget/patientRole"))?;
        let patient = doc
            .patient()
            .ok_or_else(|| CdaError::missing(root, "recordTarget/patientRole"))?;
        if patient.ins.is_none() && patient.local_ids().next().is_none() {
            return Err(CdaError::missing(role, "id").with_reason(
                "no patient identifier: neither an INS (root 1.2.250.1.213.1.4.8/9/10/11) \
                 nor a local id (root + extension)",
            ));
        }
        if let Some((kind, value)) = &patient.ins
            && !ins_key_is_valid(value)
        {
            let system = ins_system(*kind).trim_start_matches("urn:oid:");
            let node = cda::children(role, "id")
                .find(|n| n.attribute("root").map(str::trim) == Some(system))
                .unwrap_or(role);
            return Err(CdaError::at_attribute(
                node,
                "extension",
                "INS with an invalid key (15 characters, key = 97 - number mod 97)",
            ));
        }

        let confidentiality = match cda::child(root, "confidentialityCode") {
            None => ConfidentialityLevel::Normal,
            Some(node) => doc.confidentiality_level().ok_or_else(|| {
                CdaError::at_attribute(
                    node,
                    "code",
                    "confidentiality must be N, R or V (HL7 v3 Confidentiality)",
                )
            })?,
        };

        let authors = doc.authors();
        if authors.is_empty() {
            return Err(CdaError::missing(root, "author/assignedAuthor"));
        }

        if doc.structured_body().is_none() {
            return Err(CdaError::missing(root, "component/structuredBody")
                .with_reason("a Fiche RCP has a structured body (a nonXMLBody is not supported)"));
        }
        let sections = doc.sections().collect();

        Ok(Fiche {
            doc,
            id,
            effective_time,
            patient,
            confidentiality,
            authors,
            sections,
        })
    }
}

/// Setting a different reason on an error built by the SDK.
trait WithReason {
    fn with_reason(self, reason: &str) -> Self;
}

impl WithReason for CdaError {
    fn with_reason(self, reason: &str) -> Self {
        CdaError::new(self.location, reason)
    }
}

/// The LOINC system, for routing codes.
pub(crate) const LOINC: &str = systems::LOINC;
