//! The append-only transparency log in SQLite.
//!
//! Tables: `entries` (one row per leaf), `nodes` (every perfect-subtree hash,
//! level 0 = leaf hashes) and `checkpoints` (one signed checkpoint per batch).
//! Triggers abort any UPDATE or DELETE, so the log is append-only by
//! construction; `verify` detects rows altered behind its back anyway.
//! Appends run inside the caller's transaction: a batch (and whatever the caller
//! records with it) commits atomically, or not at all.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::crypto::VerifyingKey;
use crate::tlog::checkpoint::{Checkpoint, NoteSignature, SignatureCheck, SignedNote};
use crate::tlog::entry::{set_payload, EntryKind};
use crate::tlog::merkle::{self, Hash, ProofError};
use private_ca::SigningKey;

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// SQLite failed.
    #[error("log database: {0}")]
    Database(#[from] rusqlite::Error),
    /// The log was created with another key or URL.
    #[error("log database belongs to log {stored}, not {expected}")]
    WrongLog {
        /// Log ID in the database.
        stored: String,
        /// Log ID of the key given.
        expected: String,
    },
    /// No such entry.
    #[error("no entry {index} (log size {size})")]
    NoSuchEntry {
        /// Requested index.
        index: u64,
        /// Current size.
        size: u64,
    },
    /// No checkpoint was signed at this size.
    #[error("no checkpoint at tree size {0}")]
    NoCheckpoint(u64),
    /// A proof could not be built.
    #[error("proof: {0}")]
    Proof(#[from] ProofError),
    /// Signing failed.
    #[error("signing: {0}")]
    Signing(String),
    /// Stored data disagrees with what it should be: the log was tampered with.
    #[error("log integrity violation: {0}")]
    Tampered(String),
}

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// Entry kind.
    pub kind: EntryKind,
    /// Canonicalized body.
    pub body: Vec<u8>,
    /// SHA-256 of the artifact the entry is about (for search).
    pub artifact_sha256: [u8; 32],
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// Its index.
    pub index: u64,
    /// Entry kind.
    pub kind: EntryKind,
    /// Canonicalized body.
    pub body: Vec<u8>,
    /// Integrated time (unix seconds).
    pub integrated_time: i64,
    /// The signed entry timestamp.
    pub signed_entry_timestamp: Vec<u8>,
    /// Artifact digest.
    pub artifact_sha256: [u8; 32],
}

/// A stored, signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root_hash: Hash,
    /// The signed note text.
    pub note: String,
}

/// What the log recorded for one appended entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendedEntry {
    /// Its index.
    pub index: u64,
    /// Integrated time (unix seconds).
    pub integrated_time: i64,
    /// The signed entry timestamp.
    pub signed_entry_timestamp: Vec<u8>,
    /// Its inclusion proof against the batch's checkpoint.
    pub inclusion_proof: Vec<Hash>,
}

/// The result of appending one batch.
#[derive(Debug, Clone)]
pub struct AppendedBatch {
    /// The new entries, in the order given.
    pub entries: Vec<AppendedEntry>,
    /// The checkpoint signed over the tree including them.
    pub checkpoint: StoredCheckpoint,
}

