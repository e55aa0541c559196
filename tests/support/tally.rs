//! What the destinations received against what the senders had ACKed (crash-safety and
//! scale-out tests): counted once here, asserted by each test.

use std::collections::{HashMap, HashSet};

/// The comparison of ACKed control ids with a file destination (and an HTTP one).
#[derive(Debug, Default)]
pub struct Tally {
    /// ACKed control ids with no record file.
    pub lost: Vec<String>,
    /// Messages that left several record files.
    pub split: Vec<(String, Vec<String>)>,
    /// Record files written more than once (inotify counts).
    pub rewritten: Vec<(String, u32)>,
    /// Record files in all.
    pub files: usize,
    /// Record files whose record id the HTTP destination never accepted.
    pub http_lost: usize,
    /// Accepted HTTP deliveries beyond the first of each record (same Idempotency-Key).
    pub http_again: u64,
}

impl Tally {
    /// `by_message`: [`crate::daemon::records_by_message`]; `writes`: writes per file
    /// ([`crate::watch::WriteCounter`]); `http`: accepted POSTs per Idempotency-Key
    /// ([`crate::webhook::Webhook::accepted`]).
    pub fn new(
        acked: &HashSet<String>,
        by_message: &HashMap<String, Vec<String>>,
        writes: &HashMap<String, u32>,
        http: &HashMap<String, u32>,
    ) -> Tally {
        Tally {
            lost: acked
                .iter()
                .filter(|id| !by_message.contains_key(*id))
                .cloned()
                .collect(),
            split: by_message
                .iter()
                .filter(|(_, f)| f.len() > 1)
                .map(|(m, f)| (m.clone(), f.clone()))
                .collect(),
            rewritten: writes
                .iter()
                .filter(|(_, n)| **n > 1)
                .map(|(f, n)| (f.clone(), *n))
                .collect(),
            files: by_message.values().map(Vec::len).sum(),
            http_lost: by_message
                .values()
                .flatten()
                .filter(|name| !http.contains_key(name.trim_end_matches(".json")))
                .count(),
            http_again: http.values().map(|n| u64::from(n - 1)).sum(),
        }
    }
}
