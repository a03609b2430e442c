//! An in-memory cache of the hottest answers (`.sigs` arrays, the newest
//! checkpoint, the index), dropped whenever the database changes.
//!
//! Change detection is SQLite's `PRAGMA data_version` on one dedicated
//! connection: its value changes whenever any other connection, in this
//! process (an HTTP import) or another (`airgate import`, `airgate sign`),
//! commits. Reading it touches only the WAL index in shared memory, so it
//! runs inline on the async worker (no blocking-thread hand-off); a miss
//! goes to the database on a blocking thread as before.
//!
//! Content read after observing version V is at least as new as V; it is
//! stored only while the cache is still at V, so nothing older than the
//! database is ever served once a change is visible.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use rusqlite::Connection;

use crate::tlog::StoredCheckpoint;

/// Most `.sigs` answers kept (about 10 KiB each).
const MAX_SIGS: usize = 4096;

/// The newest checkpoint and the tree ID, as served.
#[derive(Debug)]
pub(crate) struct LogHead {
    pub checkpoint: StoredCheckpoint,
    pub tree_id: String,
}

#[derive(Default)]
struct Entries {
    version: Option<i64>,
    head: Option<Arc<LogHead>>,
    index: Option<Bytes>,
    sigs: HashMap<String, Option<Sigs>>,
}

/// A `.sigs` answer: the JSON array and its ETag.
#[derive(Debug, Clone)]
pub(crate) struct Sigs {
    pub bytes: Bytes,
    pub etag: String,
}

/// The cache.
pub(crate) struct HotCache {
    path: PathBuf,
    watcher: Mutex<Option<Connection>>,
    entries: Mutex<Entries>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl HotCache {
    /// A cache over the database at `path`.
    pub(crate) fn new(path: PathBuf) -> Self {
        HotCache {
            path,
            watcher: Mutex::new(None),
            entries: Mutex::new(Entries::default()),
        }
    }

    /// The database's data version now, or `None` when it cannot be read
    /// (then callers bypass the cache).
    pub(crate) fn version(&self) -> Option<i64> {
        let mut watcher = lock(&self.watcher);
        if watcher.is_none() {
            *watcher = super::db::open_read_only(&self.path).ok();
        }
        let conn = watcher.as_ref()?;
        let read = crate::state::queries::data_version(conn);
        match read {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the database's data version; cache bypassed");
                *watcher = None;
                None
            }
        }
    }

    /// The entries at `version` (emptied first if they were for another one).
    fn at(&self, version: i64) -> MutexGuard<'_, Entries> {
        let mut entries = lock(&self.entries);
        if entries.version != Some(version) {
            *entries = Entries {
                version: Some(version),
                ..Entries::default()
            };
        }
        entries
    }

    /// Stores with `f` only if the cache is still at `version`.
    fn store(&self, version: i64, f: impl FnOnce(&mut Entries)) {
        let mut entries = lock(&self.entries);
        if entries.version == Some(version) {
            f(&mut entries);
        }
    }

    /// The cached `.sigs` of `name`: `Some(None)` = known not to exist.
    pub(crate) fn sigs(&self, version: i64, name: &str) -> Option<Option<Sigs>> {
        self.at(version).sigs.get(name).cloned()
    }

    /// Remembers the `.sigs` of `name` read at `version`.
    pub(crate) fn put_sigs(&self, version: i64, name: String, sigs: Option<Sigs>) {
        self.store(version, |e| {
            if e.sigs.len() >= MAX_SIGS {
                e.sigs.clear();
            }
            e.sigs.insert(name, sigs);
        });
    }

    /// The cached log head.
    pub(crate) fn head(&self, version: i64) -> Option<Arc<LogHead>> {
        self.at(version).head.clone()
    }

    /// Remembers the log head read at `version`.
    pub(crate) fn put_head(&self, version: i64, head: Arc<LogHead>) {
        self.store(version, |e| e.head = Some(head));
    }

    /// The cached index JSON.
    pub(crate) fn index(&self, version: i64) -> Option<Bytes> {
        self.at(version).index.clone()
    }

    /// Remembers the index JSON read at `version`.
    pub(crate) fn put_index(&self, version: i64, index: Bytes) {
        self.store(version, |e| e.index = Some(index));
    }
}
