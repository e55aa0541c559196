//! What a write request carries: the operation, and messages prepared (their records
//! serialised and compressed) on the caller's task.

use std::collections::HashSet;

use crate::journal::stored_json;
use crate::journal::{IngestedMessage, MessageId, Outcome, patient_key};

use super::store::content_digest;

pub(in crate::journal) enum Op {
    Commit(Box<PreparedMessage>),
    /// A held message gets its outcome.
    ResolveHeld(Box<PreparedResolve>),
    MarkDelivered {
        ids: Vec<i64>,
        now_ms: i64,
    },
    MarkFailed {
        id: i64,
        error: String,
        next_attempt_at_ms: i64,
    },
    MarkDead {
        id: i64,
        error: String,
    },
    Prune {
        older_than_ms: i64,
        limit: usize,
    },
    /// Operator: a dead letter back to `pending`.
    RetryDead {
        id: i64,
    },
    /// Operator: a dead letter to `discarded`.
    DiscardDead {
        id: i64,
    },
    /// Operator replay: deliver the current version of a message's records again.
    Redeliver {
        message_id: i64,
    },
}

impl Op {
    /// What the request weighs against [`MAX_BATCH_BYTES`](crate::journal::MAX_BATCH_BYTES).
    pub(super) fn bytes(&self) -> usize {
        match self {
            Op::Commit(m) => m.bytes,
            Op::ResolveHeld(r) => r.bytes,
            Op::MarkDelivered { ids, .. } => 64 + ids.len() * 8,
            Op::MarkFailed { error, .. } | Op::MarkDead { error, .. } => 64 + error.len(),
            Op::Prune { .. }
            | Op::RetryDead { .. }
            | Op::DiscardDead { .. }
            | Op::Redeliver { .. } => 64,
        }
    }
}

/// A message with its records already serialised (done on the caller's task).
pub(in crate::journal) struct PreparedMessage {
    pub(super) source: String,
    pub(super) content_type: String,
    pub(super) received_at: String,
    pub(super) payload: Vec<u8>,
    pub(super) peer: Option<String>,
    pub(super) outcome: PreparedOutcome,
    pub(super) bytes: usize,
}

pub(super) enum PreparedOutcome {
    Adapted {
        plugin: String,
        plugin_version: String,
        source_message_id: String,
        message_type: Option<String>,
        rules_version: String,
        records: Vec<PreparedRecord>,
    },
    Failed {
        plugin: Option<String>,
        reason: String,
    },
    Held {
        plugin: Option<String>,
        reason: String,
    },
}

/// A held message's new outcome, prepared on the caller's task.
pub(in crate::journal) struct PreparedResolve {
    pub(super) id: MessageId,
    pub(super) outcome: PreparedOutcome,
    pub(super) bytes: usize,
}

impl PreparedResolve {
    pub(in crate::journal) fn new(id: MessageId, outcome: Outcome) -> Self {
        let mut bytes = 256;
        let outcome = PreparedOutcome::new(outcome, &mut bytes);
        PreparedResolve { id, outcome, bytes }
    }
}

pub(super) struct PreparedRecord {
    pub(super) id: String,
    pub(super) kind: String,
    pub(super) patient_key: String,
    /// `Record::to_json_line()`, compressed (`super::stored_json`).
    pub(super) json: Vec<u8>,
    pub(super) content_sha: [u8; 16],
    pub(super) route: Option<String>,
    pub(super) destinations: Vec<String>,
}

impl PreparedOutcome {
    /// Serialises the records; adds their weight to `bytes`.
    pub(super) fn new(outcome: Outcome, bytes: &mut usize) -> Self {
        match outcome {
            Outcome::Adapted {
                plugin,
                plugin_version,
                source_message_id,
                message_type,
                rules_version,
                records,
            } => PreparedOutcome::Adapted {
                plugin,
                plugin_version,
                source_message_id,
                message_type,
                rules_version,
                records: records
                    .into_iter()
                    .map(|r| {
                        let json = stored_json::compress(&r.record.to_json_line());
                        *bytes += json.len() + 64 * (1 + r.destinations.len());
                        let mut seen = HashSet::new();
                        PreparedRecord {
                            id: r.record.envelope.id.clone(),
                            kind: r.record.envelope.kind.clone(),
                            patient_key: patient_key(&r.record),
                            content_sha: content_digest(&r.record),
                            json,
                            route: r.route,
                            destinations: r
                                .destinations
                                .into_iter()
                                .filter(|d| seen.insert(d.clone()))
                                .collect(),
                        }
                    })
                    .collect(),
            },
            Outcome::Failed { plugin, reason } => PreparedOutcome::Failed { plugin, reason },
            Outcome::Held { plugin, reason } => PreparedOutcome::Held { plugin, reason },
        }
    }
}

impl PreparedMessage {
    pub(in crate::journal) fn new(m: IngestedMessage) -> Self {
        let mut bytes = m.payload.len() + 256;
        let outcome = PreparedOutcome::new(m.outcome, &mut bytes);
        PreparedMessage {
            source: m.source,
            content_type: m.content_type,
            received_at: m.received_at,
            payload: m.payload,
            peer: m.peer,
            outcome,
            bytes,
        }
    }
}
