//! Writing a medium: a byte-for-byte reproducible tar (fixed mtime, uid, gid,
//! modes, no user or host names) streamed through SHA-256 once, with hashing
//! overlapped with I/O on a second core for large entries.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use sha2::{Digest as _, Sha256};

use crate::medium::manifest::{EntryKind, ManifestEntry, MANIFEST_NAME};
use crate::medium::EntryName;

/// I/O block size for streaming entries.
pub const BLOCK: usize = 1 << 20;
/// Entries at least this large hash on a second thread.
const PIPELINE_THRESHOLD: u64 = 4 << 20;

/// Streams `size` bytes from `reader` to `writer`, returning their SHA-256.
/// Fails if the reader yields fewer or more bytes than announced.
pub fn copy_hashing(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    size: u64,
) -> io::Result<[u8; 32]> {
    if size < PIPELINE_THRESHOLD {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; BLOCK.min(size as usize + 1).max(1)];
        let mut remaining = size;
        loop {
            let n = read_some(reader, &mut buf)?;
            if n == 0 {
                break;
            }
            if n as u64 > remaining {
                return Err(changed_while_reading());
            }
            hasher.update(&buf[..n]);
            writer.write_all(&buf[..n])?;
            remaining -= n as u64;
        }
        if remaining != 0 {
            return Err(changed_while_reading());
        }
        return Ok(hasher.finalize().into());
    }
    // Large entry: the hasher runs on its own thread; buffers circulate between
    // the two threads so memory stays at a few blocks whatever the size.
    let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(3);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..4 {
        let _ = empty_tx.send(vec![0u8; BLOCK]);
    }
    std::thread::scope(|scope| {
        let hasher = scope.spawn(move || {
            let mut hasher = Sha256::new();
            for (buf, n) in full_rx {
                hasher.update(&buf[..n]);
                let _ = empty_tx.send(buf);
            }
            let digest: [u8; 32] = hasher.finalize().into();
            digest
        });
        let mut remaining = size;
        let result = (|| -> io::Result<()> {
            loop {
                let mut buf = empty_rx.recv().unwrap_or_else(|_| vec![0u8; BLOCK]);
                let n = read_full(reader, &mut buf)?;
                if n == 0 {
                    break;
                }
                if n as u64 > remaining {
                    return Err(changed_while_reading());
                }
                writer.write_all(&buf[..n])?;
                remaining -= n as u64;
                if full_tx.send((buf, n)).is_err() {
                    return Err(io::Error::other("hashing thread stopped"));
                }
            }
            Ok(())
        })();
        drop(full_tx);
        let digest = hasher
            .join()
            .map_err(|_| io::Error::other("hashing thread panicked"))?;
        result?;
        if remaining != 0 {
            return Err(changed_while_reading());
        }
        Ok(digest)
    })
}

fn changed_while_reading() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "file changed size while it was being read",
    )
}

