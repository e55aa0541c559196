//! `passerelle bench`: an MLLP load generator for a running daemon, and a start-up timer.
//!
//! Load (`passerelle bench --target 127.0.0.1:2575 ...`): sends `--messages` ORU^R01 messages
//! (unique MSH-10, `--obx` OBX each, patients spread over `--patients` ids) over
//! `--connections` MLLP connections and records the ACK latency in an HDR histogram (µs).
//!
//! - Closed loop (no `--rate`): one outstanding message per connection; the next one is sent
//!   when the ACK of the previous one is back. Latency is measured from the send.
//! - Open loop (`--rate R`, messages/s over all connections): message `i` is scheduled at
//!   `start + i/R` and written at that time whatever the ACKs (MLLP frames are pipelined on
//!   the connection, ACKs come back in order). Latency is measured from the *scheduled* time,
//!   so a stalled daemon shows up as queueing instead of being hidden by a sender that waits
//!   (coordinated omission). The latency from the actual write is reported too (`service`).
//!
//! With `--check-dir DIR` (a file destination's folder) it then waits, up to `--check-timeout`,
//! until DIR holds one `<record id>.json` per AA-acknowledged message (record ids derive from
//! `--source`, MSH-10 and position 0: the messages have one OBR each), and reports the missing
//! and extra files. Files already in DIR before the run are ignored.
//!
//! With `--pid PID` it samples the daemon's resident memory (`/proc/PID/status`) during the run.
//!
//! Start-up (`passerelle bench --startup CONFIG`): spawns `passerelle run --config CONFIG` on a
//! fresh temporary data dir, measures the time from spawn to the MLLP `--target` accepting a
//! connection, stops it (SIGTERM), `--runs` times with an empty data dir (cold component cache)
//! and `--runs` times with the data dir of a previous run (warm cache).
//!
//! Everything is bounded: `--max-duration` stops the sending, `--ack-timeout` bounds the wait
//! for each ACK, `--check-timeout` the wait for the files. Only loopback targets are accepted.

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;
use tokio::time::Instant;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// MLLP address of the daemon (loopback only).
    #[arg(long, default_value = "127.0.0.1:2575")]
    target: String,
    /// Concurrent MLLP connections.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Messages to send in total (warm-up excluded).
    #[arg(long, default_value_t = 10_000)]
    messages: u64,
    /// Fixed rate (messages/s, all connections together), open loop. Without it: closed loop,
    /// as fast as the ACKs come back.
    #[arg(long)]
    rate: Option<f64>,
    /// OBX segments per message.
    #[arg(long, default_value_t = 5)]
    obx: usize,
    /// Distinct patient ids the messages are spread over.
    #[arg(long, default_value_t = 300)]
    patients: u32,
    /// Messages sent closed-loop before the measured run (not counted in the figures).
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// Prefix of the MSH-10 control ids (default: `B` + the current time in ms, unique per run).
    #[arg(long)]
    id_prefix: Option<String>,
    /// Stop sending after this long (the run then waits for the outstanding ACKs).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    max_duration: Duration,
    /// Longest wait for one ACK; past it the connection's outstanding messages count as errors.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    ack_timeout: Duration,
    /// A file destination's folder: wait until it holds one `<record id>.json` per AA message.
    #[arg(long)]
    check_dir: Option<PathBuf>,
    /// Longest wait for `--check-dir` to be complete.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    check_timeout: Duration,
    /// The daemon's source name for the target (record ids derive from it).
    #[arg(long, default_value = "lab-mllp")]
    source: String,
    /// The daemon's process id: its resident memory is sampled during the run.
    #[arg(long)]
    pid: Option<u32>,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Start-up mode: time `passerelle run --config CONFIG` from spawn to `--target` accepting.
    #[arg(long, value_name = "CONFIG")]
    startup: Option<PathBuf>,
    /// Start-up mode: runs with a cold cache, then as many with a warm one.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let target = resolve_loopback(&args.target)?;
    if let Some(config) = &args.startup {
        return startup(&args, config, target);
    }
    if args.connections == 0 || args.messages == 0 {
        bail!("--connections and --messages must be at least 1");
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number of messages per second");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let report = runtime.block_on(load(&args, target))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json(&args))?);
    } else {
        report.print(&args);
    }
    let ok = report.stats.errors == 0
        && report.stats.not_sent == 0
        && report.check.as_ref().is_none_or(|c| c.missing == 0);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The target, refused unless it is a loopback address.
