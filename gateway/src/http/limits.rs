//! Limits and request logging: the URI and body-size guard, a token bucket
//! per client IP, a cap on concurrent connections, and one structured log
//! line per request.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use super::AppState;

/// Per-client request rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    /// No limit (for benchmarks, or behind a proxy that limits).
    Off,
    /// A token bucket per client IP address.
    PerClient {
        /// Sustained requests per second.
        per_second: u32,
        /// Requests allowed in a burst.
        burst: u32,
    },
}

impl Default for RateLimit {
    /// 100 requests per second per client, bursts of 200.
    fn default() -> Self {
        RateLimit::PerClient {
            per_second: 100,
            burst: 200,
        }
    }
}

/// Most client addresses tracked at once; idle ones are dropped beyond it.
const MAX_TRACKED_CLIENTS: usize = 100_000;

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The token buckets.
pub(crate) struct Limiter {
    rate: RateLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl Limiter {
    pub(crate) fn new(rate: RateLimit) -> Self {
        Limiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip`, or says how long to wait for one.
    fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let RateLimit::PerClient { per_second, burst } = self.rate else {
            return Ok(());
        };
        let rate = f64::from(per_second.max(1));
        let burst = f64::from(burst.max(1));
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(&ip) {
            // Forget clients whose bucket has refilled: they are idle.
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * rate < burst);
            if buckets.len() >= MAX_TRACKED_CLIENTS {
                tracing::warn!(
                    clients = buckets.len(),
                    "rate limiter table full; resetting it"
                );
                buckets.clear();
            }
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let refill = now.duration_since(bucket.last).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

/// The client's socket address (from the connection).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) SocketAddr);

fn client_of(req: &Request) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map(|c| c.0 .0)
}

/// Middleware: 429 when the client's bucket is empty.
pub(crate) async fn rate_limit(
    State(limiter): State<Arc<Limiter>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(addr) = client_of(&req) {
        if let Err(wait) = limiter.check(addr.ip()) {
            let secs = wait.as_secs() + 1;
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many requests from {}; retry in {secs} s", addr.ip()),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return response;
        }
    }
    next.run(req).await
}

/// The path of the upload endpoint (its body limit is the import limit).
pub(crate) const IMPORT_PATH: &str = "/api/v1/import";

/// Middleware (outermost): refuses over-long URIs (414) and bodies over the
/// limit (413) before anything reads them, sets defensive headers, and logs
/// one line per request.
pub(crate) async fn guard_and_log(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let client = client_of(&req);
    let limits = state.limits;
    let body_limit = if req.uri().path() == IMPORT_PATH {
        limits.max_import_bytes
    } else {
        limits.max_request_bytes
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut response = if target.len() > limits.max_uri_bytes {
        ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!(
                "request target is {} bytes, over the limit of {}",
                target.len(),
                limits.max_uri_bytes
            ),
        )
        .into_response()
    } else if declared.is_some_and(|n| n > body_limit) {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is over the limit of {body_limit} bytes"),
        )
        .into_response()
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    let mut shown = target;
    if shown.len() > 256 {
        let mut end = 256;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        shown.truncate(end);
    }
    tracing::info!(
        target: "airgate::http",
        client = %client.map(|c| c.to_string()).unwrap_or_default(),
        method = %method,
        uri = ?shown,
        status = response.status().as_u16(),
        micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    response
}

/// A TCP listener that serves at most N connections at once (a further
/// connection waits in the kernel's backlog until one closes), turns off
/// Nagle's algorithm on each, and gives each an idle deadline.
pub(crate) struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    idle_timeout: Duration,
}

impl LimitedListener {
    pub(crate) fn new(inner: TcpListener, max_connections: usize, idle_timeout: Duration) -> Self {
        LimitedListener {
            inner,
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            idle_timeout,
        }
    }

    /// The next connection, once a slot is free. Accept errors (such as
    /// running out of file descriptors) are retried after a pause.
    pub(crate) async fn accept(&mut self) -> (LimitedStream, SocketAddr) {
        let permit = match self.permits.clone().acquire_owned().await {
            Ok(p) => p,
            // The semaphore is never closed.
            Err(_) => std::future::pending().await,
        };
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        let _ = stream.set_nodelay(true);
        (LimitedStream::new(stream, permit, self.idle_timeout), addr)
    }
}

/// A connection holding one of the listener's permits, failing with
/// `TimedOut` once no byte has moved either way for the idle timeout.
pub(crate) struct LimitedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle_timeout: Duration,
    last_progress: tokio::time::Instant,
    /// Fires at or before `last_progress + idle_timeout`; re-armed lazily
    /// (progress only stamps `last_progress`, so a busy stream costs no
    /// timer updates).
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl LimitedStream {
    fn new(stream: TcpStream, permit: OwnedSemaphorePermit, idle_timeout: Duration) -> Self {
        let now = tokio::time::Instant::now();
        LimitedStream {
            stream,
            _permit: permit,
            idle_timeout,
            last_progress: now,
            deadline: Box::pin(tokio::time::sleep_until(now + idle_timeout)),
        }
    }

    fn progressed(&mut self) {
        self.last_progress = tokio::time::Instant::now();
    }

    /// Called when the socket is not ready: `Ready(Err)` once the
    /// connection has been idle too long, else `Pending` with the timer
    /// registered to wake the task.
    fn poll_idle<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let due = self.last_progress + self.idle_timeout;
            if tokio::time::Instant::now() >= due {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for too long",
                )));
            }
            self.deadline.as_mut().reset(due);
        }
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.progressed();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.poll_idle(cx),
        }
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progressed();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.poll_idle(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progressed();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.poll_idle(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.stream).poll_flush(cx) {
            Poll::Pending => self.poll_idle(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected pair: the server side wrapped with `idle`, and the client.
    async fn limited_pair(idle: Duration) -> (LimitedStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let mut limited = LimitedListener::new(listener, 1, idle);
        let (server, _) = limited.accept().await;
        (server, client)
    }

    #[tokio::test]
    async fn idle_stream_read_times_out_after_the_idle_timeout() {
        use tokio::io::AsyncReadExt;
        let (mut server, _client) = limited_pair(Duration::from_millis(200)).await;
        let start = tokio::time::Instant::now();
        let mut buf = [0u8; 16];
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(
            start.elapsed() >= Duration::from_millis(190),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn trickling_stream_is_not_idle_while_bytes_arrive() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut server, mut client) = limited_pair(Duration::from_millis(300)).await;
        let writer = tokio::spawn(async move {
            for _ in 0..6 {
                client.write_all(b"x").await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            client
        });
        let mut got = 0;
        let mut buf = [0u8; 16];
        while got < 6 {
            got += server.read(&mut buf).await.unwrap();
        }
        // 600 ms of trickle outlived the 300 ms idle timeout; then silence.
        let _client = writer.await.unwrap();
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn stream_whose_peer_stops_reading_times_out_on_write() {
        use tokio::io::AsyncWriteExt;
        let (mut server, _client) = limited_pair(Duration::from_millis(200)).await;
        let chunk = vec![0u8; 1 << 16];
        let err = loop {
            if let Err(e) = server.write_all(&chunk).await {
                break e;
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn token_bucket_allows_the_burst_then_refuses_with_a_wait() {
        let limiter = Limiter::new(RateLimit::PerClient {
            per_second: 1,
            burst: 3,
        });
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..3 {
            assert!(limiter.check(a).is_ok());
        }
        let wait = limiter.check(a).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Buckets are per client.
        assert!(limiter.check(b).is_ok());
    }

    #[test]
    fn no_limit_when_off() {
        let limiter = Limiter::new(RateLimit::Off);
        let a: IpAddr = [127, 0, 0, 1].into();
        assert!((0..10_000).all(|_| limiter.check(a).is_ok()));
    }
}
