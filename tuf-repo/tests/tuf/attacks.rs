//! Named negative repositories built with tough and fresh keys, one per TUF
//! attack; each must be refused with an error naming the role and the check.

use tough::schema::{Root, Signed, Snapshot, Targets, Timestamp};
use tuf_repo::{verify_snapshot, Error, Limits, Role, RotationCheck, TufState, VerifiedSnapshot};

use crate::common::t;
use crate::testrepo::{root_role, signed_json, Generation, Key, TestRepo, TRUSTED_ROOT};

fn now() -> chrono::DateTime<chrono::Utc> {
    t("2026-08-22T00:00:00Z")
}

fn verify(repo: &TestRepo, state: Option<&TufState>) -> Result<VerifiedSnapshot, Error> {
    verify_snapshot(
        &repo.pinned_root(),
        repo.path(),
        now(),
        state,
        &Limits::default(),
    )
}

fn refused(repo: &TestRepo, state: Option<&TufState>) -> Error {
    let err = verify(repo, state).expect_err("the repository must be refused");
    assert!(err.is_rejection(), "not a rejection: {err}");
    err
}

/// A state that has accepted `repo` as it is now.
fn state_after(repo: &TestRepo) -> TufState {
    let mut state = TufState::new();
    state.update(&verify(repo, None).unwrap()).unwrap();
    state
}

#[test]
fn generated_repository_verifies() {
    let repo = TestRepo::build(2, Generation::default());
    let v = verify(&repo, None).unwrap();
    assert_eq!(v.trusted_root_json, TRUSTED_ROOT);
    assert_eq!(v.root_chain, vec![1, 2]);
    assert_eq!(v.versions.timestamp, 1);
    assert_eq!(v.targets.len(), 2);
}

fn rollback_case(newer: Generation, older: Generation, role: Role) {
    let repo = TestRepo::build(1, newer);
    let state = state_after(&repo);
    // The same keys sign an older generation (a replay of old metadata).
    let replay = repo.fork();
    replay.publish(older);
    match refused(&replay, Some(&state)) {
        Error::Rollback {
            role: r,
            seen,
            offered,
        } => {
            assert_eq!(r, role);
            assert!(offered < seen);
        }
        other => panic!("expected {role} rollback, got {other}"),
    }
    // Without the state, the older generation is valid on its own, but the
    // state refuses to record it.
    let older_verified = verify(&replay, None).unwrap();
    let mut state = state;
    match state.update(&older_verified) {
        Err(Error::Rollback { role: r, .. }) => assert_eq!(r, role),
        other => panic!("update accepted a rollback: {other:?}"),
    }
}

#[test]
fn rollback_timestamp() {
    let newer = Generation {
        timestamp: 5,
        ..Generation::default()
    };
    rollback_case(newer, Generation::default(), Role::Timestamp);
}

#[test]
fn rollback_snapshot() {
    let newer = Generation {
        timestamp: 5,
        snapshot: 5,
        ..Generation::default()
    };
    let older = Generation {
        timestamp: 6,
        snapshot: 4,
        ..Generation::default()
    };
    rollback_case(newer, older, Role::Snapshot);
}

#[test]
fn rollback_targets() {
    let newer = Generation {
        timestamp: 5,
        snapshot: 5,
        targets: 5,
        ..Generation::default()
    };
    let older = Generation {
        timestamp: 6,
        snapshot: 6,
        targets: 4,
        ..Generation::default()
    };
    rollback_case(newer, older, Role::Targets);
}

#[test]
fn rollback_root() {
    let repo = TestRepo::build(3, Generation::default());
    let state = state_after(&repo);
    assert_eq!(state.versions().root, 3);
    repo.remove("3.root.json");
    match refused(&repo, Some(&state)) {
        Error::Rollback {
            role: Role::Root,
            seen: 3,
            offered: 2,
        } => {}
        other => panic!("expected root rollback, got {other}"),
    }
}

#[test]
fn freeze_expired_timestamp() {
    let repo = TestRepo::build(
        1,
        Generation {
            expires: "2026-08-01T00:00:00Z",
            ..Generation::default()
        },
    );
    match refused(&repo, None) {
        Error::Expired { role, expires, .. } => {
            // Root expires in 2030; timestamp is the first expired role in TUF order.
            assert_eq!(role, Role::Timestamp);
            assert_eq!(expires, t("2026-08-01T00:00:00Z"));
        }
        other => panic!("expected expiry, got {other}"),
    }
}