fn resolve_loopback(target: &str) -> anyhow::Result<SocketAddr> {
    let addr = target
        .to_socket_addrs()
        .with_context(|| format!("resolving {target}"))?
        .next()
        .with_context(|| format!("{target} resolves to no address"))?;
    if !addr.ip().is_loopback() {
        bail!(
            "{addr} is not a loopback address: `passerelle bench` only drives a daemon on this machine"
        );
    }
    Ok(addr)
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

const OBX_TEMPLATES: [&str; 5] = [
    "NM|718-7^Hemoglobin^LN||13.4|g/dL^g/dL^UCUM|13-18|N|||F|||20240131120000+0100",
    "NM|6690-2^Leukocytes^LN||8.2|10*3/uL^10*3/uL^UCUM|4-10|N|||F|||20240131120000+0100",
    "NM|789-8^Erythrocytes^LN||4.08|10*6/uL^10*6/uL^UCUM|4.2-5.4|L|||F|||20240131120000+0100",
    "NM|4544-3^Hematocrit^LN||39.7|%^%^UCUM|37-47|N|||F|||20240131120000+0100",
    "NM|777-3^Platelets^LN||220|10*3/uL^10*3/uL^UCUM|150-400|N|||F|||20240131120000+0100",
];

/// How the messages of a run are made.
struct Plan {
    prefix: String,
    obx: usize,
    patients: u32,
}

impl Plan {
    fn control_id(&self, i: u64) -> String {
        format!("{}{i}", self.prefix)
    }

    /// The MLLP frame of message `i`: an ORU^R01 with one OBR and `obx` OBX.
    fn frame(&self, i: u64) -> Vec<u8> {
        use std::fmt::Write as _;
        let id = self.control_id(i);
        let patient = (i % u64::from(self.patients.max(1))) as u32;
        let mut m = String::with_capacity(400 + self.obx * 90);
        m.push('\x0b');
        let _ = write!(
            m,
            "MSH|^~\\&|LAB|HOSP|PASSERELLE|DMP|20240131123000+0100||ORU^R01^ORU_R01|{id}|P|2.5|||||FRA|UNICODE UTF-8\r\
             PID|||IPP{patient}^^^HOSP&1.2.250.1.71.4.2.7&ISO^PI||DOE^JOHN||19700101|M\r\
             OBR|1|ORD{id}|FIL{id}|24317-0^Hemogram^LN|||20240131120000+0100||||||||||||||||||F"
        );
        for k in 0..self.obx {
            let _ = write!(
                m,
                "\rOBX|{}|{}",
                k + 1,
                OBX_TEMPLATES[k % OBX_TEMPLATES.len()]
            );
        }
        m.push_str("\x1c\r");
        m.into_bytes()
    }
}

/// Reads one MLLP frame into `buf` (which keeps what follows it); returns its content.
async fn read_frame<R: AsyncRead + Unpin>(
    read: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Vec<u8>> {
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == [0x1c, 0x0d]) {
            let start = buf[..end]
                .iter()
                .position(|&b| b == 0x0b)
                .map_or(0, |s| s + 1);
            let frame = buf[start..end].to_vec();
            buf.drain(..end + 2);
            return Ok(frame);
        }
        let n = read.read_buf(buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed by the daemon",
            ));
        }
    }
}

/// MSA-1 and MSA-2 of an ACK.
fn msa(ack: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(ack);
    let line = text
        .split(['\r', '\n'])
        .find(|l| l.starts_with("MSA"))
        .unwrap_or("");
    let mut f = line.split('|').skip(1);
    (
        f.next().unwrap_or("").to_string(),
        f.next().unwrap_or("").to_string(),
    )
}

// ---------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------

