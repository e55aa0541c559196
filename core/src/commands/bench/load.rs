//! A load run: the connections started, the daemon's memory sampled, the delivered files checked.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::time::Instant;

use super::BenchArgs;
use super::connection::{Settings, closed_connection, connect, open_connection};
use super::messages::Plan;
use super::report::Report;
use super::stats::Stats;

/// Resident memory samples of the daemon.
#[derive(Default, Clone, Copy)]
pub(super) struct Memory {
    pub(super) max_rss_kib: u64,
    /// VmHWM at the end: the peak since the daemon started.
    pub(super) hwm_kib: u64,
}

pub(super) fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

pub(super) struct Check {
    pub(super) expected: usize,
    pub(super) found: usize,
    pub(super) missing: usize,
    pub(super) extra: usize,
    /// Files of messages sent without a valid ACK (delivered although the ACK was lost).
    pub(super) unacked_delivered: usize,
    /// From the end of the sending to the last expected file (None: never complete).
    pub(super) complete_after: Option<Duration>,
}

pub(super) async fn load(args: &BenchArgs, target: SocketAddr) -> anyhow::Result<Report> {
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
        ins: args.ins,
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
            ins: plan.ins,
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

pub(super) async fn check_dir(
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
