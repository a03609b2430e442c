//! `airgate bench serve`: load test of the high-side server on loopback.
//!
//! Builds a demo state directory (or uses `--state`), starts the server
//! in-process on 127.0.0.1 with an ephemeral port (rate limiter on, with a
//! limit no client reaches, so its cost is measured), then, per endpoint,
//! N concurrent keep-alive HTTP/1.1 connections send GETs back to back for a
//! bounded time and count. Every response is checked (status 200, exact
//! body length). Reports requests/s and p50/p90/p99/max latency.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use gateway::http::{RateLimit, Server, ServerConfig};
use gateway::state::StateReader;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Load-test `airgate serve` on loopback.
#[derive(Args)]
pub struct ServeBench {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of measurement per endpoint (after a 1 s warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Most requests per endpoint (the run stops at the time or the count, whichever comes first).
    #[arg(long, default_value_t = 5_000_000)]
    max_requests: u64,
    /// Serve this state directory (default: a fresh `airgate demo` in a temp dir).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Server worker threads (default: one per core).
    #[arg(long)]
    server_threads: Option<usize>,
    /// Client worker threads.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Upper bound on the connection count.
const MAX_CONNECTIONS: usize = 4096;
/// Largest response the client accepts.
const MAX_RESPONSE: usize = 16 << 20;

struct Target {
    label: &'static str,
    path: String,
    body_len: usize,
}

#[derive(Default)]
struct Measured {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
}

impl ServeBench {
    /// Runs the benchmark.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        if self.connections == 0 || self.connections > MAX_CONNECTIONS {
            bail!(gateway::Error::Usage(format!(
                "--connections {}: use 1 to {MAX_CONNECTIONS}",
                self.connections
            )));
        }
        let tmp = tempfile::tempdir()?;
        let state = match &self.state {
            Some(s) => s.clone(),
            None => demo_state(tmp.path())?,
        };
        let (name, sigs_len) = first_artifact(&state)?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let server_threads = self.server_threads.unwrap_or(cores).max(1);

        let server_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(server_threads)
            .thread_name("bench-server")
            .enable_all()
            .build()?;
        let mut config = ServerConfig::read_only(state.clone());
        config.rate_limit = RateLimit::PerClient {
            per_second: u32::MAX,
            burst: u32::MAX,
        };
        config.limits.max_connections = self.connections + 16;
        let server = Server::new(config).context("starting the server")?;
        let listener = server_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let served = server_rt.spawn(server.run(listener, async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        }));

