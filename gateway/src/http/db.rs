//! Read-only access to `state.db`: a small pool of `query_only` connections
//! used on blocking threads, and the queries the server runs.

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

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
        crate::state::queries::artifact_count(&conn)?;
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

pub(crate) use crate::state::queries::{
    artifact, artifact_count, artifact_versions, artifacts, conda_artifact, conda_listed,
    import_record, imports, refusals, sigs, upstream_log_url, ArtifactRow, ImportRecord, ImportRow,
    RefusalRow, Search,
};
