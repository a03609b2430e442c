//! `/tuf/`: the private TUF repository (`DIR/tuf-repo`) as static files,
//! flat names only (never its staging directories, never the keys), and the
//! background job that keeps its metadata from expiring while it is served.

use std::future::Future;
use std::path::{Path as FsPath, PathBuf};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::error::{echo, ApiError};
use super::AppState;
use crate::state::{TUF_KEYS, TUF_REPO};
use crate::{Error, Result};

/// Longest file name served.
const MAX_FILE_NAME: usize = 200;
/// Largest file served (tuf-repo's own limit on target files).
const MAX_FILE_BYTES: u64 = 16 << 20;

fn flat_name(raw: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(name) = raw.map_err(|e| {
        ApiError::bad_request(format!("TUF path is not valid percent-encoded UTF-8: {e}"))
    })?;
    let ok = !name.is_empty()
        && name.len() <= MAX_FILE_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if ok {
        Ok(name)
    } else {
        Err(ApiError::bad_request(format!(
            "TUF file name {} is refused: flat names only (letters, digits, '.', '_', '+', '-'; not starting with '.'; at most {MAX_FILE_NAME})",
            echo(&name)
        )))
    }
}

async fn serve_file(dir: PathBuf, name: String, cache: &'static str) -> Result<Response, ApiError> {
    let path = dir.join(&name);
    let missing = || {
        ApiError::not_found(format!(
            "{} is not in the private TUF repository (create it with `airgate tuf init-private --state DIR`)",
            echo(&name)
        ))
    };
    // A regular file, not a symlink out of the repository.
    let meta = match tokio::fs::symlink_metadata(&path).await {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => {
            return Err(ApiError::internal(
                "reading the TUF repository",
                &format!("{}: {e}", path.display()),
            ))
        }
    };
    if !meta.is_file() {
        return Err(missing());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ApiError::internal(
            "reading the TUF repository",
            &format!("{} is over {MAX_FILE_BYTES} bytes", path.display()),
        ));
    }
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        ApiError::internal(
            "reading the TUF repository",
            &format!("{}: {e}", path.display()),
        )
    })?;
    let content_type = if name.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        Bytes::from(bytes),
    )
        .into_response())
}

/// `GET /tuf/{file}`: `N.root.json`, `root.json`, `timestamp.json`,
/// `N.snapshot.json`, `N.targets.json`.
pub(crate) async fn metadata(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let name = flat_name(name)?;
    if !name.ends_with(".json") {
        return Err(ApiError::not_found(format!(
            "{} is not TUF metadata (metadata files end in .json; targets are under /tuf/targets/)",
            echo(&name)
        )));
    }
    // Unversioned names change with every publish; versioned ones never do.
    let versioned = name
        .split('.')
        .next()
        .is_some_and(|v| v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty());
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    serve_file(state.dir.join(TUF_REPO), name, cache).await
}

/// `GET /tuf/targets/{sha256}.{name}`: target files (consistent snapshots).
pub(crate) async fn target(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let name = flat_name(name)?;
    serve_file(
        state.dir.join(TUF_REPO).join("targets"),
        name,
        "public, max-age=31536000, immutable",
    )
    .await
}

/// Keeps the private TUF repository's metadata fresh: re-signs the timestamp
/// (and snapshot or targets near expiry) at start ([`TufRefresher::refresh_now`])
/// and every interval ([`TufRefresher::run`]).
#[derive(Debug, Clone)]
pub struct TufRefresher {
    repo: PathBuf,
    keys: PathBuf,
    interval: Duration,
}

impl TufRefresher {
    /// A refresher for the repository of `state_dir` (`DIR/tuf-repo`, keys
    /// in `DIR/tuf-keys`), or `None` when no repository was published there.
    /// Refuses an interval that is not well within (at most half of) the
    /// configured timestamp expiry.
    pub fn new(state_dir: &FsPath, interval: Duration) -> Result<Option<Self>> {
        let repo = state_dir.join(TUF_REPO);
        let keys = state_dir.join(TUF_KEYS);
        if !repo.join("timestamp.json").is_file() {
            return Ok(None);
        }
        if interval.is_zero() {
            return Err(Error::Usage(
                "the TUF refresh interval must not be 0".into(),
            ));
        }
        let config = tuf_repo::PrivateRepoConfig::load(&keys)?;
        let limit = config.expiry.timestamp / 2;
        if interval > limit {
            return Err(Error::Usage(format!(
                "the TUF refresh interval {} is not well within the timestamp expiry {}: use at most {} (or raise the expiry in {}/{})",
                tuf_repo::format_duration(interval),
                tuf_repo::format_duration(config.expiry.timestamp),
                tuf_repo::format_duration(limit),
                TUF_KEYS,
                tuf_repo::CONFIG_FILE,
            )));
        }
        Ok(Some(TufRefresher {
            repo,
            keys,
            interval,
        }))
    }

    /// Refreshes once, now (blocking: call it before serving, or from a
    /// blocking thread), and logs what it did.
    pub fn refresh_now(&self) -> Result<tuf_repo::PublishSummary> {
        let summary = tuf_repo::refresh(&self.repo, &self.keys, chrono::Utc::now())?;
        let (role, at) = summary.expires.earliest();
        tracing::info!(
            timestamp_version = summary.versions.timestamp,
            snapshot_version = summary.versions.snapshot,
            targets_version = summary.versions.targets,
            earliest_expiry_role = %role,
            earliest_expiry = %at.to_rfc3339(),
            "private TUF metadata refreshed"
        );
        Ok(summary)
    }

    /// Refreshes every interval until `shutdown` resolves. Failures are
    /// logged and retried at the next tick.
    pub async fn run<F>(self, shutdown: F)
    where
        F: Future<Output = ()> + Send,
    {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(self.interval) => {}
            }
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.refresh_now()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(
                    error = %e,
                    "private TUF refresh failed; retrying at the next interval"
                ),
                Err(e) => tracing::error!(error = %e, "private TUF refresh task failed"),
            }
        }
    }
}
