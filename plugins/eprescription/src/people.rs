//! PID → Patient and the envelope's patient identity; XCN → Practitioner; PV1 → Encounter;
//! EI → Identifier.
//!
//! Copied from `plugins/hl7v2-lab/src/people.rs` (the SDK has no shared PID → Patient helper
//! yet), without the parts this adapter does not use (CNN/NDL, XON).

use std::borrow::Cow;

use passerelle_plugin_sdk::fhir::{
    Address, AddressType, AddressUse, AdministrativeGender, CodeableConcept, Coding, ContactPoint,
    ContactPointSystem, ContactPointUse, Encounter, EncounterStatus, Extension, ExtensionValue,
    HumanName, Identifier, NameUse, Patient, Period, Practitioner, Reference, systems,
};
use passerelle_plugin_sdk::hl7::{Component, Field, Repetition, Segment, datetime};
use passerelle_plugin_sdk::malformed;
use passerelle_plugin_sdk::record::{ins_key_is_valid, ins_kind_from_oid};
use passerelle_plugin_sdk::types::{
    AdaptError, Identifier as EnvelopeId, Ins, InsKind, PatientIdentity,
};

use crate::util::{comp, is_oid, is_uri, owned, sub, trim_cow, urn};

/// Prefix of the identifier systems made up for authorities known only by name.
pub const LOCAL_ID_PREFIX: &str = "urn:passerelle:id:";

/// FR Core identity reliability extension (FR Core `fr-core-identity-reliability`, as used by
/// the ANS ePrescription IG example `TradPN13FHIR-...METFORMINE-GLICLAZIDE.fsh`), with its
/// `identityStatus` sub-extension; codes from the FR Core identity-status code system (FR Core
/// example `FRCorePatientINSExample.fsh`).
pub const FR_CORE_IDENTITY_RELIABILITY: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability";
/// FR Core identity status code system (`VALI`, `QUAL`, `PROV`...).
pub const FR_CORE_IDENTITY_STATUS: &str =
    "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status";

/// How identifier systems are chosen for authorities without an OID.
pub struct IdPolicy<'a> {
    /// `local_id_system` setting.
    pub local_id_system: Option<&'a str>,
    /// Name of the authority to assume when an identifier names none (MSH-4, else MSH-3).
    pub default_authority: &'a str,
}

/// The OID of an HD (namespace `&` universal id `&` type), when it has one.
pub fn hd_oid<'m>(hd: &Component<'m>) -> Option<Cow<'m, str>> {
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
    pub fn system(&self, hd: &Component<'_>) -> String {
        if let Some(oid) = hd_oid(hd) {
            return format!("urn:oid:{oid}");
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
#[derive(Clone)]
pub struct PatientInfo {
    pub resource: Patient,
    pub identity: PatientIdentity,
}

/// PID → Patient: identifiers (PID-3, else PID-2/PID-4), names, birth date, gender,
/// addresses, telecoms, identity reliability.
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
            Some(format!("urn:oid:{uid}"))
        }
    } else if is_oid(&ns) {
        Some(format!("urn:oid:{ns}"))
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

/// XCN (or v2.2 CN) → Practitioner: id (1) with its authority (9) — RPPS/IdNat_PS system
/// when the authority OID is 1.2.250.1.71.4.2.1 —, name (2-6), identifier type (13).
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
    if identifier.is_none() && name.is_none() {
        return None;
    }
    Some(Practitioner {
        identifier: identifier.into_iter().collect(),
        name: name.into_iter().collect(),
        ..Practitioner::new()
    })
}

/// EI (entity id ^ namespace ^ universal id ^ type) → Identifier of a type (PLAC, FILL...):
/// system `urn:oid:` when the universal id is an OID, else the namespace as assigner.
pub fn ei(rep: &Repetition<'_>, type_code: &str) -> Option<Identifier> {
    ei_parts(&comp(rep, 1), &comp(rep, 2), &comp(rep, 3), type_code)
}

fn ei_parts(value: &str, ns: &str, uid: &str, type_code: &str) -> Option<Identifier> {
    if value.is_empty() {
        return None;
    }
    let system = if is_oid(uid) {
        Some(format!("urn:oid:{uid}"))
    } else if is_oid(ns) {
        Some(format!("urn:oid:{ns}"))
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

/// The components of a repetition, split once (composite types read many of them).
pub struct Comps<'m> {
    rep: Repetition<'m>,
    parts: [Option<Component<'m>>; 16],
}

impl<'m> Comps<'m> {
    pub fn of(rep: &Repetition<'m>) -> Self {
        let mut parts = [None; 16];
        for (i, c) in rep.components().take(16).enumerate() {
            parts[i] = Some(c);
        }
        Comps { rep: *rep, parts }
    }

    /// Component `n` (1-based); empty when missing.
    pub fn comp(&self, n: usize) -> Component<'m> {
        match self.parts.get(n.wrapping_sub(1)) {
            Some(Some(c)) => *c,
            Some(None) => self.rep.component(0),
            None => self.rep.component(n),
        }
    }

    /// Component `n`, unescaped (first subcomponent) and trimmed.
    pub fn get(&self, n: usize) -> Cow<'m, str> {
        let c = self.comp(n);
        if c.is_empty() {
            Cow::Borrowed("")
        } else {
            trim_cow(c.value())
        }
    }
}

// --- Identifier types (v2 table 0203) ---

/// Sorted (binary search).
const V2_0203: &[&str] = &[
    "ACSN", "AM", "AMA", "AN", "ANC", "AND", "ANON", "ANT", "APRN", "ASID", "BA", "BC", "BCT",
    "BR", "BRN", "BSNR", "CAII", "CC", "CONM", "CY", "CZ", "DC", "DCFN", "DDS", "DEA", "DFN", "DI",
    "DL", "DN", "DO", "DP", "DPM", "DR", "DS", "DSG", "EI", "EN", "ESN", "FDR", "FDRFN", "FGN",
    "FI", "FILL", "GI", "GIN", "GL", "GN", "HC", "IND", "IRISTEM", "JHN", "L&I", "LACSN", "LANR",
    "LI", "LN", "LR", "MA", "MB", "MC", "MCD", "MCN", "MCR", "MCT", "MD", "MI", "MR", "MRT", "MS",
    "NBSNR", "NCT", "NE", "NH", "NI", "NII", "NIIP", "NP", "NPI", "OBI", "OD", "PA", "PC", "PCN",
    "PE", "PEN", "PGN", "PHC", "PHE", "PHO", "PI", "PIN", "PLAC", "PN", "PNT", "PPIN", "PPN",
    "PRC", "PRN", "PT", "QA", "RI", "RN", "RPH", "RR", "RRI", "RRP", "SAMN", "SB", "SID", "SL",
    "SN", "SNBSN", "SNO", "SP", "SR", "SRX", "SS", "STN", "TAX", "TN", "TPR", "TRL", "U", "UDI",
    "UPIN", "USID", "VN", "VP", "VS", "WC", "WCN", "WP", "XV", "XX",
];

/// An identifier type code as a CodeableConcept: v2-0203 when it is a table code, else text.
pub fn identifier_type(code: &str) -> Option<CodeableConcept> {
    let code = code.trim();
    if code.is_empty() {
        return None;
    }
    if V2_0203.binary_search(&code).is_ok() {
        Some(CodeableConcept::coded(systems::V2_0203, code, None))
    } else {
        Some(CodeableConcept::from_text(code))
    }
}
