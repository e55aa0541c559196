//! The P record → Patient (identifiers and INS, names, address, phones) and the envelope identity.

use passerelle_plugin_sdk::fhir::{
    Address, AdministrativeGender, ContactPoint, ContactPointSystem, HumanName, Identifier,
    NameUse, Patient, non_empty, systems,
};
use passerelle_plugin_sdk::prelude::*;
use passerelle_plugin_sdk::record::{ins_key_is_valid, ins_kind_from_oid};
use passerelle_plugin_sdk::types::{Identifier as EnvelopeId, Ins};

use super::{Ctx, envelope_ok};
use crate::parse::{self, Delims, Rep};
use crate::tz;

/// A patient's resource and envelope identity.
#[derive(Clone)]
pub struct PatientInfo {
    pub resource: Patient,
    pub identity: PatientIdentity,
}

/// Where an identifier field's value belongs.
enum Authority {
    Ins(InsKind),
    Oid(String),
}

/// An INS or other OID named in components 2+ of an identifier (`value~oid`, or HL7-like
/// `value~~~name&oid&ISO~type`).
fn authority(rep: &Rep<'_>) -> Option<Authority> {
    let mut other = None;
    for v in rep.values_from(2) {
        let oid = v.strip_prefix("urn:oid:").unwrap_or(&v);
        if let Some(kind) = ins_kind_from_oid(oid) {
            return Some(Authority::Ins(kind));
        }
        if other.is_none() && is_oid(oid) {
            other = Some(oid.to_string());
        }
    }
    other.map(Authority::Oid)
}

fn is_oid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3
        && matches!(b[0], b'0' | b'1' | b'2')
        && b.contains(&b'.')
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'.')
        && !s.ends_with('.')
        && !s.contains("..")
}

/// P → Patient and the envelope identity (see the crate docs).
pub fn patient(ctx: &Ctx<'_>, p: &parse::Record) -> Result<PatientInfo, AdaptError> {
    let d = ctx.d;
    let mut identifiers = Vec::new();
    let mut identity = PatientIdentity {
        ins: None,
        local_ids: Vec::new(),
    };
    let fields = [
        (2, &ctx.requester_ids, true),
        (3, &ctx.lab_ids, true),
        (4, &ctx.third_ids, false),
    ];
    for (n, default_system, internal) in fields {
        for rep in p.field(d, n).reps() {
            let value = rep.comp(1);
            if value.is_empty() {
                continue;
            }
            if !envelope_ok(&value) {
                return Err(malformed(
                    p.loc_field(n),
                    "patient identifier longer than 1 KiB or with control characters",
                ));
            }
            let system = match authority(&rep) {
                Some(Authority::Ins(kind)) => {
                    if !ins_key_is_valid(&value) {
                        return Err(malformed(
                            p.loc_field(n),
                            "the INS is not 13 characters plus a valid 2-digit key",
                        ));
                    }
                    identifiers.push(Identifier::ins(kind, value.as_str()));
                    // The first INS, but a NIR wins over a temporary NIA.
                    let replace = match &identity.ins {
                        None => true,
                        Some(i) => i.kind == InsKind::Nia && kind != InsKind::Nia,
                    };
                    if replace {
                        identity.ins = Some(Ins { kind, value });
                    }
                    continue;
                }
                Some(Authority::Oid(oid)) => format!("urn:oid:{oid}"),
                None => default_system.clone(),
            };
            let mut id = Identifier::new(system.clone(), value.clone());
            if internal {
                id = id.with_type(systems::V2_0203, "PI");
            }
            if !identifiers.contains(&id) {
                identifiers.push(id);
                identity.local_ids.push(EnvelopeId { system, value });
            }
        }
    }
    if identifiers.is_empty() {
        return Err(malformed(
            p.loc_field(2),
            "no patient identifier (P-2, P-3 and P-4 are empty)",
        ));
    }
    let resource = Patient {
        identifier: identifiers,
        name: names(d, p),
        telecom: p
            .field(d, 12)
            .reps()
            .filter_map(|r| non_empty(&r.joined(" ")))
            .map(|t| ContactPoint::new(ContactPointSystem::Phone, t))
            .collect(),
        gender: AdministrativeGender::from_v2(&p.field(d, 8).value()),
        birth_date: tz::date(&p.field(d, 7).value()),
        address: address(&p.field(d, 10).first()).into_iter().collect(),
        ..Patient::new()
    };
    Ok(PatientInfo { resource, identity })
}

/// P-5 (`name~first name~second first name~suffix~title`) and P-6 (birth name): the birth
/// name is `official`, the name used `usual`; a lone P-5 has no `use`.
fn names(d: &Delims, p: &parse::Record) -> Vec<HumanName> {
    let rep = p.field(d, 5).first();
    let family = rep.comp(1);
    let mut given: Vec<String> = Vec::new();
    for g in [rep.comp(2), rep.comp(3)] {
        if !g.is_empty() && !given.contains(&g) {
            given.push(g);
        }
    }
    let name = HumanName {
        family: non_empty(&family),
        given: given.clone(),
        suffix: non_empty(&rep.comp(4)).into_iter().collect(),
        prefix: non_empty(&rep.comp(5)).into_iter().collect(),
        ..Default::default()
    };
    let birth = p.field(d, 6).value();
    let has_name = name.family.is_some() || !name.given.is_empty();
    if birth.is_empty() {
        return if has_name { vec![name] } else { Vec::new() };
    }
    if birth.eq_ignore_ascii_case(&family) {
        return vec![name.with_use(NameUse::Official)];
    }
    let official = HumanName {
        family: Some(birth),
        given,
        ..Default::default()
    }
    .with_use(NameUse::Official);
    if has_name {
        vec![official, name.with_use(NameUse::Usual)]
    } else {
        vec![official]
    }
}

/// P-10: `street~complement~city~state~postal code~country`.
fn address(rep: &Rep<'_>) -> Option<Address> {
    let line: Vec<String> = [rep.comp(1), rep.comp(2)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let a = Address {
        line,
        city: non_empty(&rep.comp(3)),
        state: non_empty(&rep.comp(4)),
        postal_code: non_empty(&rep.comp(5)),
        country: non_empty(&rep.comp(6)),
        ..Default::default()
    };
    (a != Address::default()).then_some(a)
}
