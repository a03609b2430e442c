//! Loading a repository with tough (shared by the mirror and the offline
//! verifier), mapping tough's errors to [`Error`], and the offline
//! verification of a snapshot directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tough::schema::{Delegations, RoleType, Root, Signed};
use tough::{
    ExpirationEnforcement, FilesystemTransport, IntoVec, RepositoryLoader, TransportError,
};
use url::Url;

use crate::chain::{self, parse_trusted_root, RootChain};
use crate::policy::{check_expiry, utc, RoleExpiries, RoleVersions};
use crate::transport::{
    error_chain, is_safe_relative, role_of, split_version, GuardedTransport, Source,
};
use crate::{block_on, Error, Limits, Role, TufState, TRUSTED_ROOT_TARGET};

/// A target file whose length and sha256 matched the verified targets metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTarget {
    /// The target name (e.g. `trusted_root.json`).
    pub name: String,
    /// Its path relative to the repository (e.g. `targets/<sha256>.trusted_root.json`).
    pub path: String,
    /// Its length in bytes.
    pub length: u64,
    /// Its hex sha256.
    pub sha256: String,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// The result of [`verify_snapshot`]: what the high side may trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSnapshot {
    /// The verified `trusted_root.json` target, byte for byte.
    pub trusted_root_json: Vec<u8>,
    /// Versions of the top-level roles.
    pub versions: RoleVersions,
    /// Expiry of every role loaded.
    pub expires: RoleExpiries,
    /// The newest root of the chain, byte for byte (what a [`TufState`] remembers).
    pub newest_root_json: Vec<u8>,
    /// Root versions walked, from the starting root to the newest.
    pub root_chain: Vec<u64>,
    /// Every top-level target present in the snapshot, verified (includes `trusted_root.json`).
    pub targets: Vec<VerifiedTarget>,
    /// The time expiry was evaluated at.
    pub reference_time: DateTime<Utc>,
}

/// Verifies a snapshot directory written by [`crate::snapshot`] (or laid out
/// like the live repository), offline, and derives its `trusted_root.json`.
///
/// Walks the root chain from `pinned_root` (or from the state's newest root
/// when that is newer), verifies timestamp, snapshot, targets and delegated
/// targets with tough (signatures, thresholds, versions, hashes and lengths
/// where listed), checks every role's expiry against `reference_time`, refuses
/// rollback against `state`, and verifies every top-level target present
/// (`trusted_root.json` is required) by length and sha256. Never touches the
/// network.
///
/// Blocking: do not call from async code (use `spawn_blocking`).
pub fn verify_snapshot(
    pinned_root: &[u8],
    snapshot_dir: &Path,
    reference_time: DateTime<Utc>,
    state: Option<&TufState>,
    limits: &Limits,
) -> Result<VerifiedSnapshot, Error> {
    block_on(|| verify_dir(pinned_root, snapshot_dir, reference_time, state, limits))
}

pub(crate) async fn verify_dir(
    pinned_root: &[u8],
    snapshot_dir: &Path,
    reference_time: DateTime<Utc>,
    state: Option<&TufState>,
    limits: &Limits,
) -> Result<VerifiedSnapshot, Error> {
    let pinned = parse_trusted_root(pinned_root, "pinned root")?;
    let (start, start_bytes) = match state.map(TufState::trusted_root).transpose()?.flatten() {
        Some((root, bytes)) if root.signed.version > pinned.signed.version => (root, bytes),
        _ => (pinned, pinned_root.to_vec()),
    };
    let dir = std::fs::canonicalize(snapshot_dir).map_err(|e| Error::io(snapshot_dir, e))?;
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{} is not a snapshot directory",
            snapshot_dir.display()
        )));
    }
    let offered_roots = root_versions_in(&dir)?;
    if let (Some(state), Some(&offered)) = (state, offered_roots.last()) {
        let seen = state.versions().root;
        if offered < seen {
            return Err(Error::Rollback {
                role: Role::Root,
                seen,
                offered,
            });
        }
    }
    let base = Url::from_directory_path(&dir)
        .map_err(|()| Error::Usage(format!("{} is not an absolute path", dir.display())))?;
    let transport = GuardedTransport::new(
        Box::new(FilesystemTransport),
        base,
        *limits,
        Source::Snapshot,
    );
    let chain = chain::walk(&transport, start, &start_bytes, limits).await?;
    if let Some(&last) = offered_roots.last() {
        if last > chain.newest_version() {
            return Err(Error::RootRotation {
                from: chain.newest_version(),
                to: last,
                check: crate::RotationCheck::MissingIntermediate,
            });
        }
    }
    let loaded = load(transport, chain, limits).await?;
    let versions = loaded.versions();
    if let Some(state) = state {
        state.check_offered(&versions, &loaded.chain.newest)?;
    }
    let expires = loaded.expiries();
    check_expiry(&expires, reference_time)?;
    let targets = read_targets(&loaded, Some(&dir), limits).await?;
    let trusted_root_json = targets
        .iter()
        .find(|t| t.name == TRUSTED_ROOT_TARGET)
        .map(|t| t.bytes.clone())
        .ok_or_else(|| Error::Missing {
            what: format!("target {TRUSTED_ROOT_TARGET} (not listed by the targets role)"),
        })?;
    Ok(VerifiedSnapshot {
        trusted_root_json,
        versions,
        expires,
        newest_root_json: loaded.chain.newest_bytes().to_vec(),
        root_chain: loaded.chain.roots.iter().map(|(v, _)| *v).collect(),
        targets,
        reference_time,
    })
}

