use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rand::SeedableRng;
use serde_json::Value;

use super::*;
use crate::config::{
    DeliveryDefaults, DestinationConfig, FileDestination, HttpDestination, HttpMode, RetryPolicy,
};
use crate::journal::{
    DeliveryState, IngestedMessage, Journal, MessageId, MessageStatus, Outcome, RoutedRecord,
};
use crate::record::record_id;

const FAST: RetryPolicy = RetryPolicy {
    max_attempts: 50,
    initial_backoff_ms: 20,
    max_backoff_ms: 100,
};

// ---------------------------------------------------------------------------------------------
// Records and journal

const COLLECTION: &str = r#"{"resourceType":"Bundle","type":"collection","entry":[
  {"fullUrl":"urn:uuid:6f1d3c2a-0b7e-4a51-9a43-0e2f6a1b7c11","resource":{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.3","value":"P"}]}},
  {"fullUrl":"urn:uuid:9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c22","resource":{"resourceType":"Observation","id":"old-id","status":"final","code":{"text":"K"},"subject":{"reference":"urn:uuid:6f1d3c2a-0b7e-4a51-9a43-0e2f6a1b7c11"}}},
  {"resource":{"resourceType":"Organization","name":"Lab"}}
]}"#;

/// A record as a JSON line (the way the journal and the CLI see it).
fn record(smid: &str, position: u32, patient: &str, bundle: &str) -> Record {
    let id = record_id("lab", smid, position);
    let line = format!(
        r#"{{"envelope":{{"id":"{id}","kind":"lab-result","source":"lab","source_message_id":"{smid}","position":{position},"message_type":"ORU^R01","patient":{{"local_ids":[{{"system":"urn:oid:1.2.3","value":"{patient}"}}]}},"received_at":"2025-01-02T03:04:05Z","status":"final","confidentiality":{{"level":"N"}},"plugin":{{"name":"hl7-lab","version":"1.0.0"}}}},"bundle":{bundle}}}"#
    );
    serde_json::from_str(&line).unwrap()
}

/// Commits one message whose records (one per patient) go to `dest`; returns the record ids.
async fn commit(
    j: &Journal,
    smid: &str,
    patients: &[&str],
    bundle: &str,
    dest: &str,
) -> (MessageId, Vec<String>) {
    let records: Vec<Record> = patients
        .iter()
        .enumerate()
        .map(|(i, p)| record(smid, i as u32, p, bundle))
        .collect();
    let ids = records.iter().map(|r| r.envelope.id.clone()).collect();
    let receipt = j
        .commit_message(IngestedMessage {
            source: "lab".into(),
            content_type: "application/hl7-v2".into(),
            received_at: "2025-01-02T03:04:05Z".into(),
            payload: format!("MSH|{smid}").into_bytes(),
            peer: None,
            outcome: Outcome::Adapted {
                plugin: "hl7-lab".into(),
                plugin_version: "1.0.0".into(),
                source_message_id: smid.into(),
                message_type: Some("ORU^R01".into()),
                rules_version: "r1".into(),
                records: records
                    .into_iter()
                    .map(|record| RoutedRecord {
                        record,
                        route: Some("all".into()),
                        destinations: vec![dest.into()],
                    })
                    .collect(),
            },
        })
        .await
        .unwrap();
    (receipt.message_id, ids)
}

fn open(dir: &tempfile::TempDir) -> Journal {
    Journal::open(&dir.path().join("journal.db")).unwrap()
}

