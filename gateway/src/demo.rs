//! A SIMULATED upstream: a stand-in for the public Sigstore stack (CA with CT
//! signer, transparency log) and its TUF repository, built with airgate's own
//! CA, log and TUF code. Used by `airgate demo`, the end-to-end tests and the
//! benchmarks; everything it makes is labelled as simulated.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use private_ca::{init_ceremony, CaConfig, SigningIdentity};

use crate::signing::SigningRequest;
use crate::state::StateDir;
use crate::{files, Error, Result};

/// The identity the simulated upstream signs with (a GitHub Actions-like workflow).
pub const SIMULATED_IDENTITY: &str =
    "https://github.com/simulated-org/app/.github/workflows/release.yml@refs/tags/v1.0.0";
/// The simulated OIDC issuer.
pub const SIMULATED_ISSUER: &str = "https://token.actions.simulated.invalid";

/// A simulated public Sigstore instance with its TUF repository.
#[derive(Debug, Clone)]
pub struct SimulatedUpstream {
    /// Its CA / log state directory.
    pub ca_dir: PathBuf,
    /// Its TUF repository (serves `trusted_root.json`).
    pub tuf_repo: PathBuf,
    /// The TUF role keys.
    pub tuf_keys: PathBuf,
    /// The TUF root to pin (`1.root.json`).
    pub tuf_root: PathBuf,
}

impl SimulatedUpstream {
    /// Creates the simulated stack under `dir` at `now`.
    pub fn create(dir: &Path, now: SystemTime) -> Result<Self> {
        let ca_dir = dir.join("sigstore");
        let mut config = CaConfig::with_defaults("SIMULATED public Sigstore");
        config.ca_url = "https://fulcio.simulated.invalid".into();
        config.oidc_issuer = SIMULATED_ISSUER.into();
        config.default_identity = SIMULATED_IDENTITY.into();
        config.tlog_url = "https://rekor.simulated.invalid".into();
        config.ctlog_url = "https://ctfe.simulated.invalid".into();
        init_ceremony(&ca_dir, config, now)?;
        let tuf_repo = dir.join("tuf");
        let tuf_keys = dir.join("tuf-keys");
        let now_utc: DateTime<Utc> = now.into();
        tuf_repo::init_private(
            &tuf_repo,
            &tuf_keys,
            &tuf_repo::PrivateRepoConfig::default(),
            now_utc,
        )?;
        let trusted_root_path = ca_dir.join(private_ca::ca::files::TRUSTED_ROOT);
        let trusted_root =
            std::fs::read(&trusted_root_path).map_err(|e| Error::io(&trusted_root_path, e))?;
        tuf_repo::publish(
            &tuf_repo,
            &tuf_keys,
            &[(tuf_repo::TRUSTED_ROOT_TARGET, &trusted_root)],
            now_utc,
        )?;
        Ok(SimulatedUpstream {
            tuf_root: tuf_repo.join("1.root.json"),
            ca_dir,
            tuf_repo,
            tuf_keys,
        })
    }

    /// The `file://` URL of the TUF repository.
    pub fn tuf_url(&self) -> Result<String> {
        let abs =
            std::fs::canonicalize(&self.tuf_repo).map_err(|e| Error::io(&self.tuf_repo, e))?;
        Ok(format!("file://{}", abs.display()))
    }

    /// Signs every file with the simulated identity, writing `FILE.sigstore.json` beside it.
    pub fn sign_files(&self, paths: &[PathBuf], now: SystemTime) -> Result<Vec<PathBuf>> {
        self.sign_files_as(paths, SIMULATED_IDENTITY, now)
    }

    /// Signs every file as `identity`.
    pub fn sign_files_as(
        &self,
        paths: &[PathBuf],
        identity: &str,
        now: SystemTime,
    ) -> Result<Vec<PathBuf>> {
        let mut state = StateDir::open(&self.ca_dir)?;
        let identity = SigningIdentity::parse(identity)?;
        let mut requests = Vec::new();
        for path in paths {
            requests.push(SigningRequest {
                artifact_sha256: files::hash_file(path)?.0,
                identity: identity.clone(),
                custody: None,
                attestations: Vec::new(),
            });
        }
        let mut out = Vec::new();
        for (chunk_paths, chunk) in paths.chunks(5000).zip(requests.chunks(5000)) {
            let signed = state.sign(chunk, now)?;
            for (path, s) in chunk_paths.iter().zip(signed.artifacts) {
                let mut name = path
                    .file_name()
                    .map(|n| n.to_os_string())
                    .unwrap_or_default();
                name.push(".sigstore.json");
                let bundle = path.with_file_name(name);
                std::fs::write(&bundle, &s.bundle_json).map_err(|e| Error::io(&bundle, e))?;
                out.push(bundle);
            }
        }
        Ok(out)
    }

    /// A low-side policy trusting this simulated instance (pinned TUF root, file mirror).
    pub fn low_side_policy(&self) -> Result<String> {
        Ok(format!(
            r#"# Low-side policy: trust the SIMULATED upstream Sigstore (demo only).
[trust]
tuf-mirror = "{}"
tuf-root = "{}"

[[rule]]
name = "simulated release workflow"
artifacts = ["**"]
signers = [{{ identity = "{SIMULATED_IDENTITY}", issuer = "{SIMULATED_ISSUER}" }}]
"#,
            self.tuf_url()?,
            self.tuf_root.display()
        ))
    }

    /// A high-side policy for the same upstream (its own pinned copy of the TUF root).
    pub fn high_side_policy(&self, pinned_root: &Path) -> String {
        format!(
            r#"# High-side policy: who may sign what, judged again on this side.
[trust]
tuf-root = "{}"

[import]
max-transit-age-days = 30

[[rule]]
name = "simulated release workflow"
artifacts = ["**"]
signers = [{{ identity = "{SIMULATED_IDENTITY}", issuer = "{SIMULATED_ISSUER}" }}]
"#,
            pinned_root.display()
        )
    }
}
