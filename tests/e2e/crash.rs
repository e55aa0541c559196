//! kill -9 of the daemon in the middle of a 10,000-message stream, then restart: every message
//! that was ACKed is delivered, none twice to the file destination.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use passerelle_tests::daemon::Setup;
use passerelle_tests::mllp::{MllpClient, msa, oru};

const TO_A: &str = "[[route]]\nname = \"all\"\ndestinations = [\"a\"]\n";

#[test]
fn kill_9_mid_stream_loses_no_acked_message() {
    const TOTAL: usize = 10_000;
    let setup = Setup::new("", TO_A);
    let mut daemon = setup.start();
    let mut acked: Vec<String> = Vec::new();
    let mut client = MllpClient::connect(setup.mllp_port).unwrap();
    let mut i = 0;
    let mut killed = false;
    while i < TOTAL {
        let id = format!("K{i:05}");
        if !killed && i == TOTAL * 4 / 10 {
            // Kill while the previous messages are still being delivered.
            daemon.kill9();
            killed = true;
            daemon = setup.start();
            client = MllpClient::connect(setup.mllp_port).unwrap();
        }
        match client.send(&oru(&id, i as u32 % 50)) {
            Ok(ack) => {
                assert_eq!(msa(&ack), ("AA".to_string(), id.clone()), "{ack}");
                acked.push(id);
                i += 1;
            }
            // The sender resends what was not acknowledged, as HL7 senders do.
            Err(_) => client = MllpClient::connect(setup.mllp_port).unwrap(),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while setup.delivered("a").len() < TOTAL && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let files: HashSet<String> = setup.delivered("a").into_iter().collect();
    let mut delivered_ids = HashSet::new();
    for f in &files {
        let text = std::fs::read_to_string(setup.path(&format!("data/out/a/{f}"))).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let msg_id = v["envelope"]["source_message_id"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            delivered_ids.insert(msg_id.clone()),
            "{msg_id} delivered twice"
        );
    }
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !delivered_ids.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acked messages not delivered, e.g. {:?}\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        daemon.logs()
    );
    // Each record's outbox entry was delivered once and is not pending any more.
    let db = rusqlite::Connection::open_with_flags(
        setup.path("data/journal.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let pending: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM outbox WHERE state != 'delivered'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(pending, 0);
    let entries: i64 = db
        .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        entries as usize,
        files.len(),
        "one outbox entry per record, even for resent messages"
    );
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
