//! The [`Resource`] enum, the [`FhirResource`] trait and the `resourceType` tag.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::{
    Bundle, CarePlan, Composition, Condition, DiagnosticReport, DocumentReference, Encounter,
    MedicationRequest, Observation, Patient, Practitioner, Specimen,
};

/// A FHIR resource type of this module.
pub trait FhirResource: Serialize + Into<Resource> {
    /// The `resourceType` (e.g. `"Patient"`).
    const RESOURCE_TYPE: &'static str;

    /// The logical id (`Resource.id`).
    fn id(&self) -> Option<&str>;

    /// Compact JSON of the resource, `resourceType` first.
    ///
    /// Never fails: these types only serialize strings, numbers, booleans, sequences and
    /// structs (no maps with non-string keys), the only way `serde_json` can fail here. The
    /// empty string would signal a bug.
    fn to_json(&self) -> String {
        super::json::to_string(self)
    }
}

/// The `resourceType` member of a resource struct: a zero-sized field serialized as the
/// type's name (`"resourceType":"Patient"`), so that every resource serializes its type first
/// even outside [`Resource`]; deserializing checks it.
pub struct ResourceTypeTag<T>(PhantomData<fn() -> T>);

impl<T> ResourceTypeTag<T> {
    /// The tag (there is only one value).
    pub const fn new() -> Self {
        ResourceTypeTag(PhantomData)
    }
}

impl<T> Default for ResourceTypeTag<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for ResourceTypeTag<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ResourceTypeTag<T> {}

impl<T> PartialEq for ResourceTypeTag<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> Eq for ResourceTypeTag<T> {}

impl<T: FhirResource> fmt::Debug for ResourceTypeTag<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::RESOURCE_TYPE)
    }
}

impl<T: FhirResource> Serialize for ResourceTypeTag<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(T::RESOURCE_TYPE)
    }
}

impl<'de, T: FhirResource> Deserialize<'de> for ResourceTypeTag<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TagVisitor<T>(PhantomData<fn() -> T>);
        impl<T: FhirResource> Visitor<'_> for TagVisitor<T> {
            type Value = ResourceTypeTag<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "\"{}\"", T::RESOURCE_TYPE)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v == T::RESOURCE_TYPE {
                    Ok(ResourceTypeTag::new())
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
        }
        deserializer.deserialize_str(TagVisitor(PhantomData))
    }
}

macro_rules! resources {
    ($($name:ident),* $(,)?) => {
        /// Any resource of this module. Serializes as the resource itself (its
        /// `"resourceType"` first); deserializing dispatches on `"resourceType"`.
        ///
        /// Resources are boxed to keep the enum (and bundle entries) small; build one with
        /// `.into()`:
        ///
        /// ```
        /// use passerelle_plugin_sdk::fhir::{Patient, Resource};
        /// let r: Resource = Patient::new().into();
        /// assert_eq!(r.resource_type(), "Patient");
        /// assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"resourceType":"Patient"}"#);
        /// let back: Resource = serde_json::from_str(r#"{"active":true,"resourceType":"Patient"}"#).unwrap();
        /// assert!(matches!(back, Resource::Patient(p) if p.active == Some(true)));
        /// ```
        #[derive(Serialize, Clone, Debug, PartialEq)]
        #[serde(untagged)]
        pub enum Resource {
            $(
                #[doc = concat!("A [`", stringify!($name), "`].")]
                $name(Box<$name>),
            )*
        }

        impl Resource {
            /// The `resourceType`.
            pub fn resource_type(&self) -> &'static str {
                match self {
                    $(Resource::$name(_) => <$name as FhirResource>::RESOURCE_TYPE,)*
                }
            }

            /// The logical id (`Resource.id`).
            pub fn id(&self) -> Option<&str> {
                match self {
                    $(Resource::$name(r) => r.id(),)*
                }
            }

            /// Compact JSON of the resource (see [`FhirResource::to_json`]).
            pub fn to_json(&self) -> String {
                super::json::to_string(self)
            }

            fn from_raw<E: de::Error>(resource_type: &str, json: &str) -> Result<Self, E> {
                match resource_type {
                    $(stringify!($name) => serde_json::from_str::<$name>(json)
                        .map(|r| Resource::$name(Box::new(r)))
                        .map_err(|e| E::custom(format_args!("{}: {e}", stringify!($name)))),)*
                    other => Err(E::unknown_variant(other, &[$(stringify!($name)),*])),
                }
            }
        }

        $(
            impl FhirResource for $name {
                const RESOURCE_TYPE: &'static str = stringify!($name);

                fn id(&self) -> Option<&str> {
                    self.id.as_deref()
                }
            }

            impl From<$name> for Resource {
                fn from(resource: $name) -> Self {
                    Resource::$name(Box::new(resource))
                }
            }
        )*
    };
}

resources!(
    Bundle,
    CarePlan,
    Composition,
    Condition,
    DiagnosticReport,
    DocumentReference,
    Encounter,
    MedicationRequest,
    Observation,
    Patient,
    Practitioner,
    Specimen,
);

/// `{"resourceType": ...}`, the rest ignored.
#[derive(serde::Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "resourceType", borrow)]
    resource_type: std::borrow::Cow<'a, str>,
}

impl<'de> Deserialize<'de> for Resource {
    /// Reads the resource's raw JSON once, finds `resourceType` (anywhere in the object),
    /// then parses the JSON as that type. Two passes instead of serde's buffered internally
    /// tagged enums, which would lose the text of decimals (`5.10` → `5.1`). Needs a
    /// `serde_json` deserializer (or `serde_json::Value`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let tag: TypeOnly<'_> = serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
        Resource::from_raw(&tag.resource_type, raw.get())
    }
}