/// Versions of the `N.root.json` files in `dir`, sorted.
pub(crate) fn root_versions_in(dir: &Path) -> Result<Vec<u64>, Error> {
    let mut versions = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if let (Some(version), "root") = split_version(stem) {
            versions.push(version);
        }
    }
    versions.sort_unstable();
    Ok(versions)
}

/// A repository loaded and verified by tough (expiry not yet checked).
pub(crate) struct Loaded {
    pub(crate) chain: RootChain,
    pub(crate) repo: tough::Repository,
    pub(crate) transport: GuardedTransport,
}

/// Loads timestamp, snapshot, targets and delegated targets with tough,
/// starting from the newest root of `chain`.
pub(crate) async fn load(
    transport: GuardedTransport,
    chain: RootChain,
    limits: &Limits,
) -> Result<Loaded, Error> {
    let base = transport.base().clone();
    let targets_base = base
        .join("targets/")
        .map_err(|e| Error::Usage(format!("cannot build the targets URL: {e}")))?;
    let root_bytes = chain.newest_bytes().to_vec();
    let repo = RepositoryLoader::new(&root_bytes, base, targets_base)
        .transport(transport.clone())
        .limits(limits.to_tough())
        .expiration_enforcement(ExpirationEnforcement::Unsafe)
        .load()
        .await
        .map_err(|e| map_tough_error(&e, &transport, &chain.newest))?;
    let loaded_root = repo.root().signed.version.get();
    if loaded_root != chain.newest_version() {
        return Err(Error::Verification {
            role: Role::Root,
            detail: format!(
                "the repository's newest root changed while loading (version {} then {loaded_root}); retry",
                chain.newest_version()
            ),
        });
    }
    Ok(Loaded {
        chain,
        repo,
        transport,
    })
}

macro_rules! expires {
    ($signed:expr) => {
        utc(
            $signed.expires.as_second(),
            $signed.expires.subsec_nanosecond(),
        )
    };
}

impl Loaded {
    pub(crate) fn versions(&self) -> RoleVersions {
        RoleVersions {
            root: self.repo.root().signed.version.get(),
            timestamp: self.repo.timestamp().signed.version.get(),
            snapshot: self.repo.snapshot().signed.version.get(),
            targets: self.repo.targets().signed.version.get(),
        }
    }

    pub(crate) fn expiries(&self) -> RoleExpiries {
        let mut delegated = BTreeMap::new();
        collect_delegated(
            self.repo.targets().signed.delegations.as_ref(),
            &mut delegated,
        );
        RoleExpiries {
            root: expires!(self.repo.root().signed),
            timestamp: expires!(self.repo.timestamp().signed),
            snapshot: expires!(self.repo.snapshot().signed),
            targets: expires!(self.repo.targets().signed),
            delegated,
        }
    }
}

fn collect_delegated(delegations: Option<&Delegations>, out: &mut BTreeMap<String, DateTime<Utc>>) {
    let Some(delegations) = delegations else {
        return;
    };
    for role in &delegations.roles {
        if let Some(targets) = &role.targets {
            if out
                .insert(role.name.clone(), expires!(targets.signed))
                .is_none()
            {
                collect_delegated(targets.signed.delegations.as_ref(), out);
            }
        }
    }
}

