//! FHIR R4 general-purpose datatypes.
//!
//! Types whose every element is optional derive [`Default`]; types with a mandatory element
//! (e.g. [`Annotation::text`], [`Extension::url`]) are built with their `new` function.

use serde::{Deserialize, Serialize};

use super::Decimal;
use super::systems;
use crate::types::InsKind;

/// A code from a code system (FHIR `Coding`).
///
/// ```
/// use passerelle_plugin_sdk::fhir::{Coding, systems};
/// let c = Coding::new(systems::LOINC, "2345-7").with_display("Glucose");
/// assert_eq!(
///     serde_json::to_string(&c).unwrap(),
///     r#"{"system":"http://loinc.org","code":"2345-7","display":"Glucose"}"#
/// );
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Coding {
    /// Identity of the code system (URI or `urn:oid:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Version of the code system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Human-readable label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// Whether the user chose this code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_selected: Option<bool>,
}

impl Coding {
    /// A code of a system.
    pub fn new(system: impl Into<String>, code: impl Into<String>) -> Self {
        Coding {
            system: Some(system.into()),
            code: Some(code.into()),
            ..Default::default()
        }
    }

    /// Sets the display.
    pub fn with_display(mut self, display: impl Into<String>) -> Self {
        self.display = Some(display.into());
        self
    }

    /// Sets the code system version.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }
}

/// A concept as codes and/or text (FHIR `CodeableConcept`).
///
/// ```
/// use passerelle_plugin_sdk::fhir::{CodeableConcept, systems};
/// let cc = CodeableConcept::coded(systems::LOINC, "718-7", Some("Hémoglobine")).with_text("Hb");
/// assert_eq!(cc.coding[0].code.as_deref(), Some("718-7"));
/// assert_eq!(CodeableConcept::from_text("texte libre").text.as_deref(), Some("texte libre"));
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CodeableConcept {
    /// Codes, e.g. the local code and its LOINC translation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coding: Vec<Coding>,
    /// Plain-text representation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl CodeableConcept {
    /// One code, with an optional display.
    pub fn coded(
        system: impl Into<String>,
        code: impl Into<String>,
        display: Option<&str>,
    ) -> Self {
        let mut coding = Coding::new(system, code);
        coding.display = display.map(str::to_string);
        CodeableConcept {
            coding: vec![coding],
            text: None,
        }
    }

    /// Text only (no code).
    pub fn from_text(text: impl Into<String>) -> Self {
        CodeableConcept {
            coding: Vec::new(),
            text: Some(text.into()),
        }
    }

    /// Adds a coding (e.g. a translation).
    pub fn with_coding(mut self, coding: Coding) -> Self {
        self.coding.push(coding);
        self
    }

    /// Sets the text.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }
}

impl From<Coding> for CodeableConcept {
    fn from(coding: Coding) -> Self {
        CodeableConcept {
            coding: vec![coding],
            text: None,
        }
    }
}

/// `Identifier.use`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum IdentifierUse {
    /// `usual`
    Usual,
    /// `official`
    Official,
    /// `temp`
    Temp,
    /// `secondary`
    Secondary,
    /// `old`
    Old,
}

/// An identifier of a business object (FHIR `Identifier`).
///
/// ```
/// use passerelle_plugin_sdk::fhir::{Identifier, systems};
/// use passerelle_plugin_sdk::types::InsKind;
/// let ins = Identifier::ins(InsKind::NirTest, "279035121518989");
/// assert_eq!(ins.system.as_deref(), Some(systems::INS_NIR_TEST));
/// let ipp = Identifier::new("urn:oid:1.2.250.1.71.4.2.7", "IPP123")
///     .with_type(systems::V2_0203, "PI");
/// assert_eq!(
///     serde_json::to_string(&ipp).unwrap(),
///     r#"{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"PI"}]},"system":"urn:oid:1.2.250.1.71.4.2.7","value":"IPP123"}"#
/// );
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Identifier {
    /// `usual | official | temp | secondary | old`.
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<IdentifierUse>,
    /// Kind of identifier (v2 table 0203 and its French extension).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<CodeableConcept>,
    /// Namespace of the value (URI or `urn:oid:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The value, unique within the system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// When the identifier is valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Organization that issued the identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigner: Option<Box<Reference>>,
}

