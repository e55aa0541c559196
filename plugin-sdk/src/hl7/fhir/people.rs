//! PID → Patient and the envelope's patient identity; XCN/CNN → Practitioner; XON →
//! Organization reference; PV1 → Encounter; EI → Identifier; v2 table 0203 identifier types.

use std::borrow::Cow;

use super::text::{Comps, comp, fcomp, is_oid, is_uri, owned, sub, urn, urn_oid};
use crate::fhir::{
    Address, AddressType, AddressUse, AdministrativeGender, CodeableConcept, Coding, ContactPoint,
    ContactPointSystem, ContactPointUse, Encounter, EncounterStatus, Extension, ExtensionValue,
    HumanName, Identifier, NameUse, Patient, Period, Practitioner, Reference, systems,
};
use crate::hl7::{Component, Field, Repetition, Segment, datetime};
use crate::malformed;
use crate::record::{ins_key_is_valid, ins_kind_from_oid};
use crate::types::{AdaptError, Identifier as EnvelopeId, Ins, InsKind, PatientIdentity};

/// Prefix of the identifier systems made up for authorities known only by name.
const LOCAL_ID_PREFIX: &str = "urn:passerelle:id:";

/// FR Core identity reliability extension (FR Core `fr-core-identity-reliability`, as used by
/// the ANS ePrescription IG example `TradPN13FHIR-...METFORMINE-GLICLAZIDE.fsh`), with its
/// `identityStatus` sub-extension; codes from the FR Core identity-status code system (FR Core
/// example `FRCorePatientINSExample.fsh`).
const FR_CORE_IDENTITY_RELIABILITY: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability";
/// FR Core identity status code system (`VALI`, `QUAL`, `PROV`...).
const FR_CORE_IDENTITY_STATUS: &str =
    "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status";

/// How identifier systems are chosen for authorities without an OID.
///
/// ```
/// use passerelle_plugin_sdk::hl7::fhir::IdPolicy;
///
/// let ids = IdPolicy { local_id_system: None, default_authority: "CHU" };
/// assert_eq!(ids.default_authority, "CHU");
/// ```
pub struct IdPolicy<'a> {
    /// `local_id_system` setting.
    pub local_id_system: Option<&'a str>,
    /// Name of the authority to assume when an identifier names none (MSH-4, else MSH-3).
    pub default_authority: &'a str,
}

/// The authority a message's identifiers belong to when they name none
/// ([`IdPolicy::default_authority`]): the sending facility (MSH-4.1), else the sending
/// application (MSH-3.1); empty when the message names neither.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
/// use passerelle_plugin_sdk::hl7::fhir::default_authority;
///
/// let msg = Message::parse(b"MSH|^~\\&|LABAPP|CHU^1.2.3^ISO")?;
/// assert_eq!(default_authority(&msg.msh()), "CHU");
/// let msg = Message::parse(b"MSH|^~\\&|LABAPP|")?;
/// assert_eq!(default_authority(&msg.msh()), "LABAPP");
/// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
/// ```
pub fn default_authority<'m>(msh: &Segment<'m>) -> Cow<'m, str> {
    let facility = fcomp(&msh.field(4), 1);
    if facility.is_empty() {
        fcomp(&msh.field(3), 1)
    } else {
        facility
    }
}

/// The OID of an HD (namespace `&` universal id `&` type), when it has one.
fn hd_oid<'m>(hd: &Component<'m>) -> Option<Cow<'m, str>> {
    let uid = sub(hd, 2);
    if is_oid(&uid) {
        return Some(uid);
    }
    let ns = sub(hd, 1);
    is_oid(&ns).then_some(ns)
}

