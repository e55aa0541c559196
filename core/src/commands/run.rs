//! `passerelle run`: the daemon. SIGTERM or Ctrl-C: stop accepting, finish in-flight work,
//! flush, exit 0. SIGHUP: re-read the routes and plugin files at once (they are also watched).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use passerelle::config::Config;
use passerelle::topology::Topology;
use tokio::signal::unix::{SignalKind, signal};

use super::ConfigArg;

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Where the journal, the component cache and file outputs go (overrides `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    limit_malloc_arenas();
    let config = Config::load(&args.config.config, args.data_dir.as_deref())?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("passerelle");
    if let Some(n) = args.workers {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder.build().context("starting the tokio runtime")?;
    runtime.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

/// glibc gives each thread that allocates its own malloc arena (up to 8 per core), and the
/// daemon's blocking threads (file writes, journal reads; plugin calls too, until they moved
/// to the async workers) each ended up holding one: 10+ arenas of 15–35 MiB, RSS 380 MiB
/// while a 1,000,000-message backlog built, against 152 MiB with two. The price then: ≈ 15 %
/// less closed-loop throughput on 64 connections (docs/benchmarks.md §6); since plugin calls
/// run on the workers, 2 and 4 arenas measure the same (§11). The environment's
/// `MALLOC_ARENA_MAX` still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: runs before the runtime starts any thread; mallopt only sets a parameter.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

async fn serve(config: Config) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let topology = Topology::start(&config).await?;
    if let Some(sources) = &topology.sources {
        for s in sources.list() {
            tracing::info!(source = %s.name, kind = ?s.kind, at = %s.endpoint, "source ready");
        }
    }
    tracing::info!(config = %config.file.display(), data_dir = %config.data_dir.display(), "passerelle ready");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => topology.reload(),
        }
    }
    tracing::info!("shutting down");
    topology.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
