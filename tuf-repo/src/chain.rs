//! Walking the root chain (TUF 5.3): from a trusted root N, each N+1.root.json
//! must be signed by a threshold of root N's keys AND of its own keys, and hold
//! exactly version N+1. Done here rather than inside tough so that each failed
//! check has its own error, and so a transport failure can never silently end
//! the walk early (tough stops at the first failed fetch, whatever the cause).

use tough::schema::{Root, Signed};

use crate::transport::GuardedTransport;
use crate::{Error, Limits, Role, RotationCheck};

/// A verified root chain.
#[derive(Debug)]
pub(crate) struct RootChain {
    /// `(version, bytes)` from the trusted root to the newest, in order.
    pub(crate) roots: Vec<(u64, Vec<u8>)>,
    /// The newest root, parsed.
    pub(crate) newest: Signed<Root>,
}

impl RootChain {
    pub(crate) fn newest_version(&self) -> u64 {
        self.newest.signed.version.get()
    }

    pub(crate) fn newest_bytes(&self) -> &[u8] {
        self.roots.last().map(|(_, b)| b.as_slice()).unwrap_or(&[])
    }
}

/// Parses and self-verifies a trusted root given by the caller.
pub(crate) fn parse_trusted_root(bytes: &[u8], what: &str) -> Result<Signed<Root>, Error> {
    let root: Signed<Root> = serde_json::from_slice(bytes).map_err(|e| Error::BadTrustedRoot {
        what: what.to_owned(),
        detail: format!("not a TUF root: {e}"),
    })?;
    root.signed
        .verify_role(&root)
        .map_err(|e| Error::BadTrustedRoot {
            what: what.to_owned(),
            detail: format!("not signed by a threshold of its own root keys: {e}"),
        })?;
    Ok(root)
}

/// Maps a failed `verify_role` to the crate's error for `role`.
pub(crate) fn signature_error(role: Role, e: &tough::schema::Error) -> Error {
    match e {
        tough::schema::Error::SignatureThreshold {
            threshold, valid, ..
        } => Error::ThresholdNotMet {
            role,
            valid: *valid,
            threshold: *threshold,
        },
        tough::schema::Error::DuplicateKeyId { .. } => Error::Malformed {
            what: format!("{role} metadata"),
            detail: "several signatures carry the same key id".to_owned(),
        },
        other => Error::Verification {
            role,
            detail: other.to_string(),
        },
    }
}

/// tough's message, except for duplicate key ids (whose message dumps a struct).
fn describe(e: &tough::schema::Error) -> String {
    match e {
        tough::schema::Error::DuplicateKeyId { .. } => {
            "several signatures carry the same key id".to_owned()
        }
        other => other.to_string(),
    }
}

fn rotation(from: u64, to: u64, check: RotationCheck) -> Error {
    Error::RootRotation { from, to, check }
}

/// Walks from `trusted` (already parsed and self-verified) as far as the
/// repository has roots.
pub(crate) async fn walk(
    transport: &GuardedTransport,
    trusted: Signed<Root>,
    trusted_bytes: &[u8],
    limits: &Limits,
) -> Result<RootChain, Error> {
    let first = trusted.signed.version.get();
    let mut roots = vec![(first, trusted_bytes.to_vec())];
    let mut current = trusted;
    loop {
        let version = current.signed.version.get();
        let Some(next) = version.checked_add(1) else {
            break;
        };
        let rel = format!("{next}.root.json");
        let Some(bytes) = transport.fetch_optional(&rel).await? else {
            break;
        };
        if version - first >= limits.max_root_updates {
            return Err(Error::TooLarge {
                what: "root chain (number of root updates)".to_owned(),
                limit: limits.max_root_updates,
            });
        }
        let new: Signed<Root> =
            serde_json::from_slice(&bytes).map_err(|e| Error::malformed(&rel, e))?;
        let offered = new.signed.version.get();
        // 5.3.4: a threshold of the old root's keys, then of the new root's keys.
        current.signed.verify_role(&new).map_err(|e| match e {
            tough::schema::Error::SignatureThreshold {
                threshold, valid, ..
            } => rotation(
                version,
                offered,
                RotationCheck::OldKeysThreshold { valid, threshold },
            ),
            other => Error::malformed(&rel, describe(&other)),
        })?;
        new.signed.verify_role(&new).map_err(|e| match e {
            tough::schema::Error::SignatureThreshold {
                threshold, valid, ..
            } => rotation(
                version,
                offered,
                RotationCheck::NewKeysThreshold { valid, threshold },
            ),
            other => Error::malformed(&rel, describe(&other)),
        })?;
        // 5.3.5: exactly N+1.
        if offered != next {
            return Err(rotation(
                version,
                offered,
                RotationCheck::VersionNotIncremented,
            ));
        }
        roots.push((next, bytes));
        current = new;
    }
    Ok(RootChain {
        roots,
        newest: current,
    })
}
