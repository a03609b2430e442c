//! airgate's own TUF repository, which distributes the private
//! `trusted_root.json` inside the enclave.
//!
//! - [`init_private`] generates the role keys (Ed25519, PKCS#8 PEM, mode
//!   0600, never overwritten) and writes the signed `1.root.json`. tough's
//!   `RepositoryEditor` cannot create roots, so the root is built here from
//!   tough's schema types and signed over tough's canonical form.
//! - [`publish`] (re)publishes flat-named targets with tough's
//!   `RepositoryEditor`, bumping and re-signing targets, snapshot and
//!   timestamp; [`refresh`] re-signs the timestamp (and the snapshot or
//!   targets when they near expiry) so the metadata never expires while it
//!   is served.
//! - [`load_private`] loads and verifies the repository offline (what a
//!   client does), for tests and for the server.
//!
//! Layout (consistent snapshots, as the public Sigstore repository):
//! `N.root.json` and `root.json`, `timestamp.json`, `N.snapshot.json`,
//! `N.targets.json`, `targets/<sha256>.<name>`. Target names are flat
//! (tough's consistent snapshots break for names containing `/`).
//!
//! Writes never leave a repository clients cannot load: new files are
//! written and verified in a staging directory inside the repository, then
//! renamed into place (target files, then versioned metadata, then
//! `timestamp.json` last), fsyncing the directory after each rename. Old
//! versions are never deleted, so the previous `timestamp.json` stays
//! loadable until the new one replaces it. `publish` and `refresh` hold an
//! exclusive lock (`.lock` in the keys directory) while they run.
//!
//! The root key(s) are for offline use: only [`init_private`] uses them.
//! Move `root-*.pem` to offline storage after initialization; [`publish`] and
//! [`refresh`] need only `targets.pem`, `snapshot.pem` and `timestamp.pem`.

mod config;
mod keys;
mod rotate;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tough::editor::signed::SignedRole;
use tough::editor::RepositoryEditor;
use tough::schema::{
    Hashes, KeyHolder, Metafile, RoleKeys, RoleType, Root, Signed, Snapshot, Target, Timestamp,
};
use tough::{FilesystemTransport, Transport, TransportError, TransportErrorKind, TransportStream};
use url::Url;

pub use config::{format_duration, parse_duration, PrivateRepoConfig, RoleDurations, CONFIG_FILE};
use keys::{key_file_name, role_of_type, settle_pending, MemKey, OnlineKeys, ONLINE_ROLES};
pub use rotate::{
    generate_key_file, rotate_root, rotate_root_failing_before, RootRotation, RotationSummary,
};

use crate::chain::{self, parse_trusted_root};
use crate::fsutil::{parent_dir, read_limited, sync_dir, sync_file, write_new, write_new_atomic};
use crate::policy::{check_expiry, utc};
use crate::transport::{error_chain, GuardedTransport, Source};
use crate::verify::{load, read_targets, root_versions_in, Loaded};
use crate::{
    block_on, Error, Limits, Role, RoleExpiries, RoleVersions, RotationCheck, VerifiedTarget,
};

const SPEC_VERSION: &str = "1.0.0";
/// Prefix of the staging directories inside the repository.
const STAGE_PREFIX: &str = ".airgate-tuf-stage-";
/// The lock file in the keys directory.
const LOCK_FILE: &str = ".lock";
/// How long `publish` and `refresh` wait for another one to finish.
const LOCK_WAIT: Duration = Duration::from_secs(60);
/// Longest flat target name accepted.
const MAX_TARGET_NAME: usize = 180;

/// What [`init_private`] created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitSummary {
    /// The repository directory (holds `1.root.json` and `root.json`).
    pub repo_dir: PathBuf,
    /// The keys directory (holds the key files and `config.json`).
    pub keys_dir: PathBuf,
    /// The signed root, version 1, byte for byte: what clients pin.
    pub root_json: Vec<u8>,
    /// Hex sha256 of `root_json`.
    pub root_sha256: String,
    /// When the root expires.
    pub root_expires: DateTime<Utc>,
    /// Hex key ids of each top-level role.
    pub key_ids: BTreeMap<Role, Vec<String>>,
    /// The key files written (root keys first; keep those offline).
    pub key_files: Vec<PathBuf>,
    /// The configuration file written.
    pub config_file: PathBuf,
}

/// A target listed by the private repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedTarget {
    /// The flat target name (e.g. `trusted_root.json`).
    pub name: String,
    /// Its path relative to the repository (`targets/<sha256>.<name>`).
    pub path: String,
    /// Its length in bytes.
    pub length: u64,
    /// Its hex sha256.
    pub sha256: String,
}

/// What [`publish`] or [`refresh`] did. The repository was verified as
/// written (signatures, versions, hashes, every role's expiry) before its
/// new `timestamp.json` was put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishSummary {
    /// Versions of the top-level roles now served.
    pub versions: RoleVersions,
    /// Expiry of every role now served.
    pub expires: RoleExpiries,
    /// The roles re-signed (with a new version) by this call.
    pub resigned: Vec<Role>,
    /// The targets given to this call (empty for [`refresh`]).
    pub published: Vec<PublishedTarget>,
    /// Every target the repository now lists, sorted by name.
    pub targets: Vec<PublishedTarget>,
    /// Files written, relative to the repository, in the order they were put in place.
    pub files: Vec<String>,
}

