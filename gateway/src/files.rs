//! File I/O at the edge: size-limited reads, streaming hashes, atomic writes.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::bundle::{ArtifactDigest, TrustedRoot, MAX_TRUSTED_ROOT_BYTES, PRODUCTION_TRUSTED_ROOT};
use crate::crypto::VerifyingKey;
use crate::policy::{Policy, MAX_POLICY_BYTES};
use crate::{Error, Result};

/// Reads a whole file, refusing files larger than `limit` bytes.
pub fn read_limited(path: &Path, limit: usize) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut data = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::io(path, e))?;
    if data.len() > limit {
        return Err(Error::Usage(format!(
            "{}: file is larger than the {limit}-byte limit",
            path.display()
        )));
    }
    Ok(data)
}

/// Hashes a file with SHA-256 in constant memory.
pub fn hash_file(path: &Path) -> Result<ArtifactDigest> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    ArtifactDigest::of_reader(file).map_err(|e| Error::io(path, e))
}

/// Loads a trusted root from a file, or the embedded production root.
pub fn load_trusted_root(path: Option<&Path>) -> Result<TrustedRoot> {
    match path {
        Some(path) => {
            let bytes = read_limited(path, MAX_TRUSTED_ROOT_BYTES)?;
            TrustedRoot::from_json(&bytes).map_err(|source| Error::TrustRoot {
                location: path.display().to_string(),
                source,
            })
        }
        None => {
            TrustedRoot::from_json(PRODUCTION_TRUSTED_ROOT).map_err(|source| Error::TrustRoot {
                location: "(embedded production root)".into(),
                source,
            })
        }
    }
}

/// Writes `data` to `path` atomically: a temporary file in the same directory,
/// fsynced, then renamed over the target.
pub fn write_atomic(path: &Path, data: &[u8], mode: Option<u32>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".airgate-tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(tmp.path(), e))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.write_all(data).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Loads the public keys a policy references.
pub fn load_policy_keys(policy: &Policy) -> Result<BTreeMap<PathBuf, VerifyingKey>> {
    let mut keys = BTreeMap::new();
    for path in policy.key_paths() {
        let pem = read_limited(path, 1 << 20)?;
        let key = VerifyingKey::from_pem(&String::from_utf8_lossy(&pem))
            .map_err(|e| Error::Usage(format!("policy key {}: {e}", path.display())))?;
        keys.insert(path.to_path_buf(), key);
    }
    Ok(keys)
}

/// Reads and parses a policy file.
pub fn load_policy(path: &Path) -> Result<(Policy, Vec<u8>)> {
    let bytes = read_limited(path, MAX_POLICY_BYTES)?;
    let text = String::from_utf8(bytes.clone())
        .map_err(|_| Error::Usage(format!("{}: not UTF-8", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let policy =
        Policy::parse(&text, base).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    Ok((policy, bytes))
}
