//! The transparency log over HTTP, in Rekor v1 JSON where Rekor has a route
//! (`/api/v1/log`, `/api/v1/log/entries?logIndex=`, `/api/v1/log/proof`,
//! `/api/v1/log/publicKey`), and the C2SP checkpoint as text (`/checkpoint`).
//!
//! Proofs are always built against the newest signed checkpoint, which is
//! returned with them, so a client can verify everything it receives.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::cache::LogHead;
use super::db::with_db;
use super::error::{echo, ApiError};
use super::AppState;
use crate::encoding::b64_encode;
use crate::tlog::{merkle, LogReader, StoredCheckpoint};

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn params(q: Params) -> Result<HashMap<String, String>, ApiError> {
    q.map(|Query(m)| m)
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))
}

fn number(params: &HashMap<String, String>, key: &str) -> Result<Option<u64>, ApiError> {
    params
        .get(key)
        .map(|v| {
            if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::bad_request(format!(
                    "{key} {} is not a non-negative decimal integer",
                    echo(v)
                )));
            }
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("{key} {} is out of range", echo(v))))
        })
        .transpose()
}

fn latest(reader: &LogReader<'_>) -> Result<StoredCheckpoint, ApiError> {
    reader.latest_checkpoint()?.ok_or_else(|| {
        ApiError::not_found("the log has no signed checkpoint yet: nothing was signed or imported")
    })
}

fn tree_id(reader: &LogReader<'_>) -> Result<String, ApiError> {
    let origin = reader.origin()?.unwrap_or_default();
    Ok(origin
        .rsplit_once(" - ")
        .map(|(_, id)| id.to_owned())
        .unwrap_or_default())
}

fn hex_list(hashes: &[merkle::Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// The newest checkpoint and tree ID, from the cache when the database has not changed.
async fn head(state: &AppState) -> Result<Arc<LogHead>, ApiError> {
    let version = state.cache.version();
    if let Some(hit) = version.and_then(|v| state.cache.head(v)) {
        return Ok(hit);
    }
    let head = with_db(state, |c| {
        let reader = LogReader::new(c);
        Ok(Arc::new(LogHead {
            checkpoint: latest(&reader)?,
            tree_id: tree_id(&reader)?,
        }))
    })
    .await?;
    if let Some(v) = version {
        state.cache.put_head(v, head.clone());
    }
    Ok(head)
}

/// `GET /api/v1/log`: Rekor LogInfo for the newest checkpoint.
pub(crate) async fn info(State(state): State<AppState>) -> Result<Response, ApiError> {
    let head = head(&state).await?;
    let cp = &head.checkpoint;
    Ok(axum::Json(json!({
        "treeSize": cp.size,
        "rootHash": hex::encode(cp.root_hash),
        "signedTreeHead": cp.note,
        "treeID": head.tree_id,
    }))
    .into_response())
}

/// `GET /api/v1/log/entries?logIndex=N`: Rekor LogEntry (`{uuid: entry}`),
/// with the SET and an inclusion proof against the newest checkpoint.
pub(crate) async fn entry(State(state): State<AppState>, q: Params) -> Result<Response, ApiError> {
    let p = params(q)?;
    let index = number(&p, "logIndex")?
        .ok_or_else(|| ApiError::bad_request("give logIndex: /api/v1/log/entries?logIndex=N"))?;
    let head = head(&state).await?;
    let shared = state.clone();
    let body = with_db(&state, move |c| {
        let reader = LogReader::new(c);
        let newest = &head.checkpoint;
        if index >= newest.size {
            return Err(ApiError::not_found(format!(
                "no log entry {index}: the newest checkpoint covers {} entries",
                newest.size
            )));
        }
        let e = reader.entry(index)?;
        // The key that signed the entry names it; an entry of a retired key
        // (a rotated log key) is proved against a checkpoint that key signed.
        let key = shared.log.key_at(e.integrated_time);
        let log_id = hex::encode(key.key_id());
        let retired;
        let cp = if key.key_id() == shared.log.key.key_id() {
            newest
        } else {
            retired = reader.checkpoint_covering(index)?;
            &retired
        };
        let proof = reader.inclusion_proof(index, cp.size)?;
        let uuid = hex::encode(merkle::leaf_hash(&e.body));
        let entry = json!({
                "body": b64_encode(&e.body),
                "integratedTime": e.integrated_time,
                "logID": log_id,
                "logIndex": e.index,
                "verification": {
                    "signedEntryTimestamp": b64_encode(&e.signed_entry_timestamp),
                    "inclusionProof": {
                        "logIndex": e.index,
                        "treeSize": cp.size,
                        "rootHash": hex::encode(cp.root_hash),
                        "hashes": hex_list(&proof),
                        "checkpoint": cp.note,
                    },
                },
        });
        let mut map = serde_json::Map::new();
        map.insert(uuid, entry);
        Ok(serde_json::Value::Object(map))
    })
    .await?;
    Ok(axum::Json(body).into_response())
}

/// `GET /api/v1/log/proof?firstSize=A&lastSize=B`: Rekor ConsistencyProof
/// (`firstSize` defaults to 1, `lastSize` to the newest checkpoint's size).
pub(crate) async fn consistency(
    State(state): State<AppState>,
    q: Params,
) -> Result<Response, ApiError> {
    let p = params(q)?;
    let first = number(&p, "firstSize")?.unwrap_or(1);
    let last = number(&p, "lastSize")?;
    let head = head(&state).await?;
    let body = with_db(&state, move |c| {
        let reader = LogReader::new(c);
        let cp = &head.checkpoint;
        let last = last.unwrap_or(cp.size);
        if first == 0 || first > last || last > cp.size {
            return Err(ApiError::bad_request(format!(
                "need 1 <= firstSize <= lastSize <= {} (the newest checkpoint's size); got firstSize {first}, lastSize {last}",
                cp.size
            )));
        }
        let proof = reader.consistency_proof(first, last)?;
        let root = reader.root(last)?;
        Ok(json!({
            "rootHash": hex::encode(root),
            "hashes": hex_list(&proof),
        }))
    })
    .await?;
    Ok(axum::Json(body).into_response())
}

/// `GET /api/v1/log/publicKey`: the log key as PEM.
pub(crate) async fn public_key(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-pem-file"),
        )],
        state.log.key.to_pem(),
    )
        .into_response()
}

