//! Names and encodings on the JetStream side: streams, subjects, headers, dead-letter entries.
//! What is written here is read back by other nodes (and by operators with the `nats` CLI), so
//! it changes only with a new layout version (`Passerelle-Layout` header).

use async_nats::HeaderMap;
use base64::Engine as _;
use serde::Serialize;

use crate::journal::{IngestedMessage, JournalError, QueuedMessage};

pub(super) const LAYOUT: &str = "1";
pub(super) const H_LAYOUT: &str = "Passerelle-Layout";
pub(super) const H_SOURCE: &str = "Passerelle-Source";
pub(super) const H_CONTENT_TYPE: &str = "Passerelle-Content-Type";
pub(super) const H_RECEIVED_AT: &str = "Passerelle-Received-At";
pub(super) const H_PEER: &str = "Passerelle-Peer";
pub(super) const H_NODE: &str = "Passerelle-Node";

/// Stream and subject names under one prefix (`passerelle` → streams `PASSERELLE_INBOUND`,
/// `PASSERELLE_RECORDS`, `PASSERELLE_DEAD`; subjects `passerelle.in.<source>`,
/// `passerelle.rec.<destination>`, `passerelle.dead.<stage>.<name>`).
#[derive(Debug, Clone)]
pub(super) struct Names {
    prefix: String,
}

impl Names {
    pub(super) fn new(prefix: &str) -> Names {
        Names {
            prefix: prefix.to_ascii_lowercase(),
        }
    }

    fn stream(&self, what: &str) -> String {
        format!(
            "{}_{what}",
            self.prefix.to_ascii_uppercase().replace('-', "_")
        )
    }

    pub(super) fn inbound_stream(&self) -> String {
        self.stream("INBOUND")
    }

    pub(super) fn records_stream(&self) -> String {
        self.stream("RECORDS")
    }

    pub(super) fn dead_stream(&self) -> String {
        self.stream("DEAD")
    }

    pub(super) fn inbound_subject(&self, source: &str) -> String {
        format!("{}.in.{}", self.prefix, token(source))
    }

    pub(super) fn inbound_all(&self) -> String {
        format!("{}.in.>", self.prefix)
    }

    pub(super) fn record_subject(&self, destination: &str) -> String {
        format!("{}.rec.{}", self.prefix, token(destination))
    }

    pub(super) fn records_all(&self) -> String {
        format!("{}.rec.>", self.prefix)
    }

    /// `stage`: `adapt` (the plugin rejected the message), `unrouted` (no route matched the
    /// record) or `deliver` (the destination gave up).
    pub(super) fn dead_subject(&self, stage: &str, name: &str) -> String {
        format!("{}.dead.{stage}.{}", self.prefix, token(name))
    }

    pub(super) fn dead_all(&self) -> String {
        format!("{}.dead.>", self.prefix)
    }

    /// The durable consumer of `destination` (consumer names allow no `.`, `*`, `>`).
    pub(super) fn delivery_consumer(&self, destination: &str) -> String {
        format!("deliver-{}", token(destination).replace('.', "_"))
    }
}

/// A configured name as one subject token: config names are `[A-Za-z0-9_-]`, anything else
/// (never expected) becomes `_` rather than a wildcard or a separator.
fn token(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The headers of a queued inbound message.
pub(super) fn inbound_headers(m: &IngestedMessage, node: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(H_LAYOUT, LAYOUT);
    h.insert(H_SOURCE, one_line(&m.source).as_str());
    h.insert(H_CONTENT_TYPE, one_line(&m.content_type).as_str());
    h.insert(H_RECEIVED_AT, one_line(&m.received_at).as_str());
    if let Some(peer) = &m.peer {
        h.insert(H_PEER, one_line(peer).as_str());
    }
    h.insert(H_NODE, one_line(node).as_str());
    h
}

/// Reads a queued inbound message back.
pub(super) fn queued_from(
    seq: u64,
    delivered: i64,
    headers: Option<&HeaderMap>,
    payload: &[u8],
) -> Result<QueuedMessage, JournalError> {
    let get = |name: &str| -> Option<String> {
        headers
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    let source = get(H_SOURCE).ok_or_else(|| {
        JournalError::Internal(format!(
            "inbound stream entry {seq} has no {H_SOURCE} header (not written by Passerelle?)"
        ))
    })?;
    Ok(QueuedMessage {
        id: crate::journal::MessageId(seq as i64),
        source,
        content_type: get(H_CONTENT_TYPE).unwrap_or_default(),
        received_at: get(H_RECEIVED_AT).unwrap_or_default(),
        payload: payload.to_vec(),
        peer: get(H_PEER),
        redeliveries: delivered.saturating_sub(1).clamp(0, u32::MAX as i64) as u32,
    })
}

/// A dead-letter entry: why, and what (the raw message base64-encoded, or the record).
#[derive(Debug, Serialize)]
pub(super) struct DeadEntry<'a> {
    pub stage: &'a str,
    pub reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<&'a serde_json::value::RawValue>,
    pub node: &'a str,
    pub at_ms: i64,
}

pub(super) fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Header values are single lines.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Outcome;

    #[test]
    fn names_follow_the_prefix_and_never_make_wildcards() {
        let n = Names::new("Passerelle-Lab");
        assert_eq!(n.inbound_stream(), "PASSERELLE_LAB_INBOUND");
        assert_eq!(n.records_stream(), "PASSERELLE_LAB_RECORDS");
        assert_eq!(n.inbound_subject("lab-mllp"), "passerelle-lab.in.lab-mllp");
        assert_eq!(n.record_subject("dmp"), "passerelle-lab.rec.dmp");
        assert_eq!(
            n.dead_subject("deliver", "dmp"),
            "passerelle-lab.dead.deliver.dmp"
        );
        // A name that is not a plain token cannot become `*`, `>` or an extra level.
        assert_eq!(n.record_subject("a.b*>"), "passerelle-lab.rec.a_b__");
        assert_eq!(n.delivery_consumer("a.b"), "deliver-a_b");
    }

    #[test]
    fn a_queued_message_reads_back_with_its_headers() {
        let m = IngestedMessage {
            source: "lab-mllp".into(),
            content_type: "x-application/hl7-v2+er7".into(),
            received_at: "2026-12-05T01:00:00Z".into(),
            payload: b"MSH|...".to_vec(),
            peer: Some("10.0.0.7:4242\r\nX-Injected: 1".into()),
            outcome: Outcome::Held {
                plugin: None,
                reason: "queued".into(),
            },
        };
        let h = inbound_headers(&m, "node-1");
        let q = queued_from(42, 3, Some(&h), &m.payload).unwrap();
        assert_eq!(q.id.0, 42);
        assert_eq!(q.redeliveries, 2);
        assert_eq!(q.source, "lab-mllp");
        assert_eq!(q.content_type, m.content_type);
        assert_eq!(q.received_at, m.received_at);
        assert_eq!(q.payload, m.payload);
        // Header values are single lines: no header injection through the peer name.
        assert_eq!(q.peer.as_deref(), Some("10.0.0.7:4242  X-Injected: 1"));
    }

    #[test]
    fn an_entry_without_the_source_header_is_refused_with_its_sequence() {
        let e = queued_from(7, 1, None, b"x").unwrap_err();
        assert!(e.to_string().contains("entry 7"), "{e}");
    }
}
