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

use std::fmt;

use crate::fhir::{
    Address, AddressUse, AdministrativeGender, CodeableConcept, Coding, ContactPoint,
    ContactPointSystem, ContactPointUse, Decimal, HumanName, Identifier, NameUse, Patient, Period,
    Practitioner, Quantity, Range, systems,
};
use crate::hl7::datetime::Dtm;
use crate::record::ins_kind_from_oid;
use crate::types::{AdaptError, ConfidentialityLevel, InsKind, PatientIdentity};

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

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a document cannot be used: where (an XPath-like [`location`], or `line L, column C`
/// for XML syntax errors) and why. Converts into [`AdaptError::Malformed`] with `?`.
///
/// ```
/// use passerelle_plugin_sdk::cda::{CdaError, Document};
/// use passerelle_plugin_sdk::types::AdaptError;
///
/// let err = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><id></ClinicalDocument>"#).unwrap_err();
/// assert!(err.location.starts_with("line 1, column"), "{err}");
/// let err = Document::parse(r#"<ClinicalDocument/>"#).unwrap_err();
/// assert_eq!(err.location, "/ClinicalDocument");
/// assert!(err.reason.contains("urn:hl7-org:v3"));
/// let adapt: AdaptError = err.into();
/// assert!(matches!(adapt, AdaptError::Malformed(m) if m.location == "/ClinicalDocument"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdaError {
    /// Where: `/ClinicalDocument/recordTarget/patientRole/id[2]/@root`, `line 3, column 7`.
    pub location: String,
    /// Why.
    pub reason: String,
}

impl CdaError {
    /// An error at a location.
    pub fn new(location: impl Into<String>, reason: impl Into<String>) -> Self {
        CdaError {
            location: location.into(),
            reason: reason.into(),
        }
    }

    /// An error about a node (its [`location`]).
    pub fn at(node: Node, reason: impl Into<String>) -> Self {
        Self::new(location(node), reason)
    }

    /// An error about an attribute of a node (`…/code/@code`).
    pub fn at_attribute(node: Node, attribute: &str, reason: impl Into<String>) -> Self {
        Self::new(format!("{}/@{attribute}", location(node)), reason)
    }

    /// Something required under `parent` is missing: the location is the parent's followed by
    /// `path` (`/ClinicalDocument/effectiveTime/@value`).
    ///
    /// ```
    /// use passerelle_plugin_sdk::cda::{CdaError, Document};
    /// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"/>"#).unwrap();
    /// let e = CdaError::missing(doc.root(), "effectiveTime/@value");
    /// assert_eq!(e.to_string(), "/ClinicalDocument/effectiveTime/@value: missing");
    /// ```
    pub fn missing(parent: Node, path: &str) -> Self {
        Self::new(format!("{}/{path}", location(parent)), "missing")
    }
}

impl fmt::Display for CdaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.reason)
    }
}

impl std::error::Error for CdaError {}

impl From<CdaError> for AdaptError {
    fn from(e: CdaError) -> Self {
        crate::malformed(e.location, e.reason)
    }
}

/// The payload as UTF-8 text, without a leading BOM; the error names the first bad byte.
///
/// ```
/// use passerelle_plugin_sdk::cda::utf8;
/// assert_eq!(utf8(b"\xEF\xBB\xBF<a/>").unwrap(), "<a/>");
/// assert_eq!(utf8(b"<a>\xE9</a>").unwrap_err().location, "byte 3");
/// ```
pub fn utf8(bytes: &[u8]) -> Result<&str, CdaError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        CdaError::new(
            format!("byte {}", e.valid_up_to()),
            "not UTF-8 (CDA documents are read as UTF-8)",
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Walking the tree
// ---------------------------------------------------------------------------------------------

/// Whether `node` is the element `name` (`"code"`: HL7 v3 namespace; `"sdtc:raceCode"`: SDTC).
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, is};
/// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"/>"#).unwrap();
/// assert!(is(doc.root(), "ClinicalDocument"));
/// assert!(!is(doc.root(), "sdtc:ClinicalDocument"));
/// ```
pub fn is(node: Node, name: &str) -> bool {
    if !node.is_element() {
        return false;
    }
    let (ns, local) = match name.split_once(':') {
        Some(("sdtc", local)) => (SDTC, local),
        Some(_) => return false,
        None => (HL7_V3, name),
    };
    let tag = node.tag_name();
    tag.name() == local && tag.namespace() == Some(ns)
}

/// The first child element `name` (see [`is`] for names).
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, child};
/// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><title>T</title></ClinicalDocument>"#).unwrap();
/// assert_eq!(child(doc.root(), "title").and_then(|t| t.text()), Some("T"));
/// assert!(child(doc.root(), "code").is_none());
/// ```
pub fn child<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
    node.children().find(|c| is(*c, name))
}

/// The child elements `name`, in document order.
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, children};
/// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1"/><x/><id root="2"/></ClinicalDocument>"#).unwrap();
/// let roots: Vec<_> = children(doc.root(), "id").filter_map(|n| n.attribute("root")).collect();
/// assert_eq!(roots, ["1", "2"]);
/// ```
pub fn children<'a, 'input>(
    node: Node<'a, 'input>,
    name: &str,
) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(move |c| is(*c, name))
}

/// The descendant elements `name` (not `node` itself), in document order.
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, descendants};
/// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><a><id/></a><id/></ClinicalDocument>"#).unwrap();
/// assert_eq!(descendants(doc.root(), "id").count(), 2);
/// ```
pub fn descendants<'a, 'input>(
    node: Node<'a, 'input>,
    name: &str,
) -> impl Iterator<Item = Node<'a, 'input>> {
    node.descendants().skip(1).filter(move |c| is(*c, name))
}

/// Every element reached from `node` by a `/`-separated path of child names, in document
/// order. A step may carry a 1-based position among its same-named siblings (`component[3]`);
/// a path starting with `/` starts at the document root (`/ClinicalDocument/...`), so the
/// output of [`location`] finds its node again.
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, find_all, location};
/// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><component><structuredBody>
///   <component><section><title>A</title></section></component>
///   <component><section><title>B</title></section></component>
/// </structuredBody></component></ClinicalDocument>"#).unwrap();
/// let sections = find_all(doc.root(), "component/structuredBody/component/section");
/// assert_eq!(sections.len(), 2);
/// let second = location(sections[1]);
/// assert_eq!(second, "/ClinicalDocument/component/structuredBody/component[2]/section");
/// assert_eq!(find_all(doc.root(), &second), vec![sections[1]]);
/// ```
pub fn find_all<'a, 'input>(node: Node<'a, 'input>, path: &str) -> Vec<Node<'a, 'input>> {
    let (mut current, path) = match path.strip_prefix('/') {
        Some(rest) => (vec![node.document().root()], rest),
        None => (vec![node], path),
    };
    for step in path.split('/').filter(|s| !s.is_empty()) {
        let (name, index) = match step.strip_suffix(']').and_then(|s| s.split_once('[')) {
            Some((name, n)) => match n.parse::<usize>() {
                Ok(n) if n >= 1 => (name, Some(n)),
                _ => return Vec::new(),
            },
            None => (step, None),
        };
        let mut next = Vec::new();
        for n in current {
            match index {
                Some(i) => next.extend(children(n, name).nth(i - 1)),
                None => next.extend(children(n, name)),
            }
        }
        if next.is_empty() {
            return next;
        }
        current = next;
    }
    current
}