#[test]
fn freeze_expired_targets() {
    let g = Generation::default();
    let repo = TestRepo::build(1, g);
    let mut targets: Signed<Targets> = repo.parse("1.targets.json");
    targets.signed.expires = crate::testrepo::jiff("2026-01-01T00:00:00Z");
    repo.write(
        "1.targets.json",
        &signed_json(
            targets.signed,
            &[&repo.keys.targets[0], &repo.keys.targets[1]],
        ),
    );
    repo.reseal(g, true);
    match refused(&repo, None) {
        Error::Expired { role, expires, .. } => {
            assert_eq!(role, Role::Targets);
            assert_eq!(expires, t("2026-01-01T00:00:00Z"));
        }
        other => panic!("expected expiry, got {other}"),
    }
}

/// Snapshot lists targets version 2 (by version only, as Sigstore does), but
/// `2.targets.json` holds the validly signed version 1.
#[test]
fn mix_and_match_snapshot_lists_other_targets_version() {
    let repo = TestRepo::build(1, Generation::default());
    let v1 = repo.read("1.targets.json");
    let g2 = Generation {
        timestamp: 2,
        snapshot: 2,
        targets: 2,
        ..Generation::default()
    };
    repo.publish(g2);
    repo.reseal(g2, false);
    verify(&repo, None).unwrap();
    repo.write("2.targets.json", &v1);
    match refused(&repo, None) {
        Error::VersionMismatch {
            role: Role::Targets,
            listed_by: Role::Snapshot,
            listed: 2,
            found: 1,
        } => {}
        other => panic!("expected version mismatch, got {other}"),
    }
}

/// The same swap when the snapshot lists hashes (as tough's editor writes it).
#[test]
fn mix_and_match_with_hashed_snapshot_meta() {
    let repo = TestRepo::build(1, Generation::default());
    let v1 = repo.read("1.targets.json");
    repo.publish(Generation {
        timestamp: 2,
        snapshot: 2,
        targets: 2,
        ..Generation::default()
    });
    repo.write("2.targets.json", &v1);
    match refused(&repo, None) {
        Error::HashMismatch { what, .. } if what == "2.targets.json" => {}
        Error::LengthMismatch { what, .. } if what == "2.targets.json" => {}
        other => panic!("expected hash or length mismatch, got {other}"),
    }
}

#[test]
fn threshold_not_met_targets_signed_by_one_of_two() {
    let g = Generation::default();
    let repo = TestRepo::build(1, g);
    let targets: Signed<Targets> = repo.parse("1.targets.json");
    repo.write(
        "1.targets.json",
        &signed_json(targets.signed, &[&repo.keys.targets[0]]),
    );
    repo.reseal(g, true);
    match refused(&repo, None) {
        Error::ThresholdNotMet {
            role: Role::Targets,
            valid: 1,
            threshold: 2,
        } => {}
        other => panic!("expected threshold not met, got {other}"),
    }
}

#[test]
fn threshold_not_met_duplicate_signatures_do_not_count_twice() {
    let g = Generation::default();
    let repo = TestRepo::build(1, g);
    let targets: Signed<Targets> = repo.parse("1.targets.json");
    let k = &repo.keys.targets[0];
    repo.write("1.targets.json", &signed_json(targets.signed, &[k, k]));
    repo.reseal(g, true);
    match refused(&repo, None) {
        Error::Malformed { what, detail } => {
            assert_eq!(what, "targets metadata");
            assert!(detail.contains("same key id"), "{detail}");
        }
        other => panic!("expected duplicate signatures refused, got {other}"),
    }
}

#[test]
fn signature_by_unknown_key_on_timestamp() {
    let repo = TestRepo::build(1, Generation::default());
    let rogue = Key::generate();
    let timestamp: Signed<Timestamp> = repo.parse("timestamp.json");
    repo.write("timestamp.json", &signed_json(timestamp.signed, &[&rogue]));
    match refused(&repo, None) {
        Error::UnknownKey {
            role: Role::Timestamp,
            keyids,
            valid: 0,
            threshold: 1,
        } => assert_eq!(keyids, vec![hex::encode(&rogue.id)]),
        other => panic!("expected unknown key, got {other}"),
    }
}

