//! CDA result values (`observation/value` by `xsi:type`) and reference ranges as FHIR.

use passerelle_plugin_sdk::cda::{
    self, CdaError, Node, attr, cd, child, ivl_ts, null_flavor, text_of, ts, xsi_type,
};
use passerelle_plugin_sdk::fhir::{
    Decimal, ObservationReferenceRange, ObservationValue, Quantity, QuantityComparator, Range,
    Ratio,
};

/// A PQ-like element (`value`, `low`, `high`, `numerator`...) as a Quantity with its UCUM unit;
/// `None` when it has a `nullFlavor` and no value. A value that is not a decimal is an error.
fn quantity(node: Node) -> Result<Option<Quantity>, CdaError> {
    let Some(text) = attr(node, "value") else {
        if null_flavor(node).is_some() {
            return Ok(None);
        }
        return Err(CdaError::at_attribute(node, "value", "missing"));
    };
    let value = Decimal::parse(&text).ok_or_else(|| {
        CdaError::at_attribute(node, "value", format!("{text:?} is not a decimal number"))
    })?;
    // CDA's default unit is `1` (dimensionless), itself a UCUM code.
    let unit = attr(node, "unit").unwrap_or_else(|| "1".to_string());
    Ok(Some(Quantity::ucum(value, unit)))
}

/// Whether an IVL bound includes its limit (`inclusive` defaults to true).
fn inclusive(node: Node) -> bool {
    node.attribute("inclusive").map(str::trim) != Some("false")
}

/// An IVL_PQ result: both bounds → Range; one bound → Quantity with a comparator (`<=` for an
/// inclusive high bound, `<` otherwise; `>=` / `>` for a low bound); `value`/`center` →
/// Quantity.
fn interval(node: Node) -> Result<Option<ObservationValue>, CdaError> {
    let low = child(node, "low").map(quantity).transpose()?.flatten();
    let high = child(node, "high").map(quantity).transpose()?.flatten();
    let value = match (low, high) {
        (Some(l), Some(h)) => Some(ObservationValue::Range(Range::new(Some(l), Some(h)))),
        (Some(l), None) => {
            let inc = child(node, "low").is_some_and(inclusive);
            let c = if inc {
                QuantityComparator::GreaterOrEqual
            } else {
                QuantityComparator::Greater
            };
            Some(ObservationValue::Quantity(l.with_comparator(c)))
        }
        (None, Some(h)) => {
            let inc = child(node, "high").is_some_and(inclusive);
            let c = if inc {
                QuantityComparator::LessOrEqual
            } else {
                QuantityComparator::Less
            };
            Some(ObservationValue::Quantity(h.with_comparator(c)))
        }
        (None, None) => match child(node, "center") {
            Some(center) => quantity(center)?.map(ObservationValue::Quantity),
            None if node.attribute("value").is_some() => {
                quantity(node)?.map(ObservationValue::Quantity)
            }
            None if null_flavor(node).is_some() => None,
            None => return Err(CdaError::at(node, "IVL_PQ without low, high or value")),
        },
    };
    Ok(value)
}

/// An observation's `value` by its `xsi:type`: PQ → Quantity (UCUM), IVL_PQ → Range or
/// Quantity with comparator, CD/CE/CV/CO/CS → CodeableConcept (codes, translations, original
/// text), ST/ED → string, INT → integer, REAL → Quantity without unit, BL → boolean,
/// TS → dateTime, IVL_TS → Period, RTO → Ratio. `None` for a `nullFlavor` value. Another type
/// keeps its text; without text it is an error (a result would be lost).
pub fn value(node: Node) -> Result<Option<ObservationValue>, CdaError> {
    let ty = xsi_type(node).map(str::trim).unwrap_or("");
    let value = match ty {
        "PQ" => quantity(node)?.map(ObservationValue::Quantity),
        "IVL_PQ" => interval(node)?,
        "CD" | "CE" | "CV" | "CO" | "CS" => cd(node)
            .to_codeable_concept()
            .map(ObservationValue::CodeableConcept),
        "INT" => match attr(node, "value") {
            Some(v) => Some(ObservationValue::Integer(v.parse().map_err(|_| {
                CdaError::at_attribute(node, "value", format!("{v:?} is not an integer"))
            })?)),
            None => None,
        },
        "REAL" => match attr(node, "value") {
            Some(v) => Some(ObservationValue::Quantity(Quantity::new(
                Decimal::parse(&v).ok_or_else(|| {
                    CdaError::at_attribute(node, "value", format!("{v:?} is not a decimal number"))
                })?,
            ))),
            None => None,
        },
        "BL" => match attr(node, "value").as_deref() {
            Some("true") => Some(ObservationValue::Boolean(true)),
            Some("false") => Some(ObservationValue::Boolean(false)),
            Some(v) => {
                return Err(CdaError::at_attribute(
                    node,
                    "value",
                    format!("{v:?} is not true or false"),
                ));
            }
            None => None,
        },
        "TS" => ts(node).map(ObservationValue::DateTime),
        "IVL_TS" => ivl_ts(node).map(ObservationValue::Period),
        "RTO" | "RTO_PQ_PQ" | "RTO_INT_INT" | "RTO_QTY_QTY" => {
            let part = |name: &str| -> Result<Option<Quantity>, CdaError> {
                match child(node, name) {
                    Some(n) => quantity(n),
                    None => Err(CdaError::missing(node, name)),
                }
            };
            match (part("numerator")?, part("denominator")?) {
                (Some(n), Some(d)) => Some(ObservationValue::Ratio(Ratio::new(n, d))),
                _ => None,
            }
        }
        _ => {
            let text = text_of(node);
            if text.is_none() && null_flavor(node).is_none() && !ty.is_empty() && ty != "ST" {
                return Err(CdaError::at(
                    node,
                    format!("value of xsi:type {ty} has no text and is not supported"),
                ));
            }
            text.map(ObservationValue::String)
        }
    };
    Ok(value)
}

/// `referenceRange/observationRange`: its IVL_PQ bounds (no comparator: FHIR reference range
/// bounds are inclusive) and its text.
pub fn reference_range(range: Node) -> Result<Option<ObservationReferenceRange>, CdaError> {
    let Some(obs) = child(range, "observationRange") else {
        return Ok(None);
    };
    let (mut low, mut high) = (None, None);
    if let Some(v) = child(obs, "value") {
        low = child(v, "low").map(quantity).transpose()?.flatten();
        high = child(v, "high").map(quantity).transpose()?.flatten();
    }
    let text = child(obs, "text").and_then(cda::text_of);
    if low.is_none() && high.is_none() && text.is_none() {
        return Ok(None);
    }
    Ok(Some(ObservationReferenceRange {
        low,
        high,
        text,
        ..Default::default()
    }))
}
