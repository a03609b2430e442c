//! The high side's HTTP server (`airgate serve`), the only axum module.
//!
//! Read endpoints are open inside the enclave; the one state-changing
//! endpoint (`POST /api/v1/import`) exists only when a bearer token is
//! configured ([`Writes::Enabled`]).
//!
//! ```text
//! GET  /                                  dashboard (HTML, ?q= searches names and digests)
//! GET  /dashboard/artifact/{name}         an artifact's chain of custody (HTML, proof checked)
//! GET  /dashboard/import/{id}             an import and its stored report (HTML)
//! GET  /artifacts/  (or /artifacts)       JSON index: name, sha256, size, sha256 of the .sigs
//! GET  /artifacts/{name}                  the artifact (streamed; ETag "sha256:<hex>", Digest)
//! GET  /artifacts/{name}.sigs             JSON array of Sigstore bundles [upstream..., airgate]
//! GET  /tuf/{N.root.json|timestamp.json|N.snapshot.json|N.targets.json}
//! GET  /tuf/targets/{sha256}.{name}       the private TUF repository (flat names only)
//! GET  /api/v1/log                        Rekor LogInfo (treeSize, rootHash, signedTreeHead, treeID)
//! GET  /api/v1/log/entries?logIndex=N     Rekor LogEntry with inclusion proof and SET
//! GET  /api/v1/log/proof?firstSize=&lastSize=   Rekor ConsistencyProof
//! GET  /api/v1/log/publicKey              the log key (PEM)
//! GET  /checkpoint                        the latest C2SP checkpoint (signed note, text)
//! POST /api/v1/import                     a medium (tar) as the body; bearer token required
//! GET  /v2/...                            read-only OCI registry of the imported images (see `registry`)
//! ```
//!
//! Every error is JSON `{"error": "..."}` with the matching status (the
//! dashboard's own 400 and 404 are HTML pages), and never names a path on
//! the server. The database is read through a small pool of
//! `query_only` SQLite connections on blocking threads (WAL lets them read
//! while an import writes); the hottest answers (`.sigs`, the checkpoint, the
//! index) are cached in memory until the database changes (see `cache`). Limits: URI length, request body size (imports
//! have their own cap), concurrent connections, and a per-client-IP token
//! bucket.

mod artifacts;
mod cache;
mod conda;
mod dashboard;
mod db;
mod error;
mod import;
mod limits;
mod log;
mod registry;
mod tiles;
mod tuf;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;

use crate::crypto::VerifyingKey;
use crate::state::StateReader;
use crate::Result;

use limits::ClientAddr;
pub use limits::RateLimit;
pub use tuf::TufRefresher;

/// The bearer token that authorizes state-changing requests. Only its
/// SHA-256 is kept; comparisons are constant-time.
#[derive(Clone)]
pub struct BearerToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Shortest token accepted, in bytes.
pub const MIN_TOKEN_BYTES: usize = 16;
/// Longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;

impl BearerToken {
    /// Validates a token: 16 to 4096 printable ASCII characters, no spaces
    /// (surrounding whitespace, e.g. a file's final newline, is trimmed).
    pub fn new(text: &str) -> Result<Self> {
        let token = text.trim();
        if token.len() < MIN_TOKEN_BYTES || token.len() > MAX_TOKEN_BYTES {
            return Err(crate::Error::Usage(format!(
                "the bearer token is {} bytes; use {MIN_TOKEN_BYTES} to {MAX_TOKEN_BYTES} (e.g. `openssl rand -hex 32`)",
                token.len()
            )));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(crate::Error::Usage(
                "the bearer token must be printable ASCII without spaces".into(),
            ));
        }
        Ok(BearerToken {
            digest: crate::crypto::sha256(token.as_bytes()),
        })
    }

    /// True when `given` is this token (constant-time over their SHA-256).
    pub fn matches(&self, given: &str) -> bool {
        let digest = crate::crypto::sha256(given.as_bytes());
        aws_lc_rs::constant_time::verify_slices_are_equal(&digest, &self.digest).is_ok()
    }
}

/// Whether the server accepts state-changing requests.
#[derive(Debug, Clone)]
pub enum Writes {
    /// Read-only: `POST /api/v1/import` answers 404.
    Disabled,
    /// `POST /api/v1/import` with `Authorization: Bearer <token>`.
    Enabled {
        /// The token.
        token: BearerToken,
        /// Where uploaded media are spooled before the import reads them.
        upload_dir: PathBuf,
    },
}