fn read_some(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Fills `buf` as far as the reader allows.
pub fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = read_some(reader, &mut buf[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Writes a reproducible tar: the signed manifest first, then the entries
/// it lists, in its order, each hashed while written.
pub struct MediumWriter<W: Write> {
    out: W,
    planned: Vec<(String, u64, EntryKind)>,
    next: usize,
    written: u64,
}

struct Counting<'a, W: Write> {
    inner: &'a mut W,
    count: &'a mut u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        *self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn header_for(name: &str, size: u64, mode: u32) -> io::Result<(Vec<u8>, tar::Header)> {
    let mut prefix = Vec::new();
    let mut header = tar::Header::new_gnu();
    if name.len() > 100 {
        // GNU long name: a `././@LongLink` entry carrying the name, as GNU tar writes it.
        let mut long = tar::Header::new_gnu();
        long.as_gnu_mut()
            .ok_or_else(|| io::Error::other("GNU header"))?
            .name[..13]
            .copy_from_slice(b"././@LongLink");
        long.set_mode(0o644);
        long.set_uid(0);
        long.set_gid(0);
        long.set_mtime(0);
        long.set_size(name.len() as u64 + 1);
        long.set_entry_type(tar::EntryType::GNULongName);
        long.set_cksum();
        prefix.extend_from_slice(long.as_bytes());
        let mut data = name.as_bytes().to_vec();
        data.push(0);
        let pad = (512 - data.len() % 512) % 512;
        data.extend(std::iter::repeat_n(0u8, pad));
        prefix.extend(data);
        let gnu = header
            .as_gnu_mut()
            .ok_or_else(|| io::Error::other("GNU header"))?;
        gnu.name[..100].copy_from_slice(&name.as_bytes()[..100]);
    } else {
        header.set_path(name)?;
    }
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Ok((prefix, header))
}

impl<W: Write> MediumWriter<W> {
    /// Starts a medium on `out` (give it a large buffer): writes the signed
    /// `manifest` as the first entry; `planned` are the entries it lists
    /// (name, size, kind), to be added in that order.
    pub fn new(out: W, manifest: &[u8], planned: &[ManifestEntry]) -> io::Result<Self> {
        let mut w = MediumWriter {
            out,
            planned: planned
                .iter()
                .map(|e| (e.name.clone(), e.size, e.kind))
                .collect(),
            next: 0,
            written: 0,
        };
        w.write_entry(
            MANIFEST_NAME,
            0o644,
            manifest.len() as u64,
            &mut &manifest[..],
        )?;
        Ok(w)
    }

    fn write_entry(
        &mut self,
        name: &str,
        mode: u32,
        size: u64,
        reader: &mut dyn Read,
    ) -> io::Result<[u8; 32]> {
        let (prefix, header) = header_for(name, size, mode)?;
        let mut out = Counting {
            inner: &mut self.out,
            count: &mut self.written,
        };
        out.write_all(&prefix)?;
        out.write_all(header.as_bytes())?;
        let digest = copy_hashing(reader, &mut out, size)?;
        let pad = ((512 - size % 512) % 512) as usize;
        out.write_all(&[0u8; 512][..pad])?;
        Ok(digest)
    }

    /// Appends the next planned entry from `reader` (exactly its planned
    /// size), returning the SHA-256 of what was written: the caller checks
    /// it against the manifest.
    pub fn add(&mut self, name: &EntryName, reader: &mut dyn Read) -> io::Result<[u8; 32]> {
        let Some((planned, size, kind)) = self.planned.get(self.next).cloned() else {
            return Err(io::Error::other(format!(
                "entry {} is not in the manifest",
                crate::escape::quoted(name.as_str())
            )));
        };
        if planned != name.as_str() {
            return Err(io::Error::other(format!(
                "entry {} written where the manifest lists {}",
                crate::escape::quoted(name.as_str()),
                crate::escape::quoted(&planned)
            )));
        }
        let mode = if kind == EntryKind::Collector {
            0o755
        } else {
            0o644
        };
        self.next += 1;
        self.write_entry(&planned, mode, size, reader)
    }

    /// Writes the end-of-archive marker once every planned entry is written;
    /// returns the writer and the bytes written.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        if self.next != self.planned.len() {
            return Err(io::Error::other(format!(
                "{} of the manifest's {} entries were written",
                self.next,
                self.planned.len()
            )));
        }
        let mut out = Counting {
            inner: &mut self.out,
            count: &mut self.written,
        };
        out.write_all(&[0u8; 1024])?;
        out.flush()?;
        let written = self.written;
        Ok((self.out, written))
    }
}

/// A writer that splits its output into `base.000`, `base.001`, ... of at most
/// `chunk_size` bytes each, hashing every chunk as it is written.
pub struct ChunkedWriter {
    dir: PathBuf,
    base: String,
    chunk_size: u64,
    current: Option<(io::BufWriter<tempfile::NamedTempFile>, Sha256, u64)>,
    done: Vec<FinishedChunk>,
}

/// One written chunk (a temporary file until persisted under `name`).
pub struct FinishedChunk {
    /// The temporary file.
    pub file: tempfile::NamedTempFile,
    /// The final file name.
    pub name: String,
    /// SHA-256 of the chunk.
    pub sha256: [u8; 32],
    /// Its size.
    pub size: u64,
}

impl ChunkedWriter {
    /// Chunks named `<base>.NNN` in `dir`.
    pub fn new(dir: &Path, base: &str, chunk_size: u64) -> Self {
        ChunkedWriter {
            dir: dir.to_path_buf(),
            base: base.to_string(),
            chunk_size: chunk_size.max(512),
            current: None,
            done: Vec::new(),
        }
    }

    fn roll(&mut self) -> io::Result<()> {
        if let Some((w, h, n)) = self.current.take() {
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.as_file().sync_all()?;
            let name = format!("{}.{:03}", self.base, self.done.len());
            self.done.push(FinishedChunk {
                file,
                name,
                sha256: h.finalize().into(),
                size: n,
            });
        }
        Ok(())
    }

    /// Finishes the last chunk; returns (temp file, final name, sha256, size) per chunk.
    pub fn finish(mut self) -> io::Result<Vec<FinishedChunk>> {
        self.roll()?;
        Ok(self.done)
    }
}

