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

mod connection;
mod load;
mod messages;
mod report;
mod startup;
mod stats;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use self::load::load;
use self::startup::startup;

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
    /// Give each patient a qualified INS (INS-NIR) besides the local id, as a record-store
    /// destination requires (rule R1); without it the records carry local ids only.
    #[arg(long)]
    ins: bool,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_targets_are_refused() {
        assert!(resolve_loopback("127.0.0.1:2575").is_ok());
        assert!(resolve_loopback("192.0.2.1:2575").is_err());
    }
}
