//! File I/O at the edge: size-limited reads, streaming hashes, atomic writes.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use crate::bundle::{ArtifactDigest, TrustedRoot, MAX_TRUSTED_ROOT_BYTES, PRODUCTION_TRUSTED_ROOT};
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
