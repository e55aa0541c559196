//! TLS on the MLLP and HTTP sources, over real sockets, with certificates generated here: a CA
//! that signs the server and a trusted client, and another CA that signs an untrusted client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

use super::{Harness, PLUGIN, oru};
use crate::config::{HttpSource, SourceConfig, TlsSettings};
use crate::ingest::mllp::codec::{MllpCodec, frame};
use crate::ingest::tls::{TlsAcceptor, TlsError};

/// PEM files of a test PKI, in `dir`.
pub(crate) struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// (cert, key) signed by `ca`.
    pub client: (PathBuf, PathBuf),
    /// (cert, key) signed by another CA.
    pub stranger: (PathBuf, PathBuf),
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    dir: &Path,
    name: &str,
    issuer: &CertifiedIssuer<'static, KeyPair>,
    server: bool,
) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &**issuer).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let ca1 = ca("Passerelle test CA");
        let ca2 = ca("Another CA");
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, ca1.pem()).unwrap();
        let (server_cert, server_key) = leaf(dir, "server", &ca1, true);
        Pki {
            ca,
            server_cert,
            server_key,
            client: leaf(dir, "client", &ca1, false),
            stranger: leaf(dir, "stranger", &ca2, false),
        }
    }

    pub fn settings(&self, mutual: bool) -> TlsSettings {
        TlsSettings {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            client_ca: mutual.then(|| self.ca.clone()),
        }
    }
}

/// A TLS client trusting `ca`, presenting `identity` (cert, key) if any. The handshake error,
/// if the server refuses during it.
pub(crate) async fn connect(
    addr: SocketAddr,
    ca: &Path,
    identity: Option<&(PathBuf, PathBuf)>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
    };
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// Sends one MLLP frame; the ACK's MSA-1, or `None` when no ACK comes back (refused).
async fn mllp_exchange(
    mut s: impl AsyncRead + AsyncWrite + Unpin,
    message: &str,
) -> Option<String> {
    s.write_all(&frame(message.as_bytes())).await.ok()?;
    s.flush().await.ok()?;
    let mut codec = MllpCodec::new(1 << 20);
    let mut buf = BytesMut::new();
    loop {
        if let Ok(Some(ack)) = codec.decode(&mut buf) {
            let text = String::from_utf8_lossy(&ack).into_owned();
            let msa = text.split('\r').find(|s| s.starts_with("MSA|"))?;
            return msa.split('|').nth(1).map(str::to_string);
        }
        match tokio::time::timeout(Duration::from_secs(10), s.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return None,
        }
    }
}

