//! An HTTP destination that answers 503 for 30 s and then recovers: every record arrives, none
//! twice, and the daemon's memory stays flat meanwhile.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use passerelle_tests::daemon::Setup;
use passerelle_tests::mllp::{MllpClient, msa, oru};
use passerelle_tests::webhook::{Refusal, Webhook};

#[test]
fn outage_of_30_s_then_recovery_delivers_everything_once() {
    const TOTAL: usize = 2_000;
    // 503s without Retry-After: the destination's own back-off paces the retries.
    let (hook, port) = Webhook::start_with(true, Refusal::Unavailable).unwrap();
    let extra = format!(
        "\n[destinations.hook]\ntype = \"http\"\nurl = \"http://127.0.0.1:{port}/hook\"\nmode = \"webhook\"\nretry = {{ max_attempts = 1000, initial_backoff_ms = 100, max_backoff_ms = 2000 }}\n"
    );
    let setup = Setup::new(
        &extra,
        "[[route]]\nname = \"all\"\ndestinations = [\"hook\"]\n",
    );
    let daemon = setup.start();
    let started = Instant::now();
    let mut client = MllpClient::connect(setup.mllp_port).unwrap();
    for i in 0..TOTAL {
        let id = format!("H{i:05}");
        assert_eq!(msa(&client.send(&oru(&id, i as u32 % 40)).unwrap()).0, "AA");
    }
    // Sample memory during the outage, after the stream is in.
    std::thread::sleep(Duration::from_secs(3));
    let baseline = daemon.rss_kib();
    let mut peak = baseline;
    while started.elapsed() < Duration::from_secs(30) {
        peak = peak.max(daemon.rss_kib());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        hook.distinct(),
        0,
        "nothing is accepted while the server is down"
    );
    assert!(
        hook.refused.load(Ordering::Relaxed) > 0,
        "the destination kept trying"
    );
    hook.down.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while hook.distinct() < TOTAL && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let accepted = hook.accepted();
    assert_eq!(
        accepted.len(),
        TOTAL,
        "every record arrives\n{}",
        daemon.logs()
    );
    let twice: Vec<_> = accepted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "records accepted twice: {twice:?}");
    assert!(
        peak < baseline + 64 * 1024,
        "memory grew during the outage: {baseline} KiB → {peak} KiB"
    );
}
