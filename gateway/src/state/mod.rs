//! The high-side state directory. Only this module knows its layout:
//!
//! ```text
//! DIR/ca.json, *.crt.pem, *.key.pem (0600), trusted_root.json, trust_config.json   private CA (airgate ca init)
//! DIR/policy.toml            the high side's own policy ([trust] tuf-root pins the public TUF root)
//! DIR/state.db               SQLite: transparency log, imports, artifacts, exporters, TUF state
//! DIR/blobs/sha256/ab/<hex>  content-addressed artifact store
//! DIR/staging/<id>/          per-import staging; removed on success, recovered after a crash
//! DIR/state.lock             exclusive lock held by writers
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use private_ca::{ca::files, Curve, PrivateCa, SigningKey};

use crate::bundle::{TransparencyLog, TrustedRoot};
use crate::crypto::VerifyingKey;
use crate::judge::medium::{ImportedVersion, LastImport};
use crate::medium::manifest::EnrolledExporter;
use crate::signing::{LeafSignature, SignedBatch, SigningRequest};
use crate::tlog::{open_database, Log, LogError, LogReader};
use crate::{Error, Result};

mod extract;
pub mod oci;
mod plan;
pub mod queries;
pub mod sigs_codec;
pub mod witness;

pub use extract::Extracted;
pub use plan::{
    Committed, ImportPlan, MediumRecord, PlannedArtifact, PlannedImage, ReportFn, StoredManifest,
};

/// The SQLite database inside a state directory.
pub const DATABASE: &str = "state.db";
/// The high side's policy file inside a state directory.
pub const POLICY: &str = "policy.toml";
/// The private TUF repository distributing `trusted_root.json` (optional).
pub const TUF_REPO: &str = "tuf-repo";
/// The private TUF repository's role keys.
pub const TUF_KEYS: &str = "tuf-keys";
const NEW_BLOBS: &str = "new-blobs.txt";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS exporters (
    name TEXT PRIMARY KEY,
    key_id TEXT NOT NULL UNIQUE,
    spki BLOB NOT NULL,
    enrolled_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS imports (
    id INTEGER PRIMARY KEY,
    medium_id TEXT NOT NULL UNIQUE,
    exporter TEXT NOT NULL,
    export_time TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    pack_digest TEXT NOT NULL,
    medium_policy_sha256 TEXT NOT NULL,
    policy_sha256 TEXT NOT NULL,
    tuf_versions TEXT NOT NULL,
    checkpoint_size INTEGER NOT NULL,
    report TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS artifacts (
    name TEXT NOT NULL,
    import_id INTEGER NOT NULL REFERENCES imports(id),
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    upstream_identity TEXT NOT NULL,
    upstream_issuer TEXT NOT NULL,
    upstream_log_index INTEGER NOT NULL,
    upstream_log_url TEXT NOT NULL,
    signer_identity TEXT NOT NULL,
    log_index INTEGER NOT NULL,
    sigs BLOB NOT NULL,
    PRIMARY KEY (name, import_id)
);
CREATE INDEX IF NOT EXISTS artifacts_by_sha256 ON artifacts(sha256);
CREATE TABLE IF NOT EXISTS tuf_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS imports_no_update BEFORE UPDATE ON imports
    BEGIN SELECT RAISE(ABORT, 'imports are append-only'); END;
CREATE TRIGGER IF NOT EXISTS imports_no_delete BEFORE DELETE ON imports
    BEGIN SELECT RAISE(ABORT, 'imports are append-only'); END;
CREATE TRIGGER IF NOT EXISTS artifacts_no_update BEFORE UPDATE ON artifacts
    BEGIN SELECT RAISE(ABORT, 'artifacts are append-only'); END;
CREATE TRIGGER IF NOT EXISTS artifacts_no_delete BEFORE DELETE ON artifacts
    BEGIN SELECT RAISE(ABORT, 'artifacts are append-only'); END;
"#;

/// An opened state directory with its signing keys (the high side's writer).
/// Holds an exclusive lock on the directory while it lives.
pub struct StateDir {
    dir: PathBuf,
    ca: PrivateCa,
    log: Log,
    conn: Connection,
    _lock: File,
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
            "{} is not an airgate state directory (no {}); create it with `airgate ca init --state {}`",
            dir.display(),
            files::CONFIG,
            dir.display()
        )))
    }
}

