//! Root rotation of the private repository (TUF specification 5.3.4: a new
//! root is signed by a threshold of the keys of the root it replaces and a
//! threshold of its own keys).
//!
//! [`rotate_root`] signs root version N+1 with the given key files (the root
//! keys stay offline: they are read, used and dropped, never stored),
//! optionally with new online keys (targets, snapshot, timestamp), and
//! re-signs targets, snapshot and timestamp under it, so a client that trusts
//! any earlier root walks the chain to N+1 on its next refresh.
//!
//! Crash safety: new online keys are written as `<role>.pem.next` before
//! anything is committed; the staged repository (the new root first,
//! `timestamp.json` last) is committed with a journal (`.commit` in the
//! stage) so an interrupted commit is rolled forward by the next
//! `publish`, `refresh` or `rotate_root`, which then promote the pending
//! keys the newest root authorizes (or remove them when it does not).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use chrono::{DateTime, Utc};
use tough::editor::signed::SignedRole;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::{KeyHolder, RoleKeys, RoleType, Root};

use super::keys::{role_of_type, settle_pending, MemKey, OnlineKeys};
use super::{
    expiry, jiff_to_utc, load_current, next_version, nz, resign_all, resume_interrupted,
    sha256_hex, signing_error, PublishSummary, RepoLock, SPEC_VERSION,
};
use crate::chain::parse_trusted_root;
use crate::{block_on, Error, Limits, PrivateRepoConfig, Role};

/// What [`rotate_root`] is asked to change.
#[derive(Debug, Clone, Default)]
pub struct RootRotation {
    /// Key files of the current root role: at least its threshold of them
    /// sign the new root.
    pub current_root_keys: Vec<PathBuf>,
    /// Key files of the new root role (make them with [`generate_key_file`]);
    /// empty keeps the current root keys.
    pub new_root_keys: Vec<PathBuf>,
    /// The new root threshold; default: the current one, at most the number
    /// of new root keys.
    pub threshold: Option<u32>,
    /// Generate new targets, snapshot and timestamp keys (the old ones are
    /// no longer trusted once clients see the new root).
    pub rotate_online_keys: bool,
}

/// What [`rotate_root`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationSummary {
    /// The root version replaced.
    pub from_version: u64,
    /// The new root version.
    pub to_version: u64,
    /// The new root, byte for byte (`N.root.json`).
    pub root_json: Vec<u8>,
    /// Hex sha256 of `root_json`.
    pub root_sha256: String,
    /// When the new root expires.
    pub root_expires: DateTime<Utc>,
    /// Hex key ids of each top-level role in the new root.
    pub key_ids: BTreeMap<Role, Vec<String>>,
    /// Whether the online keys were replaced.
    pub online_keys_rotated: bool,
    /// The re-signed repository.
    pub published: PublishSummary,
}

/// Rotates the root of the private repository at `repo_dir` (see the module
/// documentation), with the online keys and `config.json` in `keys_dir`.
/// The repository is verified as a client starting from the old root would
/// see it before anything is put in place.
///
/// Blocking: do not call from async code (use `spawn_blocking`).
pub fn rotate_root(
    repo_dir: &Path,
    keys_dir: &Path,
    rotation: &RootRotation,
    now: DateTime<Utc>,
) -> Result<RotationSummary, Error> {
    block_on(|| rotate_async(repo_dir, keys_dir, rotation, now, None))
}

/// [`rotate_root`], simulating a crash just before the staged file
/// `fail_before` is put in place (for crash tests).
#[doc(hidden)]
pub fn rotate_root_failing_before(
    repo_dir: &Path,
    keys_dir: &Path,
    rotation: &RootRotation,
    now: DateTime<Utc>,
    fail_before: &str,
) -> Result<RotationSummary, Error> {
    block_on(|| rotate_async(repo_dir, keys_dir, rotation, now, Some(fail_before)))
}