/// Identity of a log: its key, ID, origin and checkpoint signer name.
pub struct Log {
    signer: SigningKey,
    log_id: [u8; 32],
    origin: String,
    name: String,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("log_id", &hex::encode(self.log_id))
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tlog_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tlog_entries (
    idx INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    body BLOB NOT NULL,
    integrated_time INTEGER NOT NULL,
    set_signature BLOB NOT NULL,
    artifact_sha256 BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS tlog_entries_by_artifact ON tlog_entries(artifact_sha256);
CREATE TABLE IF NOT EXISTS tlog_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tlog_checkpoints (
    tree_size INTEGER PRIMARY KEY,
    root_hash BLOB NOT NULL,
    note TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS tlog_entries_no_update BEFORE UPDATE ON tlog_entries
    BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS tlog_entries_no_delete BEFORE DELETE ON tlog_entries
    BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS tlog_nodes_no_update BEFORE UPDATE ON tlog_nodes
    BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS tlog_nodes_no_delete BEFORE DELETE ON tlog_nodes
    BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS tlog_checkpoints_no_update BEFORE UPDATE ON tlog_checkpoints
    BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS tlog_checkpoints_no_delete BEFORE DELETE ON tlog_checkpoints
    BEGIN SELECT RAISE(ABORT, 'the transparency log is append-only'); END;
"#;

/// Opens a SQLite database with the durability settings the log requires.
pub fn open_database(path: &std::path::Path) -> Result<Connection, LogError> {
    let conn = Connection::open(path)?;
    // 8 KiB pages for a new database (a no-op on an existing one): three ~2 KiB
    // log entries fit a page, and a compressed ~10 KiB `.sigs` row takes a
    // local part plus exactly one overflow page (16 KiB pages hold one such
    // row each and waste a third; 4 KiB pages hold one log entry each).
    conn.pragma_update(None, "page_size", 8_192)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // A 64 MiB page cache (allocated as used): an import's one transaction
    // then stays in memory until commit instead of spilling pages into the
    // WAL and reading them back. Durability is unchanged (FULL, fsync at commit).
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    Ok(conn)
}

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

fn blob32(v: Vec<u8>, what: &str) -> Result<Hash, LogError> {
    v.try_into()
        .map_err(|_| LogError::Tampered(format!("{what} is not 32 bytes")))
}

/// The checkpoint origin line of the log with this ID served at `base_url`
/// (`<host> - <tree ID>`, the tree ID from the log ID as Rekor derives it).
pub fn origin_for(log_id: &[u8; 32], base_url: &str) -> String {
    let mut tree_id = [0u8; 8];
    tree_id.copy_from_slice(&log_id[..8]);
    format!(
        "{} - {}",
        host_of(base_url),
        u64::from_be_bytes(tree_id) >> 1
    )
}

impl Log {
    /// A log signing with `signer`, served at `base_url` (its host names checkpoint signatures).
    pub fn new(signer: SigningKey, base_url: &str) -> Self {
        let log_id = signer.key_id();
        let name = host_of(base_url);
        let origin = origin_for(&log_id, base_url);
        Log {
            signer,
            log_id,
            origin,
            name,
        }
    }

    /// The log ID (SHA-256 of the key's SPKI).
    pub fn log_id(&self) -> [u8; 32] {
        self.log_id
    }

    /// The checkpoint origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The checkpoint signer name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log's public key.
    pub fn public_key(&self) -> Result<VerifyingKey, LogError> {
        VerifyingKey::from_spki_der(self.signer.public_key_spki())
            .map_err(|e| LogError::Signing(e.to_string()))
    }

    /// Creates the tables (idempotent) and binds the database to this log.
    pub fn initialize(&self, conn: &Connection) -> Result<(), LogError> {
        self.bind(conn, &[]).map(|_| ())
    }

    /// [`Log::initialize`] for a log whose key rotated: `earlier` are the hex
    /// IDs of its earlier keys, and a database begun under one of them goes
    /// on under this key with its origin unchanged.
    pub fn initialize_rotated(
        &mut self,
        conn: &Connection,
        earlier: &[String],
    ) -> Result<(), LogError> {
        if let Some(origin) = self.bind(conn, earlier)? {
            self.origin = origin;
        }
        Ok(())
    }

    /// Binds the database; the stored origin when it was begun under an
    /// earlier key.
    fn bind(&self, conn: &Connection, earlier: &[String]) -> Result<Option<String>, LogError> {
        conn.execute_batch(SCHEMA)?;
        let stored: Option<String> = conn
            .query_row(
                "SELECT value FROM tlog_meta WHERE key = 'log_id'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let expected = hex::encode(self.log_id);
        match stored {
            Some(stored) if stored == expected => Ok(None),
            Some(stored) if earlier.contains(&stored) => {
                Ok(Some(LogReader::new(conn).origin()?.ok_or_else(|| {
                    LogError::Tampered("tlog_meta has no origin".into())
                })?))
            }
            Some(stored) => Err(LogError::WrongLog { stored, expected }),
            None => {
                conn.execute(
                    "INSERT INTO tlog_meta (key, value) VALUES ('log_id', ?1)",
                    [&expected],
                )?;
                conn.execute(
                    "INSERT INTO tlog_meta (key, value) VALUES ('origin', ?1)",
                    [&self.origin],
                )?;
                Ok(None)
            }
        }
    }

    /// Current tree size.
    pub fn size(conn: &Connection) -> Result<u64, LogError> {
        let n: i64 = conn.query_row(
            "SELECT COALESCE(MAX(idx) + 1, 0) FROM tlog_entries",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The right-edge perfect subtrees of a tree of `size` (largest first).
    fn frontier(conn: &Connection, size: u64) -> Result<Vec<(u32, Hash)>, LogError> {
        let mut stack = Vec::new();
        let mut stmt =
            conn.prepare_cached("SELECT hash FROM tlog_nodes WHERE level = ?1 AND idx = ?2")?;
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1u64 << level) != 0 {
                let index = start >> level;
                let hash: Vec<u8> = stmt
                    .query_row(params![level, index as i64], |r| r.get(0))
                    .optional()?
                    .ok_or_else(|| {
                        LogError::Tampered(format!("missing node level {level} index {index}"))
                    })?;
                stack.push((level, blob32(hash, "node")?));
                start += 1u64 << level;
            }
        }
        Ok(stack)
    }

    fn root_of_frontier(stack: &[(u32, Hash)]) -> Hash {
        let mut iter = stack.iter().rev();
        let Some((_, last)) = iter.next() else {
            return merkle::empty_root();
        };
        iter.fold(*last, |acc, (_, left)| merkle::node_hash(left, &acc))
    }

    /// Appends `entries` as one batch inside `tx`, signing a SET per entry and one
    /// checkpoint for the batch. Nothing is visible until the caller commits.
    pub fn append_batch(
        &self,
        tx: &Transaction<'_>,
        entries: &[NewEntry],
        now: i64,
    ) -> Result<AppendedBatch, LogError> {
        let start = Self::size(tx)?;
        let mut stack = Self::frontier(tx, start)?;
        // Every node a proof for this batch can need: the frontier before it and the
        // nodes it creates. Proofs are then computed without reading the database.
        let mut known: std::collections::HashMap<(u32, u64), Hash> =
            std::collections::HashMap::with_capacity(entries.len() * 2 + 64);
        {
            let mut offset = 0u64;
            for &(level, hash) in &stack {
                known.insert((level, offset >> level), hash);
                offset += 1u64 << level;
            }
        }
        let nodes = Self::new_nodes(entries, start, &mut stack);
        // SETs are signed on all cores while this thread stores the new nodes.
        let (sets, stored) = std::thread::scope(|scope| {
            let signing = scope.spawn(|| self.sign_sets(entries, now, start));
            let stored = Self::insert_nodes(tx, &nodes);
            let sets = signing
                .join()
                .unwrap_or_else(|_| Err(LogError::Signing("the SET signer panicked".into())));
            (sets, stored)
        });
        stored?;
        let sets = sets?;
        for &(level, index, hash) in &nodes {
            known.insert((level, index), hash);
        }
        let mut insert_entry = tx.prepare_cached(
            "INSERT INTO tlog_entries (idx, kind, body, integrated_time, set_signature, artifact_sha256) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut out = Vec::with_capacity(entries.len());
        for ((offset, entry), set) in entries.iter().enumerate().zip(sets) {
            let index = start + offset as u64;
            insert_entry.execute(params![
                index as i64,
                entry.kind.kind(),
                entry.body.as_slice(),
                now,
                set.as_slice(),
                entry.artifact_sha256.as_slice()
            ])?;
            out.push(AppendedEntry {
                index,
                integrated_time: now,
                signed_entry_timestamp: set,
                inclusion_proof: Vec::new(),
            });
        }
        drop(insert_entry);
        let size = start + entries.len() as u64;
        let root_hash = Self::root_of_frontier(&stack);
        let reader = LogReader::new(tx);
        for entry in &mut out {
            entry.inclusion_proof =
                merkle::inclusion_proof(entry.index, size, &mut |level, index| {
                    known
                        .get(&(level, index))
                        .copied()
                        .or_else(|| reader.node(level, index).ok().flatten())
                })?;
        }
        let note = self.sign_checkpoint(size, root_hash)?;
        tx.execute(
            "INSERT INTO tlog_checkpoints (tree_size, root_hash, note) VALUES (?1, ?2, ?3)",
            params![size as i64, root_hash.as_slice(), note],
        )?;
        Ok(AppendedBatch {
            entries: out,
            checkpoint: StoredCheckpoint {
                size,
                root_hash,
                note,
            },
        })
    }

    /// The Merkle nodes `entries` create from index `start` on (leaf hashes and
    /// every completed subtree), in order; `stack` is the frontier, updated.
    fn new_nodes(
        entries: &[NewEntry],
        start: u64,
        stack: &mut Vec<(u32, Hash)>,
    ) -> Vec<(u32, u64, Hash)> {
        let mut nodes = Vec::with_capacity(entries.len() * 2);
        for (offset, entry) in entries.iter().enumerate() {
            let index = start + offset as u64;
            let mut level = 0u32;
            let mut node_index = index;
            let mut hash = merkle::leaf_hash(&entry.body);
            nodes.push((0, index, hash));
            while let Some(&(top_level, left)) = stack.last() {
                if top_level != level {
                    break;
                }
                stack.pop();
                hash = merkle::node_hash(&left, &hash);
                level += 1;
                node_index >>= 1;
                nodes.push((level, node_index, hash));
            }
            stack.push((level, hash));
        }
        nodes
    }

    fn insert_nodes(tx: &Transaction<'_>, nodes: &[(u32, u64, Hash)]) -> Result<(), LogError> {
        let mut insert =
            tx.prepare_cached("INSERT INTO tlog_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")?;
        for (level, index, hash) in nodes {
            insert.execute(params![level, *index as i64, hash.as_slice()])?;
        }
        Ok(())
    }

    /// One SET per entry, on all cores, in order.
    fn sign_sets(
        &self,
        entries: &[NewEntry],
        now: i64,
        start: u64,
    ) -> Result<Vec<Vec<u8>>, LogError> {
        use rayon::prelude::*;
        entries
            .par_iter()
            .enumerate()
            .map(|(offset, entry)| {
                self.signer
                    .sign(&set_payload(
                        &entry.body,
                        now,
                        &self.log_id,
                        start + offset as u64,
                    ))
                    .map_err(|e| LogError::Signing(e.to_string()))
            })
            .collect()
    }

    /// Signs a checkpoint note for `size` and `root_hash`.
    pub fn sign_checkpoint(&self, size: u64, root_hash: Hash) -> Result<String, LogError> {
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size,
            root_hash,
            extensions: Vec::new(),
        };
        let text = checkpoint.to_text();
        let signature = self
            .signer
            .sign(text.as_bytes())
            .map_err(|e| LogError::Signing(e.to_string()))?;
        let mut key_hint = [0u8; 4];
        key_hint.copy_from_slice(&self.log_id[..4]);
        Ok(SignedNote {
            text,
            signatures: vec![NoteSignature {
                name: self.name.clone(),
                key_hint,
                signature,
            }],
        }
        .to_text())
    }
}

/// Read access to a log database (no key needed).
pub struct LogReader<'c> {
    conn: &'c Connection,
}

impl<'c> LogReader<'c> {
    /// Reads the log in `conn`.
    pub fn new(conn: &'c Connection) -> Self {
        LogReader { conn }
    }

    /// Current tree size.
    pub fn size(&self) -> Result<u64, LogError> {
        Log::size(self.conn)
    }

    /// The log ID recorded in the database.
    pub fn log_id(&self) -> Result<Option<String>, LogError> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM tlog_meta WHERE key = 'log_id'",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The checkpoint origin line recorded in the database (`<name> - <tree ID>`).
    pub fn origin(&self) -> Result<Option<String>, LogError> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM tlog_meta WHERE key = 'origin'",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, LogError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT hash FROM tlog_nodes WHERE level = ?1 AND idx = ?2")?;
        let hash: Option<Vec<u8>> = stmt
            .query_row(params![level, index as i64], |r| r.get(0))
            .optional()?;
        hash.map(|h| blob32(h, "node")).transpose()
    }

    /// The stored nodes at tree `level`, indices `start ..< start + count`,
    /// in order (a hash tile's content); an error if any is missing.
    pub fn node_range(&self, level: u32, start: u64, count: u64) -> Result<Vec<Hash>, LogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT hash FROM tlog_nodes WHERE level = ?1 AND idx >= ?2 AND idx < ?3 ORDER BY idx",
        )?;
        let end = start.saturating_add(count);
        let rows = stmt.query_map(params![level, start as i64, end as i64], |r| {
            r.get::<_, Vec<u8>>(0)
        })?;
        let hashes = rows
            .map(|h| blob32(h?, "node"))
            .collect::<Result<Vec<_>, LogError>>()?;
        if hashes.len() as u64 != count {
            return Err(LogError::Tampered(format!(
                "{} of {count} nodes at level {level} from index {start} are stored",
                hashes.len()
            )));
        }
        Ok(hashes)
    }

    /// The entry bodies `start ..< start + count`, in order.
    pub fn body_range(&self, start: u64, count: u64) -> Result<Vec<Vec<u8>>, LogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT body FROM tlog_entries WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
        )?;
        let end = start.saturating_add(count);
        let bodies = stmt
            .query_map(params![start as i64, end as i64], |r| {
                r.get::<_, Vec<u8>>(0)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        if bodies.len() as u64 != count {
            return Err(LogError::Tampered(format!(
                "{} of {count} entries from index {start} are stored",
                bodies.len()
            )));
        }
        Ok(bodies)
    }

    fn node_lookup(&self) -> impl FnMut(u32, u64) -> Option<Hash> + '_ {
        move |level, index| self.node(level, index).ok().flatten()
    }

    /// An entry by index.
    pub fn entry(&self, index: u64) -> Result<StoredEntry, LogError> {
        let size = self.size()?;
        if index >= size {
            return Err(LogError::NoSuchEntry { index, size });
        }
        let row = self
            .conn
            .prepare_cached(
                "SELECT kind, body, integrated_time, set_signature, artifact_sha256 FROM tlog_entries WHERE idx = ?1",
            )?
            .query_row([index as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                ))
            })
            .optional()?
            .ok_or(LogError::NoSuchEntry { index, size })?;
        Ok(StoredEntry {
            index,
            kind: EntryKind::from_kind(&row.0).ok_or_else(|| {
                LogError::Tampered(format!("entry {index} has unknown kind {:?}", row.0))
            })?,
            body: row.1,
            integrated_time: row.2,
            signed_entry_timestamp: row.3,
            artifact_sha256: blob32(row.4, "artifact digest")?,
        })
    }

    /// Indexes of entries about an artifact digest.
    pub fn entries_for_artifact(&self, sha256: &[u8; 32]) -> Result<Vec<u64>, LogError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT idx FROM tlog_entries WHERE artifact_sha256 = ?1 ORDER BY idx",
        )?;
        let rows = stmt.query_map([sha256.as_slice()], |r| r.get::<_, i64>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r? as u64);
        }
        Ok(out)
    }

    /// Root hash of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, LogError> {
        Ok(merkle::subtree_root(0, size, &mut self.node_lookup())?)
    }

    /// Inclusion proof for `index` in the tree of `size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LogError> {
        let current = self.size()?;
        if size > current {
            return Err(LogError::NoSuchEntry {
                index: size,
                size: current,
            });
        }
        Ok(merkle::inclusion_proof(
            index,
            size,
            &mut self.node_lookup(),
        )?)
    }

    /// Consistency proof between two sizes.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LogError> {
        let current = self.size()?;
        if new > current {
            return Err(LogError::NoSuchEntry {
                index: new,
                size: current,
            });
        }
        Ok(merkle::consistency_proof(
            old,
            new,
            &mut self.node_lookup(),
        )?)
    }

    /// The checkpoint signed at exactly `size`.
    pub fn checkpoint(&self, size: u64) -> Result<StoredCheckpoint, LogError> {
        self.conn
            .query_row(
                "SELECT tree_size, root_hash, note FROM tlog_checkpoints WHERE tree_size = ?1",
                [size as i64],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()?
            .map(|(s, h, note)| -> Result<StoredCheckpoint, LogError> {
                Ok(StoredCheckpoint {
                    size: s as u64,
                    root_hash: blob32(h, "checkpoint root")?,
                    note,
                })
            })
            .transpose()?
            .ok_or(LogError::NoCheckpoint(size))
    }

    /// The newest checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, LogError> {
        let size: Option<i64> =
            self.conn
                .query_row("SELECT MAX(tree_size) FROM tlog_checkpoints", [], |r| {
                    r.get(0)
                })?;
        size.map(|s| self.checkpoint(s as u64)).transpose()
    }

    /// The smallest checkpointed size that includes `index`.
    pub fn checkpoint_covering(&self, index: u64) -> Result<StoredCheckpoint, LogError> {
        let size: Option<i64> = self.conn.query_row(
            "SELECT MIN(tree_size) FROM tlog_checkpoints WHERE tree_size > ?1",
            [index as i64],
            |r| r.get(0),
        )?;
        match size {
            Some(s) => self.checkpoint(s as u64),
            None => Err(LogError::NoCheckpoint(index + 1)),
        }
    }

    /// Recomputes the whole tree from the stored bodies and checks everything
    /// the database holds about it: SQLite's own integrity check; the log's
    /// metadata (ID and origin) against the key and the expected origin; every
    /// entry's SET and its derived columns (kind, artifact digest) against its
    /// body; every perfect-subtree node present and equal to the recomputed one;
    /// every checkpoint's signature, root and consistency with the previous one,
    /// and a checkpoint at the current size (every batch ends with one).
    pub fn verify_all(
        &self,
        keys: &[LogKey<'_>],
        name: &str,
        origin: &str,
    ) -> Result<LogAudit, LogError> {
        self.integrity_check()?;
        self.check_meta(keys, origin)?;
        let tree = self.verify_entries(keys)?;
        let size = tree.size();
        let nodes = self.verify_nodes(&tree)?;
        let (checkpoints, latest) = self.verify_checkpoints(&tree, keys, name, origin)?;
        if size > 0 && latest != Some(size) {
            return Err(LogError::Tampered(format!(
                "the log has {size} entries but its latest signed checkpoint is at size {}: checkpoints were removed",
                latest.map_or("(none)".to_string(), |s| s.to_string())
            )));
        }
        Ok(LogAudit {
            size,
            nodes,
            checkpoints,
            root_hash: tree.root(size)?,
            cosignatures: 0,
        })
    }

    /// `PRAGMA integrity_check` must answer exactly "ok".
    fn integrity_check(&self) -> Result<(), LogError> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let problems: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        if problems != ["ok"] {
            return Err(LogError::Tampered(format!(
                "the database fails PRAGMA integrity_check: {}",
                crate::escape::quoted(&problems.join("; "))
            )));
        }
        Ok(())
    }

    fn check_meta(&self, keys: &[LogKey<'_>], origin: &str) -> Result<(), LogError> {
        let ids: Vec<String> = keys.iter().map(|k| hex::encode(k.key.key_id())).collect();
        match self.log_id()? {
            Some(id) if ids.contains(&id) => {}
            Some(id) => {
                return Err(LogError::Tampered(format!(
                    "tlog_meta log_id is {}, not one of the log's keys {}",
                    crate::escape::quoted(&id),
                    ids.join(", ")
                )))
            }
            None => return Err(LogError::Tampered("tlog_meta has no log_id".into())),
        }
        match self.origin()? {
            Some(o) if o == origin => Ok(()),
            Some(o) => Err(LogError::Tampered(format!(
                "tlog_meta origin is {}, not {}",
                crate::escape::quoted(&o),
                crate::escape::quoted(origin)
            ))),
            None => Err(LogError::Tampered("tlog_meta has no origin".into())),
        }
    }

    /// Every entry, in order: contiguous, SET valid, derived columns equal
    /// to what its body says. Returns the recomputed tree.
    fn verify_entries(&self, keys: &[LogKey<'_>]) -> Result<merkle::MemoryTree, LogError> {
        let mut tree = merkle::MemoryTree::new();
        let mut stmt = self.conn.prepare(
            "SELECT idx, body, integrated_time, set_signature, kind, artifact_sha256 FROM tlog_entries ORDER BY idx",
        )?;
        let mut rows = stmt.query([])?;
        let mut expected_index = 0u64;
        while let Some(row) = rows.next()? {
            let index = row.get::<_, i64>(0)? as u64;
            if index != expected_index {
                return Err(LogError::Tampered(format!(
                    "entry {expected_index} is missing"
                )));
            }
            let body: Vec<u8> = row.get(1)?;
            let integrated_time: i64 = row.get(2)?;
            let set: Vec<u8> = row.get(3)?;
            let signs = |k: &LogKey<'_>| {
                let payload = set_payload(&body, integrated_time, &k.key.key_id(), index);
                k.key.verify_default(&payload, &set)
            };
            let signed = keys
                .iter()
                .filter(|k| k.valid_at(integrated_time))
                .any(signs);
            if !signed && keys.iter().any(signs) {
                return Err(LogError::Tampered(format!(
                    "entry {index}: its signed entry timestamp is by a log key whose validity window does not hold its integrated time {integrated_time}"
                )));
            }
            if !signed {
                return Err(LogError::Tampered(format!(
                    "entry {index}: signed entry timestamp does not match its body"
                )));
            }
            let kind: String = row.get(4)?;
            let digest = blob32(row.get(5)?, "artifact digest")?;
            check_derived(index, &body, &kind, &digest)?;
            tree.push(merkle::leaf_hash(&body));
            expected_index += 1;
        }
        Ok(tree)
    }

    /// Every node of every perfect subtree must be stored and equal the recomputed one.
    fn verify_nodes(&self, tree: &merkle::MemoryTree) -> Result<u64, LogError> {
        let mut nodes = self
            .conn
            .prepare("SELECT level, idx, hash FROM tlog_nodes")?;
        let mut node_rows = nodes.query([])?;
        let mut count = 0u64;
        while let Some(row) = node_rows.next()? {
            let level: u32 = row.get(0)?;
            let index = row.get::<_, i64>(1)? as u64;
            let hash = blob32(row.get(2)?, "node")?;
            if tree.node(level, index) != Some(hash) {
                return Err(LogError::Tampered(format!(
                    "node level {level} index {index} differs from the tree recomputed from the entries"
                )));
            }
            count += 1;
        }
        let expected = expected_node_count(tree.size());
        if count != expected {
            return Err(LogError::Tampered(format!(
                "{count} stored nodes, but a tree of {} entries has {expected}: nodes were removed",
                tree.size()
            )));
        }
        Ok(count)
    }

    /// Every checkpoint: signature, row vs note, root vs entries, origin, and
    /// consistency with the previous one. Returns the count and the latest size.
    fn verify_checkpoints(
        &self,
        tree: &merkle::MemoryTree,
        keys: &[LogKey<'_>],
        name: &str,
        origin: &str,
    ) -> Result<(u64, Option<u64>), LogError> {
        let size = tree.size();
        let mut checkpoints = self.conn.prepare(
            "SELECT tree_size, root_hash, note FROM tlog_checkpoints ORDER BY tree_size",
        )?;
        let mut cp_rows = checkpoints.query([])?;
        let mut previous: Option<(u64, Hash)> = None;
        let mut count = 0u64;
        while let Some(row) = cp_rows.next()? {
            let cp_size = row.get::<_, i64>(0)? as u64;
            let root = blob32(row.get(1)?, "checkpoint root")?;
            let note_text: String = row.get(2)?;
            if cp_size > size {
                return Err(LogError::Tampered(format!(
                    "checkpoint at size {cp_size} exceeds the log size {size}: entries were removed"
                )));
            }
            let parsed = verify_note_by_any(&note_text, name, keys)
                .map_err(|e| LogError::Tampered(format!("checkpoint {cp_size}: {e}")))?;
            if parsed.size != cp_size || parsed.root_hash != root {
                return Err(LogError::Tampered(format!(
                    "checkpoint {cp_size}: signed note disagrees with its row"
                )));
            }
            if parsed.origin != origin {
                return Err(LogError::Tampered(format!(
                    "checkpoint {cp_size}: origin {} is not this log's",
                    crate::escape::quoted(&parsed.origin)
                )));
            }
            if tree.root(cp_size)? != root {
                return Err(LogError::Tampered(format!(
                    "checkpoint {cp_size}: signed root hash does not match the entries"
                )));
            }
            if let Some((old_size, old_root)) = previous {
                let proof =
                    merkle::consistency_proof(old_size, cp_size, &mut |l, i| tree.node(l, i))?;
                merkle::verify_consistency(old_size, cp_size, &old_root, &root, &proof).map_err(
                    |e| {
                        LogError::Tampered(format!(
                            "checkpoints {old_size} -> {cp_size} are not consistent: {e}"
                        ))
                    },
                )?;
            }
            previous = Some((cp_size, root));
            count += 1;
        }
        Ok((count, previous.map(|(s, _)| s)))
    }

    /// Proves that this log grew from a checkpoint kept elsewhere: its
    /// signature is the log's, its size is not beyond the log, and the tree
    /// recomputed from the entries has its root at its size (so a consistency
    /// proof from it to now exists and verifies).
    pub fn verify_kept_checkpoint(
        &self,
        note_text: &str,
        keys: &[LogKey<'_>],
        name: &str,
        origin: &str,
    ) -> Result<KeptCheckpoint, LogError> {
        let kept = verify_note_by_any(note_text, name, keys)
            .map_err(|e| LogError::Tampered(format!("the kept checkpoint {e}")))?;
        if kept.origin != origin {
            return Err(LogError::Tampered(format!(
                "the kept checkpoint is of log {}, not {}",
                crate::escape::quoted(&kept.origin),
                crate::escape::quoted(origin)
            )));
        }
        let size = self.size()?;
        if kept.size > size {
            return Err(LogError::Tampered(format!(
                "the kept checkpoint is at tree size {}, but the log now has {size} entries: the log was truncated (or replaced) after it was signed",
                kept.size
            )));
        }
        let root_then = self.root(kept.size)?;
        if root_then != kept.root_hash {
            return Err(LogError::Tampered(format!(
                "the log's root at size {} is {}, not the kept checkpoint's {}: the log was rewritten after it was signed",
                kept.size,
                hex::encode(root_then),
                hex::encode(kept.root_hash)
            )));
        }
        let root_now = self.root(size)?;
        if kept.size > 0 && kept.size < size {
            let proof = self.consistency_proof(kept.size, size)?;
            merkle::verify_consistency(kept.size, size, &kept.root_hash, &root_now, &proof)
                .map_err(|e| {
                    LogError::Tampered(format!("consistency from the kept checkpoint: {e}"))
                })?;
        }
        Ok(KeptCheckpoint {
            kept_size: kept.size,
            size,
            root_hash: root_now,
        })
    }
}

/// What [`LogReader::verify_kept_checkpoint`] proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptCheckpoint {
    /// The kept checkpoint's size.
    pub kept_size: u64,
    /// The log's size now.
    pub size: u64,
    /// The log's root now.
    pub root_hash: Hash,
}

/// One key of the log and the window (unix seconds, inclusive) in which it
/// signed: every key the trusted root lists for the log, after rotations.
#[derive(Debug, Clone, Copy)]
pub struct LogKey<'a> {
    /// The public key.
    pub key: &'a VerifyingKey,
    /// First second it may sign at.
    pub from: Option<i64>,
    /// Last second it may sign at (none while it is the current key).
    pub until: Option<i64>,
}

