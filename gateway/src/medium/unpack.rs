//! Reading a medium as one stream, authenticating it before anything is
//! staged: the first entry must be the signed manifest, which is verified
//! against the enrolled exporters before another byte is read; every later
//! entry must be the next one the manifest lists (name and size checked from
//! its header, digest while it is read). Entries are staged under numbered
//! names inside the staging directory, never under their own names.
//!
//! Memory before authentication is the manifest (at most
//! [`MAX_MANIFEST_BYTES`]) plus the tar reader's buffer, whatever the medium.

use std::collections::HashSet;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::escape::{quoted, quoted_bytes};
use crate::judge::medium::{check_all_arrived, check_entry_digest, check_entry_header};
use crate::judge::ImportRejected;
use crate::medium::manifest::{
    verify_manifest, EnrolledExporter, EntryKind, ManifestEntry, VerifiedManifest, MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
};
use crate::medium::pack::{copy_hashing, BLOCK};
use crate::medium::{EntryName, NameError};
use crate::{Error, Result};

/// Most zero bytes accepted after the end-of-archive marker (GNU tar pads
/// archives to 10 KiB records; airgate writes none).
const MAX_TRAILING_ZEROS: u64 = 64 << 10;

/// Explicit limits on what a medium may contain (checked against the
/// authenticated manifest before anything is staged, and while reading).
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
    /// Largest total of the entries kept in memory.
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
    #[error("medium is truncated or corrupt{}: {detail}", .after.as_ref().map(|n| format!(" after entry {n}")).unwrap_or_default())]
    Truncated {
        /// The last entry read completely (quoted).
        after: Option<String>,
        /// Detail.
        detail: String,
    },
    /// A link, device, directory or other non-regular entry.
    #[error("medium entry {name} is a {kind}, not a regular file; links, devices and directories are refused")]
    NotRegularFile {
        /// Entry name (quoted).
        name: String,
        /// Its type.
        kind: String,
    },
    /// A PAX extended header (airgate writes none; one could change a size or a name).
    #[error("medium entry {0} carries a PAX extended header, which airgate media never have (it could change the entry's size or name)")]
    Pax(String),
    /// An unsafe name.
    #[error("medium entry {name} has an unsafe name: {error}")]
    UnsafeName {
        /// The raw name (quoted).
        name: String,
        /// Why.
        error: NameError,
    },
    /// A name outside the medium layout.
    #[error("medium entry {0} is not part of the medium layout (artifacts/, bundles/, tuf/, collectors/, airgate.lock, policy.toml)")]
    UnknownEntry(String),
    /// The same name twice.
    #[error("medium entry {0} appears twice")]
    Duplicate(String),
    /// Over a size limit.
    #[error("medium entry {name} is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Entry name (quoted).
        name: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Too many entries or bytes in total.
    #[error("medium exceeds the limit of {0}")]
    TooBig(String),
    /// The first entry is not the manifest.
    #[error("the first entry is {0}, not {MANIFEST_NAME}: not an airgate medium (or one of the earlier format, manifest last: re-export it)")]
    ManifestNotFirst(String),
    /// No entry at all.
    #[error("medium is empty: no {MANIFEST_NAME}")]
    Empty,
    /// Bytes after the end of the archive.
    #[error("medium has data after its end-of-archive marker")]
    TrailingData,
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

/// One entry read from the medium, its bytes matching the manifest.
#[derive(Debug)]
pub struct StagedEntry {
    /// Its validated name.
    pub name: EntryName,
    /// Its kind, from its name.
    pub kind: EntryKind,
    /// SHA-256 of its content (equal to the manifest's).
    pub sha256: [u8; 32],
    /// Its size.
    pub size: u64,
    /// Its bytes.
    pub data: StagedData,
}

/// A medium read completely and authenticated.
#[derive(Debug)]
pub struct UnpackedMedium {
    /// The verified manifest.
    pub manifest: VerifiedManifest,
    /// Entries in manifest order.
    pub entries: Vec<StagedEntry>,
}