impl Identifier {
    /// A value in a namespace.
    pub fn new(system: impl Into<String>, value: impl Into<String>) -> Self {
        Identifier {
            system: Some(system.into()),
            value: Some(value.into()),
            ..Default::default()
        }
    }

    /// A patient's INS (Identifiant National de Santé) as profiled by FR Core: the INS OID
    /// system, the type `INS-NIR` / `INS-NIA` / `INS-NIR-TEST` / `INS-NIR-DEMO` of
    /// [`systems::FR_CORE_V2_0203`], use `official` (`temp` for a NIA).
    pub fn ins(kind: InsKind, value: impl Into<String>) -> Self {
        let (system, code, use_) = match kind {
            InsKind::Nir => (systems::INS_NIR, "INS-NIR", IdentifierUse::Official),
            InsKind::Nia => (systems::INS_NIA, "INS-NIA", IdentifierUse::Temp),
            InsKind::NirTest => (
                systems::INS_NIR_TEST,
                "INS-NIR-TEST",
                IdentifierUse::Official,
            ),
            InsKind::NirDemo => (
                systems::INS_NIR_DEMO,
                "INS-NIR-DEMO",
                IdentifierUse::Official,
            ),
        };
        Identifier::new(system, value)
            .with_type(systems::FR_CORE_V2_0203, code)
            .with_use(use_)
    }

    /// An `urn:uuid:` identifier in the `urn:ietf:rfc:3986` system (document and bundle
    /// identifiers); `uuid` is the bare UUID, e.g. from [`super::uuid_for`].
    pub fn urn_uuid(uuid: &str) -> Self {
        Identifier::new(systems::URN_IETF_RFC_3986, ["urn:uuid:", uuid].concat())
    }

    /// Sets the type to one code.
    pub fn with_type(mut self, system: impl Into<String>, code: impl Into<String>) -> Self {
        self.type_ = Some(CodeableConcept::from(Coding::new(system, code)));
        self
    }

    /// Sets the use.
    pub fn with_use(mut self, use_: IdentifierUse) -> Self {
        self.use_ = Some(use_);
        self
    }

    /// Sets the assigning organization.
    pub fn with_assigner(mut self, assigner: Reference) -> Self {
        self.assigner = Some(Box::new(assigner));
        self
    }
}

/// A reference to another resource (FHIR `Reference`): usually the `urn:uuid:` fullUrl
/// returned by [`super::Bundle::add`], or a logical reference by identifier.
///
/// ```
/// use passerelle_plugin_sdk::fhir::{Identifier, Reference, systems};
/// let r = Reference::logical("Practitioner", Identifier::new(systems::IDNAT_PS, "810002909371"))
///     .with_display("Dr Jean Martin");
/// assert_eq!(r.type_.as_deref(), Some("Practitioner"));
/// assert_eq!(Reference::to("urn:uuid:0b8a…").reference.as_deref(), Some("urn:uuid:0b8a…"));
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    /// Literal reference: relative, absolute or `urn:uuid:` URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Type the reference refers to (e.g. `Patient`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Logical reference, when the literal one is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    /// Text alternative for the resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Reference {
    /// A literal reference to a URL.
    pub fn to(reference: impl Into<String>) -> Self {
        Reference {
            reference: Some(reference.into()),
            ..Default::default()
        }
    }

    /// A logical reference: a resource of the type with the identifier.
    pub fn logical(resource_type: impl Into<String>, identifier: Identifier) -> Self {
        Reference {
            type_: Some(resource_type.into()),
            identifier: Some(identifier),
            ..Default::default()
        }
    }

    /// Sets the display.
    pub fn with_display(mut self, display: impl Into<String>) -> Self {
        self.display = Some(display.into());
        self
    }
}

/// `Quantity.comparator`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantityComparator {
    /// `<`
    #[serde(rename = "<")]
    Less,
    /// `<=`
    #[serde(rename = "<=")]
    LessOrEqual,
    /// `>=`
    #[serde(rename = ">=")]
    GreaterOrEqual,
    /// `>`
    #[serde(rename = ">")]
    Greater,
}

