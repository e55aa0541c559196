//! A destination down for a long time while messages keep arriving: the backlog grows in the
//! journal on disk, not in the daemon's memory, and everything arrives exactly once afterwards.
//!
//! `PASSERELLE_OUTAGE_SECS` (default 45; the acceptance run uses 600) and
//! `PASSERELLE_OUTAGE_RATE` (messages per second over MLLP during the outage, default 150).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use passerelle_tests::daemon::Setup;
use passerelle_tests::rng::env_usize;
use passerelle_tests::senders::{self, SendPlan};
use passerelle_tests::webhook::Webhook;

/// Fixed ceiling for the daemon's resident memory, whatever the backlog: the daemon at rest
/// (runtime, compiled plugin, pools) is ~40-60 MiB; SQLite may cache up to 32 MiB on the
/// writer and 16 MiB per reader connection; delivery claims at most a batch of 64 records.
const RSS_CEILING_KIB: u64 = 256 * 1024;
/// After warm-up (SQLite caches full), what RSS may still gain while the journal keeps growing.
const RSS_GROWTH_KIB: u64 = 12 * 1024;

struct Sample {
    at: f64,
    rss_kib: u64,
    journal_bytes: u64,
}

fn journal_bytes(setup: &Setup) -> u64 {
    ["data/journal.db", "data/journal.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(setup.path(f)).ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn long_destination_outage_keeps_memory_flat_and_delivers_everything_once() {
    let secs = env_usize("PASSERELLE_OUTAGE_SECS", 45) as u64;
    let rate = env_usize("PASSERELLE_OUTAGE_RATE", 150);
    let messages = secs as usize * rate;
    let (hook, port) = Webhook::start(true).unwrap();
    let extra = format!(
        "\n[destinations.hook]\ntype = \"http\"\nurl = \"http://127.0.0.1:{port}/hook\"\nmode = \"webhook\"\nretry = {{ max_attempts = 100000, initial_backoff_ms = 200, max_backoff_ms = 5000 }}\n"
    );
    let setup = Setup::new(
        &extra,
        "[[route]]\nname = \"all\"\ndestinations = [\"hook\"]\n",
    );
    let daemon = setup.start();
    let started = Instant::now();
    let (sent, handles) = senders::spawn(SendPlan {
        port: setup.mllp_port,
        fallback: None,
        ids: (0..messages).map(|i| format!("O{i:07}")).collect(),
        connections: 4,
        rate: Some(rate as f64),
        deadline: started + Duration::from_secs(secs + 120),
    });

    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        samples.push(Sample {
            at: started.elapsed().as_secs_f64(),
            rss_kib: daemon.rss_kib(),
            journal_bytes: journal_bytes(&setup),
        });
    }
    assert_eq!(
        hook.distinct(),
        0,
        "nothing is accepted while the server is down"
    );
    let refused = hook.refused.load(Ordering::SeqCst);
    hook.down.store(false, Ordering::SeqCst);
    for h in handles {
        h.join().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(120 + messages as u64 / 200);
    while hook.distinct() < messages && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let recovered_in = started.elapsed().as_secs_f64() - secs as f64;

    // Warm-up: the first half (at least 20 s) fills SQLite's caches (32 MiB on the writer) and
    // the pools; measured at 150 msg/s the RSS curve flattens after ~23 s.
    let warm = samples
        .iter()
        .position(|s| s.at >= (secs as f64 / 2.0).max(20.0))
        .unwrap_or(0);
    let (after_warm, end) = (&samples[warm], &samples[samples.len() - 1]);
    let peak = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let min = samples.iter().map(|s| s.rss_kib).min().unwrap_or(0);
    eprintln!(
        "outage: {secs} s at {rate} msg/s, {} ACKed, {refused} deliveries refused (503), \
         recovered in {recovered_in:.1} s; RSS MiB min {:.1} peak {:.1}, after warm-up ({:.0} s) \
         {:.1}, end {:.1}; journal MiB after warm-up {:.1}, end {:.1}",
        sent.acked(),
        min as f64 / 1024.0,
        peak as f64 / 1024.0,
        after_warm.at,
        after_warm.rss_kib as f64 / 1024.0,
        end.rss_kib as f64 / 1024.0,
        after_warm.journal_bytes as f64 / 1048576.0,
        end.journal_bytes as f64 / 1048576.0,
    );
    for s in samples.iter().step_by((samples.len() / 20).max(1)) {
        eprintln!(
            "  t={:>5.0}s rss={:>6.1} MiB journal={:>7.1} MiB",
            s.at,
            s.rss_kib as f64 / 1024.0,
            s.journal_bytes as f64 / 1048576.0
        );
    }

    assert_eq!(
        sent.acked(),
        messages,
        "every message ACKed during the outage"
    );
    let accepted = hook.accepted();
    assert_eq!(
        accepted.len(),
        messages,
        "every record arrives after the outage\n{}",
        daemon.logs()
    );
    let twice: Vec<_> = accepted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "records accepted twice: {twice:?}");
    assert!(
        end.journal_bytes >= after_warm.journal_bytes + 8 * 1048576,
        "the backlog grows on disk (journal {} → {} bytes)",
        after_warm.journal_bytes,
        end.journal_bytes
    );
    assert!(peak > 0 && peak <= RSS_CEILING_KIB, "RSS peak {peak} KiB");
    assert!(
        end.rss_kib <= after_warm.rss_kib + RSS_GROWTH_KIB,
        "RSS grew with the backlog: {} KiB after warm-up → {} KiB at the end",
        after_warm.rss_kib,
        end.rss_kib
    );
}
