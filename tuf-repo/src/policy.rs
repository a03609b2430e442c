//! The time and rollback policy, as pure functions over versions and expiry
//! times. tough loads with `ExpirationEnforcement::Unsafe`; this is the
//! expiry check that replaces it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Role};

/// The versions of the four top-level roles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleVersions {
    /// Root version (the newest root of the chain).
    pub root: u64,
    /// Timestamp version.
    pub timestamp: u64,
    /// Snapshot version.
    pub snapshot: u64,
    /// Top-level targets version.
    pub targets: u64,
}

/// When each loaded role expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleExpiries {
    /// The newest root's expiry (intermediate roots' expiry does not matter).
    pub root: DateTime<Utc>,
    /// Timestamp expiry.
    pub timestamp: DateTime<Utc>,
    /// Snapshot expiry.
    pub snapshot: DateTime<Utc>,
    /// Top-level targets expiry.
    pub targets: DateTime<Utc>,
    /// Expiry of each delegated targets role loaded, by name.
    pub delegated: BTreeMap<String, DateTime<Utc>>,
}

impl RoleExpiries {
    /// Every role with its expiry, in the order TUF checks them.
    pub fn iter(&self) -> impl Iterator<Item = (Role, DateTime<Utc>)> + '_ {
        [
            (Role::Root, self.root),
            (Role::Timestamp, self.timestamp),
            (Role::Snapshot, self.snapshot),
            (Role::Targets, self.targets),
        ]
        .into_iter()
        .chain(
            self.delegated
                .iter()
                .map(|(name, t)| (Role::Delegated(name.clone()), *t)),
        )
    }

    /// The earliest expiry and its role: the time the loaded metadata stops verifying.
    pub fn earliest(&self) -> (Role, DateTime<Utc>) {
        self.iter()
            .fold((Role::Root, self.root), |best, (role, t)| {
                if t < best.1 {
                    (role, t)
                } else {
                    best
                }
            })
    }
}

/// Freeze-attack check (TUF 5.3.10, 5.4.4, 5.5.6, 5.6.6): each role's expiry
/// must be later than the reference time. The first expired role in TUF order
/// is reported.
pub(crate) fn check_expiry(
    expiries: &RoleExpiries,
    reference_time: DateTime<Utc>,
) -> Result<(), Error> {
    match expiries
        .iter()
        .find(|(_, expires)| *expires <= reference_time)
    {
        Some((role, expires)) => Err(Error::Expired {
            role,
            expires,
            reference_time,
        }),
        None => Ok(()),
    }
}

/// Whether the timestamp or snapshot keys changed between two roots; TUF
/// 5.3.11 then discards the trusted timestamp and snapshot (recovery from a
/// fast-forward attack), so their versions may start over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnlineKeys {
    /// Same timestamp and snapshot keys and thresholds.
    Unchanged,
    /// Timestamp or snapshot keys (or thresholds) changed.
    Rotated,
}

/// Rollback check against versions already accepted.
pub(crate) fn check_rollback(
    seen: &RoleVersions,
    offered: &RoleVersions,
    keys: OnlineKeys,
) -> Result<(), Error> {
    let mut pairs = vec![(Role::Root, seen.root, offered.root)];
    if keys == OnlineKeys::Unchanged {
        pairs.push((Role::Timestamp, seen.timestamp, offered.timestamp));
        pairs.push((Role::Snapshot, seen.snapshot, offered.snapshot));
    }
    pairs.push((Role::Targets, seen.targets, offered.targets));
    for (role, seen, offered) in pairs {
        if offered < seen {
            return Err(Error::Rollback {
                role,
                seen,
                offered,
            });
        }
    }
    Ok(())
}

