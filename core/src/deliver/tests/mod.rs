mod file_destination;
mod http_destination;
mod lifecycle;
mod server;

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
use server::{Reply, TestServer};

const FAST: RetryPolicy = RetryPolicy {
    max_attempts: 50,
    initial_backoff_ms: 20,
    max_backoff_ms: 100,
};

// Records and journal.

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
