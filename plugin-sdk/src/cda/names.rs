//! Datatypes, names and contacts: PN (person names), AD (addresses) and telecoms.

use super::walk::non_blank;
use super::{HL7_V3, Node, attr, child, children, null_flavor, text_of};
use crate::fhir::{
    Address, AddressUse, ContactPoint, ContactPointSystem, ContactPointUse, HumanName, NameUse,
};

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
