//! `/artifacts/`: the index, the artifacts (streamed from the blob store)
//! and their `.sigs` sidecars (conda CEP style: 200 with the array, possibly
//! `[]`, when the artifact exists; 404 only when it does not).
//!
//! Names come from the URL (percent-decoded by the router) and must pass
//! [`EntryName::parse`]; they are only ever looked up in the database. The
//! blob is found by the digest the database records, so a request can never
//! reach a file outside the blob store.

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cache::Sigs;
use super::db::{self, with_db};
use super::error::{echo, ApiError};
use super::AppState;
use crate::encoding::{b64_encode, hex32};
use crate::medium::EntryName;
use crate::state::blob_path;

/// Suffix of the signature sidecar.
const SIGS_SUFFIX: &str = ".sigs";
/// Most entries one index lists.
const MAX_INDEX_ENTRIES: usize = 1_000_000;
/// Read size when streaming a blob.
const STREAM_CHUNK: usize = 64 << 10;

fn parse_name(raw: &str) -> Result<EntryName, ApiError> {
    EntryName::parse(raw).map_err(|e| {
        ApiError::bad_request(format!(
            "artifact name {} is refused: {e}; names are relative paths as listed in /artifacts/",
            echo(raw)
        ))
    })
}

fn etag(sha256_hex: &str) -> String {
    format!("\"sha256:{sha256_hex}\"")
}

fn not_modified(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t == tag || t.strip_prefix("W/") == Some(tag)
        })
}

fn header_value(text: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(text).map_err(|e| ApiError::internal("building a header", &e))
}

/// `GET /artifacts/{name}` and `GET /artifacts/{name}.sigs`.
pub(crate) async fn artifact(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(raw) = path.map_err(|e| {
        ApiError::bad_request(format!(
            "artifact path is not valid percent-encoded UTF-8: {e}"
        ))
    })?;
    // The sidecar wins over an artifact whose own name ends in ".sigs".
    if let Some(base) = raw.strip_suffix(SIGS_SUFFIX) {
        if let Ok(name) = EntryName::parse(base) {
            if let Some(sigs) = cached_sigs(&state, name.as_str().to_owned()).await? {
                return sigs_response(sigs, &headers);
            }
        }
    }
    let name = parse_name(&raw)?;
    let lookup = name.as_str().to_owned();
    let row = with_db(&state, move |c| Ok(db::artifact(c, &lookup)?))
        .await?
        .ok_or_else(|| {
            let wanted = raw.strip_suffix(SIGS_SUFFIX).unwrap_or(&raw);
            ApiError::not_found(format!(
                "no artifact named {}; see /artifacts/ for the index",
                echo(wanted)
            ))
        })?;
    let digest = hex32(&row.sha256).ok_or_else(|| {
        ApiError::internal(
            "reading an artifact record",
            &format!(
                "artifact {} has a malformed sha256 in the database",
                row.name
            ),
        )
    })?;
    let tag = etag(&row.sha256);
    if not_modified(&headers, &tag) {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, header_value(&tag)?)],
        )
            .into_response());
    }
    let path = blob_path(&state.dir, &hex::encode(digest));
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        ApiError::internal(
            "opening a stored artifact",
            &format!("{}: {e}", path.display()),
        )
    })?;
    let len = file
        .metadata()
        .await
        .map_err(|e| {
            ApiError::internal(
                "reading a stored artifact",
                &format!("{}: {e}", path.display()),
            )
        })?
        .len();
    if len != row.size {
        return Err(ApiError::internal(
            "reading a stored artifact",
            &format!(
                "{} is {len} bytes, the database says {} for artifact {}",
                path.display(),
                row.size,
                row.name
            ),
        ));
    }
    let b64 = b64_encode(&digest);
    let stream = tokio_util::io::ReaderStream::with_capacity(file, STREAM_CHUNK);
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ETAG, header_value(&tag)?);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("digest", header_value(&format!("sha-256={b64}"))?);
    h.insert("repr-digest", header_value(&format!("sha-256=:{b64}:"))?);
    h.insert("x-airgate-log-index", HeaderValue::from(row.log_index));
    Ok(response)
}

/// The `.sigs` of `name` (None: no such artifact), from the cache when the
/// database has not changed.
async fn cached_sigs(state: &AppState, name: String) -> Result<Option<Sigs>, ApiError> {
    let version = state.cache.version();
    if let Some(hit) = version.and_then(|v| state.cache.sigs(v, &name)) {
        return Ok(hit);
    }
    let lookup = name.clone();
    let sigs = with_db(state, move |c| Ok(db::sigs(c, &lookup)?))
        .await?
        .map(|bytes| Sigs {
            etag: etag(&hex::encode(crate::crypto::sha256(&bytes))),
            bytes: Bytes::from(bytes),
        });
    if let Some(v) = version {
        state.cache.put_sigs(v, name, sigs.clone());
    }
    Ok(sigs)
}

fn sigs_response(sigs: Sigs, headers: &HeaderMap) -> Result<Response, ApiError> {
    let tag = header_value(&sigs.etag)?;
    if not_modified(headers, &sigs.etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, tag),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        sigs.bytes,
    )
        .into_response())
}

fn build_index(c: &rusqlite::Connection) -> Result<Bytes, ApiError> {
    let rows = db::artifacts(c, None, MAX_INDEX_ENTRIES, true)?;
    let list: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|(row, sigs)| {
            let sigs = sigs.unwrap_or_default();
            serde_json::json!({
                "name": row.name,
                "sha256": row.sha256,
                "size": row.size,
                "sigsSha256": hex::encode(crate::crypto::sha256(&sigs)),
                "sigsSize": sigs.len(),
                "importId": row.import_id,
                "logIndex": row.log_index,
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "artifacts": list }))
        .map(Bytes::from)
        .map_err(|e| ApiError::internal("serializing the index", &e))
}

/// `GET /artifacts/`: every artifact (latest import of each name) with its
/// sha256, size and the sha256 of its `.sigs`. Cached until the database changes.
pub(crate) async fn index(State(state): State<AppState>) -> Result<Response, ApiError> {
    let version = state.cache.version();
    let bytes = match version.and_then(|v| state.cache.index(v)) {
        Some(bytes) => bytes,
        None => {
            let bytes = with_db(&state, build_index).await?;
            if let Some(v) = version {
                state.cache.put_index(v, bytes.clone());
            }
            bytes
        }
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        bytes,
    )
        .into_response())
}