impl<'a> LogKey<'a> {
    /// A key with no window (the only key of a log that never rotated).
    pub fn always(key: &'a VerifyingKey) -> Self {
        LogKey {
            key,
            from: None,
            until: None,
        }
    }

    /// True when the key may have signed at `unix_secs`.
    pub fn valid_at(&self, unix_secs: i64) -> bool {
        self.from.is_none_or(|f| unix_secs >= f) && self.until.is_none_or(|u| unix_secs <= u)
    }

    /// Its signed-note key hint.
    fn hint(&self) -> [u8; 4] {
        let id = self.key.key_id();
        [id[0], id[1], id[2], id[3]]
    }
}

/// A [`LogKey`] that owns its key (what a server keeps for its lifetime).
#[derive(Debug, Clone)]
pub struct OwnedLogKey {
    /// The public key.
    pub key: VerifyingKey,
    /// First second it may sign at.
    pub from: Option<i64>,
    /// Last second it may sign at.
    pub until: Option<i64>,
}

impl OwnedLogKey {
    /// Owns a borrowed key.
    pub fn of(k: &LogKey<'_>) -> Self {
        OwnedLogKey {
            key: k.key.clone(),
            from: k.from,
            until: k.until,
        }
    }

    /// Borrows it back.
    pub fn borrowed(&self) -> LogKey<'_> {
        LogKey {
            key: &self.key,
            from: self.from,
            until: self.until,
        }
    }
}

