//! The policy's table: actors × patient settings × documents × modes → allow or deny reason.
//! Every row has a name; a failing run lists every failing row by name.

use super::*;
use DenyReason as R;

const INS: &str = "1800175123456";
const CARE: &str = "10000000001"; // care team member, médecin
const STRANGER: &str = "10000000002"; // no link to the patient (emergency physician)
const CONSENTED: &str = "10000000003"; // explicit consent, outside the care team
const BLOCKED: &str = "10000000004"; // blocked, yet in the care team and consented
const MT: &str = "10000000005"; // médecin traitant, in the care team
const GRANTED: &str = "10000000006"; // granted the médecin traitant's rights, in the care team
const AUTHOR: &str = "10000000007"; // author of the masked documents, in the care team
const COLLEAGUE: &str = "10000000008"; // same organisation as AUTHOR, in the care team
const REGULATOR: &str = "10000000009"; // SAMU regulating physician
const PHARMA: &str = "10000000010"; // pharmacien, in the care team
const REP: &str = "REP-1";
const ORG: &str = "750000001";

const LAB: &str = "11502-2";
const RX: &str = "57833-6";
const RCP: &str = "34794-8";
const IMG: &str = "18748-4";

fn actor(id: &str, role: Role, profession: Option<&str>, org: Option<&str>) -> Actor {
    Actor {
        id: id.to_owned(),
        role,
        profession: profession.map(str::to_owned),
        specialty: None,
        organisation: org.map(str::to_owned),
    }
}
fn doctor(id: &str) -> Actor {
    actor(id, Role::Professional, Some("medecin"), Some("750000999"))
}
fn pro(id: &str, profession: &str) -> Actor {
    actor(id, Role::Professional, Some(profession), None)
}
fn regulator() -> Actor {
    actor(
        REGULATOR,
        Role::SamuRegulator,
        Some("medecin"),
        Some("SAMU-75"),
    )
}
fn the_patient() -> Actor {
    actor(INS, Role::Patient, None, None)
}
fn rep(id: &str) -> Actor {
    actor(id, Role::LegalRepresentative, None, None)
}

/// The reference patient: informed, with a care team, a médecin traitant, one grant, one
/// consent, one block, one representative and one masked record.
fn base() -> PatientAccess {
    let set = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect();
    PatientAccess {
        informed: true,
        care_team: set(&[CARE, BLOCKED, MT, GRANTED, AUTHOR, COLLEAGUE, PHARMA]),
        consents: set(&[CONSENTED, BLOCKED]),
        blocked: set(&[BLOCKED]),
        medecin_traitant: Some(MT.to_owned()),
        mt_equivalent: set(&[GRANTED]),
        legal_representatives: set(&[REP]),
        masked: set(&["rec-patient-masked"]),
        ..PatientAccess::new()
    }
}
fn with(change: impl FnOnce(&mut PatientAccess)) -> PatientAccess {
    let mut p = base();
    change(&mut p);
    p
}

#[derive(Clone, Copy)]
struct Doc {
    id: &'static str,
    type_code: &'static str,
    masque_ps: bool,
    invisible_patient: bool,
    invisible_rep: bool,
}
fn doc(type_code: &'static str) -> Doc {
    Doc {
        id: "rec-plain",
        type_code,
        masque_ps: false,
        invisible_patient: false,
        invisible_rep: false,
    }
}
fn masque_ps() -> Doc {
    Doc {
        id: "rec-masque-ps",
        masque_ps: true,
        ..doc(LAB)
    }
}
fn patient_masked() -> Doc {
    Doc {
        id: "rec-patient-masked",
        ..doc(LAB)
    }
}
fn invisible_patient() -> Doc {
    Doc {
        invisible_patient: true,
        ..doc(LAB)
    }
}
fn invisible_rep() -> Doc {
    Doc {
        invisible_rep: true,
        ..doc(LAB)
    }
}
impl Doc {
    fn meta(&self) -> DocumentMeta<'static> {
        DocumentMeta {
            record_id: self.id,
            type_code: self.type_code,
            author: Some(AUTHOR),
            author_organisation: Some(ORG),
            masque_ps: self.masque_ps,
            invisible_patient: self.invisible_patient,
            invisible_rep_legaux: self.invisible_rep,
        }
    }
}

enum Op {
    Feed {
        qualified: bool,
    },
    Open,
    /// Through `can_see_record` with the reference patient's INS (and `can_see`, compared).
    See(Doc),
    Manage,
}

