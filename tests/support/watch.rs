//! Counts the writes a folder receives, by file name, with inotify: the file destination
//! replaces `<record id>.json` atomically (temp file + rename), so a second delivery of the
//! same record leaves the same file behind and only the rename event shows it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use inotify::{EventMask, Inotify, WatchMask};

/// Renames onto / creations of `*.json` names in one folder, counted per name.
pub struct WriteCounter {
    counts: Arc<Mutex<HashMap<String, u32>>>,
    overflowed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WriteCounter {
    /// Watches `dir` (created if missing). Raises the kernel's inotify queue when allowed, so
    /// bursts of deliveries do not overflow it; an overflow is reported by [`Self::overflowed`].
    pub fn watch(dir: &Path) -> std::io::Result<WriteCounter> {
        std::fs::create_dir_all(dir)?;
        // Best effort (needs root); the reader thread drains the queue continuously anyway.
        let _ = std::fs::write("/proc/sys/fs/inotify/max_queued_events", "1048576");
        let mut inotify = Inotify::init()?;
        inotify
            .watches()
            .add(dir, WatchMask::MOVED_TO | WatchMask::CREATE)?;
        let counts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let overflowed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (counts, overflowed, stop) = (
                Arc::clone(&counts),
                Arc::clone(&overflowed),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    match inotify.read_events(&mut buf) {
                        Ok(events) => {
                            let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
                            for e in events {
                                if e.mask.contains(EventMask::Q_OVERFLOW) {
                                    overflowed.store(true, Ordering::SeqCst);
                                }
                                let Some(name) = e.name.and_then(|n| n.to_str()) else {
                                    continue;
                                };
                                if name.ends_with(".json") && !name.starts_with('.') {
                                    *counts.entry(name.to_string()).or_insert(0) += 1;
                                }
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            if stop.load(Ordering::SeqCst) {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(_) => {
                            overflowed.store(true, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            })
        };
        Ok(WriteCounter {
            counts,
            overflowed,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops watching (after draining what the kernel queued) and returns the counts, and
    /// whether events were lost (the counts are then a lower bound).
    pub fn finish(mut self) -> (HashMap<String, u32>, bool) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let counts = std::mem::take(&mut *self.counts.lock().unwrap_or_else(|p| p.into_inner()));
        (counts, self.overflowed.load(Ordering::SeqCst))
    }
}

impl Drop for WriteCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