/// What to do once the manifest is authenticated.
#[derive(Debug)]
pub enum Proceed {
    /// Stage the entries in this (empty, existing) directory.
    Stage(PathBuf),
    /// Stop reading (e.g. the medium was imported already).
    Stop,
}

fn rejected(e: impl Into<ImportRejected>) -> Error {
    Error::ImportRejected(Box::new(e.into()))
}

fn entry_type_name(t: tar::EntryType) -> String {
    match t {
        tar::EntryType::Symlink => "symbolic link".into(),
        tar::EntryType::Link => "hard link".into(),
        tar::EntryType::Char => "character device".into(),
        tar::EntryType::Block => "block device".into(),
        tar::EntryType::Directory => "directory".into(),
        tar::EntryType::Fifo => "FIFO".into(),
        tar::EntryType::XGlobalHeader => "PAX global header".into(),
        tar::EntryType::GNUSparse => "GNU sparse file".into(),
        other => format!("{other:?} entry"),
    }
}

/// Reads the first entry, which must be the manifest, within its size limit.
fn manifest_bytes<R: Read>(
    first: &mut tar::Entry<'_, R>,
    names: &mut HashSet<String>,
) -> Result<Vec<u8>> {
    let truncated = |e: std::io::Error| {
        rejected(MediumError::Truncated {
            after: None,
            detail: quoted(&e.to_string()),
        })
    };
    let (name, size) = checked_header(first, names, None)?;
    if name.as_str() != MANIFEST_NAME {
        return Err(rejected(MediumError::ManifestNotFirst(quoted(
            name.as_str(),
        ))));
    }
    if size > MAX_MANIFEST_BYTES as u64 {
        return Err(rejected(MediumError::TooLarge {
            name: quoted(MANIFEST_NAME),
            size,
            limit: MAX_MANIFEST_BYTES as u64,
        }));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    first
        .take(size)
        .read_to_end(&mut bytes)
        .map_err(truncated)?;
    if bytes.len() as u64 != size {
        return Err(rejected(MediumError::Truncated {
            after: None,
            detail: "the manifest is cut short".into(),
        }));
    }
    Ok(bytes)
}

/// Reads only the manifest of a medium (the first entry), for `airgate inspect`:
/// nothing else is read and nothing is staged.
pub fn read_manifest(reader: impl Read) -> Result<Vec<u8>> {
    let mut archive = tar::Archive::new(reader);
    let mut iter = archive.entries().map_err(|e| {
        rejected(MediumError::Truncated {
            after: None,
            detail: quoted(&e.to_string()),
        })
    })?;
    let mut first = iter
        .next()
        .ok_or_else(|| rejected(MediumError::Empty))?
        .map_err(|e| {
            rejected(MediumError::Truncated {
                after: None,
                detail: quoted(&e.to_string()),
            })
        })?;
    manifest_bytes(&mut first, &mut HashSet::new())
}

/// Reads a medium from `reader`. The manifest (first entry) is verified
/// against `exporters`; then `decide` sees it and says where to stage, or to
/// stop. Returns `None` when `decide` stopped.
pub fn unpack(
    reader: impl Read,
    exporters: &[EnrolledExporter],
    limits: &UnpackLimits,
    decide: &mut dyn FnMut(&VerifiedManifest) -> Result<Proceed>,
) -> Result<Option<UnpackedMedium>> {
    let mut archive = tar::Archive::new(reader);
    let truncated = |after: Option<&str>, e: std::io::Error| {
        rejected(MediumError::Truncated {
            after: after.map(quoted),
            detail: quoted(&e.to_string()),
        })
    };
    let mut iter = archive.entries().map_err(|e| truncated(None, e))?;
    let mut names = HashSet::new();

    // 1. The manifest, authenticated before anything else is read.
    let mut first = iter
        .next()
        .ok_or_else(|| rejected(MediumError::Empty))?
        .map_err(|e| truncated(None, e))?;
    let bytes = manifest_bytes(&mut first, &mut names)?;
    drop(first);
    let manifest = verify_manifest(&bytes, exporters).map_err(rejected)?;
    drop(bytes);
    check_limits(&manifest.predicate.entries, limits)?;
    let staging = match decide(&manifest)? {
        Proceed::Stop => return Ok(None),
        Proceed::Stage(dir) => dir,
    };

    // 2. Every entry the manifest lists, in its order.
    let listed: HashSet<&str> = manifest
        .predicate
        .entries
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    let mut entries: Vec<StagedEntry> = Vec::new();
    let mut stager = Stager::new(&staging);
    for item in iter.by_ref() {
        let after = entries.last().map(|e| e.name.as_str().to_string());
        let mut entry = item.map_err(|e| truncated(after.as_deref(), e))?;
        let (name, size) = checked_header(&mut entry, &mut names, after.as_deref())?;
        let expected = manifest.predicate.entries.get(entries.len());
        check_entry_header(expected, &|n| listed.contains(n), name.as_str(), size)
            .map_err(rejected)?;
        let Some(expected) = expected else {
            return Err(rejected(MediumError::TooBig(
                "the manifest's entries".into(),
            )));
        };
        let (sha256, data) =
            stager
                .stage(&mut entry, expected, entries.len())
                .map_err(|e| match e {
                    StageError::Read(e) => truncated(after.as_deref(), e),
                    StageError::Write(path, source) => rejected(MediumError::Io { path, source }),
                })?;
        check_entry_digest(expected, &sha256).map_err(rejected)?;
        entries.push(StagedEntry {
            name,
            kind: expected.kind,
            sha256,
            size,
            data,
        });
    }
    check_all_arrived(&manifest.predicate.entries, entries.len()).map_err(rejected)?;
    check_trailing(archive.into_inner())?;
    Ok(Some(UnpackedMedium { manifest, entries }))
}

/// Checks one tar header: a regular file without PAX headers, a safe name
/// seen once; returns the name and size.
fn checked_header<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    names: &mut HashSet<String>,
    after: Option<&str>,
) -> Result<(EntryName, u64)> {
    let raw = entry.path_bytes().into_owned();
    let entry_type = entry.header().entry_type();
    if !entry_type.is_file() {
        return Err(rejected(MediumError::NotRegularFile {
            name: quoted_bytes(&raw),
            kind: entry_type_name(entry_type),
        }));
    }
    let pax = entry.pax_extensions().map_err(|e| {
        rejected(MediumError::Truncated {
            after: after.map(quoted),
            detail: quoted(&e.to_string()),
        })
    })?;
    if pax.is_some() {
        return Err(rejected(MediumError::Pax(quoted_bytes(&raw))));
    }
    let header_size = entry.header().size().map_err(|e| {
        rejected(MediumError::Truncated {
            after: after.map(quoted),
            detail: quoted(&e.to_string()),
        })
    })?;
    if header_size != entry.size() {
        return Err(rejected(MediumError::Pax(quoted_bytes(&raw))));
    }
    let text = std::str::from_utf8(&raw).map_err(|_| {
        rejected(MediumError::UnsafeName {
            name: quoted_bytes(&raw),
            error: NameError::BadCharacter('\u{FFFD}'),
        })
    })?;
    let name = EntryName::parse(text).map_err(|error| {
        rejected(MediumError::UnsafeName {
            name: quoted(text),
            error,
        })
    })?;
    if name.as_str() != MANIFEST_NAME && EntryKind::for_name(&name).is_none() {
        return Err(rejected(MediumError::UnknownEntry(quoted(text))));
    }
    if !names.insert(name.as_str().to_string()) {
        return Err(rejected(MediumError::Duplicate(quoted(text))));
    }
    Ok((name, header_size))
}

