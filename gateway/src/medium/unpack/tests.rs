//! Named negative media for the streaming reader.

use super::*;
use crate::crypto::VerifyingKey;
use crate::medium::manifest::{
    pack_digest, sign_manifest, ArtifactRecord, MediumPredicate, TufVersions, UpstreamSigner,
};
use crate::medium::pack::MediumWriter;
use private_ca::Ed25519SigningKey;
use std::io::Cursor;

struct Genuine {
    key: Ed25519SigningKey,
    exporters: Vec<EnrolledExporter>,
    files: Vec<(String, Vec<u8>)>,
}

fn genuine() -> Genuine {
    let key = Ed25519SigningKey::generate().unwrap();
    let exporters = vec![EnrolledExporter {
        name: "low-1".into(),
        key: VerifyingKey::from_spki_der(key.public_key_spki()).unwrap(),
        revoked_at: None,
    }];
    let files = vec![
        ("artifacts/a.txt".to_string(), b"hello".to_vec()),
        ("bundles/a.txt.sigstore.json".to_string(), b"{}".to_vec()),
        ("policy.toml".to_string(), b"# policy\n".to_vec()),
    ];
    Genuine {
        key,
        exporters,
        files,
    }
}

impl Genuine {
    fn entries(&self) -> Vec<ManifestEntry> {
        self.files
            .iter()
            .map(|(n, d)| ManifestEntry {
                name: n.clone(),
                sha256: hex::encode(crate::crypto::sha256(d)),
                size: d.len() as u64,
                kind: EntryKind::for_name(&EntryName::parse(n).unwrap()).unwrap(),
            })
            .collect()
    }

    fn manifest(&self) -> Vec<u8> {
        let entries = self.entries();
        let predicate = MediumPredicate {
            pack_digest: pack_digest(&entries),
            export_time: "2026-12-01T00:00:00Z".into(),
            exporter: "low-1".into(),
            exporter_key_id: hex::encode(self.key.key_id()),
            tool_version: "test".into(),
            tuf: TufVersions {
                root: 1,
                timestamp: 1,
                snapshot: 1,
                targets: 1,
            },
            trusted_root_sha256: "00".repeat(32),
            artifacts: vec![ArtifactRecord {
                name: "a.txt".into(),
                bundle: "bundles/a.txt.sigstore.json".into(),
                sha256: entries[0].sha256.clone(),
                size: 5,
                origin: "directory".into(),
                upstream: UpstreamSigner {
                    identity: "id".into(),
                    issuer: "iss".into(),
                    log_index: 0,
                    log_url: "https://log".into(),
                },
            }],
            entries,
            rejected: vec![],
            collectors: vec![],
            images: vec![],
        };
        sign_manifest(&predicate, &self.key.key_id(), &|m| self.key.sign(m)).unwrap()
    }

    fn bytes(&self) -> Vec<u8> {
        let entries = self.entries();
        let mut w = MediumWriter::new(Vec::new(), &self.manifest(), &entries).unwrap();
        for (name, data) in &self.files {
            w.add(&EntryName::parse(name).unwrap(), &mut &data[..])
                .unwrap();
        }
        w.finish().unwrap().0
    }
}

/// A reader that counts what was read from it.
struct Counted<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

fn run(bytes: &[u8], exporters: &[EnrolledExporter]) -> (Result<Option<UnpackedMedium>>, bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut staged = false;
    let path = dir.path().to_path_buf();
    let r = unpack(bytes, exporters, &UnpackLimits::default(), &mut |_| {
        staged = true;
        Ok(Proceed::Stage(path.clone()))
    });
    (r, staged)
}

