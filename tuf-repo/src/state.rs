//! Rollback protection across runs: the highest role versions accepted and
//! the newest root, kept in a small JSON file written atomically.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tough::schema::{RoleType, Root, Signed};

use crate::chain::parse_trusted_root;
use crate::fsutil::write_atomic;
use crate::policy::{check_rollback, OnlineKeys};
use crate::{Error, RoleVersions, VerifiedSnapshot};

const FORMAT: u32 = 1;

/// A parsed, self-verified root and its exact bytes.
pub(crate) type TrustedRoot = (Signed<Root>, Vec<u8>);
const MAX_STATE_BYTES: u64 = 4 << 20;

/// What the high side has accepted so far from one TUF repository: the
/// highest version of each top-level role and the newest root. Use one state
/// file per repository. A later [`crate::verify_snapshot`] given this state
/// starts the root chain from the remembered root (when it is newer than the
/// pinned one) and refuses any role version lower than recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TufState {
    format: u32,
    versions: RoleVersions,
    /// The newest accepted root, as JSON text (exact bytes of the root file).
    newest_root: Option<String>,
}

impl TufState {
    /// An empty state: nothing accepted yet.
    pub fn new() -> Self {
        TufState {
            format: FORMAT,
            versions: RoleVersions::default(),
            newest_root: None,
        }
    }

    /// The highest versions accepted.
    pub fn versions(&self) -> &RoleVersions {
        &self.versions
    }

    /// The newest accepted root, byte for byte.
    pub fn newest_root_json(&self) -> Option<&[u8]> {
        self.newest_root.as_deref().map(str::as_bytes)
    }

    /// Reads a state file; a missing file is an error (see [`TufState::load_or_new`]).
    pub fn load(path: &Path) -> Result<Self, Error> {
        let data = read_limited(path)?;
        let state: TufState = serde_json::from_slice(&data).map_err(|e| Error::State {
            path: path.to_owned(),
            detail: format!("not a TUF state file: {e}"),
        })?;
        state.validate().map_err(|detail| Error::State {
            path: path.to_owned(),
            detail,
        })?;
        Ok(state)
    }

    /// Reads a state file, or returns an empty state when `path` does not
    /// exist (the first run). The boolean is true when the file existed.
    pub fn load_or_new(path: &Path) -> Result<(Self, bool), Error> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((TufState::new(), false)),
            Err(e) => Err(Error::io(path, e)),
            Ok(_) => Ok((TufState::load(path)?, true)),
        }
    }

    /// Writes the state atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| Error::State {
            path: path.to_owned(),
            detail: format!("cannot encode: {e}"),
        })?;
        json.push(b'\n');
        write_atomic(path, &json)
    }

    /// Checks `verified` against the state (no rollback of any role), then
    /// records its versions and, if newer, its root.
    pub fn update(&mut self, verified: &VerifiedSnapshot) -> Result<(), Error> {
        let new_root: Signed<Root> = serde_json::from_slice(&verified.newest_root_json)
            .map_err(|e| Error::malformed("newest root", e))?;
        if new_root.signed.version.get() != verified.versions.root {
            return Err(Error::malformed(
                "newest root",
                "its version differs from the verified root version",
            ));
        }
        self.check_offered(&verified.versions, &new_root)?;
        let root_text = std::str::from_utf8(&verified.newest_root_json)
            .map_err(|e| Error::malformed("newest root", e))?;
        self.format = FORMAT;
        self.versions = verified.versions;
        self.newest_root = Some(root_text.to_owned());
        Ok(())
    }

    /// Refuses `offered` versions lower than recorded; after a rotation of the
    /// timestamp or snapshot keys their versions may start over (TUF 5.3.11).
    pub(crate) fn check_offered(
        &self,
        offered: &RoleVersions,
        new_root: &Signed<Root>,
    ) -> Result<(), Error> {
        let keys = match self.trusted_root()? {
            Some((old_root, _)) if online_keys_changed(&old_root, new_root) => OnlineKeys::Rotated,
            _ => OnlineKeys::Unchanged,
        };
        check_rollback(&self.versions, offered, keys)
    }

    /// The remembered root, parsed and self-verified.
    pub(crate) fn trusted_root(&self) -> Result<Option<TrustedRoot>, Error> {
        let Some(text) = &self.newest_root else {
            return Ok(None);
        };
        let root = parse_trusted_root(text.as_bytes(), "state's newest root")?;
        Ok(Some((root, text.as_bytes().to_vec())))
    }

    fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "unsupported format {} (expected {FORMAT})",
                self.format
            ));
        }
        match self.trusted_root() {
            Err(e) => Err(e.to_string()),
            Ok(Some((root, _))) if root.signed.version.get() != self.versions.root => Err(format!(
                "root version {} recorded, but the remembered root is version {}",
                self.versions.root,
                root.signed.version.get()
            )),
            Ok(None) if self.versions != RoleVersions::default() => {
                Err("versions recorded without a root".to_owned())
            }
            Ok(_) => Ok(()),
        }
    }
}

