//! Bearer tokens → actors, from a TOML file (`[record_store_api] actors`):
//!
//! ```toml
//! [[actors]]
//! token = "<a long random token, ≥ 16 characters>"
//! id = "10001234567"                            # RPPS, the patient's INS, a representative id
//! role = "professional"                         # patient | legal-representative | samu-regulator
//! profession = "medecin"                        # matrix key (R4)
//! specialty = "SM26"
//! organisation = "330000001"
//! ```
//!
//! Tokens are checked by [`crate::auth::BearerTokens`] (digests only, constant-time compare);
//! every actor's token is checked, without stopping at a match, so timing says nothing about
//! which actor matched. The file is as secret as the admin token file: mode 0600.

use std::path::Path;

use anyhow::Context as _;
use hyper::header::HeaderValue;
use serde::Deserialize;

use super::policy::{Actor, Role};
use crate::auth::{BearerTokens, MIN_TOKEN_LEN};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    actors: Vec<RawActor>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActor {
    token: String,
    id: String,
    role: Role,
    profession: Option<String>,
    specialty: Option<String>,
    organisation: Option<String>,
}

/// The known actors, by token digest.
#[derive(Clone, Default)]
pub struct Actors {
    entries: Vec<(BearerTokens, Actor)>,
}

impl std::fmt::Debug for Actors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actors")
            .field("actors", &self.entries.len())
            .finish()
    }
}

impl Actors {
    pub fn load(file: &Path) -> anyhow::Result<Actors> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the actors file {}", file.display()))?;
        Self::parse(&text).with_context(|| format!("actors file {}", file.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Actors> {
        let file: File = toml::from_str(text)?;
        let mut entries = Vec::with_capacity(file.actors.len());
        for (i, a) in file.actors.into_iter().enumerate() {
            let n = i + 1;
            anyhow::ensure!(
                a.token.trim().len() >= MIN_TOKEN_LEN,
                "actor #{n}: token shorter than {MIN_TOKEN_LEN} characters"
            );
            anyhow::ensure!(!a.id.trim().is_empty(), "actor #{n}: empty id");
            entries.push((
                BearerTokens::from_tokens([a.token.trim()]),
                Actor {
                    id: a.id,
                    role: a.role,
                    profession: a.profession,
                    specialty: a.specialty,
                    organisation: a.organisation,
                },
            ));
        }
        Ok(Actors { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The actor of an `Authorization: Bearer <token>` header.
    pub fn authenticate(&self, header: Option<&HeaderValue>) -> Option<Actor> {
        let mut found = None;
        for (tokens, actor) in &self.entries {
            if tokens.check(header) && found.is_none() {
                found = Some(actor);
            }
        }
        found.cloned()
    }
}
