//! The Bundle a plugin returns: checked for shape, and kept as the plugin wrote it.
//!
//! One parse does both jobs: reading the head (`resourceType`, `type`, each entry's
//! `resourceType`) with `serde_json::from_str` walks the whole text and rejects anything that
//! is not exactly one JSON value, so the text needs no second, validating parse to become a
//! `RawValue` (that second parse was ≈ 45 % of the host's own work per message).

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleHead<'a> {
    #[serde(borrow)]
    resource_type: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    bundle_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    entry: Vec<EntryHead<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryHead<'a> {
    #[allow(dead_code)]
    full_url: Option<IgnoredAny>,
    #[serde(borrow)]
    resource: Option<ResourceHead<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceHead<'a> {
    #[serde(borrow)]
    resource_type: Cow<'a, str>,
}

/// Checks the Bundle's shape and returns it as a `RawValue` on one line.
pub(super) fn check_bundle(json: String) -> Result<Box<RawValue>, String> {
    let head: BundleHead =
        serde_json::from_str(&json).map_err(|e| format!("bundle is not valid JSON: {e}"))?;
    if head.resource_type != "Bundle" {
        return Err(format!(
            "bundle has resourceType {:?}, expected \"Bundle\"",
            head.resource_type
        ));
    }
    match head.bundle_type.as_deref() {
        Some("collection" | "transaction" | "document" | "batch" | "message") => {}
        Some(t) => {
            return Err(format!(
                "bundle type {t:?} is not one of collection, transaction, document, batch, message"
            ));
        }
        None => return Err("bundle has no type".into()),
    }
    for (i, entry) in head.entry.iter().enumerate() {
        match &entry.resource {
            Some(r)
                if !r.resource_type.is_empty()
                    && r.resource_type.bytes().all(|b| b.is_ascii_alphabetic()) => {}
            Some(r) => {
                return Err(format!(
                    "bundle entry {i} has an invalid resourceType {:?}",
                    r.resource_type
                ));
            }
            None => return Err(format!("bundle entry {i} has no resource")),
        }
    }
    let text = one_line(&json);
    // `to_raw_value` of a value that serialises as serde_json's raw-value token copies the text
    // verbatim: no second parse. The text was validated just above.
    serde_json::value::to_raw_value(&Verbatim(&text))
        .map_err(|e| format!("bundle could not be kept: {e}"))
}

/// Serialises as serde_json's `RawValue` does (the token below is the one `RawValue`'s own
/// `Serialize` uses): the text is written as it is. Only for text already validated as JSON.
struct Verbatim<'a>(&'a str);

impl Serialize for Verbatim<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        const TOKEN: &str = "$serde_json::private::RawValue";
        let mut s = serializer.serialize_struct(TOKEN, 1)?;
        s.serialize_field(TOKEN, self.0)?;
        s.end()
    }
}

/// Valid JSON `json` without whitespace outside its strings when it spans several lines (a
/// plugin that pretty-prints): records are stored and printed as one JSON line each. Tabs,
/// CR and LF cannot occur raw inside a JSON string, so when there are none the text is kept
/// as it is, only trimmed.
fn one_line(json: &str) -> Cow<'_, str> {
    let is_ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
    if memchr::memchr3(b'\t', b'\n', b'\r', json.as_bytes()).is_none() {
        return Cow::Borrowed(json.trim_matches(is_ws));
    }
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if is_ws(c) {
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_shape_is_checked() {
        assert!(check_bundle(r#"{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient"}}]}"#.into()).is_ok());
        assert!(
            check_bundle(r#"{"resourceType":"Patient"}"#.into())
                .unwrap_err()
                .contains("expected \"Bundle\"")
        );
        assert!(
            check_bundle(r#"{"resourceType":"Bundle"}"#.into())
                .unwrap_err()
                .contains("no type")
        );
        assert!(
            check_bundle(r#"{"resourceType":"Bundle","type":"collection","entry":[{}]}"#.into())
                .unwrap_err()
                .contains("entry 0")
        );
        assert!(
            check_bundle(r#"{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Pa tient"}}]}"#.into())
                .unwrap_err()
                .contains("invalid resourceType")
        );
    }

    #[test]
    fn text_that_is_not_exactly_one_json_value_is_refused() {
        // The single parse is the only validation: each of these must fail it.
        let head = r#"{"resourceType":"Bundle","type":"collection"}"#;
        for bad in [
            "{not json".to_string(),
            format!("{head} {head}"),
            format!("{head}]"),
            format!("{head}x"),
            r#"{"resourceType":"Bundle","type":"collection","x":"unterminated}"#.to_string(),
            r#"{"resourceType":"Bundle","type":"collection","x":"bad \q escape"}"#.to_string(),
            "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"x\":\"raw\nnewline\"}"
                .to_string(),
            r#"{"resourceType":"Bundle","type":"collection","x":[1,]}"#.to_string(),
            r#"{"resourceType":"Bundle","type":"collection","x":01}"#.to_string(),
        ] {
            let err = check_bundle(bad.clone()).expect_err(&bad);
            assert!(err.contains("not valid JSON"), "{bad}: {err}");
        }
    }

    #[test]
    fn kept_bundle_is_the_plugins_text_on_one_line() {
        let compact = r#"{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Observation","valueQuantity":{"value":1.50,"unit":"g/dL"},"note":[{"text":"a \"quoted\"\tword, a \\ and\nbreak"}]}}]}"#;
        // Compact text is kept byte for byte (1.50 stays 1.50: a FHIR decimal's precision).
        assert_eq!(check_bundle(compact.into()).unwrap().get(), compact);
        assert_eq!(
            check_bundle(format!("  {compact}\n")).unwrap().get(),
            compact
        );
        // Pretty-printed text becomes one line with the same content, strings untouched.
        let value: serde_json::Value = serde_json::from_str(compact).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        assert!(pretty.contains('\n'));
        let kept = check_bundle(pretty).unwrap();
        assert!(!kept.get().contains('\n'), "{}", kept.get());
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(kept.get()).unwrap(),
            value
        );
        assert!(
            kept.get()
                .contains(r#""text":"a \"quoted\"\tword, a \\ and\nbreak""#)
        );
    }
}
