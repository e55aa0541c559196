//! The JetStream journal: several Passerelle nodes share one replicated NATS JetStream instead
//! of each keeping its own SQLite file (`[journal.jetstream]`, see `docs/scale-out.md`).
//!
//! Three streams (file storage, `replicas` copies, Raft-replicated by NATS):
//! - `<P>_INBOUND` (work queue): each received message, raw. A source acknowledges its sender
//!   only after JetStream's publish acknowledgement. One durable pull consumer, `adapters`,
//!   shared by every node: whichever node is free adapts the message.
//! - `<P>_RECORDS` (work queue): one entry per record and destination, subject
//!   `<p>.rec.<destination>`, `Nats-Msg-Id` = record id + content digest + destination, so a
//!   message adapted twice (its node died before acknowledging it) yields no second entry
//!   within the duplicate window, while a corrected version of a record (same id, new content)
//!   does get through. One durable pull consumer per destination, shared by every node.
//! - `<P>_DEAD` (limits): what no stage could finish (plugin rejections, unrouted records,
//!   deliveries given up), as JSON, for operators.
//!
//! The inbound entry is acknowledged only after every record entry is acknowledged by the
//! stream, and a record entry only after its destination accepted it: a node killed anywhere
//! leaves its entries to be handed out again (after `ack_wait`) to another node. Destinations
//! are idempotent (file name / Idempotency-Key = record id), so a redelivery is harmless.
//!
//! Not kept here (the embedded journal has them): per-patient delivery order under retries,
//! pending counts for back-pressure, the message browser of the admin API.

mod wire;

use std::time::Duration;

use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, PullConsumer, pull},
    message::{Acker, PublishMessage as Publish},
    stream::{self, RetentionPolicy, StorageType},
};
use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use futures_util::StreamExt as _;
use std::future::IntoFuture as _;

use super::{
    Claim, CommitReceipt, IngestedMessage, JournalBackend, JournalError, MessageId, OutboxItem,
    Outcome, QueuedMessage, RoutedRecord,
};
use crate::config::JetStreamConfig;
use crate::record::Record;
use wire::{DeadEntry, Names};

/// How long a claim waits for work before it answers with nothing.
const CLAIM_WAIT: Duration = Duration::from_millis(250);
/// Longest wait for any one JetStream call (publish, acknowledgement, ack of an entry).
const CALL_LIMIT: Duration = Duration::from_secs(10);
/// A pull request that has not ended this long after its own expiry is given up.
const PULL_GRACE: Duration = Duration::from_secs(2);

/// A claimed inbound entry: to acknowledge it, and to dead-letter it if the plugin rejects it.
struct ClaimedInbound {
    acker: Acker,
    source: String,
    payload: Bytes,
}

/// A claimed record entry: what is needed to acknowledge it or dead-letter it.
struct Claimed {
    destination: String,
    acker: Acker,
    payload: Bytes,
}

/// The JetStream journal of one node (cheap to share behind an `Arc`).
pub struct JetStreamJournal {
    client: async_nats::Client,
    js: jetstream::Context,
    names: Names,
    node: String,
    config: JetStreamConfig,
    adapters: PullConsumer,
    deliveries: DashMap<String, PullConsumer>,
    claimed_inbound: DashMap<i64, ClaimedInbound>,
    claimed_records: DashMap<i64, Claimed>,
}

impl std::fmt::Debug for JetStreamJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamJournal")
            .field("node", &self.node)
            .field("urls", &self.config.urls)
            .finish()
    }
}

fn remote(op: &'static str) -> impl Fn(&dyn std::fmt::Display) -> JournalError {
    move |e| JournalError::Remote {
        op,
        message: e.to_string(),
    }
}