/// The private repository as a TUF client sees it, verified by
/// [`load_private`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedRepo {
    /// Versions of the top-level roles.
    pub versions: RoleVersions,
    /// Expiry of every role loaded.
    pub expires: RoleExpiries,
    /// Root versions walked, from the given root to the newest.
    pub root_chain: Vec<u64>,
    /// The newest root, byte for byte.
    pub newest_root_json: Vec<u8>,
    /// Every listed target, verified by length and sha256, sorted by name.
    pub targets: Vec<VerifiedTarget>,
    /// The time expiry was evaluated at.
    pub reference_time: DateTime<Utc>,
}

impl LoadedRepo {
    /// The verified bytes of target `name`, if the repository lists it.
    pub fn target(&self, name: &str) -> Option<&[u8]> {
        self.targets
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.bytes.as_slice())
    }
}

/// Creates a private TUF repository: generates the root keys
/// (`config.root_keys`, threshold `config.root_threshold`) and one key each
/// for targets, snapshot and timestamp (Ed25519); writes them into
/// `keys_dir` as PKCS#8 PEM files of mode 0600 (`root-1.pem`...,
/// `targets.pem`, `snapshot.pem`, `timestamp.pem`), each atomically, and
/// `config.json`; then writes the signed root (version 1, consistent
/// snapshots, expiring `config.expiry.root` after `now`) to `repo_dir` as
/// `1.root.json` and `root.json`.
///
/// Refuses to overwrite anything: fails if any of these files exists (or
/// `repo_dir` already holds a `timestamp.json`). On failure, removes what it
/// wrote. The repository has no targets until the first [`publish`].
///
/// The root keys are for offline use: after initialization move
/// `root-*.pem` to offline storage; [`publish`] and [`refresh`] do not read them.
///
/// Blocking: do not call from async code (use `spawn_blocking`).
pub fn init_private(
    repo_dir: &Path,
    keys_dir: &Path,
    config: &PrivateRepoConfig,
    now: DateTime<Utc>,
) -> Result<InitSummary, Error> {
    block_on(|| init_async(repo_dir, keys_dir, config, now))
}

/// (Re)publishes `targets` (flat name, content) in the private repository at
/// `repo_dir`, signing with the online keys in `keys_dir`. Targets already
/// listed and not named here are kept. Targets, snapshot and timestamp get
/// the next version and expire as `config.json` in `keys_dir` says, counted
/// from `now`. The first call after [`init_private`] creates versions 1
/// (an empty `targets` then publishes an empty repository).
///
/// Names are flat: letters, digits, `.`, `_`, `+`, `-`; not starting with
/// `.`. Content is limited to [`Limits::default`]'s target size.
///
/// Blocking: do not call from async code (use `spawn_blocking`).
pub fn publish(
    repo_dir: &Path,
    keys_dir: &Path,
    targets: &[(&str, &[u8])],
    now: DateTime<Utc>,
) -> Result<PublishSummary, Error> {
    block_on(|| publish_async(repo_dir, keys_dir, targets, now, None))
}

/// Re-signs the timestamp of the private repository at `repo_dir` with a
/// new version and expiry, without changing its targets: run it
/// periodically (well within the timestamp expiry) so the metadata never
/// expires while served.
///
/// The snapshot is re-signed too when it would otherwise expire within half
/// its configured lifetime (or before the new timestamp); likewise the
/// targets metadata (same targets, new version), which also re-signs the
/// snapshot. The root is never re-signed (its keys are offline): watch
/// [`PublishSummary::expires`]`.root`.
///
/// Blocking: do not call from async code (use `spawn_blocking`).
pub fn refresh(
    repo_dir: &Path,
    keys_dir: &Path,
    now: DateTime<Utc>,
) -> Result<PublishSummary, Error> {
    block_on(|| refresh_async(repo_dir, keys_dir, now, None))
}

/// Loads the private repository at `repo_dir` offline, as a TUF client
/// would, starting from the trusted `root_json` (e.g. the `1.root.json`
/// clients pin): walks the root chain, verifies timestamp, snapshot and
/// targets with tough, checks every role's expiry against `now`, and
/// verifies every listed target by length and sha256.
///
/// Blocking: do not call from async code (use `spawn_blocking`).
pub fn load_private(
    repo_dir: &Path,
    root_json: &[u8],
    now: DateTime<Utc>,
) -> Result<LoadedRepo, Error> {
    block_on(|| async move {
        let limits = Limits::default();
        let trusted = parse_trusted_root(root_json, "given root")?;
        let dir = std::fs::canonicalize(repo_dir).map_err(|e| Error::io(repo_dir, e))?;
        let transport = GuardedTransport::new(
            Box::new(FilesystemTransport),
            dir_url(&dir)?,
            limits,
            Source::Snapshot,
        );
        let offered = root_versions_in(&dir)?.last().copied();
        load_verified(transport, trusted, root_json, offered, now, &limits).await
    })
}

fn dir_url(dir: &Path) -> Result<Url, Error> {
    Url::from_directory_path(dir)
        .map_err(|()| Error::Usage(format!("{} is not an absolute path", dir.display())))
}

