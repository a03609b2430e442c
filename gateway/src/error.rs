//! The crate's error type. Variants carry typed detail (what failed, where),
//! and [`Error::is_rejection`] separates "verification or policy said no"
//! (exit 1) from usage and I/O problems (exit 2).

use std::path::PathBuf;

use crate::bundle::{BundleRejection, TrustRootError};

/// Everything that can go wrong in the gateway.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bundle was rejected (malformed, or a check failed).
    #[error("{subject}: {rejection}")]
    Bundle {
        /// What was being verified (file or entry name).
        subject: String,
        /// Why it was rejected.
        rejection: BundleRejection,
    },
    /// A trusted root is unusable.
    #[error("trusted root {location}: {source}")]
    TrustRoot {
        /// Where it came from.
        location: String,
        /// What is wrong.
        source: TrustRootError,
    },
    /// An I/O failure on a named path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Bad input supplied by the user (flag, argument, config).
    #[error("{0}")]
    Usage(String),
    /// An internal failure (serializing, signing, an invariant): a bug or
    /// the environment, never a verdict on the input.
    #[error("internal error while {what}: {detail}")]
    Internal {
        /// What airgate was doing.
        what: &'static str,
        /// The cause.
        detail: String,
    },
    /// The private CA failed.
    #[error("private CA: {0}")]
    Ca(#[from] private_ca::Error),
    /// The exporter's signing key is unusable (missing, public, or readable by others).
    #[error("export key: {0}")]
    ExportKey(private_ca::Error),
    /// The transparency log failed or was found tampered with.
    #[error("transparency log: {0}")]
    Log(#[from] crate::tlog::LogError),
    /// Signing with the private stack failed.
    #[error("signing: {0}")]
    Signing(#[from] crate::signing::SigningError),
    /// Artifacts were rejected during an export.
    #[error("export refused: {0}")]
    ExportRejected(#[from] crate::export::ExportRejected),
    /// A medium was refused on import.
    #[error("import refused: {0}")]
    ImportRejected(Box<crate::import::ImportRejected>),
    /// A collector was refused or failed.
    #[error("{0}")]
    Collector(#[from] crate::collector::CollectorError),
    /// Mirroring or verifying a TUF repository failed (see [`tuf_repo::Error`]).
    #[error(transparent)]
    Tuf(#[from] tuf_repo::Error),
}

impl Error {
    /// True when this is a verification or policy rejection (exit code 1).
    pub fn is_rejection(&self) -> bool {
        match self {
            Error::Bundle { .. } => true,
            Error::Log(crate::tlog::LogError::Tampered(_)) => true,
            Error::ExportRejected(_) => true,
            Error::ImportRejected(_) => true,
            Error::Collector(e) => e.is_rejection(),
            Error::Tuf(e) => e.is_rejection(),
            _ => false,
        }
    }

    /// A hint suggesting what to do about this error, if there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::Bundle { rejection, .. } => Some(match rejection.check() {
                "format" => "the bundle is not a Sigstore bundle airgate can read; re-download it from its source",
                "policy.identity" | "policy.issuer" => {
                    "the artifact was signed by someone else; check the expected identity and issuer"
                }
                "certificate.chain" | "tlog.log" | "sct.log" => {
                    "the bundle comes from a Sigstore instance this trusted root does not cover; pass its --trusted-root"
                }
                "key" => "check whether the bundle is keyless (identity) or signed with a managed key (--key)",
                _ => "the bundle or artifact does not verify; do not trust this artifact",
            }),
            Error::Io { .. } => Some("check that the path exists and is readable"),
            Error::ExportKey(_) => Some(
                "give --key the exporter's private key (exporter.key.pem, mode 0600, from `airgate export-key init`)",
            ),
            Error::Internal { .. } => Some("this is a bug or an environment problem, not a verdict on the input; nothing was changed"),
            Error::Tuf(e) => e.hint(),
            Error::ExportRejected(_) => Some(
                "fix or remove the listed artifacts (or the policy), or pass --skip-rejected to leave them out",
            ),
            Error::ImportRejected(r) => Some(r.hint()),
            Error::Collector(e) if e.is_rejection() => {
                Some("re-pin the collector with `airgate lock update` after reviewing the change, or restore the binary")
            }
            Error::Log(crate::tlog::LogError::Tampered(_)) => Some(
                "the log database was modified behind airgate's back: restore it from a backup and investigate",
            ),
            _ => None,
        }
    }

    /// An internal failure while doing `what`.
    pub fn internal(what: &'static str, cause: impl std::fmt::Display) -> Self {
        Error::Internal {
            what,
            detail: cause.to_string(),
        }
    }

    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias for the gateway.
pub type Result<T, E = Error> = std::result::Result<T, E>;