impl IdPolicy<'_> {
    /// The identifier system of an assigning authority (HD): `urn:oid:` of its OID, its URI,
    /// else the `local_id_system` setting, else `urn:passerelle:id:<name>`.
    ///
    /// ```
    /// use passerelle_plugin_sdk::hl7::Message;
    /// use passerelle_plugin_sdk::hl7::fhir::IdPolicy;
    ///
    /// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||1^^^HOP~2^^^&1.2.3&ISO~3")?;
    /// let pid3 = msg.first("PID").expect("PID").field(3);
    /// let hd = |n| pid3.repetition(n).component(4);
    /// let ids = IdPolicy { local_id_system: None, default_authority: "CHU" };
    /// assert_eq!(ids.system(&hd(1)), "urn:passerelle:id:HOP");
    /// assert_eq!(ids.system(&hd(2)), "urn:oid:1.2.3");
    /// assert_eq!(ids.system(&hd(3)), "urn:passerelle:id:CHU");
    /// let fixed = IdPolicy { local_id_system: Some("urn:example:ids"), default_authority: "CHU" };
    /// assert_eq!(fixed.system(&hd(1)), "urn:example:ids");
    /// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
    /// ```
    pub fn system(&self, hd: &Component<'_>) -> String {
        if let Some(oid) = hd_oid(hd) {
            return urn_oid(&oid);
        }
        let uid = sub(hd, 2);
        let uid_type = sub(hd, 3);
        if (uid_type.eq_ignore_ascii_case("URI") || uid_type.eq_ignore_ascii_case("URL"))
            && is_uri(&uid)
        {
            return uid.into_owned();
        }
        if let Some(s) = self.local_id_system {
            return s.to_string();
        }
        let ns = sub(hd, 1);
        let name: &str = if !ns.is_empty() {
            &ns
        } else if !uid.is_empty() {
            &uid
        } else {
            self.default_authority
        };
        urn(
            LOCAL_ID_PREFIX,
            if name.is_empty() { "local" } else { name },
        )
    }
}

/// The Patient and the envelope identity.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
/// use passerelle_plugin_sdk::hl7::fhir::{IdPolicy, PatientInfo, patient};
///
/// let msg = Message::parse(b"MSH|^~\\&|A\rPID|1||123^^^HOP||DUPONT^Jean")?;
/// let ids = IdPolicy { local_id_system: None, default_authority: "CHU" };
/// let PatientInfo { resource, identity } =
///     patient(&msg.first("PID").expect("PID"), &ids).expect("patient");
/// assert_eq!(resource.name[0].family.as_deref(), Some("DUPONT"));
/// assert_eq!(identity.local_ids[0].value, "123");
/// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
/// ```
#[derive(Clone)]
pub struct PatientInfo {
    /// The FHIR Patient.
    pub resource: Patient,
    /// The envelope's patient identity: the INS, else the local identifiers.
    pub identity: PatientIdentity,
}

