//! Bearer tokens of the admin API.
//!
//! Tokens come from `token_file` (one per line, `#` comments and blank lines ignored) and from
//! the environment variable named by `token_env`. Only their SHA-256 digests are kept. A
//! presented token is hashed and compared with every digest in constant time (no early exit,
//! neither inside a digest nor across digests), so the answer time says nothing about how much
//! of a token was right. Tokens are never logged.

use std::net::SocketAddr;

use hyper::header::HeaderValue;
use sha2::{Digest, Sha256};

use crate::config::AdminConfig;

/// Shorter tokens are refused at start: they would be guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// Who may call the API.
#[derive(Clone)]
pub struct Auth {
    digests: Vec<[u8; 32]>,
    /// No token configured, loopback only, explicitly allowed.
    open: bool,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("tokens", &self.digests.len())
            .field("open", &self.open)
            .finish()
    }
}

impl Auth {
    /// Loads the configured tokens. With none, the API may only run unauthenticated on a
    /// loopback `addr` with `allow_unauthenticated_loopback = true`; otherwise it is an error.
    pub fn load(config: &AdminConfig, addr: SocketAddr) -> anyhow::Result<Auth> {
        let mut tokens: Vec<String> = Vec::new();
        if let Some(file) = &config.token_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("admin.token_file {}: {e}", file.display()))?;
            tokens.extend(parse_token_file(&text));
        }
        if let Some(var) = &config.token_env {
            match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => tokens.push(v.trim().to_string()),
                _ => {
                    tracing::warn!(variable = %var, "admin.token_env names a variable that is not set")
                }
            }
        }
        if let Some(short) = tokens.iter().position(|t| t.len() < MIN_TOKEN_LEN) {
            anyhow::bail!(
                "admin API: token #{} is shorter than {MIN_TOKEN_LEN} characters; use a long random token (e.g. `openssl rand -hex 32`)",
                short + 1
            );
        }
        if tokens.is_empty() {
            if !config.allow_unauthenticated_loopback {
                anyhow::bail!(
                    "admin API: no token configured (admin.token_file or admin.token_env); refusing to start. \
                     To run it without authentication on a loopback address, set admin.allow_unauthenticated_loopback = true"
                );
            }
            if !addr.ip().is_loopback() {
                anyhow::bail!(
                    "admin API: no token configured and {addr} is not a loopback address; \
                     allow_unauthenticated_loopback only applies to 127.0.0.0/8 and ::1"
                );
            }
            tracing::warn!(listen = %addr, "admin API WITHOUT authentication (loopback only)");
            return Ok(Auth {
                digests: Vec::new(),
                open: true,
            });
        }
        Ok(Auth::from_tokens(tokens.iter().map(String::as_str)))
    }

    /// An `Auth` accepting these tokens.
    pub fn from_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Auth {
        Auth {
            digests: tokens.into_iter().map(digest).collect(),
            open: false,
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Whether an `Authorization` header value carries a valid bearer token.
    pub fn check(&self, header: Option<&HeaderValue>) -> bool {
        if self.open {
            return true;
        }
        let Some(token) = header.and_then(|h| bearer(h.as_bytes())) else {
            return false;
        };
        let presented = digest_bytes(token);
        let mut ok = 0u8;
        for d in &self.digests {
            ok |= u8::from(ct_eq(d, &presented));
        }
        ok == 1
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

fn digest(token: &str) -> [u8; 32] {
    digest_bytes(token.as_bytes())
}

fn digest_bytes(token: &[u8]) -> [u8; 32] {
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
        let auth = Auth::from_tokens([TOKEN, "another-long-token-value"]);
        assert!(auth.check(Some(&header(&format!("Bearer {TOKEN}")))));
        assert!(auth.check(Some(&header(&format!("bearer   {TOKEN} ")))));
        assert!(auth.check(Some(&header("Bearer another-long-token-value"))));
        assert!(!auth.check(None));
        assert!(!auth.check(Some(&header(TOKEN))));
        assert!(!auth.check(Some(&header(&format!("Basic {TOKEN}")))));
        assert!(!auth.check(Some(&header("Bearer "))));
        assert!(!auth.check(Some(&header(&format!("Bearer {TOKEN}x")))));
        assert!(!auth.check(Some(&header(&format!("Bearer {}", &TOKEN[1..])))));
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

    fn config(listen: &str, allow: bool) -> AdminConfig {
        AdminConfig {
            listen: listen.into(),
            token_file: None,
            token_env: None,
            allow_unauthenticated_loopback: allow,
        }
    }

    #[test]
    fn without_tokens_only_an_explicitly_allowed_loopback_is_open() {
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let public: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let err = Auth::load(&config("127.0.0.1:0", false), loopback).unwrap_err();
        assert!(
            err.to_string().contains("allow_unauthenticated_loopback"),
            "{err}"
        );
        let err = Auth::load(&config("0.0.0.0:0", true), public).unwrap_err();
        assert!(err.to_string().contains("not a loopback"), "{err}");
        let auth = Auth::load(&config("127.0.0.1:0", true), loopback).unwrap();
        assert!(auth.is_open() && auth.check(None));
    }

    #[test]
    fn tokens_come_from_the_file_and_the_environment_and_must_be_long() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, format!("# ops\n{TOKEN}\n")).unwrap();
        let var = "PASSERELLE_TEST_ADMIN_TOKEN_AUTH_RS";
        // SAFETY: this test is the only user of this variable.
        unsafe { std::env::set_var(var, "env-token-0123456789") };
        let mut c = config("0.0.0.0:0", false);
        c.token_file = Some(file.clone());
        c.token_env = Some(var.into());
        let auth = Auth::load(&c, "0.0.0.0:0".parse().unwrap()).unwrap();
        assert!(!auth.is_open());
        assert!(auth.check(Some(&header(&format!("Bearer {TOKEN}")))));
        assert!(auth.check(Some(&header("Bearer env-token-0123456789"))));
        assert!(!auth.check(None));

        std::fs::write(&file, "short\n").unwrap();
        let err = Auth::load(&c, "0.0.0.0:0".parse().unwrap()).unwrap_err();
        assert!(err.to_string().contains("shorter than 16"), "{err}");
    }
}
