//! The low side: load a repository from a mirror, verify it, and write a
//! self-contained snapshot directory atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tough::{FilesystemTransport, HttpTransportBuilder, Transport};
use url::Url;

use crate::chain::{self, parse_trusted_root};
use crate::fsutil::{parent_dir, sync_dir, write_new};
use crate::policy::check_expiry;
use crate::transport::{is_safe_relative, FileClass, GuardedTransport, Source};
use crate::verify::{load, read_targets, verify_dir};
use crate::{block_on, Error, Limits, Role, RoleExpiries, RoleVersions, TRUSTED_ROOT_TARGET};

/// What [`snapshot`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSummary {
    /// The snapshot directory.
    pub out_dir: PathBuf,
    /// Versions of the top-level roles.
    pub versions: RoleVersions,
    /// Expiry of every role loaded.
    pub expires: RoleExpiries,
    /// Root versions written, from the bootstrap root to the newest.
    pub root_chain: Vec<u64>,
    /// Every file written, relative to `out_dir`, sorted.
    pub files: Vec<String>,
    /// Hex sha256 of the `trusted_root.json` target.
    pub trusted_root_sha256: String,
}

/// Loads the TUF repository at `mirror` (`https`, `http` or `file` URL of
/// the metadata directory; targets under `targets/`) starting from
/// `bootstrap_root`, verifies it completely (root chain, timestamp, snapshot,
/// targets, delegated targets, every role's expiry at `reference_time`, and
/// every top-level target), and writes a snapshot to `out_dir` laid out as
/// the live repository serves it: the root chain from the bootstrap version
/// to the newest, `timestamp.json`, the versioned snapshot and targets
/// metadata, delegated targets metadata, and `targets/<sha256>.<name>`.
///
/// Only verified bytes are written, into a temporary directory next to
/// `out_dir` that is verified again offline and then renamed into place;
/// `out_dir` must not exist or be empty.
///
/// Blocking: do not call from async code (use `spawn_blocking`).
pub fn snapshot(
    mirror: &Url,
    bootstrap_root: &[u8],
    out_dir: &Path,
    reference_time: DateTime<Utc>,
    limits: &Limits,
) -> Result<SnapshotSummary, Error> {
    block_on(|| snapshot_async(mirror, bootstrap_root, out_dir, reference_time, limits))
}

fn directory_url(mirror: &Url) -> Result<Url, Error> {
    if mirror.query().is_some() || mirror.fragment().is_some() {
        return Err(Error::Usage(format!(
            "mirror URL {mirror} must not have a query or fragment"
        )));
    }
    if mirror.as_str().ends_with('/') {
        return Ok(mirror.clone());
    }
    Url::parse(&format!("{mirror}/"))
        .map_err(|e| Error::Usage(format!("bad mirror URL {mirror}: {e}")))
}

fn check_output(out_dir: &Path) -> Result<(), Error> {
    match std::fs::read_dir(out_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(out_dir, e)),
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(Error::Usage(format!(
                "{} exists and is not empty; give a new directory",
                out_dir.display()
            ))),
        },
    }
}

async fn snapshot_async(
    mirror: &Url,
    bootstrap_root: &[u8],
    out_dir: &Path,
    reference_time: DateTime<Utc>,
    limits: &Limits,
) -> Result<SnapshotSummary, Error> {
    let base = directory_url(mirror)?;
    let inner: Box<dyn Transport + Send + Sync> = match base.scheme() {
        "file" => Box::new(FilesystemTransport),
        "http" | "https" => Box::new(HttpTransportBuilder::new().build()),
        other => {
            return Err(Error::Usage(format!(
                "unsupported mirror URL scheme {other:?}: use https, http or file"
            )))
        }
    };
    check_output(out_dir)?;
    let trusted = parse_trusted_root(bootstrap_root, "bootstrap root")?;
    let transport = GuardedTransport::new(inner, base, *limits, Source::Mirror);
    let chain = chain::walk(&transport, trusted, bootstrap_root, limits).await?;
    let loaded = load(transport, chain, limits).await?;
    let versions = loaded.versions();
    let expires = loaded.expiries();
    check_expiry(&expires, reference_time)?;
    let targets = read_targets(&loaded, None, limits).await?;
    let trusted_root = targets
        .iter()
        .find(|t| t.name == TRUSTED_ROOT_TARGET)
        .ok_or_else(|| Error::Missing {
            what: format!("target {TRUSTED_ROOT_TARGET} (not listed by the targets role)"),
        })?;

    // Everything below was verified: the root chain by the walk, the
    // metadata tough fetched during a load that succeeded, the targets by
    // length and hash.
    let mut files: BTreeMap<String, &[u8]> = BTreeMap::new();
    for (version, bytes) in &loaded.chain.roots {
        files.insert(format!("{version}.root.json"), bytes);
    }
    let recorded = loaded.transport.recorded_files();
    for (rel, bytes) in &recorded {
        match FileClass::of(rel) {
            FileClass::Timestamp | FileClass::Snapshot | FileClass::TargetsMetadata => {
                files.insert(rel.clone(), bytes);
            }
            FileClass::Root | FileClass::Target => {}
        }
    }
    for target in &targets {
        files.insert(target.path.clone(), &target.bytes);
    }

    let parent = parent_dir(out_dir);
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".airgate-tuf-snapshot-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    for (rel, bytes) in &files {
        if !is_safe_relative(rel) {
            return Err(Error::malformed(
                rel.as_str(),
                "unsafe file name in the repository",
            ));
        }
        write_new(&tmp.path().join(rel), bytes)?;
    }
    if let Ok(targets_dir) = std::fs::File::open(tmp.path().join("targets")) {
        let _ = targets_dir.sync_all();
    }
    sync_dir(tmp.path());

    // The snapshot as written must verify offline like the mirror did.
    let check = verify_dir(bootstrap_root, tmp.path(), reference_time, None, limits).await?;
    if check.versions != versions || check.trusted_root_json != trusted_root.bytes {
        return Err(Error::Verification {
            role: Role::Snapshot,
            detail: "the written snapshot does not verify like the mirror did".to_owned(),
        });
    }

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(tmp.path(), e))?;
    }
    check_output(out_dir)?;
    let kept = tmp.keep();
    if let Err(e) = std::fs::rename(&kept, out_dir) {
        let _ = std::fs::remove_dir_all(&kept);
        return Err(Error::io(out_dir, e));
    }
    sync_dir(parent);

    Ok(SnapshotSummary {
        out_dir: out_dir.to_owned(),
        versions,
        expires,
        root_chain: loaded.chain.roots.iter().map(|(v, _)| *v).collect(),
        files: files.keys().cloned().collect(),
        trusted_root_sha256: trusted_root.sha256.clone(),
    })
}