/// `GET /checkpoint`: the newest C2SP checkpoint (signed note).
pub(crate) async fn checkpoint(State(state): State<AppState>) -> Result<Response, ApiError> {
    let cp = head(&state).await?.checkpoint.clone();
    // Witness cosignatures received for it are more signature lines.
    let note = with_db(&state, move |c| {
        Ok(crate::state::witness::cosigned_note(c, &cp.note, cp.size)?)
    })
    .await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        note,
    )
        .into_response())
}

/// Largest cosigned checkpoint accepted (a checkpoint and some signature lines).
const MAX_COSIGNED_NOTE_BYTES: usize = 64 << 10;

/// `POST /tlog/cosignature`: a cosigned checkpoint (this log's checkpoint
/// text with witness signature lines, C2SP tlog-cosignature). Each line by
/// an enrolled witness (`airgate log witness add`) is verified against the
/// exact text this log signed and stored; 400 when none verifies.
pub(crate) async fn cosignature(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    if body.len() > MAX_COSIGNED_NOTE_BYTES {
        return Err(ApiError::bad_request(format!(
            "the cosigned checkpoint is {} bytes, over {MAX_COSIGNED_NOTE_BYTES}",
            body.len()
        )));
    }
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("the cosigned checkpoint is not UTF-8"))?;
    let db = state.dir.join(crate::state::DATABASE);
    let outcome = tokio::task::spawn_blocking(move || {
        let conn = crate::tlog::open_database(&db).map_err(crate::Error::from)?;
        crate::state::witness::submit(&conn, &text)
    })
    .await
    .map_err(|e| ApiError::internal("storing a cosignature", &e))?;
    match outcome {
        Ok(s) => Ok(axum::Json(serde_json::to_value(&s).unwrap_or_default()).into_response()),
        Err(crate::Error::Usage(why)) => Err(ApiError::bad_request(why)),
        Err(e) => Err(ApiError::internal("storing a cosignature", &e)),
    }
}
