//! The admin API over real HTTP on 127.0.0.1, on a real topology: the `hostile` test plugin
//! (mode `good`: one record per message, MSH-10 as the message id; `REJECT` in a payload is
//! rejected), HTTP source `web` routed to the file destination `out`, HTTP source `web2`
//! routed to `broken` (an HTTP destination on a closed port, one attempt: dead at once).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::Config;
use crate::topology::Topology;

const TOKEN: &str = "test-admin-token-0123456789";

fn hostile_wasm() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    let path = target.join("wasm32-wasip2/plugin/hostile.wasm");
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-plugins.sh",
        path.display()
    );
    path
}

struct Fixture {
    topology: Topology,
    admin: SocketAddr,
    web: SocketAddr,
    web2: SocketAddr,
    dir: tempfile::TempDir,
}

async fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::fs::write(dir.path().join("tokens"), format!("# test\n{TOKEN}\n")).unwrap();
    std::fs::write(
        dir.path().join("routes.toml"),
        "[[route]]\nname = \"web\"\ndestinations = [\"out\"]\nmatch = { source = \"web\" }\n\
         [[route]]\nname = \"web2\"\ndestinations = [\"broken\"]\nmatch = { source = \"web2\" }\n",
    )
    .unwrap();
    let config = format!(
        r#"
data_dir = "data"
routes = "routes.toml"

[plugins.hostile]
path = "{wasm}"
settings = {{ mode = "good" }}

[sources.web]
type = "http"
listen = "127.0.0.1:0"
path = "/ingest"
plugin = "hostile"

[sources.web2]
type = "http"
listen = "127.0.0.1:0"
path = "/ingest"
plugin = "hostile"

[destinations.out]
type = "file"
dir = "out"

[destinations.broken]
type = "http"
url = "http://{closed}/fhir"
retry = {{ max_attempts = 1 }}

[admin]
listen = "127.0.0.1:0"
token_file = "tokens"
"#,
        wasm = hostile_wasm().display()
    );
    let file = dir.path().join("passerelle.toml");
    std::fs::write(&file, &config).unwrap();
    let config = Config::load(&file, None).unwrap();
    let topology = Topology::start(&config).await.unwrap();
    let sources = topology.sources.as_ref().unwrap();
    Fixture {
        admin: topology.admin_addr().unwrap(),
        web: sources.addr("web").unwrap(),
        web2: sources.addr("web2").unwrap(),
        topology,
        dir,
    }
}

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

