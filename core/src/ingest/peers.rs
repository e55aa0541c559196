//! `max_connections_per_peer`: how many connections one IP address may keep open at once on a
//! listener. A connection beyond it is closed as soon as it is accepted (nothing is read from
//! it), with a warning (at most one per second per listener, so that a flood does not flood the
//! logs too) and the `passerelle_ingest_refused_total{reason="peer-limit"}` metric.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// Open connections per peer address, for one listener.
#[derive(Debug)]
pub struct PeerLimit {
    /// 0: no limit.
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
    warnings: WarnGate,
}

/// Lets a warning through at most once a second (per listener), so that a flood of refused
/// connections or failed handshakes does not flood the logs too.
#[derive(Debug, Default)]
pub struct WarnGate {
    last_ms: AtomicI64,
}

impl WarnGate {
    /// Whether to log the warning now.
    pub fn open(&self) -> bool {
        let now = crate::clock::now_ms();
        let last = self.last_ms.load(Ordering::Relaxed);
        now - last >= 1_000
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

impl PeerLimit {
    pub fn new(max: usize) -> Arc<PeerLimit> {
        Arc::new(PeerLimit {
            max,
            open: Mutex::new(HashMap::new()),
            warnings: WarnGate::default(),
        })
    }

    /// A permit for one more connection from `ip`, or `None` when it already has `max` open.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<PeerPermit> {
        let ip = ip.to_canonical();
        if self.max == 0 {
            return Some(PeerPermit { limit: None, ip });
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(PeerPermit {
            limit: Some(Arc::clone(self)),
            ip,
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections open from `ip` now.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&ip.to_canonical()).copied().unwrap_or(0)
    }

    /// Whether a refusal should be logged at `warn` now (at most once a second).
    pub fn should_warn(&self) -> bool {
        self.warnings.open()
    }
}

/// One open connection of a peer; dropping it frees the place.
#[derive(Debug)]
pub struct PeerPermit {
    limit: Option<Arc<PeerLimit>>,
    ip: IpAddr,
}

impl Drop for PeerPermit {
    fn drop(&mut self) {
        let Some(limit) = &self.limit else { return };
        let mut open = limit.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_gets_at_most_max_connections() {
        let limit = PeerLimit::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let p1 = limit.try_acquire(a).unwrap();
        let _p2 = limit.try_acquire(mapped).unwrap();
        assert!(
            limit.try_acquire(a).is_none(),
            "an IPv4-mapped address is the same peer"
        );
        let _q = limit.try_acquire(b).unwrap();
        assert_eq!(limit.open_from(a), 2);
        drop(p1);
        assert_eq!(limit.open_from(a), 1);
        assert!(limit.try_acquire(a).is_some());
        let unlimited = PeerLimit::new(0);
        let all: Vec<_> = (0..100)
            .map(|_| unlimited.try_acquire(a).unwrap())
            .collect();
        assert_eq!(all.len(), 100);
        assert_eq!(unlimited.open_from(a), 0);
    }
}