/// The first element of [`find_all`].
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, find_path};
/// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><recordTarget><patientRole><id extension="A"/></patientRole></recordTarget></ClinicalDocument>"#).unwrap();
/// let id = find_path(doc.root(), "recordTarget/patientRole/id").unwrap();
/// assert_eq!(id.attribute("extension"), Some("A"));
/// ```
pub fn find_path<'a, 'input>(node: Node<'a, 'input>, path: &str) -> Option<Node<'a, 'input>> {
    find_all(node, path).into_iter().next()
}

/// Where a node is, XPath-like: element local names from the root, with a 1-based
/// `[position]` among same-named siblings when there are several (`component[3]`); elements
/// outside the HL7 namespace get a prefix (`sdtc:`, or `{uri}`); a text node ends with
/// `text()`.
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, find_path, location};
/// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><id/><id><x/></id></ClinicalDocument>"#).unwrap();
/// let x = find_path(doc.root(), "id[2]/x").unwrap();
/// assert_eq!(location(x), "/ClinicalDocument/id[2]/x");
/// ```
pub fn location(node: Node) -> String {
    let mut steps = Vec::new();
    if node.is_text() {
        steps.push("text()".to_string());
    }
    for n in node.ancestors().filter(|n| n.is_element()) {
        let tag = n.tag_name();
        let name = match tag.namespace() {
            Some(HL7_V3) => tag.name().to_string(),
            Some(SDTC) => format!("sdtc:{}", tag.name()),
            Some(uri) => format!("{{{uri}}}{}", tag.name()),
            None => tag.name().to_string(),
        };
        let same = |s: &Node| s.is_element() && s.tag_name() == tag;
        let before = n.prev_siblings().skip(1).filter(same).count();
        let after = n.next_siblings().skip(1).filter(same).count();
        if before + after > 0 {
            steps.push(format!("{name}[{}]", before + 1));
        } else {
            steps.push(name);
        }
    }
    steps.reverse();
    format!("/{}", steps.join("/"))
}

/// The `xsi:type` of an element (`"PQ"`, `"CD"`, `"IVL_TS"`...), without prefix.
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, child, xsi_type};
/// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><value xsi:type="PQ" value="1"/></ClinicalDocument>"#).unwrap();
/// assert_eq!(xsi_type(child(doc.root(), "value").unwrap()), Some("PQ"));
/// ```
pub fn xsi_type<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    let t = node.attribute((XSI, "type"))?;
    Some(t.rsplit(':').next().unwrap_or(t))
}

/// The `nullFlavor` of an element (`NI`, `UNK`, `NA`, `NAV`, `OTH`...).
pub fn null_flavor<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    node.attribute("nullFlavor")
}

/// An attribute's trimmed value, `None` when absent or blank.
pub fn attr(node: Node, name: &str) -> Option<String> {
    node.attribute(name).and_then(non_blank)
}

fn non_blank(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

/// The element whose `ID` attribute is `reference` (`#id` or `id`), anywhere in the document
/// of `node`: the target of a `<reference value="#id"/>`.
pub fn resolve_reference<'a, 'input>(
    node: Node<'a, 'input>,
    reference: &str,
) -> Option<Node<'a, 'input>> {
    let id = reference
        .trim()
        .strip_prefix('#')
        .unwrap_or(reference.trim());
    if id.is_empty() {
        return None;
    }
    node.document()
        .descendants()
        .find(|n| n.is_element() && n.attribute("ID") == Some(id))
}

/// The plain text of an ED-like element (`text`, `originalText`, `title`...): when it holds a
/// `<reference value="#id"/>`, the narrative text of the referenced element; else its own text.
/// Whitespace is collapsed and lines joined with a space; `None` when empty.
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, find_path, text_of};
/// let doc = Document::parse(r##"<ClinicalDocument xmlns="urn:hl7-org:v3">
///   <text><content ID="t1">Tumeur   maligne</content></text>
///   <value><originalText><reference value="#t1"/></originalText></value>
///   <title>  Fiche
///     RCP </title>
/// </ClinicalDocument>"##).unwrap();
/// let original = find_path(doc.root(), "value/originalText").unwrap();
/// assert_eq!(text_of(original).as_deref(), Some("Tumeur maligne"));
/// assert_eq!(text_of(find_path(doc.root(), "title").unwrap()).as_deref(), Some("Fiche RCP"));
/// ```
pub fn text_of(node: Node) -> Option<String> {
    let target = match child(node, "reference").and_then(|r| r.attribute("value")) {
        Some(reference) => resolve_reference(node, reference)?,
        None => node,
    };
    let text = narrative_text(target).lines().collect::<Vec<_>>().join(" ");
    non_blank(&text)
}

/// The CDA narrative block (a section's `text`) as plain text: whitespace collapsed, one line
/// per paragraph, list item (`- ` prefix), table row (non-empty cells joined with ` | `) and
/// `br`; `renderMultiMedia` is dropped. Empty lines are removed.
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, child, narrative_text};
/// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><text>
///   <table><thead><tr><th colspan="2">Tumeur</th></tr></thead>
///     <tbody><tr><td>Topographie</td><td>C50.2 <content>Sein</content></td><td/></tr></tbody></table>
///   <paragraph>Avis :<br/>chirurgie</paragraph>
///   <list><item>RT</item><item>CT</item></list>
/// </text></ClinicalDocument>"#).unwrap();
/// assert_eq!(
///     narrative_text(child(doc.root(), "text").unwrap()),
///     "Tumeur\nTopographie | C50.2 Sein\nAvis :\nchirurgie\n- RT\n- CT"
/// );
/// ```
pub fn narrative_text(node: Node) -> String {
    let mut w = TextWriter::default();
    w.walk(node, 0);
    w.finish()
}

#[derive(Default)]
struct TextWriter {
    lines: Vec<String>,
    line: String,
    space: bool,
}

impl TextWriter {
    fn push_text(&mut self, text: &str) {
        let mut words = text.split_whitespace().peekable();
        if words.peek().is_none() {
            self.space |= !text.is_empty();
            return;
        }
        if text.starts_with(char::is_whitespace) {
            self.space = true;
        }
        for word in words {
            if self.space && !self.line.is_empty() && !self.line.ends_with(' ') {
                self.line.push(' ');
            }
            self.line.push_str(word);
            self.space = true;
        }
        self.space = text.ends_with(char::is_whitespace);
    }

    fn break_line(&mut self) {
        let line = self.line.trim();
        if !line.is_empty() && line != "-" {
            self.lines.push(line.to_string());
        }
        self.line.clear();
        self.space = false;
    }

