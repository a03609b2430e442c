//! Shared helpers for the end-to-end tests.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The third-party test data: `$AIRGATE_FIXTURES`, else `tests/data` in this
/// repository (see `tests/data/PROVENANCE.md`).
pub fn fixtures() -> PathBuf {
    if let Some(dir) = std::env::var_os("AIRGATE_FIXTURES") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Runs the airgate binary with `args`.
pub fn airgate<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_airgate"))
        .args(args)
        .output()
        .expect("failed to run airgate")
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The Python interpreter of the interop venv: `$AIRGATE_PYTHON`, else
/// `tests/.venv/bin/python` (made by `tests/run-all.sh`).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("AIRGATE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/.venv/bin/python");
    assert!(
        venv.exists(),
        "the interop venv {} does not exist: run tests/run-all.sh (or set AIRGATE_PYTHON)",
        venv.display()
    );
    venv
}

/// The directory holding sigstore-js (`npm ci` in tests/interop).
pub fn js_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    assert!(
        dir.join("node_modules/@sigstore/verify").is_dir(),
        "sigstore-js is not installed: run tests/run-all.sh (npm ci --prefix {})",
        dir.display()
    );
    dir
}

/// Every file under `tests/data` matches `tests/data/SHA256SUMS`, and nothing
/// is added or missing: the third-party data is what PROVENANCE.md names.
#[test]
fn data_matches_its_checksums() {
    use sha2::Digest;
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let sums = std::fs::read_to_string(data.join("SHA256SUMS")).unwrap();
    let mut listed = std::collections::BTreeSet::new();
    for line in sums.lines() {
        let (hex, name) = line.split_once("  ").unwrap();
        let name = name.trim_start_matches("./");
        let bytes = std::fs::read(data.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            hex,
            hex::encode(sha2::Sha256::digest(&bytes)),
            "{name} changed"
        );
        listed.insert(name.to_string());
    }
    let mut stack = vec![data.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path
                .strip_prefix(&data)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if name != "SHA256SUMS" && name != "PROVENANCE.md" {
                assert!(listed.contains(&name), "{name} is not in SHA256SUMS");
            }
        }
    }
}