/// Writes a new Ed25519 key (PKCS#8 PEM, mode 0600) to `path`, refusing to
/// overwrite anything; returns its hex TUF key id.
pub fn generate_key_file(path: &Path) -> Result<String, Error> {
    super::refuse_existing(path, "an existing key")?;
    let key = MemKey::generate(path.display().to_string())?;
    let id = hex::encode(key.key_id()?);
    crate::fsutil::write_new_atomic(path, key.to_pem().as_bytes(), 0o600)?;
    Ok(id)
}

async fn rotate_async(
    repo_dir: &Path,
    keys_dir: &Path,
    rotation: &RootRotation,
    now: DateTime<Utc>,
    fail_before: Option<&str>,
) -> Result<RotationSummary, Error> {
    let limits = Limits::default();
    let config = PrivateRepoConfig::load(keys_dir)?;
    let _lock = RepoLock::acquire(keys_dir)?;
    resume_interrupted(repo_dir)?;
    let mut current = load_current(repo_dir, &limits).await?;
    settle_pending(keys_dir, &current.root.signed)?;
    let old = current.root.signed.clone();
    let signers = RootSigners::read(rotation, &old)?;
    let online = if rotation.rotate_online_keys {
        OnlineKeys::generate(keys_dir)?
    } else {
        let keys = OnlineKeys::read(keys_dir)?;
        keys.check_against(&old)?;
        keys
    };
    let root = next_root(&old, &signers, &online, &config, now)?;
    let signed_role = cross_sign(root, &old, &signers).await?;
    let root_json = signed_role.buffer().clone();
    let signed = signed_role.signed().clone();
    parse_trusted_root(&root_json, "the new root")?;
    if rotation.rotate_online_keys {
        online.write_pending(keys_dir)?;
    }
    let to_version = signed.signed.version.get();
    let root_expires = jiff_to_utc(signed.signed.expires);
    let key_ids = key_ids_of(&signed.signed);
    current.next_root = Some((signed, root_json.clone()));
    let published = resign_all(current, &online, &config, &[], now, &limits, fail_before).await?;
    if rotation.rotate_online_keys {
        online.promote_pending(keys_dir)?;
    }
    Ok(RotationSummary {
        from_version: old.version.get(),
        to_version,
        root_sha256: sha256_hex(&root_json),
        root_json,
        root_expires,
        key_ids,
        online_keys_rotated: rotation.rotate_online_keys,
        published,
    })
}

/// The root keys that sign the new root: a threshold of the old root's and
/// a threshold of the new root's (the same keys when they are kept).
struct RootSigners {
    old: Vec<MemKey>,
    new: Vec<MemKey>,
    threshold: u64,
}

impl RootSigners {
    fn read(rotation: &RootRotation, old: &Root) -> Result<RootSigners, Error> {
        let old_role = root_role(old)?;
        let old_keys = read_distinct(&rotation.current_root_keys)?;
        for key in &old_keys {
            if !old_role.keyids.contains(&key.key_id()?) {
                return Err(Error::Key {
                    path: PathBuf::from(key.label()),
                    detail: format!(
                        "not a root key of root version {} (give the current root keys with --current-root-key)",
                        old.version
                    ),
                });
            }
        }
        if (old_keys.len() as u64) < old_role.threshold.get() {
            return Err(Error::Usage(format!(
                "root version {} needs {} of its root keys to sign its successor; {} given",
                old.version,
                old_role.threshold,
                old_keys.len()
            )));
        }
        let new_keys = read_distinct(&rotation.new_root_keys)?;
        let available = if new_keys.is_empty() {
            old_role.keyids.len()
        } else {
            new_keys.len()
        } as u64;
        let threshold = match rotation.threshold {
            Some(t) => u64::from(t),
            None => old_role.threshold.get().min(available),
        };
        if threshold == 0 || threshold > available {
            return Err(Error::Usage(format!(
                "a root threshold of {threshold} with {available} root keys: give 1..={available}"
            )));
        }
        let signing_new = if new_keys.is_empty() {
            old_keys.len() as u64
        } else {
            new_keys.len() as u64
        };
        if signing_new < threshold {
            return Err(Error::Usage(format!(
                "the new root needs {threshold} signatures of its own root keys; {signing_new} given"
            )));
        }
        Ok(RootSigners {
            old: old_keys,
            new: new_keys,
            threshold,
        })
    }
}

