//! The journal's data: what is stored, the states of messages and deliveries, and the views
//! and filters of the reads.

use std::fmt;

use crate::record::Record;

/// The id of a stored message (its rowid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub i64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A message as received, with what the host made of it; stored by
/// [`Journal::commit_message`](super::Journal::commit_message).
#[derive(Debug, Clone)]
pub struct IngestedMessage {
    /// The configured source that received it.
    pub source: String,
    pub content_type: String,
    /// RFC 3339.
    pub received_at: String,
    pub payload: Vec<u8>,
    /// The peer address, when the source has one.
    pub peer: Option<String>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    /// The plugin produced records, and the routes chose their destinations.
    Adapted {
        plugin: String,
        plugin_version: String,
        source_message_id: String,
        message_type: Option<String>,
        rules_version: String,
        records: Vec<RoutedRecord>,
    },
    /// The plugin rejected the message (or trapped).
    Failed {
        plugin: Option<String>,
        reason: String,
    },
    /// Stored but not adapted yet (e.g. the plugin is suspended); can be re-processed later
    /// ([`Journal::resolve_held`](super::Journal::resolve_held)).
    Held {
        /// The plugin that is to adapt it.
        plugin: Option<String>,
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub struct RoutedRecord {
    pub record: Record,
    /// The route that chose the destinations.
    pub route: Option<String>,
    /// Empty: the record is held (no route matched and no fallback).
    pub destinations: Vec<String>,
}

/// The answer to [`Journal::commit_message`](super::Journal::commit_message): the message is
/// durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitReceipt {
    pub message_id: MessageId,
    /// Records stored for the first time.
    pub new_records: u32,
    /// Records already stored by an earlier message (a resend): not delivered again.
    pub duplicate_records: u32,
}

/// The status of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// Adapted, every record has at least one destination, some deliveries are still pending.
    Routed,
    /// Not adapted yet (outcome `Held`), or adapted with at least one record that no route
    /// matched. Its routed records are still delivered; the status stays `held` for operators.
    Held,
    /// The plugin rejected the message.
    Failed,
    /// Every outbox entry of its records is delivered (or it had no records).
    Delivered,
    /// At least one outbox entry of its records was dead-lettered.
    Dead,
    /// Every outbox entry is finished and an operator discarded at least one dead letter.
    Discarded,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Routed => "routed",
            MessageStatus::Held => "held",
            MessageStatus::Failed => "failed",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Dead => "dead",
            MessageStatus::Discarded => "discarded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "routed" => MessageStatus::Routed,
            "held" => MessageStatus::Held,
            "failed" => MessageStatus::Failed,
            "delivered" => MessageStatus::Delivered,
            "dead" => MessageStatus::Dead,
            "discarded" => MessageStatus::Discarded,
            _ => return None,
        })
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of one outbox entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Dead,
    /// A dead letter an operator gave up on.
    Discarded,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
            DeliveryState::Discarded => "discarded",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "dead" => DeliveryState::Dead,
            "discarded" => DeliveryState::Discarded,
            _ => return None,
        })
    }
}

/// An outbox entry handed to a delivery worker by [`Journal::claim`](super::Journal::claim).
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub outbox_id: i64,
    pub record_id: String,
    pub destination: String,
    /// Attempts made so far (for the backoff).
    pub attempts: u32,
    pub record: Record,
}

/// What a claim gave a delivery worker ([`Journal::claim`](super::Journal::claim)).
#[derive(Debug)]
pub struct Claim {
    /// The entries to deliver, in flight until marked or released.
    pub items: Vec<OutboxItem>,
    /// Due entries the claim dead-lettered because their record does not read back.
    pub dead_lettered: u64,
}

