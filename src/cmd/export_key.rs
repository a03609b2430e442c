//! `airgate export-key`: the exporter's medium-signing key (Ed25519).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use gateway::private_ca::Ed25519SigningKey;
use gateway::{crypto, files};

/// Manage the exporter's medium-signing key.
#[derive(Args)]
pub struct ExportKeyArgs {
    #[command(subcommand)]
    command: ExportKeyCommand,
}

#[derive(Subcommand)]
enum ExportKeyCommand {
    /// Create `exporter.key.pem` (0600) and `exporter.pub.pem` in a directory.
    Init {
        /// Directory for the key pair.
        #[arg(long)]
        dir: PathBuf,
    },
}

impl ExportKeyArgs {
    /// Runs the subcommand.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            ExportKeyCommand::Init { dir } => {
                std::fs::create_dir_all(&dir).map_err(|e| gateway::Error::io(&dir, e))?;
                let key = Ed25519SigningKey::generate().map_err(gateway::Error::from)?;
                let private = dir.join("exporter.key.pem");
                let public = dir.join("exporter.pub.pem");
                if public.exists() {
                    return Err(gateway::Error::Usage(format!(
                        "{} already exists",
                        public.display()
                    ))
                    .into());
                }
                key.save_new(&private).map_err(gateway::Error::from)?;
                files::write_atomic(
                    &public,
                    crypto::pem_encode("PUBLIC KEY", key.public_key_spki()).as_bytes(),
                    Some(0o644),
                )?;
                println!("Created exporter key {} (mode 0600)", private.display());
                println!(
                    "  public key: {} (key id {})",
                    public.display(),
                    hex::encode(key.key_id())
                );
                println!("  enroll it on the high side: airgate exporter enroll --state DIR --name NAME {}", public.display());
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}
