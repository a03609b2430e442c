//! `airgate artifact get`: an artifact and its bundles out of the state,
//! without a server.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use gateway::state::StateReader;

/// Read imported artifacts out of the state.
#[derive(Args)]
pub struct ArtifactArgs {
    #[command(subcommand)]
    command: ArtifactCommand,
}

#[derive(Subcommand)]
enum ArtifactCommand {
    /// Copy NAME (as served now) to OUT/NAME with NAME.sigs and NAME.sigstore.json
    /// (airgate's bundle) beside it; the copy is checked against its digest and
    /// the bundle verified against the enclave's trusted root first.
    Get {
        /// The state directory.
        #[arg(long)]
        state: PathBuf,
        /// The artifact's name (as `airgate imports show` lists it).
        name: String,
        /// The directory to write into (created if missing).
        #[arg(long, short)]
        out: PathBuf,
        /// Print what was written as JSON.
        #[arg(long)]
        json: bool,
    },
}

impl ArtifactArgs {
    /// Runs the subcommand.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let ArtifactCommand::Get {
            state,
            name,
            out,
            json,
        } = self.command;
        let reader = StateReader::open(&state)?;
        let got = reader.extract_artifact(&name, &out, chrono::Utc::now())?;
        if json {
            let doc = serde_json::json!({
                "artifact": got.artifact, "sha256": got.sha256, "sigs": got.sigs,
                "bundle": got.bundle, "sigsElement": got.element,
                "identity": got.identity, "issuer": got.issuer,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
            return Ok(ExitCode::SUCCESS);
        }
        println!("{} (sha256:{})", got.artifact.display(), got.sha256);
        println!(
            "  {}: the .sigs array as served; {}: airgate's bundle (element {} of the array, verified)",
            got.sigs.display(),
            got.bundle.display(),
            got.element + 1
        );
        println!("Verify it offline with the enclave's root:");
        println!(
            "{}",
            super::recipe::local(
                &state,
                &got.bundle,
                &got.artifact,
                &got.identity,
                &got.issuer
            )
        );
        Ok(ExitCode::SUCCESS)
    }
}
