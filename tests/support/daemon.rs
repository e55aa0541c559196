//! Starting the real `passerelle` binary on a generated configuration.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{passerelle_bin, wasm};

/// A TCP port on 127.0.0.1 that nothing listens on, for a daemon or server a test starts.
///
/// The port is released before the child binds it. A port of the kernel's ephemeral range
/// (where `bind(0)` picks) can meanwhile become the local port of any outgoing connection —
/// a test client, a daemon's delivery, a NATS route — and the child then fails to bind (a CI
/// run lost a NATS server so). Ports are therefore taken below that range, where only
/// listeners compete, from a counter shared by the test process's threads, starting at an
/// offset derived from the process id so that two test processes rarely meet.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (lo, hi) = test_port_range();
    let span = u32::from(hi - lo);
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // Below `hi`, so the cast cannot truncate.
        let port = lo + ((start + n) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {lo} and {hi}");
}

/// The 10,000 ports just below the ephemeral range (`ip_local_port_range`, 32768 by
/// default), read once per test process.
fn test_port_range() -> (u16, u16) {
    static RANGE: OnceLock<(u16, u16)> = OnceLock::new();
    *RANGE.get_or_init(|| {
        let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
            .unwrap_or(32768);
        let hi = ephemeral_low.max(11_024);
        (hi - 10_000, hi)
    })
}

/// A test installation: a folder with `passerelle.toml`, `routes.toml` and a data dir.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub mllp_port: u16,
    pub http_port: u16,
}

impl Setup {
    /// `extra` is appended to the generated config (more destinations...). `routes` is the
    /// routes file content.
    pub fn new(extra: &str, routes: &str) -> Setup {
        Self::with_plugin(extra, routes, &wasm("hl7v2-lab"))
    }

    /// Like [`Setup::new`], with the `hl7v2-lab` plugin loaded from `plugin` (a copy the test
    /// may replace while the daemon runs).
    pub fn with_plugin(extra: &str, routes: &str, plugin: &Path) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let mllp_port = free_port();
        let http_port = free_port();
        let config = format!(
            r#"
data_dir = "data"
routes = "routes.toml"
component_cache = "{cache}"

[plugins.hl7v2-lab]
path = "{wasm}"

[sources.lab-mllp]
type = "mllp"
listen = "127.0.0.1:{mllp_port}"
plugin = "hl7v2-lab"

[sources.lab-http]
type = "http"
listen = "127.0.0.1:{http_port}"
path = "/ingest"
plugin = "hl7v2-lab"
content_type = "x-application/hl7-v2+er7"

[destinations.a]
type = "file"
dir = "out/a"

[destinations.b]
type = "file"
dir = "out/b"

[delivery.retry]
max_attempts = 1000
initial_backoff_ms = 50
max_backoff_ms = 1000
{extra}
"#,
            wasm = plugin.display(),
            cache = crate::component_cache().display(),
        );
        std::fs::write(dir.path().join("passerelle.toml"), config).expect("write config");
        std::fs::write(dir.path().join("routes.toml"), routes).expect("write routes");
        Setup {
            dir,
            mllp_port,
            http_port,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn config(&self) -> PathBuf {
        self.path("passerelle.toml")
    }

    /// Record files in `data/out/<dest>`, by name.
    pub fn delivered(&self, dest: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(&format!("data/out/{dest}")))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|n| n.ends_with(".json"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Starts the daemon and waits until its MLLP port accepts connections.
    pub fn start(&self) -> Daemon {
        let log = std::fs::File::create(self.path(&format!("daemon-{}.log", now_ms())))
            .expect("log file");
        let child = Command::new(passerelle_bin())
            .arg("run")
            .arg("--config")
            .arg(self.config())
            // PASSERELLE_TEST_LOG: another filter for the daemons (e.g. to debug a test).
            .env(
                "PASSERELLE_LOG",
                std::env::var("PASSERELLE_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn passerelle");
        let mut daemon = Daemon {
            child: Some(child),
            dir: self.dir.path().to_path_buf(),
        };
        let addr: SocketAddr = ([127, 0, 0, 1], self.mllp_port).into();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = daemon
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("passerelle exited early ({status}):\n{}", daemon.logs());
            }
            assert!(
                Instant::now() < deadline,
                "passerelle did not listen in time:\n{}",
                daemon.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// A running daemon; killed (SIGKILL) when dropped if still running.
pub struct Daemon {
    child: Option<Child>,
    dir: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait for a clean exit; returns whether it exited successfully in time.
    pub fn terminate(&mut self, within: Duration) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Resident memory of the daemon, in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Everything the daemons of this setup logged so far.
    pub fn logs(&self) -> String {
        logs_in(&self.dir)
    }
}

pub fn logs_in(dir: &Path) -> String {
    let mut out = String::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".log"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    for f in files {
        let mut s = String::new();
        if let Ok(mut file) = std::fs::File::open(&f) {
            let _ = file.read_to_string(&mut s);
        }
        out.push_str(&s);
    }
    out
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A plain HTTP/1.1 GET on 127.0.0.1 (admin API, NATS monitoring); status and body. Status 0
/// when nothing answers.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::Write;
    let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = c.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

/// The record files (`*.json`) of a file destination's folder, by the control id (source
/// message id) of the message they came from. Panics on a file that does not parse.
pub fn records_by_message(dir: &Path) -> std::collections::HashMap<String, Vec<String>> {
    let mut by_message: std::collections::HashMap<String, Vec<String>> = Default::default();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.ends_with(".json") {
            continue;
        }
        // Files are written atomically (temp file + rename): a torn or unreadable one is a bug.
        let text = std::fs::read_to_string(entry.path())
            .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", entry.path().display()));
        let smid = v["envelope"]["source_message_id"].as_str().unwrap_or("");
        by_message.entry(smid.to_string()).or_default().push(name);
    }
    by_message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let (lo, hi) = test_port_range();
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            ports.len(),
            "a port was given twice: {ports:?}"
        );
        for p in ports {
            assert!((lo..hi).contains(&p), "{p} outside {lo}..{hi}");
            TcpListener::bind(("127.0.0.1", p)).expect("a free port binds");
        }
        // A connection's local port comes from the ephemeral range, never from ours.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let conn = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(conn.local_addr().unwrap().port() >= hi);
    }
}
