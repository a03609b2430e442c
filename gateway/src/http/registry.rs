//! `/v2/`: a read-only OCI distribution registry over the imported images.
//!
//! ```text
//! GET  /v2/                                   API version check ({})
//! GET  /v2/_catalog?n=&last=                  repositories
//! GET  /v2/{name}/tags/list?n=&last=          tags (images and their .sig / referrers tags)
//! GET  /v2/{name}/manifests/{tag|digest}      exact stored bytes, Content-Type, Docker-Content-Digest
//! GET  /v2/{name}/blobs/{digest}              streamed; Range: bytes=a-b, a-, -n
//! GET  /v2/{name}/referrers/{digest}?artifactType=   an image index of the manifests whose subject it is
//! ```
//!
//! HEAD works wherever GET does; every other method answers 405
//! `UNSUPPORTED`. Errors are the distribution spec's `{"errors": [...]}`.
//! Names and references are checked before any lookup; files are found by
//! the digest the database records, never by a path from the request.

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::Digest as _;

use super::db::with_db;
use super::error::{echo, ApiError};
use super::AppState;
use crate::oci::{check_repository, check_tag, MEDIA_OCI_INDEX};
use crate::state::blob_path;
use crate::state::oci::{self as store, ManifestRow};

/// Most entries a catalog or tags page lists.
const MAX_PAGE: usize = 10_000;
/// Read size when streaming a blob.
const STREAM_CHUNK: usize = 64 << 10;
/// The API version header.
const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

/// A distribution-spec error.
pub(crate) struct RegistryError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl RegistryError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        RegistryError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<ApiError> for RegistryError {
    fn from(e: ApiError) -> Self {
        let response = e.into_response();
        RegistryError::new(
            response.status(),
            "UNKNOWN",
            "internal error; see the server log",
        )
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"errors": [{"code": self.code, "message": self.message}]});
        (self.status, [API_VERSION], axum::Json(body)).into_response()
    }
}

type Answer = Result<Response, RegistryError>;

/// `GET /v2/`.
pub(crate) async fn root() -> Response {
    ([API_VERSION], axum::Json(serde_json::json!({}))).into_response()
}

/// Anything that would write.
pub(crate) async fn read_only(method: Method) -> RegistryError {
    RegistryError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        format!(
            "{} is refused: this registry is read-only (images arrive by `airgate import`)",
            echo(method.as_str())
        ),
    )
}

/// What a `/v2/...` path asks for.
#[derive(Debug, PartialEq, Eq)]
enum Request<'a> {
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    Referrers(&'a str, &'a str),
}

fn parse(rest: &str) -> Result<Request<'_>, RegistryError> {
    if rest == "_catalog" {
        return Ok(Request::Catalog);
    }
    let unknown = || {
        RegistryError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("no such registry endpoint: /v2/{}", echo(rest)),
        )
    };
    let (head, last) = rest.rsplit_once('/').ok_or_else(unknown)?;
    let (name, kind) = head.rsplit_once('/').ok_or_else(unknown)?;
    let request = match (kind, last) {
        ("tags", "list") => Request::Tags(name),
        ("manifests", r) => Request::Manifest(name, r),
        ("blobs", d) => Request::Blob(name, d),
        ("referrers", d) => Request::Referrers(name, d),
        _ => return Err(unknown()),
    };
    let name = match &request {
        Request::Tags(n)
        | Request::Manifest(n, _)
        | Request::Blob(n, _)
        | Request::Referrers(n, _) => *n,
        Request::Catalog => "",
    };
    check_repository(name)
        .map_err(|e| RegistryError::new(StatusCode::BAD_REQUEST, "NAME_INVALID", e))?;
    Ok(request)
}

/// A `sha256:<64 hex>` digest, or why not.
fn parse_digest(text: &str) -> Result<&str, RegistryError> {
    match text.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) =>
        {
            Ok(hex)
        }
        _ => Err(RegistryError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!(
                "{} is not a sha256 digest (sha256:<64 lowercase hex>)",
                echo(text)
            ),
        )),
    }
}

/// `GET|HEAD /v2/{rest}`.
pub(crate) async fn route(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
) -> Answer {
    let Path(rest) = path.map_err(|e| {
        RegistryError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            format!("path: {e}"),
        )
    })?;
    let Query(query) = query.map_err(|e| {
        RegistryError::new(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED",
            format!("query: {e}"),
        )
    })?;
    match parse(&rest)? {
        Request::Catalog => catalog(&state, &query).await,
        Request::Tags(name) => tags(&state, name, &query).await,
        Request::Manifest(name, reference) => manifest(&state, name, reference).await,
        Request::Blob(name, digest) => blob(&state, name, digest, &headers).await,
        Request::Referrers(name, digest) => referrers(&state, name, digest, &query).await,
    }
}