fn histogram() -> Histogram<u64> {
    // 1 µs .. 1 h, 3 significant digits: constant, valid bounds.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// What one connection (or the whole run) saw.
struct Stats {
    /// ACK latency, µs: from the scheduled send time (open loop) or the send (closed loop).
    latency: Histogram<u64>,
    /// From the actual write to the ACK, µs (same as `latency` in closed loop).
    service: Histogram<u64>,
    sent: u64,
    aa: u64,
    ae: u64,
    ar: u64,
    /// Sent but no (valid) ACK: connection error, timeout, ACK for another control id.
    errors: u64,
    /// Never sent (connection lost or failed, or `--max-duration` reached).
    not_sent: u64,
    /// Message indexes acknowledged with AA.
    accepted: Vec<u64>,
    /// Message indexes sent without a valid ACK (their fate is unknown).
    unknown: Vec<u64>,
    first_error: Option<String>,
    last_ack: Option<Instant>,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            latency: histogram(),
            service: histogram(),
            sent: 0,
            aa: 0,
            ae: 0,
            ar: 0,
            errors: 0,
            not_sent: 0,
            accepted: Vec::new(),
            unknown: Vec::new(),
            first_error: None,
            last_ack: None,
        }
    }

    fn merge(&mut self, other: Stats) {
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        self.sent += other.sent;
        self.aa += other.aa;
        self.ae += other.ae;
        self.ar += other.ar;
        self.errors += other.errors;
        self.not_sent += other.not_sent;
        self.accepted.extend(other.accepted);
        self.unknown.extend(other.unknown);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.last_ack = self.last_ack.max(other.last_ack);
    }

    fn error(&mut self, what: impl std::fmt::Display) {
        if self.first_error.is_none() {
            self.first_error = Some(what.to_string());
        }
    }

    /// Counts one ACK for message `i`.
    fn ack(&mut self, plan: &Plan, i: u64, ack: &[u8], scheduled: Instant, sent: Instant) {
        let now = Instant::now();
        let (code, control_id) = msa(ack);
        if control_id != plan.control_id(i) {
            self.errors += 1;
            self.unknown.push(i);
            self.error(format!(
                "ACK for {control_id:?} while waiting for {:?}",
                plan.control_id(i)
            ));
            return;
        }
        let _ = self.latency.record(micros(now - scheduled));
        let _ = self.service.record(micros(now - sent));
        self.last_ack = Some(now);
        match code.as_str() {
            "AA" | "CA" => {
                self.aa += 1;
                self.accepted.push(i);
            }
            "AE" | "CE" => self.ae += 1,
            _ => self.ar += 1,
        }
    }
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

struct Settings {
    plan: Arc<Plan>,
    target: SocketAddr,
    ack_timeout: Duration,
    /// No message is sent after this.
    deadline: Instant,
}

/// Closed loop: messages `next..total` (shared counter), one outstanding per connection.
async fn closed_connection(
    s: Arc<Settings>,
    mut stream: Option<TcpStream>,
    next: Arc<AtomicU64>,
    total: u64,
) -> Stats {
    let mut st = Stats::new();
    let mut buf = Vec::with_capacity(8192);
    let mut failures = 0;
    loop {
        if Instant::now() >= s.deadline {
            break;
        }
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            break;
        }
        let conn = match stream.as_mut() {
            Some(c) => c,
            None => match connect(s.target).await {
                Ok(c) => stream.insert(c),
                Err(e) => {
                    st.error(format!("connecting to {}: {e}", s.target));
                    st.not_sent += 1;
                    failures += 1;
                    if failures >= 3 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let frame = s.plan.frame(i);
        let sent = Instant::now();
        st.sent += 1;
        let (mut read, mut write) = conn.split();
        let result = async {
            write.write_all(&frame).await?;
            match tokio::time::timeout(s.ack_timeout, read_frame(&mut read, &mut buf)).await {
                Ok(r) => r,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no ACK within --ack-timeout",
                )),
            }
        }
        .await;
        match result {
            Ok(ack) => {
                failures = 0;
                st.ack(&s.plan, i, &ack, sent, sent);
            }
            Err(e) => {
                st.errors += 1;
                st.unknown.push(i);
                st.error(format!("message {}: {e}", s.plan.control_id(i)));
                stream = None;
                buf.clear();
                failures += 1;
                if failures >= 3 {
                    break;
                }
            }
        }
    }
    st
}

/// One message written on an open-loop connection, waiting for its ACK.
struct InFlight {
    i: u64,
    scheduled: Instant,
    sent: Instant,
}

