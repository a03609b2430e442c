//! Queries over the stored container images (`oci_tags`, `oci_manifests`,
//! `oci_blobs`), for the read-only registry. A tag names what the latest
//! import that carried it recorded.

use rusqlite::{params, Connection, OptionalExtension};

use crate::tlog::LogError;
use crate::Result;

/// A stored manifest or index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRow {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// Its `artifactType`.
    pub artifact_type: Option<String>,
    /// Its annotations (JSON object).
    pub annotations: String,
}

fn manifest_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ManifestRow> {
    Ok(ManifestRow {
        digest: r.get(0)?,
        media_type: r.get(1)?,
        size: r.get::<_, i64>(2)? as u64,
        artifact_type: r.get(3)?,
        annotations: r.get(4)?,
    })
}

/// What `repository:tag` names now.
pub fn tag(conn: &Connection, repository: &str, tag: &str) -> Result<Option<ManifestRow>> {
    Ok(conn
        .query_row(
            "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM oci_tags t \
             JOIN oci_manifests m ON m.repository = t.repository AND m.digest = t.digest \
             WHERE t.repository = ?1 AND t.tag = ?2 ORDER BY t.import_id DESC LIMIT 1",
            params![repository, tag],
            manifest_row,
        )
        .optional()
        .map_err(LogError::from)?)
}

/// A manifest of `repository` by digest.
pub fn manifest(conn: &Connection, repository: &str, digest: &str) -> Result<Option<ManifestRow>> {
    Ok(conn
        .query_row(
            "SELECT digest, media_type, size, artifact_type, annotations FROM oci_manifests \
             WHERE repository = ?1 AND digest = ?2",
            params![repository, digest],
            manifest_row,
        )
        .optional()
        .map_err(LogError::from)?)
}

/// The size of a blob (or manifest) `repository` holds, by hex digest.
pub fn blob(conn: &Connection, repository: &str, sha256_hex: &str) -> Result<Option<u64>> {
    Ok(conn
        .query_row(
            "SELECT size FROM oci_blobs WHERE repository = ?1 AND digest = ?2",
            params![repository, sha256_hex],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map_err(LogError::from)?
        .map(|n| n as u64))
}

/// Manifests of `repository` whose subject is `digest`, by digest.
pub fn referrers(conn: &Connection, repository: &str, digest: &str) -> Result<Vec<ManifestRow>> {
    let mut st = conn
        .prepare_cached(
            "SELECT digest, media_type, size, artifact_type, annotations FROM oci_manifests \
             WHERE repository = ?1 AND subject = ?2 ORDER BY digest LIMIT 1000",
        )
        .map_err(LogError::from)?;
    let rows = st
        .query_map(params![repository, digest], manifest_row)
        .map_err(LogError::from)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(LogError::from)?;
    Ok(rows)
}

/// Up to `n` tags of `repository` after `last`, in order; `None` when the
/// repository holds none.
pub fn tags(
    conn: &Connection,
    repository: &str,
    last: &str,
    n: usize,
) -> Result<Option<Vec<String>>> {
    let known: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM oci_tags WHERE repository = ?1",
            [repository],
            |r| r.get(0),
        )
        .map_err(LogError::from)?;
    if known == 0 {
        return Ok(None);
    }
    let mut st = conn
        .prepare_cached(
            "SELECT DISTINCT tag FROM oci_tags WHERE repository = ?1 AND tag > ?2 ORDER BY tag LIMIT ?3",
        )
        .map_err(LogError::from)?;
    let rows = st
        .query_map(params![repository, last, n as i64], |r| r.get(0))
        .map_err(LogError::from)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(LogError::from)?;
    Ok(Some(rows))
}

/// Up to `n` repositories after `last`, in order.
pub fn catalog(conn: &Connection, last: &str, n: usize) -> Result<Vec<String>> {
    let mut st = conn
        .prepare_cached(
            "SELECT DISTINCT repository FROM oci_tags WHERE repository > ?1 ORDER BY repository LIMIT ?2",
        )
        .map_err(LogError::from)?;
    let rows = st
        .query_map(params![last, n as i64], |r| r.get(0))
        .map_err(LogError::from)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(LogError::from)?;
    Ok(rows)
}

/// Every tag of `repository` with what it names now, by tag.
pub fn current_tags(conn: &Connection, repository: &str) -> Result<Vec<(String, ManifestRow)>> {
    let mut st = conn
        .prepare_cached(
            "SELECT t.tag, m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM oci_tags t \
             JOIN oci_manifests m ON m.repository = t.repository AND m.digest = t.digest \
             WHERE t.repository = ?1 AND t.import_id = (SELECT MAX(u.import_id) FROM oci_tags u \
             WHERE u.repository = t.repository AND u.tag = t.tag) ORDER BY t.tag",
        )
        .map_err(LogError::from)?;
    let rows = st
        .query_map([repository], |r| {
            Ok((
                r.get(0)?,
                ManifestRow {
                    digest: r.get(1)?,
                    media_type: r.get(2)?,
                    size: r.get::<_, i64>(3)? as u64,
                    artifact_type: r.get(4)?,
                    annotations: r.get(5)?,
                },
            ))
        })
        .map_err(LogError::from)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(LogError::from)?;
    Ok(rows)
}

/// Every manifest and index `repository` holds, by digest.
pub fn manifests(conn: &Connection, repository: &str) -> Result<Vec<ManifestRow>> {
    let mut st = conn
        .prepare_cached(
            "SELECT digest, media_type, size, artifact_type, annotations FROM oci_manifests \
             WHERE repository = ?1 ORDER BY digest",
        )
        .map_err(LogError::from)?;
    let rows = st
        .query_map([repository], manifest_row)
        .map_err(LogError::from)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(LogError::from)?;
    Ok(rows)
}

/// Every blob of `repository` that is not a manifest (configs, layers,
/// signature payloads, bundles): hex digest and size.
pub fn layers(conn: &Connection, repository: &str) -> Result<Vec<(String, u64)>> {
    let mut st = conn
        .prepare_cached(
            "SELECT b.digest, b.size FROM oci_blobs b WHERE b.repository = ?1 AND NOT EXISTS \
             (SELECT 1 FROM oci_manifests m WHERE m.repository = b.repository \
             AND m.digest = 'sha256:' || b.digest) ORDER BY b.digest",
        )
        .map_err(LogError::from)?;
    let rows = st
        .query_map([repository], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
        })
        .map_err(LogError::from)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(LogError::from)?;
    Ok(rows)
}
