//! The conda channel: `GET /conda/{subdir}/repodata.json` built from the
//! records stored at import (each package's own metadata, read by rattler),
//! and `GET /conda/{subdir}/{filename}` served as the artifact it is, with
//! its `.sigs` (CEP 142) and `.sigs.SHA256` (CEP 50, the digest repodata
//! advertises as `attestations_sha256`; another digest is a 404).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::db::{self, with_db};
use super::error::{echo, ApiError};
use super::AppState;

/// `GET /conda/{subdir}/{file}`.
pub(crate) async fn file(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((subdir, file)) = path.map_err(|e| {
        ApiError::bad_request(format!(
            "conda path is not valid percent-encoded UTF-8: {e}"
        ))
    })?;
    if !crate::conda::is_subdir(&subdir) {
        return Err(ApiError::not_found(format!(
            "{} is not a conda subdir",
            echo(&subdir)
        )));
    }
    if file == "repodata.json" {
        return repodata(&state, subdir).await;
    }
    let (filename, sidecar, pinned) = match crate::conda::channel_file(&file) {
        crate::conda::ChannelFile::Package(f) => (f.to_owned(), false, None),
        crate::conda::ChannelFile::Sigs(f) => (f.to_owned(), true, None),
        crate::conda::ChannelFile::SigsAt(f, h) => {
            (f.to_owned(), true, Some(h.to_ascii_lowercase()))
        }
    };
    let lookup = (subdir.clone(), filename.clone());
    let name = with_db(&state, move |c| {
        Ok(db::conda_artifact(c, &lookup.0, &lookup.1)?)
    })
    .await?
    .ok_or_else(|| {
        ApiError::not_found(format!(
            "no conda package {} in {}; see /conda/{}/repodata.json",
            echo(&filename),
            echo(&subdir),
            echo(&subdir)
        ))
    })?;
    if let Some(wanted) = pinned {
        let lookup = name.clone();
        let current = with_db(&state, move |c| Ok(db::sigs(c, &lookup)?)).await?;
        let matches = current.is_some_and(|s| hex::encode(crate::crypto::sha256(&s)) == wanted);
        if !matches {
            return Err(ApiError::not_found(format!(
                "{}: no .sigs with SHA-256 {wanted} (see attestations_sha256 in repodata.json)",
                echo(&filename)
            )));
        }
    }
    let target = if sidecar {
        format!("{name}.sigs")
    } else {
        name
    };
    super::artifacts::artifact(State(state), Ok(Path(target)), headers).await
}

async fn repodata(state: &AppState, subdir: String) -> Result<Response, ApiError> {
    let key = subdir.clone();
    let listed = with_db(state, move |c| Ok(db::conda_listed(c, &key)?)).await?;
    let body = crate::conda::repodata(&subdir, &listed)
        .map_err(|e| ApiError::internal("building repodata.json", &e))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response())
}
