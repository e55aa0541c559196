//! Concurrent MLLP senders that behave like real HL7 senders: a message that got no positive
//! ACK (connection lost, daemon killed, back-pressure) is sent again, on a new connection.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::mllp::{MllpClient, msa, oru};

/// What the senders saw, shared with the test.
#[derive(Default)]
pub struct SendStats {
    /// Control ids answered `AA` with the matching MSA-2.
    pub acked: Mutex<HashSet<String>>,
    pub acked_count: AtomicUsize,
    /// Sends that got no ACK (connection closed or timed out) and were retried.
    pub resends: AtomicU64,
    /// ACKs other than `AA` (retried too), and `AA` naming another control id.
    pub not_aa: AtomicU64,
    pub wrong_id: AtomicU64,
}

impl SendStats {
    pub fn acked(&self) -> usize {
        self.acked_count.load(Ordering::SeqCst)
    }
}

/// How to send.
pub struct SendPlan {
    pub port: u16,
    /// Another node to fail over to: a sender whose connection failed tries the other port
    /// next (scale-out tests).
    pub fallback: Option<u16>,
    /// Control ids to send, split round-robin over `connections`.
    pub ids: Vec<String>,
    pub connections: usize,
    /// Messages per second over all connections (None: as fast as ACKs come back).
    pub rate: Option<f64>,
    /// A sender gives up on its remaining messages after this.
    pub deadline: Instant,
}

/// Starts one thread per connection; join the handles to wait for the end.
pub fn spawn(plan: SendPlan) -> (Arc<SendStats>, Vec<JoinHandle<()>>) {
    let stats: Arc<SendStats> = Arc::default();
    let n = plan.connections.max(1);
    let interval = plan
        .rate
        .map(|r| Duration::from_secs_f64(n as f64 / r.max(0.001)));
    let handles = (0..n)
        .map(|c| {
            let ids: Vec<String> = plan.ids.iter().skip(c).step_by(n).cloned().collect();
            let stats = Arc::clone(&stats);
            let ports = [Some(plan.port), plan.fallback]
                .into_iter()
                .flatten()
                .collect();
            let deadline = plan.deadline;
            std::thread::spawn(move || send_all(ports, &ids, interval, deadline, &stats))
        })
        .collect();
    (stats, handles)
}

fn send_all(
    ports: Vec<u16>,
    ids: &[String],
    interval: Option<Duration>,
    deadline: Instant,
    stats: &SendStats,
) {
    let mut client: Option<MllpClient> = None;
    let mut port_index = 0;
    let mut next = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        if let Some(iv) = interval {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            next += iv;
        }
        let message = oru(id, (i % 97) as u32);
        loop {
            if Instant::now() > deadline {
                return;
            }
            let c = match client.as_mut() {
                Some(c) => c,
                None => match MllpClient::connect(ports[port_index % ports.len()]) {
                    Ok(c) => client.insert(c),
                    Err(_) => {
                        // The daemon is restarting (or gone: try the other node).
                        port_index += 1;
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                },
            };
            match c.send(&message) {
                Ok(ack) => {
                    let (code, acked_id) = msa(&ack);
                    if code == "AA" && acked_id == *id {
                        if stats
                            .acked
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(id.clone())
                        {
                            stats.acked_count.fetch_add(1, Ordering::SeqCst);
                        }
                        break;
                    }
                    if code == "AA" {
                        stats.wrong_id.fetch_add(1, Ordering::SeqCst);
                    } else {
                        stats.not_aa.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(_) => {
                    stats.resends.fetch_add(1, Ordering::SeqCst);
                    client = None;
                    port_index += 1;
                }
            }
        }
    }
}
