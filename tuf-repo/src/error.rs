//! The crate's one error type. Every verification failure names the role (or
//! file) and the check that failed; [`Error::is_rejection`] separates "the
//! repository does not verify" (exit 1) from I/O and usage problems (exit 2).

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};

/// A TUF role, top-level or delegated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// The root role (keys and thresholds of every top-level role).
    Root,
    /// The timestamp role (freshness; lists the snapshot version).
    Timestamp,
    /// The snapshot role (lists the version of every targets metadata file).
    Snapshot,
    /// The top-level targets role (lists target files with lengths and hashes).
    Targets,
    /// A delegated targets role, by name.
    Delegated(String),
}

impl Role {
    /// The role that lists this role's version: timestamp for snapshot,
    /// snapshot for targets and delegated roles.
    pub fn listed_by(&self) -> Option<Role> {
        match self {
            Role::Snapshot => Some(Role::Timestamp),
            Role::Targets | Role::Delegated(_) => Some(Role::Snapshot),
            Role::Root | Role::Timestamp => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Root => f.write_str("root"),
            Role::Timestamp => f.write_str("timestamp"),
            Role::Snapshot => f.write_str("snapshot"),
            Role::Targets => f.write_str("targets"),
            Role::Delegated(name) => write!(f, "delegated targets role {name:?}"),
        }
    }
}

/// Which check of a root rotation (root N to root N+1) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationCheck {
    /// The new root is not signed by a threshold of the previous root's root keys.
    OldKeysThreshold {
        /// Valid signatures by keys of the previous root.
        valid: u64,
        /// The previous root's root threshold.
        threshold: u64,
    },
    /// The new root is not signed by a threshold of its own root keys.
    NewKeysThreshold {
        /// Valid signatures by the new root's keys.
        valid: u64,
        /// The new root's root threshold.
        threshold: u64,
    },
    /// The file for version N+1 holds another version.
    VersionNotIncremented,
    /// Version N+1 is missing but a later root version is present.
    MissingIntermediate,
}

