//! Crash safety: a randomised harness kills the daemon with SIGKILL at seeded random points
//! while several MLLP senders stream messages (under load, while deliveries catch up after a
//! restart, right after a `routes.toml` edit triggers a reload), restarts it, lets the senders
//! resend what was not ACKed, and at the end checks that every ACKed message is at the file and
//! HTTP destinations and that the file destination received no record twice. Also: SIGTERM
//! finishes in-flight work.
//!
//! `PASSERELLE_CRASH_MESSAGES` (default 5,000), `PASSERELLE_CRASH_KILLS` (default 5),
//! `PASSERELLE_CRASH_SEED` (default: the clock; printed, so a failing run can be replayed).

use std::time::{Duration, Instant};

use passerelle_tests::daemon::{Setup, records_by_message};
use passerelle_tests::journal::outbox_counts;
use passerelle_tests::mllp::{MllpClient, msa, oru};
use passerelle_tests::rng::{Rng, env_usize};
use passerelle_tests::senders::{self, SendPlan};
use passerelle_tests::tally::Tally;
use passerelle_tests::watch::WriteCounter;
use passerelle_tests::webhook::Webhook;

const TO_A: &str = "[[route]]\nname = \"all\"\ndestinations = [\"a\"]\n";

/// Two equivalent routing versions (same destinations): switching between them makes the daemon
/// reload its rules without changing where records go.
const ROUTES: [&str; 2] = [
    "[[route]]\nname = \"all\"\ndestinations = [\"a\", \"hook\"]\n",
    "# edited: same routing, another rules version\n[[route]]\nname = \"everything\"\ndestinations = [\"hook\", \"a\"]\n",
];

/// Entries a delivery worker claims at once (`WorkerOptions::batch`): a kill can lose at most
/// that many "delivered" marks per destination, so an HTTP destination may see that many
/// records again after each kill (it deduplicates by `Idempotency-Key`).
const DELIVERY_BATCH: u64 = 64;

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Mid-stream, under load (journal commits, adapter calls, deliveries under way).
    Load,
    /// Shortly after the previous restart, while deliveries catch up on the backlog.
    CatchUp,
    /// Right after a routes.toml edit, before, during or after the reload it triggers.
    Reload,
}

#[derive(Debug)]
struct Kill {
    phase: Phase,
    /// Load and Reload kills wait until this many messages are ACKed.
    after_acked: usize,
    delay_ms: u64,
}

fn kill_plan(rng: &mut Rng, messages: usize, kills: usize) -> Vec<Kill> {
    let mut thresholds: Vec<usize> = (0..kills)
        .map(|_| rng.range(messages as u64 / 20, messages as u64 * 95 / 100) as usize)
        .collect();
    thresholds.sort_unstable();
    thresholds
        .into_iter()
        .map(|after_acked| {
            let (phase, delay_ms) = match rng.range(0, 3) {
                0 => (Phase::Load, rng.range(0, 300)),
                1 => (Phase::CatchUp, rng.range(100, 1_500)),
                _ => (Phase::Reload, rng.range(0, 1_200)),
            };
            Kill {
                phase,
                after_acked,
                delay_ms,
            }
        })
        .collect()
}

