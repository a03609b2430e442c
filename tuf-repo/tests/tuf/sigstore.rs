//! The real public Sigstore repositories (production and staging).

use tuf_repo::{verify_snapshot, Error, Limits, Role, PRODUCTION_ROOT};

use crate::common::*;

const PROD_TRUSTED_ROOT: &str =
    "targets/6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66.trusted_root.json";

#[test]
fn production_verifies_from_embedded_root_as_of_fixture_time() {
    let v = verify_snapshot(
        PRODUCTION_ROOT,
        &prod(),
        as_of_fixtures(),
        None,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(v.trusted_root_json, read(prod().join(PROD_TRUSTED_ROOT)));
    assert_eq!(v.root_chain, vec![12, 13, 14, 15]);
    assert_eq!(v.versions.root, 15);
    assert_eq!(v.versions.timestamp, 762);
    assert_eq!(v.versions.snapshot, 165);
    assert_eq!(v.versions.targets, 14);
    assert_eq!(v.expires.timestamp, t("2026-08-28T19:25:56Z"));
    assert_eq!(v.expires.root, t("2026-11-20T13:58:18Z"));
    assert!(v.expires.delegated.contains_key("registry.npmjs.org"));
    assert_eq!(v.newest_root_json, read(prod().join("15.root.json")));
    assert_eq!(
        v.targets.len(),
        11,
        "{:?}",
        v.targets.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
}

#[test]
fn freeze_production_as_of_today_names_root_and_expiry() {
    let err =
        verify_snapshot(PRODUCTION_ROOT, &prod(), today(), None, &Limits::default()).unwrap_err();
    match &err {
        Error::Expired { role, expires, .. } => {
            assert_eq!(*role, Role::Root);
            assert_eq!(*expires, t("2026-11-20T13:58:18Z"));
        }
        other => panic!("expected expiry, got {other}"),
    }
    assert!(err.is_rejection());
    assert!(
        err.to_string()
            .contains("root metadata expired at 2026-11-20T13:58:18Z"),
        "{err}"
    );
}

fn verify_copy(dir: &tempfile::TempDir) -> Result<tuf_repo::VerifiedSnapshot, Error> {
    verify_snapshot(
        PRODUCTION_ROOT,
        dir.path(),
        as_of_fixtures(),
        None,
        &Limits::default(),
    )
}

fn refused(dir: &tempfile::TempDir) -> Error {
    let err = verify_copy(dir).expect_err("the repository must be refused");
    assert!(err.is_rejection(), "not a rejection: {err}");
    err
}

#[test]
fn production_verifies_from_pinned_newest_root() {
    let v = verify_snapshot(
        &read(prod().join("15.root.json")),
        &prod(),
        as_of_fixtures(),
        None,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(v.root_chain, vec![15]);
    assert_eq!(v.trusted_root_json, read(prod().join(PROD_TRUSTED_ROOT)));
}

#[test]
fn staging_verifies_with_its_own_root() {
    let staging_root = read(staging().join(STAGING_PIN));
    let v = verify_snapshot(
        &staging_root,
        &staging(),
        as_of_fixtures(),
        None,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(v.versions.root, 14);
    assert_eq!(v.versions.timestamp, 703);
    assert_eq!(
        v.trusted_root_json,
        read(staging().join(
            "targets/44deb991d4bbf2150751ccee235d9810bce4434383c26d8898c1bcadbace6ed8.trusted_root.json"
        ))
    );
}

#[test]
fn freeze_staging_as_of_today_names_root_and_expiry() {
    let staging_root = read(staging().join(STAGING_PIN));
    let err =
        verify_snapshot(&staging_root, &staging(), today(), None, &Limits::default()).unwrap_err();
    match err {
        Error::Expired {
            role: Role::Root,
            expires,
            ..
        } => {
            assert_eq!(expires, t("2026-10-16T19:39:43Z"))
        }
        other => panic!("expected root expiry, got {other}"),
    }
}

#[test]
fn freeze_production_timestamp_after_it_expired() {
    let err = verify_snapshot(
        PRODUCTION_ROOT,
        &prod(),
        t("2026-09-01T00:00:00Z"),
        None,
        &Limits::default(),
    )
    .unwrap_err();
    match err {
        Error::Expired {
            role: Role::Timestamp,
            expires,
            ..
        } => {
            assert_eq!(expires, t("2026-08-28T19:25:56Z"))
        }
        other => panic!("expected timestamp expiry, got {other}"),
    }
}

#[test]
fn staging_is_refused_with_the_production_root() {
    let err = verify_snapshot(
        PRODUCTION_ROOT,
        &staging(),
        as_of_fixtures(),
        None,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RootRotation {
                from: 12,
                to: 13,
                check: tuf_repo::RotationCheck::OldKeysThreshold { valid: 0, .. }
            }
        ),
        "{err}"
    );
}

#[test]
fn threshold_not_met_production_targets_with_two_signatures() {
    let dir = copy_repo(&prod());
    let path = dir.path().join("14.targets.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&read(&path)).unwrap();
    doc["signatures"].as_array_mut().unwrap().truncate(2);
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    match refused(&dir) {
        Error::ThresholdNotMet {
            role: Role::Targets,
            valid,
            threshold: 3,
        } => assert!(valid <= 2),
        other => panic!("expected threshold not met, got {other}"),
    }
}

#[test]
fn signature_by_unknown_key_production_timestamp() {
    let dir = copy_repo(&prod());
    let path = dir.path().join("timestamp.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&read(&path)).unwrap();
    let rogue = "aa".repeat(32);
    doc["signatures"][0]["keyid"] = serde_json::Value::String(rogue.clone());
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    match refused(&dir) {
        Error::UnknownKey {
            role: Role::Timestamp,
            keyids,
            ..
        } => assert_eq!(keyids, vec![rogue]),
        other => panic!("expected unknown key, got {other}"),
    }
}

#[test]
fn bad_signature_production_timestamp_pointing_at_older_snapshot() {
    let dir = copy_repo(&prod());
    let path = dir.path().join("timestamp.json");
    let text = String::from_utf8(read(&path)).unwrap();
    std::fs::write(&path, text.replace("\"version\": 165", "\"version\": 164")).unwrap();
    match refused(&dir) {
        Error::ThresholdNotMet {
            role: Role::Timestamp,
            valid: 0,
            threshold: 1,
        } => {}
        other => panic!("expected threshold not met, got {other}"),
    }
}

#[test]
fn target_hash_mismatch_production_trusted_root() {
    let dir = copy_repo(&prod());
    let path = dir.path().join(PROD_TRUSTED_ROOT);
    let mut data = read(&path);
    let i = data.iter().position(|b| *b == b'A').unwrap();
    data[i] = b'B';
    std::fs::write(&path, data).unwrap();
    match refused(&dir) {
        Error::HashMismatch {
            what,
            expected,
            actual,
        } => {
            assert_eq!(what, PROD_TRUSTED_ROOT);
            assert_eq!(
                expected,
                "6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66"
            );
            assert_ne!(actual, expected);
        }
        other => panic!("expected hash mismatch, got {other}"),
    }
}

#[test]
fn target_length_mismatch_production_trusted_root() {
    let dir = copy_repo(&prod());
    let path = dir.path().join(PROD_TRUSTED_ROOT);
    let mut data = read(&path);
    data.push(b'\n');
    std::fs::write(&path, &data).unwrap();
    match refused(&dir) {
        Error::LengthMismatch {
            what,
            expected,
            actual,
        } => {
            assert_eq!(what, PROD_TRUSTED_ROOT);
            assert_eq!(actual, expected + 1);
        }
        other => panic!("expected length mismatch, got {other}"),
    }
}

/// Whitespace keeps the JSON and its signature valid: only the size limit stops it.
#[test]
fn oversized_production_timestamp_padded_with_whitespace() {
    let dir = copy_repo(&prod());
    let path = dir.path().join("timestamp.json");
    let mut data = read(&path);
    data.extend(std::iter::repeat_n(b' ', 300 << 10));
    std::fs::write(&path, &data).unwrap();
    let roomy = Limits {
        max_timestamp_bytes: 1 << 20,
        ..Limits::default()
    };
    verify_snapshot(PRODUCTION_ROOT, dir.path(), as_of_fixtures(), None, &roomy).unwrap();
    match refused(&dir) {
        Error::TooLarge { what, limit } => {
            assert_eq!(what, "timestamp.json");
            assert_eq!(limit, Limits::default().max_timestamp_bytes);
        }
        other => panic!("expected too large, got {other}"),
    }
}

#[test]
fn oversized_production_root_with_explicit_limit() {
    let limits = Limits {
        max_root_bytes: 5500,
        ..Limits::default()
    };
    let err =
        verify_snapshot(PRODUCTION_ROOT, &prod(), as_of_fixtures(), None, &limits).unwrap_err();
    match err {
        Error::TooLarge { what, limit: 5500 } => assert_eq!(what, "13.root.json"),
        other => panic!("expected too large, got {other}"),
    }
}

#[test]
fn too_many_root_updates() {
    let limits = Limits {
        max_root_updates: 2,
        ..Limits::default()
    };
    let err =
        verify_snapshot(PRODUCTION_ROOT, &prod(), as_of_fixtures(), None, &limits).unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 2, .. }), "{err}");
}

#[test]
fn malformed_json_production_snapshot() {
    let dir = copy_repo(&prod());
    let path = dir.path().join("165.snapshot.json");
    let data = read(&path);
    std::fs::write(&path, &data[..data.len() / 2]).unwrap();
    match refused(&dir) {
        Error::Malformed { what, .. } => assert_eq!(what, "165.snapshot.json"),
        other => panic!("expected malformed, got {other}"),
    }
}

#[test]
fn malformed_json_production_root_in_chain() {
    let dir = copy_repo(&prod());
    std::fs::write(dir.path().join("14.root.json"), b"{\"signed\": 1}").unwrap();
    match refused(&dir) {
        Error::Malformed { what, .. } => assert_eq!(what, "14.root.json"),
        other => panic!("expected malformed, got {other}"),
    }
}

#[test]
fn malformed_json_delegated_role_names_the_role() {
    let dir = copy_repo(&prod());
    std::fs::write(dir.path().join("8.registry.npmjs.org.json"), b"[]").unwrap();
    match refused(&dir) {
        Error::Malformed { what, .. } => assert_eq!(what, "8.registry.npmjs.org.json"),
        other => panic!("expected malformed, got {other}"),
    }
}

#[test]
fn missing_intermediate_production_root() {
    let dir = copy_repo(&prod());
    std::fs::remove_file(dir.path().join("14.root.json")).unwrap();
    match refused(&dir) {
        Error::RootRotation {
            from: 13,
            to: 15,
            check: tuf_repo::RotationCheck::MissingIntermediate,
        } => {}
        other => panic!("expected missing intermediate root, got {other}"),
    }
}

#[test]
fn missing_trusted_root_target() {
    let dir = copy_repo(&prod());
    std::fs::remove_file(dir.path().join(PROD_TRUSTED_ROOT)).unwrap();
    match refused(&dir) {
        Error::Missing { what } => assert_eq!(what, PROD_TRUSTED_ROOT),
        other => panic!("expected missing, got {other}"),
    }
}

#[test]
fn missing_timestamp() {
    let dir = copy_repo(&prod());
    std::fs::remove_file(dir.path().join("timestamp.json")).unwrap();
    match refused(&dir) {
        Error::Missing { what } => assert_eq!(what, "timestamp.json"),
        other => panic!("expected missing, got {other}"),
    }
}

#[test]
fn pinned_root_that_is_not_a_root_is_a_usage_error() {
    let err =
        verify_snapshot(b"{}", &prod(), as_of_fixtures(), None, &Limits::default()).unwrap_err();
    assert!(matches!(err, Error::BadTrustedRoot { .. }), "{err}");
    assert!(!err.is_rejection());
    let err = verify_snapshot(
        PRODUCTION_ROOT,
        std::path::Path::new("/nonexistent/snapshot"),
        as_of_fixtures(),
        None,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(!err.is_rejection());
}

/// The first staging root tough can walk from (older ones carry key ids that
/// do not match tough's key id calculation).
const STAGING_PIN: &str = "9.root.json";

#[test]
fn staging_walks_from_the_oldest_strictly_valid_root() {
    for v in 1..=8 {
        let root = read(staging().join(format!("{v}.root.json")));
        let err = verify_snapshot(
            &root,
            &staging(),
            as_of_fixtures(),
            None,
            &Limits::default(),
        )
        .unwrap_err();
        match err {
            Error::Malformed { what, .. } | Error::BadTrustedRoot { what, .. } => {
                assert!(what.contains("root"), "{what}")
            }
            other => panic!("root {v}: unexpected {other}"),
        }
    }
}
