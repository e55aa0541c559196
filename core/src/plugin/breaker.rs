//! The circuit breaker of a configured plugin.
//!
//! A plugin that fails `threshold` calls in a row by its own fault (a trap, invalid output, an
//! instance that cannot be made: [`PluginError::is_plugin_fault`](super::PluginError)) is
//! **suspended**: the pipeline stops calling it and stores its sources' messages as held. A
//! rejection (`malformed`, `unsupported`, `internal` answered by the adapter) is an answer, not a
//! fault: it resets the count like a success.
//!
//! ```text
//! serving ──threshold faults in a row──▶ suspended ──resume / new build──▶ resuming
//!    ▲                                       ▲                                │
//!    │                                       └───threshold faults in a row────┤
//!    └──────────────── every held message re-processed ◀──────────────────────┘
//! ```
//!
//! While `resuming`, the held messages are re-processed in order by one drain task, and new
//! messages are still held (so that they do not overtake the held ones); once none is left the
//! breaker is `serving` again, then the messages that were being held at that moment are
//! re-processed too ([`Breaker::holding`] tells when they are all stored).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// The plugin adapts messages.
    Serving,
    /// Its messages are held until an operator resumes it or a new build is loaded.
    Suspended,
    /// Held messages are being re-processed; new messages are held meanwhile.
    Resuming,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Serving => "serving",
            BreakerState::Suspended => "suspended",
            BreakerState::Resuming => "resuming",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => BreakerState::Suspended,
            2 => BreakerState::Resuming,
            _ => BreakerState::Serving,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            BreakerState::Serving => 0,
            BreakerState::Suspended => 1,
            BreakerState::Resuming => 2,
        }
    }
}

/// A breaker's state, for operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerStatus {
    /// `serving`, `suspended` or `resuming`.
    pub state: &'static str,
    /// Faults in a row that suspend the plugin (0: never).
    pub threshold: u32,
    pub consecutive_failures: u32,
    /// Times it was suspended since start.
    pub trips: u64,
    /// When it was last suspended (ms since the epoch).
    pub suspended_at_ms: Option<i64>,
    /// Why it was last suspended (the class of the last fault: no message content).
    pub reason: Option<String>,
}

/// The breaker of one configured plugin (it outlives the plugin's builds).
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    state: AtomicU8,
    consecutive: AtomicU32,
    trips: AtomicU64,
    last_trip: Mutex<Option<(i64, String)>>,
    /// Messages between "decided to hold" and "stored as held".
    holding: AtomicUsize,
    /// A drain task is running.
    draining: AtomicBool,
}

impl Breaker {
    /// A serving breaker that trips after `threshold` faults in a row (0: never).
    pub fn new(threshold: u32) -> Breaker {
        Breaker {
            threshold,
            state: AtomicU8::new(BreakerState::Serving.to_u8()),
            consecutive: AtomicU32::new(0),
            trips: AtomicU64::new(0),
            last_trip: Mutex::new(None),
            holding: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
        }
    }

