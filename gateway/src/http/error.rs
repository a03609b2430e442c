//! HTTP errors: JSON `{"error": "..."}` with the matching status. Internal
//! details (paths, SQLite messages) go to the log, never to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::tlog::LogError;

/// An error answered to the client.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error with this status and client-facing message.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 500: logs `detail` and tells the client only `what` failed.
    pub(crate) fn internal(what: &str, detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(what, error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error while {what}; see the server log"),
        )
    }
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::NoSuchEntry { index, size } => {
                ApiError::not_found(format!("no log entry {index}: the log has {size} entries"))
            }
            LogError::NoCheckpoint(size) => {
                ApiError::not_found(format!("no signed checkpoint covers tree size {size}"))
            }
            LogError::Proof(p) => ApiError::bad_request(format!("cannot build that proof: {p}")),
            other => ApiError::internal("reading the transparency log", &other),
        }
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Log(l) => l.into(),
            other => ApiError::internal("querying the state database", &other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// The fallback for unknown routes.
pub(crate) async fn no_route() -> ApiError {
    ApiError::not_found(
        "no such endpoint; see / for the dashboard, /artifacts/ for the index, /tuf/ and /api/v1/log",
    )
}

/// Shortens client-supplied text before echoing it in an error.
pub(crate) fn echo(text: &str) -> String {
    const MAX: usize = 80;
    if text.len() <= MAX {
        return format!("{text:?}");
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} bytes)", &text[..end], text.len())
}
