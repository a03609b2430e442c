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
    let hosts = req.headers().get_all(header::HOST).iter().count();
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    let mut response = if hosts != 1 {
        let mut r = ApiError::bad_request(format!(
            "a request needs exactly one Host header (it has {hosts})"
        ))
        .into_response();
        close(&mut r);
        r
    } else if chunked && req.uri().path() != IMPORT_PATH {
        let mut r = ApiError::bad_request("request bodies of unknown length are refused here")
            .into_response();
        close(&mut r);
        r
    } else if target.len() > limits.max_uri_bytes {
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
    if chunked {
        // A body of unknown length: the connection's next bytes are not
        // checked for framing, so no further request is read from it.
        close(&mut response);
    }
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

/// Open connections per client address; a slot is released when its
/// [`ClientSlot`] drops.
#[derive(Default)]
struct ClientTable {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One client connection counted in the [`ClientTable`].
pub(crate) struct ClientSlot {
    table: Arc<ClientTable>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self
            .table
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl ClientTable {
    /// A slot for `ip`, unless it holds `max` connections already.
    fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            table: self.clone(),
            ip,
        })
    }
}

fn close(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// A TCP listener that serves at most N connections at once (a further
/// connection waits in the kernel's backlog until one closes) and at most M
/// per client address (a further one from the same client is closed at
/// once, so one client cannot make the others wait), turns off Nagle's
/// algorithm on each, and gives each an idle deadline.
pub(crate) struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    clients: Arc<ClientTable>,
    max_per_client: usize,
    idle_timeout: Duration,
}

impl LimitedListener {
    pub(crate) fn new(
        inner: TcpListener,
        max_connections: usize,
        max_per_client: usize,
        idle_timeout: Duration,
    ) -> Self {
        LimitedListener {
            inner,
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            clients: Arc::default(),
            max_per_client: max_per_client.max(1),
            idle_timeout,
        }
    }

    /// The next admitted connection, once a slot is free. Accept errors
    /// (such as running out of file descriptors) are retried after a pause.
    pub(crate) async fn accept(&mut self) -> (LimitedStream, SocketAddr) {
        loop {
            let permit = match self.permits.clone().acquire_owned().await {
                Ok(p) => p,
                // The semaphore is never closed.
                Err(_) => std::future::pending().await,
            };
            let (stream, addr) = Listener::accept(&mut self.inner).await;
            let Some(slot) = self.clients.admit(addr.ip(), self.max_per_client) else {
                tracing::warn!(target: "airgate::http", client = %addr, limit = self.max_per_client, "connection refused: too many open connections from this client");
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            return (
                LimitedStream::new(stream, permit, slot, self.idle_timeout),
                addr,
            );
        }
    }
}

/// Where a connection is in its request stream, for the line-ending check.
#[derive(Debug)]
enum Framing {
    /// Reading a request's header block (kept, bounded, to find its length).
    Header { block: Vec<u8> },
    /// Skipping this many body bytes.
    Body(u64),
    /// A body of unknown length (chunked): no further request on this
    /// connection is parsed (the server answers it with `Connection: close`).
    Unchecked,
}

/// Longest header block looked at; hyper refuses longer ones itself.
const MAX_HEADER_BLOCK: usize = 64 << 10;

impl Framing {
    /// Checks bytes a client sent: every header line must end in CRLF
    /// (a bare LF is refused: parsers disagree on it, which is how requests
    /// are smuggled past a proxy).
    fn feed(&mut self, mut data: &[u8]) -> Result<(), &'static str> {
        while !data.is_empty() {
            match self {
                Framing::Unchecked => return Ok(()),
                Framing::Body(n) => {
                    let skip = (*n).min(data.len() as u64) as usize;
                    *n -= skip as u64;
                    data = &data[skip..];
                    if *n == 0 {
                        *self = Framing::Header { block: Vec::new() };
                    }
                }
                Framing::Header { block } => {
                    let (byte, rest) = (data[0], &data[1..]);
                    data = rest;
                    if byte == b'\n' && block.last() != Some(&b'\r') {
                        return Err("a request line ends in a bare LF; HTTP requires CRLF");
                    }
                    if block.len() < MAX_HEADER_BLOCK {
                        block.push(byte);
                    }
                    if block == b"\r\n" {
                        // An empty line before a request line is ignored (RFC 9112).
                        block.clear();
                    } else if block.ends_with(b"\r\n\r\n") {
                        *self = next_after_headers(block);
                    }
                }
            }
        }
        Ok(())
    }
}