fn normal() -> Mode {
    Mode::Normal
}
fn glass(justification: &str) -> Mode {
    Mode::BreakGlass {
        justification: justification.to_owned(),
    }
}
fn regulation() -> Mode {
    Mode::Regulation
}

struct Case {
    name: &'static str,
    actor: Actor,
    patient: PatientAccess,
    mode: Mode,
    op: Op,
    expect: Result<(), DenyReason>,
}

fn case(
    name: &'static str,
    actor: Actor,
    patient: PatientAccess,
    mode: Mode,
    op: Op,
    expect: Result<(), DenyReason>,
) -> Case {
    Case {
        name,
        actor,
        patient,
        mode,
        op,
        expect,
    }
}

fn forbidden(profession: &str, type_code: &str) -> Result<(), DenyReason> {
    Err(R::MatrixForbidden {
        profession: profession.to_owned(),
        type_code: type_code.to_owned(),
    })
}

const OK: Result<(), DenyReason> = Ok(());
const URGENT: &str = "unconscious, admitted to the emergency room";

#[rustfmt::skip]
fn table() -> Vec<Case> {
    use Op::*;
    let feed = |qualified| Feed { qualified };
    vec![
        // R1 identity gate, R2 feed gate
        case("r1_feed_qualified_identity_allowed", doctor(CARE), base(), normal(), feed(true), OK),
        case("r1_feed_unqualified_identity_denied", doctor(CARE), base(), normal(), feed(false), Err(R::IdentityNotQualified)),
        case("r1_identity_checked_before_opposition", doctor(CARE), with(|p| p.feeding_opposition = true), normal(), feed(false), Err(R::IdentityNotQualified)),
        case("r2_feeding_opposition_blocks_writes", doctor(CARE), with(|p| p.feeding_opposition = true), normal(), feed(true), Err(R::FeedingOpposition)),
        case("r2_emergency_opposition_does_not_block_writes", doctor(CARE), with(|p| p.emergency_opposition = true), normal(), feed(true), OK),
        case("r2_closed_record_not_fed", doctor(CARE), with(|p| p.dmp_active = false), normal(), feed(true), Err(R::DmpClosed)),
        // R3 read gate: record open, block, then the mode
        case("r3_closed_record_denies_professional", doctor(CARE), with(|p| p.dmp_active = false), normal(), Open, Err(R::DmpClosed)),
        case("r3_closed_record_denies_patient", the_patient(), with(|p| p.dmp_active = false), normal(), Open, Err(R::DmpClosed)),
        case("r3_care_team_informed_allowed", doctor(CARE), base(), normal(), See(doc(LAB)), OK),
        case("r3_care_team_patient_not_informed_denied", doctor(CARE), with(|p| p.informed = false), normal(), See(doc(LAB)), Err(R::NoConsent)),
        case("r3_consent_outside_care_team_allowed", doctor(CONSENTED), base(), normal(), See(doc(LAB)), OK),
        case("r3_consent_without_information_allowed", doctor(CONSENTED), with(|p| p.informed = false), normal(), Open, OK),
        case("r3_stranger_without_consent_denied", doctor(STRANGER), base(), normal(), Open, Err(R::NoConsent)),
        case("r3_medecin_traitant_outside_care_team_needs_consent", doctor(MT), with(|p| { p.care_team.remove(MT); }), normal(), Open, Err(R::NoConsent)),
        case("r3_blocked_in_care_team_with_consent_denied", doctor(BLOCKED), base(), normal(), See(doc(LAB)), Err(R::Blocked)),
        case("r3_blocked_in_break_glass_denied", doctor(BLOCKED), base(), glass(URGENT), See(doc(LAB)), Err(R::Blocked)),
        case("r3_blocked_regulator_in_regulation_denied", regulator(), with(|p| { p.blocked.insert(REGULATOR.into()); }), regulation(), Open, Err(R::Blocked)),
        case("r3_blocked_medecin_traitant_denied", doctor(MT), with(|p| { p.blocked.insert(MT.into()); }), normal(), See(masque_ps()), Err(R::Blocked)),
        case("r3_break_glass_with_justification_allowed", doctor(STRANGER), base(), glass(URGENT), See(doc(LAB)), OK),
        case("r3_break_glass_without_justification_denied", doctor(STRANGER), base(), glass(""), Open, Err(R::MissingJustification)),
        case("r3_break_glass_blank_justification_denied", doctor(STRANGER), base(), glass("  \t "), Open, Err(R::MissingJustification)),
        case("r3_break_glass_emergency_opposition_denied", doctor(STRANGER), with(|p| p.emergency_opposition = true), glass(URGENT), Open, Err(R::EmergencyOpposition)),
        case("r3_break_glass_by_regulator_allowed", regulator(), base(), glass(URGENT), Open, OK),
        case("r3_break_glass_by_patient_denied", the_patient(), base(), glass(URGENT), Open, Err(R::BreakGlassNotProfessional)),
        case("r3_break_glass_by_representative_denied", rep(REP), base(), glass(URGENT), Open, Err(R::BreakGlassNotProfessional)),
        case("r3_regulator_in_regulation_without_consent_allowed", regulator(), with(|p| p.informed = false), regulation(), See(doc(RCP)), OK),
        case("r3_regulation_emergency_opposition_denied", regulator(), with(|p| p.emergency_opposition = true), regulation(), Open, Err(R::EmergencyOpposition)),
        case("r3_regulation_by_professional_denied", doctor(CARE), base(), regulation(), Open, Err(R::NotARegulator)),
        case("r3_regulation_by_patient_denied", the_patient(), base(), regulation(), Open, Err(R::NotARegulator)),
        case("r3_regulator_in_normal_mode_needs_consent", regulator(), base(), normal(), Open, Err(R::NoConsent)),
        case("r3_unlisted_representative_denied", rep("REP-OTHER"), base(), normal(), Open, Err(R::NotARepresentative)),
        case("r3_other_patient_denied", actor("2900175999999", Role::Patient, None, None), base(), normal(), See(doc(LAB)), Err(R::NotThePatient)),
        // R4 matrix
        case("r4_medecin_sees_every_type", doctor(CARE), base(), normal(), See(doc(RCP)), OK),
        case("r4_pharmacien_prescription_allowed", pro(PHARMA, "pharmacien"), base(), normal(), See(doc(RX)), OK),
        case("r4_pharmacien_lab_allowed", pro(PHARMA, "pharmacien"), base(), normal(), See(doc(LAB)), OK),
        case("r4_pharmacien_rcp_forbidden", pro(PHARMA, "pharmacien"), base(), normal(), See(doc(RCP)), forbidden("pharmacien", RCP)),
        case("r4_pharmacien_imaging_forbidden", pro(PHARMA, "pharmacien"), base(), normal(), See(doc(IMG)), forbidden("pharmacien", IMG)),
        case("r4_biologiste_prescription_forbidden", pro(PHARMA, "biologiste"), base(), normal(), See(doc(RX)), forbidden("biologiste", RX)),
        case("r4_infirmier_rcp_allowed", pro(PHARMA, "infirmier"), base(), normal(), See(doc(RCP)), OK),
        case("r4_unknown_profession_forbidden", pro(CARE, "osteopathe"), base(), normal(), See(doc(LAB)), forbidden("osteopathe", LAB)),
        case("r4_professional_without_profession_denied", actor(CARE, Role::Professional, None, None), base(), normal(), See(doc(LAB)), Err(R::NoProfession)),
        case("r4_matrix_applies_in_break_glass", pro(STRANGER, "pharmacien"), base(), glass(URGENT), See(doc(RCP)), forbidden("pharmacien", RCP)),
        case("r4_patient_not_filtered_by_matrix", the_patient(), base(), normal(), See(doc(RCP)), OK),
        case("r4_representative_not_filtered_by_matrix", rep(REP), base(), normal(), See(doc(IMG)), OK),
        // R5 masks
        case("r5_masque_ps_hidden_from_care_team", doctor(CARE), base(), normal(), See(masque_ps()), Err(R::MaskedToProfessionals)),
        case("r5_masque_ps_read_by_author", doctor(AUTHOR), base(), normal(), See(masque_ps()), OK),
        case("r5_masque_ps_read_by_author_organisation", actor(COLLEAGUE, Role::Professional, Some("medecin"), Some(ORG)), base(), normal(), See(masque_ps()), OK),
        case("r5_masque_ps_read_by_medecin_traitant", doctor(MT), base(), normal(), See(masque_ps()), OK),
        case("r5_masque_ps_read_by_granted_professional", doctor(GRANTED), base(), normal(), See(masque_ps()), OK),
        case("r5_masque_ps_hidden_in_break_glass", doctor(STRANGER), base(), glass(URGENT), See(masque_ps()), Err(R::MaskedToProfessionals)),
        case("r5_masked_author_still_needs_record_access", doctor(AUTHOR), with(|p| { p.care_team.remove(AUTHOR); }), normal(), See(masque_ps()), Err(R::NoConsent)),
        case("r5_masked_author_still_filtered_by_matrix", pro(AUTHOR, "biologiste"), base(), normal(), See(Doc { type_code: RX, ..masque_ps() }), forbidden("biologiste", RX)),
        case("r5_patient_masked_hidden_from_care_team", doctor(CARE), base(), normal(), See(patient_masked()), Err(R::MaskedByPatient)),
        case("r5_patient_masked_read_by_author", doctor(AUTHOR), base(), normal(), See(patient_masked()), OK),
        case("r5_patient_masked_read_by_medecin_traitant", doctor(MT), base(), normal(), See(patient_masked()), OK),
        case("r5_patient_masked_read_by_granted_professional", doctor(GRANTED), base(), normal(), See(patient_masked()), OK),
        case("r5_patient_masked_hidden_in_break_glass", doctor(STRANGER), base(), glass(URGENT), See(patient_masked()), Err(R::MaskedByPatient)),
        case("r5_patient_masked_hidden_in_regulation", regulator(), base(), regulation(), See(patient_masked()), Err(R::MaskedByPatient)),
        case("r5_patient_mask_reported_over_masque_ps", doctor(CARE), base(), normal(), See(Doc { masque_ps: true, ..patient_masked() }), Err(R::MaskedByPatient)),
        case("r5_unmasked_doc_visible_once_unmasked", doctor(CARE), with(|p| p.masked.clear()), normal(), See(patient_masked()), OK),
        case("r5_patient_sees_masked_documents", the_patient(), base(), normal(), See(Doc { masque_ps: true, ..patient_masked() }), OK),
        // R6 patient-side invisibility
        case("r6_patient_sees_own_document", the_patient(), base(), normal(), See(doc(LAB)), OK),
        case("r6_invisible_patient_hidden_from_patient", the_patient(), base(), normal(), See(invisible_patient()), Err(R::InvisibleToPatient)),
        case("r6_invisible_rep_visible_to_patient", the_patient(), base(), normal(), See(invisible_rep()), OK),
        case("r6_representative_sees_document", rep(REP), base(), normal(), See(doc(LAB)), OK),
        case("r6_invisible_rep_hidden_from_representative", rep(REP), base(), normal(), See(invisible_rep()), Err(R::InvisibleToRepresentatives)),
        case("r6_invisible_patient_visible_to_representative", rep(REP), base(), normal(), See(invisible_patient()), OK),
        case("r6_invisibility_does_not_hide_from_professionals", doctor(CARE), base(), normal(), See(Doc { invisible_rep: true, ..invisible_patient() }), OK),
        // Patient-side actions
        case("manage_by_patient_allowed", the_patient(), base(), normal(), Manage, OK),
        case("manage_closed_record_by_patient_allowed", the_patient(), with(|p| p.dmp_active = false), normal(), Manage, OK),
        case("manage_by_other_patient_denied", actor("2900175999999", Role::Patient, None, None), base(), normal(), Manage, Err(R::NotThePatient)),
        case("manage_by_representative_allowed", rep(REP), base(), normal(), Manage, OK),
        case("manage_by_unlisted_representative_denied", rep("REP-OTHER"), base(), normal(), Manage, Err(R::NotARepresentative)),
        case("manage_by_medecin_traitant_denied", doctor(MT), base(), normal(), Manage, Err(R::NotPatientSide)),
        case("manage_by_regulator_denied", regulator(), base(), normal(), Manage, Err(R::NotPatientSide)),
    ]
}