/// Reads and verifies the top-level targets. With `present_in`, only the
/// targets whose files exist there (and always `trusted_root.json`).
pub(crate) async fn read_targets(
    loaded: &Loaded,
    present_in: Option<&Path>,
    limits: &Limits,
) -> Result<Vec<VerifiedTarget>, Error> {
    let consistent = loaded.repo.root().signed.consistent_snapshot;
    let mut listed: Vec<_> = loaded.repo.targets().signed.targets.iter().collect();
    listed.sort_by(|a, b| a.0.raw().cmp(b.0.raw()));
    let mut out = Vec::new();
    for (name, target) in listed {
        let required = name.raw() == TRUSTED_ROOT_TARGET;
        let expected_sha = hex::encode(&target.hashes.sha256);
        let rel = if consistent {
            format!("targets/{expected_sha}.{}", name.resolved())
        } else {
            format!("targets/{}", name.resolved())
        };
        if !is_safe_relative(&rel) {
            if required {
                return Err(Error::malformed(
                    format!("target {:?}", name.raw()),
                    "unsafe target path",
                ));
            }
            continue;
        }
        if let Some(dir) = present_in {
            if !required && !dir.join(&rel).is_file() {
                continue;
            }
        }
        if target.length > limits.max_target_bytes {
            return Err(Error::TooLarge {
                what: rel,
                limit: limits.max_target_bytes,
            });
        }
        let map =
            |e: tough::error::Error| map_tough_error(&e, &loaded.transport, &loaded.chain.newest);
        let stream = loaded
            .repo
            .read_target(name)
            .await
            .map_err(map)?
            .ok_or_else(|| Error::Missing { what: rel.clone() })?;
        let bytes = stream.into_vec().await.map_err(map)?;
        // tough checked both; checked again here, so a change in tough cannot
        // silently weaken what `trusted_root.json` is derived from.
        let actual_len = bytes.len() as u64;
        if actual_len != target.length {
            return Err(Error::LengthMismatch {
                what: rel,
                expected: target.length,
                actual: actual_len,
            });
        }
        let actual_sha = hex::encode(Sha256::digest(&bytes));
        if actual_sha != expected_sha {
            return Err(Error::HashMismatch {
                what: rel,
                expected: expected_sha,
                actual: actual_sha,
            });
        }
        out.push(VerifiedTarget {
            name: name.raw().to_owned(),
            path: rel,
            length: target.length,
            sha256: expected_sha,
            bytes,
        });
    }
    Ok(out)
}

/// Hex key ids of signatures in `bytes` by keys the root does not authorize for `role`.
fn unauthorized_keyids(bytes: &[u8], root: &Signed<Root>, role: RoleType) -> Vec<String> {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Vec::new();
    };
    let authorized: BTreeSet<String> = root
        .signed
        .roles
        .get(&role)
        .map(|keys| keys.keyids.iter().map(hex::encode).collect())
        .unwrap_or_default();
    let mut unknown: Vec<String> = doc["signatures"]
        .as_array()
        .map(|sigs| {
            sigs.iter()
                .filter_map(|s| s["keyid"].as_str())
                .map(str::to_ascii_lowercase)
                .filter(|k| !authorized.contains(k))
                .collect()
        })
        .unwrap_or_default();
    unknown.dedup();
    unknown
}

