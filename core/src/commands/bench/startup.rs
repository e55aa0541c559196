//! `passerelle bench --startup`: the time from spawning the daemon to its MLLP port accepting.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;

use super::BenchArgs;
use super::load::proc_status_kib;

struct StartupRun {
    pub(super) ready: Duration,
    pub(super) rss_kib: u64,
}

pub(super) fn startup(
    args: &BenchArgs,
    config: &Path,
    target: SocketAddr,
) -> anyhow::Result<ExitCode> {
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
