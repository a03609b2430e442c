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
    let row: Option<(Vec<u8>, String)> = conn
        .query_row(
            "SELECT sigs, sha256 FROM artifacts WHERE name = ?1 ORDER BY import_id DESC LIMIT 1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(sql)?;
    row.map(|(sigs, sha)| Ok((stored_sigs(name, sigs)?, sha)))
        .transpose()
}

/// A stored `.sigs` array, decoded (see [`super::sigs_codec`]).
pub fn stored_sigs(name: &str, stored: Vec<u8>) -> Result<Vec<u8>> {
    super::sigs_codec::decode(stored).map_err(|e| {
        Error::Log(LogError::Tampered(format!(
            "the stored .sigs of {}: {e}",
            crate::escape::quoted(name)
        )))
    })
}

/// The first artifact by name and its current `.sigs`.
pub fn first_artifact(conn: &Connection) -> Result<Option<(String, Vec<u8>)>> {
    let row: Option<(String, Vec<u8>)> = conn
        .query_row(
            "SELECT name, sigs FROM artifacts ORDER BY name, import_id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(sql)?;
    row.map(|(name, sigs)| {
        let sigs = stored_sigs(&name, sigs)?;
        Ok((name, sigs))
    })
    .transpose()
}

fn sql(e: rusqlite::Error) -> Error {
    Error::Log(LogError::from(e))
}

/// SQLite's change counter for this connection's view (`PRAGMA data_version`).
pub fn data_version(conn: &Connection) -> Result<i64> {
    conn.prepare_cached("PRAGMA data_version")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
        .map_err(sql)
}

/// The newest import's record of one artifact.
#[derive(Debug, Clone)]
pub struct ArtifactRow {
    /// Artifact name.
    pub name: String,
    /// The import that carried this version.
    pub import_id: i64,
    /// Hex SHA-256.
    pub sha256: String,
    /// Size.
    pub size: u64,
    /// Verified upstream identity.
    pub upstream_identity: String,
    /// Verified upstream issuer.
    pub upstream_issuer: String,
    /// Verified upstream log index.
    pub upstream_log_index: i64,
    /// The identity our leaf names.
    pub signer_identity: String,
    /// Our log index.
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
pub fn artifact(conn: &Connection, name: &str) -> Result<Option<ArtifactRow>> {
    conn.prepare_cached(&format!(
        "SELECT {ARTIFACT_COLUMNS} FROM artifacts a WHERE a.name = ?1 ORDER BY a.import_id DESC LIMIT 1"
    ))
    .and_then(|mut s| s.query_row([name], artifact_row).optional())
    .map_err(sql)
}

/// The `.sigs` JSON array of the latest record of artifact `name`.
pub fn sigs(conn: &Connection, name: &str) -> Result<Option<Vec<u8>>> {
    let stored: Option<Vec<u8>> = conn
        .prepare_cached(
            "SELECT sigs FROM artifacts WHERE name = ?1 ORDER BY import_id DESC LIMIT 1",
        )
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .map_err(sql)?;
    stored.map(|s| stored_sigs(name, s)).transpose()
}

/// A dashboard search: a name substring or a digest prefix.
#[derive(Debug, Clone)]
pub struct Search {
    /// LIKE pattern for the name (escaped with `\`).
    name_like: String,
    /// Lowercase hex prefix of the sha256, if the query looks like one.
    digest_prefix: Option<String>,
}

impl Search {
    /// Builds a search from user text (`sha256:` prefixes are accepted).
    pub fn new(query: &str) -> Self {
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
pub type WithSigs = (ArtifactRow, Option<Vec<u8>>);

/// Latest records of every artifact (or those matching `search`), by name,
/// at most `limit`; with the `.sigs` bytes when `with_sigs`.
pub fn artifacts(
    conn: &Connection,
    search: Option<&Search>,
    limit: usize,
    with_sigs: bool,
) -> Result<Vec<WithSigs>> {
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
    let rows = rows.collect::<Result<Vec<_>, _>>().map_err(sql)?;
    rows.into_iter()
        .map(|(row, sigs)| {
            let sigs = sigs.map(|s| stored_sigs(&row.name, s)).transpose()?;
            Ok((row, sigs))
        })
        .collect()
}

/// Number of distinct artifact names.
pub fn artifact_count(conn: &Connection) -> Result<u64> {
    conn.prepare_cached("SELECT COUNT(DISTINCT name) FROM artifacts")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(sql)
}

/// One import, as the dashboard lists it.
#[derive(Debug, Clone)]
pub struct ImportRow {
    /// Import number.
    pub id: i64,
    /// The medium's identity.
    pub medium_id: String,
    /// The exporter.
    pub exporter: String,
    /// Signed export time.
    pub export_time: String,
    /// When it was imported.
    pub imported_at: String,
    /// Checkpointed tree size after it.
    pub checkpoint_size: i64,
    /// Artifacts it carried.
    pub artifacts: i64,
}

/// The newest `limit` imports, newest first.
pub fn imports(conn: &Connection, limit: usize) -> Result<Vec<ImportRow>> {
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

/// One import's stored report (the JSON `airgate import --json` printed).
pub fn import_report(conn: &Connection, id: i64) -> Result<Option<String>> {
    conn.query_row("SELECT report FROM imports WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .optional()
    .map_err(sql)
}

/// One refused import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalRow {
    /// Refusal number.
    pub id: i64,
    /// When (RFC 3339, UTC).
    pub refused_at: String,
    /// The media as given on the command line.
    pub media: String,
    /// SHA-256 of the manifest entry as received, if one was read.
    pub manifest_sha256: Option<String>,
    /// The reason printed.
    pub reason: String,
}

/// Appends a refused import; returns its number.
pub fn insert_refusal(
    conn: &Connection,
    at: &str,
    media: &str,
    manifest_sha256: Option<&str>,
    reason: &str,
) -> Result<i64> {
    conn.execute(
        "INSERT INTO refused_imports (refused_at, media, manifest_sha256, reason) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![at, media, manifest_sha256, reason],
    )
    .map_err(sql)?;
    Ok(conn.last_insert_rowid())
}

/// The newest `limit` refused imports, newest first.
pub fn refusals(conn: &Connection, limit: usize) -> Result<Vec<RefusalRow>> {
    let present: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'refused_imports'",
            [],
            |r| r.get(0),
        )
        .map_err(sql)?;
    if present == 0 {
        return Ok(Vec::new()); // a state no import has opened since the table came
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, refused_at, media, manifest_sha256, reason FROM refused_imports \
             ORDER BY id DESC LIMIT ?1",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok(RefusalRow {
                id: r.get(0)?,
                refused_at: r.get(1)?,
                media: r.get(2)?,
                manifest_sha256: r.get(3)?,
                reason: r.get(4)?,
            })
        })
        .map_err(sql)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql)
}