/// PID → Patient: identifiers (PID-3, else PID-2/PID-4), names, birth date, gender,
/// addresses, telecoms, identity reliability.
/// An INS (NIR/NIA OID as authority) with a bad key, or no identifier at all, is an
/// [`AdaptError::Malformed`] located at the field.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
/// use passerelle_plugin_sdk::hl7::fhir::{IdPolicy, patient};
/// use passerelle_plugin_sdk::types::InsKind;
///
/// let raw = b"MSH|^~\\&|LAB|CHU\r\
/// PID|1||279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS~123^^^HOP^PI\
/// ||DUPONT^Jean||19790328|M";
/// let msg = Message::parse(raw)?;
/// let ids = IdPolicy { local_id_system: None, default_authority: "CHU" };
/// let info = patient(&msg.first("PID").expect("PID"), &ids).expect("patient");
/// assert_eq!(info.resource.birth_date.as_deref(), Some("1979-03-28"));
/// assert_eq!(info.resource.identifier.len(), 2);
/// let ins = info.identity.ins.expect("INS");
/// assert_eq!((ins.kind, ins.value.as_str()), (InsKind::NirTest, "279035121518989"));
/// assert_eq!(info.identity.local_ids[0].system, "urn:passerelle:id:HOP");
///
/// let none = Message::parse(b"MSH|^~\\&|A\rPID|1||||DUPONT")?;
/// assert!(patient(&none.first("PID").expect("PID"), &ids).is_err());
/// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
/// ```
pub fn patient(pid: &Segment<'_>, ids: &IdPolicy<'_>) -> Result<PatientInfo, AdaptError> {
    let mut identifiers = Vec::new();
    let mut identity = PatientIdentity {
        ins: None,
        local_ids: Vec::new(),
    };
    for n in [3, 2, 4] {
        if n != 3 && !identifiers.is_empty() {
            break;
        }
        for rep in pid.field(n).repetitions() {
            let c = Comps::of(&rep);
            let value = c.get(1);
            if value.is_empty() {
                continue;
            }
            let hd = c.comp(4);
            let kind = hd_oid(&hd).and_then(|oid| ins_kind_from_oid(&oid));
            if let Some(kind) = kind {
                if !ins_key_is_valid(&value) {
                    return Err(malformed(
                        pid.location(n, 0),
                        format!("INS {value:?} is not 13 characters plus a valid 2-digit key"),
                    ));
                }
                identifiers.push(Identifier::ins(kind, value.as_ref()));
                // Keep the first INS, but a NIR wins over a temporary NIA.
                let replace = match &identity.ins {
                    None => true,
                    Some(i) => i.kind == InsKind::Nia && kind != InsKind::Nia,
                };
                if replace {
                    identity.ins = Some(Ins {
                        kind,
                        value: value.to_string(),
                    });
                }
                continue;
            }
            let system = ids.system(&hd);
            identity.local_ids.push(EnvelopeId {
                system: system.clone(),
                value: value.to_string(),
            });
            identifiers.push(Identifier {
                type_: identifier_type(&c.get(5)),
                ..Identifier::new(system, value.into_owned())
            });
        }
    }
    if identifiers.is_empty() {
        return Err(malformed(pid.location(3, 0), "no patient identifier"));
    }
    let mut extension = Vec::new();
    for rep in pid.field(32).repetitions() {
        let code = comp(&rep, 1);
        if matches!(code.as_ref(), "VALI" | "QUAL" | "PROV") {
            extension.push(Extension::complex(
                FR_CORE_IDENTITY_RELIABILITY,
                vec![Extension::new(
                    "identityStatus",
                    ExtensionValue::Coding(Coding::new(FR_CORE_IDENTITY_STATUS, code.as_ref())),
                )],
            ));
            break;
        }
    }
    let resource = Patient {
        extension,
        identifier: identifiers,
        name: pid.field(5).repetitions().filter_map(|r| xpn(&r)).collect(),
        telecom: telecoms(&pid.field(13), ContactPointUse::Home)
            .chain(telecoms(&pid.field(14), ContactPointUse::Work))
            .collect(),
        gender: gender(&pid.field(8).value()),
        birth_date: datetime::to_fhir_date(&pid.field(7).value()),
        address: pid
            .field(11)
            .repetitions()
            .filter_map(|r| xad(&r))
            .collect(),
        ..Patient::new()
    };
    Ok(PatientInfo { resource, identity })
}

/// PID-8: M → male, F → female, O → other, U/A/N → unknown.
fn gender(code: &str) -> Option<AdministrativeGender> {
    match code.trim() {
        "M" => Some(AdministrativeGender::Male),
        "F" => Some(AdministrativeGender::Female),
        "O" => Some(AdministrativeGender::Other),
        "U" | "A" | "N" => Some(AdministrativeGender::Unknown),
        _ => None,
    }
}

/// XPN → HumanName; name type (7) per the v2-to-FHIR ConceptMap for table 0200 (L official,
/// D usual, M maiden, N nickname, S anonymous, BAD/NOUSE old, TEMP temp; B, the French birth
/// name, official).
fn xpn(rep: &Repetition<'_>) -> Option<HumanName> {
    let c = Comps::of(rep);
    let family = sub(&c.comp(1), 1);
    let mut given: Vec<String> = Vec::new();
    for n in [2, 3] {
        let g = comp(rep, n);
        if !g.is_empty() && !given.iter().any(|x| *x == g) {
            given.push(g.into_owned());
        }
    }
    if family.is_empty() && given.is_empty() {
        return None;
    }
    let use_ = match c.get(7).as_ref() {
        "L" | "B" => Some(NameUse::Official),
        "D" => Some(NameUse::Usual),
        "M" => Some(NameUse::Maiden),
        "N" => Some(NameUse::Nickname),
        "S" => Some(NameUse::Anonymous),
        "BAD" | "NOUSE" => Some(NameUse::Old),
        "TEMP" => Some(NameUse::Temp),
        _ => None,
    };
    Some(HumanName {
        use_,
        family: owned(family),
        given,
        prefix: owned(c.get(5)).into_iter().collect(),
        suffix: owned(c.get(4)).into_iter().collect(),
        ..Default::default()
    })
}

