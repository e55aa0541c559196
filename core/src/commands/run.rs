//! `passerelle run`: the daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use super::ConfigArg;

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Where the journal, the component cache and file outputs go (overrides `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub fn run(_args: RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the daemon is being wired up")
}