impl JetStreamJournal {
    /// Connects, creates (or updates) the streams and the consumers of `destinations`.
    pub async fn open(
        config: &JetStreamConfig,
        node: &str,
        destinations: &[String],
    ) -> Result<JetStreamJournal, JournalError> {
        let mut addrs = Vec::new();
        for url in &config.urls {
            addrs.push(
                url.parse::<async_nats::ServerAddr>()
                    .map_err(|e| remote("parsing the NATS URL")(&format!("{url}: {e}")))?,
            );
        }
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("passerelle {node}"))
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect();
        if let Some(creds) = &config.credentials {
            options = options.credentials_file(creds).await.map_err(|e| {
                remote("reading the NATS credentials")(&format!("{}: {e}", creds.display()))
            })?;
        }
        let client = options
            .connect(addrs)
            .await
            .map_err(|e| remote("connecting to NATS")(&e))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .build(client.clone());
        let names = Names::new(&config.prefix);
        let journal = Self::with_streams(client, js, names, node, config).await?;
        for d in destinations {
            journal.delivery_consumer(d).await?;
        }
        tracing::info!(node, urls = ?config.urls, replicas = config.replicas, "JetStream journal ready");
        Ok(journal)
    }

    async fn with_streams(
        client: async_nats::Client,
        js: jetstream::Context,
        names: Names,
        node: &str,
        config: &JetStreamConfig,
    ) -> Result<JetStreamJournal, JournalError> {
        let dup = Duration::from_secs(config.duplicate_window_s);
        let streams = [
            (
                names.inbound_stream(),
                names.inbound_all(),
                RetentionPolicy::WorkQueue,
            ),
            (
                names.records_stream(),
                names.records_all(),
                RetentionPolicy::WorkQueue,
            ),
            (
                names.dead_stream(),
                names.dead_all(),
                RetentionPolicy::Limits,
            ),
        ];
        for (name, subject, retention) in streams {
            let cfg = stream::Config {
                name: name.clone(),
                subjects: vec![subject],
                retention,
                storage: StorageType::File,
                num_replicas: config.replicas,
                duplicate_window: dup,
                ..Default::default()
            };
            // A stream that exists (another node made it) is taken as it is.
            create_with_retry(&js, cfg).await?;
        }
        let inbound = js
            .get_stream(names.inbound_stream())
            .await
            .map_err(|e| remote("opening the inbound stream")(&e))?;
        let adapters = inbound
            .get_or_create_consumer(
                "adapters",
                pull::Config {
                    durable_name: Some("adapters".into()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: Duration::from_millis(config.ack_wait_ms),
                    max_deliver: -1,
                    max_ack_pending: config.max_ack_pending,
                    num_replicas: config.replicas,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| remote("creating the adapters consumer")(&e))?;
        Ok(JetStreamJournal {
            client,
            js,
            names,
            node: node.to_string(),
            config: config.clone(),
            adapters,
            deliveries: DashMap::new(),
            claimed_inbound: DashMap::new(),
            claimed_records: DashMap::new(),
        })
    }

    /// The durable consumer of `destination` (created on first use).
    async fn delivery_consumer(&self, destination: &str) -> Result<PullConsumer, JournalError> {
        if let Some(c) = self.deliveries.get(destination) {
            return Ok(c.clone());
        }
        let name = self.names.delivery_consumer(destination);
        let consumer = self
            .js
            .get_stream(self.names.records_stream())
            .await
            .map_err(|e| remote("opening the records stream")(&e))?
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: self.names.record_subject(destination),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: Duration::from_millis(self.config.ack_wait_ms),
                    max_deliver: -1,
                    max_ack_pending: self.config.max_ack_pending,
                    num_replicas: self.config.replicas,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| remote("creating a delivery consumer")(&e))?;
        self.deliveries
            .insert(destination.to_string(), consumer.clone());
        Ok(consumer)
    }

    /// Publishes and waits for the stream's acknowledgement; `true` when it was a duplicate.
    async fn publish(
        &self,
        op: &'static str,
        subject: String,
        publish: Publish,
    ) -> Result<u64, JournalError> {
        let ack = bounded(op, self.js.send_publish(subject, publish)).await?;
        let ack = bounded(op, ack.into_future()).await?;
        Ok(if ack.duplicate { 0 } else { ack.sequence })
    }

    async fn dead_letter(
        &self,
        subject: String,
        entry: &DeadEntry<'_>,
    ) -> Result<u64, JournalError> {
        let json = serde_json::to_vec(entry)
            .map_err(|e| JournalError::Internal(format!("dead-letter entry: {e}")))?;
        self.publish(
            "storing a dead letter",
            subject,
            Publish::build().payload(json.into()),
        )
        .await
    }

    /// Stores an outcome: records to their destinations' subjects (all acknowledged by the
    /// stream before this returns), or the rejection as a dead letter.
    async fn store_outcome(
        &self,
        source: &str,
        payload: &[u8],
        outcome: &Outcome,
    ) -> Result<CommitReceipt, JournalError> {
        let mut receipt = CommitReceipt {
            message_id: MessageId(0),
            new_records: 0,
            duplicate_records: 0,
        };
        match outcome {
            Outcome::Adapted { records, .. } => {
                self.publish_records(source, records, &mut receipt).await?
            }
            Outcome::Failed { plugin, reason } => {
                let entry = DeadEntry {
                    stage: "adapt",
                    reason,
                    source: Some(source),
                    plugin: plugin.as_deref(),
                    destination: None,
                    payload_base64: Some(wire::base64(payload)),
                    record: None,
                    node: &self.node,
                    at_ms: crate::clock::now_ms(),
                };
                let seq = self
                    .dead_letter(self.names.dead_subject("adapt", source), &entry)
                    .await?;
                receipt.message_id = MessageId(seq as i64);
            }
            Outcome::Held { .. } => {
                return Err(JournalError::Internal(
                    "a held outcome is stored by queueing the message".into(),
                ));
            }
        }
        Ok(receipt)
    }

    async fn publish_records(
        &self,
        source: &str,
        records: &[RoutedRecord],
        receipt: &mut CommitReceipt,
    ) -> Result<(), JournalError> {
        // Sent all at once, then every acknowledgement awaited: one round trip, not one each.
        let mut pending = Vec::new();
        for r in records {
            let json: Bytes = r.record.to_json_line().into();
            let digest = hex::encode(super::writer::content_digest(&r.record));
            if r.destinations.is_empty() {
                let entry = DeadEntry {
                    stage: "unrouted",
                    reason: "no route matched the record",
                    source: Some(source),
                    plugin: Some(&r.record.envelope.plugin.name),
                    destination: None,
                    payload_base64: None,
                    record: serde_json::from_slice(&json).ok(),
                    node: &self.node,
                    at_ms: crate::clock::now_ms(),
                };
                self.dead_letter(self.names.dead_subject("unrouted", source), &entry)
                    .await?;
            }
            let mut futures = Vec::new();
            for d in &r.destinations {
                let id = format!("{}:{digest}:{d}", r.record.envelope.id);
                let publish = Publish::build().payload(json.clone()).message_id(id);
                let subject = self.names.record_subject(d);
                let ack = bounded(
                    "publishing a record",
                    self.js.send_publish(subject, publish),
                )
                .await?;
                futures.push(ack);
            }
            pending.push(futures);
        }
        for futures in pending {
            let mut duplicate = !futures.is_empty();
            for ack in futures {
                let ack = bounded("publishing a record", ack.into_future()).await?;
                duplicate &= ack.duplicate;
            }
            if duplicate {
                receipt.duplicate_records += 1;
            } else {
                receipt.new_records += 1;
            }
        }
        Ok(())
    }
}

