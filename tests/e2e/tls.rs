//! Security of the surfaces through the real daemon: MLLP, HTTP ingest and the admin API over
//! TLS (mutual TLS on the sources) with certificates generated here, tokens on HTTPS ingest,
//! and no patient data in the logs at info level.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use passerelle_tests::daemon::{Setup, free_port};
use passerelle_tests::mllp::{MllpClient, msa, oru};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConnection, StreamOwned};

const TOKEN: &str = "e2e-ingest-token-0123456789abcdef";
const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789abcdef";
const TO_A: &str = "[[route]]\nname = \"all\"\ndestinations = [\"a\"]\n";

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate and key signed by `issuer`, written as `dir/name.pem`, `dir/name-key.pem`.
fn leaf(dir: &Path, name: &str, issuer: &CertifiedIssuer<'static, KeyPair>) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &**issuer).unwrap();
    let paths = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    std::fs::write(&paths.0, cert.pem()).unwrap();
    std::fs::write(&paths.1, key.serialize_pem()).unwrap();
    paths
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A TLS client trusting `ca.pem` in `dir`, with `identity` as its certificate; the handshake
/// is driven to its end (an error when the server refuses during it).
fn connect(port: u16, dir: &Path, identity: Option<&(PathBuf, PathBuf)>) -> std::io::Result<Tls> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
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
    let conn = ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
        .map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// One MLLP exchange; the ACK's MSA-1, `None` when the connection ends without one.
fn mllp(mut s: impl Read + Write, message: &str) -> Option<String> {
    s.write_all(format!("\x0b{message}\x1c\r").as_bytes())
        .ok()?;
    s.flush().ok()?;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !got.ends_with(b"\x1c\r") {
        match s.read(&mut chunk) {
            Ok(n) if n > 0 => got.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
    Some(msa(&String::from_utf8_lossy(&got)).0)
}

/// One HTTP/1.1 exchange (`Connection: close`): status and body; status 0 without an answer.
fn http(mut s: impl Read + Write, request: &str) -> (u16, String) {
    if s.write_all(request.as_bytes())
        .and_then(|()| s.flush())
        .is_err()
    {
        return (0, String::new());
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (status, body.unwrap_or_default())
}

fn post(path: &str, token: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn mllp_https_ingest_and_admin_over_tls_refuse_clients_without_a_valid_certificate() {
    let admin_port = free_port();
    let server = "cert = \"server.pem\"\nkey = \"server-key.pem\"\n";
    let extra = format!(
        "\n[sources.lab-mllp.tls]\n{server}client_ca = \"ca.pem\"\n\
         [sources.lab-http.tls]\n{server}client_ca = \"ca.pem\"\n\
         [admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken_file = \"admin-tokens\"\n\
         [admin.tls]\n{server}"
    );
    let setup = Setup::new(&extra, TO_A);
    // The token belongs to `[sources.lab-http]` itself, already written above `extra`.
    let config = std::fs::read_to_string(setup.config()).unwrap().replacen(
        "path = \"/ingest\"\n",
        "path = \"/ingest\"\ntoken_file = \"ingest-tokens\"\n",
        1,
    );
    std::fs::write(setup.config(), config).unwrap();
    let dir = setup.dir.path();
    let ca1 = ca("Passerelle e2e CA");
    std::fs::write(dir.join("ca.pem"), ca1.pem()).unwrap();
    leaf(dir, "server", &ca1);
    let client = leaf(dir, "client", &ca1);
    let stranger = leaf(dir, "stranger", &ca("Another CA"));
    std::fs::write(dir.join("ingest-tokens"), format!("lab-sender {TOKEN}\n")).unwrap();
    std::fs::write(dir.join("admin-tokens"), format!("ops {ADMIN_TOKEN}\n")).unwrap();
    let daemon = setup.start();

    // MLLP: a trusted client gets its ACK.
    let s = connect(setup.mllp_port, dir, Some(&client)).unwrap();
    assert_eq!(mllp(s, &oru("TLS-MLLP-1", 1)).as_deref(), Some("AA"));
    // No certificate, a certificate of another CA, plain MLLP: no ACK.
    for identity in [None, Some(&stranger)] {
        let acked = connect(setup.mllp_port, dir, identity)
            .ok()
            .and_then(|s| mllp(s, &oru("TLS-MLLP-NO", 2)));
        assert_eq!(acked, None, "{identity:?}");
    }
    let plain = MllpClient::connect(setup.mllp_port)
        .ok()
        .and_then(|mut c| c.send(&oru("PLAIN-MLLP", 3)).ok());
    assert_eq!(plain, None, "plain MLLP on a TLS port was acknowledged");

    // HTTPS ingest: the trusted client with the token is stored; without a token, 401 at
    // once although the announced body never comes.
    let s = connect(setup.http_port, dir, Some(&client)).unwrap();
    let (status, body) = http(s, &post("/ingest", TOKEN, &oru("TLS-HTTP-1", 4)));
    assert_eq!(status, 202, "{body}");
    let s = connect(setup.http_port, dir, Some(&client)).unwrap();
    let started = Instant::now();
    let (status, _) = http(
        s,
        "POST /ingest HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000000\r\n\r\nMSH|",
    );
    assert_eq!(status, 401);
    assert!(started.elapsed() < Duration::from_secs(5));
    for identity in [None, Some(&stranger)] {
        let status = connect(setup.http_port, dir, identity)
            .map(|s| http(s, &post("/ingest", TOKEN, &oru("TLS-HTTP-NO", 5))).0)
            .unwrap_or(0);
        assert_eq!(status, 0, "{identity:?}");
    }
    let plain = TcpStream::connect(("127.0.0.1", setup.http_port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(
        http(plain, &post("/ingest", TOKEN, &oru("PLAIN-HTTP", 6))).0,
        0
    );

    // The admin API over TLS (no client certificate required there): exactly the two messages
    // of the trusted client are in the journal.
    let deadline = Instant::now() + Duration::from_secs(30);
    let messages = loop {
        let answer = connect(admin_port, dir, None).ok().map(|s| {
            http(
                s,
                &format!(
                    "GET /messages HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n"
                ),
            )
        });
        if let Some((200, body)) = answer {
            break serde_json::from_str::<serde_json::Value>(&body).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "admin API over TLS not up\n{}",
            daemon.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let list = messages["messages"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{messages}");
    let plain = TcpStream::connect(("127.0.0.1", admin_port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "GET /messages HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n"
    );
    assert_eq!(
        http(plain, &request).0,
        0,
        "plain HTTP on the TLS admin port"
    );

    let logs = daemon.logs();
    assert!(logs.contains("TLS handshake failed"), "{logs}");
    assert!(!logs.contains(TOKEN) && !logs.contains(ADMIN_TOKEN));
}

#[test]
fn patient_data_stays_out_of_the_logs_at_info_level() {
    const NAME: &str = "QUIMPERLEZ^ANNE-SOIZIC";
    const INS: &str = "279035121518989";
    let setup = Setup::new("", TO_A);
    let daemon = setup.start();
    let with_patient = |id: &str| {
        oru(id, 9).replace(
            "PID|||IPP9^^^HOSP&1.2.250.1.71.4.2.7&ISO^PI||DOE^JOHN",
            &format!("PID|||{INS}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS||{NAME}"),
        )
    };
    let mut client = MllpClient::connect(setup.mllp_port).unwrap();
    assert_eq!(msa(&client.send(&with_patient("LOG-1")).unwrap()).0, "AA");
    // Not HL7 (stored as failed, AR) and a message the plugin rejects (AE): both quote the
    // patient.
    let not_hl7 = format!("patient {NAME} {INS}");
    assert_eq!(msa(&client.send(&not_hl7).unwrap()).0, "AR");
    let rejected = with_patient("LOG-2").replace("ORU^R01^ORU_R01", "ZZZ^Z99");
    let code = msa(&client.send(&rejected).unwrap()).0;
    assert!(code == "AE" || code == "AA", "{code}");
    // HTTP: accepted.
    let s = TcpStream::connect(("127.0.0.1", setup.http_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = with_patient("LOG-3");
    let request = format!(
        "POST /ingest HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(http(s, &request).0, 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    while setup.delivered("a").len() < 2 {
        assert!(Instant::now() < deadline, "no delivery\n{}", daemon.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The records did carry the patient (so the check below is not vacuous).
    let record =
        std::fs::read_to_string(setup.path(&format!("data/out/a/{}", setup.delivered("a")[0])))
            .unwrap();
    assert!(record.contains("QUIMPERLEZ"), "{record}");
    let logs = daemon.logs();
    assert!(logs.contains("INFO"), "the log is at info level: {logs}");
    for secret in ["QUIMPERLEZ", "ANNE-SOIZIC", INS] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
}
