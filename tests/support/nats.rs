//! A real NATS JetStream cluster on loopback (Debian's `nats-server`), for the scale-out tests.
//! Opt-in: they run when `PASSERELLE_NATS_TESTS` is set (`.ci/run` sets it and installs the
//! server); without it they print SKIPPED and pass, so the plain test command needs no NATS.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{free_port, http_get};

/// Whether the NATS tests should run; panics when asked for but `nats-server` is missing.
pub fn enabled() -> bool {
    if std::env::var_os("PASSERELLE_NATS_TESTS").is_none() {
        eprintln!("SKIPPED: NATS scale-out test (set PASSERELLE_NATS_TESTS=1; .ci/run does)");
        return false;
    }
    assert!(
        server_binary().is_some(),
        "PASSERELLE_NATS_TESTS is set but nats-server is not installed (apt-get install nats-server)"
    );
    true
}

fn server_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .map(|d| d.join("nats-server"))
        .find(|p| p.exists())
}

struct Server {
    name: String,
    client_port: u16,
    cluster_port: u16,
    monitor_port: u16,
    child: Option<Child>,
}

/// `n` clustered JetStream servers, each with its own store under a temp dir.
pub struct Cluster {
    dir: tempfile::TempDir,
    servers: Vec<Server>,
}

impl Cluster {
    /// Starts the servers and waits until each accepts client connections (the JetStream
    /// leader election may still be under way: clients retry).
    ///
    /// The ports come from `free_port`, which releases them before `nats-server` binds them:
    /// another process's listener can still take one in between, and that server exits at
    /// once. A failed start is retried with fresh ports (three attempts);
    /// the panic after the third carries every attempt's reason and the servers' logs.
    pub fn start(n: usize) -> Cluster {
        let mut failures = String::new();
        for attempt in 1..=3 {
            let mut cluster = Cluster::spawn_all(n);
            match cluster.wait_listening() {
                Ok(()) => return cluster,
                Err(why) => {
                    failures.push_str(&format!("attempt {attempt}: {why}\n{}", cluster.logs()));
                    drop(cluster);
                }
            }
        }
        panic!("nats cluster of {n} did not start:\n{failures}");
    }

    fn spawn_all(n: usize) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let servers: Vec<Server> = (0..n)
            .map(|i| Server {
                name: format!("n{}", i + 1),
                client_port: free_port(),
                cluster_port: free_port(),
                monitor_port: free_port(),
                child: None,
            })
            .collect();
        let mut cluster = Cluster { dir, servers };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster
    }

    /// Waits for every server's client port; an `Err` names the server that exited before
    /// listening (most likely a port taken) or stayed silent for 20 s.
    fn wait_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        for s in &mut self.servers {
            let addr: SocketAddr = ([127, 0, 0, 1], s.client_port).into();
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                if let Some(Ok(Some(status))) = s.child.as_mut().map(Child::try_wait) {
                    s.child = None;
                    return Err(format!("nats-server {} exited ({status})", s.name));
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "nats-server {} did not listen on {} within 20 s",
                        s.name, s.client_port
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    fn spawn(&mut self, i: usize) {
        let bin = server_binary().expect("nats-server");
        let routes: Vec<String> = self
            .servers
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, s)| format!("nats://127.0.0.1:{}", s.cluster_port))
            .collect();
        let s = &self.servers[i];
        let store = self.dir.path().join(&s.name);
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", s.name)))
            .expect("nats log");
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &s.client_port.to_string()])
            .args(["-m", &s.monitor_port.to_string()])
            .args(["-n", &s.name, "-js", "-sd"])
            .arg(&store)
            .args(if routes.is_empty() {
                // One server: no cluster.
                Vec::new()
            } else {
                vec![
                    "--cluster_name".to_string(),
                    "passerelle-test".to_string(),
                    "--cluster".to_string(),
                    format!("nats://127.0.0.1:{}", s.cluster_port),
                    "--routes".to_string(),
                    routes.join(","),
                ]
            })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nats-server");
        self.servers[i].child = Some(child);
    }

    /// Client URLs of every server (alive or not).
    pub fn urls(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.client_port))
            .collect()
    }

    /// SIGKILL server `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.servers[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// What the live servers report of the streams and consumers (`/jsz`), for a failure
    /// message.
    pub fn jetstream_state(&self) -> String {
        let mut out = String::new();
        for s in self.servers.iter().filter(|s| s.child.is_some()) {
            out.push_str(&format!("--- {} /jsz\n", s.name));
            out.push_str(&http_get(s.monitor_port, "/jsz?consumers=true").1);
            out.push('\n');
        }
        out
    }

    /// The servers' logs (for a failure message).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for s in &self.servers {
            let text = std::fs::read_to_string(self.dir.path().join(format!("{}.log", s.name)))
                .unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            out.push_str(&format!("--- {} (last lines)\n", s.name));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}
