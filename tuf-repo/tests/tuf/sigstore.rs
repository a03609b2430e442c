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
