//! One module per subcommand; each has an `Args` struct with `run(self)`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod verify;

/// airgate: carry signed software across an air gap, verifiably.
#[derive(Parser)]
#[command(name = "airgate", version, about, propagate_version = true)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Verify a Sigstore bundle for an artifact, offline.
    Verify(verify::VerifyArgs),
    /// Run a benchmark against its named baseline (figures for the team's notes).
    Bench(bench::BenchArgs),
}

impl Command {
    /// Runs the chosen subcommand.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Verify(args) => args.run(),
            Command::Bench(args) => args.run(),
        }
    }
}