fn page(query: &BTreeMap<String, String>) -> Result<(String, usize), RegistryError> {
    let n = match query.get("n") {
        None => MAX_PAGE,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= MAX_PAGE)
            .ok_or_else(|| {
                RegistryError::new(
                    StatusCode::BAD_REQUEST,
                    "PAGINATION_NUMBER_INVALID",
                    format!("n = {} is not a number up to {MAX_PAGE}", echo(t)),
                )
            })?,
    };
    Ok((query.get("last").cloned().unwrap_or_default(), n))
}

async fn catalog(state: &AppState, query: &BTreeMap<String, String>) -> Answer {
    let (last, n) = page(query)?;
    let repositories = with_db(state, move |c| Ok(store::catalog(c, &last, n)?)).await?;
    Ok((
        [API_VERSION],
        axum::Json(serde_json::json!({"repositories": repositories})),
    )
        .into_response())
}

async fn tags(state: &AppState, name: &str, query: &BTreeMap<String, String>) -> Answer {
    let (last, n) = page(query)?;
    let repo = name.to_string();
    let tags = with_db(state, move |c| Ok(store::tags(c, &repo, &last, n)?))
        .await?
        .ok_or_else(|| name_unknown(name))?;
    Ok((
        [API_VERSION],
        axum::Json(serde_json::json!({"name": name, "tags": tags})),
    )
        .into_response())
}

fn name_unknown(name: &str) -> RegistryError {
    RegistryError::new(
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
        format!("repository {} is not known here", echo(name)),
    )
}

fn header_value(text: &str) -> Result<HeaderValue, RegistryError> {
    HeaderValue::from_str(text).map_err(|e| ApiError::internal("building a header", &e).into())
}

async fn manifest(state: &AppState, name: &str, reference: &str) -> Answer {
    let repo = name.to_string();
    let wanted = reference.to_string();
    let row = if reference.starts_with("sha256:") {
        parse_digest(reference)?;
        with_db(state, move |c| Ok(store::manifest(c, &repo, &wanted)?)).await?
    } else {
        check_tag(reference)
            .map_err(|e| RegistryError::new(StatusCode::BAD_REQUEST, "TAG_INVALID", e))?;
        with_db(state, move |c| Ok(store::tag(c, &repo, &wanted)?)).await?
    };
    let row = row.ok_or_else(|| {
        RegistryError::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("{}:{} is not known here", echo(name), echo(reference)),
        )
    })?;
    let bytes = read_manifest(state, &row).await?;
    let mut response = Response::new(Body::from(bytes));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, header_value(&row.media_type)?);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(row.size));
    h.insert("docker-content-digest", header_value(&row.digest)?);
    h.insert(header::ETAG, header_value(&format!("\"{}\"", row.digest))?);
    h.insert(API_VERSION.0, HeaderValue::from_static(API_VERSION.1));
    Ok(response)
}

/// A stored manifest's bytes, checked against the digest recorded.
async fn read_manifest(state: &AppState, row: &ManifestRow) -> Result<Bytes, RegistryError> {
    let hex = row.digest.trim_start_matches("sha256:");
    let path = blob_path(&state.dir, hex);
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        ApiError::internal(
            "reading a stored manifest",
            &format!("{}: {e}", path.display()),
        )
    })?;
    if hex::encode(sha2::Sha256::digest(&bytes)) != hex || bytes.len() as u64 != row.size {
        return Err(ApiError::internal(
            "reading a stored manifest",
            &format!(
                "{} is not the manifest {} the database records",
                path.display(),
                row.digest
            ),
        )
        .into());
    }
    Ok(Bytes::from(bytes))
}

/// A byte range of a blob of `len` bytes: `bytes=a-b`, `bytes=a-`, `bytes=-n`.
fn parse_range(text: &str, len: u64) -> Option<(u64, u64)> {
    let spec = text.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.checked_sub(n.min(len))?, len.checked_sub(1)?)
        }
        (a, "") => (a.parse().ok()?, len.checked_sub(1)?),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(len.checked_sub(1)?),
        ),
    };
    (start <= end && end < len).then_some((start, end))
}

