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
    /// Also attest: an in-toto statement about the file with this predicate
    /// (a JSON object), signed with the same leaf as a DSSE envelope and
    /// logged as a `dsse` entry.
    #[arg(long, value_name = "PREDICATE.json", requires = "predicate_type")]
    predicate: Option<PathBuf>,
    /// The predicate's type URI (e.g. https://slsa.dev/provenance/v1).
    #[arg(long, value_name = "URI", requires = "predicate")]
    predicate_type: Option<String>,
    /// Where to write the attestation bundle (default: OUTPUT with
    /// `.sigstore.json` replaced by `.intoto.sigstore.json`).
    #[arg(long, value_name = "FILE", requires = "predicate")]
    attestation_output: Option<PathBuf>,
}

impl SignArgs {
    /// The statement to attest, if `--predicate` was given.
    fn statement(
        &self,
        digest: &gateway::bundle::ArtifactDigest,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        let (Some(path), Some(kind)) = (&self.predicate, &self.predicate_type) else {
            return Ok(None);
        };
        let predicate = files::read_limited(path, 1 << 20)?;
        let name = self
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let hex = hex::encode(digest.0);
        gateway::attest::statement(&name, &hex, kind, &predicate)
            .map(Some)
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())).into())
    }

    fn attestation_path(&self) -> PathBuf {
        self.attestation_output.clone().unwrap_or_else(|| {
            let text = self.output.display().to_string();
            let stem = text.strip_suffix(".sigstore.json").unwrap_or(&text);
            PathBuf::from(format!("{stem}.intoto.sigstore.json"))
        })
    }
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
        let attestations: Vec<Vec<u8>> = self.statement(&digest)?.into_iter().collect();
        let now = SystemTime::now();
        let batch = state.sign(
            &[SigningRequest {
                artifact_sha256: digest.0,
                identity,
                custody: None,
                attestations,
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
        if let Some(a) = signed.attestations.first() {
            let path = self.attestation_path();
            files::write_atomic(&path, &a.bundle_json, None)?;
            println!(
                "Attested {} ({}); log index {} (dsse); bundle {}",
                self.file.display(),
                self.predicate_type.as_deref().unwrap_or_default(),
                a.log_index,
                path.display()
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
