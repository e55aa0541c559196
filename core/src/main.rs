//! The `passerelle` command line. One file per subcommand under `commands/`.

mod commands;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: per-thread heaps and cheaper allocation than glibc's malloc, whose arena locks the
/// async workers and the journal writer contended for (docs/benchmarks.md section 14). Its
/// options are set in `commands::run`. SQLite keeps its own (glibc) allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    commands::init_tracing(cli.log_json);
    match cli.command.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