/// The authenticated manifest's entries within the importer's limits.
fn check_limits(entries: &[ManifestEntry], limits: &UnpackLimits) -> Result<()> {
    if entries.len() > limits.max_entries {
        return Err(rejected(MediumError::TooBig(format!(
            "{} entries",
            limits.max_entries
        ))));
    }
    let (mut total, mut memory) = (0u64, 0u64);
    for e in entries {
        let big = is_big(e.kind);
        let limit = if big {
            limits.max_entry_bytes
        } else {
            limits.max_small_entry_bytes
        };
        if e.size > limit {
            return Err(rejected(MediumError::TooLarge {
                name: quoted(&e.name),
                size: e.size,
                limit,
            }));
        }
        total = total.saturating_add(e.size);
        if !big {
            memory = memory.saturating_add(e.size);
        }
    }
    if total > limits.max_total_bytes {
        return Err(rejected(MediumError::TooBig(format!(
            "{} bytes in total; raise [import] max-medium-size in the high-side policy if this medium is expected",
            limits.max_total_bytes
        ))));
    }
    if memory > limits.max_memory_bytes {
        return Err(rejected(MediumError::TooBig(format!(
            "{} bytes of bundles, TUF metadata and other in-memory entries; raise [import] max-metadata-size in the high-side policy if this medium is expected",
            limits.max_memory_bytes
        ))));
    }
    Ok(())
}

