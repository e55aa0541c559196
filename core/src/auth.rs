//! Bearer tokens, shared by the admin API ([`crate::admin::auth`]) and the HTTP ingest sources.
//!
//! Tokens come from a token file (one per line, `#` comments and blank lines ignored; a line
//! `NAME TOKEN` names its token, e.g. `ops-alice 3f9a…`) and from an environment variable (named
//! `env:VARIABLE`). Only their SHA-256 digests and names are kept; an unnamed token is called
//! `token-` + the first 8 hex digits of its digest. The name of the token that authenticated a
//! request is what the audit log records as the actor. A presented token is hashed
//! and compared with every digest in constant time (no early exit, neither inside a digest nor
//! across digests), so the answer time says nothing about how much of a token was right.
//! Tokens are never logged.

use std::path::Path;

use hyper::header::HeaderValue;
use sha2::{Digest, Sha256};

/// Shorter tokens are refused at start: they would be guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// A set of accepted bearer tokens (their digests and names).
#[derive(Clone, Default)]
pub struct BearerTokens {
    digests: Vec<[u8; 32]>,
    names: Vec<String>,
}

impl std::fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerTokens")
            .field("tokens", &self.digests.len())
            .finish()
    }
}

impl BearerTokens {
    /// Reads the tokens of `token_file` and of the variable named `token_env`. `what` names the
    /// configuration table in errors (`admin`, `sources.lab-http`). An unset variable is a
    /// warning; an unreadable file or a token shorter than [`MIN_TOKEN_LEN`] is an error. The
    /// result may be empty: the caller decides what that means.
    pub fn load(
        what: &str,
        token_file: Option<&Path>,
        token_env: Option<&str>,
    ) -> anyhow::Result<BearerTokens> {
        // (name, token)
        let mut tokens: Vec<(Option<String>, String)> = Vec::new();
        if let Some(file) = token_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("{what}.token_file {}: {e}", file.display()))?;
            for (i, line) in parse_token_file(&text).into_iter().enumerate() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                match fields.as_slice() {
                    [token] => tokens.push((None, token.to_string())),
                    [name, token] => tokens.push((Some(name.to_string()), token.to_string())),
                    // The line is not quoted: it holds a secret.
                    _ => anyhow::bail!(
                        "{what}.token_file {}: token #{}: expected `TOKEN` or `NAME TOKEN`",
                        file.display(),
                        i + 1
                    ),
                }
            }
        }
        if let Some(var) = token_env {
            match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => {
                    tokens.push((Some(format!("env:{var}")), v.trim().to_string()))
                }
                _ => {
                    tracing::warn!(table = %what, variable = %var, "token_env names a variable that is not set")
                }
            }
        }
        if let Some(short) = tokens.iter().position(|(_, t)| t.len() < MIN_TOKEN_LEN) {
            anyhow::bail!(
                "{what}: token #{} is shorter than {MIN_TOKEN_LEN} characters; use a long random token (e.g. `openssl rand -hex 32`)",
                short + 1
            );
        }
        let mut set = BearerTokens::default();
        for (name, token) in tokens {
            set.push(name, &token);
        }
        Ok(set)
    }

    /// These tokens, unnamed.
    pub fn from_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> BearerTokens {
        let mut set = BearerTokens::default();
        for t in tokens {
            set.push(None, t);
        }
        set
    }

    fn push(&mut self, name: Option<String>, token: &str) {
        let d = digest(token.as_bytes());
        self.names
            .push(name.unwrap_or_else(|| format!("token-{}", &hex::encode(d)[..8])));
        self.digests.push(d);
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether an `Authorization` header value carries one of the tokens (`Bearer <token>`).
    /// Always false for an empty set.
    pub fn check(&self, header: Option<&HeaderValue>) -> bool {
        self.identify(header).is_some()
    }

    /// The name of the token an `Authorization` header value carries, if it is one of these.
    /// Every digest is compared, whatever matched (constant time).
    pub fn identify(&self, header: Option<&HeaderValue>) -> Option<&str> {
        let token = header.and_then(|h| bearer(h.as_bytes()))?;
        let presented = digest(token);
        let mut found = usize::MAX;
        for (i, d) in self.digests.iter().enumerate() {
            // Branch-free select: keeps the first match without an early exit.
            let hit = usize::from(ct_eq(d, &presented) & (found == usize::MAX));
            found = hit * i + (1 - hit) * found;
        }
        self.names.get(found).map(String::as_str)
    }
}