/// XAD → Address. Birth places (`BDL`, `BR`) are not addresses of the patient: skipped.
fn xad(rep: &Repetition<'_>) -> Option<Address> {
    let c = Comps::of(rep);
    let kind = c.get(7);
    if matches!(kind.as_ref(), "BDL" | "BR") {
        return None;
    }
    let mut line = Vec::new();
    let street = c.comp(1);
    let parts: Vec<Cow<'_, str>> = street
        .subcomponents()
        .map(|s| s.value())
        .filter(|s| !s.trim().is_empty())
        .collect();
    if !parts.is_empty() {
        line.push(parts.iter().map(|p| p.trim()).collect::<Vec<_>>().join(" "));
    }
    if let Some(other) = owned(c.get(2)) {
        line.push(other);
    }
    let (use_, type_) = match kind.as_ref() {
        "H" | "P" => (Some(AddressUse::Home), None),
        "B" | "O" => (Some(AddressUse::Work), None),
        "C" => (Some(AddressUse::Temp), None),
        "BA" => (Some(AddressUse::Old), None),
        "M" => (None, Some(AddressType::Postal)),
        _ => (None, None),
    };
    let address = Address {
        use_,
        type_,
        line,
        city: owned(c.get(3)),
        state: owned(c.get(4)),
        postal_code: owned(c.get(5)),
        country: owned(c.get(6)),
        ..Default::default()
    };
    let empty = address.line.is_empty()
        && address.city.is_none()
        && address.state.is_none()
        && address.postal_code.is_none()
        && address.country.is_none();
    (!empty).then_some(address)
}

/// XTN repetitions → ContactPoints; `default_use` for PID-13 (home) / PID-14 (work).
fn telecoms<'m>(
    field: &Field<'m>,
    default_use: ContactPointUse,
) -> impl Iterator<Item = ContactPoint> + use<'m> {
    field
        .repetitions()
        .filter_map(move |rep| xtn(&rep, default_use))
}

fn xtn(rep: &Repetition<'_>, default_use: ContactPointUse) -> Option<ContactPoint> {
    let c = Comps::of(rep);
    let use_code = c.get(2);
    let equipment = c.get(3);
    let is_email = use_code == "NET"
        || equipment.eq_ignore_ascii_case("Internet")
        || equipment.eq_ignore_ascii_case("X.400");
    let value = if is_email {
        let email = c.get(4);
        if email.is_empty() { c.get(1) } else { email }
    } else {
        let unformatted = c.get(12);
        let first = c.get(1);
        if !first.is_empty() {
            first
        } else if !unformatted.is_empty() {
            unformatted
        } else {
            let (country, area, local, ext) = (c.get(5), c.get(6), c.get(7), c.get(8));
            let mut s = String::new();
            if !country.is_empty() {
                s.push('+');
                s.push_str(&country);
            }
            for part in [&area, &local] {
                if !part.is_empty() {
                    if !s.is_empty() {
                        s.push(' ');
                    }
                    s.push_str(part);
                }
            }
            if !ext.is_empty() && !s.is_empty() {
                s.push_str(" x");
                s.push_str(&ext);
            }
            Cow::Owned(s)
        }
    };
    if value.is_empty() {
        return None;
    }
    let system = if is_email {
        ContactPointSystem::Email
    } else {
        match equipment.as_ref() {
            "FX" => ContactPointSystem::Fax,
            "BP" => ContactPointSystem::Pager,
            _ => ContactPointSystem::Phone,
        }
    };
    let use_ = if equipment == "CP" {
        ContactPointUse::Mobile
    } else {
        match use_code.as_ref() {
            "PRN" | "ORN" | "VHN" => ContactPointUse::Home,
            "WPN" => ContactPointUse::Work,
            _ => default_use,
        }
    };
    Some(ContactPoint::new(system, value.into_owned()).with_use(use_))
}