/// Open loop: messages `c, c + n, c + 2n, ...` below `total`, message `i` written at
/// `start + i / rate`, ACKs read by a separate task in order.
async fn open_connection(
    s: Arc<Settings>,
    stream: TcpStream,
    c: u64,
    n: u64,
    total: u64,
    rate: f64,
    start: Instant,
) -> Stats {
    let (read, mut write) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel::<InFlight>();
    let reader = tokio::spawn(open_reader(Arc::clone(&s), read, rx));
    let mut not_sent = 0;
    let mut write_error = None;
    let mut i = c;
    while i < total {
        let scheduled = start + Duration::from_secs_f64(i as f64 / rate);
        if scheduled >= s.deadline || write_error.is_some() || tx.is_closed() {
            not_sent += 1;
            i += n;
            continue;
        }
        tokio::time::sleep_until(scheduled).await;
        let frame = s.plan.frame(i);
        let sent = Instant::now();
        if tx.send(InFlight { i, scheduled, sent }).is_err() {
            not_sent += 1;
        } else if let Err(e) = write.write_all(&frame).await {
            write_error = Some(format!("writing message {}: {e}", s.plan.control_id(i)));
        }
        i += n;
    }
    drop(tx);
    let mut st = match reader.await {
        Ok(st) => st,
        Err(e) => {
            let mut st = Stats::new();
            st.error(format!("reader task failed: {e}"));
            st
        }
    };
    st.not_sent += not_sent;
    if let Some(e) = write_error {
        st.error(e);
    }
    let _ = write.shutdown().await;
    st
}

async fn open_reader(
    s: Arc<Settings>,
    mut read: OwnedReadHalf,
    mut rx: mpsc::UnboundedReceiver<InFlight>,
) -> Stats {
    let mut st = Stats::new();
    let mut buf = Vec::with_capacity(8192);
    while let Some(m) = rx.recv().await {
        st.sent += 1;
        match tokio::time::timeout(s.ack_timeout, read_frame(&mut read, &mut buf)).await {
            Ok(Ok(ack)) => st.ack(&s.plan, m.i, &ack, m.scheduled, m.sent),
            failed => {
                let e = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "no ACK within --ack-timeout".to_string(),
                };
                st.error(format!("message {}: {e}", s.plan.control_id(m.i)));
                st.errors += 1;
                st.unknown.push(m.i);
                // Everything still in flight on this connection is lost to us; the writer sees
                // the closed channel and stops.
                rx.close();
                while let Ok(m) = rx.try_recv() {
                    st.sent += 1;
                    st.errors += 1;
                    st.unknown.push(m.i);
                }
                break;
            }
        }
    }
    st
}

async fn connect(target: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(target))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Resident memory samples of the daemon.
#[derive(Default, Clone, Copy)]
struct Memory {
    max_rss_kib: u64,
    /// VmHWM at the end: the peak since the daemon started.
    hwm_kib: u64,
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

struct Check {
    expected: usize,
    found: usize,
    missing: usize,
    extra: usize,
    /// Files of messages sent without a valid ACK (delivered although the ACK was lost).
    unacked_delivered: usize,
    /// From the end of the sending to the last expected file (None: never complete).
    complete_after: Option<Duration>,
}

struct Report {
    stats: Stats,
    elapsed: Duration,
    memory: Option<Memory>,
    check: Option<Check>,
}

async fn load(args: &BenchArgs, target: SocketAddr) -> anyhow::Result<Report> {
    let prefix = args.id_prefix.clone().unwrap_or_else(|| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("B{ms}-")
    });
    let pre_existing = match &args.check_dir {
        Some(dir) => json_files(dir),
        None => HashSet::new(),
    };
    let plan = Arc::new(Plan {
        prefix,
        obx: args.obx,
        patients: args.patients,
    });