    // `state` and `holding` are used as a pair (a holder announces itself then looks at the
    // state; the drain sets the state then looks at the holders): sequentially consistent, so
    // that neither can miss the other.
    pub fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Ordering::SeqCst))
    }

    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// A call the plugin answered (records or a rejection): the fault count starts over.
    pub fn record_success(&self) {
        if self.consecutive.load(Ordering::Relaxed) != 0 {
            self.consecutive.store(0, Ordering::Relaxed);
        }
    }

    /// A call that failed by the plugin's fault. Returns true when this fault suspended it.
    pub fn record_fault(&self, reason: &str) -> bool {
        if self.threshold == 0 {
            return false;
        }
        let n = self.consecutive.fetch_add(1, Ordering::AcqRel) + 1;
        if n < self.threshold {
            return false;
        }
        self.suspend(&format!("{n} failures in a row; last: {reason}"))
    }

    /// Suspends the plugin now (from serving or resuming). False when it already was.
    pub fn suspend(&self, reason: &str) -> bool {
        let mut current = self.state.load(Ordering::SeqCst);
        loop {
            if current == BreakerState::Suspended.to_u8() {
                return false;
            }
            match self.state.compare_exchange(
                current,
                BreakerState::Suspended.to_u8(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        self.trips.fetch_add(1, Ordering::Relaxed);
        *self.last_trip.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((crate::clock::now_ms(), reason.to_string()));
        true
    }

    /// An operator resumes, or a new build was loaded: suspended → resuming, fault count reset.
    /// Returns true when it was suspended.
    pub fn begin_resume(&self) -> bool {
        self.consecutive.store(0, Ordering::Relaxed);
        self.state
            .compare_exchange(
                BreakerState::Suspended.to_u8(),
                BreakerState::Resuming.to_u8(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
    }

    /// Every held message was re-processed: resuming → serving. False when it is not
    /// resuming (e.g. suspended again meanwhile).
    pub fn finish_resume(&self) -> bool {
        self.state
            .compare_exchange(
                BreakerState::Resuming.to_u8(),
                BreakerState::Serving.to_u8(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
    }

    /// Marks a message as being held until the guard is dropped (after it is stored). Take it
    /// before looking at [`Breaker::state`] a second time.
    pub fn hold_guard(&self) -> HoldGuard<'_> {
        self.holding.fetch_add(1, Ordering::SeqCst);
        HoldGuard(self)
    }

    /// Messages being held right now (decided, not stored yet).
    pub fn holding(&self) -> usize {
        self.holding.load(Ordering::SeqCst)
    }

    /// Claims the right to run the drain task; false when one runs already.
    pub fn try_start_drain(&self) -> bool {
        !self.draining.swap(true, Ordering::AcqRel)
    }

    pub fn end_drain(&self) {
        self.draining.store(false, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub fn trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }

    pub fn status(&self) -> BreakerStatus {
        let last = self
            .last_trip
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        BreakerStatus {
            state: self.state().as_str(),
            threshold: self.threshold,
            consecutive_failures: self.consecutive.load(Ordering::Relaxed),
            trips: self.trips(),
            suspended_at_ms: last.as_ref().map(|(at, _)| *at),
            reason: last.map(|(_, r)| r),
        }
    }
}

/// See [`Breaker::hold_guard`].
pub struct HoldGuard<'a>(&'a Breaker);

impl Drop for HoldGuard<'_> {
    fn drop(&mut self) {
        self.0.holding.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_after_threshold_faults_in_a_row_only() {
        let b = Breaker::new(3);
        assert!(!b.record_fault("trap"));
        assert!(!b.record_fault("trap"));
        b.record_success();
        assert!(!b.record_fault("trap"));
        assert!(!b.record_fault("trap"));
        assert_eq!(b.state(), BreakerState::Serving);
        assert!(b.record_fault("trapped: panic"));
        assert_eq!(b.state(), BreakerState::Suspended);
        // More faults (calls already under way) do not trip it again.
        assert!(!b.record_fault("trap"));
        let status = b.status();
        assert_eq!(status.state, "suspended");
        assert_eq!(status.trips, 1);
        assert!(
            status
                .reason
                .unwrap()
                .contains("3 failures in a row; last: trapped: panic")
        );
        assert!(status.suspended_at_ms.is_some());
    }

    #[test]
    fn resume_goes_through_resuming_and_can_trip_again() {
        let b = Breaker::new(2);
        assert!(!b.begin_resume(), "not suspended: nothing to resume");
        b.record_fault("x");
        b.record_fault("x");
        assert!(b.begin_resume());
        assert_eq!(b.state(), BreakerState::Resuming);
        assert_eq!(b.status().consecutive_failures, 0);
        // Still broken: suspended again from resuming.
        b.record_fault("x");
        assert!(b.record_fault("x"));
        assert_eq!(b.state(), BreakerState::Suspended);
        assert!(!b.finish_resume());
        assert!(b.begin_resume());
        assert!(b.finish_resume());
        assert_eq!(b.state(), BreakerState::Serving);
        assert_eq!(b.trips(), 2);
    }

    #[test]
    fn zero_threshold_never_trips_and_guards_count_holders() {
        let b = Breaker::new(0);
        for _ in 0..100 {
            assert!(!b.record_fault("x"));
        }
        assert_eq!(b.state(), BreakerState::Serving);
        {
            let _a = b.hold_guard();
            let _b = b.hold_guard();
            assert_eq!(b.holding(), 2);
        }
        assert_eq!(b.holding(), 0);
        assert!(b.try_start_drain());
        assert!(!b.try_start_drain());
        b.end_drain();
        assert!(b.try_start_drain());
    }
}