// --- Practitioners and organizations ---

fn practitioner_identifier(
    id: &str,
    hd: Option<&Component<'_>>,
    authority_parts: Option<(&str, &str)>,
    type_code: &str,
) -> Option<Identifier> {
    let id = id.trim();
    if id.is_empty() {
        return None;
    }
    // The authority: an HD component (XCN-9) or subcomponents (CNN-9..11).
    let (ns, uid) = match (hd, authority_parts) {
        (Some(hd), _) => (sub(hd, 1).into_owned(), sub(hd, 2).into_owned()),
        (None, Some((ns, uid))) => (ns.trim().to_string(), uid.trim().to_string()),
        _ => (String::new(), String::new()),
    };
    let system = if is_oid(&uid) {
        if uid == "1.2.250.1.71.4.2.1" {
            Some(systems::IDNAT_PS.to_string())
        } else {
            Some(urn_oid(&uid))
        }
    } else if is_oid(&ns) {
        Some(urn_oid(&ns))
    } else if !ns.is_empty() {
        Some(urn(LOCAL_ID_PREFIX, &ns))
    } else if !uid.is_empty() {
        Some(urn(LOCAL_ID_PREFIX, &uid))
    } else {
        // No authority: a bare value (the sender's own ids).
        None
    };
    Some(Identifier {
        system,
        value: Some(id.to_string()),
        type_: identifier_type(type_code),
        ..Default::default()
    })
}

fn person_name(
    family: &str,
    given: &str,
    middle: &str,
    suffix: &str,
    prefix: &str,
) -> Option<HumanName> {
    let (family, given, middle) = (family.trim(), given.trim(), middle.trim());
    if family.is_empty() && given.is_empty() {
        return None;
    }
    Some(HumanName {
        family: (!family.is_empty()).then(|| family.to_string()),
        given: [given, middle]
            .into_iter()
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect(),
        prefix: [prefix.trim()]
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        suffix: [suffix.trim()]
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        ..Default::default()
    })
}

/// A Practitioner with this identifier and name; `None` when both are missing.
fn practitioner(identifier: Option<Identifier>, name: Option<HumanName>) -> Option<Practitioner> {
    if identifier.is_none() && name.is_none() {
        return None;
    }
    Some(Practitioner {
        identifier: identifier.into_iter().collect(),
        name: name.into_iter().collect(),
        ..Practitioner::new()
    })
}

/// XCN (or v2.2 CN) → Practitioner: id (1) with its authority (9) — RPPS/IdNat_PS system
/// when the authority OID is 1.2.250.1.71.4.2.1 —, name (2-6), identifier type (13).
///
/// ```
/// use passerelle_plugin_sdk::fhir::systems;
/// use passerelle_plugin_sdk::hl7::Message;
/// use passerelle_plugin_sdk::hl7::fhir::xcn;
///
/// let raw = b"MSH|^~\\&|A\r\
/// PV1|1|O|||||810001234567^MARTIN^Paul^^^Dr^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^^^^RPPS";
/// let msg = Message::parse(raw)?;
/// let doctor = xcn(&msg.first("PV1").expect("PV1").field(7).repetition(1)).expect("XCN");
/// assert_eq!(doctor.identifier[0].system.as_deref(), Some(systems::IDNAT_PS));
/// assert_eq!(doctor.identifier[0].value.as_deref(), Some("810001234567"));
/// assert_eq!(doctor.name[0].given, ["Paul"]);
/// assert_eq!(doctor.name[0].prefix, ["Dr"]);
/// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
/// ```
pub fn xcn(rep: &Repetition<'_>) -> Option<Practitioner> {
    let c = Comps::of(rep);
    let hd = c.comp(9);
    let identifier = practitioner_identifier(&c.get(1), Some(&hd), None, &c.get(13));
    let name = person_name(
        &sub(&c.comp(2), 1),
        &c.get(3),
        &c.get(4),
        &c.get(5),
        &c.get(6),
    );
    practitioner(identifier, name)
}

