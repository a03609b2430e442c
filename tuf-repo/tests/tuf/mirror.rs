//! `snapshot` from a file:// mirror: what is written, and that nothing is
//! written when verification fails.

use std::path::Path;

use tuf_repo::{snapshot, verify_snapshot, Error, Limits, Role, PRODUCTION_ROOT};
use url::Url;

use crate::common::*;

fn file_url(dir: &Path) -> Url {
    Url::from_directory_path(dir.canonicalize().unwrap()).unwrap()
}

/// Entries of `dir` other than `keep`.
fn leftovers(dir: &Path, keep: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != keep)
        .collect()
}

#[test]
fn snapshot_of_production_file_mirror_is_byte_identical_and_verifies() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("tuf");
    let summary = snapshot(
        &file_url(&prod()),
        PRODUCTION_ROOT,
        &out,
        as_of_fixtures(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(summary.root_chain, vec![12, 13, 14, 15]);
    assert_eq!(
        summary.trusted_root_sha256,
        "6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66"
    );
    for expected in [
        "12.root.json",
        "15.root.json",
        "timestamp.json",
        "165.snapshot.json",
        "14.targets.json",
        "8.registry.npmjs.org.json",
        "targets/6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66.trusted_root.json",
    ] {
        assert!(summary.files.iter().any(|f| f == expected), "{expected} not written");
    }
    assert!(!summary.files.iter().any(|f| f == "11.root.json"));
    for rel in &summary.files {
        assert_eq!(
            read(out.join(rel)),
            read(prod().join(rel)),
            "{rel} differs from the mirror"
        );
    }
    assert!(
        leftovers(work.path(), "tuf").is_empty(),
        "temporary directory left behind"
    );
    let v = verify_snapshot(
        PRODUCTION_ROOT,
        &out,
        as_of_fixtures(),
        None,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(v.versions, summary.versions);
}

#[test]
fn snapshot_refuses_expired_mirror_and_writes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("tuf");
    let err = snapshot(
        &file_url(&prod()),
        PRODUCTION_ROOT,
        &out,
        today(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Expired {
                role: Role::Root,
                ..
            }
        ),
        "{err}"
    );
    assert!(std::fs::read_dir(work.path()).unwrap().next().is_none());
}

#[test]
fn snapshot_of_tampered_mirror_writes_nothing() {
    let mirror = copy_repo(&prod());
    std::fs::write(
        mirror.path().join("targets/6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66.trusted_root.json"),
        b"{}",
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("tuf");
    let err = snapshot(
        &file_url(mirror.path()),
        PRODUCTION_ROOT,
        &out,
        as_of_fixtures(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::HashMismatch { .. }), "{err}");
    assert!(err.is_rejection());
    assert!(std::fs::read_dir(work.path()).unwrap().next().is_none());
}

#[test]
fn snapshot_refuses_a_non_empty_output_directory() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("keep.txt"), b"x").unwrap();
    let err = snapshot(
        &file_url(&prod()),
        PRODUCTION_ROOT,
        work.path(),
        as_of_fixtures(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err}");
    assert!(!err.is_rejection());
    assert_eq!(leftovers(work.path(), "keep.txt"), Vec::<String>::new());
}

#[test]
fn snapshot_refuses_unsupported_schemes() {
    let work = tempfile::tempdir().unwrap();
    let err = snapshot(
        &Url::parse("ftp://127.0.0.1/repo/").unwrap(),
        PRODUCTION_ROOT,
        &work.path().join("tuf"),
        as_of_fixtures(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err}");
}
