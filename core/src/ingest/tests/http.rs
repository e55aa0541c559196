use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Harness, PLUGIN, oru};
use crate::config::{HttpSource, SourceConfig};

const LIMIT: usize = 1000;

fn config() -> SourceConfig {
    SourceConfig::Http(HttpSource {
        plugin: PLUGIN.into(),
        content_type: None,
        charset: None,
        listen: "127.0.0.1:0".into(),
        path: "/ingest/lab".into(),
        max_body_bytes: LIMIT,
        token_file: None,
        token_env: None,
        max_connections_per_peer: 0,
        tls: None,
    })
}

struct Reply {
    status: u16,
    headers: String,
    json: serde_json::Value,
}

/// Sends raw request bytes (with `Connection: close`) and reads the whole response.
async fn raw(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The server may answer (and close) before reading everything: ignore write errors.
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .expect("a response within 20 s");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {head}"));
    let json = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
    };
    Reply {
        status,
        headers: head.to_ascii_lowercase(),
        json,
    }
}

async fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Reply {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    raw(addr, &req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_is_stored_and_answered_202() {
    let h = Harness::new();
    let sources = h.start("lab-http", config());
    let addr = sources.addr("lab-http").unwrap();
    let body = oru("HTTP-1");
    let r = request(addr, "POST", "/ingest/lab", body.as_bytes()).await;
    assert_eq!(r.status, 202, "{}", r.json);
    assert!(r.headers.contains("content-type: application/json"));
    let id = r.json["message_id"].as_i64().expect("message_id");
    assert_eq!(r.json["records"], 1);
    assert_eq!(r.json["duplicates"], 0);
    let m = h.message(id).await;
    assert_eq!(m.source, "lab-http");
    assert_eq!(m.payload, body.as_bytes());
    assert_eq!(m.source_message_id.as_deref(), Some("HTTP-1"));
    assert!(
        m.peer
            .as_deref()
            .is_some_and(|p| p.starts_with("127.0.0.1:"))
    );

    // The same message again: stored again, its record is a duplicate.
    let r = request(addr, "POST", "/ingest/lab", body.as_bytes()).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.json["duplicates"], 1);
    assert_eq!(h.total().await, 2);
    h.shutdown(sources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_is_422_with_location() {
    let h = Harness::new();
    let sources = h.start("h", config());
    let addr = sources.addr("h").unwrap();
    let r = request(addr, "POST", "/ingest/lab", b"MSH|^~\\&|REJECT").await;
    assert_eq!(r.status, 422, "{}", r.json);
    let id = r.json["message_id"].as_i64().unwrap();
    assert_eq!(r.json["location"], "line 1");
    assert!(
        r.json["error"].as_str().unwrap().contains("malformed"),
        "{}",
        r.json
    );
    assert_eq!(h.message(id).await.status.as_str(), "failed");
    h.shutdown(sources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_413_and_not_stored() {
    let h = Harness::new();
    let sources = h.start("h", config());
    let addr = sources.addr("h").unwrap();

    // Declared too large: refused from the header, body not needed.
    let req = format!(
        "POST /ingest/lab HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\nMSH|",
        LIMIT + 1
    );
    let r = raw(addr, req.as_bytes()).await;
    assert_eq!(r.status, 413);
    assert!(
        r.json["error"].as_str().unwrap().contains("larger than"),
        "{}",
        r.json
    );

    // Chunked, no length: refused once the cap is passed.
    let chunk = "x".repeat(600);
    let req = format!(
        "POST /ingest/lab HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    let r = raw(addr, req.as_bytes()).await;
    assert_eq!(r.status, 413);

    // Exactly at the limit is fine.
    let r = request(
        addr,
        "POST",
        "/ingest/lab",
        oru("X")
            .as_bytes()
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b'\r', LIMIT - oru("X").len()))
            .collect::<Vec<_>>()
            .as_slice(),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.json);
    assert_eq!(h.total().await, 1);
    h.shutdown(sources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_paths_and_methods() {
    let h = Harness::new();
    let sources = h.start("h", config());
    let addr = sources.addr("h").unwrap();
    let r = request(addr, "POST", "/elsewhere", b"MSH|").await;
    assert_eq!(r.status, 404);
    assert!(r.json["error"].is_string());
    let r = request(addr, "GET", "/ingest/lab", b"").await;
    assert_eq!(r.status, 405);
    assert!(r.headers.contains("allow: post"), "{}", r.headers);
    assert!(r.json["error"].is_string());
    let r = request(addr, "GET", "/health", b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["status"], "ok");
    assert_eq!(h.total().await, 0);
    h.shutdown(sources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_error_is_503_with_retry_after() {
    let h = Harness::new();
    let sources = h.start("h", config());
    let addr = sources.addr("h").unwrap();
    h.journal().clone().close().await;
    let r = request(addr, "POST", "/ingest/lab", oru("LOST").as_bytes()).await;
    assert_eq!(r.status, 503, "{}", r.json);
    assert!(r.headers.contains("retry-after: 1"), "{}", r.headers);
    assert!(
        r.json["error"].as_str().unwrap().contains("not stored"),
        "{}",
        r.json
    );
    h.shutdown(sources).await;
}

const INGEST_TOKEN: &str = "ingest-token-0123456789abcdef";

fn config_with(f: impl FnOnce(&mut HttpSource)) -> SourceConfig {
    let SourceConfig::Http(mut c) = config() else {
        unreachable!()
    };
    f(&mut c);
    SourceConfig::Http(c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_is_required_before_the_body_is_read() {
    let h = Harness::new();
    let file = h.tmp.path().join("ingest-tokens");
    std::fs::write(&file, format!("# senders\n{INGEST_TOKEN}\n")).unwrap();
    let sources = h.start("h", config_with(|c| c.token_file = Some(file)));
    let addr = sources.addr("h").unwrap();
    let body = oru("TOKEN-1");

    // No token, a wrong one, another scheme: 401, nothing stored.
    for auth in [
        String::new(),
        "Authorization: Bearer wrong-token-0123456789abcdef\r\n".into(),
        format!("Authorization: Basic {INGEST_TOKEN}\r\n"),
    ] {
        let req = format!(
            "POST /ingest/lab HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let r = raw(addr, req.as_bytes()).await;
        assert_eq!(r.status, 401, "{auth:?}: {}", r.json);
        assert!(
            r.headers.contains("www-authenticate: bearer"),
            "{}",
            r.headers
        );
        assert!(r.headers.contains("connection: close"), "{}", r.headers);
    }
    // The body is never read: a request announcing 1 GB, without sending it, is answered.
    let req = "POST /ingest/lab HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\nMSH|";
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("answered and closed without the body")
        .unwrap();
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 401"));
    assert_eq!(h.total().await, 0);

    // The right token: stored. Health needs none.
    let req = format!(
        "POST /ingest/lab HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {INGEST_TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = raw(addr, req.as_bytes()).await;
    assert_eq!(r.status, 202, "{}", r.json);
    let r = request(addr, "GET", "/health", b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(h.total().await, 1);
    h.shutdown(sources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_settings_without_any_token_refuse_to_start() {
    let h = Harness::new();
    let sources: std::collections::BTreeMap<String, SourceConfig> = [(
        "h".to_string(),
        config_with(|c| c.token_env = Some("PASSERELLE_TEST_UNSET_INGEST_TOKEN".into())),
    )]
    .into();
    let err =
        crate::ingest::start_all(&sources, h.pipeline.clone(), h.stop.subscribe()).unwrap_err();
    assert!(format!("{err:#}").contains("give no token"), "{err:#}");
    let empty = h.tmp.path().join("empty-tokens");
    std::fs::write(&empty, "# nobody\n").unwrap();
    let sources: std::collections::BTreeMap<String, SourceConfig> =
        [("h".to_string(), config_with(|c| c.token_file = Some(empty)))].into();
    assert!(crate::ingest::start_all(&sources, h.pipeline.clone(), h.stop.subscribe()).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_per_peer_cap_are_closed() {
    let h = Harness::new();
    let sources = h.start("h", config_with(|c| c.max_connections_per_peer = 1));
    let addr = sources.addr("h").unwrap();
    // One keep-alive connection is open (a request answered on it).
    let mut first = TcpStream::connect(addr).await.unwrap();
    first
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), first.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // A second one from the same address is closed without an answer.
    let mut second = TcpStream::connect(addr).await.unwrap();
    let _ = second
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), second.read_to_end(&mut out))
        .await
        .expect("closed in time");
    assert!(out.is_empty(), "{:?}", String::from_utf8_lossy(&out));
    // Once the first leaves, a new one is served.
    drop(first);
    let mut served = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s
            .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        if String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200") {
            served = true;
            break;
        }
    }
    assert!(served);
    h.shutdown(sources).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_is_503_with_retry_after_and_intake_resumes_when_space_returns() {
    let h = Harness::new();
    let sources = h.start("h", config_with(|c| c.max_body_bytes = 1 << 20));
    let addr = sources.addr("h").unwrap();
    let r = request(addr, "POST", "/ingest/lab", oru("FIRST").as_bytes()).await;
    assert_eq!(r.status, 202, "{}", r.json);
    super::mllp::fill_the_disk(&h).await;
    let big = super::mllp::big_oru("FULL");
    let r = request(addr, "POST", "/ingest/lab", big.as_bytes()).await;
    assert_eq!(r.status, 503, "{}", r.json);
    assert!(r.headers.contains("retry-after: 30"), "{}", r.headers);
    assert!(
        r.json["error"].as_str().unwrap().contains("disk full"),
        "{}",
        r.json
    );
    assert_eq!(h.total().await, 1);
    h.journal()
        .exec_on_writer("PRAGMA max_page_count = 1000000")
        .await
        .unwrap();
    let r = request(addr, "POST", "/ingest/lab", big.as_bytes()).await;
    assert_eq!(r.status, 202, "{}", r.json);
    assert_eq!(h.total().await, 2);
    h.shutdown(sources).await;
}
