//! The journal contract the stages use, whichever backend keeps the data: the embedded SQLite
//! [`Journal`] (default) or NATS JetStream ([`super::jetstream::JetStreamJournal`], several
//! nodes sharing the work). The pipeline and the delivery workers hold an
//! `Arc<dyn JournalBackend>` and never ask which one it is.
//!
//! Two shapes of ingest hide behind [`JournalBackend::queues_inbound`]:
//! - the embedded journal adapts on the receiving task and stores message, records and outbox
//!   in one transaction (one fsync for all of them: the fast path of one node);
//! - JetStream stores the raw message first ([`Outcome::Held`], acknowledged once the stream
//!   has it), and any node's adapter worker takes it later ([`JournalBackend::claim_queued`]),
//!   so that adaptation is shared too and a node lost mid-adaptation loses nothing.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use super::{Claim, CommitReceipt, IngestedMessage, Journal, JournalError, MessageId, Outcome};

/// A stored inbound message waiting for its adaptation ([`JournalBackend::claim_queued`]).
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub id: MessageId,
    pub source: String,
    pub content_type: String,
    pub received_at: String,
    pub payload: Vec<u8>,
    pub peer: Option<String>,
    /// Times it was handed out before (a node died or gave it back).
    pub redeliveries: u32,
}

/// What the ingest, adapt and delivery stages need from a journal.
#[async_trait]
pub trait JournalBackend: Send + Sync + fmt::Debug + 'static {
    /// `sqlite` or `jetstream` (logs, admin API).
    fn kind(&self) -> &'static str;

    /// `true`: ingest stores messages unadapted and adapter workers take them from
    /// [`JournalBackend::claim_queued`]; `false`: ingest adapts before it commits.
    fn queues_inbound(&self) -> bool {
        false
    }

    /// Stores a message with its outcome (and the records and outbox entries of an adapted
    /// one), durably: acknowledge the sender only after `Ok`.
    async fn commit_message(&self, m: IngestedMessage) -> Result<CommitReceipt, JournalError>;

    /// Queued messages to adapt, oldest first, at most `limit`; may wait a little for one to
    /// arrive. Each is in this node's hands until [`JournalBackend::resolve_queued`] or
    /// [`JournalBackend::requeue`].
    async fn claim_queued(&self, _limit: usize) -> Result<Vec<QueuedMessage>, JournalError> {
        Ok(Vec::new())
    }

    /// Stores the outcome of a queued (or held) message: its records and their deliveries for
    /// an adapted one. `None` when the message was resolved already.
    async fn resolve_queued(
        &self,
        id: MessageId,
        outcome: Outcome,
    ) -> Result<Option<CommitReceipt>, JournalError>;

    /// Gives a claimed queued message back, to be handed out again after `delay`.
    async fn requeue(&self, _id: MessageId, _delay: Duration) -> Result<(), JournalError> {
        Ok(())
    }

    /// Pending entries of `destination` due at `now_ms`, at most `limit`; they are in flight
    /// until marked or released. Due entries that cannot be delivered at all (their record
    /// does not read back) are dead-lettered on the way and counted.
    async fn claim(
        &self,
        destination: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Claim, JournalError>;

    /// When an entry of `destination` becomes due next (`None`: nothing waiting).
    async fn next_due_at(&self, destination: &str) -> Result<Option<i64>, JournalError>;

    async fn mark_delivered(&self, outbox_ids: &[i64], now_ms: i64) -> Result<(), JournalError>;

    async fn mark_failed(
        &self,
        outbox_id: i64,
        error: &str,
        next_attempt_at_ms: i64,
    ) -> Result<(), JournalError>;

    async fn mark_dead(&self, outbox_id: i64, error: &str) -> Result<(), JournalError>;

    /// Gives claimed entries back unchanged (shutdown).
    async fn release(&self, outbox_ids: &[i64]);

    /// Entries of `destination` pending (back-pressure); 0 when the backend does not count.
    fn pending(&self, destination: &str) -> u64;

    /// Finishes what is under way and closes.
    async fn close(&self);
}

#[async_trait]
impl JournalBackend for Journal {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn commit_message(&self, m: IngestedMessage) -> Result<CommitReceipt, JournalError> {
        Journal::commit_message(self, m).await
    }

    async fn resolve_queued(
        &self,
        id: MessageId,
        outcome: Outcome,
    ) -> Result<Option<CommitReceipt>, JournalError> {
        self.resolve_held(id, outcome).await
    }

    async fn claim(
        &self,
        destination: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Claim, JournalError> {
        Journal::claim(self, destination, now_ms, limit).await
    }

    async fn next_due_at(&self, destination: &str) -> Result<Option<i64>, JournalError> {
        Journal::next_due_at(self, destination).await
    }

    async fn mark_delivered(&self, outbox_ids: &[i64], now_ms: i64) -> Result<(), JournalError> {
        Journal::mark_delivered(self, outbox_ids, now_ms).await
    }

    async fn mark_failed(
        &self,
        outbox_id: i64,
        error: &str,
        next_attempt_at_ms: i64,
    ) -> Result<(), JournalError> {
        Journal::mark_failed(self, outbox_id, error, next_attempt_at_ms).await
    }

    async fn mark_dead(&self, outbox_id: i64, error: &str) -> Result<(), JournalError> {
        Journal::mark_dead(self, outbox_id, error).await
    }

    async fn release(&self, outbox_ids: &[i64]) {
        Journal::release(self, outbox_ids).await
    }

    fn pending(&self, destination: &str) -> u64 {
        Journal::pending(self, destination)
    }

    async fn close(&self) {
        self.clone().close().await
    }
}
