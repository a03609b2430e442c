//! `tuf-repo`: mirror a TUF repository (the public Sigstore trust root) on the
//! low side and verify the snapshot offline on the high side. The only crate
//! of the workspace that imports [`tough`].
//!
//! - [`snapshot`] loads a repository from a mirror (`http`, `https` or `file`
//!   URL) starting from a bootstrap root, verifies everything, and writes a
//!   self-contained snapshot directory laid out like the live repository.
//! - [`verify_snapshot`] verifies such a directory offline against a pinned
//!   root, a reference time and, optionally, a [`TufState`] that refuses
//!   rollback across runs, and returns the derived `trusted_root.json`.
//!
//! - [`init_private`], [`publish`] and [`refresh`] build and maintain
//!   airgate's own (private) TUF repository, which distributes the private
//!   `trusted_root.json` inside the enclave, laid out like the public
//!   Sigstore repository (consistent snapshots, flat target names); each
//!   write is verified in a staging directory and put in place with
//!   `timestamp.json` last, so a crash leaves the previous repository
//!   loadable. [`load_private`] loads it offline as a client would.
//!
//! tough cannot evaluate expiry at an injected time, so repositories are
//! loaded with `ExpirationEnforcement::Unsafe` and this crate applies its own
//! time policy to the `expires` of every role it loads (root, timestamp,
//! snapshot, targets and delegated targets). Both entry points are blocking:
//! they run tough on a private current-thread tokio runtime in a scoped
//! thread. Do not call them from async code directly; use
//! `tokio::task::spawn_blocking`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod chain;
mod error;
mod fsutil;
mod mirror;
mod policy;
mod private_repo;
mod state;
mod transport;
mod verify;

pub use error::{Error, Role, RotationCheck};
pub use mirror::{snapshot, SnapshotSummary};
pub use policy::{RoleExpiries, RoleVersions};
pub use private_repo::{
    format_duration, generate_key_file, init_private, load_private, parse_duration, publish,
    refresh, rotate_root, rotate_root_failing_before, InitSummary, LoadedRepo, PrivateRepoConfig,
    PublishSummary, PublishedTarget, RoleDurations, RootRotation, RotationSummary, CONFIG_FILE,
};
pub use state::TufState;
/// The URL type [`snapshot`] takes (re-exported so callers need not depend on `url`).
pub use url::Url;
pub use verify::{verify_snapshot, VerifiedSnapshot, VerifiedTarget};

/// The bootstrap root: version 12 of the public Sigstore production root
/// (sigstore/root-signing, Apache-2.0). The production chain can only be
/// walked from v12 or newer; the expiry of this root does not matter, only
/// the newest root's does.
pub const PRODUCTION_ROOT: &[u8] = include_bytes!("../data/sigstore-prod-12.root.json");

/// The target every Sigstore TUF repository carries and the gateway needs.
pub const TRUSTED_ROOT_TARGET: &str = "trusted_root.json";

/// Explicit limits against endless-data attacks. Sizes are in bytes; a file
/// larger than its limit is refused with [`Error::TooLarge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `N.root.json`.
    pub max_root_bytes: u64,
    /// Largest `timestamp.json`.
    pub max_timestamp_bytes: u64,
    /// Largest `N.snapshot.json`.
    pub max_snapshot_bytes: u64,
    /// Largest targets metadata file (`N.targets.json` and delegated roles).
    pub max_targets_bytes: u64,
    /// Largest target file (e.g. `trusted_root.json`).
    pub max_target_bytes: u64,
    /// Most root updates (N to N+1) one load may walk.
    pub max_root_updates: u64,
}

impl Default for Limits {
    /// Generous for the Sigstore repository (whose files are a few KiB and
    /// whose root changes a few times a year), small enough to refuse
    /// endless data: roots 1 MiB, timestamp 256 KiB, snapshot 4 MiB, targets
    /// metadata 8 MiB, target files 16 MiB, 64 root updates.
    fn default() -> Self {
        Limits {
            max_root_bytes: 1 << 20,
            max_timestamp_bytes: 256 << 10,
            max_snapshot_bytes: 4 << 20,
            max_targets_bytes: 8 << 20,
            max_target_bytes: 16 << 20,
            max_root_updates: 64,
        }
    }
}

impl Limits {
    fn to_tough(self) -> tough::Limits {
        tough::Limits {
            max_root_size: self.max_root_bytes,
            max_targets_size: self.max_targets_bytes,
            max_timestamp_size: self.max_timestamp_bytes,
            max_snapshot_size: self.max_snapshot_bytes,
            max_root_updates: self.max_root_updates,
        }
    }
}

/// Runs `make()`'s future to completion on a private current-thread runtime,
/// in a scoped thread so that it works whatever runtime context the caller is in.
fn block_on<F, Fut, T>(make: F) -> Result<T, Error>
where
    F: FnOnce() -> Fut + Send,
    Fut: std::future::Future<Output = Result<T, Error>>,
    T: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(Error::Runtime)?;
                runtime.block_on(make())
            })
            .join()
            .unwrap_or_else(|_| {
                Err(Error::Runtime(std::io::Error::other(
                    "the TUF worker thread panicked",
                )))
            })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn embedded_root_is_sigstore_production_v12() {
        let root: tough::schema::Signed<tough::schema::Root> =
            serde_json::from_slice(PRODUCTION_ROOT).unwrap();
        assert_eq!(root.signed.version.get(), 12);
        assert!(root.signed.consistent_snapshot);
        root.signed.verify_role(&root).unwrap();
    }

    #[test]
    fn block_on_works_inside_and_outside_a_runtime() {
        let outside = block_on(|| async { Ok(7) }).unwrap();
        assert_eq!(outside, 7);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let inside = rt.block_on(async { block_on(|| async { Ok(8) }) }).unwrap();
        assert_eq!(inside, 8);
    }
}
