//! Code systems and identifier systems used by French shared health records.
//!
//! Sources: HL7 FHIR R4 and terminology.hl7.org (THO) for the international ones; ANS
//! (Agence du Numérique en Santé): CI-SIS, FR Core and the NOS terminologies (TRE_*) for the
//! French OIDs.

// --- Patient identity (INS, référentiel INS of the ANS) ---

/// INS-NIR: the patient's NIR used as national health identifier.
pub const INS_NIR: &str = "urn:oid:1.2.250.1.213.1.4.8";
/// INS-NIA: temporary identifier, used while the NIR is unknown.
pub const INS_NIA: &str = "urn:oid:1.2.250.1.213.1.4.9";
/// Test INS-NIR (test patients of the INSi service).
pub const INS_NIR_TEST: &str = "urn:oid:1.2.250.1.213.1.4.10";
/// Demonstration INS-NIR (fictitious patients).
pub const INS_NIR_DEMO: &str = "urn:oid:1.2.250.1.213.1.4.11";
/// FR Core identifier types (`INS-NIR`, `INS-NIA`, `INS-NIR-TEST`, `INS-NIR-DEMO`...),
/// the French extension of v2 table 0203.
pub const FR_CORE_V2_0203: &str = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203";

// --- Professionals and products ---

/// National identifier of health professionals (IdNat_PS): `8` + RPPS number, or `0` +
/// ADELI number (CI-SIS). Use as the system of a Practitioner's RPPS identifier.
pub const IDNAT_PS: &str = "urn:oid:1.2.250.1.71.4.2.1";
/// Alias of [`IDNAT_PS`], the OID under which RPPS-based identifiers are issued.
pub const RPPS: &str = IDNAT_PS;
/// National identifier of health structures (IdNat_Struct: FINESS, SIRET... prefixed).
pub const IDNAT_STRUCT: &str = "urn:oid:1.2.250.1.71.4.2.2";
/// CIP (Code Identifiant de Présentation, 13 digits) of medicinal products, as cited by the
/// CI-SIS. (The UCD, Unités Communes de Dispensation, is cited there as
/// `1.2.250.1.213.2.61`: not verified against the TRE tables, hence not exported.)
pub const CIP: &str = "urn:oid:1.2.250.1.213.2.3.2";
/// EDQM Standard Terms (dose forms, routes of administration).
pub const EDQM: &str = "http://standardterms.edqm.eu";

// --- DMP confidentiality ---

/// TRE_A07-StatutVisibiliteDocument: DMP visibility restrictions (`MASQUE_PS`,
/// `INVISIBLE_PATIENT`, `INVISIBLE_REPRESENTANTS_LEGAUX`), used in `meta.security` and
/// `DocumentReference.securityLabel`.
pub const DMP_VISIBILITY: &str = "urn:oid:1.2.250.1.213.1.1.4.13";
/// v3 Confidentiality (`N`, `R`, `V`...), `Composition.confidentiality`.
pub const V3_CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

// --- Terminologies ---

/// LOINC.
pub const LOINC: &str = "http://loinc.org";
/// SNOMED CT.
pub const SNOMED_CT: &str = "http://snomed.info/sct";
/// UCUM units.
pub const UCUM: &str = "http://unitsofmeasure.org";
/// ICD-10 (WHO). French CIM-10 codes use the same code syntax.
pub const ICD_10: &str = "http://hl7.org/fhir/sid/icd-10";
/// Identifiers that are URIs (`urn:uuid:...`, `urn:oid:...`): document identifiers.
pub const URN_IETF_RFC_3986: &str = "urn:ietf:rfc:3986";

// --- HL7 terminology (terminology.hl7.org) ---

/// v2 table 0203, identifier types (`PI` patient internal, `NH`, `PRN`, `FILL`, `PLAC`,
/// `ACSN`...).
pub const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
/// v2 table 0074, diagnostic service sections (`LAB`, `HM`, `CH`, `MB`...),
/// `DiagnosticReport.category`.
pub const V2_0074: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";
/// v2 table 0487, specimen types.
pub const V2_0487: &str = "http://terminology.hl7.org/CodeSystem/v2-0487";
/// v2 table 0078, abnormal flags: the system of the few flags the v2-to-FHIR ConceptMap leaves
/// out of [`V3_OBSERVATION_INTERPRETATION`] (`AC`, `HM`, `OBX`, `QCF`, `TOX`).
pub const V2_0078: &str = "http://terminology.hl7.org/CodeSystem/v2-0078";
/// Observation interpretation (`N`, `H`, `L`, `HH`, `LL`, `A`, `AA`...); R4 maps the v2
/// table 0078 flags (OBX-8) onto this system.
pub const V3_OBSERVATION_INTERPRETATION: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
/// Observation categories (`laboratory`, `vital-signs`, `exam`...).
pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
/// Data absent reasons (`unknown`, `not-performed`, `error`...).
pub const DATA_ABSENT_REASON: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";
/// v3 ActCode: encounter classes (`AMB`, `IMP`, `EMER`, `HH`, `VR`...).
pub const V3_ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// Condition clinical status (`active`, `recurrence`, `remission`, `resolved`...).
pub const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
/// Condition verification status (`confirmed`, `provisional`, `differential`...).
pub const CONDITION_VER_STATUS: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";

// --- MIME types ---

/// The FHIR JSON MIME type.
pub const MIME_FHIR_JSON: &str = "application/fhir+json";
