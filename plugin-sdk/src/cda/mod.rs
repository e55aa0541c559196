//! Reading HL7 CDA R2 documents (CI-SIS volets: CR-BIO, Fiche RCP, eP-MED-DM, CR-IMG...).
//!
//! A thin, read-only layer over [`roxmltree`]: parse a document, walk it with namespace-aware
//! helpers, and read the CDA datatypes into the FHIR datatypes of [`crate::fhir`]. It does not
//! validate against the CDA schema or the CI-SIS schematrons: adapters check what they need
//! and report it with [`CdaError`], which names the place with an XPath-like [`location`].
//!
//! - [`Document::parse`]: well-formed XML whose root is `ClinicalDocument` in `urn:hl7-org:v3`
//!   (a DTD is refused; a UTF-8 BOM is skipped).
//! - Walking: [`child`], [`children`], [`descendants`], [`find_path`], [`find_all`] take HL7
//!   local names (`"code"`, `"sdtc:raceCode"` for the SDTC extension namespace); [`location`]
//!   gives `/ClinicalDocument/component/structuredBody/component[3]/section/code`.
//! - Datatypes: [`ii`] (II), [`cd`] (CD/CE/CV/CO), [`pq`] and [`ivl_pq`] (PQ/IVL_PQ),
//!   [`ts`] and [`ivl_ts`] (TS/IVL_TS), [`pn`] (PN), [`addr`], [`telecoms`], [`text_of`]
//!   (ED/`text`/`originalText`, following `<reference value="#id"/>`), [`narrative_text`]
//!   (section narrative → plain text).
//! - Header: [`Document::id`], [`Document::code`], [`Document::title`],
//!   [`Document::effective_time`], [`Document::confidentiality`], [`Document::set_id`],
//!   [`Document::version_number`], [`Document::patient`] (INS + local ids, name, gender,
//!   birth date), [`Document::authors`], [`Document::participants`],
//!   [`Document::replaced_document`]; body: [`Document::sections`] → [`Section`].
//!
//! ```
//! use passerelle_plugin_sdk::cda::{self, Document};
//!
//! let xml = r#"<ClinicalDocument xmlns="urn:hl7-org:v3">
//!   <id root="1.2.250.1.213.1.1.1.8.2022.1.1"/>
//!   <code code="34794-8" codeSystem="2.16.840.1.113883.6.1" displayName="Fiche RCP"/>
//!   <effectiveTime value="20190218094914+0100"/>
//!   <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
//!   <recordTarget><patientRole>
//!     <id root="1.2.250.1.213.1.4.10" extension="279035121518989"/>
//!     <id root="1.2.3.4.567.8.9.10" extension="IPP1"/>
//!   </patientRole></recordTarget>
//!   <component><structuredBody><component><section>
//!     <code code="10164-2" codeSystem="2.16.840.1.113883.6.1"/>
//!     <title>Synthèse</title>
//!     <text><paragraph>Question posée</paragraph><paragraph>à la RCP</paragraph></text>
//!   </section></component></structuredBody></component>
//! </ClinicalDocument>"#;
//! let doc = Document::parse(xml).unwrap();
//! assert_eq!(doc.code().unwrap().code.as_deref(), Some("34794-8"));
//! assert_eq!(doc.effective_time().as_deref(), Some("2019-02-18T09:49:14+01:00"));
//! let patient = doc.patient().unwrap();
//! assert_eq!(patient.ins.as_ref().unwrap().1, "279035121518989");
//! let section = doc.sections().next().unwrap();
//! assert_eq!(section.text(), "Question posée\nà la RCP");
//! assert_eq!(
//!     cda::location(section.node),
//!     "/ClinicalDocument/component/structuredBody/component/section"
//! );
//! ```

mod codes;
mod document;
mod error;
mod names;
mod people;
mod quantities;
mod section;
mod text;
mod walk;

#[cfg(test)]
mod tests;

pub use codes::{Cd, Ii, cd, ii, system_for_oid};
pub use document::Document;
pub use error::{CdaError, utf8};
pub use names::{addr, pn, telecoms};
pub use people::{CdaPatient, Participation, Person, person};
pub use quantities::{IvlPq, Pq, ivl_pq, ivl_ts, pq, ts, ts_value, ts_value_with_offset};
pub use section::Section;
pub use text::{narrative_text, resolve_reference, text_of};
pub use walk::{
    attr, child, children, descendants, find_all, find_path, is, location, null_flavor, xsi_type,
};

pub use roxmltree;

/// A node of the parsed document (an element, a text...), as [`roxmltree`] gives it.
pub type Node<'a, 'input> = roxmltree::Node<'a, 'input>;

/// The HL7 v3 namespace of CDA elements.
pub const HL7_V3: &str = "urn:hl7-org:v3";
/// The SDTC extension namespace (`sdtc:` elements), written `sdtc:name` in paths.
pub const SDTC: &str = "urn:hl7-org:sdtc";
/// The XML Schema instance namespace (`xsi:type`).
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// OIDs of CDA documents that adapters test against.
pub mod oids {
    /// LOINC.
    pub const LOINC: &str = "2.16.840.1.113883.6.1";
    /// SNOMED CT.
    pub const SNOMED_CT: &str = "2.16.840.1.113883.6.96";
    /// ICD-10 (CIM-10).
    pub const ICD_10: &str = "2.16.840.1.113883.6.3";
    /// UCUM.
    pub const UCUM: &str = "2.16.840.1.113883.6.8";
    /// IdNat_PS: national identifiers of health professionals (`8` + RPPS, `0` + ADELI).
    pub const IDNAT_PS: &str = "1.2.250.1.71.4.2.1";
    /// IdNat_Struct: national identifiers of health structures.
    pub const IDNAT_STRUCT: &str = "1.2.250.1.71.4.2.2";
    /// INS-NIR.
    pub const INS_NIR: &str = "1.2.250.1.213.1.4.8";
    /// INS-NIA.
    pub const INS_NIA: &str = "1.2.250.1.213.1.4.9";
    /// Test INS-NIR.
    pub const INS_NIR_TEST: &str = "1.2.250.1.213.1.4.10";
    /// Demonstration INS-NIR.
    pub const INS_NIR_DEMO: &str = "1.2.250.1.213.1.4.11";
    /// TRE_G15 / R38...: professions and specialties of health professionals (CI-SIS
    /// `G15_10/SM36`...).
    pub const PS_SPECIALTY: &str = "1.2.250.1.213.1.1.4.5";
    /// v3 Confidentiality (`N`, `R`, `V`).
    pub const CONFIDENTIALITY: &str = "2.16.840.1.113883.5.25";
    /// v3 ActCode (encounter classes `VR`, `AMB`, `IMP`...).
    pub const ACT_CODE: &str = "2.16.840.1.113883.5.4";
}

/// Most nodes a document may have (an embedded PDF is one text node): bounds memory use.
const NODES_LIMIT: u32 = 2_000_000;

/// Deepest nesting the recursive readers descend into (narrative, sections).
const MAX_DEPTH: usize = 200;
