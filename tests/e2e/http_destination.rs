//! An HTTP destination that answers 503 for 30 s and then recovers: every record arrives, none
//! twice, and the daemon's memory stays flat meanwhile.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use passerelle_tests::daemon::Setup;
use passerelle_tests::mllp::{MllpClient, msa, oru};

/// A minimal HTTP/1.1 webhook receiver: 503 while `down`, else 200; counts accepted record ids.
fn webhook(down: Arc<AtomicBool>, accepted: Arc<Mutex<HashMap<String, u32>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let down = Arc::clone(&down);
            let accepted = Arc::clone(&accepted);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let (mut len, mut id) = (0usize, String::new());
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap_or((h, ""));
                        match k.to_ascii_lowercase().as_str() {
                            "content-length" => len = v.trim().parse().unwrap_or(0),
                            "idempotency-key" => id = v.trim().to_string(),
                            _ => {}
                        }
                    }
                    let mut body = vec![0; len];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let status = if down.load(Ordering::SeqCst) {
                        "503 Service Unavailable"
                    } else {
                        *accepted.lock().unwrap().entry(id).or_insert(0) += 1;
                        "200 OK"
                    };
                    let resp = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                    if stream.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn outage_of_30_s_then_recovery_delivers_everything_once() {
    const TOTAL: usize = 2_000;
    let down = Arc::new(AtomicBool::new(true));
    let accepted: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let port = webhook(Arc::clone(&down), Arc::clone(&accepted));
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
    assert!(
        accepted.lock().unwrap().is_empty(),
        "nothing is accepted while the server is down"
    );
    down.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted.lock().unwrap().len() < TOTAL && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let accepted = accepted.lock().unwrap();
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
