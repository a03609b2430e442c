//! Collectors: executables that gather artifacts on the low side, pinned in
//! `airgate.lock`. Before a collector runs, its bytes are checked against the
//! lock and its Sigstore bundle verified for the locked signer; the verified
//! bytes (not the path) are what runs, from a private copy, with an empty
//! environment plus only the secrets the configuration names. Secret values
//! are redacted from everything airgate prints or records.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::bundle::{ArtifactDigest, BundleRejection, Verifier};
use crate::lock::{LockedCollector, LockedPlatform};

/// Environment prefixes no secret may use.
pub const RESERVED_PREFIXES: &[&str] = &["AIRGATE_", "LD_", "DYLD_"];
/// Largest collector binary accepted.
pub const MAX_BINARY_BYTES: u64 = 512 << 20;
/// Largest captured output per stream.
const MAX_CAPTURE: usize = 1 << 20;

/// A collector as the export configuration describes it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CollectorConfig {
    /// Name (also its output prefix).
    pub name: String,
    /// Path to the binary (relative to the configuration file).
    pub path: PathBuf,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Names of environment variables passed through as secrets.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Wall-clock limit.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Version to pin (for `airgate lock add`).
    #[serde(default)]
    pub version: Option<String>,
    /// Source to record (for `airgate lock add`).
    #[serde(default)]
    pub source: Option<String>,
    /// The binary's Sigstore bundle (for `airgate lock add`).
    #[serde(default)]
    pub bundle: Option<PathBuf>,
    /// Expected signer identity (for `airgate lock add`).
    #[serde(default)]
    pub signer_identity: Option<String>,
    /// Expected signer issuer (for `airgate lock add`).
    #[serde(default)]
    pub signer_issuer: Option<String>,
}

fn default_timeout() -> u64 {
    600
}

/// Why a collector was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CollectorError {
    /// A secret name is reserved or malformed.
    #[error("collector {name}: secret {secret:?} is not allowed ({why})")]
    BadSecretName {
        /// Collector.
        name: String,
        /// Secret name.
        secret: String,
        /// Why.
        why: &'static str,
    },
    /// A listed secret is not set.
    #[error("collector {name}: secret {secret} is listed but not set in the environment")]
    SecretMissing {
        /// Collector.
        name: String,
        /// Secret name.
        secret: String,
    },
    /// Not in the lock.
    #[error("collector {0} is not in airgate.lock; pin it with `airgate lock add {0}`")]
    NotLocked(String),
    /// No build for this platform in the lock.
    #[error("collector {name} has no pinned build for {target} in airgate.lock")]
    NoPlatform {
        /// Collector.
        name: String,
        /// Platform key.
        target: String,
    },
    /// The binary differs from the lock.
    #[error(
        "collector {name}: binary {found} differs from the locked {locked}; refused before running"
    )]
    DigestMismatch {
        /// Collector.
        name: String,
        /// Locked digest and size.
        locked: String,
        /// Found digest and size.
        found: String,
    },
    /// The configuration disagrees with the lock (under --frozen).
    #[error("collector {name}: {field} in the configuration ({configured}) differs from airgate.lock ({locked}); --frozen refuses to change the lock")]
    LockMismatch {
        /// Collector.
        name: String,
        /// Which field.
        field: &'static str,
        /// Configured value.
        configured: String,
        /// Locked value.
        locked: String,
    },
    /// The binary's Sigstore bundle does not verify for the locked signer.
    #[error("collector {name}: signature check failed: {rejection}; refused before running")]
    SignatureRejected {
        /// Collector.
        name: String,
        /// Why.
        rejection: BundleRejection,
    },
    /// The collector could not be run or failed.
    #[error("collector {name}: {problem}")]
    RunFailed {
        /// Collector.
        name: String,
        /// What happened (secrets redacted).
        problem: String,
    },
    /// Reading the binary failed.
    #[error("collector {name}: {problem}")]
    Io {
        /// Collector.
        name: String,
        /// The OS error text.
        problem: String,
    },
}

impl CollectorError {
    /// True for refusals (exit 1) rather than I/O or configuration problems.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            CollectorError::DigestMismatch { .. }
                | CollectorError::LockMismatch { .. }
                | CollectorError::SignatureRejected { .. }
                | CollectorError::NotLocked(_)
                | CollectorError::NoPlatform { .. }
        )
    }
}

/// Checks secret names: `[A-Z_][A-Z0-9_]*`, not under a reserved prefix.
pub fn check_secret_names(config: &CollectorConfig) -> Result<(), CollectorError> {
    for secret in &config.secrets {
        let bad = |why| CollectorError::BadSecretName {
            name: config.name.clone(),
            secret: secret.clone(),
            why,
        };
        let valid = !secret.is_empty()
            && secret.len() <= 128
            && secret
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            && !secret.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Err(bad("names are A-Z, 0-9 and '_'"));
        }
        if RESERVED_PREFIXES.iter().any(|p| secret.starts_with(p)) {
            return Err(bad("AIRGATE_, LD_ and DYLD_ are reserved"));
        }
        if matches!(secret.as_str(), "PATH" | "HOME" | "IFS") {
            return Err(bad("reserved variable"));
        }
    }
    Ok(())
}

/// Replaces every secret value in `text` with `[REDACTED:<NAME>]`.
pub fn redact(text: &str, secrets: &[(String, String)]) -> String {
    let mut out = text.to_string();
    let mut sorted: Vec<&(String, String)> =
        secrets.iter().filter(|(_, v)| !v.is_empty()).collect();
    // Longest first, so a secret containing another is redacted whole.
    sorted.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    for (name, value) in sorted {
        out = out.replace(value.as_str(), &format!("[REDACTED:{name}]"));
    }
    out
}

