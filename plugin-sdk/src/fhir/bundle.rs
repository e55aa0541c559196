//! Bundle: the container of a record's clinical content.

use serde::{Deserialize, Serialize};

use super::{FhirResource, Identifier, Meta, Reference, Resource, ResourceTypeTag, uuid_for};

/// `Bundle.type`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum BundleType {
    /// `document`: a Composition first, then the resources it references.
    Document,
    /// `message`
    Message,
    /// `transaction`: entries carry a `request`, processed all or nothing.
    Transaction,
    /// `transaction-response`
    TransactionResponse,
    /// `batch`
    Batch,
    /// `batch-response`
    BatchResponse,
    /// `history`
    History,
    /// `searchset`
    Searchset,
    /// `collection`: a plain set of resources.
    Collection,
}

/// `Bundle.entry.request.method`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpVerb {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`: create.
    Post,
    /// `PUT`: update (conditional update with a search URL).
    Put,
    /// `DELETE`
    Delete,
    /// `PATCH`
    Patch,
}

/// `Bundle.entry.request`: what a transaction does with the entry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntryRequest {
    /// The HTTP method.
    pub method: HttpVerb,
    /// URL relative to the server base (`Patient`, `Patient?identifier=...`).
    pub url: String,
    /// Conditional create: search query that must match nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub if_none_exist: Option<String>,
}

/// An entry of a [`Bundle`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry {
    /// The entry's URL (`urn:uuid:...`), target of references.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    /// The resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    /// What to do with it (transactions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<BundleEntryRequest>,
}

/// A set of resources (FHIR `Bundle`), and the builder of a record's content.
///
/// Entries get deterministic `urn:uuid:` fullUrls derived from the bundle's *seed* (give
/// something unique to the source message, e.g. its control id: plugins have no random
/// source, and replaying a message must produce the same bundle). [`Bundle::add`] returns the
/// [`Reference`] to put in the resources that point at the entry.
///
/// ```
/// use passerelle_plugin_sdk::fhir::*;
/// use passerelle_plugin_sdk::types::InsKind;
///
/// let mut bundle = Bundle::collection("MSG00042");
/// let patient = bundle.add(Patient {
///     identifier: vec![Identifier::ins(InsKind::NirTest, "279035121518989")],
///     ..Patient::new()
/// });
/// let obs = bundle.add(Observation {
///     subject: Some(patient.clone()),
///     value: Some(ObservationValue::Quantity(Quantity::ucum("5.10".parse().unwrap(), "mmol/L"))),
///     ..Observation::new(
///         ObservationStatus::Final,
///         CodeableConcept::coded(systems::LOINC, "2823-3", Some("Potassium")),
///     )
/// });
/// assert!(patient.reference.as_deref().unwrap().starts_with("urn:uuid:"));
/// assert!(matches!(bundle.resolve(obs.reference.as_deref().unwrap()), Some(Resource::Observation(_))));
/// let json = bundle.to_json();
/// assert!(json.starts_with(r#"{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:"#));
/// // Same seed, same code: same bundle.
/// let mut again = Bundle::collection("MSG00042");
/// assert_eq!(again.add(Patient { identifier: vec![Identifier::ins(InsKind::NirTest, "279035121518989")], ..Patient::new() }), patient);
/// ```
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// Always `"Bundle"`.
    pub resource_type: ResourceTypeTag<Bundle>,
    /// Logical id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Persistent identifier (mandatory for documents).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    /// Kind of bundle.
    #[serde(rename = "type")]
    pub type_: BundleType,
    /// When the bundle was assembled (FHIR `instant`; mandatory for documents).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry: Vec<BundleEntry>,
    /// Seed of the entries' UUIDs (not serialized).
    #[serde(skip)]
    seed: String,
}

impl PartialEq for Bundle {
    /// Compares the FHIR content (the seed is not part of it).
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.meta == other.meta
            && self.identifier == other.identifier
            && self.type_ == other.type_
            && self.timestamp == other.timestamp
            && self.entry == other.entry
    }
}