fn nz(v: u64) -> Result<NonZeroU64, Error> {
    NonZeroU64::new(v).ok_or_else(|| Error::Usage("a role version must not be 0".to_owned()))
}

fn next_version(v: u64) -> Result<NonZeroU64, Error> {
    v.checked_add(1)
        .and_then(NonZeroU64::new)
        .ok_or_else(|| Error::Usage("role version overflow".to_owned()))
}

/// `now + lifetime`, in whole seconds (python-tuf accepts no fractions).
fn expiry(now: DateTime<Utc>, lifetime: Duration) -> Result<jiff::Timestamp, Error> {
    let secs = i64::try_from(lifetime.as_secs())
        .ok()
        .and_then(|l| now.timestamp().checked_add(l))
        .ok_or_else(|| Error::Usage("expiry out of range".to_owned()))?;
    jiff::Timestamp::from_second(secs)
        .map_err(|e| Error::Usage(format!("expiry out of range: {e}")))
}

fn jiff_to_utc(t: jiff::Timestamp) -> DateTime<Utc> {
    utc(t.as_second(), t.subsec_nanosecond())
}

fn signing_error(role: Role, e: &tough::error::Error) -> Error {
    Error::Signing {
        role,
        detail: error_chain(e),
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Refuses anything but a flat, URL- and file-system-safe name.
fn check_target_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= MAX_TARGET_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "target name {name:?}: use a flat name (at most {MAX_TARGET_NAME} letters, digits, '.', '_', '+' or '-', not starting with '.')"
        )))
    }
}

fn check_targets(targets: &[(&str, &[u8])], limits: &Limits) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for (name, bytes) in targets {
        check_target_name(name)?;
        if !seen.insert(*name) {
            return Err(Error::Usage(format!("target {name:?} given twice")));
        }
        if bytes.len() as u64 > limits.max_target_bytes {
            return Err(Error::TooLarge {
                what: format!("target {name:?}"),
                limit: limits.max_target_bytes,
            });
        }
    }
    Ok(())
}

fn published(target: &VerifiedTarget) -> PublishedTarget {
    PublishedTarget {
        name: target.name.clone(),
        path: target.path.clone(),
        length: target.length,
        sha256: target.sha256.clone(),
    }
}

// ---------------------------------------------------------------- init

/// Removes the files it holds when dropped, unless disarmed.
#[derive(Default)]
struct Created(Vec<PathBuf>);

impl Created {
    fn disarm(mut self) {
        self.0.clear();
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        for path in self.0.iter().rev() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn refuse_existing(path: &Path, what: &str) -> Result<(), Error> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
        Ok(_) => Err(Error::Usage(format!(
            "{} already exists: refusing to overwrite {what}",
            path.display()
        ))),
    }
}

fn create_private_dir(dir: &Path) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

async fn init_async(
    repo_dir: &Path,
    keys_dir: &Path,
    config: &PrivateRepoConfig,
    now: DateTime<Utc>,
) -> Result<InitSummary, Error> {
    config.validate()?;
    std::fs::create_dir_all(repo_dir).map_err(|e| Error::io(repo_dir, e))?;
    for name in ["1.root.json", "root.json", "timestamp.json"] {
        refuse_existing(&repo_dir.join(name), "an existing TUF repository")?;
    }
    create_private_dir(keys_dir)?;
    let config_file = keys_dir.join(CONFIG_FILE);
    refuse_existing(&config_file, "an existing configuration")?;

    let mut roles: Vec<(RoleType, PathBuf, MemKey)> = Vec::new();
    let role_slots = (1..=config.root_keys)
        .map(|i| (RoleType::Root, i))
        .chain(ONLINE_ROLES.iter().map(|&r| (r, 0)));
    for (role, index) in role_slots {
        let path = keys_dir.join(key_file_name(role, index));
        refuse_existing(&path, "an existing key")?;
        let key = MemKey::generate(path.display().to_string())?;
        roles.push((role, path, key));
    }

    let mut keys = HashMap::new();
    let mut role_keys: HashMap<RoleType, RoleKeys> = HashMap::new();
    let mut key_ids: BTreeMap<Role, Vec<String>> = BTreeMap::new();
    for (role, _, key) in &roles {
        let id = key.key_id()?;
        keys.insert(id.clone(), key.public()?);
        key_ids
            .entry(role_of_type(*role))
            .or_default()
            .push(hex::encode(&id));
        let entry = role_keys.entry(*role).or_insert_with(|| RoleKeys {
            keyids: Vec::new(),
            threshold: NonZeroU64::MIN,
            _extra: HashMap::new(),
        });
        entry.keyids.push(id);
    }
    if let Some(root_role) = role_keys.get_mut(&RoleType::Root) {
        root_role.threshold = nz(u64::from(config.root_threshold))?;
    }
    let expires = expiry(now, config.expiry.root)?;
    let root = Root {
        spec_version: SPEC_VERSION.to_owned(),
        consistent_snapshot: true,
        version: NonZeroU64::MIN,
        expires,
        keys,
        roles: role_keys,
        _extra: HashMap::new(),
    };
    let root_sources: Vec<_> = roles
        .iter()
        .filter(|(role, _, _)| *role == RoleType::Root)
        .map(|(_, _, key)| key.source())
        .collect();
    let holder = KeyHolder::Root(root.clone());
    let signed = SignedRole::new(root, &holder, &root_sources, &SystemRandom::new())
        .await
        .map_err(|e| signing_error(Role::Root, &e))?;
    let root_json = signed.buffer().clone();
    // Self-check: the root verifies with a threshold of its own keys.
    parse_trusted_root(&root_json, "the new root")?;

    let mut created = Created::default();
    for (_, path, key) in &roles {
        write_new_atomic(path, key.to_pem().as_bytes(), 0o600)?;
        created.0.push(path.clone());
    }
    let mut config_json = serde_json::to_vec_pretty(config)
        .map_err(|e| Error::Usage(format!("cannot serialize the configuration: {e}")))?;
    config_json.push(b'\n');
    write_new_atomic(&config_file, &config_json, 0o644)?;
    created.0.push(config_file.clone());
    for name in ["1.root.json", "root.json"] {
        let path = repo_dir.join(name);
        write_new_atomic(&path, &root_json, 0o644)?;
        created.0.push(path);
    }
    created.disarm();

    Ok(InitSummary {
        repo_dir: repo_dir.to_owned(),
        keys_dir: keys_dir.to_owned(),
        root_sha256: sha256_hex(&root_json),
        root_json,
        root_expires: jiff_to_utc(expires),
        key_ids,
        key_files: roles.into_iter().map(|(_, path, _)| path).collect(),
        config_file,
    })
}