impl QuantityComparator {
    /// Parses `<`, `<=`, `>=`, `>` (also `≤`, `≥`).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "<" => Some(Self::Less),
            "<=" | "≤" => Some(Self::LessOrEqual),
            ">=" | "≥" => Some(Self::GreaterOrEqual),
            ">" => Some(Self::Greater),
            _ => None,
        }
    }

    /// A leading comparator (`<=`, `>=`, `≤`, `≥`, `<`, `>`) and the text after it, as lab
    /// values write them (`<5`, `>=1.2`); `(None, text)` when there is none. Nothing is
    /// trimmed.
    ///
    /// ```
    /// use passerelle_plugin_sdk::fhir::QuantityComparator as C;
    /// assert_eq!(C::split_prefix("<=0.5"), (Some(C::LessOrEqual), "0.5"));
    /// assert_eq!(C::split_prefix("≥ 10"), (Some(C::GreaterOrEqual), " 10"));
    /// assert_eq!(C::split_prefix("12"), (None, "12"));
    /// ```
    pub fn split_prefix(text: &str) -> (Option<Self>, &str) {
        // Two-character comparators first: `<=` is not `<` followed by `=`.
        for (prefix, c) in [
            ("<=", Self::LessOrEqual),
            (">=", Self::GreaterOrEqual),
            ("≤", Self::LessOrEqual),
            ("≥", Self::GreaterOrEqual),
            ("<", Self::Less),
            (">", Self::Greater),
        ] {
            if let Some(rest) = text.strip_prefix(prefix) {
                return (Some(c), rest);
            }
        }
        (None, text)
    }
}

/// A measured amount (FHIR `Quantity`); the value is a [`Decimal`] that keeps its precision.
///
/// ```
/// use passerelle_plugin_sdk::fhir::{Decimal, Quantity};
/// let q = Quantity::ucum(Decimal::parse("5.10").unwrap(), "mmol/L");
/// assert_eq!(
///     serde_json::to_string(&q).unwrap(),
///     r#"{"value":5.10,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"}"#
/// );
/// // A unit that is not UCUM is kept as text only.
/// let q = Quantity::with_unit(Decimal::from(3), "croix");
/// assert_eq!(serde_json::to_string(&q).unwrap(), r#"{"value":3,"unit":"croix"}"#);
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Quantity {
    /// Numerical value, with implicit precision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Decimal>,
    /// How to understand the value (`<`, `<=`, `>=`, `>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparator: Option<QuantityComparator>,
    /// Unit as displayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// System of the coded unit (UCUM: [`systems::UCUM`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Coded unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// A length of time (FHIR `Duration`: a [`Quantity`] with a UCUM time unit).
pub type Duration = Quantity;

/// A quantity without comparator (FHIR `SimpleQuantity`).
pub type SimpleQuantity = Quantity;

impl Quantity {
    /// A value with a UCUM unit (`unit` and `code` both set to `ucum_code`).
    pub fn ucum(value: Decimal, ucum_code: impl Into<String>) -> Self {
        let code = ucum_code.into();
        Quantity {
            value: Some(value),
            unit: Some(code.clone()),
            system: Some(systems::UCUM.to_string()),
            code: Some(code),
            comparator: None,
        }
    }

    /// A value with a free-text unit (not coded).
    pub fn with_unit(value: Decimal, unit: impl Into<String>) -> Self {
        Quantity {
            value: Some(value),
            unit: Some(unit.into()),
            ..Default::default()
        }
    }

    /// A value without unit.
    pub fn new(value: Decimal) -> Self {
        Quantity {
            value: Some(value),
            ..Default::default()
        }
    }

    /// Sets the comparator.
    pub fn with_comparator(mut self, comparator: QuantityComparator) -> Self {
        self.comparator = Some(comparator);
        self
    }

    /// Sets the displayed unit (keeps the coded one).
    pub fn with_display_unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = Some(unit.into());
        self
    }
}

/// A set of values bounded by low and high (FHIR `Range`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Range {
    /// Low limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<Quantity>,
    /// High limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<Quantity>,
}

impl Range {
    /// A range from its bounds (either may be open).
    pub fn new(low: Option<Quantity>, high: Option<Quantity>) -> Self {
        Range { low, high }
    }
}

/// A ratio of two quantities (FHIR `Ratio`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Ratio {
    /// Numerator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numerator: Option<Quantity>,
    /// Denominator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denominator: Option<Quantity>,
}

impl Ratio {
    /// `numerator / denominator`.
    pub fn new(numerator: Quantity, denominator: Quantity) -> Self {
        Ratio {
            numerator: Some(numerator),
            denominator: Some(denominator),
        }
    }
}

