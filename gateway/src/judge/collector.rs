//! Is this collector binary the one the lock pins, signed by the locked
//! signer? The low side asks before running it, the high side of every
//! collector a medium carries. Pure.

use chrono::{DateTime, Utc};

use crate::bundle::{
    ArtifactDigest, BundleFormatError, BundleRejection, IdentityPolicy, SignerPolicy, Verifier,
};
use crate::collector::CollectorError;
use crate::lock::{LockedCollector, LockedPlatform, Lockfile};
use crate::medium::manifest::CollectorRecord;

/// Checks a binary (by digest and size) against its lock entry, then its
/// locked bundle for the locked signer at `now`.
pub fn check_collector(
    name: &str,
    digest: &ArtifactDigest,
    size: u64,
    locked: &LockedCollector,
    platform: &LockedPlatform,
    verifier: &Verifier,
    now: DateTime<Utc>,
) -> Result<(), CollectorError> {
    if digest.to_hex() != platform.sha256 || size != platform.size {
        return Err(CollectorError::DigestMismatch {
            name: name.to_string(),
            locked: format!("sha256:{} ({} bytes)", platform.sha256, platform.size),
            found: format!("{digest} ({size} bytes)"),
        });
    }
    let rejected = |rejection| CollectorError::SignatureRejected {
        name: name.to_string(),
        rejection,
    };
    let bundle = platform.bundle_json().ok_or_else(|| {
        rejected(BundleRejection::Malformed(BundleFormatError::Missing(
            "bundle",
        )))
    })?;
    let policy = SignerPolicy::identity(IdentityPolicy::exact(
        locked.signer_identity.clone(),
        locked.signer_issuer.clone(),
    ));
    verifier
        .verify_bytes(&bundle, digest, &policy, now)
        .map(|_| ())
        .map_err(rejected)
}

/// A carried collector binary, as the medium delivered it.
#[derive(Debug, Clone, Copy)]
pub struct CarriedBinary<'a> {
    /// Its entry name.
    pub entry: &'a str,
    /// Its SHA-256.
    pub digest: ArtifactDigest,
    /// Its size.
    pub size: u64,
}

/// Checks every collector record of a medium against the carried lock and
/// the carried binaries: each record names a locked collector with a build
/// for its platform, its binary is present and matches, and its signature
/// verifies; no binary is carried without a record.
pub fn check_carried(
    records: &[CollectorRecord],
    lock: &Lockfile,
    binaries: &[CarriedBinary<'_>],
    verifier: &Verifier,
    now: DateTime<Utc>,
) -> Result<(), (String, CollectorError)> {
    for record in records {
        let name = record.name.clone();
        let locked = lock
            .get(&record.name)
            .ok_or_else(|| (name.clone(), CollectorError::NotLocked(name.clone())))?;
        let platform = locked.for_target(&record.platform).ok_or_else(|| {
            (
                name.clone(),
                CollectorError::NoPlatform {
                    name: name.clone(),
                    target: record.platform.clone(),
                },
            )
        })?;
        let binary = binaries
            .iter()
            .find(|b| b.entry == record.entry)
            .ok_or_else(|| {
                (
                    name.clone(),
                    CollectorError::RunFailed {
                        name: name.clone(),
                        problem: format!("its binary {} is not on the medium", record.entry),
                    },
                )
            })?;
        check_collector(
            &name,
            &binary.digest,
            binary.size,
            locked,
            platform,
            verifier,
            now,
        )
        .map_err(|e| (name.clone(), e))?;
    }
    if let Some(orphan) = binaries
        .iter()
        .find(|b| !records.iter().any(|r| r.entry == b.entry))
    {
        return Err((
            orphan.entry.to_string(),
            CollectorError::RunFailed {
                name: orphan.entry.to_string(),
                problem: "collector binary with no collector record in the manifest".into(),
            },
        ));
    }
    Ok(())
}
