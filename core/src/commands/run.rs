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
    tune_mimalloc();
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

/// mimalloc v3 hands freed memory back to the system only after `purge_delay` (1 s by
/// default), which held 30–40 MiB more than glibc's malloc did, idle and during a backlog;
/// with 10 ms it holds about as much (68–124 against 73–114 MiB during a 300,000-message
/// backlog) for the same throughput gain (docs/benchmarks.md §14; 1 ms cost throughput).
/// The environment's `MIMALLOC_PURGE_DELAY` still wins.
fn tune_mimalloc() {
    // The option's position in mimalloc v3's `mi_option_t` (libmimalloc-sys 0.1.49,
    // c_src/mimalloc/v3/include/mimalloc.h), which the crate does not name; the crate is
    // pinned in core/Cargo.toml for that reason.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options, by value, before the runtime starts its
        // threads.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10) };
    }
}

/// What still goes through glibc's malloc (SQLite's page cache and statements, on the journal
/// writer, the checkpoint thread and the blocking threads that run reads) is capped at two
/// arenas: glibc gives each thread that allocates its own arena (up to 8 per core), which each
/// keep their high-water mark; before mimalloc, when all allocations went there, 10+ arenas of
/// 15–35 MiB took the RSS to 380 MiB during a 1,000,000-message backlog, against 152 MiB with
/// two (docs/benchmarks.md §6). The environment's `MALLOC_ARENA_MAX` still wins.
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