// ---------------------------------------------------------------- lock

/// An exclusive `flock` on the keys directory's lock file, released when dropped.
struct RepoLock {
    _file: std::fs::File,
}

impl RepoLock {
    fn acquire(keys_dir: &Path) -> Result<RepoLock, Error> {
        let path = keys_dir.join(LOCK_FILE);
        // A read-only keys directory works once the lock file exists.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .or_else(|_| std::fs::File::open(&path))
            .map_err(|e| Error::io(&path, e))?;
        #[cfg(unix)]
        {
            use rustix::fs::{flock, FlockOperation};
            let deadline = std::time::Instant::now() + LOCK_WAIT;
            loop {
                match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                    Ok(()) => break,
                    Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                        if std::time::Instant::now() >= deadline {
                            return Err(Error::Usage(format!(
                                "another publish or refresh holds {} for more than {}s",
                                path.display(),
                                LOCK_WAIT.as_secs()
                            )));
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => return Err(Error::io(&path, e.into())),
                }
            }
        }
        Ok(RepoLock { _file: file })
    }
}

// ---------------------------------------------------------------- loading

/// The repository as it is before a publish or refresh.
struct Current {
    /// The canonical repository directory.
    dir: PathBuf,
    /// The newest root and its bytes.
    root: Signed<Root>,
    root_bytes: Vec<u8>,
    /// Timestamp, snapshot and targets, when something was published.
    loaded: Option<Loaded>,
    /// A new root (and its bytes) to commit with the re-signed metadata.
    next_root: Option<(Signed<Root>, Vec<u8>)>,
}

async fn load_current(repo_dir: &Path, limits: &Limits) -> Result<Current, Error> {
    let dir = std::fs::canonicalize(repo_dir).map_err(|e| Error::io(repo_dir, e))?;
    let first_path = dir.join("1.root.json");
    if !first_path.is_file() {
        return Err(Error::Usage(format!(
            "{} has no 1.root.json: create the repository with `airgate tuf init-private` first",
            repo_dir.display()
        )));
    }
    let first = read_limited(&first_path, limits.max_root_bytes)?;
    let trusted = parse_trusted_root(&first, "1.root.json of the repository")?;
    let transport = GuardedTransport::new(
        Box::new(FilesystemTransport),
        dir_url(&dir)?,
        *limits,
        Source::Snapshot,
    );
    let chain = chain::walk(&transport, trusted, &first, limits).await?;
    let root = chain.newest.clone();
    let root_bytes = chain.newest_bytes().to_vec();
    let loaded = if dir.join("timestamp.json").is_file() {
        Some(load(transport, chain, limits).await?)
    } else {
        None
    };
    Ok(Current {
        dir,
        root,
        root_bytes,
        loaded,
        next_root: None,
    })
}

