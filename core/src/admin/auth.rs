//! Bearer tokens of the admin API.
//!
//! Tokens come from `token_file` (one per line, `#` comments and blank lines ignored) and from
//! the environment variable named by `token_env`; they are checked by [`BearerTokens`] (shared
//! with the HTTP ingest sources: SHA-256 digests only, constant-time comparison, never logged).
//! On top of that, the admin API may run without any token on a loopback address when
//! explicitly allowed.

use std::net::SocketAddr;

use hyper::header::HeaderValue;

pub use crate::auth::{BearerTokens, MIN_TOKEN_LEN, parse_token_file};
use crate::config::AdminConfig;

/// Who may call the API.
#[derive(Clone)]
pub struct Auth {
    tokens: BearerTokens,
    /// No token configured, loopback only, explicitly allowed.
    open: bool,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("tokens", &self.tokens.len())
            .field("open", &self.open)
            .finish()
    }
}

impl Auth {
    /// Loads the configured tokens. With none, the API may only run unauthenticated on a
    /// loopback `addr` with `allow_unauthenticated_loopback = true`; otherwise it is an error.
    pub fn load(config: &AdminConfig, addr: SocketAddr) -> anyhow::Result<Auth> {
        let tokens = BearerTokens::load(
            "admin",
            config.token_file.as_deref(),
            config.token_env.as_deref(),
        )?;
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
            return Ok(Auth { tokens, open: true });
        }
        Ok(Auth {
            tokens,
            open: false,
        })
    }

    /// An `Auth` accepting these tokens.
    pub fn from_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Auth {
        Auth {
            tokens: BearerTokens::from_tokens(tokens),
            open: false,
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Whether an `Authorization` header value carries a valid bearer token.
    pub fn check(&self, header: Option<&HeaderValue>) -> bool {
        self.actor(header).is_some()
    }

    /// Who calls, for the audit log: `admin:<token name>` (`admin:loopback` when the API is
    /// open), or `None` when the header carries no valid token.
    pub fn actor(&self, header: Option<&HeaderValue>) -> Option<String> {
        match self.tokens.identify(header) {
            Some(name) => Some(format!("admin:{name}")),
            None if self.open => Some("admin:loopback".into()),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn header(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    // Token parsing and comparison are tested with `crate::auth`; here, what the admin API
    // adds: the loopback-only open mode and where its tokens come from.

    fn config(listen: &str, allow: bool) -> AdminConfig {
        AdminConfig {
            listen: listen.into(),
            token_file: None,
            token_env: None,
            allow_unauthenticated_loopback: allow,
            tls: None,
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
