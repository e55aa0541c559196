//! The document: parsing, the header (ids, code, patient, authors, participants...) and the
//! body's sections.

use std::fmt;

use super::people::participation;
use super::{
    Cd, CdaError, CdaPatient, HL7_V3, Ii, MAX_DEPTH, NODES_LIMIT, Node, Participation, Section,
    addr, attr, cd, child, children, find_all, find_path, ii, is, pn, telecoms, text_of, ts,
};
use crate::fhir::AdministrativeGender;
use crate::record::ins_kind_from_oid;
use crate::types::{ConfidentialityLevel, InsKind};

/// A parsed CDA R2 document (borrowing its text).
pub struct Document<'input> {
    xml: roxmltree::Document<'input>,
}

impl fmt::Debug for Document<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

impl<'input> Document<'input> {
    /// Parses a CDA document: well-formed XML (no DTD) whose root element is
    /// `ClinicalDocument` in the `urn:hl7-org:v3` namespace. A leading BOM is skipped.
    ///
    /// ```
    /// use passerelle_plugin_sdk::cda::Document;
    /// assert!(Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"/>"#).is_ok());
    /// let e = Document::parse(r#"<Bundle xmlns="http://hl7.org/fhir"/>"#).unwrap_err();
    /// assert_eq!(e.location, "/{http://hl7.org/fhir}Bundle");
    /// assert!(Document::parse("").unwrap_err().location.starts_with("line 1"));
    /// ```
    pub fn parse(text: &'input str) -> Result<Self, CdaError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let options = roxmltree::ParsingOptions {
            allow_dtd: false,
            nodes_limit: NODES_LIMIT,
            ..Default::default()
        };
        let xml = roxmltree::Document::parse_with_options(text, options).map_err(|e| {
            let pos = e.pos();
            CdaError::new(
                format!("line {}, column {}", pos.row, pos.col),
                format!("not well-formed XML: {e}"),
            )
        })?;
        let root = xml.root_element();
        if !is(root, "ClinicalDocument") {
            let tag = root.tag_name();
            return Err(CdaError::at(
                root,
                format!(
                    "the root element is {} in {}: expected ClinicalDocument in namespace {HL7_V3}",
                    tag.name(),
                    tag.namespace()
                        .map_or("no namespace".to_string(), |n| format!("namespace {n}"))
                ),
            ));
        }
        Ok(Document { xml })
    }

    /// The `ClinicalDocument` element.
    pub fn root(&self) -> Node<'_, 'input> {
        self.xml.root_element()
    }

    /// The underlying [`roxmltree`] document.
    pub fn xml(&self) -> &roxmltree::Document<'input> {
        &self.xml
    }

    /// The document's unique id (`ClinicalDocument/id`).
    pub fn id(&self) -> Option<Ii> {
        child(self.root(), "id").and_then(ii)
    }

    /// The document type (`ClinicalDocument/code`, LOINC: `34794-8`, `11502-2`...).
    pub fn code(&self) -> Option<Cd> {
        child(self.root(), "code").map(cd)
    }

    /// The title.
    pub fn title(&self) -> Option<String> {
        child(self.root(), "title").and_then(text_of)
    }

    /// The document's creation time (`effectiveTime`) as a FHIR dateTime ([`ts`]).
    pub fn effective_time(&self) -> Option<String> {
        child(self.root(), "effectiveTime").and_then(ts)
    }

    /// The `confidentialityCode` code (`N`, `R`, `V`).
    pub fn confidentiality(&self) -> Option<String> {
        child(self.root(), "confidentialityCode").and_then(|c| attr(c, "code"))
    }

    /// The confidentiality as the envelope's level (`N`, `R`, `V`; `None` for other codes).
    pub fn confidentiality_level(&self) -> Option<ConfidentialityLevel> {
        match self.confidentiality()?.as_str() {
            "N" => Some(ConfidentialityLevel::Normal),
            "R" => Some(ConfidentialityLevel::Restricted),
            "V" => Some(ConfidentialityLevel::VeryRestricted),
            _ => None,
        }
    }

    /// The `languageCode` (`fr-FR`).
    pub fn language(&self) -> Option<String> {
        child(self.root(), "languageCode").and_then(|c| attr(c, "code"))
    }

    /// The id shared by all versions of the document (`setId`).
    pub fn set_id(&self) -> Option<Ii> {
        child(self.root(), "setId").and_then(ii)
    }

    /// The version number (`versionNumber/@value`).
    pub fn version_number(&self) -> Option<u32> {
        child(self.root(), "versionNumber")
            .and_then(|v| v.attribute("value"))
            .and_then(|v| v.trim().parse().ok())
    }

    /// The id of the document this one replaces (`relatedDocument[@typeCode='RPLC']/
    /// parentDocument/id`).
    pub fn replaced_document(&self) -> Option<Ii> {
        children(self.root(), "relatedDocument")
            .filter(|r| r.attribute("typeCode") == Some("RPLC"))
            .filter_map(|r| child(r, "parentDocument"))
            .find_map(|p| children(p, "id").find_map(ii))
    }

    /// The patient (`recordTarget/patientRole`), `None` without one.
    ///
    /// ```
    /// use passerelle_plugin_sdk::cda::Document;
    /// use passerelle_plugin_sdk::fhir::AdministrativeGender;
    /// use passerelle_plugin_sdk::types::InsKind;
    /// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><recordTarget><patientRole>
    ///   <id root="1.2.250.1.213.1.4.8" extension="279035121518989"/><id root="1.2.3" extension="IPP7"/>
    ///   <patient><name><family>DUPONT</family><given>Marie</given></name>
    ///   <administrativeGenderCode code="F"/><birthTime value="19790328"/></patient>
    /// </patientRole></recordTarget></ClinicalDocument>"#).unwrap();
    /// let p = doc.patient().unwrap();
    /// assert_eq!(p.ins, Some((InsKind::Nir, "279035121518989".into())));
    /// assert_eq!(p.local_ids().next().unwrap().value(), "IPP7");
    /// assert_eq!((p.gender, p.birth_date.as_deref()), (Some(AdministrativeGender::Female), Some("1979-03-28")));
    /// assert_eq!(p.identity().local_ids[0].system, "urn:oid:1.2.3");
    /// ```
    pub fn patient(&self) -> Option<CdaPatient> {
        let role = find_path(self.root(), "recordTarget/patientRole")?;
        let ids: Vec<Ii> = children(role, "id").filter_map(ii).collect();
        let ins_of = |nir: bool| {
            ids.iter().find_map(|id| {
                let kind = ins_kind_from_oid(&id.root)?;
                ((kind != InsKind::Nia) == nir)
                    .then(|| id.extension.clone().map(|e| (kind, e)))
                    .flatten()
            })
        };
        let ins = ins_of(true).or_else(|| ins_of(false));
        let patient = child(role, "patient");
        let gender = patient
            .and_then(|p| child(p, "administrativeGenderCode"))
            .and_then(|g| match g.attribute("code")?.trim() {
                "M" => Some(AdministrativeGender::Male),
                "F" => Some(AdministrativeGender::Female),
                "UN" => Some(AdministrativeGender::Other),
                "U" | "UNK" => Some(AdministrativeGender::Unknown),
                _ => None,
            });
        Some(CdaPatient {
            ids,
            ins,
            names: patient
                .into_iter()
                .flat_map(|p| children(p, "name"))
                .flat_map(pn)
                .collect(),
            gender,
            birth_date: patient
                .and_then(|p| child(p, "birthTime"))
                .and_then(|b| b.attribute("value"))
                .and_then(crate::hl7::datetime::to_fhir_date),
            telecom: telecoms(role),
            address: children(role, "addr").filter_map(addr).collect(),
        })
    }

    /// The authors (`author/assignedAuthor`; type code `AUT`). Authoring devices give a
    /// person without name.
    pub fn authors(&self) -> Vec<Participation> {
        children(self.root(), "author")
            .filter_map(|a| Some(participation(a, child(a, "assignedAuthor")?, "AUT")))
            .collect()
    }

    /// The legal authenticator (`legalAuthenticator/assignedEntity`; type code `LA`).
    pub fn legal_authenticator(&self) -> Option<Participation> {
        let la = child(self.root(), "legalAuthenticator")?;
        Some(participation(la, child(la, "assignedEntity")?, "LA"))
    }

    /// The header participants (`participant/associatedEntity`) with their type codes.
    pub fn participants(&self) -> Vec<Participation> {
        children(self.root(), "participant")
            .filter_map(|p| Some(participation(p, child(p, "associatedEntity")?, "PART")))
            .collect()
    }

    /// The documented acts (`documentationOf/serviceEvent`).
    pub fn service_events(&self) -> Vec<Node<'_, 'input>> {
        find_all(self.root(), "documentationOf/serviceEvent")
    }

    /// The performers of the documented acts (`serviceEvent/performer/assignedEntity`).
    pub fn performers(&self) -> Vec<Participation> {
        self.service_events()
            .into_iter()
            .flat_map(|e| children(e, "performer"))
            .filter_map(|p| Some(participation(p, child(p, "assignedEntity")?, "PRF")))
            .collect()
    }

    /// The encounter (`componentOf/encompassingEncounter`).
    pub fn encompassing_encounter(&self) -> Option<Node<'_, 'input>> {
        find_path(self.root(), "componentOf/encompassingEncounter")
    }

    /// The `structuredBody`, `None` for a non-XML body.
    pub fn structured_body(&self) -> Option<Node<'_, 'input>> {
        find_path(self.root(), "component/structuredBody")
    }

    /// The `nonXMLBody/text` (an embedded PDF...), `None` for a structured body.
    pub fn non_xml_body(&self) -> Option<Node<'_, 'input>> {
        find_path(self.root(), "component/nonXMLBody/text")
    }

    /// The top-level sections of the structured body.
    pub fn sections(&self) -> impl Iterator<Item = Section<'_, 'input>> {
        self.structured_body()
            .into_iter()
            .flat_map(|b| children(b, "component"))
            .filter_map(|c| child(c, "section"))
            .map(|node| Section { node })
    }

    /// Every section, nested ones included, depth first.
    pub fn all_sections(&self) -> Vec<Section<'_, 'input>> {
        fn walk<'a, 'i>(s: Section<'a, 'i>, depth: usize, out: &mut Vec<Section<'a, 'i>>) {
            out.push(s);
            if depth < MAX_DEPTH {
                for sub in s.sections() {
                    walk(sub, depth + 1, out);
                }
            }
        }
        let mut out = Vec::new();
        for s in self.sections() {
            walk(s, 0, &mut out);
        }
        out
    }

    /// The first section (at any depth) with this LOINC code.
    pub fn section(&self, loinc: &str) -> Option<Section<'_, 'input>> {
        self.all_sections().into_iter().find(|s| s.has_loinc(loinc))
    }
}