/// Walks the root chain from `trusted`, loads the rest with tough, checks
/// every expiry at `now`, and verifies every target.
async fn load_verified(
    transport: GuardedTransport,
    trusted: Signed<Root>,
    trusted_bytes: &[u8],
    newest_offered_root: Option<u64>,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<LoadedRepo, Error> {
    let chain = chain::walk(&transport, trusted, trusted_bytes, limits).await?;
    if let Some(last) = newest_offered_root {
        if last > chain.newest_version() {
            return Err(Error::RootRotation {
                from: chain.newest_version(),
                to: last,
                check: RotationCheck::MissingIntermediate,
            });
        }
    }
    let loaded = load(transport, chain, limits).await?;
    let expires = loaded.expiries();
    check_expiry(&expires, now)?;
    let targets = read_targets(&loaded, None, limits).await?;
    Ok(LoadedRepo {
        versions: loaded.versions(),
        expires,
        root_chain: loaded.chain.roots.iter().map(|(v, _)| *v).collect(),
        newest_root_json: loaded.chain.newest_bytes().to_vec(),
        targets,
        reference_time: now,
    })
}

/// A read-only view of the staging directory over the repository: a file
/// present in the stage hides the repository's.
#[derive(Debug, Clone)]
struct Overlay {
    base: Url,
    stage: PathBuf,
    repo: PathBuf,
}

#[tough::async_trait]
impl Transport for Overlay {
    async fn fetch(&self, url: Url) -> Result<TransportStream, TransportError> {
        let other = |why: &str| {
            TransportError::new_with_cause(TransportErrorKind::Other, url.as_str(), why.to_owned())
        };
        let rel = url
            .as_str()
            .strip_prefix(self.base.as_str())
            .ok_or_else(|| other("outside the staging directory"))?;
        let staged = self.stage.join(rel);
        let path = if staged.is_file() {
            staged
        } else {
            self.repo.join(rel)
        };
        let file_url = Url::from_file_path(&path).map_err(|()| other("not an absolute path"))?;
        FilesystemTransport.fetch(file_url).await
    }
}

/// Verifies the repository as it will be once the stage is committed.
async fn verify_stage(
    current: &Current,
    stage: &Path,
    now: DateTime<Utc>,
    limits: &Limits,
) -> Result<LoadedRepo, Error> {
    let base = dir_url(stage)?;
    let overlay = Overlay {
        base: base.clone(),
        stage: stage.to_owned(),
        repo: current.dir.clone(),
    };
    let transport = GuardedTransport::new(Box::new(overlay), base, *limits, Source::Snapshot);
    load_verified(
        transport,
        current.root.clone(),
        &current.root_bytes,
        None,
        now,
        limits,
    )
    .await
}

// ---------------------------------------------------------------- staging and commit

fn new_stage(dir: &Path) -> Result<tempfile::TempDir, Error> {
    tempfile::Builder::new()
        .prefix(STAGE_PREFIX)
        .tempdir_in(dir)
        .map_err(|e| Error::io(dir, e))
}

/// The journal of a commit that changes the root: the files to put in place, in order.
const JOURNAL: &str = ".commit";
/// Largest journal read back.
const MAX_JOURNAL_BYTES: u64 = 64 << 10;

fn write_journal(stage: &Path, files: &[String]) -> Result<(), Error> {
    let path = stage.join(JOURNAL);
    write_new(&path, files.join("\n").as_bytes())?;
    sync_file(&path)?;
    sync_dir(stage);
    Ok(())
}

/// Under the lock, before loading: rolls forward a journaled commit a crashed
/// run left in a staging directory (the files not yet in place, in order) and
/// removes every other staging directory left behind.
fn resume_interrupted(repo_dir: &Path) -> Result<(), Error> {
    let dir = std::fs::canonicalize(repo_dir).map_err(|e| Error::io(repo_dir, e))?;
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let stale = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(STAGE_PREFIX))
            && entry.file_type().is_ok_and(|t| t.is_dir());
        if !stale {
            continue;
        }
        let stage = entry.path();
        let journal = stage.join(JOURNAL);
        if journal.is_file() {
            let files = read_journal(&journal)?;
            let pending: Vec<String> = files
                .into_iter()
                .filter(|rel| stage.join(rel).is_file())
                .collect();
            commit(&stage, &dir, &pending, None)?;
        }
        let _ = std::fs::remove_dir_all(&stage);
    }
    Ok(())
}

/// Reads a journal: relative paths as `commit` writes them, nothing else.
fn read_journal(path: &Path) -> Result<Vec<String>, Error> {
    let bytes = read_limited(path, MAX_JOURNAL_BYTES)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::malformed(path.display().to_string(), "the journal is not UTF-8"))?;
    let mut files = Vec::new();
    for rel in text.lines() {
        let safe = !rel.is_empty()
            && !rel.starts_with('/')
            && rel.split('/').all(|part| {
                !part.is_empty()
                    && part != ".."
                    && part != "."
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
            });
        if !safe {
            return Err(Error::malformed(
                path.display().to_string(),
                format!("the journal names {:?}", rel.escape_debug().to_string()),
            ));
        }
        files.push(rel.to_owned());
    }
    Ok(files)
}

/// Renames the staged `files` into the repository, in order, fsyncing the
/// directory after each rename so they become durable in that order.
/// `fail_before` simulates a crash just before renaming that file.
fn commit(
    stage: &Path,
    repo: &Path,
    files: &[String],
    fail_before: Option<&str>,
) -> Result<(), Error> {
    for rel in files {
        let to = repo.join(rel);
        if fail_before == Some(rel.as_str()) {
            return Err(Error::io(
                &to,
                std::io::Error::other("simulated crash before this rename"),
            ));
        }
        let dir = parent_dir(&to);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        std::fs::rename(stage.join(rel), &to).map_err(|e| Error::io(&to, e))?;
        sync_dir(dir);
    }
    Ok(())
}

