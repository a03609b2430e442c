//! The read-only dashboard, rendered on the server with no external assets
//! and no script (a strict Content-Security-Policy forbids any); every value
//! is HTML-escaped, and every fact comes from a stored, verified record or
//! from the log, checked while the page is rendered.
//!
//! - `GET /` ([`page`]): the log state, the artifacts (`?q=` filters by name
//!   substring or sha256 prefix), imports, refused imports, the private TUF
//!   repository.
//! - `GET /dashboard/artifact/{name}` ([`artifact`]): one artifact's chain
//!   of custody, its inclusion proof verified against the latest signed
//!   checkpoint.
//! - `GET /dashboard/import/{id}` ([`import`]): one import and its stored report.
//!
//! Unknown names and imports answer 404, malformed ones 400, as HTML pages.

mod custody;
mod home;
mod html;
mod import_page;
mod proof;

use std::collections::HashMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::db::{self, with_db, Search};
use super::error::{echo, ApiError};
use super::AppState;
use crate::medium::EntryName;
use crate::state::TUF_REPO;
use crate::tlog::LogReader;
use html::{frame, html_response, PageError};
use proof::LogKey;

/// Where the chain-of-custody pages live (the name follows).
pub(crate) const CUSTODY_PREFIX: &str = "/dashboard/artifact/";
/// Where the import pages live (the number follows).
pub(crate) const IMPORT_PREFIX: &str = "/dashboard/import/";
/// Most artifact rows shown.
const MAX_ROWS: usize = 500;
/// Most imports shown.
const MAX_IMPORTS: usize = 50;
/// Most refused imports shown.
const MAX_REFUSALS: usize = 50;
/// Longest search accepted.
const MAX_QUERY_BYTES: usize = 256;

/// `GET /` (and `GET /?q=...`).
pub(crate) async fn page(
    State(state): State<AppState>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) =
        q.map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
    let query = params
        .get("q")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    if query.len() > MAX_QUERY_BYTES {
        return Err(ApiError::bad_request(format!(
            "the search is {} bytes, over the limit of {MAX_QUERY_BYTES}",
            query.len()
        )));
    }
    let search = (!query.is_empty()).then(|| Search::new(&query));
    let home = with_db(&state, move |c| {
        let reader = LogReader::new(c);
        Ok(home::Home {
            checkpoint: reader.latest_checkpoint()?,
            tree_id: reader
                .origin()?
                .and_then(|o| o.rsplit_once(" - ").map(|(_, id)| id.to_owned())),
            artifacts: db::artifacts(c, search.as_ref(), MAX_ROWS, false)?
                .into_iter()
                .map(|(row, _)| row)
                .collect(),
            total: db::artifact_count(c)?,
            imports: db::imports(c, MAX_IMPORTS)?,
            refusals: db::refusals(c, MAX_REFUSALS)?,
        })
    })
    .await?;
    let tuf = tuf_summary(&state).await;
    let body = home::render(&state.log.log_id_hex, &query, &home, tuf.as_ref());
    Ok(html_response(
        StatusCode::OK,
        frame("airgate high side", &body),
    ))
}

/// Version and expiry of the served `timestamp.json`, if there is one.
async fn tuf_summary(state: &AppState) -> Option<home::TufSummary> {
    let path = state.dir.join(TUF_REPO).join("timestamp.json");
    let bytes = tokio::fs::read(&path).await.ok()?;
    if bytes.len() > 1 << 20 {
        return None;
    }
    let doc: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(home::TufSummary {
        version: doc["signed"]["version"].as_u64()?,
        expires: doc["signed"]["expires"].as_str()?.to_owned(),
    })
}

/// The log as the trusted root knows it.
fn log_key(state: &AppState) -> LogKey<'_> {
    LogKey {
        keys: &state.log.keys,
        name: &state.log.checkpoint_name,
        origin: &state.log.origin,
    }
}

/// `GET /dashboard/artifact/{name}`: the chain of custody of `name`.
pub(crate) async fn artifact(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, PageError> {
    let Path(raw) = path.map_err(|e| {
        PageError::bad_request(format!(
            "artifact path is not valid percent-encoded UTF-8: {e}"
        ))
    })?;
    let name = EntryName::parse(&raw).map_err(|e| {
        PageError::bad_request(format!(
            "artifact name {} is refused: {e}; names are relative paths as listed on the dashboard",
            echo(&raw)
        ))
    })?;
    let lookup = name.as_str().to_owned();
    let shared = state.clone();
    let custody = with_db(&state, move |c| custody::load(c, &lookup, log_key(&shared)))
        .await?
        .ok_or_else(|| {
            PageError::not_found(format!(
                "no artifact named {}; the dashboard at / lists them all",
                echo(name.as_str())
            ))
        })?;
    let html = frame(&custody::title(&custody), &custody::render(&custody));
    Ok(html_response(StatusCode::OK, html))
}

/// `GET /dashboard/import/{id}`: import `id` and its stored report.
pub(crate) async fn import(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, PageError> {
    let Path(raw) =
        path.map_err(|e| PageError::bad_request(format!("import path is not valid: {e}")))?;
    let id = import_page::parse_id(&raw).ok_or_else(|| {
        PageError::bad_request(format!(
            "import {} is not an import number (a positive decimal integer, as listed on the dashboard)",
            echo(&raw)
        ))
    })?;
    let shared = state.clone();
    let (record, checkpoint) = with_db(&state, move |c| {
        let Some(record) = db::import_record(c, id)? else {
            return Ok(None);
        };
        let cp = import_page::checkpoint_after(&LogReader::new(c), &record, log_key(&shared));
        Ok(Some((record, cp)))
    })
    .await?
    .ok_or_else(|| {
        PageError::not_found(format!("no import #{id}; the dashboard at / lists them"))
    })?;
    let html = frame(
        &format!("import #{id} \u{2014} airgate high side"),
        &import_page::render(&record, &checkpoint),
    );
    Ok(html_response(StatusCode::OK, html))
}