fn refusal(r: Result<Option<UnpackedMedium>>) -> ImportRejected {
    match r {
        Err(Error::ImportRejected(b)) => *b,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Re-assembles a tar from (header, data) pairs.
fn tar_of(entries: &[(tar::Header, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (h, d) in entries {
        b.append(h, &d[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    {
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    h
}

fn parts(bytes: &[u8]) -> Vec<(tar::Header, Vec<u8>)> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            (
                header(&name, tar::EntryType::Regular, data.len() as u64),
                data,
            )
        })
        .collect()
}

#[test]
fn genuine_medium_unpacks_in_manifest_order() {
    let g = genuine();
    let (r, staged) = run(&g.bytes(), &g.exporters);
    let m = r.unwrap().unwrap();
    assert!(staged);
    let names: Vec<&str> = m.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "artifacts/a.txt",
            "bundles/a.txt.sigstore.json",
            "policy.toml"
        ]
    );
}

#[test]
fn outsider_medium_is_refused_before_anything_is_staged() {
    let g = genuine();
    let outsider = genuine(); // another key, not enrolled
    let mut bytes = outsider.bytes();
    // A gigabyte of "bundles" after its manifest would change nothing: the
    // reader stops after the manifest.
    bytes.truncate(bytes.len() - 1024);
    let mut tail = tar_of(&[(
        header("bundles/zz.sigstore.json", tar::EntryType::Regular, 1 << 30),
        vec![],
    )]);
    tail.truncate(512);
    bytes.extend_from_slice(&tail);
    let read = std::rc::Rc::new(std::cell::Cell::new(0));
    let reader = Counted {
        inner: Cursor::new(bytes.clone()).chain(std::io::repeat(0).take(1 << 30)),
        read: read.clone(),
    };
    let mut decided = false;
    let r = unpack(reader, &g.exporters, &UnpackLimits::default(), &mut |_| {
        decided = true;
        Ok(Proceed::Stop)
    });
    assert!(matches!(
        refusal(r),
        ImportRejected::Manifest(crate::medium::manifest::ManifestError::UnknownKey { .. })
    ));
    assert!(!decided, "nothing may be decided or staged for an outsider");
    assert!(read.get() < 64 << 10, "read {} bytes", read.get());
}

#[test]
fn medium_whose_first_entry_is_not_the_manifest() {
    let g = genuine();
    let mut p = parts(&g.bytes());
    p.rotate_left(1);
    let (r, staged) = run(&tar_of(&p), &g.exporters);
    assert!(matches!(
        refusal(r),
        ImportRejected::Medium(MediumError::ManifestNotFirst(_))
    ));
    assert!(!staged);
}

#[test]
fn medium_with_entries_out_of_the_manifest_order() {
    let g = genuine();
    let mut p = parts(&g.bytes());
    p.swap(1, 2);
    let (r, _) = run(&tar_of(&p), &g.exporters);
    assert!(matches!(
        refusal(r),
        ImportRejected::Entry {
            problem: crate::judge::medium::EntryProblem::OutOfOrder { .. },
            ..
        }
    ));
}

#[test]
fn medium_with_an_entry_the_manifest_does_not_list() {
    let g = genuine();
    let mut p = parts(&g.bytes());
    p.insert(
        2,
        (
            header("artifacts/b.txt", tar::EntryType::Regular, 1),
            b"x".to_vec(),
        ),
    );
    let (r, _) = run(&tar_of(&p), &g.exporters);
    assert!(matches!(
        refusal(r),
        ImportRejected::Entry {
            problem: crate::judge::medium::EntryProblem::NotInManifest,
            ..
        }
    ));
}

#[test]
fn medium_missing_a_listed_entry() {
    let g = genuine();
    let mut p = parts(&g.bytes());
    p.pop();
    let (r, _) = run(&tar_of(&p), &g.exporters);
    assert!(matches!(
        refusal(r),
        ImportRejected::Entry {
            problem: crate::judge::medium::EntryProblem::Missing,
            ..
        }
    ));
}

#[test]
fn medium_with_an_altered_byte_or_size() {
    let g = genuine();
    let mut p = parts(&g.bytes());
    p[1].1[0] ^= 1;
    let (r, _) = run(&tar_of(&p), &g.exporters);
    assert!(matches!(
        refusal(r),
        ImportRejected::Entry {
            problem: crate::judge::medium::EntryProblem::Digest { .. },
            ..
        }
    ));
    let mut p = parts(&g.bytes());
    p[1].1.push(b'!');
    p[1].0.set_size(6);
    p[1].0.set_cksum();
    let (r, _) = run(&tar_of(&p), &g.exporters);
    assert!(matches!(
        refusal(r),
        ImportRejected::Entry {
            problem: crate::judge::medium::EntryProblem::Size { .. },
            ..
        }
    ));
}

#[test]
fn medium_with_a_pax_size_record() {
    let g = genuine();
    let bytes = g.bytes();
    let p = parts(&bytes);
    // The manifest, then a PAX header whose size record would hide bytes.
    let mut out = tar_of(&p[..1]);
    out.truncate(out.len() - 1024);
    let mut b = tar::Builder::new(out);
    b.append_pax_extensions([("size", &b"5"[..])]).unwrap();
    for (h, d) in &p[1..] {
        b.append(h, &d[..]).unwrap();
    }
    let bytes = b.into_inner().unwrap();
    let (r, _) = run(&bytes, &g.exporters);
    assert!(matches!(
        refusal(r),
        ImportRejected::Medium(MediumError::Pax(_))
    ));
}

#[test]
fn medium_with_data_after_its_end() {
    let g = genuine();
    let mut bytes = g.bytes();
    bytes.extend_from_slice(b"hidden bytes after the archive");
    let (r, _) = run(&bytes, &g.exporters);
    assert!(matches!(
        refusal(r),
        ImportRejected::Medium(MediumError::TrailingData)
    ));
    // Zero padding (as GNU tar writes to whole records) is fine.
    let mut padded = g.bytes();
    padded.extend(std::iter::repeat_n(0u8, 9216));
    let (r, _) = run(&padded, &g.exporters);
    assert!(r.unwrap().is_some());
}

#[test]
fn links_devices_and_unsafe_names_are_refused_before_the_manifest() {
    let g = genuine();
    for (name, kind) in [
        ("artifacts/link", tar::EntryType::Symlink),
        ("artifacts/hard", tar::EntryType::Link),
        ("artifacts/dev", tar::EntryType::Char),
    ] {
        let mut h = header(name, kind, 0);
        h.set_link_name("/etc/passwd").unwrap();
        h.set_cksum();
        let (r, staged) = run(&tar_of(&[(h, vec![])]), &g.exporters);
        assert!(matches!(
            refusal(r),
            ImportRejected::Medium(MediumError::NotRegularFile { .. })
        ));
        assert!(!staged);
    }
    for name in [
        "../escape",
        "/abs/path",
        "artifacts/../../x",
        "etc/cron.d/evil",
    ] {
        let (r, staged) = run(
            &tar_of(&[(header(name, tar::EntryType::Regular, 1), b"x".to_vec())]),
            &g.exporters,
        );
        assert!(
            matches!(
                refusal(r),
                ImportRejected::Medium(
                    MediumError::UnsafeName { .. } | MediumError::UnknownEntry(_)
                )
            ),
            "{name}"
        );
        assert!(!staged);
    }
}

#[test]
fn truncated_media_are_refused_at_every_cut() {
    let g = genuine();
    let bytes = g.bytes();
    for cut in (0..bytes.len() - 1024).step_by(97) {
        let (r, _) = run(&bytes[..cut], &g.exporters);
        assert!(r.is_err(), "cut {cut} accepted");
        assert!(
            matches!(
                refusal(r),
                ImportRejected::Medium(_)
                    | ImportRejected::Entry { .. }
                    | ImportRejected::Manifest(_)
            ),
            "cut {cut}"
        );
    }
}

#[test]
fn medium_over_the_in_memory_limit_is_refused_before_staging() {
    let g = genuine();
    let dir = tempfile::tempdir().unwrap();
    let limits = UnpackLimits {
        max_memory_bytes: 4,
        ..UnpackLimits::default()
    };
    let mut staged = false;
    let r = unpack(&g.bytes()[..], &g.exporters, &limits, &mut |_| {
        staged = true;
        Ok(Proceed::Stage(dir.path().to_path_buf()))
    });
    assert!(matches!(
        refusal(r),
        ImportRejected::Medium(MediumError::TooBig(_))
    ));
    assert!(!staged);
}

#[test]
fn stop_reads_nothing_after_the_manifest() {
    let g = genuine();
    let r = unpack(
        &g.bytes()[..],
        &g.exporters,
        &UnpackLimits::default(),
        &mut |_| Ok(Proceed::Stop),
    );
    assert!(r.unwrap().is_none());
}
