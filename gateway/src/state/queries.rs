//! Every read of the state database outside the log's own tables: the
//! import pipeline's lookups and what the server and the CLI show. Each takes
//! a connection (the writer's, or a read-only one from the server's pool).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use crate::escape::quoted;
use crate::judge::medium::{ImportedVersion, LastImport};
use crate::tlog::LogError;
use crate::{Error, Result};

/// The import that carried the medium with this identity, if any.
pub fn import_by_medium(conn: &Connection, medium_id: &str) -> Result<Option<i64>> {
    conn.query_row(
        "SELECT id FROM imports WHERE medium_id = ?1",
        [medium_id],
        |r| r.get(0),
    )
    .optional()
    .map_err(|e| LogError::from(e).into())
}

/// The import with the latest signed export time from `exporter`.
pub fn last_import_from(conn: &Connection, exporter: &str) -> Result<Option<LastImport>> {
    let mut stmt = conn
        .prepare_cached("SELECT id, export_time FROM imports WHERE exporter = ?1")
        .map_err(LogError::from)?;
    let rows = stmt
        .query_map([exporter], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(LogError::from)?;
    let mut latest: Option<LastImport> = None;
    for row in rows {
        let (id, text) = row.map_err(LogError::from)?;
        let export_time = DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                Error::Log(LogError::Tampered(format!(
                    "import #{id} has an unreadable export time {}",
                    quoted(&text)
                )))
            })?;
        if latest.is_none_or(|l| export_time > l.export_time) {
            latest = Some(LastImport { id, export_time });
        }
    }
    Ok(latest)
}

/// The version of `name` served now: its latest import.
pub fn current_version(conn: &Connection, name: &str) -> Result<Option<ImportedVersion>> {
    conn.prepare_cached(
        "SELECT sha256, import_id FROM artifacts WHERE name = ?1 ORDER BY import_id DESC LIMIT 1",
    )
    .and_then(|mut s| {
        s.query_row([name], |r| {
            Ok(ImportedVersion {
                sha256: r.get(0)?,
                import_id: r.get(1)?,
            })
        })
        .optional()
    })
    .map_err(|e| LogError::from(e).into())
}

/// The `.sigs` array and SHA-256 of the version of `name` served now.
pub fn current_sigs(conn: &Connection, name: &str) -> Result<Option<(Vec<u8>, String)>> {
    conn.query_row(
        "SELECT sigs, sha256 FROM artifacts WHERE name = ?1 ORDER BY import_id DESC LIMIT 1",
        [name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(|e| LogError::from(e).into())
}

/// The first artifact by name and its current `.sigs`.
pub fn first_artifact(conn: &Connection) -> Result<Option<(String, Vec<u8>)>> {
    conn.query_row(
        "SELECT name, sigs FROM artifacts ORDER BY name, import_id DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(|e| LogError::from(e).into())
}
