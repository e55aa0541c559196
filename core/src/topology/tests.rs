//! The pipeline's safety valves with a real plugin and journal: the circuit breaker (hold,
//! resume, re-processing in place, new builds, restarts) and back-pressure (`max_pending`),
//! through the pipeline and through real MLLP and HTTP sources.
//!
//! The plugin is the `hostile` test guest: mode `panic-on-marker` panics on payloads containing
//! `PANIC` and adapts anything else into one record (`REJECT` in a payload is rejected as
//! malformed); mode `panic` panics on everything; mode `good` never does.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::{Ingested, Pipeline, SourceCtx, Waker};
use crate::config::{HttpSource, MllpSource, SourceConfig};
use crate::ingest::{Sources, start_all};
use crate::journal::{Journal, JournalError, MessageId, MessageStatus, Outcome};
use crate::plugin::{BreakerState, PluginEngine, PluginLimits, PluginRegistry, PluginSpec};
use crate::route::{RoutesHandle, RuleSet};

const PLUGIN: &str = "hostile";
const DEST: &str = "out";

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

/// The same component with a custom section appended: another build (another sha256) that
/// behaves the same.
fn another_build(wasm: &[u8], tag: &str) -> Vec<u8> {
    let name = b"passerelle-test";
    let mut content = vec![name.len() as u8];
    content.extend_from_slice(name);
    content.extend_from_slice(tag.as_bytes());
    assert!(content.len() < 128, "one-byte LEB128 size");
    let mut out = wasm.to_vec();
    out.push(0); // custom section
    out.push(content.len() as u8);
    out.extend(content);
    out
}

struct Rig {
    pipeline: Arc<Pipeline>,
    plugins: Arc<PluginRegistry>,
    stop: watch::Sender<bool>,
    wasm: PathBuf,
    _tmp: tempfile::TempDir,
}

fn ctx() -> SourceCtx {
    SourceCtx {
        name: "lab".into(),
        plugin: PLUGIN.into(),
        content_type: "x-application/hl7-v2+er7".into(),
        charset: None,
    }
}

