//! The FHIR `decimal`, kept as its source text.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// The name under which `serde_json` (feature `raw_value`, enabled workspace-wide) hands a
/// value's raw text to a deserializer, and takes a raw text to write verbatim from a
/// serializer. Other deserializers ignore it and we fall back to the parsed number; a test
/// fails if `serde_json` ever stops honouring it.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// A FHIR `decimal` that keeps the precision of its source text: `"5.10"` is written `5.10`,
/// not `5.1` (FHIR: "the precision of the decimal value has significance").
///
/// The text is normalised once, at construction, to a valid JSON number, and serialized the
/// way `serde_json`'s `RawValue` is: written verbatim, without any float conversion. Reading a
/// decimal back with `serde_json` keeps the text too (inside buffered serde contexts such as
/// `#[serde(flatten)]` it degrades to the shortest text of the parsed `f64`).
///
/// Equality is textual: `5.10` and `5.1` differ, as their precisions do.
///
/// ```
/// use passerelle_plugin_sdk::fhir::Decimal;
/// let d: Decimal = "5.10".parse().unwrap();
/// assert_eq!(serde_json::to_string(&d).unwrap(), "5.10");
/// // HL7 v2 NM forms are normalised to JSON numbers.
/// assert_eq!(Decimal::parse("+.5").unwrap().as_str(), "0.5");
/// assert_eq!(Decimal::parse("007.").unwrap().as_str(), "7");
/// assert!(Decimal::parse("5,1").is_none());
/// ```
#[derive(Clone, Debug)]
pub struct Decimal(Box<str>);

/// The error of [`Decimal::from_str`]: the text is not a decimal number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecimalError(pub String);

impl fmt::Display for DecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a decimal number: {:?}", self.0)
    }
}

impl std::error::Error for DecimalError {}

impl Decimal {
    /// Parses a decimal number, keeping its digits (trailing zeros included).
    ///
    /// Accepts JSON numbers and the looser forms found in HL7 v2 / HPRIM `NM` fields:
    /// surrounding spaces, a leading `+`, leading zeros, a missing integer part (`.5`) or an
    /// empty fraction (`5.`). An exponent (`1.2e3`) is kept. Returns `None` for anything
    /// else (empty text, `5,1`, `<5`, `NaN`...).
    pub fn parse(text: &str) -> Option<Decimal> {
        normalize(text).map(Self::from_json_number)
    }

    /// A decimal from a float, written with the shortest text that reads back as the same
    /// `f64` (`0.1` → `0.1`); `None` for NaN and infinities.
    pub fn from_f64(value: f64) -> Option<Decimal> {
        let number = serde_json::Number::from_f64(value)?;
        Some(Self::from_json_number(number.to_string()))
    }

    /// The decimal as written in JSON.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value as a float (precision beyond `f64` is lost).
    pub fn to_f64(&self) -> f64 {
        self.as_str().parse().unwrap_or(0.0)
    }

    /// `text` must be a JSON number: what `normalize` returns, or a number's own text.
    fn from_json_number(text: String) -> Decimal {
        Decimal(text.into_boxed_str())
    }
}

/// Normalises a decimal text to a JSON number (`-?int(.frac)?(e[+-]?digits)?`).
fn normalize(text: &str) -> Option<String> {
    let text = crate::hl7::fhir::text::trim(text);
    if is_plain_json_number(text.as_bytes()) {
        return Some(text.to_owned());
    }
    normalize_general(text)
}

/// [`normalize`] of a trimmed text, any form.
fn normalize_general(text: &str) -> Option<String> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, frac),
        None => (mantissa, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let mut out = String::with_capacity(text.len() + 2);
    if negative {
        out.push('-');
    }
    out.push_str(if int.is_empty() { "0" } else { int });
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    if let Some(exponent) = exponent {
        let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        if digits.is_empty() || !all_digits(digits) {
            return None;
        }
        out.push('e');
        out.push_str(exponent);
    }
    Some(out)
}

/// True when `b` is already what [`normalize`] makes of it, as most lab values are (`13.4`,
/// `220`, `-0.50`): `-`?, digits without a leading zero (or just `0`), and `.` then digits
/// at most once. One pass over the bytes, where the general path searches the text several
/// times (≈ 480 guest instructions per value).
fn is_plain_json_number(b: &[u8]) -> bool {
    let b = b.strip_prefix(b"-").unwrap_or(b);
    let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let (int, rest) = b.split_at(int_len);
    let int_ok = int == b"0" || int.first().is_some_and(|&c| c != b'0');
    int_ok
        && match rest.split_first() {
            None => true,
            Some((b'.', frac)) => !frac.is_empty() && frac.iter().all(u8::is_ascii_digit),
            Some(_) => false,
        }
}

impl FromStr for Decimal {
    type Err = DecimalError;