        let client_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.client_threads.max(1))
            .thread_name("bench-client")
            .enable_all()
            .build()?;
        let checkpoint_len = client_rt.block_on(probe(addr, "/checkpoint"))?;
        let targets = [
            Target {
                label: "GET /artifacts/{name}.sigs",
                path: format!("/artifacts/{name}.sigs"),
                body_len: sigs_len,
            },
            Target {
                label: "GET /checkpoint",
                path: "/checkpoint".to_owned(),
                body_len: checkpoint_len,
            },
        ];
        if !self.json {
            println!(
                "airgate bench serve: {} connections, {} s per endpoint (at most {} requests), loopback {addr}",
                self.connections, self.seconds, self.max_requests
            );
            println!(
                "  server: in-process, {server_threads} worker threads, rate limiter on (limit not reached), request logging off; client: {} thread(s); {cores} cores",
                self.client_threads.max(1)
            );
            println!(
                "  artifact: {name} (.sigs is {sigs_len} bytes; checkpoint {checkpoint_len} bytes)"
            );
        }
        let mut results = Vec::new();
        for target in &targets {
            // Warm-up (connections, SQLite page cache, prepared statements).
            client_rt.block_on(hammer(
                addr,
                target,
                self.connections,
                Duration::from_secs(1),
                self.max_requests,
            ))?;
            let started = Instant::now();
            let mut m = client_rt.block_on(hammer(
                addr,
                target,
                self.connections,
                Duration::from_secs(self.seconds.max(1)),
                self.max_requests,
            ))?;
            let elapsed = started.elapsed().as_secs_f64();
            m.latencies_us.sort_unstable();
            let pct = |p: f64| -> f64 {
                if m.latencies_us.is_empty() {
                    return 0.0;
                }
                let i = ((m.latencies_us.len() as f64 - 1.0) * p).round() as usize;
                f64::from(m.latencies_us[i.min(m.latencies_us.len() - 1)]) / 1000.0
            };
            let rps = m.ok as f64 / elapsed;
            let row = serde_json::json!({
                "endpoint": target.label,
                "path": target.path,
                "connections": self.connections,
                "requests": m.ok,
                "errors": m.errors,
                "seconds": (elapsed * 100.0).round() / 100.0,
                "requestsPerSecond": rps.round(),
                "latencyMs": { "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0) },
                "responseBytes": target.body_len,
            });
            if !self.json {
                println!(
                    "  {:<28} {:>9.0} req/s  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  ({} requests in {:.1} s, {} errors)",
                    target.label,
                    rps,
                    pct(0.50),
                    pct(0.90),
                    pct(0.99),
                    pct(1.0),
                    m.ok,
                    elapsed,
                    m.errors
                );
            }
            if let Some(e) = &m.first_error {
                eprintln!("  first error on {}: {e}", target.label);
            }
            results.push((row, m.errors));
        }
        let _ = stop_tx.send(true);
        let _ = server_rt.block_on(served);
        server_rt.shutdown_timeout(Duration::from_secs(5));
        client_rt.shutdown_timeout(Duration::from_secs(5));
        if self.json {
            let rows: Vec<_> = results.iter().map(|(r, _)| r.clone()).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "results": rows }))?
            );
        }
        if results.iter().any(|(_, errors)| *errors > 0) {
            bail!("some responses were wrong or failed (see above)");
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Runs `airgate demo` into `dir/demo` and returns its high-side state directory.
fn demo_state(dir: &Path) -> anyhow::Result<PathBuf> {
    let root = dir.join("demo");
    let status = Command::new(std::env::current_exe()?)
        .arg("demo")
        .arg("--dir")
        .arg(&root)
        .stdout(Stdio::null())
        .status()
        .context("running airgate demo")?;
    if !status.success() {
        bail!("airgate demo failed ({status})");
    }
    Ok(root.join("high"))
}

/// The first artifact (by name) and the size of its `.sigs`.
fn first_artifact(state: &Path) -> anyhow::Result<(String, usize)> {
    let reader = StateReader::open(state)?;
    let (name, sigs) = reader
        .first_artifact()?
        .context("the state directory has no imported artifact")?;
    Ok((name, sigs.len()))
}

/// One GET on a fresh connection; returns the body length.
async fn probe(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<usize> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut buf = Vec::new();
    let (status, len) = get(&mut stream, &request_bytes(path), &mut buf).await?;
    if status != 200 {
        bail!("GET {path}: status {status}");
    }
    Ok(len)
}

fn request_bytes(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: airgate-bench\r\n\r\n").into_bytes()
}

/// `connections` tasks sending back-to-back GETs until `duration` or
/// `max_requests` in total.
async fn hammer(
    addr: std::net::SocketAddr,
    target: &Target,
    connections: usize,
    duration: Duration,
    max_requests: u64,
) -> anyhow::Result<Measured> {
    let deadline = Instant::now() + duration;
    let budget = Arc::new(AtomicU64::new(0));
    let request = Arc::new(request_bytes(&target.path));
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let budget = budget.clone();
        let request = request.clone();
        let expected = target.body_len;
        tasks.push(tokio::spawn(async move {
            let mut m = Measured {
                latencies_us: Vec::with_capacity(4096),
                ..Measured::default()
            };
            let mut buf = Vec::with_capacity(expected + 1024);
            let mut stream = match TcpStream::connect(addr).await {
                Ok(s) => s,
                Err(e) => {
                    m.errors += 1;
                    m.first_error = Some(format!("connect: {e}"));
                    return m;
                }
            };
            let _ = stream.set_nodelay(true);
            while Instant::now() < deadline && budget.fetch_add(1, Ordering::Relaxed) < max_requests
            {
                let sent = Instant::now();
                match get(&mut stream, &request, &mut buf).await {
                    Ok((200, len)) if len == expected => {
                        m.ok += 1;
                        let us = sent.elapsed().as_micros();
                        m.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                    }
                    Ok((status, len)) => {
                        m.errors += 1;
                        m.first_error.get_or_insert_with(|| {
                            format!("status {status}, {len} bytes (expected 200, {expected} bytes)")
                        });
                    }
                    Err(e) => {
                        m.errors += 1;
                        m.first_error.get_or_insert_with(|| e.to_string());
                        break;
                    }
                }
            }
            m
        }));
    }
    let mut total = Measured::default();
    for task in tasks {
        let m = task.await.context("client task")?;
        total.ok += m.ok;
        total.errors += m.errors;
        if total.first_error.is_none() {
            total.first_error = m.first_error;
        }
        total.latencies_us.extend(m.latencies_us);
    }
    Ok(total)
}

/// Sends one request on a keep-alive connection and reads one response
/// (Content-Length bodies only). Returns the status and the body length.
async fn get(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> anyhow::Result<(u16, usize)> {
    stream.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 16 << 10];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 << 10 {
            bail!("response head over 64 KiB");
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed before the response head");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).context("response head is not UTF-8")?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status code")?;
    let len: usize = head
        .split("\r\n")
        .find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .context("response has no Content-Length")?;
    if len > MAX_RESPONSE {
        bail!("response body of {len} bytes is over the limit");
    }
    let total = head_end + len;
    while buf.len() < total {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed inside the response body");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if buf.len() != total {
        bail!("{} unexpected bytes after the response", buf.len() - total);
    }
    Ok((status, len))
}