    let mut streams = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        streams.push(
            connect(target)
                .await
                .with_context(|| format!("connecting to {target}"))?,
        );
    }

    // Memory sampling, every 100 ms while the run lasts.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = args.pid.map(|pid| {
        let sampling = Arc::clone(&sampling);
        tokio::spawn(async move {
            let mut m = Memory::default();
            while sampling.load(Ordering::Relaxed) {
                m.max_rss_kib = m
                    .max_rss_kib
                    .max(proc_status_kib(pid, "VmRSS:").unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            m.hwm_kib = proc_status_kib(pid, "VmHWM:").unwrap_or(0);
            m
        })
    });

    let mut warm_accepted = Vec::new();
    let mut warm_unknown = Vec::new();
    if args.warmup > 0 {
        let warm_plan = Arc::new(Plan {
            prefix: format!("{}W", plan.prefix),
            obx: plan.obx,
            patients: plan.patients,
        });
        let s = Arc::new(Settings {
            plan: Arc::clone(&warm_plan),
            target,
            ack_timeout: args.ack_timeout,
            deadline: Instant::now() + args.max_duration,
        });
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for stream in streams.drain(..) {
            tasks.push(tokio::spawn(closed_connection(
                Arc::clone(&s),
                Some(stream),
                Arc::clone(&next),
                args.warmup,
            )));
        }
        let mut warm = Stats::new();
        for t in tasks {
            warm.merge(t.await.context("warm-up task")?);
        }
        if warm.errors > 0 || warm.not_sent > 0 {
            bail!("warm-up failed: {}", warm.first_error.unwrap_or_default());
        }
        warm_accepted = warm
            .accepted
            .iter()
            .map(|&i| warm_plan.control_id(i))
            .collect();
        warm_unknown = warm
            .unknown
            .iter()
            .map(|&i| warm_plan.control_id(i))
            .collect();
        for _ in 0..args.connections {
            streams.push(
                connect(target)
                    .await
                    .with_context(|| format!("connecting to {target}"))?,
            );
        }
    }

    let start = Instant::now();
    let s = Arc::new(Settings {
        plan: Arc::clone(&plan),
        target,
        ack_timeout: args.ack_timeout,
        deadline: start + args.max_duration,
    });
    let mut tasks = Vec::with_capacity(args.connections);
    match args.rate {
        None => {
            let next = Arc::new(AtomicU64::new(0));
            for stream in streams {
                tasks.push(tokio::spawn(closed_connection(
                    Arc::clone(&s),
                    Some(stream),
                    Arc::clone(&next),
                    args.messages,
                )));
            }
        }
        Some(rate) => {
            let n = streams.len() as u64;
            for (c, stream) in streams.into_iter().enumerate() {
                tasks.push(tokio::spawn(open_connection(
                    Arc::clone(&s),
                    stream,
                    c as u64,
                    n,
                    args.messages,
                    rate,
                    start,
                )));
            }
        }
    }
    let mut stats = Stats::new();
    for t in tasks {
        stats.merge(t.await.context("connection task")?);
    }
    // Closed-loop connections that gave up leave messages nobody took.
    let counted = stats.sent + stats.not_sent;
    stats.not_sent += args.messages.saturating_sub(counted);
    let elapsed = stats
        .last_ack
        .map_or_else(|| start.elapsed(), |t| t - start);
    let sent_done = Instant::now();

    let check = match &args.check_dir {
        Some(dir) => {
            let mut expected: HashSet<String> = stats
                .accepted
                .iter()
                .map(|&i| passerelle::record::record_id(&args.source, &plan.control_id(i), 0))
                .collect();
            expected.extend(
                warm_accepted
                    .iter()
                    .map(|id| passerelle::record::record_id(&args.source, id, 0)),
            );
            let mut unknown: HashSet<String> = stats
                .unknown
                .iter()
                .map(|&i| passerelle::record::record_id(&args.source, &plan.control_id(i), 0))
                .collect();
            unknown.extend(
                warm_unknown
                    .iter()
                    .map(|id| passerelle::record::record_id(&args.source, id, 0)),
            );
            Some(
                check_dir(
                    dir,
                    &pre_existing,
                    &expected,
                    &unknown,
                    sent_done,
                    args.check_timeout,
                )
                .await,
            )
        }
        None => None,
    };

    sampling.store(false, Ordering::Relaxed);
    let memory = match sampler {
        Some(t) => Some(t.await.context("memory sampler")?),
        None => None,
    };
    Ok(Report {
        stats,
        elapsed,
        memory,
        check,
    })
}

