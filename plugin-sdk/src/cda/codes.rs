//! Datatypes, identifiers and codes: II, CD (CE/CV/CO/CS) and code system OIDs as FHIR URLs.

use super::{Node, attr, child, children, null_flavor, oids, text_of};
use crate::fhir::{CodeableConcept, Coding, Identifier, systems};

/// Whether `s` is an OID (`1.2.250.1...`: digits and dots).
fn is_oid(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `s` is a UUID (8-4-4-4-12 hex digits).
fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The URI of an II root: `urn:oid:` + OID, `urn:uuid:` + lowercase UUID, else the root as is.
fn root_uri(root: &str) -> String {
    if is_oid(root) {
        format!("urn:oid:{root}")
    } else if is_uuid(root) {
        format!("urn:uuid:{}", root.to_ascii_lowercase())
    } else {
        root.to_string()
    }
}

/// A CDA instance identifier (II): `root` (OID or UUID) and optional `extension`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ii {
    /// The OID or UUID: the namespace when there is an extension, else the identifier itself.
    pub root: String,
    /// The identifier within `root`.
    pub extension: Option<String>,
}

impl Ii {
    /// The FHIR identifier system: `urn:oid:ROOT` (or `urn:uuid:`) when there is an extension;
    /// `urn:ietf:rfc:3986` when the root alone is the identifier.
    pub fn system(&self) -> String {
        match &self.extension {
            Some(_) => root_uri(&self.root),
            None => systems::URN_IETF_RFC_3986.to_string(),
        }
    }

    /// The FHIR identifier value: the extension, or the root as a URI (`urn:oid:...`).
    pub fn value(&self) -> String {
        match &self.extension {
            Some(e) => e.clone(),
            None => root_uri(&self.root),
        }
    }

    /// The FHIR [`Identifier`] (see [`Ii::system`] and [`Ii::value`]).
    ///
    /// ```
    /// use passerelle_plugin_sdk::cda::Ii;
    /// let ipp = Ii { root: "1.2.3.4".into(), extension: Some("IPP1".into()) }.to_identifier();
    /// assert_eq!((ipp.system.as_deref(), ipp.value.as_deref()), (Some("urn:oid:1.2.3.4"), Some("IPP1")));
    /// let doc = Ii { root: "2CE71A5B-FD99-4958-ADE4-CA39E86625ED".into(), extension: None }.to_identifier();
    /// assert_eq!(doc.system.as_deref(), Some("urn:ietf:rfc:3986"));
    /// assert_eq!(doc.value.as_deref(), Some("urn:uuid:2ce71a5b-fd99-4958-ade4-ca39e86625ed"));
    /// ```
    pub fn to_identifier(&self) -> Identifier {
        Identifier::new(self.system(), self.value())
    }

    /// `root` or `root^extension`: a compact, unique key (message ids, UUID seeds).
    pub fn key(&self) -> String {
        match &self.extension {
            Some(e) => format!("{}^{e}", self.root),
            None => self.root.clone(),
        }
    }
}

/// Reads an II element; `None` when it has a `nullFlavor` or no root.
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, child, ii};
/// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><id root=" 1.2.3 " extension="X"/></ClinicalDocument>"#).unwrap();
/// let id = ii(child(doc.root(), "id").unwrap()).unwrap();
/// assert_eq!((id.root.as_str(), id.extension.as_deref()), ("1.2.3", Some("X")));
/// ```
pub fn ii(node: Node) -> Option<Ii> {
    if null_flavor(node).is_some() {
        return None;
    }
    Some(Ii {
        root: attr(node, "root")?,
        extension: attr(node, "extension"),
    })
}

/// The FHIR system URL of a code system OID: LOINC, SNOMED CT, ICD-10, UCUM, ATC, ICD-O-3,
/// EDQM and the HL7 v3 code systems (Confidentiality, AdministrativeGender, ActCode,
/// ObservationInterpretation, ParticipationFunction, RoleCode, ActPriority) have canonical
/// URLs; any other OID gives `urn:oid:OID`.
///
/// ```
/// use passerelle_plugin_sdk::cda::system_for_oid;
/// assert_eq!(system_for_oid("2.16.840.1.113883.6.1"), "http://loinc.org");
/// assert_eq!(system_for_oid("2.16.840.1.113883.6.3"), "http://hl7.org/fhir/sid/icd-10");
/// assert_eq!(system_for_oid("1.2.250.1.213.1.1.4.322"), "urn:oid:1.2.250.1.213.1.1.4.322");
/// ```
pub fn system_for_oid(oid: &str) -> String {
    const THO: &str = "http://terminology.hl7.org/CodeSystem/";
    let oid = oid.trim();
    let known = match oid {
        oids::LOINC => systems::LOINC,
        oids::SNOMED_CT => systems::SNOMED_CT,
        oids::ICD_10 => systems::ICD_10,
        oids::UCUM => systems::UCUM,
        "2.16.840.1.113883.6.73" => "http://www.whocc.no/atc",
        "0.4.0.127.0.16.1.1.2.1" => systems::EDQM,
        "2.16.840.1.113883.6.43.1" => return format!("{THO}icd-o-3"),
        oids::CONFIDENTIALITY => systems::V3_CONFIDENTIALITY,
        oids::ACT_CODE => systems::V3_ACT_CODE,
        "2.16.840.1.113883.5.83" => systems::V3_OBSERVATION_INTERPRETATION,
        "2.16.840.1.113883.5.1" => return format!("{THO}v3-AdministrativeGender"),
        "2.16.840.1.113883.5.88" => return format!("{THO}v3-ParticipationFunction"),
        "2.16.840.1.113883.5.111" => return format!("{THO}v3-RoleCode"),
        "2.16.840.1.113883.5.7" => return format!("{THO}v3-ActPriority"),
        _ if is_oid(oid) => return format!("urn:oid:{oid}"),
        _ => return oid.to_string(),
    };
    known.to_string()
}