fn run(policy: &Policy, c: &Case) -> Result<Decision, String> {
    Ok(match &c.op {
        Op::Feed { qualified } => policy.can_feed(*qualified, &c.patient),
        Op::Open => {
            let plain = policy.can_open(&c.actor, &c.mode, &c.patient);
            let checked = policy.can_open_record(&c.actor, &c.mode, INS, &c.patient);
            // The INS-checking variant only adds NotThePatient.
            if checked != plain && checked != Decision::Deny(R::NotThePatient) {
                return Err(format!("can_open {plain:?} != can_open_record {checked:?}"));
            }
            checked
        }
        Op::See(d) => {
            let meta = d.meta();
            let plain = policy.can_see(&c.actor, &c.mode, &c.patient, &meta);
            let checked = policy.can_see_record(&c.actor, &c.mode, INS, &c.patient, &meta);
            if checked != plain && checked != Decision::Deny(R::NotThePatient) {
                return Err(format!("can_see {plain:?} != can_see_record {checked:?}"));
            }
            // A visible document implies an openable record.
            if checked.is_allowed() && !policy.can_open(&c.actor, &c.mode, &c.patient).is_allowed()
            {
                return Err("document visible but record not openable".into());
            }
            checked
        }
        Op::Manage => policy.can_manage(&c.actor, INS, &c.patient),
    })
}