/// tough's `expires` (a jiff timestamp) as chrono time, from its parts.
pub(crate) fn utc(seconds: i64, nanos: i32) -> DateTime<Utc> {
    let nanos = u32::try_from(nanos).unwrap_or(0);
    DateTime::from_timestamp(seconds, nanos).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn prod_expiries() -> RoleExpiries {
        RoleExpiries {
            root: t("2026-11-20T13:58:18Z"),
            timestamp: t("2026-08-28T19:25:56Z"),
            snapshot: t("2036-05-15T08:09:16Z"),
            targets: t("2036-05-09T09:00:52Z"),
            delegated: BTreeMap::from([(
                "registry.npmjs.org".to_owned(),
                t("2026-10-13T19:45:24Z"),
            )]),
        }
    }

    #[test]
    fn fresh_metadata_passes() {
        check_expiry(&prod_expiries(), t("2026-08-22T00:00:00Z")).unwrap();
    }

    #[test]
    fn freeze_reports_first_expired_role_in_tuf_order() {
        let err = check_expiry(&prod_expiries(), t("2026-11-23T00:00:00Z")).unwrap_err();
        match err {
            Error::Expired { role, expires, .. } => {
                assert_eq!(role, Role::Root);
                assert_eq!(expires, t("2026-11-20T13:58:18Z"));
            }
            other => panic!("unexpected {other}"),
        }
        let err = check_expiry(&prod_expiries(), t("2026-09-01T00:00:00Z")).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Expired {
                    role: Role::Timestamp,
                    ..
                }
            ),
            "{err}"
        );
        let err = check_expiry(&prod_expiries(), t("2026-10-20T00:00:00Z")).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Expired {
                    role: Role::Timestamp,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn expiry_at_exactly_the_reference_time_is_expired() {
        let mut e = prod_expiries();
        e.timestamp = t("2030-01-01T00:00:00Z");
        e.root = t("2030-01-01T00:00:00Z");
        e.delegated.clear();
        check_expiry(&e, t("2029-12-31T23:59:59Z")).unwrap();
        let err = check_expiry(&e, t("2030-01-01T00:00:00Z")).unwrap_err();
        assert!(matches!(
            err,
            Error::Expired {
                role: Role::Root,
                ..
            }
        ));
    }

    #[test]
    fn delegated_roles_are_checked_too() {
        let mut e = prod_expiries();
        e.timestamp = t("2030-01-01T00:00:00Z");
        e.root = t("2030-01-01T00:00:00Z");
        let err = check_expiry(&e, t("2026-10-20T00:00:00Z")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "delegated targets role \"registry.npmjs.org\" metadata expired at 2026-10-13T19:45:24Z \
             (reference time 2026-10-20T00:00:00Z): refusing possibly frozen metadata"
        );
        assert_eq!(
            e.earliest(),
            (
                Role::Delegated("registry.npmjs.org".into()),
                t("2026-10-13T19:45:24Z")
            )
        );
    }

    fn v(root: u64, timestamp: u64, snapshot: u64, targets: u64) -> RoleVersions {
        RoleVersions {
            root,
            timestamp,
            snapshot,
            targets,
        }
    }

    #[test]
    fn equal_or_newer_versions_pass() {
        check_rollback(
            &v(15, 762, 165, 14),
            &v(15, 762, 165, 14),
            OnlineKeys::Unchanged,
        )
        .unwrap();
        check_rollback(
            &v(15, 762, 165, 14),
            &v(16, 800, 170, 15),
            OnlineKeys::Unchanged,
        )
        .unwrap();
    }

    #[test]
    fn each_role_rollback_is_named() {
        let seen = v(15, 762, 165, 14);
        for (offered, role) in [
            (v(14, 762, 165, 14), Role::Root),
            (v(15, 761, 165, 14), Role::Timestamp),
            (v(15, 762, 164, 14), Role::Snapshot),
            (v(15, 762, 165, 13), Role::Targets),
        ] {
            match check_rollback(&seen, &offered, OnlineKeys::Unchanged) {
                Err(Error::Rollback { role: r, .. }) => assert_eq!(r, role),
                other => panic!("{role}: {other:?}"),
            }
        }
    }

    #[test]
    fn rotated_online_keys_reset_timestamp_and_snapshot_only() {
        let seen = v(15, 762, 165, 14);
        check_rollback(&seen, &v(16, 1, 1, 14), OnlineKeys::Rotated).unwrap();
        let err = check_rollback(&seen, &v(16, 1, 1, 13), OnlineKeys::Rotated).unwrap_err();
        assert!(matches!(
            err,
            Error::Rollback {
                role: Role::Targets,
                ..
            }
        ));
    }

    #[test]
    fn utc_conversion_keeps_subseconds() {
        assert_eq!(utc(0, 5).timestamp_subsec_nanos(), 5);
        assert_eq!(utc(1_787_000_000, 0).timestamp(), 1_787_000_000);
    }
}
