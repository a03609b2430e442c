//! Rollback protection across runs with a state file, on the real production repository.

use tuf_repo::{verify_snapshot, Error, Limits, Role, TufState, PRODUCTION_ROOT};

use crate::common::*;

fn accepted_state(path: &std::path::Path) -> TufState {
    let (mut state, existed) = TufState::load_or_new(path).unwrap();
    assert!(!existed);
    let v = verify_snapshot(
        PRODUCTION_ROOT,
        &prod(),
        as_of_fixtures(),
        Some(&state),
        &Limits::default(),
    )
    .unwrap();
    state.update(&v).unwrap();
    state.save(path).unwrap();
    let reloaded = TufState::load(path).unwrap();
    assert_eq!(reloaded, state);
    reloaded
}

#[test]
fn state_records_versions_and_newest_root() {
    let dir = tempfile::tempdir().unwrap();
    let state = accepted_state(&dir.path().join("tuf-state.json"));
    let v = state.versions();
    assert_eq!(
        (v.root, v.timestamp, v.snapshot, v.targets),
        (15, 762, 165, 14)
    );
    assert_eq!(
        state.newest_root_json().unwrap(),
        read(prod().join("15.root.json"))
    );
    // The same snapshot again is fine.
    verify_snapshot(
        PRODUCTION_ROOT,
        &prod(),
        as_of_fixtures(),
        Some(&state),
        &Limits::default(),
    )
    .unwrap();
}

#[test]
fn state_starts_the_chain_from_the_remembered_root() {
    let dir = tempfile::tempdir().unwrap();
    let state = accepted_state(&dir.path().join("tuf-state.json"));
    let snapshot = copy_repo(&prod());
    for v in 1..=14 {
        std::fs::remove_file(snapshot.path().join(format!("{v}.root.json"))).unwrap();
    }
    let v = verify_snapshot(
        PRODUCTION_ROOT,
        snapshot.path(),
        as_of_fixtures(),
        Some(&state),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(v.root_chain, vec![15]);
    // Without the state, root 12 cannot reach 15.
    let err = verify_snapshot(
        PRODUCTION_ROOT,
        snapshot.path(),
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
                to: 15,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rollback_root_production_snapshot_without_its_newest_root() {
    let dir = tempfile::tempdir().unwrap();
    let state = accepted_state(&dir.path().join("tuf-state.json"));
    let snapshot = copy_repo(&prod());
    std::fs::remove_file(snapshot.path().join("15.root.json")).unwrap();
    let err = verify_snapshot(
        PRODUCTION_ROOT,
        snapshot.path(),
        as_of_fixtures(),
        Some(&state),
        &Limits::default(),
    )
    .unwrap_err();
    match err {
        Error::Rollback {
            role: Role::Root,
            seen: 15,
            offered: 14,
        } => {}
        other => panic!("expected root rollback, got {other}"),
    }
}