impl Bundle {
    /// An empty bundle of a type; `seed` makes its entries' UUIDs (see [`Bundle::add`]).
    pub fn new(type_: BundleType, seed: impl Into<String>) -> Self {
        Bundle {
            resource_type: ResourceTypeTag::new(),
            id: None,
            meta: None,
            identifier: None,
            type_,
            timestamp: None,
            entry: Vec::new(),
            seed: seed.into(),
        }
    }

    /// An empty `collection` bundle.
    pub fn collection(seed: impl Into<String>) -> Self {
        Self::new(BundleType::Collection, seed)
    }

    /// An empty `transaction` bundle: [`Bundle::add`] makes `POST` entries,
    /// [`Bundle::add_conditional`] conditional `PUT` ones.
    pub fn transaction(seed: impl Into<String>) -> Self {
        Self::new(BundleType::Transaction, seed)
    }

    /// An empty `document` bundle, with its mandatory identifier and timestamp (a FHIR
    /// `instant`, e.g. the source message's time: plugins have no clock of their own). The
    /// [`super::Composition`] added to it becomes its first entry.
    ///
    /// ```
    /// use passerelle_plugin_sdk::fhir::*;
    /// let mut doc = Bundle::document(
    ///     "MSG1",
    ///     Identifier::urn_uuid(&uuid_for(&["MSG1", "document"])),
    ///     "2024-01-31T14:00:00+01:00",
    /// );
    /// let author = doc.add(Practitioner::new());
    /// doc.add(Composition::new(
    ///     CompositionStatus::Final,
    ///     CodeableConcept::coded(systems::LOINC, "75496-0", None),
    ///     "2024-01-31T14:00:00+01:00",
    ///     author,
    ///     "Fiche RCP",
    /// ));
    /// assert_eq!(doc.entry[0].resource.as_ref().unwrap().resource_type(), "Composition");
    /// ```
    pub fn document(
        seed: impl Into<String>,
        identifier: Identifier,
        timestamp: impl Into<String>,
    ) -> Self {
        Bundle {
            identifier: Some(identifier),
            timestamp: Some(timestamp.into()),
            ..Self::new(BundleType::Document, seed)
        }
    }

    /// The seed of the entries' UUIDs.
    pub fn seed(&self) -> &str {
        &self.seed
    }

    /// Sets the seed (a deserialized bundle has an empty one).
    pub fn set_seed(&mut self, seed: impl Into<String>) {
        self.seed = seed.into();
    }

    /// Adds a resource; returns the reference to it (`urn:uuid:` fullUrl and type).
    ///
    /// The UUID is [`uuid_for`]`([seed, "entry", n])` where `n` is the number of entries
    /// already in the bundle: stable as long as the adapter adds the same resources in the
    /// same order. Use [`Bundle::add_keyed`] for UUIDs that do not depend on the order.
    /// In a transaction the entry is a `POST` (create); in a document, a
    /// [`super::Composition`] is placed first.
    pub fn add(&mut self, resource: impl Into<Resource>) -> Reference {
        let n = self.entry.len().to_string();
        let uuid = uuid_for(&[&self.seed, "entry", &n]);
        self.push(uuid, resource.into(), None)
    }

    /// Adds a resource whose UUID is [`uuid_for`]`([seed, resourceType, key])`, whatever the
    /// order of the entries (e.g. key = the OBX set id or the filler order number). Keys
    /// must be unique per resource type within the bundle ([`Bundle::problems`] reports
    /// duplicate fullUrls).
    pub fn add_keyed(&mut self, key: &str, resource: impl Into<Resource>) -> Reference {
        let resource = resource.into();
        let uuid = uuid_for(&[&self.seed, resource.resource_type(), key]);
        self.push(uuid, resource, None)
    }