/// NDL (OBR-32..35): CNN in the subcomponents of component 1 (`id&family&given&middle&suffix&
/// prefix&degree&table&authority ns&uid&type`); v2.2 messages send a plain CN instead.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
/// use passerelle_plugin_sdk::hl7::fhir::ndl;
///
/// let raw = format!("MSH|^~\\&|A\rOBR|1{}|12345&MARTIN&Paul&&&Dr&&&&1.2.3.4", "|".repeat(30));
/// let msg = Message::parse(raw.as_bytes())?;
/// let obr32 = msg.first("OBR").expect("OBR").field(32);
/// let interpreter = ndl(&obr32).expect("NDL");
/// assert_eq!(interpreter.identifier[0].system.as_deref(), Some("urn:oid:1.2.3.4"));
/// assert_eq!(interpreter.name[0].family.as_deref(), Some("MARTIN"));
/// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
/// ```
pub fn ndl(field: &Field<'_>) -> Option<Practitioner> {
    let rep = field.repetition(1);
    let c1 = rep.component(1);
    if c1.subcomponent_count() <= 1 {
        return xcn(&rep);
    }
    let s = |n| sub(&c1, n);
    let (ns, uid) = (s(9), s(10));
    let identifier = practitioner_identifier(&s(1), None, Some((&ns, &uid)), "");
    let name = person_name(&s(2), &s(3), &s(4), &s(5), &s(6));
    practitioner(identifier, name)
}

/// XON (OBX-23...) → a logical reference to the Organization: name as display, organization
/// identifier (10) with its authority (6).
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
/// use passerelle_plugin_sdk::hl7::fhir::{IdPolicy, xon};
///
/// let raw = b"MSH|^~\\&|A\rZOR|LABO CENTRAL^^^^^&1.2.250.1.71.4.2.2&ISO^FINEG^^^330000001";
/// let msg = Message::parse(raw)?;
/// let ids = IdPolicy { local_id_system: None, default_authority: "CHU" };
/// let org = xon(&msg.first("ZOR").expect("ZOR").field(1).repetition(1), &ids).expect("XON");
/// assert_eq!(org.type_.as_deref(), Some("Organization"));
/// assert_eq!(org.display.as_deref(), Some("LABO CENTRAL"));
/// let id = org.identifier.expect("identifier");
/// assert_eq!(id.system.as_deref(), Some("urn:oid:1.2.250.1.71.4.2.2"));
/// assert_eq!(id.value.as_deref(), Some("330000001"));
/// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
/// ```
pub fn xon(rep: &Repetition<'_>, ids: &IdPolicy<'_>) -> Option<Reference> {
    let c = Comps::of(rep);
    let name = c.get(1);
    let id = c.get(10);
    let id = if id.is_empty() { c.get(3) } else { id };
    if name.is_empty() && id.is_empty() {
        return None;
    }
    let identifier = (!id.is_empty()).then(|| {
        let hd = c.comp(6);
        let has_authority = !hd.is_empty();
        Identifier {
            system: has_authority.then(|| ids.system(&hd)),
            value: Some(id.to_string()),
            type_: identifier_type(&c.get(7)),
            ..Default::default()
        }
    });
    Some(Reference {
        type_: Some("Organization".to_string()),
        identifier,
        display: owned(name),
        ..Default::default()
    })
}

/// EI (entity id ^ namespace ^ universal id ^ type) → Identifier of a type (PLAC, FILL...):
/// system `urn:oid:` when the universal id is an OID, else the namespace as assigner.
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
/// use passerelle_plugin_sdk::hl7::fhir::ei;
///
/// let msg = Message::parse(b"MSH|^~\\&|A\rORC|NW|CMD42^DPI^1.2.3.4^ISO|F7^LAB")?;
/// let orc = msg.first("ORC").expect("ORC");
/// let placer = ei(&orc.field(2).repetition(1), "PLAC").expect("EI");
/// assert_eq!(placer.system.as_deref(), Some("urn:oid:1.2.3.4"));
/// assert_eq!(placer.value.as_deref(), Some("CMD42"));
/// let filler = ei(&orc.field(3).repetition(1), "FILL").expect("EI");
/// assert_eq!(filler.system, None);
/// assert_eq!(filler.assigner.and_then(|a| a.display).as_deref(), Some("LAB"));
/// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
/// ```
pub fn ei(rep: &Repetition<'_>, type_code: &str) -> Option<Identifier> {
    ei_parts(&comp(rep, 1), &comp(rep, 2), &comp(rep, 3), type_code)
}