fn root_role(root: &Root) -> Result<&RoleKeys, Error> {
    root.roles
        .get(&RoleType::Root)
        .ok_or_else(|| Error::malformed("root.json", "it has no root role"))
}

/// Reads key files, refusing the same key given twice.
fn read_distinct(paths: &[PathBuf]) -> Result<Vec<MemKey>, Error> {
    let mut keys: Vec<MemKey> = Vec::with_capacity(paths.len());
    for path in paths {
        let key = MemKey::read(path)?;
        let id = key.key_id()?;
        for other in &keys {
            if other.key_id()? == id {
                return Err(Error::Usage(format!(
                    "{} and {} are the same key",
                    other.label(),
                    path.display()
                )));
            }
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Root version N+1: the root role from the signers, the online roles from
/// `online`, a fresh expiry; only the keys it lists.
fn next_root(
    old: &Root,
    signers: &RootSigners,
    online: &OnlineKeys,
    config: &PrivateRepoConfig,
    now: DateTime<Utc>,
) -> Result<Root, Error> {
    let mut keys = HashMap::new();
    let mut roles: HashMap<RoleType, RoleKeys> = HashMap::new();
    let root_ids: Vec<Decoded<Hex>> = if signers.new.is_empty() {
        let ids = root_role(old)?.keyids.clone();
        for id in &ids {
            let key = old
                .keys
                .get(id)
                .ok_or_else(|| Error::malformed("root.json", "a root key id without its key"))?;
            keys.insert(id.clone(), key.clone());
        }
        ids
    } else {
        let mut ids = Vec::new();
        for key in &signers.new {
            let id = key.key_id()?;
            keys.insert(id.clone(), key.public()?);
            ids.push(id);
        }
        ids
    };
    roles.insert(
        RoleType::Root,
        RoleKeys {
            keyids: root_ids,
            threshold: nz(signers.threshold)?,
            _extra: HashMap::new(),
        },
    );
    for (role, key) in online.iter() {
        let id = key.key_id()?;
        keys.insert(id.clone(), key.public()?);
        roles.insert(
            role,
            RoleKeys {
                keyids: vec![id],
                threshold: nz(1)?,
                _extra: HashMap::new(),
            },
        );
    }
    Ok(Root {
        spec_version: SPEC_VERSION.to_owned(),
        consistent_snapshot: true,
        version: next_version(old.version.get())?,
        expires: expiry(now, config.expiry.root)?,
        keys,
        roles,
        _extra: old._extra.clone(),
    })
}

/// Signs `root` with its own root keys, then adds the signatures of the old
/// root's keys (as the old root lists them): one signature per key.
async fn cross_sign(
    root: Root,
    old: &Root,
    signers: &RootSigners,
) -> Result<SignedRole<Root>, Error> {
    let rng = SystemRandom::new();
    let sources = |keys: &[MemKey]| keys.iter().map(|k| k.source()).collect::<Vec<_>>();
    let by_old = SignedRole::new(
        root.clone(),
        &KeyHolder::Root(old.clone()),
        &sources(&signers.old),
        &rng,
    )
    .await
    .map_err(|e| signing_error(Role::Root, &e))?;
    let own = if signers.new.is_empty() {
        &signers.old
    } else {
        &signers.new
    };
    let by_new = SignedRole::new(root.clone(), &KeyHolder::Root(root), &sources(own), &rng)
        .await
        .map_err(|e| signing_error(Role::Root, &e))?;
    by_new
        .add_old_signatures(by_old.signed().signatures.clone())
        .map_err(|e| signing_error(Role::Root, &e))
}

fn key_ids_of(root: &Root) -> BTreeMap<Role, Vec<String>> {
    root.roles
        .iter()
        .map(|(role, keys)| {
            (
                role_of_type(*role),
                keys.keyids.iter().map(hex::encode).collect(),
            )
        })
        .collect()
}
