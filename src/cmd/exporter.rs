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
    /// Revoke every key of an exporter, permanently: media they signed are
    /// refused from now on, naming the exporter, the key and the time. Enroll
    /// the exporter's new key under a new name to rotate.
    Revoke {
        /// The state directory.
        #[arg(long)]
        state: PathBuf,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
        /// The exporter's name.
        name: String,
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
            ExporterCommand::Revoke {
                state,
                reason,
                name,
            } => {
                let state = StateDir::open(&state)?;
                let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                for key_id in state.revoke_exporter(&name, &now, &reason)? {
                    println!("Revoked key {key_id} of exporter {name} at {now}");
                }
            }
            ExporterCommand::List { state } => {
                let state = StateDir::open(&state)?;
                for e in state.exporters()? {
                    let status = match &e.revoked_at {
                        Some(at) => format!("revoked at {at}"),
                        None => "active".into(),
                    };
                    println!("{}\t{}\t{status}", e.name, hex::encode(e.key.key_id()));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