#[test]
fn signature_by_key_of_another_role_on_snapshot() {
    let g = Generation::default();
    let repo = TestRepo::build(1, g);
    let snapshot: Signed<Snapshot> = repo.parse("1.snapshot.json");
    // The timestamp key is in root, but not authorized for snapshot.
    repo.write(
        "1.snapshot.json",
        &signed_json(snapshot.signed, &[&repo.keys.timestamp]),
    );
    let mut timestamp: Signed<Timestamp> = repo.parse("timestamp.json");
    timestamp.signed.meta.values_mut().for_each(|m| {
        m.hashes = None;
        m.length = None;
    });
    repo.write(
        "timestamp.json",
        &signed_json(timestamp.signed, &[&repo.keys.timestamp]),
    );
    match refused(&repo, None) {
        Error::UnknownKey {
            role: Role::Snapshot,
            ..
        } => {}
        other => panic!("expected unknown key, got {other}"),
    }
}

#[test]
fn bad_signature_on_tampered_timestamp() {
    let repo = TestRepo::build(1, Generation::default());
    let text = String::from_utf8(repo.read("timestamp.json")).unwrap();
    let tampered = text.replacen("\"version\": 1", "\"version\": 9", 1);
    assert_ne!(text, tampered);
    repo.write("timestamp.json", tampered.as_bytes());
    match refused(&repo, None) {
        Error::ThresholdNotMet {
            role: Role::Timestamp,
            valid: 0,
            threshold: 1,
        } => {}
        other => panic!("expected threshold not met, got {other}"),
    }
}

/// Root 2 with new root keys, signed as `signers` decide.
fn rotation_case(signers: impl Fn(&TestRepo, &[Key]) -> Vec<u8>) -> Error {
    let repo = TestRepo::build(1, Generation::default());
    let new_keys: Vec<Key> = (0..3).map(|_| Key::generate()).collect();
    let json = signers(&repo, &new_keys);
    repo.write("2.root.json", &json);
    refused(&repo, None)
}

fn rotated_root(repo: &TestRepo, new_keys: &[Key]) -> Root {
    let mut root = root_role(2, &repo.keys);
    let role = root.roles.get_mut(&tough::schema::RoleType::Root).unwrap();
    role.keyids = new_keys.iter().map(|k| k.id.clone()).collect();
    for k in new_keys {
        root.keys.insert(k.id.clone(), k.public.clone());
    }
    root
}

#[test]
fn bad_rotation_signed_by_old_keys_only() {
    let err = rotation_case(|repo, new_keys| {
        signed_json(
            rotated_root(repo, new_keys),
            &[&repo.keys.root[0], &repo.keys.root[1]],
        )
    });
    match err {
        Error::RootRotation {
            from: 1,
            to: 2,
            check:
                RotationCheck::NewKeysThreshold {
                    valid: 0,
                    threshold: 2,
                },
        } => {}
        other => panic!("expected rotation refused, got {other}"),
    }
}

#[test]
fn bad_rotation_signed_by_new_keys_only() {
    let err = rotation_case(|repo, new_keys| {
        signed_json(
            rotated_root(repo, new_keys),
            &[&new_keys[0], &new_keys[1], &new_keys[2]],
        )
    });
    match err {
        Error::RootRotation {
            from: 1,
            to: 2,
            check:
                RotationCheck::OldKeysThreshold {
                    valid: 0,
                    threshold: 2,
                },
        } => {}
        other => panic!("expected rotation refused, got {other}"),
    }
}

#[test]
fn good_rotation_signed_by_old_and_new_keys_verifies() {
    let repo = TestRepo::build(1, Generation::default());
    let new_keys: Vec<Key> = (0..3).map(|_| Key::generate()).collect();
    let json = signed_json(
        rotated_root(&repo, &new_keys),
        &[
            &repo.keys.root[0],
            &repo.keys.root[1],
            &new_keys[0],
            &new_keys[1],
        ],
    );
    repo.write("2.root.json", &json);
    let v = verify(&repo, None).unwrap();
    assert_eq!(v.root_chain, vec![1, 2]);
}

#[test]
fn bad_rotation_version_skip_in_file() {
    let err = rotation_case(|repo, _| {
        let k = &repo.keys.root;
        signed_json(root_role(3, &repo.keys), &[&k[0], &k[1]])
    });
    match err {
        Error::RootRotation {
            from: 1,
            to: 3,
            check: RotationCheck::VersionNotIncremented,
        } => {}
        other => panic!("expected version skip, got {other}"),
    }
}

#[test]
fn bad_rotation_version_skip_missing_intermediate() {
    let repo = TestRepo::build(3, Generation::default());
    repo.remove("2.root.json");
    match refused(&repo, None) {
        Error::RootRotation {
            from: 1,
            to: 3,
            check: RotationCheck::MissingIntermediate,
        } => {}
        other => panic!("expected version skip, got {other}"),
    }
}