    /// Same as [`Decimal::parse`], with an error.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decimal::parse(s).ok_or_else(|| DecimalError(s.to_string()))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Decimal {}

impl Default for Decimal {
    /// Zero.
    fn default() -> Self {
        Decimal::from(0i64)
    }
}

macro_rules! decimal_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Decimal {
            /// An integral decimal.
            fn from(value: $t) -> Self {
                // An integer's decimal text is always a valid JSON number.
                Decimal::from_json_number(value.to_string())
            }
        }
    )*};
}

decimal_from_int!(i32, i64, u32, u64);

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // What `RawValue` itself does, without making one: `RawValue::from_string` would
        // parse the text again (≈ 280 guest instructions per decimal).
        let mut s = serializer.serialize_struct(RAW_VALUE_TOKEN, 1)?;
        s.serialize_field(RAW_VALUE_TOKEN, &*self.0)?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(RAW_VALUE_TOKEN, DecimalVisitor)
    }
}

struct DecimalVisitor;

impl<'de> Visitor<'de> for DecimalVisitor {
    type Value = Decimal;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON number (FHIR decimal)")
    }

    // serde_json hands the raw text as a one-entry map.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Decimal, A::Error> {
        if map.next_key::<IgnoredAny>()?.is_none() {
            return Err(de::Error::invalid_type(de::Unexpected::Map, &self));
        }
        let raw: String = map.next_value()?;
        // A raw JSON value: a number starts with '-' or a digit (strings, objects... don't).
        match raw.as_bytes().first() {
            Some(b'-' | b'0'..=b'9') => Decimal::parse(&raw)
                .ok_or_else(|| de::Error::invalid_value(de::Unexpected::Str(&raw), &self)),
            _ => Err(de::Error::invalid_value(de::Unexpected::Other(&raw), &self)),
        }
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Decimal, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
        Decimal::from_f64(v)
            .ok_or_else(|| de::Error::invalid_value(de::Unexpected::Float(v), &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_hl7_numbers() {
        let cases = [
            ("5.10", "5.10"),
            (" 5.10 ", "5.10"),
            ("+5", "5"),
            ("-0.50", "-0.50"),
            ("-.5", "-0.5"),
            ("00012.300", "12.300"),
            ("0", "0"),
            ("000", "0"),
            ("5.", "5"),
            ("1.5E-3", "1.5e-3"),
            ("2e+10", "2e+10"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                Decimal::parse(input).map(|d| d.to_string()).as_deref(),
                Some(expected),
                "{input}"
            );
        }
        for bad in [
            "", " ", "-", ".", "+.", "5,1", "<5", "1e", "1e+", "NaN", "0x10", "1 2", "--1", "١",
        ] {
            assert!(Decimal::parse(bad).is_none(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_plain_path_agrees_with_the_general_one() {
        let chars = ['0', '1', '9', '.', '-', '+', 'e', ' ', 'x'];
        // Every text of up to 5 of these characters.
        let mut texts = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = texts
                .iter()
                .filter(|t| t.len() == texts.last().map_or(0, String::len))
                .flat_map(|t| chars.iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(longer);
        }
        let mut plain = 0;
        for text in &texts {
            if is_plain_json_number(text.as_bytes()) {
                plain += 1;
                // The general path gives the text unchanged.
                assert_eq!(
                    normalize_general(text).as_deref(),
                    Some(text.as_str()),
                    "{text:?}"
                );
                assert!(
                    serde_json::from_str::<serde_json::Number>(text).is_ok(),
                    "{text:?}"
                );
            }
        }
        assert!(plain > 500, "{plain}");
    }

    #[test]
    fn keeps_precision_through_serde_json() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Q {
            value: Decimal,
        }
        let json = r#"{"value":5.10}"#;
        let q: Q = serde_json::from_str(json).unwrap();
        assert_eq!(q.value.as_str(), "5.10");
        assert_eq!(serde_json::to_string(&q).unwrap(), json);
        // Through a serde_json::Value (no arbitrary_precision: the f64 text).
        let q: Q = serde_json::from_value(serde_json::json!({"value": 0.25})).unwrap();
        assert_eq!(q.value.as_str(), "0.25");
        // Integers and big values.
        let q: Q = serde_json::from_str(r#"{"value": 12345678901234567890.000}"#).unwrap();
        assert_eq!(q.value.as_str(), "12345678901234567890.000");
        for bad in [
            r#"{"value":"5"}"#,
            r#"{"value":null}"#,
            r#"{"value":{}}"#,
            r#"{"value":[1]}"#,
        ] {
            assert!(serde_json::from_str::<Q>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn from_numbers() {
        assert_eq!(Decimal::from(-3i32).as_str(), "-3");
        assert_eq!(Decimal::from_f64(0.1).unwrap().as_str(), "0.1");
        assert!(Decimal::from_f64(f64::NAN).is_none());
        assert_eq!(Decimal::default().as_str(), "0");
        assert_eq!(Decimal::parse("2.50").unwrap().to_f64(), 2.5);
        assert_ne!(Decimal::parse("2.50"), Decimal::parse("2.5"));
    }
}