/// A CDA coded value (CD, CE, CV, CO, CS...): code, code system, display name, original text
/// and translations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cd {
    /// The code.
    pub code: Option<String>,
    /// The code system OID.
    pub code_system: Option<String>,
    /// The code system's name (`LOINC`, `CIM-10`...), informative.
    pub code_system_name: Option<String>,
    /// The code system version.
    pub code_system_version: Option<String>,
    /// The display name.
    pub display_name: Option<String>,
    /// The original text, with a `<reference>` resolved against the narrative.
    pub original_text: Option<String>,
    /// The `nullFlavor`, when the value is not coded.
    pub null_flavor: Option<String>,
    /// Translations into other code systems.
    pub translations: Vec<Cd>,
}

impl Cd {
    /// The FHIR system URL of the code system ([`system_for_oid`]).
    pub fn system(&self) -> Option<String> {
        self.code_system.as_deref().map(system_for_oid)
    }

    /// Whether this is `code` in the code system `oid`.
    pub fn is(&self, oid: &str, code: &str) -> bool {
        self.code.as_deref() == Some(code) && self.code_system.as_deref() == Some(oid)
    }

    /// The FHIR [`Coding`] of the code itself (`None` without a code); a display name is kept
    /// unless it is the literal `None` some producers write.
    pub fn to_coding(&self) -> Option<Coding> {
        let code = self.code.as_deref()?;
        let mut coding = match self.system() {
            Some(system) => Coding::new(system, code),
            None => Coding {
                code: Some(code.to_string()),
                ..Default::default()
            },
        };
        coding.version = self.code_system_version.clone();
        coding.display = self.display_name.clone().filter(|d| d != "None");
        Some(coding)
    }

    /// The FHIR [`CodeableConcept`]: the code, then the translations' codes; the text is the
    /// original text. `None` when there is neither code nor text.
    ///
    /// ```
    /// use passerelle_plugin_sdk::cda::{Document, cd, child};
    /// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><code code="C50.2" codeSystem="2.16.840.1.113883.6.3" displayName="Sein">
    ///   <originalText>Quadrant supéro-interne</originalText>
    ///   <translation code="1" codeSystem="1.2.3" displayName="local"/></code></ClinicalDocument>"#).unwrap();
    /// let c = cd(child(doc.root(), "code").unwrap());
    /// let cc = c.to_codeable_concept().unwrap();
    /// assert_eq!(cc.coding[0].system.as_deref(), Some("http://hl7.org/fhir/sid/icd-10"));
    /// assert_eq!(cc.coding[1].system.as_deref(), Some("urn:oid:1.2.3"));
    /// assert_eq!(cc.text.as_deref(), Some("Quadrant supéro-interne"));
    /// ```
    pub fn to_codeable_concept(&self) -> Option<CodeableConcept> {
        let coding: Vec<Coding> = self
            .to_coding()
            .into_iter()
            .chain(self.translations.iter().filter_map(Cd::to_coding))
            .collect();
        if coding.is_empty() && self.original_text.is_none() {
            return None;
        }
        Some(CodeableConcept {
            coding,
            text: self.original_text.clone(),
        })
    }

    /// The best human label: original text, else display name, else code.
    pub fn label(&self) -> Option<&str> {
        self.original_text
            .as_deref()
            .or(self.display_name.as_deref().filter(|d| *d != "None"))
            .or(self.code.as_deref())
    }
}

/// Reads a coded element (CD/CE/CV/CO/CS). Never fails: an uncoded value has its
/// `null_flavor` and/or `original_text` only.
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, cd, child};
/// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><code code="34794-8" codeSystem="2.16.840.1.113883.6.1" displayName="Fiche RCP"/></ClinicalDocument>"#).unwrap();
/// let code = cd(child(doc.root(), "code").unwrap());
/// assert!(code.is("2.16.840.1.113883.6.1", "34794-8"));
/// assert_eq!(code.system().as_deref(), Some("http://loinc.org"));
/// ```
pub fn cd(node: Node) -> Cd {
    Cd {
        code: attr(node, "code"),
        code_system: attr(node, "codeSystem"),
        code_system_name: attr(node, "codeSystemName"),
        code_system_version: attr(node, "codeSystemVersion"),
        display_name: attr(node, "displayName"),
        original_text: child(node, "originalText").and_then(text_of),
        null_flavor: attr(node, "nullFlavor"),
        translations: children(node, "translation").map(cd).collect(),
    }
}