    fn walk(&mut self, node: Node, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        for c in node.children() {
            if c.is_text() {
                self.push_text(c.text().unwrap_or(""));
                continue;
            }
            if !c.is_element() {
                continue;
            }
            match c.tag_name().name() {
                "br" => self.break_line(),
                "renderMultiMedia" | "col" | "colgroup" => {}
                "tr" => {
                    self.break_line();
                    let cells: Vec<String> = c
                        .children()
                        .filter(|n| n.is_element() && matches!(n.tag_name().name(), "td" | "th"))
                        .map(|cell| {
                            let mut w = TextWriter::default();
                            w.walk(cell, depth + 1);
                            w.finish().replace('\n', " ")
                        })
                        .filter(|t| !t.is_empty())
                        .collect();
                    self.line.push_str(&cells.join(" | "));
                    self.break_line();
                }
                "item" => {
                    self.break_line();
                    self.line.push_str("- ");
                    self.walk(c, depth + 1);
                    self.break_line();
                }
                "paragraph" | "table" | "thead" | "tbody" | "tfoot" | "list" | "caption"
                | "text" | "section" => {
                    self.break_line();
                    self.walk(c, depth + 1);
                    self.break_line();
                }
                _ => self.walk(c, depth + 1),
            }
        }
    }

    fn finish(mut self) -> String {
        self.break_line();
        self.lines.join("\n")
    }
}

// ---------------------------------------------------------------------------------------------
// Datatypes
// ---------------------------------------------------------------------------------------------

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

/// A physical quantity (PQ): the value's text (for [`Decimal`]) and its UCUM unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pq {
    /// The value as written (`"1.950"`).
    pub value: Option<String>,
    /// The UCUM unit (`"m[IU]/L"`); CDA's default unit is `1`.
    pub unit: Option<String>,
    /// The `nullFlavor`.
    pub null_flavor: Option<String>,
}

impl Pq {
    /// The value as a FHIR [`Decimal`] (its text kept), `None` if absent or not a number.
    pub fn decimal(&self) -> Option<Decimal> {
        self.value.as_deref().and_then(Decimal::parse)
    }

    /// The FHIR [`Quantity`]: value with a UCUM unit (`unit` and `code`), or no unit.
    ///
    /// ```
    /// use passerelle_plugin_sdk::cda::Pq;
    /// let q = Pq { value: Some("1.950".into()), unit: Some("m[IU]/L".into()), null_flavor: None }.to_quantity().unwrap();
    /// assert_eq!(serde_json::to_string(&q).unwrap(),
    ///     r#"{"value":1.950,"unit":"m[IU]/L","system":"http://unitsofmeasure.org","code":"m[IU]/L"}"#);
    /// ```
    pub fn to_quantity(&self) -> Option<Quantity> {
        let value = self.decimal()?;
        Some(match &self.unit {
            Some(unit) => Quantity::ucum(value, unit),
            None => Quantity::new(value),
        })
    }
}

/// Reads a PQ element (`value`, `unit`).
pub fn pq(node: Node) -> Pq {
    Pq {
        value: attr(node, "value"),
        unit: attr(node, "unit"),
        null_flavor: attr(node, "nullFlavor"),
    }
}

/// An interval of physical quantities (IVL_PQ): `low`, `high`, or a single `value`/`center`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IvlPq {
    /// Lower bound.
    pub low: Option<Pq>,
    /// Upper bound.
    pub high: Option<Pq>,
    /// A single value (`@value` or `center`).
    pub value: Option<Pq>,
}

impl IvlPq {
    /// The FHIR [`Range`] of the bounds (`None` when neither is a number).
    ///
    /// ```
    /// use passerelle_plugin_sdk::cda::{Document, child, ivl_pq};
    /// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><value><low value="0.270" unit="m[IU]/L"/><high value="4.200" unit="m[IU]/L"/></value></ClinicalDocument>"#).unwrap();
    /// let range = ivl_pq(child(doc.root(), "value").unwrap()).to_range().unwrap();
    /// assert_eq!(range.high.unwrap().value.unwrap().as_str(), "4.200");
    /// ```
    pub fn to_range(&self) -> Option<Range> {
        let low = self.low.as_ref().and_then(Pq::to_quantity);
        let high = self.high.as_ref().and_then(Pq::to_quantity);
        (low.is_some() || high.is_some()).then(|| Range::new(low, high))
    }
}

/// Reads an IVL_PQ element.
pub fn ivl_pq(node: Node) -> IvlPq {
    let value = child(node, "center")
        .map(pq)
        .or_else(|| node.attribute("value").map(|_| pq(node)));
    IvlPq {
        low: child(node, "low").map(pq),
        high: child(node, "high").map(pq),
        value,
    }
}

/// A CDA TS value (`YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]`) as a FHIR `dateTime`. FHIR needs
/// a time zone with a time: a value with a time but no zone is cut to its date (no zone is
/// guessed; use [`ts_value_with_offset`] to supply one). `None` when invalid.
///
/// ```
/// use passerelle_plugin_sdk::cda::ts_value;
/// assert_eq!(ts_value("20190218094914+0100").as_deref(), Some("2019-02-18T09:49:14+01:00"));
/// assert_eq!(ts_value("201902181711+0100").as_deref(), Some("2019-02-18T17:11:00+01:00"));
/// assert_eq!(ts_value("20190129").as_deref(), Some("2019-01-29"));
/// assert_eq!(ts_value("20190218094914").as_deref(), Some("2019-02-18"));
/// assert_eq!(ts_value("2019021809491+010"), None);
/// ```
pub fn ts_value(value: &str) -> Option<String> {
    let t = Dtm::parse(value.trim())?;
    if t.hour.is_some() && t.offset_minutes.is_none() {
        return Some(t.to_fhir_date());
    }
    t.to_fhir_datetime("Z")
}

/// [`ts_value`], with `default_offset` (`"+01:00"`, `"Z"`) for times given without a zone.
///
/// ```
/// use passerelle_plugin_sdk::cda::ts_value_with_offset;
/// assert_eq!(ts_value_with_offset("201902181711", "+01:00").as_deref(), Some("2019-02-18T17:11:00+01:00"));
/// ```
pub fn ts_value_with_offset(value: &str, default_offset: &str) -> Option<String> {
    Dtm::parse(value.trim())?.to_fhir_datetime(default_offset)
}

/// Reads a TS element's `@value` as a FHIR `dateTime` ([`ts_value`]).
pub fn ts(node: Node) -> Option<String> {
    ts_value(node.attribute("value")?)
}

/// Reads an IVL_TS element as a FHIR [`Period`]: `low`/`high`, or a single `@value`/`center`
/// as both start and end. `None` when no bound is a valid time.
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, child, ivl_ts};
/// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><effectiveTime><low value="20190218171100+0100"/></effectiveTime></ClinicalDocument>"#).unwrap();
/// let p = ivl_ts(child(doc.root(), "effectiveTime").unwrap()).unwrap();
/// assert_eq!(p.start.as_deref(), Some("2019-02-18T17:11:00+01:00"));
/// assert_eq!(p.end, None);
/// ```
pub fn ivl_ts(node: Node) -> Option<Period> {
    let single = ts(node).or_else(|| child(node, "center").and_then(ts));
    let start = child(node, "low").and_then(ts).or_else(|| single.clone());
    let end = child(node, "high").and_then(ts).or(single);
    (start.is_some() || end.is_some()).then_some(Period { start, end })
}

