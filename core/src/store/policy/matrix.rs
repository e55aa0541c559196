//! R4: the habilitation matrix (profession × document type), read from TOML and validated.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// The default matrix, embedded at build time.
pub(crate) const DEFAULT_MATRIX: &str = include_str!("matrix.toml");

/// A matrix that failed to load: says which profession and entry, and why.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("habilitation matrix is not valid TOML: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("habilitation matrix has no [professions] entry")]
    Empty,
    #[error("habilitation matrix: profession '{profession}' is not a lowercase key (a-z and '-')")]
    BadProfession { profession: String },
    #[error("habilitation matrix: profession '{profession}' has an empty list of document types")]
    NoTypes { profession: String },
    #[error("habilitation matrix: profession '{profession}' mixes \"*\" with explicit types")]
    WildcardMixed { profession: String },
    #[error("habilitation matrix: profession '{profession}': '{code}' is not a LOINC code ({why})")]
    BadTypeCode {
        profession: String,
        code: String,
        why: &'static str,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatrixFile {
    professions: BTreeMap<String, Vec<String>>,
}

/// What one profession may see.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    All,
    Types(BTreeSet<String>),
}

/// The validated matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matrix {
    professions: BTreeMap<String, Allowed>,
}

impl Matrix {
    pub(crate) fn from_toml(text: &str) -> Result<Matrix, PolicyError> {
        let file: MatrixFile = toml::from_str(text)?;
        if file.professions.is_empty() {
            return Err(PolicyError::Empty);
        }
        let mut professions = BTreeMap::new();
        for (profession, types) in file.professions {
            let allowed = validate_row(&profession, types)?;
            professions.insert(profession, allowed);
        }
        Ok(Matrix { professions })
    }

    /// Whether `profession` may see documents of `type_code`; an unknown profession sees nothing.
    pub(crate) fn allows(&self, profession: &str, type_code: &str) -> bool {
        match self.professions.get(profession) {
            Some(Allowed::All) => true,
            Some(Allowed::Types(types)) => types.contains(type_code),
            None => false,
        }
    }
}

fn validate_row(profession: &str, types: Vec<String>) -> Result<Allowed, PolicyError> {
    let key_ok = !profession.is_empty()
        && profession
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-');
    if !key_ok {
        return Err(PolicyError::BadProfession {
            profession: profession.to_owned(),
        });
    }
    if types.is_empty() {
        return Err(PolicyError::NoTypes {
            profession: profession.to_owned(),
        });
    }
    if types.iter().any(|t| t == "*") {
        return if types.len() == 1 {
            Ok(Allowed::All)
        } else {
            Err(PolicyError::WildcardMixed {
                profession: profession.to_owned(),
            })
        };
    }
    for code in &types {
        check_loinc(code).map_err(|why| PolicyError::BadTypeCode {
            profession: profession.to_owned(),
            code: code.clone(),
            why,
        })?;
    }
    Ok(Allowed::Types(types.into_iter().collect()))
}

/// A LOINC code is `digits-checkdigit` with the mod-10 (Luhn) check digit; checking it catches
/// typos in a hand-edited matrix, which would otherwise silently deny a document type.
fn check_loinc(code: &str) -> Result<(), &'static str> {
    let (number, check) = code
        .split_once('-')
        .ok_or("expected digits, '-', check digit")?;
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(number) || number.len() > 7 || check.len() != 1 || !digits_only(check) {
        return Err("expected 1 to 7 digits, '-', one check digit");
    }
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                doubled / 10 + doubled % 10
            } else {
                d
            }
        })
        .sum();
    let expected = (10 - sum % 10) % 10;
    if u32::from(check.as_bytes()[0] - b'0') == expected {
        Ok(())
    } else {
        Err("wrong check digit")
    }
}
