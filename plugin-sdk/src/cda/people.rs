//! People: the patient, health professionals in their roles, and their participations.

use super::walk::non_blank;
use super::{
    Cd, Ii, Node, attr, cd, child, children, ii, is, ivl_ts, location, oids, pn, telecoms, text_of,
    ts,
};
use crate::fhir::{
    Address, AdministrativeGender, ContactPoint, HumanName, Identifier, Patient, Practitioner,
    systems,
};
use crate::record::ins_kind_from_oid;
use crate::types::{InsKind, PatientIdentity};

/// The patient of `recordTarget/patientRole`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CdaPatient {
    /// Every identifier of `patientRole/id`, in order (INS included).
    pub ids: Vec<Ii>,
    /// The INS, when an id has an INS root (`1.2.250.1.213.1.4.8/.9/.10/.11`); a NIR is
    /// preferred to a NIA.
    pub ins: Option<(InsKind, String)>,
    /// Names ([`pn`]).
    pub names: Vec<HumanName>,
    /// Administrative gender (`M`, `F`, `U`/`UN`).
    pub gender: Option<AdministrativeGender>,
    /// Birth date (FHIR `date`).
    pub birth_date: Option<String>,
    /// Phone numbers, e-mail addresses.
    pub telecom: Vec<ContactPoint>,
    /// Addresses.
    pub address: Vec<Address>,
}

impl CdaPatient {
    /// The identifiers that are not an INS and have an extension (IPP...).
    pub fn local_ids(&self) -> impl Iterator<Item = &Ii> {
        self.ids
            .iter()
            .filter(|id| id.extension.is_some() && ins_kind_from_oid(&id.root).is_none())
    }

    /// The envelope's patient identity: the INS and the local ids (`urn:oid:` systems).
    pub fn identity(&self) -> PatientIdentity {
        PatientIdentity {
            ins: self.ins.as_ref().map(|(kind, value)| crate::types::Ins {
                kind: *kind,
                value: value.clone(),
            }),
            local_ids: self
                .local_ids()
                .map(|id| crate::types::Identifier {
                    system: id.system(),
                    value: id.value(),
                })
                .collect(),
        }
    }

    /// The FHIR [`Patient`]: the INS as FR Core types it ([`Identifier::ins`]), the local ids
    /// typed `PI`, names, gender, birth date, telecom and addresses.
    pub fn to_fhir(&self) -> Patient {
        let mut identifier: Vec<Identifier> = self
            .ins
            .iter()
            .map(|(kind, value)| Identifier::ins(*kind, value.clone()))
            .collect();
        identifier.extend(
            self.local_ids()
                .map(|id| id.to_identifier().with_type(systems::V2_0203, "PI")),
        );
        Patient {
            identifier,
            name: self.names.clone(),
            telecom: self.telecom.clone(),
            gender: self.gender,
            birth_date: self.birth_date.clone(),
            address: self.address.clone(),
            ..Patient::new()
        }
    }
}

/// A health professional (or other person) in a role: `assignedAuthor`, `assignedEntity`,
/// `associatedEntity`...
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Person {
    /// Identifiers (`root` `1.2.250.1.71.4.2.1`: IdNat_PS, i.e. `8` + RPPS or `0` + ADELI).
    pub ids: Vec<Ii>,
    /// Profession / specialty (`G15_10/SM36`...).
    pub code: Option<Cd>,
    /// Names.
    pub names: Vec<HumanName>,
    /// Phone numbers, e-mail addresses.
    pub telecom: Vec<ContactPoint>,
    /// Name of the organization the person acts for.
    pub organization: Option<String>,
    /// Identifier of that organization (IdNat_Struct...).
    pub organization_id: Option<Ii>,
}

impl Person {
    /// The national PS identifier (extension of the id whose root is IdNat_PS).
    pub fn idnat_ps(&self) -> Option<&str> {
        self.ids
            .iter()
            .find(|id| id.root == oids::IDNAT_PS)
            .and_then(|id| id.extension.as_deref())
    }

    /// The RPPS number: the IdNat_PS without its leading `8` (an ADELI-based IdNat_PS,
    /// starting with `0`, has none).
    pub fn rpps(&self) -> Option<&str> {
        self.idnat_ps().and_then(|id| id.strip_prefix('8'))
    }

    /// The FHIR [`Practitioner`]: identifiers (IdNat_PS as `urn:oid:1.2.250.1.71.4.2.1`),
    /// names and telecom. (The specialty, [`Person::code`], is the caller's to place.)
    pub fn to_practitioner(&self) -> Practitioner {
        Practitioner {
            identifier: self
                .ids
                .iter()
                .filter(|id| id.extension.is_some())
                .map(Ii::to_identifier)
                .collect(),
            name: self.names.clone(),
            telecom: self.telecom.clone(),
            ..Practitioner::new()
        }
    }

    /// A one-line label: `DR Charles MULLER`.
    pub fn label(&self) -> Option<String> {
        let n = self.names.first()?;
        if let Some(t) = &n.text {
            return Some(t.clone());
        }
        let parts: Vec<&str> = n
            .suffix
            .iter()
            .chain(&n.given)
            .map(String::as_str)
            .chain(n.family.as_deref())
            .collect();
        non_blank(&parts.join(" "))
    }
}

/// Reads a role element (`assignedAuthor`, `assignedEntity`, `associatedEntity`,
/// `intendedRecipient`...): its ids, code, telecom, the person's name (`assignedPerson`,
/// `associatedPerson`, `informationRecipient`...) and the organization (`representedOrganization`,
/// `scopingOrganization`...).
pub fn person(role: Node) -> Person {
    let person_node = role.children().find(|c| {
        [
            "assignedPerson",
            "associatedPerson",
            "informationRecipient",
            "relatedPerson",
        ]
        .iter()
        .any(|n| is(*c, n))
    });
    let org = role.children().find(|c| {
        [
            "representedOrganization",
            "scopingOrganization",
            "receivedOrganization",
            "representedCustodianOrganization",
        ]
        .iter()
        .any(|n| is(*c, n))
    });
    Person {
        ids: children(role, "id").filter_map(ii).collect(),
        code: child(role, "code").map(cd).filter(|c| c.code.is_some()),
        names: person_node
            .into_iter()
            .flat_map(|p| children(p, "name"))
            .flat_map(pn)
            .collect(),
        telecom: telecoms(role),
        organization: org.and_then(|o| child(o, "name")).and_then(text_of),
        organization_id: org.and_then(|o| children(o, "id").find_map(ii)),
    }
}

/// A participation of a person in the document: author, participant, performer,
/// legal authenticator...
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Participation {
    /// The `typeCode` (`RESP`, `REFB`, `PRF`, `INF`, `CON`...; `AUT` for authors, `LA` for
    /// the legal authenticator).
    pub type_code: Option<String>,
    /// The `functionCode` (with its original text, e.g. "PS Coordonnateur de la RCP").
    pub function: Option<Cd>,
    /// The `time` (FHIR dateTime; an IVL_TS gives its start).
    pub time: Option<String>,
    /// The person.
    pub person: Person,
    /// The participation element itself.
    pub location: String,
}

pub(super) fn participation(node: Node, role: Node, default_type: &str) -> Participation {
    let function = child(node, "functionCode").map(cd);
    Participation {
        type_code: attr(node, "typeCode").or_else(|| Some(default_type.to_string())),
        function: function.filter(|f| f.code.is_some() || f.original_text.is_some()),
        time: child(node, "time").and_then(|t| ts(t).or_else(|| ivl_ts(t).and_then(|p| p.start))),
        person: person(role),
        location: location(node),
    }
}