/// A time range (FHIR `Period`); bounds are FHIR `dateTime` strings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Period {
    /// Start, inclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End, inclusive; absent when ongoing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

impl Period {
    /// A period with a start only (ongoing).
    pub fn starting(start: impl Into<String>) -> Self {
        Period {
            start: Some(start.into()),
            end: None,
        }
    }

    /// A period with both bounds.
    pub fn between(start: impl Into<String>, end: impl Into<String>) -> Self {
        Period {
            start: Some(start.into()),
            end: Some(end.into()),
        }
    }
}

/// `HumanName.use`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum NameUse {
    /// `usual` (FR: nom utilisé)
    Usual,
    /// `official` (FR: nom de naissance)
    Official,
    /// `temp`
    Temp,
    /// `nickname`
    Nickname,
    /// `anonymous`
    Anonymous,
    /// `old`
    Old,
    /// `maiden`
    Maiden,
}

/// A person's name (FHIR `HumanName`).
///
/// ```
/// use passerelle_plugin_sdk::fhir::{HumanName, NameUse};
/// let n = HumanName::new("DUPONT", ["Marie", "Louise"]).with_use(NameUse::Official);
/// assert_eq!(
///     serde_json::to_string(&n).unwrap(),
///     r#"{"use":"official","family":"DUPONT","given":["Marie","Louise"]}"#
/// );
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HumanName {
    /// `usual | official | temp | nickname | anonymous | old | maiden`.
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<NameUse>,
    /// Full name as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Family name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Given names, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub given: Vec<String>,
    /// Parts before the name (titles).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix: Vec<String>,
    /// Parts after the name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suffix: Vec<String>,
    /// When the name was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
}

impl HumanName {
    /// A family name and given names; empty given names are skipped.
    pub fn new<I, S>(family: impl Into<String>, given: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        HumanName {
            family: Some(family.into()),
            given: given
                .into_iter()
                .map(Into::into)
                .filter(|g: &String| !g.is_empty())
                .collect(),
            ..Default::default()
        }
    }

    /// Sets the use.
    pub fn with_use(mut self, use_: NameUse) -> Self {
        self.use_ = Some(use_);
        self
    }

    /// Adds a prefix (e.g. `Dr`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix.push(prefix.into());
        self
    }
}

/// `Address.use`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum AddressUse {
    /// `home`
    Home,
    /// `work`
    Work,
    /// `temp`
    Temp,
    /// `old`
    Old,
    /// `billing`
    Billing,
}

/// `Address.type`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum AddressType {
    /// `postal`
    Postal,
    /// `physical`
    Physical,
    /// `both`
    Both,
}

/// A postal address (FHIR `Address`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// `home | work | temp | old | billing`.
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<AddressUse>,
    /// `postal | physical | both`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<AddressType>,
    /// Whole address as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Street lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub line: Vec<String>,
    /// City.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// District (county).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    /// State (region).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Postal code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Country (ISO 3166 code or name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// When the address was in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
}

/// `ContactPoint.system`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ContactPointSystem {
    /// `phone`
    Phone,
    /// `fax`
    Fax,
    /// `email`
    Email,
    /// `pager`
    Pager,
    /// `url`
    Url,
    /// `sms`
    Sms,
    /// `other`
    Other,
}

/// `ContactPoint.use`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ContactPointUse {
    /// `home`
    Home,
    /// `work`
    Work,
    /// `temp`
    Temp,
    /// `old`
    Old,
    /// `mobile`
    Mobile,
}

/// A phone number, e-mail address... (FHIR `ContactPoint`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContactPoint {
    /// `phone | fax | email | pager | url | sms | other` (required when `value` is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<ContactPointSystem>,
    /// The number or address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `home | work | temp | old | mobile`.
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<ContactPointUse>,
    /// Preference order (1 = highest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<u32>,
    /// When in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
}

impl ContactPoint {
    /// A contact point of a kind.
    pub fn new(system: ContactPointSystem, value: impl Into<String>) -> Self {
        ContactPoint {
            system: Some(system),
            value: Some(value.into()),
            ..Default::default()
        }
    }

    /// Sets the use.
    pub fn with_use(mut self, use_: ContactPointUse) -> Self {
        self.use_ = Some(use_);
        self
    }
}

