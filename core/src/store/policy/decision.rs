//! The outcome of a policy check: allow, or deny with the rule that denied.

/// Allow, or deny with a reason naming the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(DenyReason),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// The reason of a denial, `None` when allowed.
    pub fn deny_reason(&self) -> Option<&DenyReason> {
        match self {
            Decision::Allow => None,
            Decision::Deny(reason) => Some(reason),
        }
    }

    /// `Ok(())` when allowed, so rules chain with `?`.
    pub fn into_result(self) -> Result<(), DenyReason> {
        match self {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => Err(reason),
        }
    }
}

impl From<Result<(), DenyReason>> for Decision {
    fn from(result: Result<(), DenyReason>) -> Self {
        match result {
            Ok(()) => Decision::Allow,
            Err(reason) => Decision::Deny(reason),
        }
    }
}

/// Why access was denied; one variant per rule. `Display` is the human reason (safe to return
/// to the caller: it names no patient data); [`DenyReason::code`] is a stable machine code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenyReason {
    /// R1.
    #[error("the patient identity is not INS-qualified: the document cannot be shared")]
    IdentityNotQualified,
    /// R2.
    #[error("the patient opposed the feeding of the shared record")]
    FeedingOpposition,
    /// R3.
    #[error("the patient's shared record is closed")]
    DmpClosed,
    /// R3.
    #[error("this professional is blocked by the patient")]
    Blocked,
    /// R3, normal mode.
    #[error("no consent: not in the informed care team and no explicit consent recorded")]
    NoConsent,
    /// R3, break-glass.
    #[error("break-glass access requires a justification")]
    MissingJustification,
    /// R3, break-glass and centre 15.
    #[error("the patient opposed emergency access")]
    EmergencyOpposition,
    /// R3, break-glass by the patient or a legal representative.
    #[error("break-glass access is reserved to health professionals")]
    BreakGlassNotProfessional,
    /// R3, centre 15 by anyone but a SAMU regulator.
    #[error("regulation mode is reserved to SAMU regulating physicians")]
    NotARegulator,
    /// R3: an actor with the patient role on another patient's record (or settings).
    #[error("the caller is not this patient")]
    NotThePatient,
    /// R3: a legal representative not listed for this patient.
    #[error("the caller is not a legal representative of this patient")]
    NotARepresentative,
    /// R4: a professional without a profession cannot be matched against the matrix.
    #[error("the professional has no profession: the habilitation matrix cannot apply")]
    NoProfession,
    /// R4.
    #[error("profession '{profession}' may not see documents of type '{type_code}'")]
    MatrixForbidden {
        profession: String,
        type_code: String,
    },
    /// R5, `MASQUE_PS`.
    #[error("the document is masked to professionals by its author")]
    MaskedToProfessionals,
    /// R5, masked by the patient.
    #[error("the document is masked by the patient")]
    MaskedByPatient,
    /// R6.
    #[error("the document is not visible to the patient")]
    InvisibleToPatient,
    /// R6.
    #[error("the document is not visible to legal representatives")]
    InvisibleToRepresentatives,
    /// Patient-side actions by a professional or a regulator.
    #[error("only the patient or a legal representative may manage these settings")]
    NotPatientSide,
}

impl DenyReason {
    /// Stable kebab-case code for API bodies and the audit trail.
    pub fn code(&self) -> &'static str {
        match self {
            DenyReason::IdentityNotQualified => "identity-not-qualified",
            DenyReason::FeedingOpposition => "feeding-opposition",
            DenyReason::DmpClosed => "dmp-closed",
            DenyReason::Blocked => "blocked",
            DenyReason::NoConsent => "no-consent",
            DenyReason::MissingJustification => "missing-justification",
            DenyReason::EmergencyOpposition => "emergency-opposition",
            DenyReason::BreakGlassNotProfessional => "break-glass-not-professional",
            DenyReason::NotARegulator => "not-a-regulator",
            DenyReason::NotThePatient => "not-the-patient",
            DenyReason::NotARepresentative => "not-a-representative",
            DenyReason::NoProfession => "no-profession",
            DenyReason::MatrixForbidden { .. } => "matrix-forbidden",
            DenyReason::MaskedToProfessionals => "masked-to-professionals",
            DenyReason::MaskedByPatient => "masked-by-patient",
            DenyReason::InvisibleToPatient => "invisible-to-patient",
            DenyReason::InvisibleToRepresentatives => "invisible-to-representatives",
            DenyReason::NotPatientSide => "not-patient-side",
        }
    }

    /// The rule this denial enforces (R1–R6, or "manage" for patient-side actions).
    pub fn rule(&self) -> &'static str {
        match self {
            DenyReason::IdentityNotQualified => "R1",
            DenyReason::FeedingOpposition => "R2",
            DenyReason::MatrixForbidden { .. } | DenyReason::NoProfession => "R4",
            DenyReason::MaskedToProfessionals | DenyReason::MaskedByPatient => "R5",
            DenyReason::InvisibleToPatient | DenyReason::InvisibleToRepresentatives => "R6",
            DenyReason::NotPatientSide => "manage",
            _ => "R3",
        }
    }
}
