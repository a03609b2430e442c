//! `airgate sign`: sign a file with the private stack (leaf, log entry, v0.3 bundle).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Args;
use gateway::private_ca::SigningIdentity;
use gateway::signing::{sign_batch, SigningRequest};
use gateway::state::StateDir;
use gateway::{files, Error};

/// Sign a file with the private CA and record it in the private log.
#[derive(Args)]
pub struct SignArgs {
    /// The state directory (created by `airgate ca init`).
    #[arg(long)]
    state: PathBuf,
    /// Signing identity for the leaf (default: the CA's configured identity).
    #[arg(long)]
    identity: Option<String>,
    /// The file to sign.
    file: PathBuf,
    /// Where to write the Sigstore bundle.
    #[arg(short, long, value_name = "FILE.sigstore.json")]
    output: PathBuf,
}

impl SignArgs {
    /// Runs the subcommand.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let mut state = StateDir::open(&self.state)?;
        let identity_text = self
            .identity
            .clone()
            .unwrap_or_else(|| state.ca.config().default_identity.clone());
        let identity = SigningIdentity::parse(&identity_text).map_err(Error::from)?;
        let digest = files::hash_file(&self.file)?;
        let now = SystemTime::now();
        let tx = state.conn.transaction().map_err(|e| Error::Log(e.into()))?;
        let signed = sign_batch(
            &state.ca,
            &state.log,
            &tx,
            &[SigningRequest {
                artifact_sha256: digest.0,
                identity,
                custody: None,
            }],
            now,
        )
        .map_err(Error::from)?;
        let Some(signed) = signed.into_iter().next() else {
            return Err(Error::Usage("nothing was signed".into()).into());
        };
        // The bundle is written before the log commit: if the commit fails the
        // bundle's entry does not exist, so remove the file again.
        files::write_atomic(&self.output, &signed.bundle_json, None)?;
        if let Err(e) = tx.commit() {
            let _ = std::fs::remove_file(&self.output);
            return Err(Error::Log(e.into()).into());
        }
        println!(
            "Signed {} ({digest}) as {identity_text}; log index {}; bundle {}",
            self.file.display(),
            signed.log_index,
            self.output.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}
