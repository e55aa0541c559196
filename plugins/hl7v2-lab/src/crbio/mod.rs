//! French lab reports (ANS volet "Transmission de document(s) CDA en HL7v2"): an ED OBX whose
//! data is a CDA R2 CR-BIO (LOINC 11502-2). The document is decoded and its results become
//! Observations (panels for coded batteries), Specimens (collections and isolates) of the
//! record; the caller keeps the document itself as a DocumentReference.
//!
//! Detection is by content: base64 data that decodes to XML is parsed as a CDA. Data that is not
//! XML (the ANS examples' placeholders, a PDF) stays a plain document. An XML document that
//! OBX-3 announces as CR-BIO must be one.

mod base64;
mod results;
mod values;

#[cfg(test)]
mod tests;

use passerelle_plugin_sdk::cda::{self, CdaError, Document, oids};
use passerelle_plugin_sdk::fhir::{
    Attachment, Bundle, CodeableConcept, Identifier, ObservationStatus, Reference,
};
use passerelle_plugin_sdk::prelude::*;

pub use results::StatusMode;

/// LOINC of the CR-BIO document type ("CR d'examens biologiques").
pub const CR_BIO: &str = "11502-2";

/// The document OBX, as the caller read it.
pub struct DocumentObx<'a> {
    /// `OBX[n]-5`: prefixes the error locations.
    pub location: String,
    /// Bundle key prefix of the resources made from this document (`OBX[n]`).
    pub key: String,
    /// OBX-3 (the document type the message announces).
    pub code: &'a CodeableConcept,
    /// OBX-11 → how the CDA's statuses are overridden.
    pub mode: StatusMode,
}

/// The record's context for the results.
pub struct RecordContext<'a> {
    pub subject: &'a Reference,
    pub encounter: Option<&'a Reference>,
    /// The INS of PID-3, checked against the document's.
    pub patient_ins: Option<&'a str>,
    /// The report's effective time, for results without one.
    pub effective: Option<&'a str>,
}

/// What a CR-BIO document gives to the record.
pub struct CrBio {
    /// `ClinicalDocument/id` → `DocumentReference.masterIdentifier`.
    pub id: Identifier,
    /// `setId` → `DocumentReference.identifier`.
    pub set_id: Option<Identifier>,
    /// `relatedDocument[@typeCode='RPLC']/parentDocument/id`: the document replaced.
    pub replaces: Option<Identifier>,
    /// `confidentialityCode` (N, R, V).
    pub confidentiality: Option<ConfidentialityLevel>,
    /// Top-level results (for `DiagnosticReport.result`).
    pub results: Vec<Reference>,
    /// Specimens (for `DiagnosticReport.specimen`).
    pub specimens: Vec<Reference>,
    /// The status of every Observation made.
    pub statuses: Vec<ObservationStatus>,
}

/// Reads the CR-BIO carried by a document OBX into `bundle`. `Ok(None)`: the data is not a
/// CDA (or is a CDA of another type that OBX-3 does not announce as CR-BIO).
pub fn read(
    attachment: &Attachment,
    obx: &DocumentObx<'_>,
    ctx: &RecordContext<'_>,
    bundle: &mut Bundle,
) -> Result<Option<CrBio>, AdaptError> {
    let Some(data) = attachment.data.as_deref() else {
        return Ok(None);
    };
    let in_obx = |e: CdaError| malformed(format!("{} {}", obx.location, e.location), e.reason);
    let bytes = base64::decode(data).map_err(|reason| malformed(obx.location.clone(), reason))?;
    if !looks_like_xml(&bytes) {
        return Ok(None);
    }
    let text = cda::utf8(&bytes).map_err(in_obx)?;
    let doc = Document::parse(text).map_err(in_obx)?;
    let announced = announces_cr_bio(obx.code);
    let root = doc.root();
    let is_cr_bio = doc.code().is_some_and(|c| c.is(oids::LOINC, CR_BIO));
    if !is_cr_bio {
        if !announced {
            return Ok(None);
        }
        let what = match doc.code().and_then(|c| c.code) {
            Some(code) => format!("the document's code is {code}"),
            None => "the document has no code".to_string(),
        };
        return Err(in_obx(CdaError::new(
            format!("{}/code", cda::location(root)),
            format!("OBX-3 announces a CR-BIO (LOINC {CR_BIO}) but {what}"),
        )));
    }
    let id = doc
        .id()
        .ok_or_else(|| in_obx(CdaError::missing(root, "id")))?
        .to_identifier();
    check_patient(&doc, ctx.patient_ins).map_err(in_obx)?;
    let replaces = doc.replaced_document().map(|i| i.to_identifier());
    if obx.mode == StatusMode::Replacement && replaces.is_none() {
        return Err(in_obx(CdaError::new(
            format!("{}/relatedDocument", cda::location(root)),
            "OBX-11 is C (replacement) but the document has no relatedDocument[@typeCode='RPLC'] \
             naming the document it replaces",
        )));
    }
    if doc.structured_body().is_none() && doc.non_xml_body().is_none() {
        return Err(in_obx(CdaError::missing(
            root,
            "component/structuredBody|nonXMLBody",
        )));
    }
    let mut walker = results::Walker {
        bundle,
        subject: ctx.subject.clone(),
        encounter: ctx.encounter.cloned(),
        key: obx.key.clone(),
        default_effective: ctx
            .effective
            .map(str::to_string)
            .or_else(|| doc.effective_time()),
        mode: obx.mode,
        out: results::Extracted::default(),
    };
    walker.document(&doc).map_err(in_obx)?;
    let out = walker.out;
    passerelle_plugin_sdk::log::debug(&format!(
        "{}: CR-BIO with {} valued results, {} specimens",
        obx.location,
        out.valued,
        out.specimens.len()
    ));
    Ok(Some(CrBio {
        id,
        set_id: doc.set_id().map(|i| i.to_identifier()),
        replaces,
        confidentiality: doc.confidentiality_level(),
        results: out.results,
        specimens: out.specimens,
        statuses: out.statuses,
    }))
}

/// Whether OBX-3 has the LOINC code of a CR-BIO.
fn announces_cr_bio(code: &CodeableConcept) -> bool {
    code.coding.iter().any(|c| {
        c.code.as_deref() == Some(CR_BIO)
            && c.system.as_deref() == Some(passerelle_plugin_sdk::fhir::systems::LOINC)
    })
}

/// Whether decoded data is XML: its first non-blank character (after a BOM) is `<`.
fn looks_like_xml(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'<')
}

/// A document about another patient must not be filed under this one: when both PID-3 and
/// the document carry an INS, they must be the same (the values are not repeated in the
/// error: it is logged).
fn check_patient(doc: &Document, pid_ins: Option<&str>) -> Result<(), CdaError> {
    let (Some(pid_ins), Some(patient)) = (pid_ins, doc.patient()) else {
        return Ok(());
    };
    match patient.ins {
        Some((_, ins)) if ins != pid_ins => Err(CdaError::new(
            format!("{}/recordTarget/patientRole/id", cda::location(doc.root())),
            "the document's INS is not the patient's INS of PID-3",
        )),
        _ => Ok(()),
    }
}