    /// Adds a resource identified by a business identifier. In a transaction (or batch) the
    /// entry is a conditional update: `PUT Type?identifier=system|value` (create it, or
    /// update the one resource with this identifier), so replays do not duplicate it; in
    /// other bundles it is a plain entry. The UUID is
    /// [`uuid_for`]`([seed, resourceType, "identifier", system, value])`. Without a value,
    /// falls back to [`Bundle::add_keyed`]-like behaviour with a `POST`.
    ///
    /// ```
    /// use passerelle_plugin_sdk::fhir::*;
    /// use passerelle_plugin_sdk::types::InsKind;
    /// let mut tx = Bundle::transaction("MSG1");
    /// let ins = Identifier::ins(InsKind::NirTest, "279035121518989");
    /// tx.add_conditional(Patient { identifier: vec![ins.clone()], ..Patient::new() }, &ins);
    /// let request = tx.entry[0].request.as_ref().unwrap();
    /// assert_eq!(request.method, HttpVerb::Put);
    /// assert_eq!(request.url, "Patient?identifier=urn:oid:1.2.250.1.213.1.4.10|279035121518989");
    /// ```
    pub fn add_conditional(
        &mut self,
        resource: impl Into<Resource>,
        identifier: &Identifier,
    ) -> Reference {
        let resource = resource.into();
        let resource_type = resource.resource_type();
        let system = identifier.system.as_deref().unwrap_or("");
        let Some(value) = identifier.value.as_deref() else {
            let uuid = uuid_for(&[&self.seed, resource_type, "identifier", system]);
            return self.push(uuid, resource, None);
        };
        let uuid = uuid_for(&[&self.seed, resource_type, "identifier", system, value]);
        let mut url = String::with_capacity(resource_type.len() + system.len() + value.len() + 16);
        url.push_str(resource_type);
        url.push_str("?identifier=");
        if !system.is_empty() {
            percent_encode_into(system, &mut url);
            url.push('|');
        }
        percent_encode_into(value, &mut url);
        let request = BundleEntryRequest {
            method: HttpVerb::Put,
            url,
            if_none_exist: None,
        };
        self.push(uuid, resource, Some(request))
    }

    fn push(
        &mut self,
        uuid: String,
        resource: Resource,
        request: Option<BundleEntryRequest>,
    ) -> Reference {
        let resource_type = resource.resource_type();
        // Once per resource: plain concatenation, not the `fmt` machinery.
        let full_url = ["urn:uuid:", uuid.as_str()].concat();
        let request = match self.type_ {
            BundleType::Transaction | BundleType::Batch => {
                Some(request.unwrap_or_else(|| BundleEntryRequest {
                    method: HttpVerb::Post,
                    url: resource_type.to_string(),
                    if_none_exist: None,
                }))
            }
            _ => None,
        };
        let entry = BundleEntry {
            full_url: Some(full_url.clone()),
            resource: Some(resource),
            request,
        };
        let composition_first = self.type_ == BundleType::Document
            && resource_type == "Composition"
            && !self
                .entry
                .first()
                .is_some_and(|e| matches!(e.resource, Some(Resource::Composition(_))));
        if composition_first {
            self.entry.insert(0, entry);
        } else {
            self.entry.push(entry);
        }
        Reference {
            reference: Some(full_url),
            type_: Some(resource_type.to_string()),
            ..Default::default()
        }
    }

    /// The resource of the entry with this fullUrl.
    pub fn resolve(&self, full_url: &str) -> Option<&Resource> {
        self.entry
            .iter()
            .find(|e| e.full_url.as_deref() == Some(full_url))
            .and_then(|e| e.resource.as_ref())
    }

    /// Compact JSON of the bundle (see [`FhirResource::to_json`] for why this cannot fail).
    pub fn to_json(&self) -> String {
        FhirResource::to_json(self)
    }

