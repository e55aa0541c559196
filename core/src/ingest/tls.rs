//! TLS on the listeners (MLLP, HTTP sources, admin API): rustls with the `ring` provider.
//!
//! `tls = { cert = "server.pem", key = "server-key.pem", client_ca = "ca.pem" }` on a listener
//! makes it TLS-only (TLS 1.2 and 1.3, rustls' safe defaults). With `client_ca`, mutual TLS is
//! required: a client without a certificate signed by one of those CAs fails the handshake, so
//! nothing it sends is read, let alone stored.
//!
//! The files are read once, at start ([`TlsAcceptor::load`]); an unreadable file, a file with
//! no PEM certificate or key, a key that does not belong to the certificate or an unusable CA
//! stop the start with an error naming the file. The handshake runs in the connection's own
//! task, bounded by [`HANDSHAKE_TIMEOUT`], so a slow or silent client never blocks the accept
//! loop. A failed handshake (plain TCP on a TLS port, no or untrusted client certificate,
//! timeout) closes that connection only: it is counted
//! (`passerelle_tls_handshake_failures_total{listener}` and
//! [`TlsAcceptor::handshake_failures`]) and logged with the peer address and the reason (warn at
//! most once a second per listener, so that a scanner cannot flood the logs; debug otherwise).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::peers::WarnGate;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::server::TlsStream;

use crate::config::TlsSettings;

/// A client must finish the handshake within this long.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a TLS listener cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{listener}: tls.{key} {}: cannot read: {reason}", path.display())]
    Read {
        listener: String,
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{listener}: tls.{key} {}: {reason}", path.display())]
    Pem {
        listener: String,
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{listener}: tls.cert and tls.key cannot be used together: {reason}")]
    Config { listener: String, reason: String },
}

/// Accepts TLS on the connections of one listener.
pub struct TlsAcceptor {
    inner: tokio_rustls::TlsAcceptor,
    listener: String,
    mutual: bool,
    failures: AtomicU64,
    warnings: WarnGate,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("listener", &self.listener)
            .field("mutual", &self.mutual)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// Reads the certificate, key and client CAs of `listener` (a name for errors and logs:
    /// `sources.lab-mllp`, `admin`). `alpn`: protocols to announce (`http/1.1` for HTTP).
    pub fn load(
        listener: &str,
        settings: &TlsSettings,
        alpn: &[&[u8]],
    ) -> Result<Arc<TlsAcceptor>, TlsError> {
        let certs = read_certs(listener, "cert", &settings.cert)?;
        let key = read_key(listener, &settings.key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config_error = |reason: String| TlsError::Config {
            listener: listener.to_string(),
            reason,
        };
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error(e.to_string()))?;
        let builder = match &settings.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in read_certs(listener, "client_ca", ca)? {
                    roots.add(cert).map_err(|e| TlsError::Pem {
                        listener: listener.to_string(),
                        key: "client_ca",
                        path: ca.clone(),
                        reason: format!("not a usable CA certificate: {e}"),
                    })?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                )
                .build()
                .map_err(|e| TlsError::Pem {
                    listener: listener.to_string(),
                    key: "client_ca",
                    path: ca.clone(),
                    reason: e.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| config_error(e.to_string()))?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tracing::info!(listener, mutual = settings.client_ca.is_some(), cert = %settings.cert.display(), "TLS configured");
        Ok(Arc::new(TlsAcceptor {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            listener: listener.to_string(),
            mutual: settings.client_ca.is_some(),
            failures: AtomicU64::new(0),
            warnings: WarnGate::default(),
        }))
    }

    /// Whether a client certificate is required.
    pub fn is_mutual(&self) -> bool {
        self.mutual
    }

    /// Failed handshakes since start.
    pub fn handshake_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Runs the server handshake on `stream`. `None`: it failed or timed out (logged and
    /// counted), or the daemon is stopping; the connection is dropped by the caller.
    pub async fn accept(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<TlsStream<TcpStream>> {
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.inner.accept(stream));
        let done = tokio::select! {
            done = handshake => done,
            _ = crate::ingest::stopped(shutdown) => return None,
        };
        let reason = match done {
            Ok(Ok(tls)) => {
                tracing::debug!(listener = %self.listener, peer = %peer, "TLS handshake done");
                return Some(tls);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no handshake within {} s", HANDSHAKE_TIMEOUT.as_secs()),
        };
        self.failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("passerelle_tls_handshake_failures_total", "listener" => self.listener.clone())
            .increment(1);
        if self.warnings.open() {
            tracing::warn!(listener = %self.listener, peer = %peer, reason = %reason, "TLS handshake failed; connection closed");
        } else {
            tracing::debug!(listener = %self.listener, peer = %peer, reason = %reason, "TLS handshake failed; connection closed");
        }
        None
    }
}

/// `settings` loaded for `listener`, when set.
pub fn load_opt(
    listener: &str,
    settings: Option<&TlsSettings>,
    alpn: &[&[u8]],
) -> Result<Option<Arc<TlsAcceptor>>, TlsError> {
    settings
        .map(|s| TlsAcceptor::load(listener, s, alpn))
        .transpose()
}

fn read_pem(listener: &str, key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        listener: listener.to_string(),
        key,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn read_certs(
    listener: &str,
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(listener, key, path)?;
    let bad = |reason: String| TlsError::Pem {
        listener: listener.to_string(),
        key,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad(
            "no certificate in it (expected PEM `-----BEGIN CERTIFICATE-----` blocks)".into(),
        ));
    }
    Ok(certs)
}

fn read_key(listener: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem(listener, "key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        listener: listener.to_string(),
        key: "key",
        path: path.to_path_buf(),
        reason: format!("no usable private key (expected PEM PKCS#8, PKCS#1 or SEC1): {e}"),
    })
}
