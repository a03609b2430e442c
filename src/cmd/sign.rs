//! `airgate sign`: sign a file with the private stack (leaf, log entry, v0.3 bundle).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Args;
use gateway::private_ca::SigningIdentity;
use gateway::signing::SigningRequest;
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
            .unwrap_or_else(|| state.ca().config().default_identity.clone());
        let identity = SigningIdentity::parse(&identity_text).map_err(Error::from)?;
        let digest = files::hash_file(&self.file)?;
        let now = SystemTime::now();
        let batch = state.sign(
            &[SigningRequest {
                artifact_sha256: digest.0,
                identity,
                custody: None,
                attestation: None,
            }],
            now,
        )?;
        let Some(signed) = batch.artifacts.into_iter().next() else {
            return Err(Error::internal("signing", "nothing was signed").into());
        };
        // Logged and committed first: a bundle file never names an entry
        // the log does not hold.
        files::write_atomic(&self.output, &signed.bundle_json, None)?;
        println!(
            "Signed {} ({digest}) as {identity_text}; log index {}; bundle {}",
            self.file.display(),
            signed.log_index,
            self.output.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}