/// Maps a failed tough load or target read to [`Error`], naming the role
/// (from tough, or from the file tough was working on) and the failed check.
pub(crate) fn map_tough_error(
    e: &tough::error::Error,
    transport: &GuardedTransport,
    root: &Signed<Root>,
) -> Error {
    use tough::error::Error as T;
    if let Some(violation) = transport.take_violation() {
        return violation;
    }
    let last = transport.last_requested();
    let last_role = last.as_deref().and_then(role_of);
    let role_of_type = |rt: RoleType| match rt {
        RoleType::Root => Role::Root,
        RoleType::Timestamp => Role::Timestamp,
        RoleType::Snapshot => Role::Snapshot,
        RoleType::Targets | RoleType::DelegatedTargets => match &last_role {
            Some(Role::Delegated(name)) => Role::Delegated(name.clone()),
            _ => Role::Targets,
        },
    };
    let what = |role: &Role| last.clone().unwrap_or_else(|| role.to_string());
    match e {
        T::VerifyMetadata { role, source, .. } => {
            let role = role_of_type(*role);
            match source {
                tough::schema::Error::SignatureThreshold {
                    threshold, valid, ..
                } => {
                    let role_type = match role {
                        Role::Timestamp => Some(RoleType::Timestamp),
                        Role::Snapshot => Some(RoleType::Snapshot),
                        Role::Targets => Some(RoleType::Targets),
                        _ => None,
                    };
                    let keyids = match (
                        role_type,
                        last.as_deref().and_then(|r| transport.recorded(r)),
                    ) {
                        (Some(rt), Some(bytes)) => unauthorized_keyids(&bytes, root, rt),
                        _ => Vec::new(),
                    };
                    if keyids.is_empty() {
                        Error::ThresholdNotMet {
                            role,
                            valid: *valid,
                            threshold: *threshold,
                        }
                    } else {
                        Error::UnknownKey {
                            role,
                            keyids,
                            valid: *valid,
                            threshold: *threshold,
                        }
                    }
                }
                other => chain::signature_error(role, other),
            }
        }
        T::VersionMismatch {
            role,
            fetched,
            expected,
            ..
        } => {
            let role = role_of_type(*role);
            Error::VersionMismatch {
                listed_by: role.listed_by().unwrap_or(Role::Snapshot),
                role,
                listed: *expected,
                found: *fetched,
            }
        }
        T::OlderMetadata {
            role,
            current_version,
            new_version,
            ..
        } => Error::Rollback {
            role: role_of_type(*role),
            seen: *current_version,
            offered: *new_version,
        },
        T::ParseMetadata { role, source, .. } => {
            Error::malformed(what(&role_of_type(*role)), source)
        }
        T::Transport { url, source, .. } => transport_error(url, source, transport),
        T::MetaMissing { .. }
        | T::SnapshotTargetsMetaMissing { .. }
        | T::TimestampMetaLength { .. }
        | T::MissingSnapshotMeta { .. } => {
            Error::malformed(what(last_role.as_ref().unwrap_or(&Role::Snapshot)), e)
        }
        T::AbsolutePath { .. }
        | T::DatastoreInit { .. }
        | T::DatastoreCreate { .. }
        | T::DatastoreOpen { .. }
        | T::DatastoreRemove { .. }
        | T::DatastoreSerialize { .. }
        | T::DirCreate { .. }
        | T::FileMetadata { .. }
        | T::FileOpen { .. }
        | T::FileRead { .. }
        | T::FileWrite { .. }
        | T::NamedTempFileCreate { .. }
        | T::NamedTempFilePersist { .. }
        | T::JoinSpawnBlockingTask { .. }
        | T::SystemTimeSteppedBackward { .. } => Error::Io {
            path: "(tough datastore)".into(),
            source: std::io::Error::other(error_chain(e)),
        },
        other => Error::Verification {
            role: last_role.unwrap_or(Role::Targets),
            detail: error_chain(other),
        },
    }
}

fn transport_error(url: &Url, source: &TransportError, transport: &GuardedTransport) -> Error {
    use tough::error::Error as T;
    let rel = transport.relative(url).unwrap_or_else(|| url.to_string());
    let mut cause = std::error::Error::source(source);
    while let Some(c) = cause {
        match c.downcast_ref::<T>() {
            Some(T::HashMismatch {
                calculated,
                expected,
                ..
            }) => {
                return Error::HashMismatch {
                    what: rel,
                    expected: expected.clone(),
                    actual: calculated.clone(),
                }
            }
            // tough's own limits name an "argument" or a "parameter"; the
            // other specifiers are lengths listed in signed metadata.
            Some(T::MaxSizeExceeded {
                max_size,
                specifier,
                ..
            }) => {
                if specifier.ends_with("argument") || specifier.ends_with("parameter") {
                    return Error::TooLarge {
                        what: rel,
                        limit: *max_size,
                    };
                }
                let actual = transport
                    .recorded(&rel)
                    .map_or(max_size.saturating_add(1), |b| b.len() as u64);
                return Error::LengthMismatch {
                    what: rel,
                    expected: *max_size,
                    actual,
                };
            }
            _ => {}
        }
        cause = c.source();
    }
    match (source.kind(), transport.source()) {
        (tough::TransportErrorKind::FileNotFound, Source::Snapshot) => Error::Missing { what: rel },
        _ => Error::Fetch {
            url: url.to_string(),
            detail: error_chain(source),
        },
    }
}