#[test]
fn target_length_mismatch() {
    let repo = TestRepo::build(1, Generation::default());
    let v = verify(&repo, None).unwrap();
    let path = &v
        .targets
        .iter()
        .find(|t| t.name == "notes.txt")
        .unwrap()
        .path;
    let mut data = repo.read(path);
    data.extend_from_slice(b"appended\n");
    repo.write(path, &data);
    match refused(&repo, None) {
        Error::LengthMismatch {
            what,
            expected,
            actual,
        } => {
            assert_eq!(&what, path);
            assert_eq!(actual, expected + 9);
        }
        other => panic!("expected length mismatch, got {other}"),
    }
}

#[test]
fn target_hash_mismatch() {
    let repo = TestRepo::build(1, Generation::default());
    let v = verify(&repo, None).unwrap();
    let path = &v
        .targets
        .iter()
        .find(|t| t.name == "trusted_root.json")
        .unwrap()
        .path;
    let data = repo.read(path).to_ascii_uppercase();
    repo.write(path, &data);
    match refused(&repo, None) {
        Error::HashMismatch { what, .. } => assert_eq!(&what, path),
        other => panic!("expected hash mismatch, got {other}"),
    }
}

#[test]
fn oversized_targets_metadata() {
    let repo = TestRepo::build(1, Generation::default());
    let limits = Limits {
        max_targets_bytes: 256,
        ..Limits::default()
    };
    let err = verify_snapshot(&repo.pinned_root(), repo.path(), now(), None, &limits).unwrap_err();
    match err {
        Error::TooLarge { what, limit: 256 } => assert_eq!(what, "1.targets.json"),
        other => panic!("expected too large, got {other}"),
    }
}

#[test]
fn online_key_rotation_lets_timestamp_and_snapshot_versions_start_over() {
    let repo = TestRepo::build(
        1,
        Generation {
            timestamp: 9,
            snapshot: 9,
            ..Generation::default()
        },
    );
    let mut state = state_after(&repo);
    // Root 2 rotates the timestamp and snapshot keys (TUF 5.3.11); their
    // versions start over at 1. Targets keeps its keys and must not roll back.
    let mut rotated = repo.fork();
    rotated.keys.snapshot = Key::generate();
    rotated.keys.timestamp = Key::generate();
    let k = rotated.keys.root.clone();
    rotated.write_root(2, &[&k[0], &k[1]]);
    rotated.publish(Generation::default());
    let v = verify_snapshot(
        &rotated.pinned_root(),
        rotated.path(),
        now(),
        Some(&state),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(v.versions.timestamp, 1);
    state.update(&v).unwrap();
    assert_eq!(state.versions().timestamp, 1);
    assert_eq!(state.versions().root, 2);
}

#[test]
fn online_keys_unchanged_timestamp_cannot_start_over() {
    let repo = TestRepo::build(
        1,
        Generation {
            timestamp: 9,
            snapshot: 9,
            ..Generation::default()
        },
    );
    let state = state_after(&repo);
    let same = repo.fork();
    let k = same.keys.root.clone();
    same.write_root(2, &[&k[0], &k[1]]);
    same.publish(Generation::default());
    match refused(&same, Some(&state)) {
        Error::Rollback {
            role: Role::Timestamp,
            seen: 9,
            offered: 1,
        } => {}
        other => panic!("expected timestamp rollback, got {other}"),
    }
}

#[test]
fn role_type_of_another_role_or_missing() {
    for (file, from, to) in [
        (
            "timestamp.json",
            "\"_type\": \"timestamp\"",
            "\"_type\": \"snapshot\"",
        ),
        ("timestamp.json", "\"_type\": \"timestamp\"", "\"_type\": 7"),
        ("timestamp.json", "\"_type\": \"timestamp\",", ""),
    ] {
        let repo = TestRepo::build(1, Generation::default());
        let text = String::from_utf8(repo.read(file)).unwrap();
        let changed = text.replacen(from, to, 1);
        assert_ne!(text, changed, "{file}: {from}");
        repo.write(file, changed.as_bytes());
        match refused(&repo, None) {
            Error::Malformed { what, detail } if what == file && detail.contains("_type") => {}
            other => panic!("{file} {to:?}: expected a _type refusal, got {other}"),
        }
    }
}
