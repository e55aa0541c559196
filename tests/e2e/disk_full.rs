//! A full disk under the journal (a small tmpfs): intake stops with a clear error (no ACK over
//! MLLP, 503 + `Retry-After` over HTTP), nothing ACKed is lost, and intake resumes by itself
//! once space is freed, without a restart. Needs `mount -t tmpfs` (root, or CAP_SYS_ADMIN in a
//! container); skips with a message otherwise.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use passerelle_tests::daemon::Setup;
use passerelle_tests::mllp::{MllpClient, msa, oru};
use passerelle_tests::webhook::Webhook;

const TMPFS_MIB: u64 = 32;
/// Taken from the tmpfs before the daemon starts, freed to end the "disk full" episode. Half
/// the disk: the journal's WAL grows by several pages per commit until a checkpoint, so a
/// small margin fills up again within the 50 follow-up messages.
const BALLAST_MIB: usize = 16;

/// A tmpfs mounted over a folder; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mib: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        if out.status.success() {
            Some(Tmpfs(dir.to_path_buf()))
        } else {
            let msg = format!(
                "cannot mount a tmpfs ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            eprintln!("SKIPPED disk-full test: {msg}; it needs root");
            None
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// POSTs one HL7 message to the HTTP source; returns the status line and the headers.
fn http_ingest(port: u16, body: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "POST /ingest HTTP/1.1\r\nHost: t\r\nContent-Type: x-application/hl7-v2+er7\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.split("\r\n\r\n").next().unwrap_or("").to_string())
}

/// Sends ORU^R01 messages `{prefix}000000`, `{prefix}000001`, … over one MLLP connection
/// until one gets no ACK, at most `limit`; each ACK must be an AA for its message, whose id
/// goes into `acked`. Returns the refused message's id (`None`: all `limit` were ACKed).
fn send_until_refused(
    port: u16,
    prefix: &str,
    limit: u32,
    acked: &mut Vec<String>,
) -> Option<String> {
    let mut client = MllpClient::connect(port).unwrap();
    for i in 0..limit {
        let id = format!("{prefix}{i:06}");
        match client.send(&oru(&id, i % 50)) {
            Ok(ack) => {
                assert_eq!(msa(&ack), ("AA".to_string(), id.clone()), "{ack}");
                acked.push(id);
            }
            Err(_) => return Some(id),
        }
    }
    None
}

#[test]
fn full_disk_stops_intake_clearly_and_intake_resumes_by_itself() {
    let (hook, hook_port) = Webhook::start(false).unwrap();
    let extra = format!(
        "\n[destinations.hook]\ntype = \"http\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\nmode = \"webhook\"\n"
    );
    let setup = Setup::new(
        &extra,
        "[[route]]\nname = \"all\"\ndestinations = [\"hook\"]\n",
    );
    let Some(_tmpfs) = Tmpfs::mount(&setup.path("data"), TMPFS_MIB) else {
        return;
    };
    let ballast = setup.path("data/ballast");
    std::fs::write(&ballast, vec![1u8; BALLAST_MIB << 20]).unwrap();
    let daemon = setup.start();

    // Fill the disk: send until a message gets no ACK.
    let mut acked = Vec::new();
    let full_at = send_until_refused(setup.mllp_port, "F", 100_000, &mut acked)
        .unwrap_or_else(|| panic!("the {TMPFS_MIB} MiB disk never filled up"));
    assert!(
        !acked.is_empty(),
        "messages were accepted before the disk filled up"
    );
    let filled_after = acked.len();
    // Still full: messages are refused again, and HTTP says 503 with a Retry-After. A commit
    // may still fit now and then (a checkpoint lets the WAL start over in the space it already
    // holds): such a message is stored and ACKed, and counted; the space is soon used up again.
    assert!(
        send_until_refused(setup.mllp_port, "R", 200, &mut acked).is_some(),
        "no MLLP refusal while the disk is full"
    );
    let head = (0..200)
        .find_map(|k| {
            let id = format!("HTTPFULL{k:03}");
            let head = http_ingest(setup.http_port, &oru(&id, 1)).unwrap();
            if head.starts_with("HTTP/1.1 2") {
                acked.push(id);
                None
            } else {
                Some(head)
            }
        })
        .expect("no HTTP refusal while the disk is full");
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 30"),
        "{head}"
    );
    let taken_while_full = acked.len() - filled_after;
    let logs = daemon.logs();
    assert!(
        logs.contains("disk full"),
        "a clear error in the logs:\n{logs}"
    );

    // Free space; the sender's resends are taken again, without a restart.
    std::fs::remove_file(&ballast).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let resumed = loop {
        if let Ok(mut c) = MllpClient::connect(setup.mllp_port)
            && let Ok(ack) = c.send(&oru(&full_at, 0))
        {
            break ack;
        }
        assert!(Instant::now() < deadline, "intake did not resume");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(msa(&resumed), ("AA".to_string(), full_at.clone()));
    acked.push(full_at);
    let mut client = MllpClient::connect(setup.mllp_port).unwrap();
    for j in 0..50 {
        let id = format!("G{j:03}");
        assert_eq!(msa(&client.send(&oru(&id, j)).unwrap()).0, "AA");
        acked.push(id);
    }

    // Every ACKed message is delivered, once.
    let deadline = Instant::now() + Duration::from_secs(60);
    while hook.distinct() < acked.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let accepted = hook.accepted();
    assert_eq!(accepted.len(), acked.len(), "every ACKed message delivered");
    // A record delivered while the disk is full cannot be marked delivered, so it is sent
    // again later with the same Idempotency-Key (the destination deduplicates): at most the
    // records claimed during the episode (each retried with back-off until the mark can be
    // written), not the whole backlog.
    let again = accepted.values().filter(|n| **n > 1).count();
    assert!(again <= 2 * 64, "{again} records sent again");
    eprintln!(
        "disk full after {filled_after} messages on a {TMPFS_MIB} MiB tmpfs ({taken_while_full} taken after the first refusal); resumed after freeing {BALLAST_MIB} MiB; {again} records sent again",
    );
}
