//! `POST /api/v1/import`: a medium (one tar) as the request body, imported
//! exactly as `airgate import` would. Off unless a bearer token is
//! configured; the token is checked before the body is read, so a refused
//! request changes nothing. Imports run one at a time, on a blocking thread.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncWriteExt;

use super::error::ApiError;
use super::{AppState, BearerToken, Writes};
use crate::import::{import, ImportRequest};
use crate::state::StateDir;
use crate::Error;

fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"airgate\""),
    );
    response
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn authorize(token: &BearerToken, headers: &HeaderMap) -> Result<(), &'static str> {
    match bearer(headers) {
        None => Err("this endpoint changes state: send Authorization: Bearer <token>"),
        Some(given) if token.matches(given) => Ok(()),
        Some(_) => Err("the bearer token is not valid"),
    }
}

/// Replaces server paths in a message with placeholders.
fn redact(message: &str, paths: &[(&std::path::Path, &str)]) -> String {
    paths.iter().fold(message.to_owned(), |m, (p, label)| {
        let text = p.display().to_string();
        if text.is_empty() {
            m
        } else {
            m.replace(&text, label)
        }
    })
}

/// `POST /api/v1/import`.
pub(crate) async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Writes::Enabled { token, upload_dir } = &state.writes else {
        return ApiError::not_found(
            "imports over HTTP are off: the server was started without a bearer token (--token-file)",
        )
        .into_response();
    };
    if let Err(message) = authorize(token, &headers) {
        tracing::warn!("import refused: missing or invalid bearer token");
        return unauthorized(message);
    }
    match spool_and_import(&state, upload_dir, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn spool_and_import(
    state: &AppState,
    upload_dir: &std::path::Path,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = state.limits.max_import_bytes;
    let spool = tempfile::Builder::new()
        .prefix("airgate-upload-")
        .suffix(".tar")
        .tempfile_in(upload_dir)
        .map_err(|e| ApiError::internal("creating the upload file", &e))?;
    let std_file = spool
        .reopen()
        .map_err(|e| ApiError::internal("creating the upload file", &e))?;
    let mut file = tokio::fs::File::from_std(std_file);
    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    let started = tokio::time::Instant::now();
    let rate = state.limits.min_upload_rate.max(1);
    loop {
        // A total deadline: the grace, plus what was received at the
        // slowest rate accepted.
        let allowed = state.limits.upload_grace
            + std::time::Duration::from_secs_f64(received as f64 / rate as f64);
        let Ok(next) = tokio::time::timeout_at(started + allowed, next_chunk(&mut stream)).await
        else {
            tracing::warn!(bytes = received, "import: upload too slow; refused");
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the upload is too slow: {received} bytes in {} s (at least {rate} bytes/s are required after {} s)",
                    started.elapsed().as_secs(),
                    state.limits.upload_grace.as_secs()
                ),
            ));
        };
        let Some(chunk) = next else {
            break;
        };
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(format!("the request body could not be read: {e}"))
        })?;
        received = received.saturating_add(chunk.len() as u64);
        if received > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the medium is over the limit of {limit} bytes"),
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal("writing the upload file", &e))?;
    }
    file.flush()
        .await
        .map_err(|e| ApiError::internal("writing the upload file", &e))?;
    drop(file);
    if received == 0 {
        return Err(ApiError::bad_request(
            "the request body is empty: send the medium (a tar) as the body",
        ));
    }
    let _one_at_a_time = state.import_lock.lock().await;
    let dir = state.dir.clone();
    tracing::info!(bytes = received, "import: medium received");
    let outcome = tokio::task::spawn_blocking(move || {
        let path = spool.path().to_path_buf();
        let result = StateDir::open(&dir)
            .map_err(Opened::Busy)
            .and_then(|mut s| {
                import(
                    &mut s,
                    &ImportRequest {
                        media: vec![path.clone()],
                        chunk_index: None,
                        dry_run: false,
                        now: chrono::Utc::now(),
                    },
                )
                .map_err(Opened::Failed)
            });
        (result, dir, path)
    })
    .await
    .map_err(|e| ApiError::internal("running the import", &e))?;
    let (result, dir, path) = outcome;
    let report = match result {
        Ok(report) => report,
        Err(Opened::Busy(e)) => {
            tracing::warn!(error = %e, "import: cannot open the state directory for writing");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the state directory cannot be opened for writing (another import or signing may be running); retry later",
            ));
        }
        Err(Opened::Failed(e)) => {
            let paths = [(dir.as_path(), "<state>"), (path.as_path(), "<upload>")];
            let message = redact(&format!("{e}"), &paths);
            tracing::warn!(error = %e, "import refused");
            return Err(match &e {
                Error::ImportRejected(_) | Error::Bundle { .. } => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
                }
                e if e.is_rejection() => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message),
                Error::Usage(_) => ApiError::bad_request(message),
                other => ApiError::internal("importing the medium", other),
            });
        }
    };
    tracing::info!(
        medium = %report.medium_id,
        artifacts = report.artifacts.len(),
        already_imported = report.already_imported,
        checkpoint_size = ?report.checkpoint_size,
        "import: done"
    );
    Ok(axum::Json(report).into_response())
}

/// Why an import did not happen.
enum Opened {
    /// The state directory could not be opened for writing.
    Busy(Error),
    /// The import itself failed or was refused.
    Failed(Error),
}

/// The next chunk of a body stream.
async fn next_chunk(
    stream: &mut axum::body::BodyDataStream,
) -> Option<Result<axum::body::Bytes, axum::Error>> {
    std::future::poll_fn(|cx| futures_core::Stream::poll_next(std::pin::Pin::new(&mut *stream), cx))
        .await
}