/// Explicit limits on what clients may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest medium accepted by `POST /api/v1/import`.
    pub max_import_bytes: u64,
    /// Largest body of any other request.
    pub max_request_bytes: u64,
    /// Longest request target (path and query).
    pub max_uri_bytes: usize,
    /// Most connections served at once (further ones wait to be accepted).
    pub max_connections: usize,
    /// Most connections one client address may hold open (further ones are
    /// closed at once, so one client cannot make the others wait).
    pub max_connections_per_client: usize,
    /// An upload may take this long plus its size at `min_upload_rate`.
    pub upload_grace: Duration,
    /// Slowest average upload rate accepted after the grace (bytes/s): a
    /// total deadline, so a trickling upload cannot hold the server.
    pub min_upload_rate: u64,
    /// Longest a client may take to send a request's headers, counted from
    /// when the server starts waiting for them (on a kept-alive connection,
    /// the end of the previous response), so it also bounds keep-alive idling.
    pub header_read_timeout: Duration,
    /// Longest a connection may go without a byte moving either way
    /// (an idle keep-alive, a stalled upload, a client that stops reading).
    pub idle_timeout: Duration,
}

impl Default for HttpLimits {
    /// Imports up to 16 GiB, other bodies 64 KiB, URIs 4 KiB, 1024
    /// connections (64 per client), headers within 10 s, connections idle
    /// at most 30 s, uploads at 1 MiB/s on average after 60 s.
    fn default() -> Self {
        HttpLimits {
            max_import_bytes: 16 << 30,
            max_request_bytes: 64 << 10,
            max_uri_bytes: 4096,
            max_connections: 1024,
            max_connections_per_client: 64,
            upload_grace: Duration::from_secs(60),
            min_upload_rate: 1 << 20,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The high-side state directory.
    pub state_dir: PathBuf,
    /// Whether writes are accepted.
    pub writes: Writes,
    /// Request limits.
    pub limits: HttpLimits,
    /// Per-client request rate.
    pub rate_limit: RateLimit,
    /// How long shutdown waits for open requests before closing them.
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    /// A read-only configuration with default limits and rate limit.
    pub fn read_only(state_dir: PathBuf) -> Self {
        ServerConfig {
            state_dir,
            writes: Writes::Disabled,
            limits: HttpLimits::default(),
            rate_limit: RateLimit::default(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The log as clients know it from the trusted root.
struct LogIdentity {
    /// The current key (the open window): new entries and checkpoints.
    key: VerifyingKey,
    /// Every key of the log with its window in unix seconds (more than one
    /// after `airgate ca rotate-log`).
    keys: Vec<crate::tlog::OwnedLogKey>,
    /// The current key's log ID.
    log_id_hex: String,
    /// The signer name its checkpoints carry.
    checkpoint_name: String,
    /// The origin line its checkpoints carry.
    origin: String,
}

impl LogIdentity {
    /// The key that signed an entry integrated at `unix_secs`: the newest
    /// whose window holds it.
    fn key_at(&self, unix_secs: i64) -> &VerifyingKey {
        self.keys
            .iter()
            .rev()
            .find(|k| k.borrowed().valid_at(unix_secs))
            .map_or(&self.key, |k| &k.key)
    }
}

/// State shared by all requests.
struct Shared {
    dir: PathBuf,
    pool: db::Pool,
    log: LogIdentity,
    cache: cache::HotCache,
    writes: Writes,
    import_lock: tokio::sync::Mutex<()>,
    limits: HttpLimits,
}

type AppState = Arc<Shared>;

/// A configured server, ready to run on a listener.
pub struct Server {
    router: Router,
    limits: HttpLimits,
    shutdown_grace: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Opens the state directory read-only (it must hold a ceremony and a
    /// database) and builds the routes. Blocking (reads a few files).
    pub fn new(config: ServerConfig) -> Result<Self> {
        let reader = StateReader::open(&config.state_dir)?;
        let tlog = reader.tlog()?;
        let keys: Vec<crate::tlog::OwnedLogKey> = reader
            .log_keys()?
            .iter()
            .map(crate::tlog::OwnedLogKey::of)
            .collect();
        let current = keys
            .iter()
            .find(|k| k.until.is_none())
            .or(keys.last())
            .map_or_else(|| tlog.key.clone(), |k| k.key.clone());
        let log = LogIdentity {
            log_id_hex: hex::encode(current.key_id()),
            key: current,
            keys,
            checkpoint_name: tlog.checkpoint_name(),
            // The origin stays the first key's across rotations.
            origin: crate::tlog::origin_for(&tlog.key.key_id(), &tlog.base_url),
        };
        let pool = db::Pool::new(config.state_dir.join(crate::state::DATABASE));
        // Fail now, not on the first request, if the database cannot be read.
        pool.check()?;
        let shared = Arc::new(Shared {
            dir: config.state_dir.clone(),
            pool,
            log,
            cache: cache::HotCache::new(config.state_dir.join(crate::state::DATABASE)),
            writes: config.writes.clone(),
            import_lock: tokio::sync::Mutex::new(()),
            limits: config.limits,
        });
        let limiter = Arc::new(limits::Limiter::new(config.rate_limit));
        let router = Router::new()
            .route("/", get(dashboard::page))
            .route("/dashboard/artifact/{*name}", get(dashboard::artifact))
            .route("/dashboard/import/{id}", get(dashboard::import))
            .route("/artifacts", get(artifacts::index))
            .route("/artifacts/", get(artifacts::index))
            .route("/artifacts/{*name}", get(artifacts::artifact))
            .route("/conda/{subdir}/{file}", get(conda::file))
            .route("/tuf/{file}", get(tuf::metadata))
            .route("/tuf/targets/{file}", get(tuf::target))
            .route("/api/v1/log", get(log::info))
            .route("/api/v1/log/entries", get(log::entry))
            .route("/api/v1/log/proof", get(log::consistency))
            .route("/api/v1/log/publicKey", get(log::public_key))
            .route("/checkpoint", get(log::checkpoint))
            .route("/tlog/checkpoint", get(log::checkpoint))
            .route("/tlog/cosignature", post(log::cosignature))
            .route("/tlog/tile/{*path}", get(tiles::tile))
            .route("/v2/", get(registry::root).fallback(registry::read_only))
            .route("/v2", get(registry::root).fallback(registry::read_only))
            .route(
                "/v2/{*rest}",
                get(registry::route).fallback(registry::read_only),
            )
            .route("/healthz", get(health))
            .route("/api/v1/import", post(import::upload))
            .fallback(error::no_route)
            .with_state(shared.clone())
            .layer(axum::middleware::from_fn_with_state(
                limiter,
                limits::rate_limit,
            ))
            .layer(axum::middleware::from_fn_with_state(
                shared,
                limits::guard_and_log,
            ));
        Ok(Server {
            router,
            limits: config.limits,
            shutdown_grace: config.shutdown_grace,
        })
    }

    /// Serves on `listener` until `shutdown` resolves, then stops accepting,
    /// lets open requests finish for the configured grace period, and returns.
    ///
    /// Each connection is served by hyper (HTTP/1.1 only) with a
    /// header-read deadline, and dropped when no byte has moved for the
    /// idle timeout, so slow or silent clients cannot pin the connection
    /// slots.
    pub async fn run<F>(self, listener: tokio::net::TcpListener, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        use hyper_util::rt::{TokioIo, TokioTimer};
        use tower::ServiceExt as _;

        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(true);
        });
        let mut listener = limits::LimitedListener::new(
            listener,
            self.limits.max_connections,
            self.limits.max_connections_per_client,
            self.limits.idle_timeout,
        );
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            let (stream, addr) = tokio::select! {
                accepted = listener.accept() => accepted,
                () = stopped(rx.clone()) => break,
            };
            let router = self.router.clone();
            let service = hyper::service::service_fn(
                move |mut request: axum::http::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(ClientAddr(addr)));
                    router.clone().oneshot(request.map(axum::body::Body::new))
                },
            );
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let watched = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = watched.await {
                    tracing::debug!(target: "airgate::http", client = %addr, %error, "connection ended");
                }
            });
        }
        drop(listener);
        let grace = self.shutdown_grace;
        tokio::select! {
            () = graceful.shutdown() => Ok(()),
            () = tokio::time::sleep(grace) => {
                tracing::warn!(grace_secs = grace.as_secs(), "requests still open after the grace period; closing them");
                Ok(())
            }
        }
    }
}

/// `GET /healthz`: 200 with the log size when the database answers, else 503
/// (for load balancers; no state is changed).
async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match db::with_db(&state, |c| Ok(crate::tlog::LogReader::new(c).size()?)).await {
        Ok(size) => {
            axum::Json(serde_json::json!({"status": "ok", "logSize": size})).into_response()
        }
        Err(_) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "unavailable"})),
        )
            .into_response(),
    }
}

/// Resolves when the channel says `true`; never if its sender goes away first.
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_validated_and_compared_exactly() {
        let token = BearerToken::new("0123456789abcdef-token\n").unwrap();
        assert!(token.matches("0123456789abcdef-token"));
        assert!(!token.matches("0123456789abcdef-toke"));
        assert!(!token.matches("0123456789abcdef-token "));
        assert!(!token.matches(""));
        assert!(BearerToken::new("short").is_err());
        assert!(BearerToken::new("has a space in the middle!").is_err());
        assert!(BearerToken::new(&"x".repeat(MAX_TOKEN_BYTES + 1)).is_err());
        assert_eq!(format!("{token:?}"), "BearerToken(<redacted>)");
    }
}