/// The MLLP source of the plain MLLP tests, over TLS.
fn mllp_config(tls: TlsSettings) -> SourceConfig {
    let mut config = super::mllp::config(1 << 20, 60, 16);
    if let SourceConfig::Mllp(m) = &mut config {
        m.tls = Some(tls);
    }
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mllp_over_mutual_tls_acks_a_trusted_client_and_refuses_the_others() {
    let h = Harness::new();
    let pki = Pki::new(h.tmp.path());
    let sources = h.start("m", mllp_config(pki.settings(true)));
    let addr = sources.addr("m").unwrap();

    let s = connect(addr, &pki.ca, Some(&pki.client)).await.unwrap();
    assert_eq!(mllp_exchange(s, &oru("TLS-1")).await.as_deref(), Some("AA"));
    assert_eq!(h.total().await, 1);

    // No client certificate, one from another CA: the handshake fails (TLS 1.3 reports it on
    // the client's first read), no ACK, nothing stored.
    for identity in [None, Some(&pki.stranger)] {
        let acked = match connect(addr, &pki.ca, identity).await {
            Ok(s) => mllp_exchange(s, &oru("TLS-REFUSED")).await,
            Err(_) => None,
        };
        assert_eq!(acked, None, "client {identity:?} was served");
    }
    // Plain MLLP on the TLS port: not read as a message.
    let plain = TcpStream::connect(addr).await.unwrap();
    assert_eq!(mllp_exchange(plain, &oru("PLAIN")).await, None);
    assert_eq!(h.total().await, 1, "nothing from refused clients is stored");

    // The listener is still serving.
    let s = connect(addr, &pki.ca, Some(&pki.client)).await.unwrap();
    assert_eq!(mllp_exchange(s, &oru("TLS-2")).await.as_deref(), Some("AA"));
    assert_eq!(h.total().await, 2);
    h.shutdown(sources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mllp_over_tls_without_client_ca_serves_any_tls_client() {
    let h = Harness::new();
    let pki = Pki::new(h.tmp.path());
    let sources = h.start("m", mllp_config(pki.settings(false)));
    let addr = sources.addr("m").unwrap();
    let s = connect(addr, &pki.ca, None).await.unwrap();
    assert_eq!(mllp_exchange(s, &oru("TLS-3")).await.as_deref(), Some("AA"));
    let plain = TcpStream::connect(addr).await.unwrap();
    assert_eq!(mllp_exchange(plain, &oru("PLAIN")).await, None);
    assert_eq!(h.total().await, 1);
    h.shutdown(sources).await;
}

/// One HTTP/1.1 request over `s`; the status (0 when the connection ends without an answer).
async fn http_status(mut s: impl AsyncRead + AsyncWrite + Unpin, request: &str) -> u16 {
    if s.write_all(request.as_bytes()).await.is_err() || s.flush().await.is_err() {
        return 0;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_ingest_with_mutual_tls_and_a_token() {
    let h = Harness::new();
    let pki = Pki::new(h.tmp.path());
    const TOKEN: &str = "https-ingest-token-0123456789";
    let tokens = h.tmp.path().join("tokens");
    std::fs::write(&tokens, format!("lab {TOKEN}\n")).unwrap();
    let config = SourceConfig::Http(HttpSource {
        plugin: PLUGIN.into(),
        content_type: Some("x-application/hl7-v2+er7".into()),
        charset: None,
        listen: "127.0.0.1:0".into(),
        path: "/ingest".into(),
        max_body_bytes: 1 << 20,
        token_file: Some(tokens),
        token_env: None,
        max_connections_per_peer: 0,
        tls: Some(pki.settings(true)),
    });
    let sources = h.start("h", config);
    let addr = sources.addr("h").unwrap();
    let body = oru("HTTPS-1");
    let post = |auth: &str| {
        format!(
            "POST /ingest HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let good = format!("Authorization: Bearer {TOKEN}\r\n");

    let s = connect(addr, &pki.ca, Some(&pki.client)).await.unwrap();
    assert_eq!(http_status(s, &post(&good)).await, 202);
    // Over TLS, a missing token is still refused from the head, before the (never sent) body.
    let s = connect(addr, &pki.ca, Some(&pki.client)).await.unwrap();
    let started = std::time::Instant::now();
    let big = "POST /ingest HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000000\r\n\r\nMSH|";
    assert_eq!(http_status(s, big).await, 401);
    assert!(started.elapsed() < Duration::from_secs(5));
    // Refused clients and plain HTTP: no answer at all, nothing stored.
    for identity in [None, Some(&pki.stranger)] {
        let status = match connect(addr, &pki.ca, identity).await {
            Ok(s) => http_status(s, &post(&good)).await,
            Err(_) => 0,
        };
        assert_eq!(status, 0, "client {identity:?} was answered");
    }
    let plain = TcpStream::connect(addr).await.unwrap();
    assert_eq!(http_status(plain, &post(&good)).await, 0);
    assert_eq!(h.total().await, 1);
    h.shutdown(sources).await;
}

#[tokio::test]
async fn failed_handshakes_are_counted_and_do_not_stop_the_acceptor() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let acceptor = TlsAcceptor::load("test", &pki.settings(true), &[]).unwrap();
    assert!(acceptor.is_mutual());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = {
        let acceptor = Arc::clone(&acceptor);
        tokio::spawn(async move {
            let (_stop, mut shutdown) = tokio::sync::watch::channel(false);
            let mut served = 0;
            for _ in 0..3 {
                let (stream, peer) = listener.accept().await.unwrap();
                if let Some(mut tls) = acceptor.accept(stream, peer, &mut shutdown).await {
                    let mut b = [0u8; 2];
                    // TLS 1.3: the client certificate is checked on the first read.
                    if tls.read_exact(&mut b).await.is_ok() {
                        tls.write_all(&b).await.unwrap();
                        tls.flush().await.unwrap();
                        served += 1;
                    }
                }
            }
            served
        })
    };
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain.write_all(b"MSH|^~\\&|\r\n").await.unwrap();
    let _ = connect(addr, &pki.ca, Some(&pki.stranger)).await;
    let mut ok = connect(addr, &pki.ca, Some(&pki.client)).await.unwrap();
    ok.write_all(b"hi").await.unwrap();
    ok.flush().await.unwrap();
    let mut back = [0u8; 2];
    ok.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"hi");
    assert_eq!(server.await.unwrap(), 1);
    assert_eq!(acceptor.handshake_failures(), 2);
}

#[test]
fn unusable_certificate_files_are_named_in_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let load = |s: &TlsSettings| TlsAcceptor::load("sources.lab", s, &[]).unwrap_err();

    let mut s = pki.settings(false);
    s.cert = tmp.path().join("missing.pem");
    let err = load(&s);
    assert!(matches!(err, TlsError::Read { key: "cert", .. }), "{err}");
    assert!(err.to_string().contains("missing.pem"), "{err}");

    let mut s = pki.settings(false);
    s.cert = pki.server_key.clone();
    let err = load(&s);
    assert!(err.to_string().contains("no certificate"), "{err}");

    let mut s = pki.settings(false);
    s.key = pki.server_cert.clone();
    let err = load(&s);
    assert!(matches!(err, TlsError::Pem { key: "key", .. }), "{err}");

    // A key that is not the certificate's.
    let mut s = pki.settings(false);
    s.key = pki.client.1.clone();
    let err = load(&s);
    assert!(matches!(err, TlsError::Config { .. }), "{err}");

    let mut s = pki.settings(true);
    s.client_ca = Some(pki.server_key.clone());
    let err = load(&s);
    assert!(err.to_string().contains("tls.client_ca"), "{err}");
    assert!(err.to_string().starts_with("sources.lab: "), "{err}");
}