/// Reads a PN (person name) element. CI-SIS names mark birth parts with `qualifier="BR"`
/// and used parts with `qualifier="CL"` (also `SP` for a spouse's name): they give an
/// `official` name (birth family name, first birth given name) and a `usual` one. A name
/// without qualifiers gives one name. `prefix` and `suffix` are kept (`MME`, `DR`).
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, child, pn};
/// use passerelle_plugin_sdk::fhir::NameUse;
/// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><name>
///   <family qualifier="BR">PAT-TROIS</family><given>DOMINIQUE MARIE-LOUISE</given>
///   <given qualifier="BR">DOMINIQUE</given>
///   <family qualifier="CL">MARTIN</family><given qualifier="CL">DOMI</given>
/// </name></ClinicalDocument>"#).unwrap();
/// let names = pn(child(doc.root(), "name").unwrap());
/// assert_eq!(names[0].use_, Some(NameUse::Official));
/// assert_eq!((names[0].family.as_deref(), names[0].given.as_slice()), (Some("PAT-TROIS"), &["DOMINIQUE".to_string()][..]));
/// assert_eq!(names[1].use_, Some(NameUse::Usual));
/// assert_eq!(names[1].family.as_deref(), Some("MARTIN"));
/// ```
pub fn pn(node: Node) -> Vec<HumanName> {
    if null_flavor(node).is_some() {
        return Vec::new();
    }
    let parts: Vec<(String, Option<String>, String)> = node
        .children()
        .filter(|c| c.is_element() && c.tag_name().namespace() == Some(HL7_V3))
        .filter_map(|c| {
            let text = text_of(c)?;
            Some((c.tag_name().name().to_string(), attr(c, "qualifier"), text))
        })
        .collect();
    let qualified = parts
        .iter()
        .any(|(_, q, _)| matches!(q.as_deref(), Some("BR" | "CL" | "SP")));
    let build = |keep: &dyn Fn(Option<&str>) -> bool, first_given_only: bool| {
        let pick = |kind: &str| -> Vec<String> {
            parts
                .iter()
                .filter(|(k, q, _)| k == kind && keep(q.as_deref()))
                .map(|(_, _, t)| t.clone())
                .collect()
        };
        let mut given = pick("given");
        if first_given_only {
            // The first birth given name is the one marked BR; the unqualified one is the list.
            let marked: Vec<String> = parts
                .iter()
                .filter(|(k, q, _)| k == "given" && q.as_deref() == Some("BR"))
                .map(|(_, _, t)| t.clone())
                .collect();
            if !marked.is_empty() {
                given = marked;
            }
        }
        HumanName {
            family: pick("family").into_iter().next(),
            given,
            prefix: pick("prefix"),
            suffix: pick("suffix"),
            ..Default::default()
        }
    };
    let mut names = Vec::new();
    if !qualified {
        let name = build(&|_| true, false);
        if name.family.is_some() || !name.given.is_empty() {
            names.push(name);
        } else if let Some(text) = text_of(node) {
            names.push(HumanName {
                text: Some(text),
                ..Default::default()
            });
        }
        return names;
    }
    let official = build(&|q| matches!(q, None | Some("BR")), true).with_use(NameUse::Official);
    let birth_prefix = official.prefix.clone();
    if official.family.is_some() {
        names.push(official);
    }
    // The used name (CL) and a spouse's name (SP): FHIR has no "spouse" use, both are usual.
    for qualifier in ["CL", "SP"] {
        let n = build(&|q| q == Some(qualifier), false);
        if n.family.is_some() || !n.given.is_empty() {
            let prefix = if n.prefix.is_empty() {
                birth_prefix.clone()
            } else {
                n.prefix.clone()
            };
            names.push(HumanName {
                prefix,
                ..n.with_use(NameUse::Usual)
            });
        }
    }
    names
}

/// Reads an AD (address) element: `streetAddressLine`s, else `houseNumber` + `streetName`,
/// then `unitID`, `additionalLocator`, `postBox`; `postalCode`, `city`, `county` (INSEE code,
/// as district), `state`, `country`. `None` when empty or null.
pub fn addr(node: Node) -> Option<Address> {
    if null_flavor(node).is_some() {
        return None;
    }
    let get = |name: &str| child(node, name).and_then(text_of);
    let mut line: Vec<String> = children(node, "streetAddressLine")
        .filter_map(text_of)
        .collect();
    if line.is_empty() {
        let street: Vec<String> = ["houseNumber", "streetName"]
            .iter()
            .filter_map(|n| get(n))
            .collect();
        if !street.is_empty() {
            line.push(street.join(" "));
        }
    }
    line.extend(
        ["unitID", "additionalLocator", "postBox"]
            .iter()
            .filter_map(|n| get(n)),
    );
    let use_ = match node.attribute("use") {
        Some("H" | "HP" | "HV") => Some(AddressUse::Home),
        Some("WP" | "DIR" | "PUB") => Some(AddressUse::Work),
        Some("TMP") => Some(AddressUse::Temp),
        Some("OLD") => Some(AddressUse::Old),
        _ => None,
    };
    let address = Address {
        use_,
        line,
        city: get("city"),
        district: get("county"),
        state: get("state"),
        postal_code: get("postalCode"),
        country: get("country"),
        ..Default::default()
    };
    (address
        != Address {
            use_,
            ..Default::default()
        })
    .then_some(address)
}