/// Creates the high-side tables (idempotent; writes nothing if they exist).
pub fn initialize_schema(conn: &Connection) -> Result<()> {
    let exists: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'tuf_state'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(LogError::from)?;
    if exists.is_none() {
        conn.execute_batch(SCHEMA).map_err(LogError::from)?;
    }
    conn.execute_batch(REFUSALS_SCHEMA)
        .map_err(LogError::from)?;
    Ok(())
}

/// Refused imports (append-only, the one thing a refusal writes), conda
/// channel records (one per imported conda package version, append-only)
/// and exporter key revocations (permanent). Created on open, so state
/// directories made before them get them too.
const REFUSALS_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS refused_imports (
    id INTEGER PRIMARY KEY,
    refused_at TEXT NOT NULL,
    media TEXT NOT NULL,
    manifest_sha256 TEXT,
    reason TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS refused_imports_no_update BEFORE UPDATE ON refused_imports
    BEGIN SELECT RAISE(ABORT, 'refused imports are append-only'); END;
CREATE TRIGGER IF NOT EXISTS refused_imports_no_delete BEFORE DELETE ON refused_imports
    BEGIN SELECT RAISE(ABORT, 'refused imports are append-only'); END;
CREATE TABLE IF NOT EXISTS conda_packages (
    name TEXT NOT NULL,
    import_id INTEGER NOT NULL,
    subdir TEXT NOT NULL,
    filename TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (name, import_id)
);
CREATE INDEX IF NOT EXISTS conda_packages_by_subdir ON conda_packages (subdir, filename);
CREATE TRIGGER IF NOT EXISTS conda_packages_no_update BEFORE UPDATE ON conda_packages
    BEGIN SELECT RAISE(ABORT, 'conda package records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS conda_packages_no_delete BEFORE DELETE ON conda_packages
    BEGIN SELECT RAISE(ABORT, 'conda package records are append-only'); END;
CREATE TABLE IF NOT EXISTS witnesses (
    name TEXT PRIMARY KEY,
    vkey TEXT NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoint_cosignatures (
    tree_size INTEGER NOT NULL,
    witness TEXT NOT NULL,
    line TEXT NOT NULL,
    cosigned_at INTEGER NOT NULL,
    PRIMARY KEY (tree_size, witness)
);
CREATE TRIGGER IF NOT EXISTS checkpoint_cosignatures_no_update BEFORE UPDATE ON checkpoint_cosignatures
    BEGIN SELECT RAISE(ABORT, 'cosignatures are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoint_cosignatures_no_delete BEFORE DELETE ON checkpoint_cosignatures
    BEGIN SELECT RAISE(ABORT, 'cosignatures are append-only'); END;
CREATE TABLE IF NOT EXISTS exporter_revocations (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    revoked_at TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS exporter_revocations_no_update BEFORE UPDATE ON exporter_revocations
    BEGIN SELECT RAISE(ABORT, 'revocations are permanent'); END;
CREATE TRIGGER IF NOT EXISTS exporter_revocations_no_delete BEFORE DELETE ON exporter_revocations
    BEGIN SELECT RAISE(ABORT, 'revocations are permanent'); END;
CREATE TABLE IF NOT EXISTS oci_images (
    repository TEXT NOT NULL,
    tag TEXT NOT NULL,
    import_id INTEGER NOT NULL,
    digest TEXT NOT NULL,
    upstream_identity TEXT NOT NULL,
    upstream_issuer TEXT NOT NULL,
    upstream_log_index INTEGER NOT NULL,
    upstream_log_url TEXT NOT NULL,
    signer_identity TEXT NOT NULL,
    log_index INTEGER NOT NULL,
    PRIMARY KEY (repository, tag, import_id)
);
CREATE TABLE IF NOT EXISTS oci_tags (
    repository TEXT NOT NULL,
    tag TEXT NOT NULL,
    import_id INTEGER NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (repository, tag, import_id)
);
CREATE TABLE IF NOT EXISTS oci_manifests (
    repository TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    subject TEXT,
    artifact_type TEXT,
    annotations TEXT NOT NULL,
    import_id INTEGER NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX IF NOT EXISTS oci_manifests_by_subject ON oci_manifests (repository, subject);
CREATE TABLE IF NOT EXISTS oci_blobs (
    repository TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    import_id INTEGER NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX IF NOT EXISTS oci_blobs_by_digest ON oci_blobs (digest);
CREATE TRIGGER IF NOT EXISTS oci_images_no_update BEFORE UPDATE ON oci_images
    BEGIN SELECT RAISE(ABORT, 'image records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS oci_images_no_delete BEFORE DELETE ON oci_images
    BEGIN SELECT RAISE(ABORT, 'image records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS oci_tags_no_update BEFORE UPDATE ON oci_tags
    BEGIN SELECT RAISE(ABORT, 'tag records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS oci_tags_no_delete BEFORE DELETE ON oci_tags
    BEGIN SELECT RAISE(ABORT, 'tag records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS oci_manifests_no_update BEFORE UPDATE ON oci_manifests
    BEGIN SELECT RAISE(ABORT, 'manifest records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS oci_manifests_no_delete BEFORE DELETE ON oci_manifests
    BEGIN SELECT RAISE(ABORT, 'manifest records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS oci_blobs_no_update BEFORE UPDATE ON oci_blobs
    BEGIN SELECT RAISE(ABORT, 'blob records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS oci_blobs_no_delete BEFORE DELETE ON oci_blobs
    BEGIN SELECT RAISE(ABORT, 'blob records are append-only'); END;
"#;

/// Path of a blob in the content-addressed store.
pub fn blob_path(dir: &Path, sha256_hex: &str) -> PathBuf {
    let prefix = sha256_hex.get(..2).unwrap_or("xx");
    dir.join("blobs")
        .join("sha256")
        .join(prefix)
        .join(sha256_hex)
}

/// Takes the writer lock, waiting up to two seconds: a lock just released can
/// still be held for a moment by a child process forked before the release
/// (between its fork and its exec).
fn take_writer_lock(lock: &std::fs::File) -> std::result::Result<(), std::fs::TryLockError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match lock.try_lock() {
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Every key the trusted root lists for the log at `base_url`, with its window.
pub fn log_keys_of<'a>(root: &'a TrustedRoot, base_url: &str) -> Vec<crate::tlog::LogKey<'a>> {
    root.tlogs
        .iter()
        .filter(|t| t.base_url == base_url)
        .map(|t| crate::tlog::LogKey {
            key: &t.key,
            from: Some(t.valid_for.start.timestamp()),
            until: t.valid_for.end.map(|e| e.timestamp()),
        })
        .collect()
}

/// Hex IDs of the log's keys other than `log`'s current one, from
/// `trusted_root.json` (the log's earlier keys after a rotation).
fn earlier_log_ids(dir: &Path, log: &Log) -> Result<Vec<String>> {
    let path = dir.join(files::TRUSTED_ROOT);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let root = TrustedRoot::from_json(&bytes).map_err(|source| Error::TrustRoot {
        location: path.display().to_string(),
        source,
    })?;
    let current = log.log_id();
    Ok(root
        .tlogs
        .iter()
        .filter(|t| t.log_id.as_slice() != current.as_slice())
        .map(|t| hex::encode(&t.log_id))
        .collect())
}

impl StateDir {
    /// Opens a state directory created by `airgate ca init`: takes the writer lock,
    /// creates `state.db` if needed, and recovers from an interrupted import.
    pub fn open(dir: &Path) -> Result<Self> {
        require_ceremony(dir)?;
        let lock_path = dir.join("state.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        take_writer_lock(&lock).map_err(|_| {
            Error::Usage(format!(
                "{} is in use by another airgate process (import or sign); try again when it finishes",
                dir.display()
            ))
        })?;
        let ca = PrivateCa::load(dir)?;
        let log_key =
            SigningKey::load(&dir.join(files::TLOG_KEY), Curve::P256, "transparency log")?;
        let mut log = Log::new(log_key, &ca.config().tlog_url);
        let conn = open_database(&dir.join(DATABASE))?;
        log.initialize_rotated(&conn, &earlier_log_ids(dir, &log)?)?;
        initialize_schema(&conn)?;
        let staging = dir.join("staging");
        std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
        let state = StateDir {
            dir: dir.to_path_buf(),
            ca,
            log,
            conn,
            _lock: lock,
        };
        state.recover()?;
        Ok(state)
    }

    /// Records a refused import (append-only): when, the media as given, the
    /// SHA-256 of the manifest entry as received (a fact about the bytes, not a
    /// claim; `None` when there was none to read) and the reason printed.
    pub fn record_refusal(
        &self,
        at: chrono::DateTime<chrono::Utc>,
        media: &str,
        manifest_sha256: Option<&str>,
        reason: &str,
    ) -> Result<i64> {
        queries::insert_refusal(
            &self.conn,
            &at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            media,
            manifest_sha256,
            reason,
        )
    }

    /// Enrolls a witness by its verifier key (`NAME+HASH+BASE64KEY`).
    pub fn add_witness(
        &self,
        vkey: &str,
        now: &str,
    ) -> Result<crate::tlog::cosignature::WitnessKey> {
        witness::add(&self.conn, vkey, now)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The high side's policy file.
    pub fn policy_path(&self) -> PathBuf {
        self.dir.join(POLICY)
    }

    /// The private CA.
    pub fn ca(&self) -> &PrivateCa {
        &self.ca
    }

    /// The transparency log's identity (its key stays inside).
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// A reader over the log.
    pub fn log_reader(&self) -> LogReader<'_> {
        LogReader::new(&self.conn)
    }

    /// Signs every request with one session leaf per upstream signer and logs them
    /// as one batch, in one transaction.
    pub fn sign(
        &mut self,
        requests: &[SigningRequest],
        now: std::time::SystemTime,
    ) -> Result<SignedBatch> {
        let tx = self.conn.transaction().map_err(LogError::from)?;
        let signed = crate::signing::sign_batch(&self.ca, &self.log, &tx, requests, now)?;
        tx.commit().map_err(LogError::from)?;
        Ok(signed)
    }

    /// Logs signatures made elsewhere (with leaves of this CA) as one batch.
    pub fn log_signatures(
        &mut self,
        signatures: &[LeafSignature],
        now: std::time::SystemTime,
    ) -> Result<SignedBatch> {
        let tx = self.conn.transaction().map_err(LogError::from)?;
        let signed = crate::signing::log_and_bundle(&self.log, &tx, signatures, now)?;
        tx.commit().map_err(LogError::from)?;
        Ok(signed)
    }

    /// The import that carried the medium with this identity, if any.
    pub fn find_import(&self, medium_id: &str) -> Result<Option<i64>> {
        queries::import_by_medium(&self.conn, medium_id)
    }

    /// The latest medium imported from `exporter` (by signed export time).
    pub fn last_import_from(&self, exporter: &str) -> Result<Option<LastImport>> {
        queries::last_import_from(&self.conn, exporter)
    }

    /// The version of `name` served now (the latest import of it).
    pub fn current_version(&self, name: &str) -> Result<Option<ImportedVersion>> {
        queries::current_version(&self.conn, name)
    }

    /// Removes what an interrupted import left: its staging directory, and blobs
    /// it moved into the store that no committed import references.
    fn recover(&self) -> Result<()> {
        recover_staging(&self.dir, &self.conn)
    }

    /// True when a committed artifact references this blob.
    pub fn blob_referenced(&self, sha256_hex: &str) -> Result<bool> {
        blob_referenced(&self.conn, sha256_hex)
    }

    /// A fresh staging directory for one import.
    pub fn new_staging(&self) -> Result<Staging> {
        let staging = self.dir.join("staging");
        std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
        let dir = tempfile::Builder::new()
            .prefix("import-")
            .tempdir_in(&staging)
            .map_err(|e| Error::io(&staging, e))?;
        Ok(Staging {
            dir: Some(dir),
            state_dir: self.dir.clone(),
            blobs_in_flight: false,
        })
    }

    /// Enrolled exporters.
    pub fn exporters(&self) -> Result<Vec<EnrolledExporter>> {
        read_exporters(&self.conn)
    }

    /// Enrolls an exporter's public key under `name`.
    pub fn enroll(&self, name: &str, key: &VerifyingKey, now: &str) -> Result<()> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(Error::Usage(format!(
                "exporter name {name:?}: use 1-64 of A-Z a-z 0-9 - _ ."
            )));
        }
        self.conn
            .execute(
                "INSERT INTO exporters (name, key_id, spki, enrolled_at) VALUES (?1, ?2, ?3, ?4)",
                params![name, hex::encode(key.key_id()), key.spki_der(), now],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Error::Usage(format!("exporter {name:?} or this key is already enrolled"))
                }
                other => Error::Log(other.into()),
            })?;
        Ok(())
    }

    /// Revokes every key enrolled for exporter `name` (permanently): media they
    /// signed are refused from now on, naming the exporter, key and time.
    /// Returns the revoked key IDs.
    pub fn revoke_exporter(&self, name: &str, now: &str, reason: &str) -> Result<Vec<String>> {
        let keys: Vec<String> = read_exporters(&self.conn)?
            .into_iter()
            .filter(|e| e.name == name && e.revoked_at.is_none())
            .map(|e| hex::encode(e.key.key_id()))
            .collect();
        if keys.is_empty() {
            return Err(Error::Usage(format!(
                "no enrolled, unrevoked exporter {} (see `airgate exporter list`)",
                crate::escape::quoted(name)
            )));
        }
        for key_id in &keys {
            self.conn
                .execute(
                    "INSERT INTO exporter_revocations (key_id, name, revoked_at, reason) VALUES (?1, ?2, ?3, ?4)",
                    params![key_id, name, now, reason],
                )
                .map_err(|e| Error::Log(e.into()))?;
        }
        Ok(keys)
    }

    /// (Re)publishes `trusted_root.json` to the private TUF repository, if one was
    /// created (`DIR/tuf-repo`), re-signing targets, snapshot and timestamp.
    pub fn publish_trusted_root(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Option<u64>> {
        let repo = self.dir.join(TUF_REPO);
        if !repo.join("1.root.json").is_file() {
            return Ok(None);
        }
        let targets = private_tuf_targets(&self.dir)?;
        let refs: Vec<(&str, &[u8])> = targets
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let summary = tuf_repo::publish(&repo, &self.dir.join(TUF_KEYS), &refs, now)?;
        Ok(Some(summary.versions.timestamp))
    }

    /// The persisted TUF state, if any import ran.
    pub fn tuf_state(&self) -> Result<Option<tuf_repo::TufState>> {
        read_tuf_state(&self.conn)
    }
}

/// What the private TUF repository distributes: the enclave's
/// `trusted_root.json` and its `signing_config.v0.2.json`.
pub fn private_tuf_targets(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let path = dir.join(files::TRUSTED_ROOT);
    let trusted_root = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let config = private_ca::CaConfig::load(dir)?;
    let signing = serde_json::to_vec_pretty(&private_ca::trust::signing_config_json(&config))
        .map_err(|e| Error::Usage(format!("signing config: {e}")))?;
    Ok(vec![
        (tuf_repo::TRUSTED_ROOT_TARGET.to_string(), trusted_root),
        (
            private_ca::trust::SIGNING_CONFIG_TARGET.to_string(),
            signing,
        ),
    ])
}

fn read_tuf_state(conn: &Connection) -> Result<Option<tuf_repo::TufState>> {
    let text: Option<String> = conn
        .query_row("SELECT state FROM tuf_state WHERE id = 1", [], |r| r.get(0))
        .optional()
        .map_err(LogError::from)?;
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| Error::Usage(format!("stored TUF state is unreadable: {e}")))
    })
    .transpose()
}

/// When the key `key_id` was revoked, if it was.
fn revoked_at(conn: &Connection, key_id: &str) -> Result<Option<String>> {
    conn.query_row(
        "SELECT revoked_at FROM exporter_revocations WHERE key_id = ?1",
        [key_id],
        |r| r.get(0),
    )
    .optional()
    .map_err(|e| Error::Log(e.into()))
}

fn read_exporters(conn: &Connection) -> Result<Vec<EnrolledExporter>> {
    let mut stmt = conn
        .prepare("SELECT name, spki FROM exporters ORDER BY name")
        .map_err(LogError::from)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(LogError::from)?;
    let mut out = Vec::new();
    for row in rows {
        let (name, spki) = row.map_err(LogError::from)?;
        let key = VerifyingKey::from_spki_der(&spki)
            .map_err(|e| Error::Usage(format!("enrolled exporter {name}: {e}")))?;
        let revoked_at = revoked_at(conn, &hex::encode(key.key_id()))?;
        out.push(EnrolledExporter {
            name,
            key,
            revoked_at,
        });
    }
    Ok(out)
}

/// Removes what interrupted or failed imports left under `state_dir`: their
/// staging directories, and blobs they moved into the store (listed in each
/// staging directory's record) that no committed artifact references.
pub(crate) fn recover_staging(state_dir: &Path, conn: &Connection) -> Result<()> {
    let staging = state_dir.join("staging");
    let Ok(entries) = std::fs::read_dir(&staging) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if let Ok(list) = std::fs::read_to_string(path.join(NEW_BLOBS)) {
            for hex in list.lines().filter(|l| l.len() == 64) {
                if !blob_referenced(conn, hex)? {
                    let blob = blob_path(state_dir, hex);
                    if blob.exists() {
                        std::fs::remove_file(&blob).map_err(|e| Error::io(&blob, e))?;
                        // The shard directory too, if that emptied it.
                        if let Some(shard) = blob.parent() {
                            let _ = std::fs::remove_dir(shard);
                        }
                    }
                }
            }
        }
        std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

fn blob_referenced(conn: &Connection, sha256_hex: &str) -> Result<bool> {
    let n: i64 = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM artifacts WHERE sha256 = ?1) + (SELECT COUNT(*) FROM oci_blobs WHERE digest = ?1)",
            [sha256_hex],
            |r| r.get(0),
        )
        .map_err(LogError::from)?;
    Ok(n > 0)
}

/// A staging directory for one import. Removed when dropped, unless blobs
/// were recorded as moving into the store and the import was not marked
/// committed: then it is kept, so `recover_staging` (run by the failing
/// import, or by the next `StateDir::open` after a crash) can remove
/// those blobs.
pub struct Staging {
    dir: Option<tempfile::TempDir>,
    state_dir: PathBuf,
    blobs_in_flight: bool,
}

impl Staging {
    /// The directory.
    pub fn path(&self) -> &Path {
        match &self.dir {
            Some(dir) => dir.path(),
            None => Path::new(""),
        }
    }

    /// Records the blobs about to be moved into the store (fsynced), so a crash
    /// or failure before the commit can remove them again.
    pub fn record_new_blobs(&mut self, hexes: &[String]) -> Result<()> {
        let path = self.path().join(NEW_BLOBS);
        let mut text = hexes.join("\n");
        text.push('\n');
        crate::files::write_atomic(&path, text.as_bytes(), None)?;
        self.blobs_in_flight = true;
        Ok(())
    }

    /// The import committed: the moved blobs are referenced, and the
    /// directory can go.
    pub fn committed(mut self) {
        self.blobs_in_flight = false;
    }

    /// Moves a staged file into the blob store (same filesystem: a rename).
    pub fn move_into_store(&self, staged: &Path, sha256_hex: &str) -> Result<()> {
        let target = blob_path(&self.state_dir, sha256_hex);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::rename(staged, &target).map_err(|e| Error::io(&target, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o444));
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.blobs_in_flight {
            if let Some(dir) = self.dir.take() {
                // Kept for recovery; see `recover_staging`.
                let _ = dir.keep();
            }
        }
    }
}

/// Flushes everything written to the filesystem holding `path` (one sync for
/// many files, instead of one fsync per file).
pub fn sync_filesystem(path: &Path) -> Result<()> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    rustix::fs::syncfs(&f).map_err(|e| Error::io(path, e.into()))?;
    Ok(())
}

/// Read-only view of a state directory: the database and the public trusted root.
pub struct StateReader {
    dir: PathBuf,
    conn: Connection,
    /// The private trusted root (public material).
    pub trusted_root: TrustedRoot,
    /// Raw `trusted_root.json`.
    pub trusted_root_json: Vec<u8>,
}

impl std::fmt::Debug for StateReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateReader")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
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
            dir: dir.to_path_buf(),
            conn,
            trusted_root,
            trusted_root_json,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A reader over the log.
    pub fn log_reader(&self) -> LogReader<'_> {
        LogReader::new(&self.conn)
    }

    /// The newest `limit` imports, newest first.
    pub fn imports(&self, limit: usize) -> Result<Vec<queries::ImportRow>> {
        queries::imports(&self.conn, limit)
    }

    /// The read-only database connection (for the queries in [`queries`]).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The enrolled checkpoint witnesses.
    pub fn witnesses(&self) -> Result<Vec<crate::tlog::cosignature::WitnessKey>> {
        witness::witnesses(&self.conn)
    }

    /// The newest `limit` refused imports, newest first.
    pub fn refusals(&self, limit: usize) -> Result<Vec<queries::RefusalRow>> {
        queries::refusals(&self.conn, limit)
    }

    /// Import `id`'s stored report, `None` when there is no such import.
    pub fn import_report(&self, id: i64) -> Result<Option<String>> {
        queries::import_report(&self.conn, id)
    }

    /// The first artifact by name and its current `.sigs`.
    pub fn first_artifact(&self) -> Result<Option<(String, Vec<u8>)>> {
        queries::first_artifact(&self.conn)
    }

    /// The `.sigs` array and SHA-256 of the version of `name` served now.
    pub fn artifact_sigs(&self, name: &str) -> Result<Option<(Vec<u8>, String)>> {
        queries::current_sigs(&self.conn, name)
    }

    /// Audits everything the database holds: the log (see
    /// [`LogReader::verify_all`]) with its metadata checked against the
    /// trusted root's log key and `ca.json`'s log URL, and every import and
    /// artifact record against the log (checkpoints and entries they name),
    /// and every stored witness cosignature.
    pub fn audit(&self) -> Result<crate::tlog::LogAudit> {
        let tlog = self.tlog()?;
        let config = private_ca::CaConfig::load(&self.dir)?;
        if tlog.base_url != config.tlog_url {
            return Err(LogError::Tampered(format!(
                "trusted_root.json names the log {}, ca.json {}",
                crate::escape::quoted(&tlog.base_url),
                crate::escape::quoted(&config.tlog_url)
            ))
            .into());
        }
        let origin = crate::tlog::origin_for(&tlog.key.key_id(), &config.tlog_url);
        let reader = self.log_reader();
        let keys = self.log_keys()?;
        let mut audit = reader.verify_all(&keys, &tlog.checkpoint_name(), &origin)?;
        self.audit_records(&reader, audit.size)?;
        audit.cosignatures = witness::audit(&self.conn, &reader)?;
        Ok(audit)
    }

    fn audit_records(&self, reader: &LogReader<'_>, size: u64) -> Result<()> {
        let tampered = |m: String| Error::Log(LogError::Tampered(m));
        for (id, cp) in queries::import_checkpoint_sizes(&self.conn)? {
            if cp > size {
                return Err(tampered(format!(
                    "import #{id} recorded the log at size {cp}, but the log has {size} entries: entries were removed"
                )));
            }
            reader.checkpoint(cp).map_err(|_| {
                tampered(format!(
                    "import #{id} recorded a checkpoint at size {cp} that the log does not hold"
                ))
            })?;
        }
        for r in queries::artifact_log_references(&self.conn)? {
            let name = crate::escape::quoted(&r.name);
            if r.log_index >= size {
                return Err(tampered(format!(
                    "artifact {name} of import #{} names log entry {}, but the log has {size} entries: entries were removed",
                    r.import_id, r.log_index
                )));
            }
            let entry = reader.entry(r.log_index)?;
            if hex::encode(entry.artifact_sha256) != r.sha256 {
                return Err(tampered(format!(
                    "artifact {name} of import #{} is sha256 {}, but log entry {} is about {}",
                    r.import_id,
                    r.sha256,
                    r.log_index,
                    hex::encode(entry.artifact_sha256)
                )));
            }
        }
        Ok(())
    }

    /// Proves the log grew from a checkpoint kept outside this host.
    pub fn verify_kept_checkpoint(&self, note: &str) -> Result<crate::tlog::KeptCheckpoint> {
        let tlog = self.tlog()?;
        let config = private_ca::CaConfig::load(&self.dir)?;
        let origin = crate::tlog::origin_for(&tlog.key.key_id(), &config.tlog_url);
        Ok(self.log_reader().verify_kept_checkpoint(
            note,
            &self.log_keys()?,
            &tlog.checkpoint_name(),
            &origin,
        )?)
    }

    /// The transparency log entry of the trusted root (airgate's private log).
    pub fn tlog(&self) -> Result<&TransparencyLog> {
        self.trusted_root.tlogs.first().ok_or_else(|| {
            Error::Usage("the private trusted root lists no transparency log".into())
        })
    }

    /// Every key of the log (the first tlog's base URL) the trusted root
    /// lists, with its window: one, or more after `airgate ca rotate-log`.
    pub fn log_keys(&self) -> Result<Vec<crate::tlog::LogKey<'_>>> {
        Ok(log_keys_of(&self.trusted_root, &self.tlog()?.base_url))
    }

    /// The log's public key.
    pub fn log_key(&self) -> Result<&VerifyingKey> {
        Ok(&self.tlog()?.key)
    }
}