fn is_big(kind: EntryKind) -> bool {
    matches!(
        kind,
        EntryKind::Artifact | EntryKind::Collector | EntryKind::Image
    )
}

/// After the end-of-archive marker: zeros only, and few of them.
fn check_trailing(mut rest: impl Read) -> Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut seen = 0u64;
    loop {
        let n = match rest.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(rejected(MediumError::Truncated {
                    after: None,
                    detail: quoted(&e.to_string()),
                }))
            }
        };
        seen += n as u64;
        if seen > MAX_TRAILING_ZEROS || buf[..n].iter().any(|b| *b != 0) {
            return Err(rejected(MediumError::TrailingData));
        }
    }
}

enum StageError {
    Read(std::io::Error),
    Write(PathBuf, std::io::Error),
}

/// Writes artifacts and collectors to numbered files in sharded directories
/// (at most 256 per directory); keeps small entries in memory.
struct Stager<'a> {
    dir: &'a Path,
    created_shard: Option<usize>,
}

impl<'a> Stager<'a> {
    fn new(dir: &'a Path) -> Self {
        Stager {
            dir,
            created_shard: None,
        }
    }

    fn stage(
        &mut self,
        entry: &mut dyn Read,
        expected: &ManifestEntry,
        index: usize,
    ) -> std::result::Result<([u8; 32], StagedData), StageError> {
        let size = expected.size;
        if !is_big(expected.kind) {
            let mut bytes = Vec::with_capacity(size as usize);
            let digest = copy_hashing(entry, &mut bytes, size).map_err(StageError::Read)?;
            return Ok((digest, StagedData::Memory(bytes)));
        }
        let shard_number = index / 256;
        let shard = self.dir.join(format!("{shard_number:05}"));
        if self.created_shard != Some(shard_number) {
            std::fs::create_dir_all(&shard).map_err(|e| StageError::Write(shard.clone(), e))?;
            self.created_shard = Some(shard_number);
        }
        let path = shard.join(format!("entry-{index:07}"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StageError::Write(path.clone(), e))?;
        let mut out = BufWriter::with_capacity(BLOCK, file);
        let digest = copy_hashing(entry, &mut out, size).map_err(|e| {
            if matches!(
                e.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) {
                StageError::Read(e)
            } else {
                StageError::Write(path.clone(), e)
            }
        })?;
        out.flush()
            .map_err(|e| StageError::Write(path.clone(), e))?;
        Ok((digest, StagedData::File(path)))
    }
}

#[cfg(test)]
mod tests;
