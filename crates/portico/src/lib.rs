//! The `portico` command line: parses arguments and runs the chosen subcommand.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// Runs the command line with the process arguments; returns the exit code.
pub fn run() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
