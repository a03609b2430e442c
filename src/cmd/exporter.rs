//! `airgate exporter`: enroll the low side's medium-signing keys on the high side.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use gateway::crypto::VerifyingKey;
use gateway::state::StateDir;
use gateway::{files, Error};

/// Manage the exporters whose media this high side accepts.
#[derive(Args)]
pub struct ExporterArgs {
    #[command(subcommand)]
    command: ExporterCommand,
}

#[derive(Subcommand)]
enum ExporterCommand {
    /// Enroll an exporter's public key (exporter.pub.pem).
    Enroll {
        /// The state directory.
        #[arg(long)]
        state: PathBuf,
        /// The exporter's name.
        #[arg(long)]
        name: String,
        /// Its public key (PEM).
        key: PathBuf,
    },
    /// List enrolled exporters.
    List {
        /// The state directory.
        #[arg(long)]
        state: PathBuf,
    },
}

impl ExporterArgs {
    /// Runs the subcommand.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            ExporterCommand::Enroll { state, name, key } => {
                let state = StateDir::open(&state)?;
                let pem = files::read_limited(&key, 1 << 20)?;
                let public = VerifyingKey::from_pem(&String::from_utf8_lossy(&pem))
                    .map_err(|e| Error::Usage(format!("{}: {e}", key.display())))?;
                let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                state.enroll(&name, &public, &now)?;
                println!(
                    "Enrolled exporter {name} (key id {})",
                    hex::encode(public.key_id())
                );
            }
            ExporterCommand::List { state } => {
                let state = StateDir::open(&state)?;
                for e in state.exporters()? {
                    println!("{}\t{}", e.name, hex::encode(e.key.key_id()));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
