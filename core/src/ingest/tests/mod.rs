//! Tests of the sources over real sockets and folders, with a real pipeline: a journal in a
//! temporary folder, the `hostile` test plugin (mode `good`: one record per message, MSH-10 as
//! the source message id; payloads containing `REJECT` are rejected as malformed at `line 1`)
//! and a routes file sending everything to `out`.

mod http;
mod inbox;
mod mllp;
pub(crate) mod tls;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::SourceConfig;
use crate::ingest::{Sources, start_all};
use crate::journal::{Journal, MessageId, MessageView};
use crate::plugin::{PluginEngine, PluginLimits, PluginRegistry, PluginSpec};
use crate::route::{RoutesHandle, RuleSet};
use crate::topology::{Pipeline, Waker};

pub(super) const PLUGIN: &str = "hostile";

fn hostile_wasm() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    let path = target.join("wasm32-wasip2/plugin/hostile.wasm");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p hostile --profile plugin --target wasm32-wasip2`",
        path.display()
    );
    path
}

/// One registry for all the tests of this binary (compiling the component takes a while).
fn registry() -> Arc<PluginRegistry> {
    static REGISTRY: OnceLock<Arc<PluginRegistry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let engine = PluginEngine::new(None).expect("wasm engine");
            let spec = PluginSpec {
                name: PLUGIN.into(),
                path: hostile_wasm(),
                limits: PluginLimits {
                    timeout_ms: 10_000,
                    ..PluginLimits::default()
                },
                settings_json: r#"{"mode":"good"}"#.into(),
                sha256: None,
            };
            Arc::new(
                PluginRegistry::load_all(engine, vec![spec])
                    .unwrap_or_else(|e| panic!("loading hostile: {e:?}")),
            )
        })
        .clone()
}

/// A pipeline over a fresh journal, and the shutdown switch of the sources.
pub(super) struct Harness {
    pub pipeline: Arc<Pipeline>,
    pub stop: watch::Sender<bool>,
    pub tmp: tempfile::TempDir,
}

impl Harness {
    pub fn new() -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let journal = Journal::open(&tmp.path().join("journal.db")).unwrap();
        let known: HashSet<String> = ["out".to_string()].into();
        let rules = RuleSet::parse(
            tmp.path().join("routes.toml"),
            "[[route]]\nname = \"everything\"\ndestinations = [\"out\"]\n",
            &known,
        )
        .unwrap();
        let waker: Waker = Arc::new(|_: &str| {});
        let pipeline = Arc::new(Pipeline::new(
            journal,
            registry(),
            Arc::new(RoutesHandle::new(rules)),
            waker,
        ));
        let (stop, _) = watch::channel(false);
        Harness {
            pipeline,
            stop,
            tmp,
        }
    }

    pub fn start(&self, name: &str, config: SourceConfig) -> Sources {
        let sources: BTreeMap<String, SourceConfig> = [(name.to_string(), config)].into();
        start_all(&sources, self.pipeline.clone(), self.stop.subscribe()).unwrap()
    }

    pub fn journal(&self) -> &Journal {
        self.pipeline
            .journal()
            .expect("these tests run on the embedded journal")
    }

    /// Message counts by status.
    pub async fn counts(&self) -> HashMap<String, u64> {
        self.journal().count_by_status().await.unwrap()
    }

    pub async fn total(&self) -> u64 {
        self.counts().await.values().sum()
    }

    pub async fn message(&self, id: i64) -> MessageView {
        self.journal()
            .message(MessageId(id))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("message {id} not stored"))
    }

    /// Every stored message (ids are dense from 1 in a fresh journal).
    pub async fn messages(&self) -> Vec<MessageView> {
        let n = self.total().await as i64;
        let mut out = Vec::new();
        for id in 1..=n {
            out.push(self.message(id).await);
        }
        out
    }

    /// Signals shutdown and waits (bounded) for the sources to end.
    pub async fn shutdown(&self, sources: Sources) {
        self.stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(10), sources.join())
            .await
            .expect("sources stop within 10 s");
    }
}

/// Polls `check` until it is true or `timeout` passes.
pub(super) async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A small ORU^R01 with control id `id`.
pub(super) fn oru(id: &str) -> String {
    format!(
        "MSH|^~\\&|LAB|LABO^1.2.3^ISO|DPI|CHU|20240131123000||ORU^R01^ORU_R01|{id}|P|2.5\r\
         PID|1||12345^^^CHU^PI||DOE^JOHN\r\
         OBX|1|NM|718-7^Hemoglobin^LN||13.4|g/dL|||||F\r"
    )
}