/// Bounds one JetStream call in time, whatever the client does while a server is lost (an
/// acknowledgement or subscription that would wait for a reconnection forever): the caller
/// gets an error and the entry comes back through JetStream's own redelivery.
async fn bounded<T, E: std::fmt::Display>(
    op: &'static str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, JournalError> {
    match tokio::time::timeout(CALL_LIMIT, call).await {
        Ok(result) => result.map_err(|e| remote(op)(&e)),
        Err(_) => {
            tracing::warn!(
                op,
                limit_s = CALL_LIMIT.as_secs(),
                "JetStream call got no answer in time"
            );
            Err(remote(op)(&format!(
                "no answer within {} s",
                CALL_LIMIT.as_secs()
            )))
        }
    }
}

/// Up to `limit` entries of `consumer`: what is there now; when nothing is, waits up to
/// [`CLAIM_WAIT`] for a first one (a long poll, not a busy loop) and takes what came with it.
/// Every pull is bounded in time: a pull whose server went away mid-request would otherwise
/// never end (what it had delivered comes back to another claim after `ack_wait`).
async fn take(
    consumer: &PullConsumer,
    limit: usize,
    op: &'static str,
) -> Result<Vec<jetstream::Message>, JournalError> {
    let limit = limit.max(1);
    let mut out = Vec::new();
    pull(consumer, limit, false, op, &mut out).await?;
    if out.is_empty() {
        pull(consumer, 1, true, op, &mut out).await?;
        if !out.is_empty() && limit > 1 {
            pull(consumer, limit - 1, false, op, &mut out).await?;
        }
    }
    Ok(out)
}

/// One pull request: `wait` long-polls for up to [`CLAIM_WAIT`], else only what is there.
async fn pull(
    consumer: &PullConsumer,
    n: usize,
    wait: bool,
    op: &'static str,
    out: &mut Vec<jetstream::Message>,
) -> Result<(), JournalError> {
    let deadline = tokio::time::Instant::now() + CLAIM_WAIT + PULL_GRACE;
    let request = async {
        if wait {
            consumer
                .batch()
                .max_messages(n)
                .expires(CLAIM_WAIT)
                .messages()
                .await
                .map_err(|e| remote(op)(&e))
        } else {
            consumer
                .fetch()
                .max_messages(n)
                .expires(CLAIM_WAIT)
                .messages()
                .await
                .map_err(|e| remote(op)(&e))
        }
    };
    let mut messages = match tokio::time::timeout_at(deadline, request).await {
        Ok(m) => m?,
        Err(_) => return Err(remote(op)(&"no answer to a pull request")),
    };
    while let Ok(Some(next)) = tokio::time::timeout_at(deadline, messages.next()).await {
        out.push(next.map_err(|e| remote(op)(&e))?);
    }
    Ok(())
}

