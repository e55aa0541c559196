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
