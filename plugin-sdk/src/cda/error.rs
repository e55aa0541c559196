//! Errors: `CdaError` (where and why a document cannot be used) and the UTF-8 check of a payload.

use std::fmt;

use super::{Node, location};
use crate::types::AdaptError;

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