/// Creates a stream, waiting (bounded) for a JetStream cluster that is still electing its
/// leader; an existing stream is kept as it is.
async fn create_with_retry(
    js: &jetstream::Context,
    cfg: stream::Config,
) -> Result<(), JournalError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match js.get_or_create_stream(cfg.clone()).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(stream = %cfg.name, error = %e, "JetStream not ready; trying again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(remote("creating a stream")(&format!("{}: {e}", cfg.name))),
        }
    }
}

#[async_trait]
impl JournalBackend for JetStreamJournal {
    fn kind(&self) -> &'static str {
        "jetstream"
    }

    fn queues_inbound(&self) -> bool {
        true
    }

    async fn commit_message(&self, m: IngestedMessage) -> Result<CommitReceipt, JournalError> {
        if let Outcome::Held { .. } = &m.outcome {
            let headers = wire::inbound_headers(&m, &self.node);
            let seq = self
                .publish(
                    "queueing a message",
                    self.names.inbound_subject(&m.source),
                    Publish::build().payload(m.payload.into()).headers(headers),
                )
                .await?;
            return Ok(CommitReceipt {
                message_id: MessageId(seq as i64),
                new_records: 0,
                duplicate_records: 0,
            });
        }
        self.store_outcome(&m.source, &m.payload, &m.outcome).await
    }

    async fn claim_queued(&self, limit: usize) -> Result<Vec<QueuedMessage>, JournalError> {
        let mut out = Vec::new();
        for msg in take(&self.adapters, limit, "claiming queued messages").await? {
            let (seq, delivered) = match msg.info() {
                Ok(info) => (info.stream_sequence, info.delivered),
                Err(e) => {
                    tracing::error!(error = %e, "queued message without JetStream metadata; skipped");
                    continue;
                }
            };
            match wire::queued_from(seq, delivered, msg.headers.as_ref(), &msg.payload) {
                Ok(q) => {
                    let (m, acker) = msg.split();
                    self.claimed_inbound.insert(
                        q.id.0,
                        ClaimedInbound {
                            acker,
                            source: q.source.clone(),
                            payload: m.payload,
                        },
                    );
                    out.push(q);
                }
                Err(e) => {
                    // Not ours: kept aside rather than retried forever.
                    tracing::error!(seq, error = %e, "unreadable inbound entry terminated");
                    let _ = bounded("terminating an entry", msg.ack_with(AckKind::Term)).await;
                }
            }
        }
        Ok(out)
    }

    async fn resolve_queued(
        &self,
        id: MessageId,
        outcome: Outcome,
    ) -> Result<Option<CommitReceipt>, JournalError> {
        let Some((_, claimed)) = self.claimed_inbound.remove(&id.0) else {
            return Ok(None);
        };
        let ClaimedInbound {
            acker,
            source,
            payload,
        } = claimed;
        let mut receipt = match self.store_outcome(&source, &payload, &outcome).await {
            Ok(r) => r,
            Err(e) => {
                // Handed out again (to any node) after a short pause.
                let nak = acker.ack_with(AckKind::Nak(Some(Duration::from_secs(1))));
                let _ = bounded("giving a queued message back", nak).await;
                return Err(e);
            }
        };
        receipt.message_id = id;
        // Confirmed by the server: once this returns, no node adapts it again.
        bounded("acknowledging a queued message", acker.double_ack()).await?;
        Ok(Some(receipt))
    }

    async fn requeue(&self, id: MessageId, delay: Duration) -> Result<(), JournalError> {
        if let Some((_, claimed)) = self.claimed_inbound.remove(&id.0) {
            let nak = claimed.acker.ack_with(AckKind::Nak(Some(delay)));
            bounded("giving a queued message back", nak).await?;
        }
        Ok(())
    }

    async fn claim(
        &self,
        destination: &str,
        _now_ms: i64,
        limit: usize,
    ) -> Result<Claim, JournalError> {
        let consumer = self.delivery_consumer(destination).await?;
        let mut out = Vec::new();
        let mut dead_lettered = 0;
        let taken = take(&consumer, limit, "claiming deliveries").await?;
        tracing::debug!(destination, taken = taken.len(), "deliveries claimed");
        for msg in taken {
            let Ok(info) = msg.info() else {
                continue;
            };
            let (seq, delivered) = (info.stream_sequence as i64, info.delivered);
            match serde_json::from_slice::<Record>(&msg.payload) {
                Ok(record) => {
                    let (m, acker) = msg.split();
                    out.push(OutboxItem {
                        outbox_id: seq,
                        record_id: record.envelope.id.clone(),
                        destination: destination.to_string(),
                        attempts: delivered.saturating_sub(1).clamp(0, u32::MAX as i64) as u32,
                        record,
                    });
                    self.claimed_records.insert(
                        seq,
                        Claimed {
                            destination: destination.to_string(),
                            acker,
                            payload: m.payload,
                        },
                    );
                }
                Err(e) => {
                    tracing::error!(destination, seq, error = %e, "unreadable record entry terminated");
                    let _ = bounded("terminating an entry", msg.ack_with(AckKind::Term)).await;
                    dead_lettered += 1;
                }
            }
        }
        Ok(Claim {
            items: out,
            dead_lettered,
        })
    }

    async fn next_due_at(&self, _destination: &str) -> Result<Option<i64>, JournalError> {
        // Entries may come from any node: the worker claims again at once (the claim waits).
        Ok(Some(crate::clock::now_ms()))
    }

    async fn mark_delivered(&self, outbox_ids: &[i64], _now_ms: i64) -> Result<(), JournalError> {
        let acks = outbox_ids.iter().filter_map(|id| {
            self.claimed_records.remove(id).map(|(_, c)| async move {
                bounded("acknowledging deliveries", c.acker.double_ack()).await
            })
        });
        let mut first_error = None;
        for r in futures_util::future::join_all(acks).await {
            if let Err(e) = r {
                first_error.get_or_insert(e.to_string());
            }
        }
        match first_error {
            // Not acknowledged: delivered again later (destinations are idempotent).
            Some(e) => Err(JournalError::Remote {
                op: "acknowledging deliveries",
                message: e,
            }),
            None => Ok(()),
        }
    }

    async fn mark_failed(
        &self,
        outbox_id: i64,
        _error: &str,
        next_attempt_at_ms: i64,
    ) -> Result<(), JournalError> {
        if let Some((_, c)) = self.claimed_records.remove(&outbox_id) {
            let delay = next_attempt_at_ms
                .saturating_sub(crate::clock::now_ms())
                .max(0) as u64;
            let nak = c
                .acker
                .ack_with(AckKind::Nak(Some(Duration::from_millis(delay))));
            bounded("scheduling a retry", nak).await?;
        }
        Ok(())
    }

    async fn mark_dead(&self, outbox_id: i64, error: &str) -> Result<(), JournalError> {
        let Some((_, c)) = self.claimed_records.remove(&outbox_id) else {
            return Ok(());
        };
        let record: Option<&serde_json::value::RawValue> = serde_json::from_slice(&c.payload).ok();
        let entry = DeadEntry {
            stage: "deliver",
            reason: error,
            source: None,
            plugin: None,
            destination: Some(&c.destination),
            payload_base64: None,
            record,
            node: &self.node,
            at_ms: crate::clock::now_ms(),
        };
        self.dead_letter(self.names.dead_subject("deliver", &c.destination), &entry)
            .await?;
        bounded("dead-lettering a delivery", c.acker.ack_with(AckKind::Term)).await
    }

    async fn release(&self, outbox_ids: &[i64]) {
        for id in outbox_ids {
            if let Some((_, c)) = self.claimed_records.remove(id) {
                let _ = bounded("releasing a delivery", c.acker.ack_with(AckKind::Nak(None))).await;
            }
        }
    }

    fn pending(&self, _destination: &str) -> u64 {
        0
    }

    async fn close(&self) {
        // Claimed but unfinished entries are handed out again at once rather than after
        // ack_wait.
        let inbound: Vec<i64> = self.claimed_inbound.iter().map(|e| *e.key()).collect();
        for id in inbound {
            if let Some((_, claimed)) = self.claimed_inbound.remove(&id) {
                let nak = claimed.acker.ack_with(AckKind::Nak(None));
                let _ = bounded("giving a queued message back", nak).await;
            }
        }
        let records: Vec<i64> = self.claimed_records.iter().map(|e| *e.key()).collect();
        self.release(&records).await;
        if let Err(e) = bounded("flushing at close", self.client.flush()).await {
            tracing::warn!(error = %e, "NATS flush at close failed");
        }
    }
}