impl Write for ChunkedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self
            .current
            .as_ref()
            .is_some_and(|(_, _, n)| *n >= self.chunk_size)
        {
            self.roll()?;
        }
        if self.current.is_none() {
            if self.done.len() >= 1000 {
                return Err(io::Error::other(
                    "more than 1000 chunks: choose a larger --split size",
                ));
            }
            let file = tempfile::Builder::new()
                .prefix(".airgate-chunk-")
                .tempfile_in(&self.dir)?;
            self.current = Some((io::BufWriter::with_capacity(BLOCK, file), Sha256::new(), 0));
        }
        let Some((w, h, n)) = self.current.as_mut() else {
            return Err(io::Error::other("no chunk open"));
        };
        let room = (self.chunk_size - *n) as usize;
        let take = buf.len().min(room);
        w.write_all(&buf[..take])?;
        h.update(&buf[..take]);
        *n += take as u64;
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.current.as_mut() {
            Some((w, _, _)) => w.flush(),
            None => Ok(()),
        }
    }
}

/// Lists the files of a directory tree (regular files only), sorted by relative
/// `/`-separated name. Symlinks and other special files are reported as errors.
pub fn list_files(root: &Path) -> io::Result<Vec<(String, PathBuf, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let rel = path
                    .strip_prefix(root)
                    .map_err(|_| io::Error::other("path outside root"))?
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, path, meta.len()));
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is not a regular file (symlinks and special files are refused)",
                        path.display()
                    ),
                ));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_hashing_small_and_large() {
        for size in [0usize, 1, 511, 512, 4 << 20, (9 << 20) + 7] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            let mut out = Vec::new();
            let digest = copy_hashing(&mut &data[..], &mut out, size as u64).unwrap();
            assert_eq!(out, data);
            assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&data)));
        }
    }

    #[test]
    fn size_changes_are_detected() {
        let data = [1u8; 100];
        assert!(copy_hashing(&mut &data[..], &mut Vec::new(), 99).is_err());
        assert!(copy_hashing(&mut &data[..], &mut Vec::new(), 101).is_err());
        let big = vec![1u8; 5 << 20];
        assert!(copy_hashing(&mut &big[..], &mut Vec::new(), (5 << 20) + 1).is_err());
        assert!(copy_hashing(&mut &big[..], &mut Vec::new(), (5 << 20) - 1).is_err());
    }

    #[test]
    fn tar_is_reproducible_and_readable_manifest_first() {
        let long = format!("artifacts/{}", "x".repeat(120));
        let planned = vec![
            ManifestEntry {
                name: "artifacts/a.txt".into(),
                sha256: String::new(),
                size: 5,
                kind: EntryKind::Artifact,
            },
            ManifestEntry {
                name: long.clone(),
                sha256: String::new(),
                size: 9,
                kind: EntryKind::Artifact,
            },
        ];
        let build = || {
            let mut w = MediumWriter::new(Vec::new(), b"{}", &planned).unwrap();
            w.add(
                &EntryName::parse("artifacts/a.txt").unwrap(),
                &mut &b"hello"[..],
            )
            .unwrap();
            w.add(&EntryName::parse(&long).unwrap(), &mut &b"long name"[..])
                .unwrap();
            w.finish().unwrap().0
        };
        let a = build();
        assert_eq!(a, build());
        let mut archive = tar::Archive::new(&a[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec![MANIFEST_NAME.to_string(), "artifacts/a.txt".into(), long]
        );
    }

    #[test]
    fn writer_refuses_entries_the_manifest_does_not_plan() {
        let planned = vec![ManifestEntry {
            name: "artifacts/a.txt".into(),
            sha256: String::new(),
            size: 5,
            kind: EntryKind::Artifact,
        }];
        let mut w = MediumWriter::new(Vec::new(), b"{}", &planned).unwrap();
        assert!(w
            .add(
                &EntryName::parse("artifacts/b.txt").unwrap(),
                &mut &b"hello"[..]
            )
            .is_err());
        let w = MediumWriter::new(Vec::new(), b"{}", &planned).unwrap();
        assert!(w.finish().is_err(), "an unwritten planned entry");
        let mut w = MediumWriter::new(Vec::new(), b"{}", &planned).unwrap();
        assert!(
            w.add(
                &EntryName::parse("artifacts/a.txt").unwrap(),
                &mut &b"hell"[..]
            )
            .is_err(),
            "a size other than planned"
        );
    }
}
