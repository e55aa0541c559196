//! Turning a record's Bundle into an idempotent FHIR `transaction` (see the module docs above).

use std::borrow::Cow;

use serde_json::{Map, Value, json};

/// The body to POST to a FHIR server: `bundle` itself when it already is a `transaction`, else
/// the converted Bundle (type `transaction`, one `PUT <ResourceType>/<id>` per entry, ids from
/// the `urn:uuid:` fullUrls, else the resources' ids, else `<record id>-<entry index>`).
/// An error means the bundle cannot be sent (retrying will not help).
pub fn to_transaction<'a>(bundle: &'a str, record_id: &str) -> Result<Cow<'a, str>, String> {
    let mut value: Value =
        serde_json::from_str(bundle).map_err(|e| format!("the bundle is not JSON: {e}"))?;
    let obj = value
        .as_object_mut()
        .ok_or("the bundle is not a JSON object")?;
    if obj.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err("the bundle's resourceType is not Bundle".into());
    }
    if obj.get("type").and_then(Value::as_str) == Some("transaction") {
        return Ok(Cow::Borrowed(bundle));
    }
    obj.insert("type".into(), json!("transaction"));
    // Only meaningful for search results and histories.
    obj.remove("total");
    obj.remove("link");
    if let Some(entries) = obj.get_mut("entry") {
        let entries = entries
            .as_array_mut()
            .ok_or("the bundle's entry is not an array")?;
        for (i, entry) in entries.iter_mut().enumerate() {
            let entry = entry
                .as_object_mut()
                .ok_or_else(|| format!("entry {i} is not an object"))?;
            convert_entry(entry, i, record_id)?;
        }
    }
    serde_json::to_string(&value)
        .map(Cow::Owned)
        .map_err(|e| format!("cannot serialise the transaction: {e}"))
}

fn convert_entry(entry: &mut Map<String, Value>, i: usize, record_id: &str) -> Result<(), String> {
    entry.remove("search");
    entry.remove("response");
    if entry.contains_key("request") {
        // A batch entry already says what to do.
        return Ok(());
    }
    let from_full_url = entry
        .get("fullUrl")
        .and_then(Value::as_str)
        .and_then(|u| u.strip_prefix("urn:uuid:"))
        .filter(|id| is_fhir_id(id))
        .map(str::to_string);
    let resource = entry
        .get_mut("resource")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| format!("entry {i} has no resource"))?;
    let resource_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphabetic()))
        .ok_or_else(|| format!("entry {i} has no valid resourceType"))?
        .to_string();
    let id = from_full_url
        .or_else(|| {
            resource
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| is_fhir_id(id))
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("{record_id}-{i}"));
    resource.insert("id".into(), json!(id));
    entry.insert(
        "request".into(),
        json!({ "method": "PUT", "url": format!("{resource_type}/{id}") }),
    );
    Ok(())
}

/// FHIR `id`: `[A-Za-z0-9\-\.]{1,64}`.
fn is_fhir_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}
