//! What a connection (or the whole run) saw: ACK counts and latency histograms.

use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::messages::{Plan, msa};

fn histogram() -> Histogram<u64> {
    // 1 µs .. 1 h, 3 significant digits: constant, valid bounds.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// What one connection (or the whole run) saw.
pub(super) struct Stats {
    /// ACK latency, µs: from the scheduled send time (open loop) or the send (closed loop).
    pub(super) latency: Histogram<u64>,
    /// From the actual write to the ACK, µs (same as `latency` in closed loop).
    pub(super) service: Histogram<u64>,
    pub(super) sent: u64,
    pub(super) aa: u64,
    pub(super) ae: u64,
    pub(super) ar: u64,
    /// Sent but no (valid) ACK: connection error, timeout, ACK for another control id.
    pub(super) errors: u64,
    /// Never sent (connection lost or failed, or `--max-duration` reached).
    pub(super) not_sent: u64,
    /// Message indexes acknowledged with AA.
    pub(super) accepted: Vec<u64>,
    /// Message indexes sent without a valid ACK (their fate is unknown).
    pub(super) unknown: Vec<u64>,
    pub(super) first_error: Option<String>,
    pub(super) last_ack: Option<Instant>,
}

impl Stats {
    pub(super) fn new() -> Stats {
        Stats {
            latency: histogram(),
            service: histogram(),
            sent: 0,
            aa: 0,
            ae: 0,
            ar: 0,
            errors: 0,
            not_sent: 0,
            accepted: Vec::new(),
            unknown: Vec::new(),
            first_error: None,
            last_ack: None,
        }
    }

    pub(super) fn merge(&mut self, other: Stats) {
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        self.sent += other.sent;
        self.aa += other.aa;
        self.ae += other.ae;
        self.ar += other.ar;
        self.errors += other.errors;
        self.not_sent += other.not_sent;
        self.accepted.extend(other.accepted);
        self.unknown.extend(other.unknown);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.last_ack = self.last_ack.max(other.last_ack);
    }

    pub(super) fn error(&mut self, what: impl std::fmt::Display) {
        if self.first_error.is_none() {
            self.first_error = Some(what.to_string());
        }
    }

    /// Counts one ACK for message `i`.
    pub(super) fn ack(
        &mut self,
        plan: &Plan,
        i: u64,
        ack: &[u8],
        scheduled: Instant,
        sent: Instant,
    ) {
        let now = Instant::now();
        let (code, control_id) = msa(ack);
        if control_id != plan.control_id(i) {
            self.errors += 1;
            self.unknown.push(i);
            self.error(format!(
                "ACK for {control_id:?} while waiting for {:?}",
                plan.control_id(i)
            ));
            return;
        }
        let _ = self.latency.record(micros(now - scheduled));
        let _ = self.service.record(micros(now - sent));
        self.last_ack = Some(now);
        match code.as_str() {
            "AA" | "CA" => {
                self.aa += 1;
                self.accepted.push(i);
            }
            "AE" | "CE" => self.ae += 1,
            _ => self.ar += 1,
        }
    }
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}