/// Every import's number and recorded checkpoint size.
pub fn import_checkpoint_sizes(conn: &Connection) -> Result<Vec<(i64, u64)>> {
    let mut stmt = conn
        .prepare("SELECT id, checkpoint_size FROM imports ORDER BY id")
        .map_err(sql)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .map_err(sql)?;
    rows.map(|r| {
        let (id, size) = r.map_err(sql)?;
        Ok((id, u64::try_from(size).unwrap_or(u64::MAX)))
    })
    .collect()
}

/// One artifact record's reference into the log.
#[derive(Debug, Clone)]
pub struct LogReference {
    /// Artifact name.
    pub name: String,
    /// The import that recorded it.
    pub import_id: i64,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
    /// Our log index.
    pub log_index: u64,
}

/// Every artifact record's log reference.
pub fn artifact_log_references(conn: &Connection) -> Result<Vec<LogReference>> {
    let mut stmt = conn
        .prepare(
            "SELECT name, import_id, sha256, log_index FROM artifacts ORDER BY import_id, name",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(LogReference {
                name: r.get(0)?,
                import_id: r.get(1)?,
                sha256: r.get(2)?,
                log_index: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(u64::MAX),
            })
        })
        .map_err(sql)?;
    rows.map(|r| r.map_err(sql)).collect()
}

/// Everything the `imports` table records of one import.
#[derive(Debug, Clone)]
pub struct ImportRecord {
    /// Import number.
    pub id: i64,
    /// SHA-256 of the signed manifest statement (the medium's identity).
    pub medium_id: String,
    /// The enrolled exporter whose key signed the manifest.
    pub exporter: String,
    /// Signed export time.
    pub export_time: String,
    /// When the high side imported it.
    pub imported_at: String,
    /// The verified pack digest.
    pub pack_digest: String,
    /// SHA-256 of the carried low-side `policy.toml`, as read.
    pub medium_policy_sha256: String,
    /// SHA-256 of the high side's policy file at import time.
    pub policy_sha256: String,
    /// TUF role versions of the verified snapshot, as stored (JSON).
    pub tuf_versions: String,
    /// Checkpointed tree size after it.
    pub checkpoint_size: i64,
    /// The stored import report (JSON).
    pub report: String,
}