/// A pipeline over a fresh journal and a fresh copy of the hostile plugin.
fn rig(mode: &str, breaker_failures: u32, max_pending: u64, wait: Duration) -> Rig {
    let tmp = tempfile::tempdir().unwrap();
    let wasm = tmp.path().join("hostile.wasm");
    std::fs::copy(hostile_wasm(), &wasm).unwrap();
    let spec = PluginSpec {
        name: PLUGIN.into(),
        path: wasm.clone(),
        limits: PluginLimits {
            timeout_ms: 10_000,
            breaker_failures,
            ..PluginLimits::default()
        },
        settings_json: format!(r#"{{"mode":"{mode}"}}"#),
        sha256: None,
    };
    let engine = PluginEngine::new(None).unwrap();
    let plugins = Arc::new(PluginRegistry::load_all(engine, vec![spec]).unwrap());
    let journal = Journal::open(&tmp.path().join("journal.db")).unwrap();
    let known: HashSet<String> = [DEST.to_string()].into();
    let rules = RuleSet::parse(
        tmp.path().join("routes.toml"),
        "[[route]]\nname = \"everything\"\ndestinations = [\"out\"]\n",
        &known,
    )
    .unwrap();
    let waker: Waker = Arc::new(|_: &str| {});
    let pipeline = Arc::new(
        Pipeline::new(
            journal,
            Arc::clone(&plugins),
            Arc::new(RoutesHandle::new(rules)),
            waker,
        )
        .with_backpressure(max_pending, wait)
        .with_sources([("lab".to_string(), ctx())].into()),
    );
    let weak = Arc::downgrade(&pipeline);
    plugins.set_new_build_hook(Box::new(move |name: &str| {
        if let Some(p) = weak.upgrade() {
            p.start_drain(name);
        }
    }));
    Rig {
        pipeline,
        plugins,
        stop: watch::channel(false).0,
        wasm,
        _tmp: tmp,
    }
}

impl Rig {
    fn journal(&self) -> &Journal {
        self.pipeline
            .journal()
            .expect("these tests run on the embedded journal")
    }

    fn state(&self) -> BreakerState {
        self.plugins.breaker(PLUGIN).unwrap().state()
    }

    async fn ingest(&self, payload: &str) -> Ingested {
        self.pipeline
            .ingest(&ctx(), payload.as_bytes().to_vec(), None)
            .await
            .unwrap()
    }

    async fn status(&self, id: MessageId) -> MessageStatus {
        self.journal().message(id).await.unwrap().unwrap().status
    }

    /// Waits until no drain runs any more.
    async fn drained(&self) {
        let breaker = self.plugins.breaker(PLUGIN).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while breaker.is_draining() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "drain still running"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn start(&self, configs: Vec<(&str, SourceConfig)>) -> Sources {
        let sources: BTreeMap<String, SourceConfig> = configs
            .into_iter()
            .map(|(n, c)| (n.to_string(), c))
            .collect();
        start_all(&sources, self.pipeline.clone(), self.stop.subscribe()).unwrap()
    }
}

fn oru(id: &str) -> String {
    format!(
        "MSH|^~\\&|LAB|LABO|DPI|CHU|20240131123000||ORU^R01^ORU_R01|{id}|P|2.5\r\
         PID|1||12345^^^CHU^PI||DOE^JOHN\r\
         OBX|1|NM|718-7^Hemoglobin^LN||13.4|g/dL|||||F\r"
    )
}

fn held_id(i: Ingested) -> MessageId {
    match i {
        Ingested::Held { message_id, reason } => {
            assert!(reason.contains("plugin hostile is"), "{reason}");
            message_id
        }
        other => panic!("expected held, got {other:?}"),
    }
}

fn mllp_config() -> SourceConfig {
    SourceConfig::Mllp(MllpSource {
        plugin: PLUGIN.into(),
        content_type: None,
        charset: None,
        listen: "127.0.0.1:0".into(),
        max_frame_bytes: 1 << 20,
        idle_timeout_secs: 60,
        max_connections: 16,
        max_connections_per_peer: 0,
        tls: None,
    })
}

fn http_config() -> SourceConfig {
    SourceConfig::Http(HttpSource {
        plugin: PLUGIN.into(),
        content_type: Some("x-application/hl7-v2+er7".into()),
        charset: None,
        listen: "127.0.0.1:0".into(),
        path: "/ingest".into(),
        max_body_bytes: 1 << 20,
        token_file: None,
        token_env: None,
        max_connections_per_peer: 0,
        tls: None,
    })
}

/// Sends one MLLP frame; returns the ACK's MSA-1, or `None` when the connection is closed
/// without an ACK.
async fn mllp_send(addr: SocketAddr, message: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut frame = vec![0x0b];
    frame.extend_from_slice(message.as_bytes());
    frame.extend_from_slice(&[0x1c, 0x0d]);
    s.write_all(&frame).await.unwrap();
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == [0x1c, 0x0d]) {
            let ack = String::from_utf8_lossy(&buf[1..end]).into_owned();
            let msa = ack.split('\r').find(|l| l.starts_with("MSA"))?.to_string();
            return msa.split('|').nth(1).map(str::to_string);
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .expect("an ACK or a close within 20 s")
        {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// POSTs `body`; returns status, lower-cased head and JSON body.
async fn http_post(addr: SocketAddr, body: &str) -> (u16, String, serde_json::Value) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /ingest HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_faults_suspend_the_plugin_its_messages_are_held_and_resume_adapts_them() {
    let r = rig("panic-on-marker", 3, 0, Duration::ZERO);
    // Rejections are answers, not faults.
    for i in 0..5 {
        let out = r.ingest(&format!("MSH|^~\\&|REJECT{i}")).await;
        assert!(matches!(out, Ingested::Rejected { .. }), "{out:?}");
    }
    assert_eq!(r.state(), BreakerState::Serving);
    // Faults in a row only: a success in between starts the count over.
    r.ingest("PANIC 1").await;
    r.ingest("PANIC 2").await;
    assert!(matches!(
        r.ingest(&oru("OK-1")).await,
        Ingested::Accepted { .. }
    ));
    r.ingest("PANIC 3").await;
    r.ingest("PANIC 4").await;
    assert_eq!(r.state(), BreakerState::Serving);
    let out = r.ingest("PANIC 5").await;
    assert!(
        matches!(&out, Ingested::Rejected { error, .. } if error.is_plugin_fault()),
        "{out:?}"
    );
    assert_eq!(r.state(), BreakerState::Suspended);
    let status = r.plugins.status().remove(0).breaker;
    assert_eq!((status.state, status.trips), ("suspended", 1));
    assert!(status.reason.unwrap().contains("3 failures in a row"));

    // Suspended: messages are held, not adapted (even a marked one: the plugin is not called).
    let h1 = held_id(r.ingest(&oru("H-1")).await);
    let h2 = held_id(r.ingest("PANIC held").await);
    let view = r.journal().message(h1).await.unwrap().unwrap();
    assert_eq!(view.status, MessageStatus::Held);
    assert_eq!(view.plugin.as_deref(), Some(PLUGIN));
    assert!(view.error.unwrap().contains("suspended"));
    // Through real sources: MLLP answers AA (stored), HTTP 202 with `held`.
    let sources = r.start(vec![("m", mllp_config()), ("h", http_config())]);
    assert_eq!(
        mllp_send(sources.addr("m").unwrap(), &oru("H-3"))
            .await
            .as_deref(),
        Some("AA")
    );
    let (status, _, body) = http_post(sources.addr("h").unwrap(), &oru("H-4")).await;
    assert_eq!(status, 202, "{body}");
    assert!(
        body["held"].as_str().unwrap().contains("suspended"),
        "{body}"
    );
    let h4 = MessageId(body["message_id"].as_i64().unwrap());
    assert_eq!(r.journal().held_counts().await.unwrap()[PLUGIN], 4);
    assert_eq!(r.pipeline.source_counts("lab").held, 2);

    // Resume: the held messages are adapted in place, in order; the marked one fails again.
    let resumed = r.pipeline.resume_plugin(PLUGIN).unwrap();
    assert!(resumed.was_suspended && resumed.draining);
    r.drained().await;
    assert_eq!(r.state(), BreakerState::Serving);
    assert!(r.journal().held_counts().await.unwrap().is_empty());
    assert_eq!(r.status(h1).await, MessageStatus::Routed);
    assert_eq!(r.status(h2).await, MessageStatus::Failed);
    let v4 = r.journal().message(h4).await.unwrap().unwrap();
    assert_eq!(v4.status, MessageStatus::Routed);
    assert_eq!(v4.source_message_id.as_deref(), Some("H-4"));
    assert_eq!(v4.records.len(), 1);
    // The marked held message failed alone (the next ones adapted): no new trip.
    let status = r.plugins.status().remove(0).breaker;
    assert_eq!((status.consecutive_failures, status.trips), (0, 1));

    // Idempotent: resuming again changes nothing and stores nothing.
    let total = r.journal().count_by_status().await.unwrap();
    let again = r.pipeline.resume_plugin(PLUGIN).unwrap();
    assert!(!again.was_suspended);
    assert_eq!(again.state, "serving");
    r.drained().await;
    assert_eq!(r.journal().count_by_status().await.unwrap(), total);
    assert!(matches!(
        r.ingest(&oru("AFTER")).await,
        Ingested::Accepted { .. }
    ));
    assert!(r.pipeline.resume_plugin("nope").is_none());
    r.stop.send_replace(true);
    sources.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_still_broken_when_resumed_is_suspended_again_and_keeps_the_rest_held() {
    let r = rig("panic", 2, 0, Duration::ZERO);
    r.ingest(&oru("F1")).await;
    r.ingest(&oru("F2")).await;
    assert_eq!(r.state(), BreakerState::Suspended);
    let held: Vec<MessageId> = [
        r.ingest(&oru("H1")).await,
        r.ingest(&oru("H2")).await,
        r.ingest(&oru("H3")).await,
        r.ingest(&oru("H4")).await,
    ]
    .into_iter()
    .map(held_id)
    .collect();
    r.pipeline.resume_plugin(PLUGIN).unwrap();
    r.drained().await;
    assert_eq!(r.state(), BreakerState::Suspended);
    // The two oldest were tried (and failed, as they would have live); the rest wait.
    assert_eq!(r.status(held[0]).await, MessageStatus::Failed);
    assert_eq!(r.status(held[1]).await, MessageStatus::Failed);
    assert_eq!(r.status(held[2]).await, MessageStatus::Held);
    assert_eq!(r.status(held[3]).await, MessageStatus::Held);
    assert_eq!(r.plugins.breaker(PLUGIN).unwrap().trips(), 2);
    let counts = r.journal().count_by_status().await.unwrap();
    assert_eq!((counts["failed"], counts["held"]), (4, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_build_resumes_a_suspended_plugin_and_adapts_its_held_messages() {
    let r = rig("panic-on-marker", 2, 0, Duration::ZERO);
    r.ingest("PANIC a").await;
    r.ingest("PANIC b").await;
    assert_eq!(r.state(), BreakerState::Suspended);
    let h1 = held_id(r.ingest(&oru("NB-1")).await);
    let h2 = held_id(r.ingest(&oru("NB-2")).await);
    // The same build again changes nothing.
    assert!(!r.plugins.reload(PLUGIN).unwrap());
    assert_eq!(r.state(), BreakerState::Suspended);
    let wasm = std::fs::read(&r.wasm).unwrap();
    std::fs::write(&r.wasm, another_build(&wasm, "v2")).unwrap();
    assert!(r.plugins.reload(PLUGIN).unwrap());
    r.drained().await;
    assert_eq!(r.state(), BreakerState::Serving);
    assert_eq!(r.status(h1).await, MessageStatus::Routed);
    assert_eq!(r.status(h2).await, MessageStatus::Routed);
    let s = r.plugins.status().remove(0);
    assert_eq!((s.reloads, s.breaker.consecutive_failures), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_messages_left_from_before_a_restart_keep_their_plugin_suspended() {
    let r = rig("good", 5, 0, Duration::ZERO);
    // As a previous run left it: one message held for the plugin.
    let id = r
        .journal()
        .commit_message(crate::journal::IngestedMessage {
            source: "lab".into(),
            content_type: "x-application/hl7-v2+er7".into(),
            received_at: crate::clock::now_rfc3339(),
            payload: oru("OLD").into_bytes(),
            peer: None,
            outcome: Outcome::Held {
                plugin: Some(PLUGIN.into()),
                reason: "plugin hostile is suspended".into(),
            },
        })
        .await
        .unwrap()
        .message_id;
    let suspended = r
        .pipeline
        .suspend_plugins_with_held_messages()
        .await
        .unwrap();
    assert_eq!(suspended, [PLUGIN]);
    assert_eq!(r.state(), BreakerState::Suspended);
    held_id(r.ingest(&oru("NEW")).await);
    r.pipeline.resume_plugin(PLUGIN).unwrap();
    r.drained().await;
    assert_eq!(r.state(), BreakerState::Serving);
    assert_eq!(r.status(id).await, MessageStatus::Routed);
    assert!(r.journal().held_counts().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_over_max_pending_slows_intake_down_until_it_drains() {
    let r = rig("good", 5, 2, Duration::from_millis(1500));
    assert!(matches!(
        r.ingest(&oru("B1")).await,
        Ingested::Accepted { .. }
    ));
    assert!(matches!(
        r.ingest(&oru("B2")).await,
        Ingested::Accepted { .. }
    ));
    assert_eq!(r.journal().pending(DEST), 2);
    // Full: refused at once (nothing stored)...
    let err = r
        .pipeline
        .ingest(&ctx(), oru("B3").into_bytes(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JournalError::Backpressure { destination, pending: 2, limit: 2 } if destination == DEST),
        "{err:?}"
    );
    // ...HTTP answers 503 with Retry-After, MLLP waits, then closes without an ACK.
    let sources = r.start(vec![("m", mllp_config()), ("h", http_config())]);
    let (status, head, body) = http_post(sources.addr("h").unwrap(), &oru("B3")).await;
    assert_eq!(status, 503, "{body}");
    assert!(head.contains("retry-after: 5"), "{head}");
    assert!(
        body["error"].as_str().unwrap().contains("max_pending"),
        "{body}"
    );
    let started = std::time::Instant::now();
    assert_eq!(
        mllp_send(sources.addr("m").unwrap(), &oru("B3")).await,
        None
    );
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert_eq!(r.journal().count_by_status().await.unwrap()["routed"], 2);

    // A waiting message goes through as soon as the destination drains below the limit.
    let pipeline = r.pipeline.clone();
    let waiting = tokio::spawn(async move {
        pipeline
            .ingest_or_wait(&ctx(), oru("B4").into_bytes(), None)
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());
    let items = r
        .journal()
        .claim_due(DEST, crate::clock::now_ms(), 1)
        .await
        .unwrap();
    r.journal()
        .mark_delivered(&[items[0].outbox_id], crate::clock::now_ms())
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(out, Ingested::Accepted { .. }), "{out:?}");
    assert_eq!(r.journal().pending(DEST), 2);
    assert_eq!(
        mllp_send(sources.addr("m").unwrap(), &oru("B5")).await,
        None,
        "full again"
    );
    r.stop.send_replace(true);
    sources.join().await;
}