/// `*.json` file stems in `dir` (not the temporary dotfiles).
fn json_files(dir: &Path) -> HashSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| !n.starts_with('.'))
                .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn check_dir(
    dir: &Path,
    pre_existing: &HashSet<String>,
    expected: &HashSet<String>,
    unknown: &HashSet<String>,
    since: Instant,
    timeout: Duration,
) -> Check {
    let deadline = since + timeout;
    loop {
        let files: HashSet<String> = json_files(dir)
            .into_iter()
            .filter(|f| !pre_existing.contains(f))
            .collect();
        let found = expected.iter().filter(|id| files.contains(*id)).count();
        let complete = found == expected.len();
        if complete || Instant::now() >= deadline {
            let unacked_delivered = files.iter().filter(|f| unknown.contains(*f)).count();
            return Check {
                expected: expected.len(),
                found,
                missing: expected.len() - found,
                extra: files.len() - found - unacked_delivered,
                unacked_delivered,
                complete_after: complete.then(|| since.elapsed()),
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn percentiles(h: &Histogram<u64>) -> [(&'static str, u64); 7] {
    [
        ("min", h.min()),
        ("p50", h.value_at_quantile(0.50)),
        ("p90", h.value_at_quantile(0.90)),
        ("p99", h.value_at_quantile(0.99)),
        ("p99.9", h.value_at_quantile(0.999)),
        ("max", h.max()),
        ("mean", h.mean() as u64),
    ]
}

impl Report {
    fn throughput(&self) -> f64 {
        let done = (self.stats.aa + self.stats.ae + self.stats.ar) as f64;
        done / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn print(&self, args: &BenchArgs) {
        let st = &self.stats;
        let mode = match args.rate {
            Some(r) => format!("open loop at {r} msg/s (latency from the scheduled send time)"),
            None => "closed loop (one outstanding message per connection)".to_string(),
        };
        println!(
            "target {}  connections {}  OBX/message {}  {mode}",
            args.target, args.connections, args.obx
        );
        println!(
            "messages {}  sent {}  AA {}  AE {}  AR {}  errors {}  not sent {}",
            args.messages, st.sent, st.aa, st.ae, st.ar, st.errors, st.not_sent
        );
        println!(
            "elapsed {:.3} s  throughput {:.0} msg/s",
            self.elapsed.as_secs_f64(),
            self.throughput()
        );
        let line = |name: &str, h: &Histogram<u64>| {
            let cells: Vec<String> = percentiles(h)
                .iter()
                .map(|(k, v)| format!("{k} {}", fmt_us(*v)))
                .collect();
            println!("{name:<8} {}", cells.join("  "));
        };
        if !st.latency.is_empty() {
            line("latency", &st.latency);
            if args.rate.is_some() {
                line("service", &st.service);
            }
        }
        if let Some(m) = self.memory {
            println!(
                "daemon RSS: max sampled {:.1} MiB, peak (VmHWM) {:.1} MiB",
                m.max_rss_kib as f64 / 1024.0,
                m.hwm_kib as f64 / 1024.0
            );
        }
        if let Some(c) = &self.check {
            let after = c.complete_after.map_or_else(
                || "not complete".to_string(),
                |d| format!("complete {:.3} s after the last ACK", d.as_secs_f64()),
            );
            println!(
                "check-dir: expected {}  found {}  missing {}  extra {}  delivered without ACK {}  ({after})",
                c.expected, c.found, c.missing, c.extra, c.unacked_delivered
            );
        }
        if let Some(e) = &st.first_error {
            println!("first error: {e}");
        }
    }

    fn to_json(&self, args: &BenchArgs) -> serde_json::Value {
        let st = &self.stats;
        let hist = |h: &Histogram<u64>| {
            if h.is_empty() {
                return serde_json::Value::Null;
            }
            let mut o = serde_json::Map::new();
            for (k, v) in percentiles(h) {
                o.insert(format!("{k}_us"), json!(v));
            }
            serde_json::Value::Object(o)
        };
        json!({
            "target": args.target,
            "mode": if args.rate.is_some() { "open" } else { "closed" },
            "rate": args.rate,
            "connections": args.connections,
            "obx": args.obx,
            "messages": args.messages,
            "sent": st.sent,
            "aa": st.aa,
            "ae": st.ae,
            "ar": st.ar,
            "errors": st.errors,
            "not_sent": st.not_sent,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "throughput_msg_s": self.throughput(),
            "latency": hist(&st.latency),
            "service": hist(&st.service),
            "daemon_memory": self.memory.map(|m| json!({ "max_rss_kib": m.max_rss_kib, "hwm_kib": m.hwm_kib })),
            "check": self.check.as_ref().map(|c| json!({
                "expected": c.expected,
                "found": c.found,
                "missing": c.missing,
                "extra": c.extra,
                "unacked_delivered": c.unacked_delivered,
                "complete_after_s": c.complete_after.map(|d| d.as_secs_f64()),
            })),
            "first_error": st.first_error,
        })
    }
}

fn fmt_us(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1}ms", us as f64 / 1000.0)
    } else {
        format!("{us}µs")
    }
}

// ---------------------------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------------------------

struct StartupRun {
    ready: Duration,
    rss_kib: u64,
}

fn startup(args: &BenchArgs, config: &Path, target: SocketAddr) -> anyhow::Result<ExitCode> {
    if std::net::TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok() {
        bail!("something already listens on {target}: stop it first");
    }
    let exe = std::env::current_exe().context("finding the passerelle binary")?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let data_dir = std::env::temp_dir().join(format!(
        "passerelle-bench-startup-{}-{nanos}",
        std::process::id()
    ));
    let runs = args.runs.max(1);
    let result = (|| {
        let mut cold = Vec::with_capacity(runs);
        for _ in 0..runs {
            let _ = std::fs::remove_dir_all(&data_dir);
            cold.push(start_once(&exe, config, &data_dir, target)?);
        }
        // The data dir of the last cold run holds the compiled components: warm from here on.
        let mut warm = Vec::with_capacity(runs);
        for _ in 0..runs {
            warm.push(start_once(&exe, config, &data_dir, target)?);
        }
        Ok::<_, anyhow::Error>((cold, warm))
    })();
    let _ = std::fs::remove_dir_all(&data_dir);
    let (cold, warm) = result?;
    let summary = |runs: &[StartupRun]| {
        let mut ms: Vec<f64> = runs
            .iter()
            .map(|r| r.ready.as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        let rss = runs.iter().map(|r| r.rss_kib).max().unwrap_or(0);
        (ms[0], ms[ms.len() / 2], ms[ms.len() - 1], rss, ms)
    };
    let (c, w) = (summary(&cold), summary(&warm));
    if args.json {
        let j = |s: &(f64, f64, f64, u64, Vec<f64>)| json!({ "min_ms": s.0, "median_ms": s.1, "max_ms": s.2, "rss_kib": s.3, "runs_ms": s.4 });
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "config": config, "target": args.target, "cold": j(&c), "warm": j(&w) })
            )?
        );
    } else {
        println!(
            "start-up of `passerelle run --config {}` until {} accepts ({runs} runs each)",
            config.display(),
            args.target
        );
        for (name, s) in [("cold cache", &c), ("warm cache", &w)] {
            println!(
                "{name}: min {:.1} ms  median {:.1} ms  max {:.1} ms  RSS when ready {:.1} MiB",
                s.0,
                s.1,
                s.2,
                s.3 as f64 / 1024.0
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn start_once(
    exe: &Path,
    config: &Path,
    data_dir: &Path,
    target: SocketAddr,
) -> anyhow::Result<StartupRun> {
    let t0 = std::time::Instant::now();
    let mut child = Command::new(exe)
        .arg("run")
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .env("PASSERELLE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning passerelle run")?;
    let limit = Duration::from_secs(60);
    let ready = loop {
        if std::net::TcpStream::connect_timeout(&target, Duration::from_millis(100)).is_ok() {
            break t0.elapsed();
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!("passerelle run exited during start-up ({status}); run it by hand to see why");
        }
        if t0.elapsed() > limit {
            stop(&mut child);
            bail!("passerelle run did not accept on {target} within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let rss_kib = proc_status_kib(child.id(), "VmRSS:").unwrap_or(0);
    stop(&mut child);
    Ok(StartupRun { ready, rss_kib })
}

/// SIGTERM and wait (10 s), then SIGKILL.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_unique_and_sized() {
        let plan = Plan {
            prefix: "T-".into(),
            obx: 3,
            patients: 2,
        };
        let f = String::from_utf8(plan.frame(7)).unwrap();
        assert!(f.starts_with('\x0b') && f.ends_with("\x1c\r"));
        assert!(f.contains("|T-7|P|2.5|"));
        assert!(f.contains("IPP1^"));
        assert_eq!(f.matches("\rOBX|").count(), 3);
        assert!(f.contains("\rOBX|3|NM|789-8"));
    }

    #[test]
    fn msa_fields() {
        let ack = b"MSH|^~\\&|A|B|C|D|x||ACK^R01^ACK|1|P|2.5\rMSA|AE|T-1|bad";
        assert_eq!(msa(ack), ("AE".to_string(), "T-1".to_string()));
    }

    #[test]
    fn non_loopback_targets_are_refused() {
        assert!(resolve_loopback("127.0.0.1:2575").is_ok());
        assert!(resolve_loopback("192.0.2.1:2575").is_err());
    }
}
