//! The high-side state directory: private CA files, `state.db` (log, imports),
//! and the content-addressed blob store. Only this module knows the layout.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use private_ca::{ca::files, Curve, PrivateCa, SigningKey};

use crate::bundle::{TransparencyLog, TrustedRoot};
use crate::crypto::VerifyingKey;
use crate::tlog::{open_database, Log};
use crate::{Error, Result};

/// The SQLite database inside a state directory.
pub const DATABASE: &str = "state.db";

/// An opened state directory with its signing keys (the high side's writer).
pub struct StateDir {
    dir: PathBuf,
    /// The private CA.
    pub ca: PrivateCa,
    /// The transparency log (holding its key).
    pub log: Log,
    /// The state database.
    pub conn: Connection,
}

impl std::fmt::Debug for StateDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDir")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn require_ceremony(dir: &Path) -> Result<()> {
    if dir.join(files::CONFIG).is_file() {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{} is not an airgate state directory (no {}); create it with `airgate ca init --dir {}`",
            dir.display(),
            files::CONFIG,
            dir.display()
        )))
    }
}

impl StateDir {
    /// Opens a state directory created by `airgate ca init`, creating `state.db` if needed.
    pub fn open(dir: &Path) -> Result<Self> {
        require_ceremony(dir)?;
        let ca = PrivateCa::load(dir)?;
        let log_key =
            SigningKey::load(&dir.join(files::TLOG_KEY), Curve::P256, "transparency log")?;
        let log = Log::new(log_key, &ca.config().tlog_url);
        let conn = open_database(&dir.join(DATABASE))?;
        log.initialize(&conn)?;
        Ok(StateDir {
            dir: dir.to_path_buf(),
            ca,
            log,
            conn,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Read-only view of a state directory: the database and the public trusted root.
pub struct StateReader {
    /// The state database.
    pub conn: Connection,
    /// The private trusted root (public material).
    pub trusted_root: TrustedRoot,
    /// Raw `trusted_root.json`.
    pub trusted_root_json: Vec<u8>,
}

impl std::fmt::Debug for StateReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateReader").finish_non_exhaustive()
    }
}

impl StateReader {
    /// Opens the database and the public trusted root; needs no private key.
    pub fn open(dir: &Path) -> Result<Self> {
        require_ceremony(dir)?;
        let path = dir.join(files::TRUSTED_ROOT);
        let trusted_root_json = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let trusted_root =
            TrustedRoot::from_json(&trusted_root_json).map_err(|source| Error::TrustRoot {
                location: path.display().to_string(),
                source,
            })?;
        let db = dir.join(DATABASE);
        if !db.is_file() {
            return Err(Error::Usage(format!(
                "{} has no {DATABASE} yet: nothing was signed or imported",
                dir.display()
            )));
        }
        let conn = open_database(&db)?;
        Ok(StateReader {
            conn,
            trusted_root,
            trusted_root_json,
        })
    }

    /// The transparency log entry of the trusted root (airgate's private log).
    pub fn tlog(&self) -> Result<&TransparencyLog> {
        self.trusted_root.tlogs.first().ok_or_else(|| {
            Error::Usage("the private trusted root lists no transparency log".into())
        })
    }

    /// The log's public key.
    pub fn log_key(&self) -> Result<&VerifyingKey> {
        Ok(&self.tlog()?.key)
    }
}