/// One request with `Connection: close`; the whole response.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Reply {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .expect("an answer within 30 s")
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Reply {
        status: head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

async fn get(f: &Fixture, path: &str) -> Value {
    let r = call(f.admin, "GET", path, Some(TOKEN), "").await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json()
}

async fn post(f: &Fixture, path: &str, body: &str) -> Reply {
    call(f.admin, "POST", path, Some(TOKEN), body).await
}

/// Sends an HL7-ish message to an HTTP source; returns the stored message id.
async fn send(addr: SocketAddr, control_id: &str) -> i64 {
    let payload = format!("MSH|^~\\&|LAB|HOSP|P|D|20240101||ORU^R01|{control_id}|P|2.5\rPID|||1");
    let r = call(addr, "POST", "/ingest", None, &payload).await;
    assert!(
        r.status == 202 || r.status == 422,
        "{} {}",
        r.status,
        r.body
    );
    r.json()["message_id"].as_i64().unwrap()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_are_refused_before_the_body_is_read() {
    let f = start().await;
    let r = call(f.admin, "GET", "/health", None, "").await;
    assert_eq!(
        (r.status, r.json()),
        (200, serde_json::json!({"status": "ok"}))
    );
    for token in [None, Some("wrong-token-0123456789"), Some("")] {
        for (method, path) in [
            ("GET", "/sources"),
            ("GET", "/metrics"),
            ("POST", "/messages/1/replay"),
        ] {
            let r = call(f.admin, method, path, token, "").await;
            assert_eq!(r.status, 401, "{method} {path} with {token:?}");
            assert!(
                r.headers.contains("www-authenticate: bearer"),
                "{}",
                r.headers
            );
            assert!(!r.body.contains("sources"));
        }
    }
    assert_eq!(
        call(f.admin, "GET", "/sources", Some(TOKEN), "")
            .await
            .status,
        200
    );

    // A 1 GiB body with a wrong token: refused from the head, the body is never read and the
    // connection is closed (writing the rest fails long before 1 GiB).
    let started = Instant::now();
    let mut s = TcpStream::connect(f.admin).await.unwrap();
    s.write_all(
        b"POST /messages/replay HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer nope-0123456789abcdef\r\n\
          Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{",
    )
    .await
    .unwrap();
    let mut head = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut head))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let chunk = vec![b' '; 1 << 20];
    let mut sent = 0usize;
    let write_failed = loop {
        match tokio::time::timeout(Duration::from_secs(5), s.write_all(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len(),
            Ok(Err(_)) => break true,
            Err(_) => break true, // the peer stopped reading: nothing more is accepted
        }
        if sent >= 512 << 20 {
            break false;
        }
    };
    assert!(
        write_failed,
        "the server read {sent} bytes of an unauthenticated body"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    f.topology.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_browser_replay_dead_letters_pause_and_metrics() {
    let f = start().await;
    let out = f.dir.path().join("data/out");

    // --- status endpoints
    let ready = get(&f, "/ready").await;
    assert_eq!(
        (ready["status"].as_str(), ready["journal"].as_str()),
        (Some("ready"), Some("ok"))
    );
    let sources = get(&f, "/sources").await;
    let names: Vec<_> = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "web2"]);
    assert_eq!(sources["sources"][0]["type"], "http");
    assert_eq!(sources["sources"][0]["plugin"], "hostile");
    let plugins = get(&f, "/plugins").await;
    let p = &plugins["plugins"][0];
    assert_eq!(
        (
            p["name"].as_str(),
            p["version"].as_str(),
            p["state"].as_str()
        ),
        (Some("hostile"), Some("0.1.0"), Some("serving"))
    );
    assert_eq!(p["sha256"].as_str().unwrap().len(), 64);
    assert!(
        p["limits"]["timeout_ms"].is_number() && p["traps"].is_number() && p["reloads"].is_number()
    );
    let routes = get(&f, "/routes").await;
    assert_eq!(routes["routes"], 2);
    assert_eq!(routes["version"].as_str().unwrap().len(), 12);
    assert!(routes["loaded_at"].is_string() && routes["last_error"].is_null());

    // --- messages: 3 accepted, 1 rejected
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(send(f.web, &format!("OK{i}")).await);
    }
    let rejected = send(f.web, "REJECT1").await;
    eventually("3 files in out", async || files(&out) == 3).await;
    let failed = get(&f, "/messages?status=failed").await;
    assert_eq!(failed["messages"].as_array().unwrap().len(), 1);
    assert_eq!(failed["messages"][0]["id"], rejected);
    assert!(
        failed["messages"][0]["error"]
            .as_str()
            .unwrap()
            .contains("rejected")
    );
    let page = get(&f, "/messages?source=web&limit=2").await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
    let next = page["next"].as_i64().unwrap();
    let rest = get(&f, &format!("/messages?source=web&limit=2&after={next}")).await;
    assert_eq!(rest["messages"].as_array().unwrap().len(), 2);
    assert!(rest["next"].is_i64());
    let by_id = get(&f, "/messages?message_id=OK1").await;
    assert_eq!(by_id["messages"][0]["id"], ids[1]);
    let bad = call(f.admin, "GET", "/messages?satus=failed", Some(TOKEN), "").await;
    assert_eq!(bad.status, 400, "{}", bad.body);

    eventually("delivered status", async || {
        get(&f, &format!("/messages/{}", ids[0])).await["status"] == "delivered"
    })
    .await;
    let shown = get(&f, &format!("/messages/{}", ids[0])).await;
    assert_eq!(shown["content"]["encoding"], "utf-8");
    assert!(
        shown["content"]["data"]
            .as_str()
            .unwrap()
            .starts_with("MSH|")
    );
    assert!(shown["rules_version"].is_string());
    let record = &shown["records"][0];
    assert_eq!(record["envelope"]["source_message_id"], "OK0");
    assert_eq!(record["bundle"]["resourceType"], "Bundle");
    let delivery = &record["deliveries"][0];
    assert_eq!(
        (delivery["destination"].as_str(), delivery["state"].as_str()),
        (Some("out"), Some("delivered"))
    );
    assert_eq!(delivery["history"][0]["outcome"], "delivered");
    assert_eq!(
        call(f.admin, "GET", "/messages/999999", Some(TOKEN), "")
            .await
            .status,
        404
    );

    // --- replay: same record ids, duplicates, no second file
    let r = post(&f, &format!("/messages/{}/replay", ids[0]), "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let replayed = r.json();
    assert_eq!(
        (
            replayed["outcome"].as_str(),
            replayed["duplicate_records"].as_u64()
        ),
        (Some("accepted"), Some(1))
    );
    let new_id = replayed["message_id"].as_i64().unwrap();
    assert!(new_id > rejected);
    let again = get(&f, &format!("/messages/{new_id}")).await;
    assert_eq!(again["peer"], format!("replay:{}", ids[0]));
    assert_eq!(again["records"][0]["duplicate"], true);
    let bulk = post(&f, "/messages/replay", r#"{"message_id": "OK2"}"#).await;
    assert_eq!(bulk.status, 200, "{}", bulk.body);
    assert_eq!(bulk.json()["count"], 1);
    assert_eq!(
        post(&f, "/messages/replay", "{}").await.status,
        400,
        "a filter is required"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(files(&out), 3, "a replay delivers nothing twice");

    // --- dead letters: web2 → broken (closed port, one attempt)
    let dead_msg = send(f.web2, "DEAD1").await;
    let dead_msg2 = send(f.web2, "DEAD2").await;
    let mut dead = Value::Null;
    eventually("2 dead letters", async || {
        dead = get(&f, "/dead-letters?destination=broken").await;
        dead["dead_letters"].as_array().unwrap().len() == 2
    })
    .await;
    let letters = dead["dead_letters"].as_array().unwrap();
    let first = letters
        .iter()
        .find(|d| d["message_id"] == dead_msg)
        .unwrap();
    let second = letters
        .iter()
        .find(|d| d["message_id"] == dead_msg2)
        .unwrap();
    assert!(
        first["last_error"]
            .as_str()
            .unwrap()
            .contains("gave up after 1 attempts"),
        "{first}"
    );
    let destinations = get(&f, "/destinations").await;
    let broken = destinations["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "broken")
        .unwrap()
        .clone();
    assert_eq!(
        (
            broken["dead_letters"].as_u64(),
            broken["queue_depth"].as_u64(),
            broken["state"].as_str()
        ),
        (Some(2), Some(0), Some("running"))
    );
    assert!(broken["last_error"].is_string());

    let discard = post(
        &f,
        &format!("/dead-letters/{}/discard", second["outbox_id"]),
        "",
    )
    .await;
    assert_eq!(
        (discard.status, discard.json()["state"].as_str()),
        (200, Some("discarded"))
    );
    assert_eq!(
        get(&f, &format!("/messages/{dead_msg2}")).await["status"],
        "discarded"
    );
    assert_eq!(
        post(
            &f,
            &format!("/dead-letters/{}/discard", second["outbox_id"]),
            ""
        )
        .await
        .status,
        404
    );
    let retry = post(
        &f,
        &format!("/dead-letters/{}/retry", first["outbox_id"]),
        "",
    )
    .await;
    assert_eq!(
        (retry.status, retry.json()["state"].as_str()),
        (200, Some("pending"))
    );
    // Retried at once, fails again (still closed): dead again, with the history.
    eventually("dead again", async || {
        get(&f, "/dead-letters?destination=broken").await["dead_letters"]
            .as_array()
            .unwrap()
            .len()
            == 1
            && get(&f, &format!("/messages/{dead_msg}")).await["status"] == "dead"
    })
    .await;
    let history: Vec<String> =
        get(&f, &format!("/messages/{dead_msg}")).await["records"][0]["deliveries"][0]["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["outcome"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(history, ["dead", "requeued", "dead"]);

    // --- pause / resume
    let r = post(&f, "/destinations/out/pause", "").await;
    assert_eq!((r.status, r.json()["paused"].as_bool()), (200, Some(true)));
    assert_eq!(post(&f, "/destinations/nope/pause", "").await.status, 404);
    assert_eq!(
        call(f.admin, "GET", "/destinations/out/pause", Some(TOKEN), "")
            .await
            .status,
        405
    );
    send(f.web, "PAUSED1").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(files(&out), 3, "nothing delivered while paused");
    let out_status = get(&f, "/destinations").await["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "out")
        .unwrap()
        .clone();
    assert_eq!(
        (
            out_status["state"].as_str(),
            out_status["queue_depth"].as_u64()
        ),
        (Some("paused"), Some(1))
    );
    assert_eq!(post(&f, "/destinations/out/resume", "").await.status, 200);
    eventually("delivered after resume", async || files(&out) == 4).await;

    // --- metrics (this process's registry is shared by the tests: check presence and lows)
    let r = call(f.admin, "GET", "/metrics", Some(TOKEN), "").await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers.contains("content-type: text/plain"),
        "{}",
        r.headers
    );
    for needle in [
        "passerelle_messages_received_total{source=\"web\",plugin=\"hostile\"}",
        "passerelle_messages_failed_total{source=\"web\",plugin=\"hostile\"}",
        "passerelle_records_routed_total{route=\"web\",destination=\"out\"}",
        "passerelle_deliveries_total{destination=\"out\"}",
        "passerelle_dead_letters_total{destination=\"broken\"}",
        "passerelle_queue_depth{destination=\"out\"} 0",
        "passerelle_dead_letters{destination=\"broken\"} 1",
        "passerelle_plugin_adapt_seconds_bucket{plugin=\"hostile\"",
        "passerelle_ack_latency_seconds_count{source=\"web\"}",
        "passerelle_journal_commit_seconds_count",
        "passerelle_journal_transactions_total ",
        "passerelle_journal_requests_total ",
        "passerelle_journal_largest_batch ",
        "passerelle_route_reloads_total 0",
        "passerelle_plugin_reloads_total{plugin=\"hostile\"} 0",
    ] {
        assert!(r.body.contains(needle), "{needle} missing from\n{}", r.body);
    }
    // The journal's group commit: every message above went through it.
    let value = |name: &str| -> u64 {
        r.body
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} has no value in\n{}", r.body))
    };
    let (transactions, requests) = (
        value("passerelle_journal_transactions_total"),
        value("passerelle_journal_requests_total"),
    );
    assert!(
        transactions >= 1 && requests >= transactions,
        "{transactions} transactions, {requests} requests"
    );

    // --- unknown endpoint, wrong method
    assert_eq!(
        call(f.admin, "GET", "/nope", Some(TOKEN), "").await.status,
        404
    );
    assert_eq!(
        call(f.admin, "DELETE", "/messages", Some(TOKEN), "")
            .await
            .status,
        405
    );
    f.topology.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_plugin_is_shown_and_resumed_with_its_held_messages() {
    let f = start().await;
    let plugins = get(&f, "/plugins").await;
    let p = &plugins["plugins"][0];
    assert_eq!(p["state"], "serving");
    assert_eq!(p["breaker"]["state"], "serving");
    assert_eq!(p["breaker"]["threshold"], 5);
    assert_eq!(p["held_messages"], 0);
    assert_eq!(p["limits"]["breaker_failures"], 5);
    // Resuming a serving plugin is harmless; unknown plugin, wrong method.
    let r = post(&f, "/plugins/hostile/resume", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (
            r.json()["state"].as_str(),
            r.json()["was_suspended"].as_bool()
        ),
        (Some("serving"), Some(false))
    );
    assert_eq!(post(&f, "/plugins/nope/resume", "").await.status, 404);
    assert_eq!(
        call(f.admin, "GET", "/plugins/hostile/resume", Some(TOKEN), "")
            .await
            .status,
        405
    );

    // Suspended (as its breaker does after repeated traps): messages are held (202).
    f.topology
        .plugins
        .breaker("hostile")
        .unwrap()
        .suspend("test");
    let payload = "MSH|^~\\&|LAB|HOSP|P|D|20240101||ORU^R01|HELD-1|P|2.5\rPID|||1";
    let r = call(f.web, "POST", "/ingest", None, payload).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(r.json()["held"].is_string(), "{}", r.body);
    let id = r.json()["message_id"].as_i64().unwrap();
    let plugins = get(&f, "/plugins").await;
    let p = &plugins["plugins"][0];
    assert_eq!(
        (p["state"].as_str(), p["held_messages"].as_u64()),
        (Some("suspended"), Some(1))
    );
    assert_eq!(p["breaker"]["reason"], "test");
    assert!(p["breaker"]["suspended_at"].is_string());
    assert_eq!(get(&f, &format!("/messages/{id}")).await["status"], "held");
    // Replaying a held message while its plugin is suspended is refused.
    let r = post(&f, &format!("/messages/{id}/replay"), "").await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = call(f.admin, "GET", "/metrics", Some(TOKEN), "").await;
    assert!(
        r.body
            .contains("passerelle_plugin_suspended{plugin=\"hostile\"} 1"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("passerelle_plugin_held_messages{plugin=\"hostile\"} 1")
    );

    let r = post(&f, "/plugins/hostile/resume", "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["was_suspended"], true);
    eventually("held message adapted", async || {
        get(&f, &format!("/messages/{id}")).await["status"] != "held"
    })
    .await;
    let m = get(&f, &format!("/messages/{id}")).await;
    assert_eq!(m["source_message_id"], "HELD-1");
    assert_eq!(m["records"].as_array().unwrap().len(), 1);
    eventually("serving again", async || {
        get(&f, "/plugins").await["plugins"][0]["state"] == "serving"
    })
    .await;
    assert_eq!(get(&f, "/plugins").await["plugins"][0]["held_messages"], 0);
    f.topology.shutdown().await;
}

/// The audit entries of the fixture's log, as (actor, action, target, outcome).
fn audit_entries(f: &Fixture) -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(f.dir.path().join("data/audit.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (s("actor"), s("action"), s("target"), s("outcome"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_actions_and_reloads_are_audited() {
    let f = start().await;
    let log = f.dir.path().join("data/audit.jsonl");
    let entry = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_string(), b.to_string(), c.to_string(), d.to_string())
    };
    let admin = "admin:token-".to_string();
    let before = audit_entries(&f);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(
        (before[0].0.as_str(), before[0].1.as_str()),
        ("daemon", "daemon.start")
    );

    // One entry per admin action, failed ones included; reads are not audited.
    get(&f, "/destinations").await;
    assert_eq!(post(&f, "/destinations/out/pause", "").await.status, 200);
    assert_eq!(post(&f, "/destinations/out/resume", "").await.status, 200);
    assert_eq!(post(&f, "/destinations/nope/pause", "").await.status, 404);
    assert_eq!(post(&f, "/plugins/hostile/resume", "").await.status, 200);
    let id = send(f.web, "AUDIT-1").await;
    assert_eq!(
        post(&f, &format!("/messages/{id}/replay"), "").await.status,
        200
    );
    let ins = "279035121518989";
    let r = post(&f, "/messages/replay", &format!("{{\"ins\": \"{ins}\"}}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(post(&f, "/dead-letters/999999/retry", "").await.status, 404);
    let entries = audit_entries(&f);
    let actions: Vec<_> = entries[1..]
        .iter()
        .map(|(actor, action, target, outcome)| {
            assert!(actor.starts_with(&admin), "{actor}");
            (action.as_str(), target.as_str(), outcome.as_str())
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("destination.pause", "out", "ok"),
            ("destination.resume", "out", "ok"),
            ("destination.pause", "nope", "not-found"),
            ("plugin.resume", "hostile", "ok"),
            ("message.replay", id.to_string().as_str(), "ok"),
            ("messages.replay", "search", "ok"),
            ("dead-letter.retry", "999999", "not-found"),
        ]
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("filters=ins"), "{text}");
    assert!(
        !text.contains(ins),
        "a filter value (INS) in the audit log: {text}"
    );
    assert!(!text.contains(TOKEN));

    // Reloads: an applied and a rejected routes file (explicit reload = SIGHUP), an
    // unchanged plugin (no entry).
    let routes = f.dir.path().join("routes.toml");
    std::fs::write(
        &routes,
        "[[route]]\nname = \"all\"\ndestinations = [\"out\"]\n",
    )
    .unwrap();
    f.topology.routes.reload_now().unwrap();
    std::fs::write(
        &routes,
        "[[route]]\nname = \"bad\"\ndestinations = [\"nowhere\"]\n",
    )
    .unwrap();
    assert!(f.topology.routes.reload_now().is_err());
    assert!(!f.topology.plugins.reload("hostile").unwrap());
    let entries = audit_entries(&f);
    let n = entries.len();
    let routes_target = routes.display().to_string();
    // The watcher may also have seen the writes: look at the explicit reloads.
    let sighup: Vec<_> = entries
        .iter()
        .filter(|e| e.0 == "sighup")
        .cloned()
        .collect();
    assert_eq!(
        sighup,
        [
            entry("sighup", "routes.reload", &routes_target, "applied"),
            entry("sighup", "routes.reload", &routes_target, "rejected"),
        ],
        "{entries:?}"
    );
    assert!(entries.iter().all(|e| e.1 != "plugin.reload"));
    let after = std::fs::read_to_string(&log).unwrap();
    assert!(after.starts_with(&text), "the log is only appended to");
    assert_eq!(super::audit::verify(&log).unwrap(), n);
    f.topology.shutdown().await;
}