/// An EI held in the subcomponents of a component (EIP parts, SPM-2).
///
/// ```
/// use passerelle_plugin_sdk::hl7::Message;
/// use passerelle_plugin_sdk::hl7::fhir::ei_sub;
///
/// let msg = Message::parse(b"MSH|^~\\&|A\rSPM|1|P1&LAB&1.2.3.4&ISO^F1&LAB")?;
/// let spm2 = msg.first("SPM").expect("SPM").field(2).repetition(1);
/// let placer = ei_sub(&spm2.component(1), "PLAC").expect("EI");
/// assert_eq!(placer.system.as_deref(), Some("urn:oid:1.2.3.4"));
/// assert_eq!(placer.value.as_deref(), Some("P1"));
/// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
/// ```
pub fn ei_sub(c: &Component<'_>, type_code: &str) -> Option<Identifier> {
    ei_parts(&sub(c, 1), &sub(c, 2), &sub(c, 3), type_code)
}

fn ei_parts(value: &str, ns: &str, uid: &str, type_code: &str) -> Option<Identifier> {
    if value.is_empty() {
        return None;
    }
    let system = if is_oid(uid) {
        Some(urn_oid(uid))
    } else if is_oid(ns) {
        Some(urn_oid(ns))
    } else {
        None
    };
    let assigner = (system.is_none() && !ns.is_empty()).then(|| {
        Box::new(Reference {
            display: Some(ns.to_string()),
            ..Default::default()
        })
    });
    Some(Identifier {
        type_: identifier_type(type_code),
        system,
        value: Some(value.to_string()),
        assigner,
        ..Default::default()
    })
}

/// PV1 → Encounter: class from PV1-2 (I → IMP, O → AMB, E → EMER, else AMB; v3 ActCode),
/// visit number PV1-19, period PV1-44/45. `None` when PV1-2 and PV1-19 are both empty.
///
/// ```
/// use passerelle_plugin_sdk::fhir::{EncounterStatus, Reference};
/// use passerelle_plugin_sdk::hl7::Message;
/// use passerelle_plugin_sdk::hl7::fhir::{IdPolicy, encounter};
///
/// let raw = format!(
///     "MSH|^~\\&|A\rPV1|1|I{}|V123^^^HOP{}|202401310830",
///     "|".repeat(16),
///     "|".repeat(24)
/// );
/// let msg = Message::parse(raw.as_bytes())?;
/// let ids = IdPolicy { local_id_system: None, default_authority: "CHU" };
/// let pv1 = msg.first("PV1").expect("PV1");
/// let stay = encounter(&pv1, Reference::to("urn:uuid:p"), &ids, "+01:00").expect("PV1");
/// assert_eq!(stay.status, EncounterStatus::InProgress);
/// assert_eq!(stay.identifier[0].system.as_deref(), Some("urn:passerelle:id:HOP"));
/// assert_eq!(stay.identifier[0].value.as_deref(), Some("V123"));
/// let start = stay.period.and_then(|p| p.start);
/// assert_eq!(start.as_deref(), Some("2024-01-31T08:30:00+01:00"));
/// # Ok::<(), passerelle_plugin_sdk::hl7::ParseError>(())
/// ```
pub fn encounter(
    pv1: &Segment<'_>,
    subject: Reference,
    ids: &IdPolicy<'_>,
    tz: &str,
) -> Option<Encounter> {
    let class = pv1.field(2).value();
    let visit = pv1.field(19).repetition(1);
    let visit_number = comp(&visit, 1);
    if class.trim().is_empty() && visit_number.is_empty() {
        return None;
    }
    let class_code = match class.trim() {
        "I" => "IMP",
        "E" => "EMER",
        _ => "AMB",
    };
    let start = datetime::to_fhir_datetime(&pv1.field(44).value(), tz);
    let end = datetime::to_fhir_datetime(&pv1.field(45).value(), tz);
    let status = if end.is_some() {
        EncounterStatus::Finished
    } else if start.is_some() {
        EncounterStatus::InProgress
    } else {
        EncounterStatus::Unknown
    };
    let identifier = (!visit_number.is_empty()).then(|| Identifier {
        type_: identifier_type("VN"),
        ..Identifier::new(ids.system(&visit.component(4)), visit_number.into_owned())
    });
    Some(Encounter {
        identifier: identifier.into_iter().collect(),
        subject: Some(subject),
        period: (start.is_some() || end.is_some()).then_some(Period { start, end }),
        ..Encounter::new(status, Encounter::class_v3(class_code))
    })
}

