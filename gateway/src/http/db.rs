//! Read-only access to `state.db`: a small pool of `query_only` connections
//! used on blocking threads, and the queries the server runs.

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::error::ApiError;
use super::AppState;
use crate::tlog::LogError;

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 16;

/// A pool of read-only connections to one database.
pub(crate) struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    /// A pool over the database at `path` (nothing is opened yet).
    pub(crate) fn new(path: PathBuf) -> Self {
        Pool {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn open(&self) -> Result<Connection, rusqlite::Error> {
        open_read_only(&self.path)
    }

    /// Opens one connection and reads the schema (startup check).
    pub(crate) fn check(&self) -> crate::Result<()> {
        let conn = self.open().map_err(LogError::from)?;
        conn.query_row("SELECT COUNT(*) FROM artifacts", [], |r| r.get::<_, i64>(0))
            .map_err(LogError::from)?;
        self.give_back(conn);
        Ok(())
    }

    fn take(&self) -> Result<Connection, rusqlite::Error> {
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match reused {
            Some(conn) => Ok(conn),
            None => self.open(),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }
}

/// Opens the database without creating it, refusing writes (`query_only`).
pub(crate) fn open_read_only(path: &std::path::Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "query_only", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Runs `f` with a pooled connection on a blocking thread.
pub(crate) async fn with_db<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
{
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let conn = state
            .pool
            .take()
            .map_err(|e| ApiError::internal("opening the state database", &e))?;
        let result = f(&conn);
        state.pool.give_back(conn);
        result
    })
    .await
    .map_err(|e| ApiError::internal("running a database query", &e))?
}

/// Maps a SQLite error to a 500.
pub(crate) fn sql(e: rusqlite::Error) -> ApiError {
    ApiError::internal("querying the state database", &e)
}

/// The newest import's record of one artifact.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactRow {
    pub name: String,
    pub import_id: i64,
    pub sha256: String,
    pub size: u64,
    pub upstream_identity: String,
    pub upstream_issuer: String,
    pub upstream_log_index: i64,
    pub signer_identity: String,
    pub log_index: i64,
}

const ARTIFACT_COLUMNS: &str = "a.name, a.import_id, a.sha256, a.size, a.upstream_identity, \
     a.upstream_issuer, a.upstream_log_index, a.signer_identity, a.log_index";

fn artifact_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ArtifactRow> {
    Ok(ArtifactRow {
        name: r.get(0)?,
        import_id: r.get(1)?,
        sha256: r.get(2)?,
        size: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
        upstream_identity: r.get(4)?,
        upstream_issuer: r.get(5)?,
        upstream_log_index: r.get(6)?,
        signer_identity: r.get(7)?,
        log_index: r.get(8)?,
    })
}

/// The latest record of artifact `name`.
pub(crate) fn artifact(conn: &Connection, name: &str) -> Result<Option<ArtifactRow>, ApiError> {
    conn.prepare_cached(&format!(
        "SELECT {ARTIFACT_COLUMNS} FROM artifacts a WHERE a.name = ?1 ORDER BY a.import_id DESC LIMIT 1"
    ))
    .and_then(|mut s| s.query_row([name], artifact_row).optional())
    .map_err(sql)
}

/// The `.sigs` JSON array of the latest record of artifact `name`.
pub(crate) fn sigs(conn: &Connection, name: &str) -> Result<Option<Vec<u8>>, ApiError> {
    conn.prepare_cached(
        "SELECT sigs FROM artifacts WHERE name = ?1 ORDER BY import_id DESC LIMIT 1",
    )
    .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
    .map_err(sql)
}

/// A dashboard search: a name substring or a digest prefix.
#[derive(Debug, Clone)]
pub(crate) struct Search {
    /// LIKE pattern for the name (escaped with `\`).
    name_like: String,
    /// Lowercase hex prefix of the sha256, if the query looks like one.
    digest_prefix: Option<String>,
}

impl Search {
    /// Builds a search from user text (`sha256:` prefixes are accepted).
    pub(crate) fn new(query: &str) -> Self {
        let q = query.trim();
        let mut escaped = String::with_capacity(q.len() + 2);
        escaped.push('%');
        for c in q.chars() {
            if matches!(c, '%' | '_' | '\\') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        escaped.push('%');
        let hexish = q.strip_prefix("sha256:").unwrap_or(q).to_ascii_lowercase();
        let digest_prefix = (!hexish.is_empty()
            && hexish.len() <= 64
            && hexish.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(hexish);
        Search {
            name_like: escaped,
            digest_prefix,
        }
    }
}

/// An artifact record and, when asked for, its `.sigs` bytes.
pub(crate) type WithSigs = (ArtifactRow, Option<Vec<u8>>);

/// Latest records of every artifact (or those matching `search`), by name,
/// at most `limit`; with the `.sigs` bytes when `with_sigs`.
pub(crate) fn artifacts(
    conn: &Connection,
    search: Option<&Search>,
    limit: usize,
    with_sigs: bool,
) -> Result<Vec<WithSigs>, ApiError> {
    let sigs_col = if with_sigs { ", a.sigs" } else { ", NULL" };
    let filter = if search.is_some() {
        "AND (a.name LIKE ?1 ESCAPE '\\' OR (?2 IS NOT NULL AND substr(a.sha256, 1, length(?2)) = ?2))"
    } else {
        ""
    };
    let sql_text = format!(
        "SELECT {ARTIFACT_COLUMNS}{sigs_col} FROM artifacts a \
         WHERE a.import_id = (SELECT MAX(b.import_id) FROM artifacts b WHERE b.name = a.name) {filter} \
         ORDER BY a.name LIMIT {}",
        i64::try_from(limit).unwrap_or(i64::MAX)
    );
    let mut stmt = conn.prepare_cached(&sql_text).map_err(sql)?;
    let map = |r: &rusqlite::Row<'_>| Ok((artifact_row(r)?, r.get::<_, Option<Vec<u8>>>(9)?));
    let rows = match search {
        Some(s) => stmt.query_map(rusqlite::params![s.name_like, s.digest_prefix], map),
        None => stmt.query_map([], map),
    }
    .map_err(sql)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql)
}

/// Number of distinct artifact names.
pub(crate) fn artifact_count(conn: &Connection) -> Result<u64, ApiError> {
    conn.prepare_cached("SELECT COUNT(DISTINCT name) FROM artifacts")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(sql)
}

/// One import, as the dashboard lists it.
#[derive(Debug, Clone)]
pub(crate) struct ImportRow {
    pub id: i64,
    pub medium_id: String,
    pub exporter: String,
    pub export_time: String,
    pub imported_at: String,
    pub checkpoint_size: i64,
    pub artifacts: i64,
}

/// The newest `limit` imports, newest first.
pub(crate) fn imports(conn: &Connection, limit: usize) -> Result<Vec<ImportRow>, ApiError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT i.id, i.medium_id, i.exporter, i.export_time, i.imported_at, i.checkpoint_size, \
             (SELECT COUNT(*) FROM artifacts a WHERE a.import_id = i.id) \
             FROM imports i ORDER BY i.id DESC LIMIT ?1",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok(ImportRow {
                id: r.get(0)?,
                medium_id: r.get(1)?,
                exporter: r.get(2)?,
                export_time: r.get(3)?,
                imported_at: r.get(4)?,
                checkpoint_size: r.get(5)?,
                artifacts: r.get(6)?,
            })
        })
        .map_err(sql)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql)
}
