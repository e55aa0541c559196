//! Subcommands.

mod adapt;
mod bench;
mod check;
mod messages;
mod plugin;
mod routes;
mod run;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "passerelle",
    version,
    about = "Integration middleware for shared health records"
)]
pub struct Cli {
    /// Log as JSON lines (for log shippers) instead of human-readable text.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon: sources, plugins, journal, routes, destinations.
    Run(run::RunArgs),
    /// Run an adapter on files in the production sandbox; print each record as a JSON line.
    Adapt(adapt::AdaptArgs),
    /// Check the configuration, the routes and the plugins without starting.
    Check(check::CheckArgs),
    /// Load-test a running daemon over MLLP (or time its start-up); see docs/benchmarks.md.
    Bench(bench::BenchArgs),
    /// Test a routes file on records: which route and destinations each one gets.
    Routes(routes::RoutesArgs),
    /// Scaffold adapter plugins (`plugin new NAME`).
    Plugin(plugin::PluginArgs),
    /// Browse and replay stored messages (admin API, or the journal file of a stopped daemon).
    Messages(messages::MessagesArgs),
    /// The record store: check its tamper-evident audit trail (`store verify-audit`).
    Store(store::StoreArgs),
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Run(a) => run::run(a),
            Command::Adapt(a) => adapt::run(a),
            Command::Check(a) => check::run(a),
            Command::Bench(a) => bench::run(a),
            Command::Routes(a) => routes::run(a),
            Command::Plugin(a) => plugin::run(a),
            Command::Messages(a) => messages::run(a),
            Command::Store(a) => store::run(a),
        }
    }
}

/// `--config` as every subcommand takes it.
#[derive(clap::Args, Clone)]
pub struct ConfigArg {
    /// Configuration file.
    #[arg(long, short, default_value = passerelle::config::DEFAULT_CONFIG)]
    pub config: PathBuf,
}

pub fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("PASSERELLE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
