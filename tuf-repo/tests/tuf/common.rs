//! Shared helpers: fixtures, times, copies of repositories to tamper with.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// `$AIRGATE_FIXTURES`, or the repository's `tests/data` (see its `PROVENANCE.md`).
pub fn fixtures() -> PathBuf {
    std::env::var_os("AIRGATE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data"))
}

pub fn prod() -> PathBuf {
    fixtures().join("tuf-sigstore-prod")
}

pub fn staging() -> PathBuf {
    fixtures().join("tuf-sigstore-staging")
}

pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// When the fixtures were fresh.
pub fn as_of_fixtures() -> DateTime<Utc> {
    t("2026-08-22T00:00:00Z")
}

/// "Today" for the fixtures (root v15 expired 2026-11-20).
pub fn today() -> DateTime<Utc> {
    t("2026-11-23T00:00:00Z")
}

/// Copies a repository directory (recursively) into a fresh temporary directory.
pub fn copy_repo(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(from, dir.path());
    dir
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
            let mut perms = std::fs::metadata(&dest).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&dest, perms).unwrap();
        }
    }
}

pub fn read(path: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(path.as_ref()).unwrap()
}