impl fmt::Display for RotationCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RotationCheck::OldKeysThreshold { valid, threshold } => write!(
                f,
                "not signed by a threshold of the previous root's keys ({valid} valid, {threshold} required)"
            ),
            RotationCheck::NewKeysThreshold { valid, threshold } => write!(
                f,
                "not signed by a threshold of its own root keys ({valid} valid, {threshold} required)"
            ),
            RotationCheck::VersionNotIncremented => {
                f.write_str("version skip: a root must be followed by exactly the next version")
            }
            RotationCheck::MissingIntermediate => {
                f.write_str("version skip: an intermediate root version is missing")
            }
        }
    }
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Everything that can go wrong while mirroring or verifying a TUF repository.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Freeze attack or stale metadata: the role expired at or before the reference time.
    #[error("{role} metadata expired at {} (reference time {}): refusing possibly frozen metadata", time(.expires), time(.reference_time))]
    Expired {
        /// The expired role.
        role: Role,
        /// Its `expires`.
        expires: DateTime<Utc>,
        /// The time expiry was evaluated at.
        reference_time: DateTime<Utc>,
    },
    /// Rollback attack: a role version lower than one already seen.
    #[error("{role} rollback: version {offered} offered, but version {seen} was already seen")]
    Rollback {
        /// The role.
        role: Role,
        /// The highest version seen before.
        seen: u64,
        /// The version offered now.
        offered: u64,
    },
    /// Not enough valid signatures by keys authorized for the role.
    #[error(
        "{role} signature threshold not met: {valid} valid signature(s), {threshold} required"
    )]
    ThresholdNotMet {
        /// The role.
        role: Role,
        /// Valid signatures by authorized keys.
        valid: u64,
        /// The role's threshold.
        threshold: u64,
    },
    /// Signed by keys that are not authorized for the role, and the threshold is not met.
    #[error("{role} signed by key(s) not authorized for the role ({}): {valid} valid signature(s), {threshold} required", .keyids.join(", "))]
    UnknownKey {
        /// The role.
        role: Role,
        /// Hex key ids of the unauthorized signatures.
        keyids: Vec<String>,
        /// Valid signatures by authorized keys.
        valid: u64,
        /// The role's threshold.
        threshold: u64,
    },
    /// A root rotation (root N to root N+1) failed a check.
    #[error("root rotation {from} -> {to}: {check}")]
    RootRotation {
        /// The trusted root version.
        from: u64,
        /// The offered root version.
        to: u64,
        /// The failed check.
        check: RotationCheck,
    },
    /// Mix-and-match: a metadata file holds another version than the role listing it says.
    #[error("{role} version mismatch: {listed_by} lists version {listed}, the file holds version {found} (mix-and-match)")]
    VersionMismatch {
        /// The role.
        role: Role,
        /// The role that lists its version.
        listed_by: Role,
        /// The listed version.
        listed: u64,
        /// The version found in the file.
        found: u64,
    },
    /// A file's sha256 differs from the signed metadata.
    #[error("{what}: sha256 mismatch (signed {expected}, file has {actual})")]
    HashMismatch {
        /// The file (path relative to the repository).
        what: String,
        /// Hex sha256 in the signed metadata.
        expected: String,
        /// Hex sha256 of the file.
        actual: String,
    },
    /// A file's length differs from the signed metadata.
    #[error("{what}: length mismatch (signed {expected} bytes, file has {actual})")]
    LengthMismatch {
        /// The file (path relative to the repository).
        what: String,
        /// Length in the signed metadata.
        expected: u64,
        /// Length of the file.
        actual: u64,
    },
    /// A file or count exceeds an explicit limit (endless-data attack).
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge {
        /// What exceeded (file path relative to the repository, or a count).
        what: String,
        /// The limit (bytes, or a count).
        limit: u64,
    },
    /// Metadata that does not parse or is structurally invalid.
    #[error("{what} is malformed: {detail}")]
    Malformed {
        /// The file (path relative to the repository) or role.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// A file the verification needs is absent from the snapshot.
    #[error("{what} is missing from the snapshot")]
    Missing {
        /// The file (path relative to the snapshot directory).
        what: String,
    },
    /// Any other verification failure reported by tough.
    #[error("{role} failed verification: {detail}")]
    Verification {
        /// The role.
        role: Role,
        /// tough's message.
        detail: String,
    },
    /// The given trusted (pinned or bootstrap) root is not a usable root.
    #[error("trusted root ({what}) is unusable: {detail}")]
    BadTrustedRoot {
        /// Where it came from.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// Fetching from a mirror failed (network, HTTP status, unreadable file).
    #[error("fetching {url}: {detail}")]
    Fetch {
        /// The URL.
        url: String,
        /// What happened.
        detail: String,
    },
    /// The rollback-protection state file is unreadable or corrupt.
    #[error("TUF state {}: {detail}", .path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A key file of the private repository is unusable (never includes key material).
    #[error("key {}: {detail}", .path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// tough could not build or sign metadata of the private repository.
    #[error("cannot sign {role} metadata: {detail}")]
    Signing {
        /// The role being signed.
        role: Role,
        /// tough's message.
        detail: String,
    },
    /// An I/O failure on a named path (the OS error is the `source`).
    #[error("{}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The internal tokio runtime could not be created.
    #[error("cannot start the tokio runtime")]
    Runtime(#[source] std::io::Error),
    /// Bad input from the caller (URL scheme, output directory, calling context).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// True for verification and policy failures (the repository or snapshot
    /// must not be trusted: exit code 1); false for I/O, network and usage
    /// problems (exit code 2).
    pub fn is_rejection(&self) -> bool {
        !matches!(
            self,
            Error::BadTrustedRoot { .. }
                | Error::Fetch { .. }
                | Error::State { .. }
                | Error::Key { .. }
                | Error::Signing { .. }
                | Error::Io { .. }
                | Error::Runtime(_)
                | Error::Usage(_)
        )
    }

    /// A short machine-readable name of the failed check (for JSON output).
    pub fn check(&self) -> &'static str {
        match self {
            Error::Expired { .. } => "expired",
            Error::Rollback { .. } => "rollback",
            Error::ThresholdNotMet { .. } => "threshold",
            Error::UnknownKey { .. } => "unknown-key",
            Error::RootRotation { .. } => "root-rotation",
            Error::VersionMismatch { .. } => "version-mismatch",
            Error::HashMismatch { .. } => "hash",
            Error::LengthMismatch { .. } => "length",
            Error::TooLarge { .. } => "too-large",
            Error::Malformed { .. } => "malformed",
            Error::Missing { .. } => "missing",
            Error::Verification { .. } => "verification",
            Error::BadTrustedRoot { .. } => "trusted-root",
            Error::Fetch { .. } => "fetch",
            Error::State { .. } => "state",
            Error::Key { .. } => "key",
            Error::Signing { .. } => "signing",
            Error::Io { .. } => "io",
            Error::Runtime(_) => "runtime",
            Error::Usage(_) => "usage",
        }
    }

    /// A hint suggesting what to do about this error, if there is one.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Error::Expired { .. } => "take a fresh snapshot of the mirror; evaluating at another time needs --danger-as-of",
            Error::Rollback { .. } => "the snapshot is older than one already accepted; take a fresh snapshot",
            Error::ThresholdNotMet { .. }
            | Error::UnknownKey { .. }
            | Error::RootRotation { .. }
            | Error::VersionMismatch { .. }
            | Error::HashMismatch { .. }
            | Error::LengthMismatch { .. }
            | Error::Malformed { .. }
            | Error::Verification { .. } => {
                "the repository or snapshot was altered or is not from the pinned root's repository; do not trust it"
            }
            Error::TooLarge { .. } => "refusing oversized data; raise the limit only if the repository really grew",
            Error::Missing { .. } => "the snapshot is incomplete; re-take it with `airgate tuf snapshot`",
            Error::BadTrustedRoot { .. } => "pass a TUF root.json of the repository with --root",
            Error::Fetch { .. } => "check the mirror URL and the network",
            Error::State { .. } => "restore the state file from a backup; never delete it to get past a rollback error",
            Error::Key { .. } => "use the keys directory `airgate tuf init-private` wrote for this repository; key files must be mode 0600",
            Error::Signing { .. } => "check that the keys directory belongs to this repository",
            Error::Io { .. } => "check that the path exists and is readable or writable",
            Error::Runtime(_) | Error::Usage(_) => return None,
        })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(what: impl Into<String>, detail: impl fmt::Display) -> Self {
        Error::Malformed {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn rejections_and_io_are_told_apart() {
        let expired = Error::Expired {
            role: Role::Timestamp,
            expires: DateTime::UNIX_EPOCH,
            reference_time: DateTime::UNIX_EPOCH,
        };
        assert!(expired.is_rejection());
        assert!(Error::Missing { what: "x".into() }.is_rejection());
        assert!(!Error::io("x", std::io::Error::other("boom")).is_rejection());
        assert!(!Error::Usage("bad".into()).is_rejection());
        assert!(!Error::Key {
            path: "k.pem".into(),
            detail: "bad".into()
        }
        .is_rejection());
        assert!(!Error::Fetch {
            url: "http://x".into(),
            detail: "refused".into()
        }
        .is_rejection());
    }

    #[test]
    fn messages_name_role_and_check() {
        let e = Error::Expired {
            role: Role::Root,
            expires: "2026-11-20T13:58:18Z".parse().unwrap(),
            reference_time: "2026-11-23T00:00:00Z".parse().unwrap(),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("root metadata expired at 2026-11-20T13:58:18Z"),
            "{text}"
        );
        let e = Error::RootRotation {
            from: 12,
            to: 13,
            check: RotationCheck::OldKeysThreshold {
                valid: 1,
                threshold: 3,
            },
        };
        assert_eq!(
            e.to_string(),
            "root rotation 12 -> 13: not signed by a threshold of the previous root's keys (1 valid, 3 required)"
        );
        assert_eq!(
            Role::Delegated("registry.npmjs.org".into()).to_string(),
            "delegated targets role \"registry.npmjs.org\""
        );
        assert_eq!(Role::Targets.listed_by(), Some(Role::Snapshot));
    }
}