/// A text note with author and time (FHIR `Annotation`); `text` is mandatory.
///
/// ```
/// use passerelle_plugin_sdk::fhir::Annotation;
/// let n = Annotation::new("Prélèvement hémolysé").with_author("Laboratoire X");
/// assert_eq!(serde_json::to_string(&n).unwrap(),
///     r#"{"authorString":"Laboratoire X","text":"Prélèvement hémolysé"}"#);
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Annotation {
    /// Author, as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author_string: Option<String>,
    /// Author, as a reference (exclusive with `author_string`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author_reference: Option<Reference>,
    /// When the note was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The note (markdown).
    pub text: String,
}

impl Annotation {
    /// A note.
    pub fn new(text: impl Into<String>) -> Self {
        Annotation {
            author_string: None,
            author_reference: None,
            time: None,
            text: text.into(),
        }
    }

    /// Sets the author as text.
    pub fn with_author(mut self, author: impl Into<String>) -> Self {
        self.author_string = Some(author.into());
        self
    }

    /// Sets the time.
    pub fn with_time(mut self, time: impl Into<String>) -> Self {
        self.time = Some(time.into());
        self
    }
}

/// Content in a format defined elsewhere, inline (base64) or by URL (FHIR `Attachment`).
///
/// ```
/// use passerelle_plugin_sdk::fhir::Attachment;
/// let a = Attachment::from_bytes("text/plain", b"Hello").with_title("note");
/// assert_eq!(a.data.as_deref(), Some("SGVsbG8="));
/// assert_eq!(a.size, Some(5));
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// Mime type of the content (mandatory when `data` is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Human language of the content (BCP-47, e.g. `fr-FR`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The content, base64-encoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Where the content can be found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Number of bytes of the content (before base64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// SHA-1 of the content, base64-encoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Label to display.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// When the content was first created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation: Option<String>,
}

impl Attachment {
    /// Inline content that is already base64-encoded (e.g. an HL7 v2 `ED` field).
    pub fn inline(content_type: impl Into<String>, base64: impl Into<String>) -> Self {
        Attachment {
            content_type: Some(content_type.into()),
            data: Some(base64.into()),
            ..Default::default()
        }
    }

    /// Inline content from its bytes: encodes them in base64 and sets `size`.
    pub fn from_bytes(content_type: impl Into<String>, bytes: &[u8]) -> Self {
        Attachment {
            content_type: Some(content_type.into()),
            data: Some(base64(bytes)),
            size: u32::try_from(bytes.len()).ok(),
            ..Default::default()
        }
    }

    /// Content by URL.
    pub fn url(content_type: impl Into<String>, url: impl Into<String>) -> Self {
        Attachment {
            content_type: Some(content_type.into()),
            url: Some(url.into()),
            ..Default::default()
        }
    }

    /// Sets the title.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Metadata of a resource (FHIR `Meta`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// Version of the resource on its server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// When the resource last changed (FHIR `instant`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// Where the resource comes from (URI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Profiles the resource claims to conform to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profile: Vec<String>,
    /// Security labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security: Vec<Coding>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag: Vec<Coding>,
}

impl Meta {
    /// Metadata with one profile.
    pub fn profile(url: impl Into<String>) -> Self {
        Meta {
            profile: vec![url.into()],
            ..Default::default()
        }
    }
}

/// The value of an [`Extension`] (FHIR `Extension.value[x]`, the types used by Passerelle).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ExtensionValue {
    /// `valueString`
    #[serde(rename = "valueString")]
    String(String),
    /// `valueCode`
    #[serde(rename = "valueCode")]
    Code(String),
    /// `valueCoding`
    #[serde(rename = "valueCoding")]
    Coding(Coding),
    /// `valueCodeableConcept`
    #[serde(rename = "valueCodeableConcept")]
    CodeableConcept(CodeableConcept),
    /// `valueBoolean`
    #[serde(rename = "valueBoolean")]
    Boolean(bool),
    /// `valueDateTime`
    #[serde(rename = "valueDateTime")]
    DateTime(String),
    /// `valueIdentifier`
    #[serde(rename = "valueIdentifier")]
    Identifier(Identifier),
    /// `valueReference`
    #[serde(rename = "valueReference")]
    Reference(Reference),
}