#[test]
fn access_table() {
    let policy = Policy::with_default_matrix();
    let cases = table();
    let mut failures = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for c in &cases {
        assert!(names.insert(c.name), "duplicate row name {}", c.name);
        let expected = Decision::from(c.expect.clone());
        match run(&policy, c) {
            Ok(got) if got == expected => {}
            Ok(got) => failures.push(format!("{}: expected {expected:?}, got {got:?}", c.name)),
            Err(why) => failures.push(format!("{}: {why}", c.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Every deny reason is proved by at least one row, and every rule has allow and deny rows.
#[test]
fn table_covers_every_reason_and_rule() {
    let cases = table();
    let seen: std::collections::BTreeSet<&str> = cases
        .iter()
        .filter_map(|c| c.expect.as_ref().err().map(DenyReason::code))
        .collect();
    let all = [
        R::IdentityNotQualified,
        R::FeedingOpposition,
        R::DmpClosed,
        R::Blocked,
        R::NoConsent,
        R::MissingJustification,
        R::EmergencyOpposition,
        R::BreakGlassNotProfessional,
        R::NotARegulator,
        R::NotThePatient,
        R::NotARepresentative,
        R::NoProfession,
        R::MatrixForbidden {
            profession: String::new(),
            type_code: String::new(),
        },
        R::MaskedToProfessionals,
        R::MaskedByPatient,
        R::InvisibleToPatient,
        R::InvisibleToRepresentatives,
        R::NotPatientSide,
    ];
    let missing: Vec<&str> = all
        .iter()
        .map(R::code)
        .filter(|c| !seen.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "deny reasons without a row: {missing:?}"
    );
    let codes: std::collections::BTreeSet<&str> = all.iter().map(R::code).collect();
    assert_eq!(codes.len(), all.len(), "deny codes must be distinct");
    for prefix in ["r1_", "r2_", "r3_", "r4_", "r5_", "r6_", "manage_"] {
        let rows = cases.iter().filter(|c| c.name.starts_with(prefix));
        let (allow, deny): (Vec<_>, Vec<_>) = rows.partition(|c| c.expect.is_ok());
        assert!(
            !allow.is_empty() && !deny.is_empty(),
            "{prefix} needs allow and deny rows"
        );
    }
}

#[test]
fn emergency_modes_are_notified() {
    let policy = Policy::with_default_matrix();
    assert!(!policy.notify_on(&normal()));
    assert!(policy.notify_on(&glass(URGENT)));
    assert!(policy.notify_on(&regulation()));
    assert_eq!(glass(URGENT).label(), "break-glass");
}

#[test]
fn r9_default_window_is_two_years_current_versions() {
    let w = default_window();
    assert_eq!(w.max_age_days, 730);
    assert!(w.current_versions_only);
    assert_eq!(w.max_age().as_secs(), 730 * 86_400);
}

#[test]
fn patient_access_defaults_to_an_active_record() {
    assert_eq!(PatientAccess::default(), PatientAccess::new());
    assert!(PatientAccess::new().dmp_active);
    // A stored setting missing fields (older JSON) reads with the same defaults.
    let partial: PatientAccess =
        serde_json::from_str(r#"{"informed":true,"blocked":["1"]}"#).expect("partial JSON");
    assert!(partial.dmp_active && partial.informed && partial.blocked.contains("1"));
    let round: PatientAccess =
        serde_json::from_str(&serde_json::to_string(&base()).expect("ser")).expect("de");
    assert_eq!(round, base());
}

#[test]
fn default_matrix_loads_and_matches_its_documentation() {
    let text = include_str!("matrix.toml");
    assert_eq!(
        Policy::from_toml(text).expect("embedded matrix"),
        Policy::with_default_matrix()
    );
    let m = matrix::Matrix::from_toml(text).expect("embedded matrix");
    assert!(m.allows("medecin", "99999-9"));
    assert!(m.allows("biologiste", LAB) && !m.allows("biologiste", RX));
    assert!(!m.allows("osteopathe", LAB));
}

#[test]
fn custom_matrix_replaces_the_default() {
    let policy = Policy::from_toml("[professions]\npharmacien = [\"34794-8\"]\n").expect("valid");
    let p = base();
    let rcp = doc(RCP).meta();
    let rx = doc(RX).meta();
    let pharma = pro(PHARMA, "pharmacien");
    assert!(policy.can_see(&pharma, &normal(), &p, &rcp).is_allowed());
    assert_eq!(
        policy.can_see(&pharma, &normal(), &p, &rx),
        Decision::Deny(R::MatrixForbidden {
            profession: "pharmacien".into(),
            type_code: RX.into()
        })
    );
    // Professions absent from a custom table see nothing.
    assert!(
        !policy
            .can_see(&doctor(CARE), &normal(), &p, &rx)
            .is_allowed()
    );
}

#[test]
fn from_toml_errors_say_where_and_why() {
    type Check = fn(&PolicyError) -> bool;
    let rows: [(&str, &str, Check, &str); 9] = [
        (
            "not_toml",
            "[professions\nmedecin = ",
            |e| matches!(e, PolicyError::Parse(_)),
            "not valid TOML",
        ),
        (
            "wrong_value_type",
            "[professions]\nmedecin = \"*\"\n",
            |e| matches!(e, PolicyError::Parse(_)),
            "medecin",
        ),
        (
            "unknown_table",
            "[professions]\nmedecin = [\"*\"]\n[extra]\n",
            |e| matches!(e, PolicyError::Parse(_)),
            "extra",
        ),
        (
            "no_professions_table",
            "",
            |e| matches!(e, PolicyError::Parse(_)),
            "professions",
        ),
        (
            "empty_professions",
            "[professions]\n",
            |e| matches!(e, PolicyError::Empty),
            "no [professions]",
        ),
        (
            "bad_profession_key",
            "[professions]\nMedecin = [\"*\"]\n",
            |e| matches!(e, PolicyError::BadProfession { .. }),
            "'Medecin'",
        ),
        (
            "empty_list",
            "[professions]\npharmacien = []\n",
            |e| matches!(e, PolicyError::NoTypes { .. }),
            "'pharmacien'",
        ),
        (
            "wildcard_mixed",
            "[professions]\nmedecin = [\"*\", \"11502-2\"]\n",
            |e| matches!(e, PolicyError::WildcardMixed { .. }),
            "'medecin'",
        ),
        (
            "wrong_check_digit",
            "[professions]\npharmacien = [\"57833-6\", \"11502-3\"]\n",
            |e| matches!(e, PolicyError::BadTypeCode { .. }),
            "'11502-3' is not a LOINC code (wrong check digit)",
        ),
    ];
    for (name, text, check, message) in rows {
        match Policy::from_toml(text) {
            Ok(_) => panic!("{name}: loaded, expected an error"),
            Err(e) => {
                assert!(check(&e), "{name}: wrong error {e:?}");
                assert!(
                    e.to_string().contains(message),
                    "{name}: message {e} lacks {message:?}"
                );
            }
        }
    }
    for bad in ["11502", "abc-2", "11502-22", "-2", "12345678-0"] {
        let text = format!("[professions]\nbiologiste = [\"{bad}\"]\n");
        assert!(
            matches!(
                Policy::from_toml(&text),
                Err(PolicyError::BadTypeCode { .. })
            ),
            "{bad} accepted"
        );
    }
}

#[test]
fn deny_reasons_read_as_sentences_and_name_their_rule() {
    let r = R::MatrixForbidden {
        profession: "pharmacien".into(),
        type_code: RCP.into(),
    };
    assert_eq!(
        r.to_string(),
        "profession 'pharmacien' may not see documents of type '34794-8'"
    );
    assert_eq!(r.rule(), "R4");
    assert_eq!(R::Blocked.rule(), "R3");
    assert_eq!(R::MaskedByPatient.rule(), "R5");
    assert_eq!(Decision::Deny(R::Blocked).deny_reason(), Some(&R::Blocked));
}
