//! `passerelle store verify-audit`: walks the audit hash chain of the record-store
//! destinations (`docs/record-store.md`, "Audit") and says whether an entry was changed,
//! removed or inserted. Reads the database files only; the daemon may be running.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use passerelle::config::{Config, DestinationConfig};
use rusqlite::{Connection, OpenFlags};

use super::ConfigArg;

#[derive(clap::Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(clap::Subcommand)]
enum StoreCommand {
    /// Checks the audit hash chain of every record-store destination (or of one file).
    /// Exits 1 if a chain is broken; prints each chain's last hash, worth keeping elsewhere
    /// (a chain cut at its end is only caught by comparing with a hash kept outside).
    VerifyAudit {
        #[command(flatten)]
        config: ConfigArg,
        /// Only this destination.
        #[arg(long)]
        destination: Option<String>,
        /// A record-store database file instead of the configured ones.
        #[arg(long, conflicts_with = "destination")]
        db: Option<PathBuf>,
    },
}

pub fn run(args: StoreArgs) -> anyhow::Result<ExitCode> {
    let StoreCommand::VerifyAudit {
        config,
        destination,
        db,
    } = args.command;
    let files = match db {
        Some(file) => vec![(file.display().to_string(), file)],
        None => configured(&config, destination.as_deref())?,
    };
    let mut broken = false;
    for (name, file) in files {
        let conn = Connection::open_with_flags(&file, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", file.display()))?;
        let report = passerelle::store::audit::verify_chain(&conn)
            .with_context(|| format!("reading the audit chain of {}", file.display()))?;
        match report.first_broken {
            None => println!(
                "{name}: audit chain intact, {} entries, last hash {}",
                report.entries, report.last_hash
            ),
            Some(seq) => {
                broken = true;
                println!(
                    "{name}: audit chain BROKEN at entry {seq} of {} (changed, removed or inserted)",
                    report.entries
                );
            }
        }
    }
    Ok(if broken {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The database file of each record-store destination of the configuration.
fn configured(config: &ConfigArg, only: Option<&str>) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let config = Config::load(&config.config, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let config_dir = config.file.parent().map(PathBuf::from).unwrap_or_default();
    let mut files = Vec::new();
    for (name, d) in &config.destinations {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let mut d = d.clone();
        passerelle::store::resolve_paths(&mut d, &config.data_dir, &config_dir);
        if let DestinationConfig::RecordStore(rs) = d {
            files.push((name.clone(), rs.path));
        }
    }
    match only {
        Some(o) if files.is_empty() => anyhow::bail!("no record-store destination named {o:?}"),
        None if files.is_empty() => {
            anyhow::bail!("the configuration has no record-store destination")
        }
        _ => Ok(files),
    }
}