async fn wait_until_delivered(j: &Journal, dest: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while j.pending_count(dest).await.unwrap() > 0 {
        assert!(
            Instant::now() < deadline,
            "{dest}: still {} pending after {timeout:?}",
            j.pending_count(dest).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn backend(j: &Journal) -> std::sync::Arc<dyn crate::journal::JournalBackend> {
    std::sync::Arc::new(j.clone())
}

fn start(j: &Journal, name: &str, config: DestinationConfig, options: WorkerOptions) -> Deliveries {
    let mut map = BTreeMap::new();
    map.insert(name.to_string(), config);
    Deliveries::start_with(
        &backend(j),
        &map,
        &DeliveryDefaults {
            retry: FAST,
            ..DeliveryDefaults::default()
        },
        options,
    )
    .unwrap()
}

/// A worker for the file destination `files`, writing into `out`.
fn start_files(j: &Journal, out: &Path) -> Deliveries {
    let config = DestinationConfig::File(FileDestination {
        retry: None,
        dir: out.to_path_buf(),
    });
    start(j, "files", config, WorkerOptions::default())
}

fn http_dest(url: &str, mode: HttpMode) -> DestinationConfig {
    DestinationConfig::Http(HttpDestination {
        retry: None,
        url: url.to_string(),
        mode,
        timeout_ms: 5_000,
        headers: [("Authorization".to_string(), "Bearer secret".to_string())].into(),
    })
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------
// A local HTTP server that records every request

#[derive(Debug, Clone)]
struct Hit {
    headers: HeaderMap,
    body: Vec<u8>,
    /// The status answered (0 until answered).
    status: u16,
}

impl Hit {
    fn record_id(&self) -> String {
        self.headers["x-passerelle-record-id"]
            .to_str()
            .unwrap()
            .to_string()
    }
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: String::new(),
            delay: Duration::ZERO,
        }
    }
}

/// Decides the answer to a request, given it and the requests seen before it.
type Responder = dyn Fn(&Hit, &[Hit]) -> Reply + Send + Sync;

struct TestServer {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    async fn start(responder: impl Fn(&Hit, &[Hit]) -> Reply + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/fhir", listener.local_addr().unwrap());
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let responder: Arc<Responder> = Arc::new(responder);
        let task = {
            let hits = hits.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let hits = hits.clone();
                    let responder = responder.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req: Request<Incoming>| {
                            let hits = hits.clone();
                            let responder = responder.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body.collect().await.unwrap().to_bytes().to_vec();
                                let hit = Hit {
                                    headers: parts.headers,
                                    body,
                                    status: 0,
                                };
                                let (index, reply) = {
                                    let mut all = hits.lock().unwrap();
                                    let reply = responder(&hit, &all);
                                    all.push(hit);
                                    (all.len() - 1, reply)
                                };
                                tokio::time::sleep(reply.delay).await;
                                hits.lock().unwrap()[index].status = reply.status;
                                let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
                                *resp.status_mut() = reply.status.try_into().unwrap();
                                for (k, v) in reply.headers {
                                    resp.headers_mut().insert(k, v.parse().unwrap());
                                }
                                Ok::<_, Infallible>(resp)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
        };
        TestServer { url, hits, task }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Record ids answered with a 2xx, in answer order of arrival.
    fn accepted(&self) -> Vec<String> {
        self.hits()
            .iter()
            .filter(|h| (200..300).contains(&h.status))
            .map(Hit::record_id)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// File sink

#[tokio::test]
async fn file_sink_writes_one_atomic_idempotent_file_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out").join("nested");
    let sink = Sink::from_config(
        "files",
        &DestinationConfig::File(FileDestination {
            retry: None,
            dir: out.clone(),
        }),
    )
    .unwrap();
    assert_eq!(sink.kind(), "file");
    let rec = record("M1", 0, "A", COLLECTION);
    let name = format!("{}.json", rec.envelope.id);

    // Written under a temporary dotfile name; the batch's sync puts it in place.
    sink.deliver(&rec).await.unwrap();
    let staged = files_in(&out);
    assert!(
        staged.len() == 1 && staged[0].starts_with(&format!(".{name}.")),
        "{staged:?}"
    );
    sink.sync().await.unwrap();
    assert_eq!(files_in(&out), [name.as_str()], "no temp file left");
    let first = std::fs::read_to_string(out.join(&name)).unwrap();
    let back: Record = serde_json::from_str(&first).unwrap();
    assert_eq!(back.envelope, rec.envelope);
    assert_eq!(back.bundle.get(), rec.bundle.get());

    // Delivered again with the same content: nothing is written, the sync has nothing to move.
    sink.deliver(&rec).await.unwrap();
    assert_eq!(files_in(&out), [name.as_str()]);
    sink.sync().await.unwrap();

    // A re-delivery over different content (e.g. a file torn by a crash) replaces it.
    std::fs::write(out.join(&name), "partial garbage").unwrap();
    sink.deliver(&rec).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join(&name)).unwrap(),
        "partial garbage",
        "not in place before the sync"
    );
    sink.sync().await.unwrap();
    assert_eq!(files_in(&out), [name.as_str()]);
    assert_eq!(std::fs::read_to_string(out.join(&name)).unwrap(), first);

    // Something in the way of the folder: a retryable error, nothing written.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, "a file, not a folder").unwrap();
    let err = FileSink::new(blocked.join("sub"))
        .deliver(&rec)
        .await
        .unwrap_err();
    assert!(err.retryable, "{err:?}");

    // The sync fails, retryably, when the folder is gone: the batch is then not marked
    // delivered.
    std::fs::remove_dir_all(&out).unwrap();
    let err = sink.sync().await.unwrap_err();
    assert!(
        err.retryable && err.message.contains("cannot sync"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_failed_file_sync_publishes_nothing_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sink = FileSink::new(out.clone());
    let (a, b) = (
        record("M1", 0, "A", COLLECTION),
        record("M2", 0, "B", COLLECTION),
    );
    sink.deliver(&a).await.unwrap();
    sink.deliver(&b).await.unwrap();
    // A folder where `b`'s final name should go: its rename fails, after `a`'s succeeded.
    std::fs::create_dir(out.join(format!("{}.json", b.envelope.id))).unwrap();
    let err = sink.sync().await.unwrap_err();
    assert!(
        err.retryable && err.message.contains("cannot rename"),
        "{err:?}"
    );
    let left = files_in(&out);
    assert!(
        left.iter().all(|n| !n.starts_with('.')),
        "temp files removed: {left:?}"
    );
    // Nothing is left staged: the next sync has nothing to do and succeeds.
    std::fs::remove_dir(out.join(format!("{}.json", b.envelope.id))).unwrap();
    sink.sync().await.unwrap();
    assert_eq!(files_in(&out), [format!("{}.json", a.envelope.id)]);
}

#[tokio::test]
async fn the_first_file_delivery_sweeps_temp_files_left_by_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let aged = |name: &str, age: Duration| {
        let f = std::fs::File::create(out.join(name)).unwrap();
        f.set_modified(std::time::SystemTime::now() - age).unwrap();
    };
    let stale = ".0a1b.json.0123456789abcdef.tmp";
    let fresh = ".0a1c.json.fedcba9876543210.tmp"; // maybe another process's, in flight
    aged(stale, Duration::from_secs(2 * 3600));
    aged(fresh, Duration::from_secs(60));
    aged(".not-ours.tmp", Duration::from_secs(2 * 3600));
    aged("0a1d.json", Duration::from_secs(2 * 3600));

    let sink = FileSink::new(out.clone());
    let rec = record("M1", 0, "A", COLLECTION);
    sink.deliver(&rec).await.unwrap();
    sink.sync().await.unwrap();
    let mut expected = vec![
        ".not-ours.tmp".to_string(),
        "0a1d.json".to_string(),
        fresh.to_string(),
        format!("{}.json", rec.envelope.id),
    ];
    expected.sort();
    assert_eq!(files_in(&out), expected);
}

#[tokio::test]
async fn file_deliveries_never_synced_leave_no_temp_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sink = FileSink::new(out.clone());
    let clone = sink.clone();
    clone
        .deliver(&record("M1", 0, "A", COLLECTION))
        .await
        .unwrap();
    assert_eq!(files_in(&out).len(), 1, "staged");
    drop(clone);
    assert_eq!(files_in(&out).len(), 1, "a clone's drop keeps the batch");
    drop(sink);
    assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_destination_delivers_committed_records_when_woken() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let out = dir.path().join("out");
    let d = start_files(&j, &out);
    // The worker is idle (30 s poll) by now: only the wake-up makes it look.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mid, ids) = commit(&j, "M1", &["A", "B", "A"], COLLECTION, "files").await;
    assert!(d.wake("files"));
    assert!(!d.wake("nope"));
    wait_until_delivered(&j, "files", Duration::from_secs(5)).await;

    let mut expected: Vec<String> = ids.iter().map(|id| format!("{id}.json")).collect();
    expected.sort();
    assert_eq!(files_in(&out), expected);
    let m = j.message(mid).await.unwrap().unwrap();
    assert_eq!(m.status, MessageStatus::Delivered);
    let s = &d.status()[0];
    assert_eq!((s.name.as_str(), s.kind), ("files", "file"));
    assert_eq!((s.delivered_total, s.failed_total, s.dead_total), (3, 0, 0));
    d.shutdown().await;
    assert!(!d.status()[0].running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_record_is_counted_in_the_destination_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let out = dir.path().join("out");
    let d = start_files(&j, &out);
    // Idle by now (see above): the row is damaged before the worker looks.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, ids) = commit(&j, "M1", &["A", "B"], COLLECTION, "files").await;
    j.exec_on_writer(&format!(
        "UPDATE records SET json = 'not json' WHERE id = '{}'",
        ids[1]
    ))
    .await
    .unwrap();
    assert!(d.wake("files"));
    wait_until_delivered(&j, "files", Duration::from_secs(5)).await;
    d.shutdown().await;

    assert_eq!(files_in(&out), vec![format!("{}.json", ids[0])]);
    let dead = j.dead_letters(Some("files"), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].record_id, ids[1]);
    let s = &d.status()[0];
    assert_eq!((s.delivered_total, s.failed_total, s.dead_total), (1, 0, 1));
}

// ---------------------------------------------------------------------------------------------
// HTTP

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_retries_503_until_accepted_exactly_once() {
    let t0 = Instant::now();
    let server = TestServer::start(move |_, _| {
        if t0.elapsed() < Duration::from_millis(1500) {
            Reply {
                headers: vec![("retry-after", "0".into())],
                body: "busy".into(),
                ..Reply::status(503)
            }
        } else {
            Reply::status(200)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let d = start(
        &j,
        "hook",
        http_dest(&format!("{}/hook", server.url), HttpMode::Webhook),
        WorkerOptions::default(),
    );
    let patients = ["A", "B", "C", "A", "D", "E", "B", "F", "G", "A"];
    let (mid, ids) = commit(&j, "M1", &patients, COLLECTION, "hook").await;
    d.wake("hook");
    wait_until_delivered(&j, "hook", Duration::from_secs(20)).await;

    // Every record accepted exactly once.
    let mut accepted = server.accepted();
    accepted.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(accepted, expected);
    let hits = server.hits();
    assert!(
        hits.iter().any(|h| h.status == 503),
        "the 503 phase was seen"
    );
    for h in &hits {
        let id = h.record_id();
        assert_eq!(h.headers["idempotency-key"], id.as_str());
        assert_eq!(h.headers["content-type"], "application/json");
        assert_eq!(h.headers["authorization"], "Bearer secret");
        let rec: Record = serde_json::from_slice(&h.body).unwrap();
        assert_eq!(rec.envelope.id, id);
        let bundle: Value = serde_json::from_str(rec.bundle.get()).unwrap();
        assert_eq!(
            bundle["type"], "collection",
            "webhook sends the record as is"
        );
    }

    // The journal: delivered, with the failed attempts recorded.
    let m = j.message(mid).await.unwrap().unwrap();
    assert_eq!(m.status, MessageStatus::Delivered);
    let mut failed_attempts = 0;
    for r in &m.records {
        let o = &r.outbox[0];
        assert_eq!(o.state, DeliveryState::Delivered);
        let attempts = j.attempts(o.outbox_id).await.unwrap();
        assert_eq!(attempts.last().unwrap().outcome, "delivered");
        let tries = hits.iter().filter(|h| h.record_id() == r.record_id).count();
        assert_eq!(attempts.len(), tries, "one attempt recorded per request");
        for a in &attempts[..attempts.len() - 1] {
            assert_eq!(a.outcome, "failed");
            assert_eq!(
                a.error.as_deref(),
                Some("HTTP 503 Service Unavailable: busy")
            );
            failed_attempts += 1;
        }
    }
    assert!(failed_attempts > 0);
    let s = &d.status()[0];
    assert_eq!(s.kind, "http");
    assert_eq!(s.delivered_total, ids.len() as u64);
    assert_eq!(s.failed_total, failed_attempts as u64);
    assert!(s.last_error.as_deref().unwrap().contains("503"));
    assert!(s.last_error_at_ms.is_some());
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_transaction_mode_sends_idempotent_put_transactions() {
    let server = TestServer::start(|_, _| Reply::status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let d = start(
        &j,
        "fhir",
        http_dest(&server.url, HttpMode::FhirTransaction),
        WorkerOptions::default(),
    );
    let (_, converted) = commit(&j, "M1", &["A"], COLLECTION, "fhir").await;
    let already = r#"{"resourceType":"Bundle", "type":"transaction","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}"#;
    let (_, as_is) = commit(&j, "M2", &["B"], already, "fhir").await;
    d.wake("fhir");
    wait_until_delivered(&j, "fhir", Duration::from_secs(10)).await;
    d.shutdown().await;

    let hits = server.hits();
    assert_eq!(hits.len(), 2);
    for h in &hits {
        assert_eq!(h.headers["content-type"], "application/fhir+json");
    }
    let sent = hits.iter().find(|h| h.record_id() == converted[0]).unwrap();
    let bundle: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "transaction");
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for e in entries {
        let res = &e["resource"];
        let id = res["id"].as_str().unwrap();
        assert_eq!(e["request"]["method"], "PUT");
        assert_eq!(
            e["request"]["url"],
            format!("{}/{id}", res["resourceType"].as_str().unwrap())
        );
        if let Some(full_url) = e["fullUrl"].as_str() {
            assert_eq!(
                full_url,
                format!("urn:uuid:{id}"),
                "fullUrl kept, id = its uuid"
            );
        }
    }
    assert_eq!(
        entries[0]["request"]["url"],
        "Patient/6f1d3c2a-0b7e-4a51-9a43-0e2f6a1b7c11"
    );
    assert_eq!(
        entries[1]["resource"]["subject"]["reference"],
        "urn:uuid:6f1d3c2a-0b7e-4a51-9a43-0e2f6a1b7c11",
        "references between entries still resolve"
    );
    assert_eq!(
        entries[1]["resource"]["id"],
        "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c22"
    );
    assert_eq!(
        entries[2]["request"]["url"],
        format!("Organization/{}-2", converted[0]),
        "no fullUrl and no id: a stable id from the record"
    );

    let sent = hits.iter().find(|h| h.record_id() == as_is[0]).unwrap();
    assert_eq!(
        sent.body,
        already.as_bytes(),
        "a transaction is sent byte for byte"
    );
}

#[test]
fn transaction_conversion_details() {
    // Already a transaction: borrowed, untouched.
    let tx = r#"{"resourceType":"Bundle","type":"transaction"}"#;
    assert!(matches!(to_transaction(tx, "r").unwrap(), std::borrow::Cow::Borrowed(s) if s == tx));
    // A document: resource ids are used when the fullUrl is not a urn:uuid; batch requests kept.
    let doc = r#"{"resourceType":"Bundle","type":"document","total":3,"entry":[
        {"fullUrl":"http://x/fhir/Composition/c1","resource":{"resourceType":"Composition","id":"c1"}},
        {"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}"#;
    let out: Value = serde_json::from_str(&to_transaction(doc, "rid").unwrap()).unwrap();
    assert_eq!(out["type"], "transaction");
    assert!(out.get("total").is_none());
    assert_eq!(out["entry"][0]["request"]["url"], "Composition/c1");
    assert_eq!(out["entry"][0]["fullUrl"], "http://x/fhir/Composition/c1");
    assert_eq!(out["entry"][1]["request"]["method"], "POST");
    // Not a bundle, an entry without a resource: permanent errors.
    assert!(to_transaction(r#"{"resourceType":"Patient"}"#, "r").is_err());
    assert!(
        to_transaction(
            r#"{"resourceType":"Bundle","type":"collection","entry":[{}]}"#,
            "r"
        )
        .is_err()
    );
    assert!(to_transaction("not json", "r").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_400_is_dead_lettered_at_once() {
    let long_body = format!("invalid bundle: {}", "x".repeat(2_000));
    let server = TestServer::start(move |_, _| Reply {
        body: long_body.clone(),
        ..Reply::status(400)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let d = start(
        &j,
        "fhir",
        http_dest(&server.url, HttpMode::FhirTransaction),
        WorkerOptions::default(),
    );
    let (mid, ids) = commit(&j, "M1", &["A"], COLLECTION, "fhir").await;
    d.wake("fhir");
    wait_until_delivered(&j, "fhir", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    d.shutdown().await;

    assert_eq!(server.hits().len(), 1, "not retried");
    let dead = j.dead_letters(Some("fhir"), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].record_id, ids[0]);
    assert_eq!(dead[0].attempts, 1);
    let err = dead[0].last_error.as_deref().unwrap();
    assert!(
        err.starts_with("HTTP 400 Bad Request: invalid bundle: xxx"),
        "{err}"
    );
    let body_part = err.strip_prefix("HTTP 400 Bad Request: ").unwrap();
    assert_eq!(body_part.len(), http::ERROR_BODY_BYTES);
    assert_eq!(
        j.message(mid).await.unwrap().unwrap().status,
        MessageStatus::Dead
    );
    let s = &d.status()[0];
    assert_eq!((s.delivered_total, s.failed_total, s.dead_total), (0, 0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_a_minimum_delay() {
    let server = TestServer::start(|_, _| Reply {
        headers: vec![("retry-after", "3".into())],
        ..Reply::status(429)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let d = start(
        &j,
        "hook",
        http_dest(&server.url, HttpMode::Webhook),
        WorkerOptions::default(),
    );
    let before = crate::clock::now_ms();
    let (mid, _) = commit(&j, "M1", &["A"], COLLECTION, "hook").await;
    d.wake("hook");
    let deadline = Instant::now() + Duration::from_secs(5);
    while d.status()[0].failed_total == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.shutdown().await;
    let m = j.message(mid).await.unwrap().unwrap();
    let o = &m.records[0].outbox[0];
    assert_eq!((o.state, o.attempts), (DeliveryState::Pending, 1));
    assert!(
        o.next_attempt_at_ms >= before + 3_000,
        "policy backoff is ≤ 100 ms, Retry-After asked for 3 s"
    );
    assert_eq!(server.hits().len(), 1);
}

#[test]
fn answers_are_classified() {
    use hyper::StatusCode;
    let s = |c: u16| StatusCode::from_u16(c).unwrap();
    let ra = Some(Duration::from_secs(7));
    assert!(http::classify(s(200), None, b"").is_ok());
    assert!(http::classify(s(201), ra, b"x").is_ok());
    for code in [408, 425, 429, 500, 502, 503, 504] {
        let e = http::classify(s(code), ra, b"").unwrap_err();
        assert!(e.retryable, "{code}");
        assert_eq!(e.message, format!("HTTP {}", s(code)));
        let honoured = code == 429 || code == 503;
        assert_eq!(e.retry_after, if honoured { ra } else { None }, "{code}");
    }
    for code in [301, 400, 401, 403, 404, 409, 422] {
        let e = http::classify(s(code), ra, b" oops \n").unwrap_err();
        assert!(!e.retryable, "{code}");
        assert_eq!(e.retry_after, None);
        assert!(e.message.starts_with(&format!("HTTP {code}")));
        assert!(e.message.ends_with(": oops"));
    }
    let e = http::classify(s(400), None, &[b'y'; 600]).unwrap_err();
    assert_eq!(
        e.message.len(),
        "HTTP 400 Bad Request: ".len() + http::ERROR_BODY_BYTES
    );
}

#[tokio::test]
async fn invalid_http_destinations_are_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let bad = |url: &str, header: (&str, &str)| {
        let mut map = BTreeMap::new();
        let mut h = HttpDestination {
            retry: None,
            url: url.into(),
            mode: HttpMode::Webhook,
            timeout_ms: 1_000,
            headers: BTreeMap::new(),
        };
        h.headers.insert(header.0.into(), header.1.into());
        map.insert("x".to_string(), DestinationConfig::Http(h));
        Deliveries::start(&backend(&j), &map, &DeliveryDefaults::default()).unwrap_err()
    };
    assert!(
        bad("https://fhir.example/", ("a", "b"))
            .reason
            .contains("https")
    );
    assert!(bad("fhir.example/x", ("a", "b")).reason.contains("http://"));
    assert!(
        bad("http://fhir.example/", ("bad name", "b"))
            .reason
            .contains("header")
    );
    assert_eq!(bad("http://fhir.example/", ("a", "b\n")).destination, "x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_patient_order_holds_across_a_retry() {
    // The first request for the patient's first record fails once.
    let server = TestServer::start(|_, before| {
        if before.is_empty() {
            Reply::status(503)
        } else {
            Reply::status(200)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let d = start(
        &j,
        "hook",
        http_dest(&server.url, HttpMode::Webhook),
        WorkerOptions::default(),
    );
    let (_, ids) = commit(&j, "M1", &["A", "A"], COLLECTION, "hook").await;
    d.wake("hook");
    wait_until_delivered(&j, "hook", Duration::from_secs(10)).await;
    d.shutdown().await;

    let seen: Vec<(String, u16)> = server
        .hits()
        .iter()
        .map(|h| (h.record_id(), h.status))
        .collect();
    assert_eq!(
        seen,
        [
            (ids[0].clone(), 503),
            (ids[0].clone(), 200),
            (ids[1].clone(), 200)
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Backoff, pause, shutdown

#[test]
fn backoff_grows_caps_and_jitters() {
    let p = RetryPolicy {
        max_attempts: 10,
        initial_backoff_ms: 100,
        max_backoff_ms: 5_000,
    };
    let ms = |d: Duration| d.as_millis() as u64;
    let ceilings: Vec<u64> = (0..8).map(|a| ms(backoff_ceiling(&p, a))).collect();
    assert_eq!(ceilings, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    assert_eq!(ms(backoff_ceiling(&p, 200)), 5_000, "no overflow");

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for attempts in [0, 3, 6, 40] {
        let ceiling = ms(backoff_ceiling(&p, attempts));
        let samples: Vec<u64> = (0..2_000)
            .map(|_| ms(backoff_with(&mut rng, &p, attempts, None)))
            .collect();
        assert!(samples.iter().all(|&s| s >= ceiling / 2 && s <= ceiling));
        // Jitter: spread over the range, not a constant.
        assert!(samples.iter().any(|&s| s < ceiling * 6 / 10));
        assert!(samples.iter().any(|&s| s > ceiling * 9 / 10));
    }
    // Retry-After is a floor, not a cap.
    let d = backoff_with(&mut rng, &p, 0, Some(Duration::from_secs(30)));
    assert_eq!(d, Duration::from_secs(30));
    let d = backoff_with(&mut rng, &p, 6, Some(Duration::from_millis(1)));
    assert!(d >= Duration::from_millis(2_500));
    // The public function stays in range too.
    let d = ms(backoff(&p, 2, None));
    assert!((200..=400).contains(&d));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_deliveries_until_resume() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let out = dir.path().join("out");
    let d = start_files(&j, &out);
    assert!(d.pause("files"));
    assert!(!d.pause("nope"));
    commit(&j, "M1", &["A", "B"], COLLECTION, "files").await;
    d.wake("files");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(files_in(&out).is_empty(), "nothing delivered while paused");
    assert_eq!(j.pending_count("files").await.unwrap(), 2);
    let s = &d.status()[0];
    assert!(s.paused);
    assert_eq!(s.delivered_total, 0);

    assert!(d.resume("files"));
    wait_until_delivered(&j, "files", Duration::from_secs(5)).await;
    assert_eq!(files_in(&out).len(), 2);
    assert!(!d.status()[0].paused);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_prompt_and_leaves_the_rest_pending() {
    // Slow answers: a few deliveries are in flight when shutdown comes.
    let server = TestServer::start(|_, _| Reply {
        delay: Duration::from_millis(400),
        ..Reply::status(200)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let d = start(
        &j,
        "hook",
        http_dest(&server.url, HttpMode::Webhook),
        WorkerOptions {
            concurrency: 4,
            ..WorkerOptions::default()
        },
    );
    let patients: Vec<String> = (0..20).map(|i| format!("P{i}")).collect();
    let patients: Vec<&str> = patients.iter().map(String::as_str).collect();
    let (_, ids) = commit(&j, "M1", &patients, COLLECTION, "hook").await;
    d.wake("hook");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.hits().is_empty() {
        assert!(Instant::now() < deadline, "no delivery started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let t = Instant::now();
    d.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        t.elapsed()
    );
    let s = d.status()[0].clone();
    assert!(!s.running);
    assert_eq!(s.in_flight, 0);

    // What was in flight finished and was marked; the rest is pending, not lost nor stuck.
    let accepted = server.accepted();
    assert_eq!(
        accepted.len(),
        server.hits().len(),
        "every started delivery finished"
    );
    assert!(
        !accepted.is_empty() && accepted.len() < ids.len(),
        "{}",
        accepted.len()
    );
    assert_eq!(s.delivered_total, accepted.len() as u64);
    let pending = j.pending_count("hook").await.unwrap();
    assert_eq!(pending, (ids.len() - accepted.len()) as u64);
    let later = crate::clock::now_ms() + 3_600_000;
    let reclaimed = j.claim_due("hook", later, 100).await.unwrap();
    assert_eq!(
        reclaimed.len() as u64,
        pending,
        "released, not left in flight"
    );
    let accepted: HashSet<&str> = accepted.iter().map(String::as_str).collect();
    assert!(
        reclaimed
            .iter()
            .all(|i| !accepted.contains(i.record_id.as_str()))
    );
    assert!(reclaimed.iter().all(|i| i.attempts == 0));
}