/// Checks the staged repository verified as intended, commits it, and
/// builds the summary.
#[allow(clippy::too_many_arguments)]
async fn verify_and_commit(
    current: &Current,
    stage: tempfile::TempDir,
    files: Vec<String>,
    expected: RoleVersions,
    resigned: Vec<Role>,
    new_targets: &[(&str, &[u8])],
    now: DateTime<Utc>,
    limits: &Limits,
    fail_before: Option<&str>,
) -> Result<PublishSummary, Error> {
    if let Ok(targets_dir) = std::fs::File::open(stage.path().join("targets")) {
        let _ = targets_dir.sync_all();
    }
    sync_dir(stage.path());
    let verified = verify_stage(current, stage.path(), now, limits).await?;
    if verified.versions != expected {
        return Err(Error::Verification {
            role: Role::Timestamp,
            detail: format!(
                "the staged repository has versions {:?}, {:?} were signed",
                verified.versions, expected
            ),
        });
    }
    let mut published_now = Vec::new();
    for (name, bytes) in new_targets {
        match verified.targets.iter().find(|t| t.name == *name) {
            Some(t) if t.bytes == *bytes => published_now.push(published(t)),
            _ => {
                return Err(Error::Verification {
                    role: Role::Targets,
                    detail: format!("the staged repository does not serve the new {name:?}"),
                })
            }
        }
    }
    // A commit that changes the root is journaled: rolled forward if interrupted.
    let journaled = files.iter().any(|f| f == "root.json");
    if journaled {
        write_journal(stage.path(), &files)?;
    }
    if let Err(e) = commit(stage.path(), &current.dir, &files, fail_before) {
        if journaled {
            let _ = stage.keep();
        }
        return Err(e);
    }
    drop(stage);
    Ok(PublishSummary {
        versions: verified.versions,
        expires: verified.expires,
        resigned,
        published: published_now,
        targets: verified.targets.iter().map(published).collect(),
        files,
    })
}

// ---------------------------------------------------------------- publish and refresh

async fn publish_async(
    repo_dir: &Path,
    keys_dir: &Path,
    targets: &[(&str, &[u8])],
    now: DateTime<Utc>,
    fail_before: Option<&str>,
) -> Result<PublishSummary, Error> {
    let limits = Limits::default();
    check_targets(targets, &limits)?;
    let config = PrivateRepoConfig::load(keys_dir)?;
    let _lock = RepoLock::acquire(keys_dir)?;
    resume_interrupted(repo_dir)?;
    let current = load_current(repo_dir, &limits).await?;
    settle_pending(keys_dir, &current.root.signed)?;
    let keys = OnlineKeys::read(keys_dir)?;
    keys.check_against(&current.root.signed)?;
    resign_all(current, &keys, &config, targets, now, &limits, fail_before).await
}

/// Publishes with tough's `RepositoryEditor`: new targets version (with
/// `new_targets` added or replaced), new snapshot, new timestamp.
async fn resign_all(
    mut current: Current,
    keys: &OnlineKeys,
    config: &PrivateRepoConfig,
    new_targets: &[(&str, &[u8])],
    now: DateTime<Utc>,
    limits: &Limits,
    fail_before: Option<&str>,
) -> Result<PublishSummary, Error> {
    let stage = new_stage(&current.dir)?;
    let (root_version, root_bytes) = match &current.next_root {
        Some((root, bytes)) => (root.signed.version.get(), bytes.as_slice()),
        None => (
            current.root.signed.version.get(),
            current.root_bytes.as_slice(),
        ),
    };
    // The editor reads the root from a file: give it the verified bytes.
    let root_path = stage.path().join(format!("{root_version}.root.json"));
    write_new(&root_path, root_bytes)?;
    let mut files = Vec::new();
    let mut resigned = Vec::new();
    if current.next_root.is_some() {
        // A new root goes in place first (N.root.json, then root.json).
        write_new(&stage.path().join("root.json"), root_bytes)?;
        for rel in [format!("{root_version}.root.json"), "root.json".to_owned()] {
            sync_file(&stage.path().join(&rel))?;
            files.push(rel);
        }
        resigned.push(Role::Root);
    }
    let editor_error = |e: tough::error::Error| signing_error(Role::Targets, &e);
    let (old, mut editor) = match current.loaded.take() {
        Some(loaded) => {
            let versions = loaded.versions();
            let editor = RepositoryEditor::from_repo(&root_path, loaded.repo)
                .await
                .map_err(editor_error)?;
            (Some(versions), editor)
        }
        None => (
            None,
            RepositoryEditor::new(&root_path)
                .await
                .map_err(editor_error)?,
        ),
    };
    let (targets_v, snapshot_v, timestamp_v) = match old {
        Some(v) => (
            next_version(v.targets)?,
            next_version(v.snapshot)?,
            next_version(v.timestamp)?,
        ),
        None => (NonZeroU64::MIN, NonZeroU64::MIN, NonZeroU64::MIN),
    };
    for (name, bytes) in new_targets {
        let target = Target {
            length: bytes.len() as u64,
            hashes: Hashes {
                sha256: Sha256::digest(bytes).to_vec().into(),
                _extra: HashMap::new(),
            },
            custom: HashMap::new(),
            _extra: HashMap::new(),
        };
        editor
            .add_target(name.to_string(), target)
            .map_err(editor_error)?;
    }
    editor
        .targets_version(targets_v)
        .map_err(editor_error)?
        .targets_expires(expiry(now, config.expiry.targets)?)
        .map_err(editor_error)?
        .snapshot_version(snapshot_v)
        .snapshot_expires(expiry(now, config.expiry.snapshot)?)
        .timestamp_version(timestamp_v)
        .timestamp_expires(expiry(now, config.expiry.timestamp)?);
    let signed = editor.sign(&keys.sources()).await.map_err(editor_error)?;
    signed
        .write(stage.path())
        .await
        .map_err(|e| Error::io(stage.path(), std::io::Error::other(error_chain(&e))))?;

    for (name, bytes) in new_targets {
        let rel = format!("targets/{}.{name}", sha256_hex(bytes));
        let in_place = std::fs::read(current.dir.join(&rel)).is_ok_and(|b| b == *bytes);
        if !in_place {
            write_new(&stage.path().join(&rel), bytes)?;
            files.push(rel);
        }
    }
    for rel in [
        format!("{targets_v}.targets.json"),
        format!("{snapshot_v}.snapshot.json"),
        "timestamp.json".to_owned(),
    ] {
        sync_file(&stage.path().join(&rel))?;
        files.push(rel);
    }
    let expected = RoleVersions {
        root: root_version,
        timestamp: timestamp_v.get(),
        snapshot: snapshot_v.get(),
        targets: targets_v.get(),
    };
    verify_and_commit(
        &current,
        stage,
        files,
        expected,
        resigned
            .into_iter()
            .chain([Role::Targets, Role::Snapshot, Role::Timestamp])
            .collect(),
        new_targets,
        now,
        limits,
        fail_before,
    )
    .await
}