async fn blob(state: &AppState, name: &str, digest: &str, headers: &HeaderMap) -> Answer {
    let hex = parse_digest(digest)?.to_string();
    let repo = name.to_string();
    let lookup = hex.clone();
    let size = with_db(state, move |c| Ok(store::blob(c, &repo, &lookup)?))
        .await?
        .ok_or_else(|| {
            RegistryError::new(
                StatusCode::NOT_FOUND,
                "BLOB_UNKNOWN",
                format!("blob {} is not known in {}", echo(digest), echo(name)),
            )
        })?;
    let path = blob_path(&state.dir, &hex);
    let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
        ApiError::internal("opening a stored blob", &format!("{}: {e}", path.display()))
    })?;
    let on_disk = file
        .metadata()
        .await
        .map_err(|e| {
            ApiError::internal("reading a stored blob", &format!("{}: {e}", path.display()))
        })?
        .len();
    if on_disk != size {
        return Err(ApiError::internal(
            "reading a stored blob",
            &format!(
                "{} is {on_disk} bytes, the database says {size}",
                path.display()
            ),
        )
        .into());
    }
    let range = match headers.get(header::RANGE).map(|v| v.to_str().unwrap_or("")) {
        None => None,
        Some(text) => Some(parse_range(text, size).ok_or_else(|| {
            RegistryError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "RANGE_INVALID",
                format!(
                    "range {} is not one satisfiable byte range of {size} bytes",
                    echo(text)
                ),
            )
        })?),
    };
    let (status, start, len) = match range {
        None => (StatusCode::OK, 0, size),
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
    };
    use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| ApiError::internal("reading a stored blob", &e))?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), STREAM_CHUNK);
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert("docker-content-digest", header_value(digest)?);
    h.insert(header::ETAG, header_value(&format!("\"{digest}\""))?);
    h.insert(API_VERSION.0, HeaderValue::from_static(API_VERSION.1));
    if let Some((a, b)) = range {
        h.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {a}-{b}/{size}"))?,
        );
    }
    Ok(response)
}

async fn referrers(
    state: &AppState,
    name: &str,
    digest: &str,
    query: &BTreeMap<String, String>,
) -> Answer {
    parse_digest(digest)?;
    let repo = name.to_string();
    let subject = digest.to_string();
    let rows = with_db(state, move |c| Ok(store::referrers(c, &repo, &subject)?)).await?;
    let filter = query.get("artifactType");
    let manifests: Vec<serde_json::Value> = rows
        .iter()
        .filter(|r| filter.is_none_or(|f| r.artifact_type.as_deref() == Some(f.as_str())))
        .map(|r| {
            let mut d = serde_json::json!({
                "mediaType": r.media_type,
                "digest": r.digest,
                "size": r.size,
            });
            if let Some(t) = &r.artifact_type {
                d["artifactType"] = t.clone().into();
            }
            if let Ok(serde_json::Value::Object(a)) = serde_json::from_str(&r.annotations) {
                if !a.is_empty() {
                    d["annotations"] = serde_json::Value::Object(a);
                }
            }
            d
        })
        .collect();
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_INDEX,
        "manifests": manifests,
    });
    let mut response = axum::Json(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(MEDIA_OCI_INDEX),
    );
    h.insert(API_VERSION.0, HeaderValue::from_static(API_VERSION.1));
    if filter.is_some() {
        h.insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_at_the_last_endpoint_word() {
        assert_eq!(parse("_catalog").ok(), Some(Request::Catalog));
        assert_eq!(
            parse("org/app/tags/list").ok(),
            Some(Request::Tags("org/app"))
        );
        assert_eq!(
            parse("a/manifests/b/manifests/v1").ok(),
            Some(Request::Manifest("a/manifests/b", "v1"))
        );
        assert_eq!(
            parse("org/app/blobs/sha256:00").ok(),
            Some(Request::Blob("org/app", "sha256:00"))
        );
        assert!(parse("org/app/uploads/x").is_err());
        assert!(parse("Org/app/tags/list").is_err());
        assert!(parse("../etc/blobs/x").is_err());
    }

    #[test]
    fn digests_must_be_lowercase_sha256() {
        assert!(parse_digest(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(parse_digest(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(parse_digest(&format!("sha512:{}", "a".repeat(64))).is_err());
        assert!(parse_digest("sha256:../../x").is_err());
    }

    #[test]
    fn ranges_are_single_and_satisfiable() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=9-0", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=0-0", 0), None);
    }
}
