//! Reading a medium as a stream: every entry is checked (type, name, size,
//! duplicates, order) and staged, hashed while written. Entries are staged
//! under numbered names inside the staging directory, never under their own
//! names, so nothing can be written outside it.

use std::collections::BTreeSet;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::medium::manifest::{EntryKind, MANIFEST_NAME, MAX_MANIFEST_BYTES};
use crate::medium::pack::{copy_hashing, BLOCK};
use crate::medium::{EntryName, NameError};

/// Explicit limits on what a medium may contain.
#[derive(Debug, Clone, Copy)]
pub struct UnpackLimits {
    /// Most entries.
    pub max_entries: usize,
    /// Largest single entry.
    pub max_entry_bytes: u64,
    /// Largest total content.
    pub max_total_bytes: u64,
    /// Largest entry kept in memory (bundles, TUF files, lock, policy).
    pub max_small_entry_bytes: u64,
    /// Largest total of the entries kept in memory. Everything is read
    /// before the manifest (the last entry) authenticates it, so this bounds
    /// what an unauthenticated medium can make the importer hold.
    pub max_memory_bytes: u64,
}

impl Default for UnpackLimits {
    /// 1 M entries, 64 GiB per entry, 1 TiB in all; in-memory entries
    /// 64 MiB each and 512 MiB in all.
    fn default() -> Self {
        UnpackLimits {
            max_entries: 1_000_000,
            max_entry_bytes: 64 << 30,
            max_total_bytes: 1 << 40,
            max_small_entry_bytes: 64 << 20,
            max_memory_bytes: 512 << 20,
        }
    }
}