// --- Identifier types (v2 table 0203) ---

/// The codes of v2 table 0203. A `match`, not a sorted table searched at run time: the
/// compiler compares each code as one or two loads, where a binary search calls `memcmp` (a
/// byte loop inside the sandbox) at every step.
#[rustfmt::skip] // one code per line otherwise: 134 lines
fn is_v2_0203(code: &str) -> bool {
    matches!(code,
        "ACSN" | "AM" | "AMA" | "AN" | "ANC" | "AND" | "ANON" | "ANT" | "APRN" | "ASID" | "BA" |
        "BC" | "BCT" | "BR" | "BRN" | "BSNR" | "CAII" | "CC" | "CONM" | "CY" | "CZ" | "DC" |
        "DCFN" | "DDS" | "DEA" | "DFN" | "DI" | "DL" | "DN" | "DO" | "DP" | "DPM" | "DR" | "DS" |
        "DSG" | "EI" | "EN" | "ESN" | "FDR" | "FDRFN" | "FGN" | "FI" | "FILL" | "GI" | "GIN" |
        "GL" | "GN" | "HC" | "IND" | "IRISTEM" | "JHN" | "L&I" | "LACSN" | "LANR" | "LI" | "LN" |
        "LR" | "MA" | "MB" | "MC" | "MCD" | "MCN" | "MCR" | "MCT" | "MD" | "MI" | "MR" | "MRT" |
        "MS" | "NBSNR" | "NCT" | "NE" | "NH" | "NI" | "NII" | "NIIP" | "NP" | "NPI" | "OBI" |
        "OD" | "PA" | "PC" | "PCN" | "PE" | "PEN" | "PGN" | "PHC" | "PHE" | "PHO" | "PI" | "PIN" |
        "PLAC" | "PN" | "PNT" | "PPIN" | "PPN" | "PRC" | "PRN" | "PT" | "QA" | "RI" | "RN" |
        "RPH" | "RR" | "RRI" | "RRP" | "SAMN" | "SB" | "SID" | "SL" | "SN" | "SNBSN" | "SNO" |
        "SP" | "SR" | "SRX" | "SS" | "STN" | "TAX" | "TN" | "TPR" | "TRL" | "U" | "UDI" | "UPIN" |
        "USID" | "VN" | "VP" | "VS" | "WC" | "WCN" | "WP" | "XV" | "XX"
    )
}

/// An identifier type code as a CodeableConcept: v2-0203 when it is a table code, else text.
fn identifier_type(code: &str) -> Option<CodeableConcept> {
    let code = code.trim();
    if code.is_empty() {
        return None;
    }
    if is_v2_0203(code) {
        Some(CodeableConcept::coded(systems::V2_0203, code, None))
    } else {
        Some(CodeableConcept::from_text(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_types_of_table_0203_are_coded_and_others_kept_as_text() {
        for code in ["ACSN", "AM", "MR", "NIIP", "XX", "L&I", "IRISTEM", "VN"] {
            let t = identifier_type(code).unwrap();
            assert_eq!(t.coding[0].code.as_deref(), Some(code), "{code}");
        }
        // Near misses: a prefix, an extension, another case, a longer code.
        for code in ["IDNPS", "A", "MRX", "mr", "ACSNX", "IRISTEMS"] {
            let t = identifier_type(code).unwrap();
            assert!(t.coding.is_empty(), "{code}");
            assert_eq!(t.text.as_deref(), Some(code));
        }
        assert!(identifier_type("  ").is_none());
    }
}
