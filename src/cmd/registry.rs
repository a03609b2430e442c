//! A small OCI distribution client (the edge of `export`'s pull and of
//! `push`): bearer-token and basic auth, manifests read bounded, blobs
//! streamed to and from files. It judges nothing: a pull mirrors into a
//! layout that export then checks like any other.
//!
//! Not oci-client (which the sigstore crate wraps): its manifest reads take
//! the whole body, unbounded, and a hostile registry could make the
//! exporter allocate without limit.

use std::io::Write as _;
use std::path::Path;

use anyhow::{bail, Context};
use gateway::escape::quoted;
use gateway::oci::layout::MAX_MANIFEST_BYTES;
use gateway::Error;
use reqwest::{header, Method, StatusCode};
use sha2::{Digest as _, Sha256};

/// What a manifest request accepts.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// The largest token or error body read.
const MAX_SMALL_BODY: u64 = 64 << 10;

/// Credentials from the environment (`AIRGATE_REGISTRY_USERNAME`,
/// `AIRGATE_REGISTRY_PASSWORD`), or anonymous.
#[derive(Clone, Default)]
pub struct Credentials(Option<(String, String)>);

impl Credentials {
    /// Reads the two variables: both or neither (one alone is a usage error).
    pub fn from_env() -> anyhow::Result<Credentials> {
        match (
            std::env::var("AIRGATE_REGISTRY_USERNAME"),
            std::env::var("AIRGATE_REGISTRY_PASSWORD"),
        ) {
            (Ok(u), Ok(p)) => Ok(Credentials(Some((u, p)))),
            (Err(_), Err(_)) => Ok(Credentials(None)),
            _ => bail!(Error::Usage(
                "set both AIRGATE_REGISTRY_USERNAME and AIRGATE_REGISTRY_PASSWORD, or neither"
                    .into()
            )),
        }
    }
}

/// One registry and repository.
pub struct Registry {
    http: reqwest::Client,
    base: String,
    repository: String,
    push: bool,
    credentials: Credentials,
    token: Option<String>,
}

/// A manifest as served: its bytes and media type.
pub struct Fetched {
    /// The exact bytes (at most [`MAX_MANIFEST_BYTES`]).
    pub bytes: Vec<u8>,
    /// `Content-Type` without parameters.
    pub media_type: String,
}

impl Registry {
    /// A client for `host/repository`, over HTTPS unless `plain_http`.
    pub fn new(
        host: &str,
        repository: &str,
        plain_http: bool,
        push: bool,
        credentials: Credentials,
    ) -> anyhow::Result<Registry> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("airgate/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(30))
            .read_timeout(std::time::Duration::from_secs(120))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()?;
        let scheme = if plain_http { "http" } else { "https" };
        Ok(Registry {
            http,
            base: format!("{scheme}://{host}"),
            repository: repository.to_string(),
            push,
            credentials,
            token: None,
        })
    }

