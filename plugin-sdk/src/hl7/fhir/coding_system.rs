//! HL7 v2 coding system names (CWE-3, table 0396) and code system OIDs → FHIR code system URIs.

use std::borrow::Cow;

use super::text::{is_oid, is_uri, urn, urn_oid};
use crate::fhir::systems;

/// Prefix of the systems made up for named local coding systems (`99USI`, `L`, `XYZ`...).
pub const LOCAL_CODE_SYSTEM_PREFIX: &str = "urn:passerelle:cs:";

/// The FHIR system of an HL7 v2 coding system name (CWE-3 / table 0396) or of a code system
/// OID, `None` when empty.
///
/// Known names and OIDs map to their canonical URLs (LN → LOINC, SCT → SNOMED CT, UCUM, I10
/// → ICD-10, `HL7nnnn` → `http://terminology.hl7.org/CodeSystem/v2-nnnn`); another OID
/// becomes `urn:oid:`; a URI is kept; anything else becomes
/// [`LOCAL_CODE_SYSTEM_PREFIX`]`<name>` (percent-encoded). An adapter with systems of its own
/// (medications, say) looks those up first.
///
/// ```
/// use passerelle_plugin_sdk::fhir::systems;
/// use passerelle_plugin_sdk::hl7::fhir::system_uri;
///
/// assert_eq!(system_uri("LN").as_deref(), Some(systems::LOINC));
/// assert_eq!(system_uri("HL70078").as_deref(), Some("http://terminology.hl7.org/CodeSystem/v2-0078"));
/// assert_eq!(system_uri("1.2.3.4").as_deref(), Some("urn:oid:1.2.3.4"));
/// assert_eq!(system_uri("99USI").as_deref(), Some("urn:passerelle:cs:99USI"));
/// assert_eq!(system_uri(" "), None);
/// ```
pub fn system_uri(name: &str) -> Option<Cow<'_, str>> {
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let is = |s: &str| name.eq_ignore_ascii_case(s);
    let known = if is("LN") || is("LOINC") || name == "2.16.840.1.113883.6.1" {
        Some(systems::LOINC)
    } else if is("SCT")
        || is("SNOMED")
        || is("SNOMEDCT")
        || is("SNOMED CT")
        || is("SNOMED-CT")
        || name == "2.16.840.1.113883.6.96"
    {
        Some(systems::SNOMED_CT)
    } else if is("UCUM") || name == "2.16.840.1.113883.6.8" {
        Some(systems::UCUM)
    } else if is("I10") || is("ICD10") || is("ICD-10") || name == "2.16.840.1.113883.6.3" {
        Some(systems::ICD_10)
    } else {
        None
    };
    if let Some(k) = known {
        return Some(Cow::Borrowed(k));
    }
    // `get`: the name is sender text, its 4th byte may be inside a multi-byte character.
    if name.len() >= 7
        && let (Some(prefix), Some(rest)) = (name.get(..3), name.get(3..))
        && prefix.eq_ignore_ascii_case("HL7")
    {
        let digits = rest.trim_start_matches('-');
        if digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Cow::Owned(format!(
                "http://terminology.hl7.org/CodeSystem/v2-{digits}"
            )));
        }
    }
    if is_oid(name) {
        return Some(Cow::Owned(urn_oid(name)));
    }
    if (name.starts_with("http://") || name.starts_with("https://") || name.starts_with("urn:"))
        && is_uri(name)
    {
        return Some(Cow::Borrowed(name));
    }
    Some(Cow::Owned(urn(LOCAL_CODE_SYSTEM_PREFIX, name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multibyte_character_across_the_hl7_prefix_is_a_local_system() {
        // Found by the hl7_parse fuzz target: byte 3 inside 'ÿ' used to panic.
        for name in ["MSÿÿ1234", "HLÿ0078", "éé0078"] {
            assert!(
                system_uri(name).is_some_and(|s| s.starts_with("urn:")),
                "{name}"
            );
        }
    }

    #[test]
    fn systems_by_name() {
        assert_eq!(system_uri("LN").as_deref(), Some(systems::LOINC));
        assert_eq!(system_uri("sct").as_deref(), Some(systems::SNOMED_CT));
        assert_eq!(
            system_uri("HL70078").as_deref(),
            Some("http://terminology.hl7.org/CodeSystem/v2-0078")
        );
        assert_eq!(
            system_uri("2.16.840.1.113883.6.1").as_deref(),
            Some(systems::LOINC)
        );
        assert_eq!(system_uri("1.2.3.4").as_deref(), Some("urn:oid:1.2.3.4"));
        assert_eq!(
            system_uri("99USI").as_deref(),
            Some("urn:passerelle:cs:99USI")
        );
        assert_eq!(
            system_uri("POST 12H CFST:MCNC").as_deref(),
            Some("urn:passerelle:cs:POST%2012H%20CFST%3AMCNC")
        );
        assert_eq!(system_uri(" "), None);
    }

    #[test]
    fn names_and_oids_of_every_adapter_are_known() {
        for name in [
            "SNOMED CT",
            "SNOMED-CT",
            "snomedct",
            "2.16.840.1.113883.6.96",
        ] {
            assert_eq!(
                system_uri(name).as_deref(),
                Some(systems::SNOMED_CT),
                "{name}"
            );
        }
        for name in ["I10", "ICD-10", "2.16.840.1.113883.6.3"] {
            assert_eq!(system_uri(name).as_deref(), Some(systems::ICD_10), "{name}");
        }
        assert_eq!(
            system_uri("2.16.840.1.113883.6.8").as_deref(),
            Some(systems::UCUM)
        );
        assert_eq!(
            system_uri("http://example.org/cs").as_deref(),
            Some("http://example.org/cs")
        );
    }
}
