//! While a sender streams 10,000 messages, editing `routes.toml` reroutes later records within
//! 2 s; every record reaches exactly once the destination its rules version chose; an invalid
//! edit changes nothing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use passerelle_tests::daemon::Setup;
use passerelle_tests::mllp::{MllpClient, msa, oru};

const TO_A: &str = "[[route]]\nname = \"all\"\ndestinations = [\"a\"]\n";
const TO_B: &str = "[[route]]\nname = \"all\"\ndestinations = [\"b\"]\n";
const INVALID: &str = "[[route]]\nname = \"all\"\ndestinations = [\"nowhere\"]\n";

/// Replaces a file the way editors do: write a temp file, rename it over.
fn replace(path: &std::path::Path, content: &str) {
    let tmp = path.with_extension("tmp-edit");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn editing_routes_reroutes_a_live_stream() {
    const TOTAL: usize = 10_000;
    const SENDERS: usize = 4;
    let setup = Setup::new("", TO_A);
    let daemon = setup.start();
    let acked: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let routes = setup.path("routes.toml");

    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let acked = Arc::clone(&acked);
            let port = setup.mllp_port;
            std::thread::spawn(move || {
                let mut client = MllpClient::connect(port).unwrap();
                for i in (s..TOTAL).step_by(SENDERS) {
                    let id = format!("R{i:05}");
                    let ack = client.send(&oru(&id, i as u32 % 97)).unwrap();
                    assert_eq!(msa(&ack), ("AA".to_string(), id.clone()), "{ack}");
                    acked.lock().unwrap().insert(id, Instant::now());
                }
            })
        })
        .collect();

    let wait_for = |n: usize| {
        while acked.lock().unwrap().len() < n {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(TOTAL * 3 / 10);
    replace(&routes, TO_B);
    let edited_at = Instant::now();
    wait_for(TOTAL * 6 / 10);
    replace(&routes, INVALID);
    for s in senders {
        s.join().unwrap();
    }

    // Wait until every record is delivered somewhere.
    let deadline = Instant::now() + Duration::from_secs(60);
    while setup.delivered("a").len() + setup.delivered("b").len() < TOTAL
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let in_a: HashSet<String> = setup.delivered("a").into_iter().collect();
    let in_b: HashSet<String> = setup.delivered("b").into_iter().collect();
    assert_eq!(
        in_a.len() + in_b.len(),
        TOTAL,
        "every record delivered exactly once\n{}",
        daemon.logs()
    );
    assert!(
        in_a.is_disjoint(&in_b),
        "a record reached both destinations"
    );
    assert!(
        !in_a.is_empty() && !in_b.is_empty(),
        "a: {}, b: {}",
        in_a.len(),
        in_b.len()
    );

    // Each record went where the rules version recorded for it in the journal says.
    let db = rusqlite::Connection::open_with_flags(
        setup.path("data/journal.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = db
        .prepare("SELECT r.id, m.rules_version, m.source_message_id FROM records r JOIN messages m ON m.id = r.first_message_id")
        .unwrap();
    let rows: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), TOTAL);
    let mut dest_of_version: HashMap<String, &str> = HashMap::new();
    let acked = acked.lock().unwrap();
    for (id, version, msg_id) in &rows {
        let file = format!("{id}.json");
        let dest = if in_a.contains(&file) { "a" } else { "b" };
        let seen = dest_of_version.entry(version.clone()).or_insert(dest);
        assert_eq!(
            *seen, dest,
            "records of rules version {version} went to two destinations"
        );
        // Acknowledged more than 2 s after the edit: must be under the new rules.
        if acked[msg_id].duration_since(edited_at) > Duration::from_secs(2) {
            assert_eq!(
                dest, "b",
                "{msg_id} acked >2 s after the edit still went to a"
            );
        }
    }
    assert_eq!(
        dest_of_version.len(),
        2,
        "the invalid edit must not create a rules version: {dest_of_version:?}"
    );
    assert!(
        daemon.logs().contains("routes.toml:3:"),
        "the invalid edit is logged with file:line:column"
    );
}