/// A binary that passed the lock and signature checks, copied to a private place.
#[derive(Debug)]
pub struct VerifiedCollector {
    /// Collector name.
    pub name: String,
    /// Locked version.
    pub version: String,
    /// Platform key.
    pub target: String,
    /// The verified bytes.
    pub bytes: Vec<u8>,
    /// Hex SHA-256.
    pub sha256: String,
    _private_dir: tempfile::TempDir,
    executable: PathBuf,
}

/// Checks a collector's bytes against its lock entry and verifies its bundle for
/// the locked signer, at `now`.
pub fn verify_collector(
    name: &str,
    bytes: Vec<u8>,
    locked: &LockedCollector,
    platform: &LockedPlatform,
    verifier: &Verifier,
    now: DateTime<Utc>,
) -> Result<VerifiedCollector, CollectorError> {
    let digest = ArtifactDigest::of_bytes(&bytes);
    crate::judge::collector::check_collector(
        name,
        &digest,
        bytes.len() as u64,
        locked,
        platform,
        verifier,
        now,
    )?;
    let io = |e: std::io::Error| CollectorError::Io {
        name: name.to_string(),
        problem: e.to_string(),
    };
    // Run the verified bytes, not the path: a private 0700 directory, a fresh file.
    let private_dir = tempfile::Builder::new()
        .prefix("airgate-collector-")
        .tempdir()
        .map_err(io)?;
    let executable = private_dir.path().join(name);
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&executable)
            .map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(private_dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(io)?;
        std::fs::set_permissions(&executable, std::fs::Permissions::from_mode(0o500))
            .map_err(io)?;
    }
    Ok(VerifiedCollector {
        name: name.to_string(),
        version: locked.version.clone(),
        target: platform.target.clone(),
        sha256: digest.to_hex(),
        bytes,
        _private_dir: private_dir,
        executable,
    })
}

/// What a collector run produced (secrets already redacted).
#[derive(Debug, Clone)]
pub struct CollectorRun {
    /// Captured stdout (redacted, truncated to 1 MiB).
    pub stdout: String,
    /// Captured stderr (redacted, truncated to 1 MiB).
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

fn capture(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.len() < MAX_CAPTURE {
                        let take = n.min(MAX_CAPTURE - out.len());
                        out.extend_from_slice(&buf[..take]);
                    }
                }
            }
        }
        out
    })
}

/// Runs a verified collector with `output_dir` as its working and output
/// directory, an empty environment, and only the secrets its configuration names.
pub fn run_collector(
    collector: &VerifiedCollector,
    config: &CollectorConfig,
    output_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<CollectorRun, CollectorError> {
    check_secret_names(config)?;
    let mut secrets = Vec::new();
    for name in &config.secrets {
        let value = env(name).ok_or_else(|| CollectorError::SecretMissing {
            name: config.name.clone(),
            secret: name.clone(),
        })?;
        secrets.push((name.clone(), value));
    }
    let fail = |problem: String| CollectorError::RunFailed {
        name: config.name.clone(),
        problem: redact(&problem, &secrets),
    };
    let home = tempfile::Builder::new()
        .prefix("airgate-collector-home-")
        .tempdir()
        .map_err(|e| fail(e.to_string()))?;
    let mut command = Command::new(&collector.executable);
    command
        .args(&config.args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", home.path())
        .env("AIRGATE_OUTPUT_DIR", output_dir)
        .env("AIRGATE_COLLECTOR", &config.name)
        .current_dir(output_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in &secrets {
        command.env(name, value);
    }
    let start = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| fail(format!("could not start: {e}")))?;
    let out = child.stdout.take().map(capture);
    let err = child.stderr.take().map(capture);
    let deadline = start + Duration::from_secs(config.timeout_secs.max(1));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "timed out after {} s and was killed",
                    config.timeout_secs
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(fail(e.to_string())),
        }
    };
    let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
    let run = CollectorRun {
        stdout: redact(&String::from_utf8_lossy(&stdout), &secrets),
        stderr: redact(&String::from_utf8_lossy(&stderr), &secrets),
        elapsed: start.elapsed(),
    };
    if !status.success() {
        return Err(fail(format!(
            "exited with {status}; stderr: {}",
            run.stderr.lines().last().unwrap_or("")
        )));
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(secrets: &[&str]) -> CollectorConfig {
        CollectorConfig {
            name: "c".into(),
            path: "c".into(),
            args: vec![],
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            timeout_secs: 5,
            version: None,
            source: None,
            bundle: None,
            signer_identity: None,
            signer_issuer: None,
        }
    }

    #[test]
    fn reserved_and_malformed_secret_names_are_refused() {
        for bad in [
            "AIRGATE_TOKEN",
            "LD_PRELOAD",
            "DYLD_INSERT_LIBRARIES",
            "lower",
            "1ABC",
            "A-B",
            "PATH",
            "",
        ] {
            assert!(check_secret_names(&config(&[bad])).is_err(), "{bad}");
        }
        assert!(check_secret_names(&config(&["GITHUB_TOKEN", "X1"])).is_ok());
    }

    #[test]
    fn redaction_replaces_every_occurrence_longest_first() {
        let secrets = vec![
            ("A".to_string(), "abc".to_string()),
            ("B".to_string(), "abcdef".to_string()),
        ];
        assert_eq!(
            redact("x abcdef y abc", &secrets),
            "x [REDACTED:B] y [REDACTED:A]"
        );
        assert_eq!(redact("nothing", &[("E".into(), String::new())]), "nothing");
    }
}