/// Replaces a file the way editors do: write a temp file, rename it over.
fn replace(path: &std::path::Path, content: &str) {
    let tmp = path.with_extension("tmp-edit");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn randomised_kill_9_loses_no_acked_message_and_duplicates_none() {
    let messages = env_usize("PASSERELLE_CRASH_MESSAGES", 5_000);
    let kills = env_usize("PASSERELLE_CRASH_KILLS", 5);
    let seed = Rng::seed_from_env("PASSERELLE_CRASH_SEED");
    let mut rng = Rng::new(seed);
    let plan = kill_plan(&mut rng, messages, kills);
    eprintln!(
        "crash harness: PASSERELLE_CRASH_SEED={seed} messages={messages} kills={kills}\nplan: {plan:?}"
    );
    let started = Instant::now();

    let (hook, hook_port) = Webhook::start(false).unwrap();
    let extra = format!(
        "\n[destinations.hook]\ntype = \"http\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\nmode = \"webhook\"\n"
    );
    let setup = Setup::new(&extra, ROUTES[0]);
    let writes = WriteCounter::watch(&setup.path("data/out/a")).unwrap();
    let mut daemon = setup.start();
    let mut last_start = Instant::now();
    let (sent, handles) = senders::spawn(SendPlan {
        port: setup.mllp_port,
        fallback: None,
        ids: (0..messages).map(|i| format!("C{i:07}")).collect(),
        connections: 4,
        rate: None,
        deadline: Instant::now() + Duration::from_secs(120 + messages as u64 / 50),
    });

    let journal = setup.path("data/journal.db");
    let mut routes_version = 0;
    for (k, kill) in plan.iter().enumerate() {
        match kill.phase {
            Phase::Load | Phase::Reload => {
                while sent.acked() < kill.after_acked && !handles.iter().all(|h| h.is_finished()) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if let Phase::Reload = kill.phase {
                    routes_version = 1 - routes_version;
                    replace(&setup.path("routes.toml"), ROUTES[routes_version]);
                }
                std::thread::sleep(Duration::from_millis(kill.delay_ms));
            }
            Phase::CatchUp => {
                let at = last_start + Duration::from_millis(kill.delay_ms);
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
            }
        }
        let pending = outbox_counts(&journal).map_or(0, |(_, p)| p);
        daemon.kill9();
        eprintln!(
            "kill {}/{kills}: {:?} at {:.1}s, {} ACKed, {pending} deliveries pending",
            k + 1,
            kill.phase,
            started.elapsed().as_secs_f64(),
            sent.acked()
        );
        daemon = setup.start();
        last_start = Instant::now();
    }
    for h in handles {
        h.join().unwrap();
    }
    let acked = sent.acked.lock().unwrap().clone();
    let drained = wait_drained(&setup, messages);
    assert!(daemon.terminate(Duration::from_secs(30)), "clean exit");
    // Let the last rename events reach the watcher.
    std::thread::sleep(Duration::from_millis(300));
    let (writes, overflowed) = writes.finish();

    // Which message each delivered file carries, and how often each file was written.
    let by_message = records_by_message(&setup.path("data/out/a"));
    let http = hook.accepted();
    let Tally {
        lost,
        split,
        rewritten,
        files: delivered_files,
        http_lost,
        http_again,
    } = Tally::new(&acked, &by_message, &writes, &http);
    eprintln!(
        "crash harness result: seed={seed} messages={messages} kills={kills} acked={} \
         delivered_files={delivered_files} lost={} duplicate_files={} file_rewrites={} \
         inotify_overflow={overflowed} http_records={} http_lost={http_lost} \
         http_redeliveries={http_again} resends={} not_aa={} wall={:.1}s",
        acked.len(),
        lost.len(),
        split.len(),
        rewritten.len(),
        http.len(),
        sent.resends.load(std::sync::atomic::Ordering::SeqCst),
        sent.not_aa.load(std::sync::atomic::Ordering::SeqCst),
        started.elapsed().as_secs_f64()
    );

    let replay = format!("replay with PASSERELLE_CRASH_SEED={seed}");
    assert_eq!(
        acked.len(),
        messages,
        "every message ACKed in the end; {replay}"
    );
    assert_eq!(sent.wrong_id.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert!(drained, "the journal drained; {replay}\n{}", daemon.logs());
    assert!(
        lost.is_empty(),
        "{} ACKed messages not delivered, e.g. {:?}; {replay}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(split.is_empty(), "one message, several records: {split:?}");
    assert!(
        !overflowed,
        "inotify lost events: duplicates cannot be counted"
    );
    assert_eq!(writes.len(), delivered_files, "every file write was seen");
    assert!(
        rewritten.is_empty(),
        "{} records written twice to the file destination, e.g. {:?}; {replay}",
        rewritten.len(),
        &rewritten[..rewritten.len().min(5)]
    );
    assert_eq!(
        http_lost, 0,
        "records missing at the HTTP destination; {replay}"
    );
    assert_eq!(http.len(), delivered_files, "the same records over HTTP");
    assert!(
        http_again <= kills as u64 * DELIVERY_BATCH,
        "{http_again} HTTP redeliveries for {kills} kills; {replay}"
    );
    let (entries, pending) = outbox_counts(&journal).unwrap();
    assert_eq!(pending, 0);
    assert_eq!(
        entries as usize,
        2 * messages,
        "one outbox entry per record and destination, even for resent messages"
    );
}

/// Waits until every outbox entry is delivered and both destinations hold `messages` records.
fn wait_drained(setup: &Setup, messages: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60 + messages as u64 / 100);
    let journal = setup.path("data/journal.db");
    while Instant::now() < deadline {
        if let Some((entries, 0)) = outbox_counts(&journal)
            && entries as usize >= 2 * messages
            && setup.delivered("a").len() >= messages
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn sigterm_finishes_in_flight_work_and_restart_resumes() {
    let setup = Setup::new("", TO_A);
    let mut daemon = setup.start();
    let mut client = MllpClient::connect(setup.mllp_port).unwrap();
    for i in 0..200 {
        let id = format!("T{i:03}");
        assert_eq!(msa(&client.send(&oru(&id, i)).unwrap()).0, "AA");
    }
    assert!(
        daemon.terminate(Duration::from_secs(20)),
        "clean exit on SIGTERM\n{}",
        daemon.logs()
    );
    let _daemon = setup.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while setup.delivered("a").len() < 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(setup.delivered("a").len(), 200);
}