/// A stored message, for operators.
#[derive(Debug, Clone)]
pub struct MessageView {
    pub id: MessageId,
    pub source: String,
    pub content_type: String,
    pub received_at: String,
    /// When the journal stored it (ms since the epoch).
    pub stored_at_ms: i64,
    pub peer: Option<String>,
    pub status: MessageStatus,
    /// The reason of a `failed` or `held` message.
    pub error: Option<String>,
    pub plugin: Option<String>,
    pub plugin_version: Option<String>,
    pub source_message_id: Option<String>,
    pub message_type: Option<String>,
    pub rules_version: Option<String>,
    pub payload: Vec<u8>,
    pub records: Vec<RecordView>,
}

/// One record of a message, with its deliveries.
#[derive(Debug, Clone)]
pub struct RecordView {
    pub position: u32,
    pub record_id: String,
    pub route: Option<String>,
    /// No destination was chosen.
    pub held: bool,
    /// Already stored by an earlier message (the record shown is the stored one).
    pub duplicate: bool,
    pub record: Record,
    pub outbox: Vec<OutboxState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxState {
    pub outbox_id: i64,
    pub destination: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
    /// When it was delivered or dead-lettered.
    pub finished_at_ms: Option<i64>,
}

/// A dead-lettered outbox entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub outbox_id: i64,
    pub record_id: String,
    pub destination: String,
    /// The message that first stored the record.
    pub message_id: MessageId,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub dead_at_ms: Option<i64>,
}

/// What the message browser searches for ([`Journal::search`](super::Journal::search)). Every
/// set field must match.
/// Results come newest first (by message id); `after` continues a listing after the last id
/// of the previous page (keyset pagination).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    /// Stored at or after (ms since the epoch, journal clock).
    pub since_ms: Option<i64>,
    /// Stored strictly before (ms since the epoch).
    pub until_ms: Option<i64>,
    pub source: Option<String>,
    pub status: Option<MessageStatus>,
    /// A record of the message is about the patient with this INS value.
    pub ins: Option<String>,
    /// The source's own message id (HL7 MSH-10).
    pub source_message_id: Option<String>,
    /// A record of the message has this kind.
    pub kind: Option<String>,
    /// Only messages with a smaller id (the last id of the previous page).
    pub after: Option<MessageId>,
    /// At most this many (0 = [`DEFAULT_SEARCH_LIMIT`]; capped at [`MAX_SEARCH_LIMIT`]).
    pub limit: usize,
}

/// [`MessageFilter::limit`] when none is given.
pub const DEFAULT_SEARCH_LIMIT: usize = 50;
/// The largest page [`Journal::search`](super::Journal::search) returns.
pub const MAX_SEARCH_LIMIT: usize = 1_000;

/// One message in a search result (no payload, no records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    pub id: MessageId,
    pub source: String,
    pub content_type: String,
    pub received_at: String,
    pub stored_at_ms: i64,
    pub peer: Option<String>,
    pub status: MessageStatus,
    pub error: Option<String>,
    pub plugin: Option<String>,
    pub source_message_id: Option<String>,
    pub message_type: Option<String>,
    pub rules_version: Option<String>,
    /// Records the message produced (duplicates included).
    pub records: u32,
    pub payload_bytes: u64,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptView {
    pub at_ms: i64,
    pub outcome: String,
    pub error: Option<String>,
}

/// Counters of the writer thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Committed transactions (= WAL fsyncs).
    pub transactions: u64,
    /// Requests answered through those transactions.
    pub requests: u64,
    /// Transactions that failed (every request in them got the error).
    pub failed_transactions: u64,
    pub largest_batch: u64,
    /// Times the writer checkpointed the last frames so that the WAL could start over (see
    /// `checkpoint`): the background checkpoint keeps up.
    pub wal_rewinds: u64,
}

/// The settings of the write connection, as SQLite reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalSettings {
    pub journal_mode: String,
    /// 2 = FULL.
    pub synchronous: i64,
    pub foreign_keys: bool,
    pub busy_timeout_ms: i64,
    pub schema_version: i64,
}