/// Import `id`'s full record, `None` when there is no such import.
pub fn import_record(conn: &Connection, id: i64) -> Result<Option<ImportRecord>> {
    conn.prepare_cached(
        "SELECT id, medium_id, exporter, export_time, imported_at, pack_digest, \
         medium_policy_sha256, policy_sha256, tuf_versions, checkpoint_size, report \
         FROM imports WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.query_row([id], |r| {
            Ok(ImportRecord {
                id: r.get(0)?,
                medium_id: r.get(1)?,
                exporter: r.get(2)?,
                export_time: r.get(3)?,
                imported_at: r.get(4)?,
                pack_digest: r.get(5)?,
                medium_policy_sha256: r.get(6)?,
                policy_sha256: r.get(7)?,
                tuf_versions: r.get(8)?,
                checkpoint_size: r.get(9)?,
                report: r.get(10)?,
            })
        })
        .optional()
    })
    .map_err(sql)
}

/// The upstream log URL recorded for `name` in import `import_id`.
pub fn upstream_log_url(conn: &Connection, name: &str, import_id: i64) -> Result<Option<String>> {
    conn.prepare_cached("SELECT upstream_log_url FROM artifacts WHERE name = ?1 AND import_id = ?2")
        .and_then(|mut s| {
            s.query_row(rusqlite::params![name, import_id], |r| r.get(0))
                .optional()
        })
        .map_err(sql)
}

/// Every recorded version of `name`, newest import first, at most `limit`.
pub fn artifact_versions(conn: &Connection, name: &str, limit: usize) -> Result<Vec<ArtifactRow>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {ARTIFACT_COLUMNS} FROM artifacts a WHERE a.name = ?1 \
             ORDER BY a.import_id DESC LIMIT ?2"
        ))
        .map_err(sql)?;
    let rows = stmt
        .query_map(
            rusqlite::params![name, i64::try_from(limit).unwrap_or(i64::MAX)],
            artifact_row,
        )
        .map_err(sql)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql)
}

/// Whether the state has table `name` (tables created on open may be
/// missing from a database no newer airgate has opened for writing).
pub fn table_exists(conn: &Connection, name: &str) -> Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(sql)
}

fn has_conda_table(conn: &Connection) -> Result<bool> {
    table_exists(conn, "conda_packages")
}

/// The conda packages of `subdir` as served now (the newest import of each
/// artifact name), with their `.sigs`, by filename; a filename carried under
/// two artifact names is listed once, from the newest import.
pub fn conda_listed(conn: &Connection, subdir: &str) -> Result<Vec<crate::conda::Listed>> {
    if !has_conda_table(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT c.filename, c.record, a.sigs FROM conda_packages c \
             JOIN artifacts a ON a.name = c.name AND a.import_id = c.import_id \
             WHERE c.subdir = ?1 \
               AND c.import_id = (SELECT MAX(import_id) FROM artifacts WHERE name = c.name) \
             ORDER BY c.filename, c.import_id DESC",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map([subdir], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .map_err(sql)?;
    let mut out: Vec<crate::conda::Listed> = Vec::new();
    for row in rows {
        let (filename, record_json, sigs) = row.map_err(sql)?;
        let sigs = stored_sigs(&filename, sigs)?;
        if out.last().is_some_and(|l| l.filename == filename) {
            continue;
        }
        out.push(crate::conda::Listed {
            filename,
            record_json,
            sigs_sha256: hex::encode(crate::crypto::sha256(&sigs)),
        });
    }
    Ok(out)
}

/// The artifact name `subdir/filename` of the channel is served from.
pub fn conda_artifact(conn: &Connection, subdir: &str, filename: &str) -> Result<Option<String>> {
    if !has_conda_table(conn)? {
        return Ok(None);
    }
    conn.prepare_cached(
        "SELECT c.name FROM conda_packages c \
         WHERE c.subdir = ?1 AND c.filename = ?2 \
           AND c.import_id = (SELECT MAX(import_id) FROM artifacts WHERE name = c.name) \
         ORDER BY c.import_id DESC LIMIT 1",
    )
    .and_then(|mut s| s.query_row([subdir, filename], |r| r.get(0)).optional())
    .map_err(sql)
}

/// The subdirs that hold conda packages now.
pub fn conda_subdirs(conn: &Connection) -> Result<Vec<String>> {
    if !has_conda_table(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached("SELECT DISTINCT subdir FROM conda_packages ORDER BY subdir")
        .map_err(sql)?;
    let rows = stmt.query_map([], |r| r.get(0)).map_err(sql)?;
    rows.collect::<std::result::Result<Vec<String>, _>>()
        .map_err(sql)
}