/// An extension (FHIR `Extension`): a URL and either one value or nested extensions.
///
/// ```
/// use passerelle_plugin_sdk::fhir::{Extension, ExtensionValue};
/// let e = Extension::new("https://example.org/ext", ExtensionValue::Boolean(true));
/// assert_eq!(serde_json::to_string(&e).unwrap(),
///     r#"{"url":"https://example.org/ext","valueBoolean":true}"#);
/// let complex = Extension::complex("https://example.org/c", vec![e]);
/// assert_eq!(complex.extension.len(), 1);
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    /// Identifies the meaning of the extension.
    pub url: String,
    /// Value of the extension (absent for a complex extension).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub value: Option<ExtensionValue>,
    /// Nested extensions (complex extension).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
}

impl Extension {
    /// A simple extension.
    pub fn new(url: impl Into<String>, value: ExtensionValue) -> Self {
        Extension {
            url: url.into(),
            value: Some(value),
            extension: Vec::new(),
        }
    }

    /// A complex extension made of nested extensions.
    pub fn complex(url: impl Into<String>, extension: Vec<Extension>) -> Self {
        Extension {
            url: url.into(),
            value: None,
            extension,
        }
    }
}

/// `Narrative.status`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum NarrativeStatus {
    /// `generated`: entirely generated from the structured data.
    Generated,
    /// `extensions`: generated, including extensions.
    Extensions,
    /// `additional`: contains information beyond the structured data.
    Additional,
    /// `empty`: no content.
    Empty,
}

/// Human-readable XHTML text (FHIR `Narrative`), used by [`super::CompositionSection`].
///
/// ```
/// use passerelle_plugin_sdk::fhir::Narrative;
/// let n = Narrative::from_text("Hb < 10 g/dL & fatigue\nà revoir");
/// assert_eq!(n.div,
///     r#"<div xmlns="http://www.w3.org/1999/xhtml">Hb &lt; 10 g/dL &amp; fatigue<br/>à revoir</div>"#);
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Narrative {
    /// `generated | extensions | additional | empty`.
    pub status: NarrativeStatus,
    /// The XHTML: `<div xmlns="http://www.w3.org/1999/xhtml">…</div>`.
    pub div: String,
}

impl Narrative {
    /// A narrative of plain text: XML-escaped, line breaks as `<br/>`, in an XHTML `div`
    /// (status `additional`: the text is the content, not generated from data). FHIR requires
    /// the div to have some non-whitespace content: give non-empty text.
    pub fn from_text(text: &str) -> Self {
        let mut div = String::with_capacity(text.len() + 50);
        div.push_str(r#"<div xmlns="http://www.w3.org/1999/xhtml">"#);
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            escape_xml_into(line, &mut div);
            if lines.peek().is_some() {
                div.push_str("<br/>");
            }
        }
        div.push_str("</div>");
        Narrative {
            status: NarrativeStatus::Additional,
            div,
        }
    }

    /// A narrative from an XHTML `div` the caller built (not checked).
    pub fn from_xhtml(status: NarrativeStatus, div: impl Into<String>) -> Self {
        Narrative {
            status,
            div: div.into(),
        }
    }
}

/// Appends `text` to `out` with the XML special characters escaped.
pub fn escape_xml_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Characters XML 1.0 forbids (other controls) are dropped.
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(base64(input.as_bytes()), expected);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn narrative_escapes_markup() {
        let n = Narrative::from_text("<script>a='1' & \"b\"</script>\u{1}");
        assert_eq!(
            n.div,
            "<div xmlns=\"http://www.w3.org/1999/xhtml\">&lt;script&gt;a=&#39;1&#39; &amp; \
             &quot;b&quot;&lt;/script&gt;</div>"
        );
    }

    #[test]
    fn extension_round_trips() {
        let e = Extension::complex(
            "https://example.org/c",
            vec![
                Extension::new("a", ExtensionValue::Code("x".into())),
                Extension::new("b", ExtensionValue::Reference(Reference::to("urn:uuid:1"))),
            ],
        );
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"url":"https://example.org/c","extension":[{"url":"a","valueCode":"x"},{"url":"b","valueReference":{"reference":"urn:uuid:1"}}]}"#
        );
        assert_eq!(serde_json::from_str::<Extension>(&json).unwrap(), e);
    }
}
