//! Datatypes, quantities and times: PQ, IVL_PQ, TS and IVL_TS.

use super::{Node, attr, child};
use crate::fhir::{Decimal, Period, Quantity, Range};
use crate::hl7::datetime::Dtm;

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
