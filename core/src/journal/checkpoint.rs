//! WAL checkpoints off the commit path.
//!
//! With SQLite's automatic checkpoint, the commit that crosses the threshold copies the whole
//! WAL into the database file and fsyncs it before it returns: tens of megabytes written
//! inside one group commit, a 45–60 ms stall of every acknowledgement queued behind it. Here
//! a background thread with its own connection copies committed frames into the database
//! file while the writer goes on (`PASSIVE`: it neither waits for nor blocks the writer and
//! the readers), and fsyncs the database file after each pass: SQLite itself syncs only after
//! a pass that copied the whole WAL, which under steady load never happens.
//!
//! A WAL only starts over from its beginning when a transaction starts after a checkpoint
//! that copied every frame. So once the WAL is past [`CheckpointTuning::reset_pages`], the
//! thread checkpoints without pausing until a pass finds little left, then asks the writer
//! ([`Checkpointer::reset_due`]) to copy the few frames committed since, between two
//! transactions (a few milliseconds), after which its next transaction rewinds the WAL.
//! SQLite's own automatic checkpoint stays on at four times that size as a backstop: if this
//! thread fails, the WAL still cannot grow without bound.
//!
//! Measured (docs/benchmarks.md §6, 5,000 msg/s, journal only): ACK p99 50 → 30–34 ms,
//! p90 32 → 10–13 ms.

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::error::{JournalError, ctx};

/// A pass that copied at most this many pages was nearly caught up with the writer.
const CAUGHT_UP: i64 = 256;

/// When the background checkpoint runs, and when the WAL is rewound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointTuning {
    /// Pause between two background checkpoints (each one that copies frames fsyncs the
    /// database file once).
    pub interval: Duration,
    /// WAL size (pages) past which the writer rewinds it.
    pub reset_pages: i64,
}

impl Default for CheckpointTuning {
    fn default() -> Self {
        CheckpointTuning {
            interval: Duration::from_millis(50),
            reset_pages: 16_000,
        }
    }
}

impl CheckpointTuning {
    /// `PRAGMA wal_autocheckpoint` of the write connection: the backstop.
    pub(super) fn backstop_pages(&self) -> i64 {
        self.reset_pages.saturating_mul(4)
    }
}

/// What `PRAGMA wal_checkpoint` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pass {
    /// Another checkpoint was running (nothing done).
    pub busy: bool,
    /// Frames in the WAL.
    pub log: i64,
    /// Frames now copied into the database file.
    pub copied: i64,
}

/// Runs a `PASSIVE` checkpoint on `conn`.
pub(super) fn passive(conn: &Connection) -> Result<Pass, JournalError> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok(Pass {
            busy: r.get::<_, i64>(0)? != 0,
            log: r.get(1)?,
            copied: r.get(2)?,
        })
    })
    .map_err(ctx("checkpointing the WAL"))
}

/// The background checkpoint thread; stopped and joined on drop.
pub(super) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    reset_due: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on its own read-write connection to the journal.
    pub fn spawn(
        conn: Connection,
        db_file: File,
        tuning: CheckpointTuning,
    ) -> std::io::Result<Checkpointer> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let reset_due = Arc::new(AtomicBool::new(false));
        let handle = {
            let (stop, reset_due) = (stop.clone(), reset_due.clone());
            std::thread::Builder::new()
                .name("journal-checkpoint".into())
                .spawn(move || run(conn, &db_file, tuning, &stop, &reset_due))?
        };
        Ok(Checkpointer {
            stop,
            reset_due,
            handle: Some(handle),
        })
    }

    /// Whether the writer should checkpoint now (between transactions) to rewind the WAL;
    /// clears the request.
    pub fn reset_due(&self) -> bool {
        self.reset_due.swap(false, Ordering::Relaxed)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (flag, cvar) = &*self.stop;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cvar.notify_all();
        if let Some(handle) = self.handle.take()
            && handle.join().is_err()
        {
            tracing::error!("the journal checkpoint thread panicked");
        }
    }
}

fn run(
    conn: Connection,
    db_file: &File,
    tuning: CheckpointTuning,
    stop: &(Mutex<bool>, Condvar),
    reset_due: &AtomicBool,
) {
    let (flag, cvar) = stop;
    let mut stopped = flag.lock().unwrap_or_else(|p| p.into_inner());
    let mut failing = false;
    let mut last: Option<Pass> = None;
    while !*stopped {
        drop(stopped);
        let mut pause = tuning.interval;
        match passive(&conn) {
            Ok(pass) => {
                failing = false;
                // Frames this pass copied (the WAL may have started over since the last one).
                let copied_now = match last {
                    Some(l) if pass.log >= l.log && pass.copied >= l.copied => {
                        pass.copied - l.copied
                    }
                    _ => pass.copied,
                };
                if !pass.busy && pass.log >= tuning.reset_pages {
                    // Past the size: checkpoint without pausing until a pass finds little
                    // left to copy, then let the writer copy the rest (now a short stall).
                    pause = Duration::ZERO;
                    if copied_now <= CAUGHT_UP && pass.copied == pass.log {
                        reset_due.store(true, Ordering::Relaxed);
                        pause = tuning.interval;
                    }
                }
                // SQLite fsyncs the database file only when a pass copied the whole WAL, which
                // under steady load is never: the copied pages would pile up in the page cache
                // and the writer's rewind would have to flush them all (a 25–40 ms stall).
                if copied_now > 0
                    && pass.copied < pass.log
                    && let Err(e) = db_file.sync_data()
                {
                    tracing::warn!(error = %e, "cannot sync the journal file after a checkpoint");
                }
                last = Some(pass);
            }
            Err(e) => {
                // The writer's automatic checkpoint still bounds the WAL meanwhile.
                if !failing {
                    tracing::warn!(error = %e, "background WAL checkpoint failed; retrying every second");
                }
                failing = true;
                pause = Duration::from_secs(1);
            }
        }
        stopped = flag.lock().unwrap_or_else(|p| p.into_inner());
        if !*stopped && !pause.is_zero() {
            stopped = cvar
                .wait_timeout(stopped, pause)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}
