//! The log as C2SP tlog-tiles, next to the Rekor-style API: `GET
//! /tlog/checkpoint` (the newest signed checkpoint), `GET /tlog/tile/L/N[.p/W]`
//! (hash tiles: the stored level-8L nodes) and `GET /tlog/tile/entries/N[.p/W]`
//! (entry bundles: each canonical entry body with a u16 length). Only what
//! the newest signed checkpoint covers is served; full tiles never change
//! and are cached as immutable.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::db::with_db;
use super::error::{echo, ApiError};
use super::AppState;
use crate::tlog::tiles::{self, TilePath, TILE_HEIGHT, TILE_WIDTH};
use crate::tlog::LogReader;

/// `GET /tlog/tile/{*path}`.
pub(crate) async fn tile(
    State(state): State<AppState>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::bad_request(format!("tile path: {e}")))?;
    let tile = tiles::parse_tile_path(&raw)
        .map_err(|e| ApiError::bad_request(format!("tile/{}: {e}", echo(&raw))))?;
    let body = with_db(&state, move |c| read_tile(c, &tile)).await?;
    let cache = if tile.width == TILE_WIDTH {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=60"
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body,
    )
        .into_response())
}

fn read_tile(c: &rusqlite::Connection, tile: &TilePath) -> Result<Vec<u8>, ApiError> {
    let reader = LogReader::new(c);
    let size = reader.latest_checkpoint()?.map(|cp| cp.size).unwrap_or(0);
    if !tiles::within(tile, size) {
        return Err(ApiError::not_found(format!(
            "no such tile in the tree of size {size} the newest checkpoint covers"
        )));
    }
    let start = tile.index * TILE_WIDTH;
    match tile.level {
        Some(level) => {
            let hashes = reader.node_range(TILE_HEIGHT * u32::from(level), start, tile.width)?;
            Ok(hashes.concat())
        }
        None => {
            let bodies = reader.body_range(start, tile.width)?;
            tiles::entry_bundle(bodies.iter().map(Vec::as_slice))
                .map_err(|e| ApiError::internal("building an entry bundle", &e))
        }
    }
}