    /// Appends the compact JSON of the bundle to `out` (reuse one buffer across messages).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_json().as_bytes());
    }

    /// Structural problems FHIR would reject, for tests and debugging (re-reads the JSON:
    /// not for the hot path): duplicate fullUrls, `urn:uuid:` references that match no
    /// entry, a document without identifier, timestamp or leading Composition, transaction
    /// entries without request (or requests outside transactions/batches). Empty when fine.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, e) in self.entry.iter().enumerate() {
            if let Some(url) = &e.full_url
                && !seen.insert(url.as_str())
            {
                problems.push(format!("entry {i}: duplicate fullUrl {url}"));
            }
            if e.resource.is_none() {
                problems.push(format!("entry {i}: no resource"));
            }
            let needs_request = matches!(self.type_, BundleType::Transaction | BundleType::Batch);
            if needs_request != e.request.is_some() {
                problems.push(format!(
                    "entry {i}: request {}",
                    if needs_request {
                        "missing"
                    } else {
                        "not allowed"
                    }
                ));
            }
        }
        if self.type_ == BundleType::Document {
            if self.identifier.is_none() {
                problems.push("document without identifier".into());
            }
            if self.timestamp.is_none() {
                problems.push("document without timestamp".into());
            }
            if !self
                .entry
                .first()
                .is_some_and(|e| matches!(e.resource, Some(Resource::Composition(_))))
            {
                problems.push("document whose first entry is not a Composition".into());
            }
        }
        let json: serde_json::Value = serde_json::from_str(&self.to_json()).unwrap_or_default();
        let mut references = Vec::new();
        collect_references(&json, &mut references);
        for r in references {
            if r.starts_with("urn:uuid:") && !seen.contains(r) {
                problems.push(format!("unresolved reference {r}"));
            }
        }
        problems
    }
}

fn collect_references<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("reference", serde_json::Value::String(s)) => out.push(s),
                    _ => collect_references(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

/// Percent-encodes a search parameter value: keeps unreserved characters and `:` `/` (common
/// in system URIs, allowed in a query), encodes the rest as UTF-8 `%XX` (`|`, `&`, `#`,
/// `+`, space, `%`, non-ASCII...).
fn percent_encode_into(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// Resources added once per key. An adapter that meets the same practitioner in several
/// fields (ordering provider, results interpreter, observers) adds one Practitioner, keyed by
/// the field's raw text ([`Bundle::add_keyed`]), and references it from each; a blank key adds
/// nothing, and neither does a `build` that gives `None`.
///
/// ```
/// use passerelle_plugin_sdk::fhir::{Bundle, OncePerKey, Practitioner};
///
/// let mut bundle = Bundle::collection("msg-1");
/// let mut practitioners = OncePerKey::new();
/// let a = practitioners.add(&mut bundle, "123^DOE^JOHN", || Some(Practitioner::new()));
/// let b = practitioners.add(&mut bundle, "123^DOE^JOHN", || Some(Practitioner::new()));
/// assert_eq!(a, b);
/// assert_eq!(bundle.entry.len(), 1);
/// assert_eq!(practitioners.add(&mut bundle, " ", || Some(Practitioner::new())), None);
/// ```
#[derive(Debug, Default)]
pub struct OncePerKey<'k> {
    seen: Vec<(&'k str, Reference)>,
}

impl<'k> OncePerKey<'k> {
    /// No resource added yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The reference of the resource added for `key`, adding what `build` makes the first time.
    pub fn add<R: Into<Resource>>(
        &mut self,
        bundle: &mut Bundle,
        key: &'k str,
        build: impl FnOnce() -> Option<R>,
    ) -> Option<Reference> {
        if key.trim().is_empty() {
            return None;
        }
        if let Some((_, r)) = self.seen.iter().find(|(k, _)| *k == key) {
            return Some(r.clone());
        }
        let reference = bundle.add_keyed(key, build()?);
        self.seen.push((key, reference.clone()));
        Some(reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding() {
        let mut s = String::new();
        percent_encode_into("urn:oid:1.2|a b&c#é%", &mut s);
        assert_eq!(s, "urn:oid:1.2%7Ca%20b%26c%23%C3%A9%25");
    }
}
