//! Walking the tree: namespace-aware element lookup by HL7 local name, paths, XPath-like
//! locations, and attribute helpers.

use super::{HL7_V3, Node, SDTC, XSI};

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

pub(super) fn non_blank(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}