    /// The URL of `/v2/<repository>/<rest>`.
    fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base, self.repository)
    }

    /// Sends a request, answering one auth challenge if the registry asks.
    async fn send(
        &mut self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let response = self.authorized(build(&self.http)).send().await?;
        if response.status() != StatusCode::UNAUTHORIZED || self.token.is_some() {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        self.token = Some(self.authenticate(&challenge).await?);
        Ok(self.authorized(build(&self.http)).send().await?)
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => request.header(header::AUTHORIZATION, t),
            None => request,
        }
    }

    /// Answers a `WWW-Authenticate` challenge: a bearer token from its
    /// realm (with the credentials, if any), or basic auth.
    async fn authenticate(&self, challenge: &str) -> anyhow::Result<String> {
        let parsed = http_auth::parse_challenges(challenge).map_err(|e| {
            Error::Usage(format!(
                "{}: unreadable WWW-Authenticate {}: {e}",
                self.base,
                quoted(challenge)
            ))
        })?;
        let denied = || {
            Error::Usage(format!(
                "{}: the registry asks for credentials: set AIRGATE_REGISTRY_USERNAME and AIRGATE_REGISTRY_PASSWORD",
                self.base
            ))
        };
        for c in &parsed {
            let param = |name: &str| {
                c.params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_unescaped())
            };
            if c.scheme.eq_ignore_ascii_case("bearer") {
                let realm = param("realm").ok_or_else(denied)?;
                return self.bearer(&realm, param("service")).await;
            }
            if c.scheme.eq_ignore_ascii_case("basic") {
                let (user, password) = self.credentials.0.clone().ok_or_else(denied)?;
                let raw = format!("{user}:{password}");
                return Ok(format!(
                    "Basic {}",
                    gateway::encoding::b64_encode(raw.as_bytes())
                ));
            }
        }
        Err(denied().into())
    }

    /// A token from `realm` for this repository (pull, or pull and push).
    /// The realm must be HTTPS (credentials go there) unless the registry
    /// itself is plain HTTP.
    async fn bearer(&self, realm: &str, service: Option<String>) -> anyhow::Result<String> {
        let url = reqwest::Url::parse(realm).map_err(|e| {
            Error::Usage(format!("{}: token realm {}: {e}", self.base, quoted(realm)))
        })?;
        let plain_ok = self.base.starts_with("http://");
        if url.scheme() != "https" && !(plain_ok && url.scheme() == "http") {
            bail!(Error::Usage(format!(
                "{}: token realm {} is not HTTPS: refused (credentials would travel in the clear)",
                self.base,
                quoted(realm)
            )));
        }
        let actions = if self.push { "pull,push" } else { "pull" };
        let scope = format!("repository:{}:{actions}", self.repository);
        let mut query = vec![("scope", scope)];
        query.extend(service.map(|s| ("service", s)));
        let mut request = self.http.get(url).query(&query);
        if let Some((user, password)) = &self.credentials.0 {
            request = request.basic_auth(user, Some(password));
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("token realm {}", quoted(realm)))?;
        let status = response.status();
        let body = read_bounded(response, MAX_SMALL_BODY).await?;
        if !status.is_success() {
            bail!(Error::Usage(format!(
                "token realm {} answered {status}: {}",
                quoted(realm),
                quoted(&String::from_utf8_lossy(&body))
            )));
        }
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| Error::Usage(format!("token realm {}: not JSON: {e}", quoted(realm))))?;
        let token = v["token"]
            .as_str()
            .or(v["access_token"].as_str())
            .ok_or_else(|| Error::Usage(format!("token realm {}: no token", quoted(realm))))?;
        Ok(format!("Bearer {token}"))
    }

    /// A manifest by tag or digest; `None` when the registry has none.
    pub async fn manifest(&mut self, reference: &str) -> anyhow::Result<Option<Fetched>> {
        let url = self.url(&format!("manifests/{reference}"));
        let response = self
            .send(|c| c.get(&url).header(header::ACCEPT, MANIFEST_ACCEPT))
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let media_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap_or_default()
            .trim()
            .to_string();
        let bytes = read_bounded(response, MAX_MANIFEST_BYTES)
            .await
            .with_context(|| format!("GET {url}"))?;
        if !status.is_success() {
            bail!(http_error("GET", &url, status, &bytes));
        }
        Ok(Some(Fetched { bytes, media_type }))
    }

    /// The referrers API's index for `digest`; `None` when the registry
    /// does not offer the API (404), as the distribution spec says.
    pub async fn referrers(&mut self, digest: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let url = self.url(&format!("referrers/{digest}"));
        let response = self
            .send(|c| {
                c.get(&url)
                    .header(header::ACCEPT, gateway::oci::MEDIA_OCI_INDEX)
            })
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let bytes = read_bounded(response, MAX_MANIFEST_BYTES).await?;
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(bytes)),
            s => bail!(http_error("GET", &url, s, &bytes)),
        }
    }

    /// Streams a blob into `path`, at most `limit` bytes (a longer body is
    /// cut at `limit`, so the layout's size check names it); false when the
    /// registry has no such blob (left for the layout check to name).
    pub async fn blob_to_file(
        &mut self,
        digest: &str,
        limit: u64,
        path: &Path,
    ) -> anyhow::Result<bool> {
        let url = self.url(&format!("blobs/{digest}"));
        let mut response = self
            .send(|c| c.get(&url))
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        if !status.is_success() {
            let body = read_bounded(response, MAX_SMALL_BODY).await?;
            bail!(http_error("GET", &url, status, &body));
        }
        let dir = path.parent().context("blob directory")?;
        let mut file =
            tempfile::NamedTempFile::new_in(dir).with_context(|| dir.display().to_string())?;
        let mut written = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("GET {url}"))?
        {
            let room = (limit - written) as usize;
            let take = chunk.len().min(room);
            file.write_all(&chunk[..take])?;
            written += take as u64;
            if take < chunk.len() {
                break;
            }
        }
        // No fsync: the mirror is temporary, and export hashes every blob
        // as it writes the (synced) medium.
        file.persist(path)
            .map_err(|e| e.error)
            .with_context(|| path.display().to_string())?;
        Ok(true)
    }

    /// True when the registry already has the blob.
    pub async fn has_blob(&mut self, digest: &str) -> anyhow::Result<bool> {
        let url = self.url(&format!("blobs/{digest}"));
        let response = self
            .send(|c| c.head(&url))
            .await
            .with_context(|| format!("HEAD {url}"))?;
        Ok(response.status().is_success())
    }

    /// Uploads a blob from a file, streamed, in one monolithic PUT after
    /// the POST that opens the upload session; the registry checks the digest.
    pub async fn upload_blob(
        &mut self,
        digest: &str,
        path: &Path,
        size: u64,
    ) -> anyhow::Result<()> {
        let url = self.url("blobs/uploads/");
        let response = self
            .send(|c| c.post(&url).header(header::CONTENT_LENGTH, 0))
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_bounded(response, MAX_SMALL_BODY).await?;
        if status != StatusCode::ACCEPTED {
            bail!(http_error("POST", &url, status, &body));
        }
        let location = location.context("the upload session has no Location")?;
        let mut put = reqwest::Url::parse(&self.base)?.join(&location)?;
        put.query_pairs_mut().append_pair("digest", digest);
        let file = tokio::fs::File::open(path)
            .await
            .with_context(|| path.display().to_string())?;
        let body =
            reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
        let response = self
            .authorized(
                self.http
                    .request(Method::PUT, put.clone())
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_LENGTH, size)
                    .body(body),
            )
            .send()
            .await
            .with_context(|| format!("PUT {put}"))?;
        let status = response.status();
        let body = read_bounded(response, MAX_SMALL_BODY).await?;
        if status != StatusCode::CREATED {
            bail!(http_error("PUT", put.as_str(), status, &body));
        }
        Ok(())
    }

    /// Puts a manifest under a tag or its digest.
    pub async fn put_manifest(
        &mut self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> anyhow::Result<()> {
        let url = self.url(&format!("manifests/{reference}"));
        let bytes = bytes.to_vec();
        let response = self
            .send(|c| {
                c.put(&url)
                    .header(header::CONTENT_TYPE, media_type)
                    .body(bytes.clone())
            })
            .await
            .with_context(|| format!("PUT {url}"))?;
        let status = response.status();
        let body = read_bounded(response, MAX_SMALL_BODY).await?;
        if status != StatusCode::CREATED {
            bail!(http_error("PUT", &url, status, &body));
        }
        Ok(())
    }
}

/// A response body, at most `limit` bytes (more is an error naming the limit).
async fn read_bounded(mut response: reqwest::Response, limit: u64) -> anyhow::Result<Vec<u8>> {
    if response.content_length().is_some_and(|n| n > limit) {
        bail!(Error::Usage(format!(
            "{}: the response is larger than {limit} bytes",
            response.url()
        )));
    }
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if (out.len() + chunk.len()) as u64 > limit {
            bail!(Error::Usage(format!(
                "{}: the response is larger than {limit} bytes",
                response.url()
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A registry error, with its distribution error body quoted.
fn http_error(method: &str, url: &str, status: StatusCode, body: &[u8]) -> Error {
    Error::Usage(format!(
        "{method} {url}: {status}: {}",
        quoted(&String::from_utf8_lossy(body))
    ))
}

/// `sha256:<hex>` of bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