/// [`verify_note`] with whichever of `keys` signed it (by key hint).
pub fn verify_note_by_any(
    note_text: &str,
    name: &str,
    keys: &[LogKey<'_>],
) -> Result<Checkpoint, String> {
    let mut first_error = None;
    for k in keys {
        match verify_note(note_text, name, k.hint(), k.key) {
            Ok(c) => return Ok(c),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| "has no log key to check it with".into()))
}

/// Parses a signed note and checks the log's signature on it.
pub fn verify_note(
    note_text: &str,
    name: &str,
    hint: [u8; 4],
    key: &VerifyingKey,
) -> Result<Checkpoint, String> {
    let note = SignedNote::parse(note_text).map_err(|e| format!("is malformed: {e}"))?;
    match note.verify(name, hint, key) {
        SignatureCheck::Valid => {}
        SignatureCheck::NoMatchingSignature => {
            return Err(format!(
                "carries no signature by the log {}",
                crate::escape::quoted(name)
            ))
        }
        SignatureCheck::Invalid => return Err("signature does not verify".into()),
    }
    Checkpoint::parse(&note.text).map_err(|e| format!("is malformed: {e}"))
}

/// How many perfect-subtree nodes a tree of `size` leaves stores.
fn expected_node_count(size: u64) -> u64 {
    (0..64u32)
        .map(|level| size >> level)
        .take_while(|n| *n > 0)
        .sum()
}

/// The stored kind and artifact digest must be what the body says.
fn check_derived(index: u64, body: &[u8], kind: &str, digest: &[u8; 32]) -> Result<(), LogError> {
    let (body_kind, body_digest) = crate::tlog::entry::derived_columns(body).ok_or_else(|| {
        LogError::Tampered(format!(
            "entry {index}: its body is not a hashedrekord or dsse entry"
        ))
    })?;
    if kind != body_kind.kind() {
        return Err(LogError::Tampered(format!(
            "entry {index}: kind column is {}, its signed body is {}",
            crate::escape::quoted(kind),
            body_kind.kind()
        )));
    }
    if let Some(body_digest) = body_digest {
        if &body_digest != digest {
            return Err(LogError::Tampered(format!(
                "entry {index}: artifact_sha256 column is {}, its signed body records {}",
                hex::encode(digest),
                hex::encode(body_digest)
            )));
        }
    }
    Ok(())
}

/// What `verify_all` checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogAudit {
    /// Entries checked.
    pub size: u64,
    /// Stored nodes checked.
    pub nodes: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// The recomputed root.
    pub root_hash: Hash,
    /// Witness cosignatures checked (by the state audit; 0 from `verify_all`).
    pub cosignatures: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use private_ca::Curve;

    fn entry(i: u64) -> NewEntry {
        let digest = crate::crypto::sha256(&i.to_be_bytes());
        NewEntry {
            kind: EntryKind::HashedRekord,
            body: crate::tlog::entry::hashedrekord_body(&digest, b"signature", b"certificate"),
            artifact_sha256: digest,
        }
    }

    fn setup() -> (tempfile::TempDir, Connection, Log) {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_database(&dir.path().join("log.db")).unwrap();
        let log = Log::new(
            SigningKey::generate(Curve::P256).unwrap(),
            "https://tlog.example.internal",
        );
        log.initialize(&conn).unwrap();
        (dir, conn, log)
    }

    fn append(conn: &mut Connection, log: &Log, range: std::ops::Range<u64>) -> AppendedBatch {
        let tx = conn.transaction().unwrap();
        let entries: Vec<NewEntry> = range.map(entry).collect();
        let batch = log.append_batch(&tx, &entries, 1_700_000_000).unwrap();
        tx.commit().unwrap();
        // The proofs computed in memory equal the ones rebuilt from storage.
        let reader = LogReader::new(conn);
        for e in &batch.entries {
            assert_eq!(
                e.inclusion_proof,
                reader
                    .inclusion_proof(e.index, batch.checkpoint.size)
                    .unwrap()
            );
        }
        batch
    }

    #[test]
    fn proofs_verify_for_every_index_and_checkpointed_size() {
        let (_dir, mut conn, log) = setup();
        let mut sizes = Vec::new();
        let mut next = 0u64;
        for batch in [1u64, 1, 3, 8, 17, 50, 1, 120] {
            let b = append(&mut conn, &log, next..next + batch);
            next += batch;
            sizes.push(b.checkpoint.size);
        }
        let reader = LogReader::new(&conn);
        assert_eq!(reader.size().unwrap(), next);
        let key = log.public_key().unwrap();
        for &size in &sizes {
            let cp = reader.checkpoint(size).unwrap();
            assert_eq!(reader.root(size).unwrap(), cp.root_hash);
            for index in 0..size {
                let e = reader.entry(index).unwrap();
                let proof = reader.inclusion_proof(index, size).unwrap();
                merkle::verify_inclusion(
                    index,
                    size,
                    &merkle::leaf_hash(&e.body),
                    &proof,
                    &cp.root_hash,
                )
                .unwrap();
            }
        }
        for (i, &old) in sizes.iter().enumerate() {
            for &new in &sizes[i..] {
                let proof = reader.consistency_proof(old, new).unwrap();
                merkle::verify_consistency(
                    old,
                    new,
                    &reader.root(old).unwrap(),
                    &reader.root(new).unwrap(),
                    &proof,
                )
                .unwrap();
            }
        }
        let audit = reader
            .verify_all(&[LogKey::always(&key)], log.name(), log.origin())
            .unwrap();
        assert_eq!(audit.size, next);
        assert_eq!(audit.checkpoints, sizes.len() as u64);
    }

    #[test]
    fn updates_and_deletes_are_refused_by_triggers() {
        let (_dir, mut conn, log) = setup();
        append(&mut conn, &log, 0..4);
        assert!(conn
            .execute("UPDATE tlog_entries SET body = x'00' WHERE idx = 1", [])
            .is_err());
        assert!(conn
            .execute("DELETE FROM tlog_entries WHERE idx = 3", [])
            .is_err());
        assert!(conn
            .execute("UPDATE tlog_nodes SET hash = x'00'", [])
            .is_err());
        assert!(conn.execute("DELETE FROM tlog_checkpoints", []).is_err());
        assert_eq!(LogReader::new(&conn).size().unwrap(), 4);
    }

    #[test]
    fn altered_row_behind_the_logs_back_is_detected() {
        let (_dir, mut conn, log) = setup();
        append(&mut conn, &log, 0..10);
        append(&mut conn, &log, 10..13);
        conn.execute_batch(
            "DROP TRIGGER tlog_entries_no_update; UPDATE tlog_entries SET body = CAST('{\"entry\":99}' AS BLOB) WHERE idx = 5;",
        )
        .unwrap();
        let err = LogReader::new(&conn)
            .verify_all(
                &[LogKey::always(&log.public_key().unwrap())],
                log.name(),
                log.origin(),
            )
            .unwrap_err();
        assert!(matches!(err, LogError::Tampered(_)), "{err}");
    }

    #[test]
    fn rolled_back_batch_leaves_nothing() {
        let (_dir, mut conn, log) = setup();
        append(&mut conn, &log, 0..3);
        {
            let tx = conn.transaction().unwrap();
            log.append_batch(&tx, &[entry(3), entry(4)], 1).unwrap();
            // dropped without commit
        }
        let reader = LogReader::new(&conn);
        assert_eq!(reader.size().unwrap(), 3);
        assert!(reader.checkpoint(5).is_err());
        reader
            .verify_all(
                &[LogKey::always(&log.public_key().unwrap())],
                log.name(),
                log.origin(),
            )
            .unwrap();
    }

    /// A rotated log key: the tree goes on under the new key with the first
    /// key's origin; the audit verifies each entry's SET with the key valid
    /// at its time and each checkpoint with the key that signed it; a SET by
    /// the retired key after its window is named as such.
    #[test]
    fn a_rotated_key_goes_on_with_the_tree_and_the_audit_checks_each_window() {
        let (_dir, mut conn, old) = setup();
        let at = |conn: &mut Connection, log: &Log, range: std::ops::Range<u64>, t: i64| {
            let tx = conn.transaction().unwrap();
            let entries: Vec<NewEntry> = range.map(entry).collect();
            log.append_batch(&tx, &entries, t).unwrap();
            tx.commit().unwrap();
        };
        at(&mut conn, &old, 0..3, 1_000);
        let mut new = Log::new(
            SigningKey::generate(Curve::P256).unwrap(),
            "https://tlog.example.internal",
        );
        assert!(matches!(
            new.initialize_rotated(&conn, &[]),
            Err(LogError::WrongLog { .. })
        ));
        new.initialize_rotated(&conn, &[hex::encode(old.log_id())])
            .unwrap();
        assert_eq!(new.origin(), old.origin(), "the origin goes on");
        at(&mut conn, &new, 3..5, 2_000);
        let (old_key, new_key) = (old.public_key().unwrap(), new.public_key().unwrap());
        let keys = [
            LogKey {
                key: &old_key,
                from: Some(0),
                until: Some(1_500),
            },
            LogKey {
                key: &new_key,
                from: Some(1_500),
                until: None,
            },
        ];
        let reader = LogReader::new(&conn);
        let audit = reader.verify_all(&keys, old.name(), old.origin()).unwrap();
        assert_eq!((audit.size, audit.checkpoints), (5, 2));
        // Only the old key: the new entries' SETs and checkpoint are not its.
        assert!(reader
            .verify_all(&keys[..1], old.name(), old.origin())
            .is_err());
        // The retired key signing after its window closed.
        at(&mut conn, &old, 5..6, 3_000);
        let reader = LogReader::new(&conn);
        let err = reader
            .verify_all(&keys, old.name(), old.origin())
            .unwrap_err()
            .to_string();
        assert!(err.contains("validity window"), "{err}");
    }

    #[test]
    fn another_key_is_refused_for_an_existing_log() {
        let (_dir, conn, _log) = setup();
        let other = Log::new(
            SigningKey::generate(Curve::P256).unwrap(),
            "https://tlog.example.internal",
        );
        assert!(matches!(
            other.initialize(&conn),
            Err(LogError::WrongLog { .. })
        ));
    }
}