/// After a header block: its body's length, from Content-Length (none is
/// zero), or unchecked for Transfer-Encoding.
fn next_after_headers(block: &[u8]) -> Framing {
    let text = String::from_utf8_lossy(block);
    let mut length = 0u64;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Framing::Unchecked;
        }
        if name.eq_ignore_ascii_case("content-length") {
            match value.trim().parse::<u64>() {
                Ok(n) => length = n,
                // hyper refuses it; nothing of this connection is read further.
                Err(_) => return Framing::Unchecked,
            }
        }
    }
    if length == 0 {
        Framing::Header { block: Vec::new() }
    } else {
        Framing::Body(length)
    }
}

/// A connection holding one of the listener's permits, failing with
/// `TimedOut` once no byte has moved either way for the idle timeout, and
/// with `InvalidData` on a bare-LF header line.
pub(crate) struct LimitedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    _slot: ClientSlot,
    idle_timeout: Duration,
    last_progress: tokio::time::Instant,
    /// Fires at or before `last_progress + idle_timeout`; re-armed lazily
    /// (progress only stamps `last_progress`, so a busy stream costs no
    /// timer updates).
    deadline: Pin<Box<tokio::time::Sleep>>,
    framing: Framing,
}

impl LimitedStream {
    fn new(
        stream: TcpStream,
        permit: OwnedSemaphorePermit,
        slot: ClientSlot,
        idle_timeout: Duration,
    ) -> Self {
        let now = tokio::time::Instant::now();
        LimitedStream {
            stream,
            _permit: permit,
            _slot: slot,
            idle_timeout,
            last_progress: now,
            deadline: Box::pin(tokio::time::sleep_until(now + idle_timeout)),
            framing: Framing::Header { block: Vec::new() },
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
                    let new = &buf.filled()[before..];
                    if let Err(why) = self.framing.feed(new) {
                        return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, why)));
                    }
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
        let mut limited = LimitedListener::new(listener, 1, 1, idle);
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
    fn bare_lf_in_a_header_block_is_refused() {
        let mut f = Framing::Header { block: Vec::new() };
        assert!(f.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").is_ok());
        assert!(f.feed(b"GET / HTTP/1.1\nHost: a\r\n\r\n").is_err());
        let mut f = Framing::Header { block: Vec::new() };
        assert!(f.feed(b"GET / HTTP/1.1\r\nHost: a\n\r\n").is_err());
    }

    #[test]
    fn body_bytes_are_skipped_and_the_next_request_is_checked() {
        let mut f = Framing::Header { block: Vec::new() };
        // A body containing a bare LF is data, not a header line.
        f.feed(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\na\nb\nc")
            .unwrap();
        assert!(matches!(f, Framing::Header { .. }));
        assert!(f.feed(b"GET / HTTP/1.1\nHost: a\r\n\r\n").is_err());
        // Split across reads.
        let mut f = Framing::Header { block: Vec::new() };
        for b in b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n" {
            f.feed(std::slice::from_ref(b)).unwrap();
        }
        assert!(f.feed(b"Host: b\n").is_err());
        // After a chunked body nothing more is parsed.
        let mut f = Framing::Header { block: Vec::new() };
        f.feed(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        assert!(matches!(f, Framing::Unchecked));
    }

    #[tokio::test]
    async fn one_client_gets_at_most_its_share_of_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut limited = LimitedListener::new(listener, 100, 2, Duration::from_secs(5));
        let c1 = TcpStream::connect(addr).await.unwrap();
        let (s1, _) = limited.accept().await;
        let c2 = TcpStream::connect(addr).await.unwrap();
        let (s2, _) = limited.accept().await;
        // A third from the same address is closed at once...
        let mut c3 = TcpStream::connect(addr).await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(300), limited.accept())
                .await
                .is_err(),
            "a third connection was admitted"
        );
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 1];
        assert_eq!(
            c3.read(&mut buf).await.unwrap_or(0),
            0,
            "the third connection was closed"
        );
        // ...and a slot frees when one of the client's connections ends.
        drop(s1);
        let _c4 = TcpStream::connect(addr).await.unwrap();
        let (_s4, _) = limited.accept().await;
        drop((c1, c2, s2));
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