/// Reads the `telecom` children of a node (`tel:`, `fax:`, `mailto:`, URLs) as FHIR contact
/// points, with their use (`H`/`HP` home, `WP` work, `MC` mobile).
///
/// ```
/// use passerelle_plugin_sdk::cda::{Document, telecoms};
/// use passerelle_plugin_sdk::fhir::{ContactPointSystem, ContactPointUse};
/// let doc = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><telecom value="tel:0647151010" use="MC"/><telecom value="mailto:a@b.fr"/></ClinicalDocument>"#).unwrap();
/// let t = telecoms(doc.root());
/// assert_eq!((t[0].system, t[0].value.as_deref(), t[0].use_), (Some(ContactPointSystem::Phone), Some("0647151010"), Some(ContactPointUse::Mobile)));
/// assert_eq!(t[1].system, Some(ContactPointSystem::Email));
/// ```
pub fn telecoms(node: Node) -> Vec<ContactPoint> {
    children(node, "telecom")
        .filter(|t| null_flavor(*t).is_none())
        .filter_map(|t| {
            let value = attr(t, "value")?;
            let (system, v) = match value.split_once(':') {
                Some(("tel", v)) => (ContactPointSystem::Phone, v.to_string()),
                Some(("fax", v)) => (ContactPointSystem::Fax, v.to_string()),
                Some(("mailto", v)) => (ContactPointSystem::Email, v.to_string()),
                Some(("http" | "https", _)) => (ContactPointSystem::Url, value.clone()),
                _ => (ContactPointSystem::Other, value.clone()),
            };
            let v = non_blank(&v)?;
            let mut cp = ContactPoint::new(system, v);
            cp.use_ = match t.attribute("use").unwrap_or("").split_whitespace().next() {
                Some("H" | "HP" | "HV") => Some(ContactPointUse::Home),
                Some("WP" | "DIR" | "PUB") => Some(ContactPointUse::Work),
                Some("MC" | "PG") => Some(ContactPointUse::Mobile),
                Some("TMP") => Some(ContactPointUse::Temp),
                _ => None,
            };
            Some(cp)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// People
// ---------------------------------------------------------------------------------------------

/// The patient of `recordTarget/patientRole`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CdaPatient {
    /// Every identifier of `patientRole/id`, in order (INS included).
    pub ids: Vec<Ii>,
    /// The INS, when an id has an INS root (`1.2.250.1.213.1.4.8/.9/.10/.11`); a NIR is
    /// preferred to a NIA.
    pub ins: Option<(InsKind, String)>,
    /// Names ([`pn`]).
    pub names: Vec<HumanName>,
    /// Administrative gender (`M`, `F`, `U`/`UN`).
    pub gender: Option<AdministrativeGender>,
    /// Birth date (FHIR `date`).
    pub birth_date: Option<String>,
    /// Phone numbers, e-mail addresses.
    pub telecom: Vec<ContactPoint>,
    /// Addresses.
    pub address: Vec<Address>,
}

impl CdaPatient {
    /// The identifiers that are not an INS and have an extension (IPP...).
    pub fn local_ids(&self) -> impl Iterator<Item = &Ii> {
        self.ids
            .iter()
            .filter(|id| id.extension.is_some() && ins_kind_from_oid(&id.root).is_none())
    }

    /// The envelope's patient identity: the INS and the local ids (`urn:oid:` systems).
    pub fn identity(&self) -> PatientIdentity {
        PatientIdentity {
            ins: self.ins.as_ref().map(|(kind, value)| crate::types::Ins {
                kind: *kind,
                value: value.clone(),
            }),
            local_ids: self
                .local_ids()
                .map(|id| crate::types::Identifier {
                    system: id.system(),
                    value: id.value(),
                })
                .collect(),
        }
    }

    /// The FHIR [`Patient`]: the INS as FR Core types it ([`Identifier::ins`]), the local ids
    /// typed `PI`, names, gender, birth date, telecom and addresses.
    pub fn to_fhir(&self) -> Patient {
        let mut identifier: Vec<Identifier> = self
            .ins
            .iter()
            .map(|(kind, value)| Identifier::ins(*kind, value.clone()))
            .collect();
        identifier.extend(
            self.local_ids()
                .map(|id| id.to_identifier().with_type(systems::V2_0203, "PI")),
        );
        Patient {
            identifier,
            name: self.names.clone(),
            telecom: self.telecom.clone(),
            gender: self.gender,
            birth_date: self.birth_date.clone(),
            address: self.address.clone(),
            ..Patient::new()
        }
    }
}

/// A health professional (or other person) in a role: `assignedAuthor`, `assignedEntity`,
/// `associatedEntity`...
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Person {
    /// Identifiers (`root` `1.2.250.1.71.4.2.1`: IdNat_PS, i.e. `8` + RPPS or `0` + ADELI).
    pub ids: Vec<Ii>,
    /// Profession / specialty (`G15_10/SM36`...).
    pub code: Option<Cd>,
    /// Names.
    pub names: Vec<HumanName>,
    /// Phone numbers, e-mail addresses.
    pub telecom: Vec<ContactPoint>,
    /// Name of the organization the person acts for.
    pub organization: Option<String>,
    /// Identifier of that organization (IdNat_Struct...).
    pub organization_id: Option<Ii>,
}

impl Person {
    /// The national PS identifier (extension of the id whose root is IdNat_PS).
    pub fn idnat_ps(&self) -> Option<&str> {
        self.ids
            .iter()
            .find(|id| id.root == oids::IDNAT_PS)
            .and_then(|id| id.extension.as_deref())
    }

    /// The RPPS number: the IdNat_PS without its leading `8` (an ADELI-based IdNat_PS,
    /// starting with `0`, has none).
    pub fn rpps(&self) -> Option<&str> {
        self.idnat_ps().and_then(|id| id.strip_prefix('8'))
    }

    /// The FHIR [`Practitioner`]: identifiers (IdNat_PS as `urn:oid:1.2.250.1.71.4.2.1`),
    /// names and telecom. (The specialty, [`Person::code`], is the caller's to place.)
    pub fn to_practitioner(&self) -> Practitioner {
        Practitioner {
            identifier: self
                .ids
                .iter()
                .filter(|id| id.extension.is_some())
                .map(Ii::to_identifier)
                .collect(),
            name: self.names.clone(),
            telecom: self.telecom.clone(),
            ..Practitioner::new()
        }
    }

    /// A one-line label: `DR Charles MULLER`.
    pub fn label(&self) -> Option<String> {
        let n = self.names.first()?;
        if let Some(t) = &n.text {
            return Some(t.clone());
        }
        let parts: Vec<&str> = n
            .suffix
            .iter()
            .chain(&n.given)
            .map(String::as_str)
            .chain(n.family.as_deref())
            .collect();
        non_blank(&parts.join(" "))
    }
}

/// Reads a role element (`assignedAuthor`, `assignedEntity`, `associatedEntity`,
/// `intendedRecipient`...): its ids, code, telecom, the person's name (`assignedPerson`,
/// `associatedPerson`, `informationRecipient`...) and the organization (`representedOrganization`,
/// `scopingOrganization`...).
pub fn person(role: Node) -> Person {
    let person_node = role.children().find(|c| {
        [
            "assignedPerson",
            "associatedPerson",
            "informationRecipient",
            "relatedPerson",
        ]
        .iter()
        .any(|n| is(*c, n))
    });
    let org = role.children().find(|c| {
        [
            "representedOrganization",
            "scopingOrganization",
            "receivedOrganization",
            "representedCustodianOrganization",
        ]
        .iter()
        .any(|n| is(*c, n))
    });
    Person {
        ids: children(role, "id").filter_map(ii).collect(),
        code: child(role, "code").map(cd).filter(|c| c.code.is_some()),
        names: person_node
            .into_iter()
            .flat_map(|p| children(p, "name"))
            .flat_map(pn)
            .collect(),
        telecom: telecoms(role),
        organization: org.and_then(|o| child(o, "name")).and_then(text_of),
        organization_id: org.and_then(|o| children(o, "id").find_map(ii)),
    }
}

/// A participation of a person in the document: author, participant, performer,
/// legal authenticator...
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Participation {
    /// The `typeCode` (`RESP`, `REFB`, `PRF`, `INF`, `CON`...; `AUT` for authors, `LA` for
    /// the legal authenticator).
    pub type_code: Option<String>,
    /// The `functionCode` (with its original text, e.g. "PS Coordonnateur de la RCP").
    pub function: Option<Cd>,
    /// The `time` (FHIR dateTime; an IVL_TS gives its start).
    pub time: Option<String>,
    /// The person.
    pub person: Person,
    /// The participation element itself.
    pub location: String,
}

fn participation(node: Node, role: Node, default_type: &str) -> Participation {
    let function = child(node, "functionCode").map(cd);
    Participation {
        type_code: attr(node, "typeCode").or_else(|| Some(default_type.to_string())),
        function: function.filter(|f| f.code.is_some() || f.original_text.is_some()),
        time: child(node, "time").and_then(|t| ts(t).or_else(|| ivl_ts(t).and_then(|p| p.start))),
        person: person(role),
        location: location(node),
    }
}

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

/// A `section` of the structured body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section<'a, 'input> {
    /// The `section` element.
    pub node: Node<'a, 'input>,
}

impl<'a, 'input> Section<'a, 'input> {
    /// The section's `code` (LOINC).
    pub fn code(&self) -> Option<Cd> {
        child(self.node, "code").map(cd)
    }

    /// Whether the section's code is this LOINC code.
    pub fn has_loinc(&self, code: &str) -> bool {
        child(self.node, "code").is_some_and(|c| {
            c.attribute("code") == Some(code) && c.attribute("codeSystem") == Some(oids::LOINC)
        })
    }

    /// The `title`, `None` when absent or blank.
    pub fn title(&self) -> Option<String> {
        child(self.node, "title").and_then(text_of)
    }

    /// The narrative `text` as plain text ([`narrative_text`]); empty when there is none.
    pub fn text(&self) -> String {
        child(self.node, "text")
            .map(narrative_text)
            .unwrap_or_default()
    }

    /// The nested sections (`component/section`).
    pub fn sections(&self) -> impl Iterator<Item = Section<'a, 'input>> + use<'a, 'input> {
        children(self.node, "component")
            .filter_map(|c| child(c, "section"))
            .map(|node| Section { node })
    }

    /// The clinical statements of the entries (the element inside each `entry`:
    /// `observation`, `act`, `procedure`, `organizer`, `substanceAdministration`...).
    pub fn entries(&self) -> impl Iterator<Item = Node<'a, 'input>> + use<'a, 'input> {
        children(self.node, "entry").filter_map(|e| e.children().find(|c| c.is_element()))
    }

    /// Where the section is ([`location`]).
    pub fn location(&self) -> String {
        location(self.node)
    }
}

// ---------------------------------------------------------------------------------------------
// The document
// ---------------------------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn samples_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/samples/ansforge-testcontenucda/ExemplesCDA")
    }

    /// Every CDA example of the ANS TestContenuCDA corpus: (file name, text).
    fn samples() -> Vec<(String, String)> {
        let dir = samples_dir();
        let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (shared/samples must be beside the checkout)",
                    dir.display()
                )
            })
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "xml"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        out.sort();
        assert!(out.len() >= 8, "only {} CDA samples", out.len());
        out
    }

    fn sample(name: &str) -> String {
        std::fs::read_to_string(samples_dir().join(name)).unwrap()
    }

    const HEADER: &str = r#"<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#;

    fn doc(body: &str) -> String {
        format!("{HEADER}{body}</ClinicalDocument>")
    }

    #[test]
    fn every_sample_reads_its_header() {
        for (name, text) in samples() {
            let d = Document::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let id = d.id().unwrap_or_else(|| panic!("{name}: no id"));
            assert!(id.root.starts_with("1.2.250.1.213"), "{name}: {id:?}");
            let code = d.code().unwrap();
            assert_eq!(code.code_system.as_deref(), Some(oids::LOINC), "{name}");
            assert_eq!(code.system().as_deref(), Some("http://loinc.org"), "{name}");
            assert!(d.title().is_some(), "{name}: no title");
            let t = d
                .effective_time()
                .unwrap_or_else(|| panic!("{name}: no effectiveTime"));
            assert!(t.len() == 25 && t.ends_with("+01:00"), "{name}: {t}");
            assert_eq!(d.confidentiality().as_deref(), Some("N"), "{name}");
            assert_eq!(
                d.confidentiality_level(),
                Some(ConfidentialityLevel::Normal)
            );
            assert!(d.set_id().is_some(), "{name}: no setId");
            assert!(d.version_number().is_some(), "{name}: no versionNumber");
            assert_eq!(d.language().as_deref(), Some("fr-FR"), "{name}");

            let p = d.patient().unwrap_or_else(|| panic!("{name}: no patient"));
            assert_eq!(
                p.ins,
                Some((InsKind::NirTest, "279035121518989".into())),
                "{name}"
            );
            assert!(crate::record::ins_key_is_valid(&p.ins.as_ref().unwrap().1));
            let identity = p.identity();
            assert!(identity.ins.is_some());
            let fhir = p.to_fhir();
            assert_eq!(
                fhir.identifier[0].system.as_deref(),
                Some(systems::INS_NIR_TEST)
            );
            assert!(!p.names.is_empty(), "{name}: no patient name");
            assert!(p.gender.is_some() && p.birth_date.is_some(), "{name}");
            if !name.starts_with("BIO-TROD") {
                let ipp = p
                    .local_ids()
                    .next()
                    .unwrap_or_else(|| panic!("{name}: no IPP"));
                assert_eq!(ipp.system(), "urn:oid:1.2.3.4.567.8.9.10", "{name}");
                assert_eq!(identity.local_ids[0].value, "1234567890121", "{name}");
                assert_eq!(fhir.identifier.len(), 2, "{name}");
            }

            let authors = d.authors();
            assert!(!authors.is_empty(), "{name}: no author");
            for a in &authors {
                assert!(
                    a.person.idnat_ps().is_some(),
                    "{name}: author without IdNat_PS"
                );
                assert!(!a.person.names.is_empty(), "{name}: author without name");
                assert!(a.time.is_some(), "{name}: author without time");
                let pr = a.person.to_practitioner();
                assert_eq!(pr.identifier[0].system.as_deref(), Some(systems::IDNAT_PS));
            }
            assert!(
                d.legal_authenticator().is_some(),
                "{name}: no legal authenticator"
            );
        }
    }

    #[test]
    fn every_sample_has_locatable_sections_with_text() {
        for (name, text) in samples() {
            let d = Document::parse(&text).unwrap();
            let sections = d.all_sections();
            if name.starts_with("IMG_") {
                assert!(sections.is_empty(), "{name}");
                let body = d.non_xml_body().expect("IMG level 1: nonXMLBody");
                assert_eq!(body.attribute("mediaType"), Some("application/pdf"));
                continue;
            }
            assert!(!sections.is_empty(), "{name}: no section");
            for s in &sections {
                let loc = s.location();
                assert!(
                    loc.starts_with("/ClinicalDocument/component/structuredBody/component"),
                    "{loc}"
                );
                assert_eq!(
                    find_all(d.root(), &loc),
                    vec![s.node],
                    "{name}: {loc} does not find its section"
                );
                assert!(
                    s.code().is_some_and(|c| c.code.is_some()),
                    "{name}: {loc} has no code"
                );
                let has_content = !s.text().is_empty()
                    || s.sections().next().is_some()
                    || s.entries().next().is_some();
                assert!(
                    has_content,
                    "{name}: {loc} has neither text, subsections nor entries"
                );
                assert!(
                    !s.text().contains("  "),
                    "{name}: {loc}: whitespace not collapsed"
                );
            }
        }
    }

    #[test]
    fn frcp_sections_codes_and_references() {
        let text = sample("CANCER-FRCP_2022.01_Appareil.xml");
        let d = Document::parse(&text).unwrap();
        let codes: Vec<String> = d.sections().filter_map(|s| s.code()?.code).collect();
        for expected in [
            "42349-1", "72135-7", "11348-0", "21874-3", "18776-5", "35510-7", "55112-7",
        ] {
            assert!(
                codes.iter().any(|c| c == expected),
                "{expected} missing from {codes:?}"
            );
        }
        let diagnosis = d.section("72135-7").unwrap();
        assert_eq!(diagnosis.title().as_deref(), Some("TUMEUR"));
        assert!(
            diagnosis
                .text()
                .contains("Topographie | C50.2 [CIM-10] | Quadrant supéro-interne du sein"),
            "{}",
            diagnosis.text()
        );
        let site = descendants(diagnosis.node, "targetSiteCode")
            .next()
            .unwrap();
        let site = cd(site);
        assert!(site.is(oids::ICD_10, "C50.2"));
        assert_eq!(
            site.original_text.as_deref(),
            Some("Quadrant supéro-interne du sein")
        );
        let cc = site.to_codeable_concept().unwrap();
        assert_eq!(cc.coding[0].system.as_deref(), Some(systems::ICD_10));
        assert_eq!(
            location(
                *descendants(diagnosis.node, "targetSiteCode")
                    .collect::<Vec<_>>()
                    .first()
                    .unwrap()
            ),
            format!(
                "{}/entry/act/entryRelationship/observation/targetSiteCode",
                diagnosis.location()
            )
        );
        // The third top-level section, as in the module's example location.
        let third = d.sections().nth(2).unwrap();
        assert_eq!(
            location(child(third.node, "code").unwrap()),
            "/ClinicalDocument/component/structuredBody/component[3]/section/code"
        );
        // Nested subsections with an empty title.
        let functional = d.section("47420-5").unwrap();
        assert_eq!(functional.sections().count(), 3);
        // Header: participants, serviceEvents, encounter.
        let participants = d.participants();
        assert!(
            participants
                .iter()
                .any(|p| p.type_code.as_deref() == Some("RESP"))
        );
        let resp = participants
            .iter()
            .find(|p| p.type_code.as_deref() == Some("RESP"))
            .unwrap();
        assert_eq!(resp.person.rpps(), Some("01234567897"));
        assert_eq!(
            resp.function.as_ref().unwrap().original_text.as_deref(),
            Some("PS Coordonnateur de la RCP")
        );
        assert_eq!(
            resp.person.code.as_ref().unwrap().code.as_deref(),
            Some("G15_10/SM36")
        );
        assert_eq!(resp.person.label().as_deref(), Some("DR Charles MULLER"));
        assert_eq!(
            resp.person.organization.as_deref(),
            Some("Centre Hospitalier d'Angers")
        );
        let unknown = participants
            .iter()
            .find(|p| p.person.ids.is_empty())
            .unwrap();
        assert_eq!(unknown.person.names[0].family.as_deref(), Some("LILOU"));
        let events = d.service_events();
        assert_eq!(events.len(), 2);
        let rcp = cd(child(events[0], "code").unwrap());
        assert_eq!(
            rcp.original_text.as_deref(),
            Some("ONCO PAYS DE LA LOIRE / 3C CHU Angers / Sein")
        );
        assert!(cd(child(events[1], "code").unwrap()).is(oids::ICD_10, "C50.2"));
        assert_eq!(d.performers().len(), 1);
        let enc = d.encompassing_encounter().unwrap();
        let ids: Vec<Ii> = children(enc, "id").filter_map(ii).collect();
        assert_eq!(ids.len(), 5);
        assert_eq!(
            ids[2].to_identifier().system.as_deref(),
            Some("urn:oid:1.2.250.1.161.1.20.3.1")
        );
        let period = ivl_ts(child(enc, "effectiveTime").unwrap()).unwrap();
        assert_eq!(period.start.as_deref(), Some("2019-02-18T17:11:00+01:00"));
        assert!(cd(child(enc, "code").unwrap()).is(oids::ACT_CODE, "VR"));
        // Patient names: birth and used.
        let names = d.patient().unwrap().names;
        assert_eq!(names.len(), 2);
        assert_eq!(names[0].use_, Some(NameUse::Official));
        assert_eq!(names[0].given, ["DOMINIQUE"]);
        assert_eq!(names[1].use_, Some(NameUse::Usual));
        assert!(d.replaced_document().is_none());
    }

    #[test]
    fn replacements_name_their_parent() {
        let text = sample("BIO-CR-BIO_2021.01_Microbiologie_V2.xml");
        let d = Document::parse(&text).unwrap();
        let parent = d.replaced_document().unwrap();
        assert_eq!(parent.root, "1.2.250.1.213.1.1.1.55.12345.8");
        assert_eq!(
            parent.to_identifier().value.as_deref(),
            Some("urn:oid:1.2.250.1.213.1.1.1.55.12345.8")
        );
        let text = sample("IMG_CR_IMG_2024.01_CDA-R2-Niveau-1.xml");
        let parent = Document::parse(&text).unwrap().replaced_document().unwrap();
        assert_eq!(
            parent.value(),
            "urn:uuid:90e1c8ec-f951-4b26-a305-a34848818dd6"
        );
    }

    #[test]
    fn cr_bio_values_and_reference_ranges() {
        let text = sample("BIO-CR-BIO_2024.01_TSH_1.xml");
        let d = Document::parse(&text).unwrap();
        let values: Vec<Node> = descendants(d.root(), "value")
            .filter(|v| xsi_type(*v) == Some("PQ"))
            .collect();
        let first = pq(values[0]);
        assert_eq!(first.value.as_deref(), Some("1.950"));
        assert_eq!(
            first.to_quantity().unwrap().value.unwrap().as_str(),
            "1.950"
        );
        let range = descendants(d.root(), "value")
            .find(|v| xsi_type(*v) == Some("IVL_PQ"))
            .map(ivl_pq)
            .unwrap();
        assert_eq!(range.low.as_ref().unwrap().unit.as_deref(), Some("m[IU]/L"));
        let r = range.to_range().unwrap();
        assert_eq!(r.low.unwrap().value.unwrap().as_str(), "0.270");
        // A result without LOINC: code with no @code, an originalText and a local translation.
        let text = sample("BIO-CR-BIO_2024.01_CRP_non_LOINC.xml");
        let d = Document::parse(&text).unwrap();
        let local = descendants(d.root(), "code")
            .map(cd)
            .find(|c| c.code.is_none() && !c.translations.is_empty())
            .expect("a non-LOINC result code");
        let cc = local.to_codeable_concept().unwrap();
        assert!(
            cc.coding[0]
                .system
                .as_deref()
                .unwrap()
                .starts_with("urn:oid:")
        );
    }

    #[test]
    fn medication_sample_reads() {
        let text = sample("eP-MED-DM_2022.01_PosoStruct.xml");
        let d = Document::parse(&text).unwrap();
        let administrations: Vec<Node> = descendants(d.root(), "substanceAdministration").collect();
        assert!(!administrations.is_empty());
        let periods = administrations
            .iter()
            .filter_map(|a| children(*a, "effectiveTime").find(|t| xsi_type(*t) == Some("IVL_TS")))
            .filter_map(ivl_ts)
            .count();
        assert!(periods > 0);
    }

    #[test]
    fn parse_errors_say_where_and_why() {
        let e = Document::parse(
            "<ClinicalDocument xmlns=\"urn:hl7-org:v3\">\n  <id>\n</ClinicalDocument>",
        )
        .unwrap_err();
        assert_eq!(e.location, "line 3, column 1", "{e}");
        assert!(e.reason.starts_with("not well-formed XML"), "{e}");
        let e = Document::parse("not xml").unwrap_err();
        assert!(e.location.starts_with("line 1"), "{e}");
        let e = Document::parse(r#"<ClinicalDocument xmlns="urn:hl7-org:v2"/>"#).unwrap_err();
        assert_eq!(e.location, "/{urn:hl7-org:v2}ClinicalDocument");
        assert!(e.reason.contains("namespace urn:hl7-org:v2"), "{e}");
        let e = Document::parse("<ClinicalDocument/>").unwrap_err();
        assert!(e.reason.contains("no namespace"), "{e}");
        let e = Document::parse(r#"<hl7:Patient xmlns:hl7="urn:hl7-org:v3"/>"#).unwrap_err();
        assert_eq!(e.location, "/Patient");
        // No DTD, hence no entity expansion.
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><ClinicalDocument xmlns="urn:hl7-org:v3">&a;</ClinicalDocument>"#;
        assert!(Document::parse(bomb).unwrap_err().reason.contains("DTD"));
        // BOM and prefixed root.
        let ok = "\u{feff}<v3:ClinicalDocument xmlns:v3=\"urn:hl7-org:v3\"><v3:title>T</v3:title></v3:ClinicalDocument>";
        assert_eq!(Document::parse(ok).unwrap().title().as_deref(), Some("T"));
        assert_eq!(utf8(b"\xff").unwrap_err().location, "byte 0");
    }

    #[test]
    fn declared_latin1_text_is_read_as_given() {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{}",
            doc("<title>Réunion</title>")
        );
        assert_eq!(
            Document::parse(&xml).map(|d| d.title()),
            Ok(Some("Réunion".into())).map_err(|e: CdaError| e)
        );
    }

    #[test]
    fn locations_of_attributes_texts_and_foreign_elements() {
        let xml = doc(
            r#"<a/><a><b>x</b><sdtc:c xmlns:sdtc="urn:hl7-org:sdtc"/><o:d xmlns:o="urn:other"/></a>"#,
        );
        let d = Document::parse(&xml).unwrap();
        let b = find_path(d.root(), "a[2]/b").unwrap();
        assert_eq!(
            location(b.first_child().unwrap()),
            "/ClinicalDocument/a[2]/b/text()"
        );
        assert_eq!(
            CdaError::at_attribute(b, "code", "bad").location,
            "/ClinicalDocument/a[2]/b/@code"
        );
        let c = find_path(d.root(), "a/sdtc:c").unwrap();
        assert_eq!(location(c), "/ClinicalDocument/a[2]/sdtc:c");
        let o = d
            .root()
            .descendants()
            .find(|n| n.tag_name().name() == "d")
            .unwrap();
        assert_eq!(location(o), "/ClinicalDocument/a[2]/{urn:other}d");
        assert!(find_path(d.root(), "a[0]").is_none());
        assert!(find_path(d.root(), "a[3]").is_none());
        assert!(find_path(d.root(), "a[x]").is_none());
        assert_eq!(find_all(d.root(), "a").len(), 2);
        assert_eq!(find_path(d.root(), "/ClinicalDocument/a[2]/b"), Some(b));
    }

    #[test]
    fn datatypes_edge_cases() {
        let xml = doc(r#"
            <id nullFlavor="UNK"/><id root=""/><id root="1.2.3"/>
            <code nullFlavor="OTH"><originalText>texte libre</originalText></code>
            <value xsi:type="PQ" value="abc" unit="mg"/>
            <value xsi:type="IVL_PQ" value="5"/>
            <effectiveTime><low value="2019"/><high value="bad"/></effectiveTime>
            <effectiveTime nullFlavor="UNK"/>
            <name>Jean Martin</name>
            <name nullFlavor="MSK"/>
            <addr nullFlavor="NAV"/><addr><streetAddressLine>1 rue X</streetAddressLine><city>Paris</city></addr>
            <telecom nullFlavor="UNK"/><telecom value="tel: "/><telecom value="https://x.fr" use="WP"/>
        "#);
        let d = Document::parse(&xml).unwrap();
        let ids: Vec<Option<Ii>> = children(d.root(), "id").map(ii).collect();
        assert_eq!(ids[0], None);
        assert_eq!(ids[1], None);
        assert_eq!(ids[2].as_ref().unwrap().key(), "1.2.3");
        let code = cd(child(d.root(), "code").unwrap());
        assert_eq!(code.null_flavor.as_deref(), Some("OTH"));
        assert_eq!(code.to_coding(), None);
        assert_eq!(
            code.to_codeable_concept().unwrap().text.as_deref(),
            Some("texte libre")
        );
        assert_eq!(code.label(), Some("texte libre"));
        assert_eq!(Cd::default().to_codeable_concept(), None);
        let values: Vec<Node> = children(d.root(), "value").collect();
        assert_eq!(pq(values[0]).to_quantity(), None);
        assert_eq!(ivl_pq(values[1]).value.unwrap().value.as_deref(), Some("5"));
        assert_eq!(ivl_pq(values[1]).to_range(), None);
        let times: Vec<Node> = children(d.root(), "effectiveTime").collect();
        assert_eq!(
            ivl_ts(times[0]),
            Some(Period {
                start: Some("2019".into()),
                end: None
            })
        );
        assert_eq!(ivl_ts(times[1]), None);
        let names: Vec<Vec<HumanName>> = children(d.root(), "name").map(pn).collect();
        assert_eq!(names[0][0].text.as_deref(), Some("Jean Martin"));
        assert!(names[1].is_empty());
        let addrs: Vec<Address> = children(d.root(), "addr").filter_map(addr).collect();
        assert_eq!(addrs.len(), 1);
        assert_eq!(addrs[0].line, ["1 rue X"]);
        let t = telecoms(d.root());
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].system, t[0].use_),
            (Some(ContactPointSystem::Url), Some(ContactPointUse::Work))
        );
        assert_eq!(system_for_oid("2.16.840.1.113883.6.96"), systems::SNOMED_CT);
        assert_eq!(system_for_oid("2.16.840.1.113883.6.8"), systems::UCUM);
        assert_eq!(system_for_oid("urn:x"), "urn:x");
        assert_eq!(
            ts_value("20190218171100.5+0200").as_deref(),
            Some("2019-02-18T17:11:00.5+02:00")
        );
        assert_eq!(ts_value(""), None);
    }

    #[test]
    fn patient_prefers_a_nir_and_skips_null_ids() {
        let xml = doc(r#"<recordTarget><patientRole>
            <id nullFlavor="NI"/><id root="1.2.250.1.213.1.4.9" extension="100000000000012"/>
            <id root="1.2.250.1.213.1.4.8" extension="279035121518989"/><id root="1.2.9"/>
            <patient><administrativeGenderCode code="UN"/></patient></patientRole></recordTarget>"#);
        let d = Document::parse(&xml).unwrap();
        let p = d.patient().unwrap();
        assert_eq!(p.ins, Some((InsKind::Nir, "279035121518989".into())));
        assert_eq!(p.ids.len(), 3);
        assert_eq!(
            p.local_ids().count(),
            0,
            "INS and ids without extension are not local ids"
        );
        assert_eq!(p.gender, Some(AdministrativeGender::Other));
        assert!(Document::parse(&doc("")).unwrap().patient().is_none());
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let depth = 5_000;
        let body = format!(
            "<text>{}deep{}</text>",
            "<content>".repeat(depth),
            "</content>".repeat(depth)
        );
        let xml = doc(&body);
        let d = Document::parse(&xml).unwrap();
        let text = child(d.root(), "text").unwrap();
        assert_eq!(narrative_text(text), "");
        let deep = d.root().descendants().next_back().unwrap();
        assert!(location(deep).ends_with("content/text()"));
    }
}
