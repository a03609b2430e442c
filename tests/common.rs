//! Shared helpers for the end-to-end tests.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The fixtures directory: `$AIRGATE_FIXTURES`, else `../shared/fixtures` beside the repo.
pub fn fixtures() -> PathBuf {
    if let Ok(dir) = std::env::var("AIRGATE_FIXTURES") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")
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