/// Why a medium was refused while reading it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediumError {
    /// The tar ends early or is corrupt.
    #[error("medium is truncated or corrupt{}: {detail}", .after.as_ref().map(|n| format!(" after entry {n:?}")).unwrap_or_default())]
    Truncated {
        /// The last entry read completely.
        after: Option<String>,
        /// Detail.
        detail: String,
    },
    /// A link, device, directory or other non-regular entry.
    #[error("medium entry {name:?} is a {kind}, not a regular file; links, devices and directories are refused")]
    NotRegularFile {
        /// Entry name.
        name: String,
        /// Its type.
        kind: String,
    },
    /// An unsafe name.
    #[error("medium entry {name:?} has an unsafe name: {error}")]
    UnsafeName {
        /// The raw name.
        name: String,
        /// Why.
        error: NameError,
    },
    /// A name outside the medium layout.
    #[error("medium entry {0:?} is not part of the medium layout (artifacts/, bundles/, tuf/, collectors/, airgate.lock, policy.toml)")]
    UnknownEntry(String),
    /// The same name twice.
    #[error("medium entry {0:?} appears twice")]
    Duplicate(String),
    /// Over a size limit.
    #[error("medium entry {name:?} is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Entry name.
        name: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Too many entries or bytes in total.
    #[error("medium exceeds the limit of {0}")]
    TooBig(String),
    /// No manifest.
    #[error("medium has no {MANIFEST_NAME} (truncated, or not an airgate medium)")]
    NoManifest,
    /// Something after the manifest.
    #[error("medium entry {0:?} follows the manifest, which must be last")]
    AfterManifest(String),
    /// A local I/O error while staging.
    #[error("staging {path}: {source}")]
    Io {
        /// The staging path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Where a staged entry's bytes are.
#[derive(Debug)]
pub enum StagedData {
    /// Kept in memory (small entries).
    Memory(Vec<u8>),
    /// Written to a staging file (artifacts and collectors).
    File(PathBuf),
}

/// One entry read from the medium.
#[derive(Debug)]
pub struct StagedEntry {
    /// Its validated name.
    pub name: EntryName,
    /// Its kind, from its name.
    pub kind: EntryKind,
    /// SHA-256 of its content.
    pub sha256: [u8; 32],
    /// Its size.
    pub size: u64,
    /// Its bytes.
    pub data: StagedData,
}

/// A fully read medium.
#[derive(Debug)]
pub struct UnpackedMedium {
    /// Entries in medium order (without the manifest).
    pub entries: Vec<StagedEntry>,
    /// The manifest bytes.
    pub manifest: Vec<u8>,
}

fn entry_type_name(t: tar::EntryType) -> String {
    match t {
        tar::EntryType::Symlink => "symbolic link".into(),
        tar::EntryType::Link => "hard link".into(),
        tar::EntryType::Char => "character device".into(),
        tar::EntryType::Block => "block device".into(),
        tar::EntryType::Directory => "directory".into(),
        tar::EntryType::Fifo => "FIFO".into(),
        other => format!("{other:?} entry"),
    }
}

/// Reads a medium from `reader`, staging large entries in `staging_dir`.
pub fn unpack(
    reader: impl Read,
    staging_dir: &Path,
    limits: &UnpackLimits,
) -> Result<UnpackedMedium, MediumError> {
    let mut archive = tar::Archive::new(reader);
    let mut entries = Vec::new();
    let mut names = BTreeSet::new();
    let mut total = 0u64;
    let mut in_memory = 0u64;
    let mut manifest: Option<Vec<u8>> = None;
    let mut last_name: Option<String> = None;
    let mut created_shard: Option<usize> = None;
    let truncated = |after: &Option<String>, e: std::io::Error| MediumError::Truncated {
        after: after.clone(),
        detail: e.to_string(),
    };
    let iter = archive.entries().map_err(|e| truncated(&None, e))?;
    for item in iter {
        let mut entry = item.map_err(|e| truncated(&last_name, e))?;
        let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let entry_type = entry.header().entry_type();
        if !entry_type.is_file() {
            return Err(MediumError::NotRegularFile {
                name: raw_name,
                kind: entry_type_name(entry_type),
            });
        }
        if let Some(done) = &manifest {
            let _ = done;
            return Err(MediumError::AfterManifest(raw_name));
        }
        let name = EntryName::parse(&raw_name).map_err(|error| MediumError::UnsafeName {
            name: raw_name.clone(),
            error,
        })?;
        if !names.insert(name.clone()) {
            return Err(MediumError::Duplicate(raw_name));
        }
        if names.len() > limits.max_entries {
            return Err(MediumError::TooBig(format!(
                "{} entries",
                limits.max_entries
            )));
        }
        let size = entry
            .header()
            .size()
            .map_err(|e| truncated(&last_name, e))?;
        total = total.saturating_add(size);
        if total > limits.max_total_bytes {
            return Err(MediumError::TooBig(format!(
                "{} bytes in total (at {raw_name:?}); raise [import] max-medium-size in the high-side policy if this medium is expected",
                limits.max_total_bytes
            )));
        }
        if name.as_str() == MANIFEST_NAME {
            if size > MAX_MANIFEST_BYTES as u64 {
                return Err(MediumError::TooLarge {
                    name: raw_name,
                    size,
                    limit: MAX_MANIFEST_BYTES as u64,
                });
            }
            let mut bytes = Vec::with_capacity(size as usize);
            (&mut entry)
                .take(size)
                .read_to_end(&mut bytes)
                .map_err(|e| truncated(&last_name, e))?;
            if bytes.len() as u64 != size {
                return Err(MediumError::Truncated {
                    after: last_name,
                    detail: "manifest cut short".into(),
                });
            }
            manifest = Some(bytes);
            last_name = Some(raw_name);
            continue;
        }
        let kind = EntryKind::for_name(&name)
            .ok_or_else(|| MediumError::UnknownEntry(raw_name.clone()))?;
        let big = matches!(kind, EntryKind::Artifact | EntryKind::Collector);
        let limit = if big {
            limits.max_entry_bytes
        } else {
            limits.max_small_entry_bytes
        };
        if size > limit {
            return Err(MediumError::TooLarge {
                name: raw_name,
                size,
                limit,
            });
        }
        if !big {
            in_memory = in_memory.saturating_add(size);
            if in_memory > limits.max_memory_bytes {
                return Err(MediumError::TooBig(format!(
                    "{} bytes of bundles, TUF metadata and other in-memory entries (at {raw_name:?}); raise [import] max-metadata-size in the high-side policy if this medium is expected",
                    limits.max_memory_bytes
                )));
            }
        }
        let (sha256, data) = if big {
            // At most 256 files per directory: directory lookups stay cheap even on
            // filesystems without hashed directory indexes.
            let shard_number = entries.len() / 256;
            let shard = staging_dir.join(format!("{shard_number:05}"));
            if created_shard != Some(shard_number) {
                std::fs::create_dir_all(&shard).map_err(|e| MediumError::Io {
                    path: shard.clone(),
                    source: e,
                })?;
                created_shard = Some(shard_number);
            }
            let path = shard.join(format!("entry-{:07}", entries.len()));
            let io = |e: std::io::Error| MediumError::Io {
                path: path.clone(),
                source: e,
            };
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io)?;
            let mut out = BufWriter::with_capacity(BLOCK, file);
            let digest = copy_hashing(&mut entry, &mut out, size).map_err(|e| {
                if e.kind() == std::io::ErrorKind::InvalidData
                    || e.kind() == std::io::ErrorKind::UnexpectedEof
                {
                    truncated(&last_name, e)
                } else {
                    MediumError::Io {
                        path: path.clone(),
                        source: e,
                    }
                }
            })?;
            out.flush().map_err(io)?;
            (digest, StagedData::File(path))
        } else {
            let mut bytes = Vec::with_capacity(size as usize);
            let digest =
                copy_hashing(&mut entry, &mut bytes, size).map_err(|e| truncated(&last_name, e))?;
            (digest, StagedData::Memory(bytes))
        };
        entries.push(StagedEntry {
            name,
            kind,
            sha256,
            size,
            data,
        });
        last_name = Some(raw_name);
    }
    let manifest = manifest.ok_or(MediumError::NoManifest)?;
    Ok(UnpackedMedium { entries, manifest })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::medium::pack::MediumWriter;

    fn medium(extra: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut w = MediumWriter::new(Vec::new());
        w.add_bytes(
            &EntryName::parse("artifacts/a.txt").unwrap(),
            EntryKind::Artifact,
            b"hello",
        )
        .unwrap();
        let (mut bytes, _) = w.finish(b"{}").unwrap();
        // Drop the end-of-archive marker, append extra entries, re-terminate.
        bytes.truncate(bytes.len() - 1024);
        let mut b = tar::Builder::new(bytes);
        extra(&mut b);
        b.into_inner().unwrap()
    }

    fn raw_header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        {
            let gnu = h.as_gnu_mut().unwrap();
            let n = name.as_bytes();
            gnu.name[..n.len()].copy_from_slice(n);
        }
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    #[test]
    fn a_valid_medium_unpacks() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = medium(|_| {});
        let m = unpack(&bytes[..], dir.path(), &UnpackLimits::default()).unwrap();
        assert_eq!(m.entries.len(), 1);
        assert_eq!(m.manifest, b"{}");
    }

    #[test]
    fn symlink_and_hardlink_entries_are_refused() {
        for kind in [
            tar::EntryType::Symlink,
            tar::EntryType::Link,
            tar::EntryType::Char,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut w = tar::Builder::new(Vec::new());
            let mut h = raw_header("artifacts/link", kind, 0);
            h.set_link_name("/etc/passwd").unwrap();
            h.set_cksum();
            w.append(&h, &[][..]).unwrap();
            let bytes = w.into_inner().unwrap();
            assert!(matches!(
                unpack(&bytes[..], dir.path(), &UnpackLimits::default()),
                Err(MediumError::NotRegularFile { .. })
            ));
        }
    }

    #[test]
    fn path_traversal_names_are_refused() {
        for name in ["../escape", "/abs/path", "artifacts/../../x"] {
            let dir = tempfile::tempdir().unwrap();
            let mut w = tar::Builder::new(Vec::new());
            let h = raw_header(name, tar::EntryType::Regular, 1);
            w.append(&h, &b"x"[..]).unwrap();
            let bytes = w.into_inner().unwrap();
            assert!(
                matches!(
                    unpack(&bytes[..], dir.path(), &UnpackLimits::default()),
                    Err(MediumError::UnsafeName { .. })
                ),
                "{name}"
            );
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }

    #[test]
    fn entries_after_the_manifest_and_duplicates_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = medium(|b| {
            let h = raw_header("artifacts/late", tar::EntryType::Regular, 1);
            b.append(&h, &b"x"[..]).unwrap();
        });
        assert!(matches!(
            unpack(&bytes[..], dir.path(), &UnpackLimits::default()),
            Err(MediumError::AfterManifest(_))
        ));
        let mut w = tar::Builder::new(Vec::new());
        for _ in 0..2 {
            let h = raw_header("artifacts/a", tar::EntryType::Regular, 1);
            w.append(&h, &b"x"[..]).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            unpack(&bytes[..], dir.path(), &UnpackLimits::default()),
            Err(MediumError::Duplicate(_))
        ));
    }

    #[test]
    fn truncated_media_are_refused_at_every_cut() {
        let bytes = medium(|_| {});
        for cut in (0..bytes.len() - 1024).step_by(97) {
            let dir = tempfile::tempdir().unwrap();
            let r = unpack(&bytes[..cut], dir.path(), &UnpackLimits::default());
            assert!(
                matches!(
                    r,
                    Err(MediumError::Truncated { .. } | MediumError::NoManifest)
                ),
                "cut {cut}: {r:?}"
            );
        }
    }

    #[test]
    fn oversized_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = medium(|_| {});
        let limits = UnpackLimits {
            max_entry_bytes: 4,
            ..UnpackLimits::default()
        };
        assert!(matches!(
            unpack(&bytes[..], dir.path(), &limits),
            Err(MediumError::TooLarge { .. })
        ));
    }

    #[test]
    fn unknown_top_level_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = tar::Builder::new(Vec::new());
        let h = raw_header("etc/cron.d/evil", tar::EntryType::Regular, 1);
        w.append(&h, &b"x"[..]).unwrap();
        let bytes = w.into_inner().unwrap();
        assert!(matches!(
            unpack(&bytes[..], dir.path(), &UnpackLimits::default()),
            Err(MediumError::UnknownEntry(_))
        ));
    }

    #[test]
    fn medium_over_the_in_memory_limit_is_refused_while_reading() {
        let mut b = tar::Builder::new(Vec::new());
        for i in 0..4 {
            let data = vec![b'x'; 3000];
            let h = raw_header(
                &format!("bundles/a{i}.txt.sigstore.json"),
                tar::EntryType::Regular,
                data.len() as u64,
            );
            b.append(&h, &data[..]).unwrap();
        }
        let bytes = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let limits = UnpackLimits {
            max_memory_bytes: 8000,
            ..UnpackLimits::default()
        };
        match unpack(&bytes[..], dir.path(), &limits) {
            Err(MediumError::TooBig(what)) => {
                assert!(what.contains("in-memory"), "{what}");
                assert!(what.contains("bundles/a2.txt.sigstore.json"), "{what}");
            }
            other => panic!("expected TooBig, got {other:?}"),
        }
        // The same entries within the limit are read (the medium then fails
        // on its missing manifest).
        let limits = UnpackLimits {
            max_memory_bytes: 20_000,
            ..UnpackLimits::default()
        };
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            unpack(&bytes[..], dir.path(), &limits),
            Err(MediumError::NoManifest)
        ));
    }
}