/// The tokens of a token file: one per line, trimmed; `#` starts a comment line.
pub fn parse_token_file(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// `Bearer <token>` (scheme case-insensitive) → the token.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let rest = rest.trim_ascii();
    (!rest.is_empty()).then_some(rest)
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// Constant-time equality of two digests (both always 32 bytes: the length says nothing).
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // Keep the compiler from turning the loop into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn header(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn bearer_tokens_are_checked() {
        let tokens = BearerTokens::from_tokens([TOKEN, "another-long-token-value"]);
        assert!(tokens.check(Some(&header(&format!("Bearer {TOKEN}")))));
        assert!(tokens.check(Some(&header(&format!("bearer   {TOKEN} ")))));
        assert!(tokens.check(Some(&header("Bearer another-long-token-value"))));
        assert!(!tokens.check(None));
        assert!(!tokens.check(Some(&header(TOKEN))));
        assert!(!tokens.check(Some(&header(&format!("Basic {TOKEN}")))));
        assert!(!tokens.check(Some(&header("Bearer "))));
        assert!(!tokens.check(Some(&header(&format!("Bearer {TOKEN}x")))));
        assert!(!tokens.check(Some(&header(&format!("Bearer {}", &TOKEN[1..])))));
        assert!(!BearerTokens::default().check(Some(&header(&format!("Bearer {TOKEN}")))));
    }

    #[test]
    fn named_tokens_identify_who_called() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(
            &file,
            format!(
                "ops-alice {TOKEN}
another-long-token-value
"
            ),
        )
        .unwrap();
        let tokens = BearerTokens::load("admin", Some(&file), None).unwrap();
        assert_eq!(
            tokens.identify(Some(&header(&format!("Bearer {TOKEN}")))),
            Some("ops-alice")
        );
        let unnamed = tokens
            .identify(Some(&header("Bearer another-long-token-value")))
            .unwrap();
        assert!(
            unnamed.starts_with("token-") && unnamed.len() == 14,
            "{unnamed}"
        );
        assert!(
            !unnamed.contains("another"),
            "the name does not reveal the token"
        );
        assert_eq!(
            tokens.identify(Some(&header("Bearer nope-nope-nope-nope"))),
            None
        );
        std::fs::write(
            &file,
            format!(
                "a b {TOKEN}
"
            ),
        )
        .unwrap();
        let err = BearerTokens::load("admin", Some(&file), None).unwrap_err();
        assert!(err.to_string().contains("NAME TOKEN"), "{err}");
        assert!(!err.to_string().contains(TOKEN), "{err}");
    }

    #[test]
    fn token_files_skip_comments_and_blank_lines() {
        let text =
            "# admin tokens\n\n  first-token-0123456789  \n# old: x\nsecond-token-0123456789\n";
        assert_eq!(
            parse_token_file(text),
            ["first-token-0123456789", "second-token-0123456789"]
        );
    }

    #[test]
    fn tokens_load_from_a_file_and_the_environment_and_must_be_long() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, format!("# ops\n{TOKEN}\n")).unwrap();
        let var = "PASSERELLE_TEST_TOKEN_AUTH_RS";
        // SAFETY: this test is the only user of this variable.
        unsafe { std::env::set_var(var, "env-token-0123456789") };
        let tokens = BearerTokens::load("sources.x", Some(&file), Some(var)).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(
            tokens.identify(Some(&header("Bearer env-token-0123456789"))),
            Some("env:PASSERELLE_TEST_TOKEN_AUTH_RS")
        );
        std::fs::write(&file, "short\n").unwrap();
        let err = BearerTokens::load("sources.x", Some(&file), None).unwrap_err();
        assert!(
            err.to_string().contains("sources.x: token #1 is shorter"),
            "{err}"
        );
        let err =
            BearerTokens::load("sources.x", Some(&dir.path().join("nope")), None).unwrap_err();
        assert!(err.to_string().contains("sources.x.token_file"), "{err}");
    }
}