impl Default for TufState {
    /// Same as [`TufState::new`].
    fn default() -> Self {
        TufState::new()
    }
}

fn online_keys_changed(old: &Signed<Root>, new: &Signed<Root>) -> bool {
    [RoleType::Timestamp, RoleType::Snapshot]
        .iter()
        .any(|role| {
            let keys = |root: &Signed<Root>| {
                root.signed.roles.get(role).map(|k| {
                    let mut ids: Vec<String> = k.keyids.iter().map(hex::encode).collect();
                    ids.sort();
                    (ids, k.threshold)
                })
            };
            keys(old) != keys(new)
        })
}

fn read_limited(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut data = Vec::new();
    file.take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::io(path, e))?;
    if data.len() as u64 > MAX_STATE_BYTES {
        return Err(Error::State {
            path: path.to_owned(),
            detail: format!("larger than {MAX_STATE_BYTES} bytes"),
        });
    }
    Ok(data)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_a_fresh_state_but_load_is_strict() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        let (state, existed) = TufState::load_or_new(&p).unwrap();
        assert!(!existed);
        assert_eq!(state, TufState::new());
        assert!(matches!(TufState::load(&p), Err(Error::Io { .. })));
    }

    #[test]
    fn empty_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        TufState::new().save(&p).unwrap();
        assert_eq!(TufState::load(&p).unwrap(), TufState::new());
    }

    #[test]
    fn corrupt_state_is_a_state_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        for bad in [
            &b"{"[..],
            br#"{"format":2,"versions":{"root":0,"timestamp":0,"snapshot":0,"targets":0},"newest_root":null}"#,
            br#"{"format":1,"versions":{"root":3,"timestamp":0,"snapshot":0,"targets":0},"newest_root":null}"#,
            br#"{"format":1,"versions":{"root":0,"timestamp":0,"snapshot":0,"targets":0},"newest_root":"{}"}"#,
            br#"{"format":1,"versions":{"root":0,"timestamp":0,"snapshot":0,"targets":0},"newest_root":null,"extra":1}"#,
        ] {
            std::fs::write(&p, bad).unwrap();
            let err = TufState::load(&p).unwrap_err();
            assert!(
                matches!(err, Error::State { .. }),
                "{}: {err}",
                String::from_utf8_lossy(bad)
            );
            assert!(!err.is_rejection());
        }
    }

    #[test]
    fn state_with_production_root_validates_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        let root = std::str::from_utf8(crate::PRODUCTION_ROOT).unwrap();
        let mut state = TufState::new();
        state.newest_root = Some(root.to_owned());
        state.versions.root = 12;
        state.save(&p).unwrap();
        let loaded = TufState::load(&p).unwrap();
        assert_eq!(loaded.newest_root_json(), Some(crate::PRODUCTION_ROOT));
        state.versions.root = 13;
        state.save(&p).unwrap();
        assert!(matches!(TufState::load(&p), Err(Error::State { .. })));
    }
}