/// True when metadata expiring at `expires` should be re-signed at `now`:
/// less than half of `lifetime`, or less than the timestamp's lifetime, left.
fn nears_expiry(
    expires: DateTime<Utc>,
    lifetime: Duration,
    timestamp_lifetime: Duration,
    now: DateTime<Utc>,
) -> bool {
    let margin = (lifetime / 2).max(timestamp_lifetime);
    let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::MAX);
    expires.signed_duration_since(now) < margin
}

async fn refresh_async(
    repo_dir: &Path,
    keys_dir: &Path,
    now: DateTime<Utc>,
    fail_before: Option<&str>,
) -> Result<PublishSummary, Error> {
    let limits = Limits::default();
    let config = PrivateRepoConfig::load(keys_dir)?;
    let _lock = RepoLock::acquire(keys_dir)?;
    resume_interrupted(repo_dir)?;
    let current = load_current(repo_dir, &limits).await?;
    settle_pending(keys_dir, &current.root.signed)?;
    let keys = OnlineKeys::read(keys_dir)?;
    keys.check_against(&current.root.signed)?;
    let Some(loaded) = current.loaded.as_ref() else {
        return Err(Error::Usage(format!(
            "{} has nothing published yet: run `airgate tuf publish` first",
            repo_dir.display()
        )));
    };
    let e = &config.expiry;
    let expires = loaded.expiries();
    if nears_expiry(expires.targets, e.targets, e.timestamp, now) {
        return resign_all(current, &keys, &config, &[], now, &limits, fail_before).await;
    }
    let resign_snapshot = nears_expiry(expires.snapshot, e.snapshot, e.timestamp, now);

    let old = loaded.versions();
    let holder = KeyHolder::Root(current.root.signed.clone());
    let rng = SystemRandom::new();
    let sources = keys.sources();
    let stage = new_stage(&current.dir)?;
    let mut files = Vec::new();
    let mut resigned = Vec::new();
    let mut expected = old;

    let snapshot_meta = if resign_snapshot {
        let version = next_version(old.snapshot)?;
        let previous = &loaded.repo.snapshot().signed;
        let mut snapshot =
            Snapshot::new(SPEC_VERSION.to_owned(), version, expiry(now, e.snapshot)?);
        snapshot.meta = previous.meta.clone();
        snapshot._extra = previous._extra.clone();
        let signed = SignedRole::new(snapshot, &holder, &sources, &rng)
            .await
            .map_err(|e| signing_error(Role::Snapshot, &e))?;
        let rel = format!("{version}.snapshot.json");
        write_new(&stage.path().join(&rel), signed.buffer())?;
        files.push(rel);
        resigned.push(Role::Snapshot);
        expected.snapshot = version.get();
        Metafile {
            length: Some(*signed.length()),
            hashes: Some(Hashes {
                sha256: signed.sha256().to_vec().into(),
                _extra: HashMap::new(),
            }),
            version,
            _extra: HashMap::new(),
        }
    } else {
        loaded
            .repo
            .timestamp()
            .signed
            .meta
            .get("snapshot.json")
            .cloned()
            .ok_or_else(|| Error::malformed("timestamp.json", "it lists no snapshot.json"))?
    };
    let version = next_version(old.timestamp)?;
    let mut timestamp = Timestamp::new(SPEC_VERSION.to_owned(), version, expiry(now, e.timestamp)?);
    timestamp
        .meta
        .insert("snapshot.json".to_owned(), snapshot_meta);
    timestamp._extra = loaded.repo.timestamp().signed._extra.clone();
    let signed = SignedRole::new(timestamp, &holder, &sources, &rng)
        .await
        .map_err(|e| signing_error(Role::Timestamp, &e))?;
    write_new(&stage.path().join("timestamp.json"), signed.buffer())?;
    files.push("timestamp.json".to_owned());
    resigned.push(Role::Timestamp);
    expected.timestamp = version.get();

    verify_and_commit(
        &current,
        stage,
        files,
        expected,
        resigned,
        &[],
        now,
        &limits,
        fail_before,
    )
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn target_names_must_be_flat_and_safe() {
        for ok in ["trusted_root.json", "a-b_c+1.txt", "X"] {
            check_target_name(ok).unwrap();
        }
        for bad in [
            "",
            ".hidden",
            "a/b",
            "../x",
            "a b",
            "a%2fb",
            "ü",
            &"x".repeat(MAX_TARGET_NAME + 1),
        ] {
            assert!(check_target_name(bad).is_err(), "{bad:?} accepted");
        }
        let limits = Limits::default();
        assert!(check_targets(&[("a", b"1"), ("a", b"2")], &limits).is_err());
    }

    #[test]
    fn expiry_is_whole_seconds() {
        let now = t("2026-01-01T00:00:00.75Z");
        let e = expiry(now, Duration::from_secs(86_400)).unwrap();
        assert_eq!(e.subsec_nanosecond(), 0);
        assert_eq!(jiff_to_utc(e), t("2026-01-02T00:00:00Z"));
    }

    #[test]
    fn re_signing_policy() {
        let now = t("2026-01-10T00:00:00Z");
        let day = Duration::from_secs(86_400);
        // Snapshot (7d): re-signed with less than 3.5 days left.
        assert!(!nears_expiry(t("2026-01-14T00:00:00Z"), 7 * day, day, now));
        assert!(nears_expiry(t("2026-01-13T00:00:00Z"), 7 * day, day, now));
        // Never let a role expire before a new timestamp would.
        assert!(nears_expiry(t("2026-01-10T12:00:00Z"), day / 4, day, now));
        assert!(nears_expiry(t("2026-01-01T00:00:00Z"), 7 * day, day, now));
    }

    /// A crash at any point of the commit leaves a repository that loads:
    /// the previous one until `timestamp.json` is renamed, the new one after.
    #[test]
    fn crash_at_every_commit_step_leaves_a_loadable_repository() {
        let repo = tempfile::tempdir().unwrap();
        let keys = tempfile::tempdir().unwrap();
        let keys_dir = keys.path().join("keys");
        let now = t("2026-03-01T00:00:00Z");
        let init =
            init_private(repo.path(), &keys_dir, &PrivateRepoConfig::default(), now).unwrap();
        publish(repo.path(), &keys_dir, &[("trusted_root.json", b"v1")], now).unwrap();
        let steps = [
            "targets/",
            "2.targets.json",
            "2.snapshot.json",
            "timestamp.json",
        ];
        for step in steps {
            let fail = if step == "targets/" {
                format!("targets/{}.trusted_root.json", sha256_hex(b"v2"))
            } else {
                step.to_owned()
            };
            let err = block_on(|| {
                publish_async(
                    repo.path(),
                    &keys_dir,
                    &[("trusted_root.json", b"v2")],
                    now,
                    Some(&fail),
                )
            })
            .unwrap_err();
            assert!(err.to_string().contains(&fail), "{err}");
            let loaded = load_private(repo.path(), &init.root_json, now).unwrap();
            assert_eq!(
                loaded.target("trusted_root.json"),
                Some(&b"v1"[..]),
                "{step}"
            );
            assert_eq!(loaded.versions.timestamp, 1, "{step}");
        }
        // The stage of the failed runs is gone; a retry succeeds.
        let entries: Vec<_> = std::fs::read_dir(repo.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            !entries.iter().any(|n| n.starts_with(STAGE_PREFIX)),
            "{entries:?}"
        );
        let summary =
            publish(repo.path(), &keys_dir, &[("trusted_root.json", b"v2")], now).unwrap();
        assert_eq!(summary.versions.targets, 2);
        let loaded = load_private(repo.path(), &init.root_json, now).unwrap();
        assert_eq!(loaded.target("trusted_root.json"), Some(&b"v2"[..]));

        // Same for refresh: a crash before its timestamp rename changes nothing.
        let err = block_on(|| refresh_async(repo.path(), &keys_dir, now, Some("timestamp.json")))
            .unwrap_err();
        assert!(err.to_string().contains("timestamp.json"), "{err}");
        let loaded = load_private(repo.path(), &init.root_json, now).unwrap();
        assert_eq!(loaded.versions.timestamp, 2);
    }

    /// A stage left behind by a killed run is removed by the next run.
    #[test]
    fn stale_stages_are_cleaned() {
        let repo = tempfile::tempdir().unwrap();
        let keys_dir = repo.path().join("keys");
        let repo_dir = repo.path().join("repo");
        let now = t("2026-03-01T00:00:00Z");
        init_private(&repo_dir, &keys_dir, &PrivateRepoConfig::default(), now).unwrap();
        let stale = repo_dir.join(format!("{STAGE_PREFIX}killed"));
        std::fs::create_dir_all(stale.join("targets")).unwrap();
        std::fs::write(stale.join("timestamp.json"), b"partial").unwrap();
        publish(&repo_dir, &keys_dir, &[], now).unwrap();
        assert!(!stale.exists());
    }
}
