//! `airgate bench serve`: `airgate serve` against nginx serving the same files
//! from disk, on loopback, with the same requests.
//!
//! Builds a state directory of `--artifacts` imported artifacts (or uses
//! `--state`), starts `airgate serve` as its own process (rate limiter on,
//! with a limit no client reaches; its request log, the tracing text log, to a
//! file), copies every artifact and its `.sigs` as served into a directory
//! tree and starts nginx on it (`worker_processes` = server threads,
//! `access_log` to a file, keep-alive, sendfile). One shuffled list of
//! requests (each artifact and each `.sigs`) is shared by both: N keep-alive
//! HTTP/1.1 connections walk it from evenly spread offsets, back to back, for
//! a bounded time. Every response is checked (status 200, exact body
//! length). Reports requests/s and p50/p90/p99/max latency per server and
//! their ratios.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use gateway::demo::SimulatedUpstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Load-test `airgate serve` against nginx on loopback.
#[derive(Args)]
pub struct ServeBench {
    /// Concurrent keep-alive connections (the same for both servers).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of measurement per server (after a 1 s warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Most requests per server (the run stops at the time or the count, whichever comes first).
    #[arg(long, default_value_t = 5_000_000)]
    max_requests: u64,
    /// Artifacts to request (each and its .sigs): made fresh, or the first
    /// ones of --state's index.
    #[arg(long, default_value_t = 1000)]
    artifacts: usize,
    /// Size of each fresh artifact in bytes.
    #[arg(long, default_value_t = 16_384)]
    artifact_bytes: usize,
    /// Serve this state directory (default: a fresh one in a temp dir).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Server worker threads, and nginx worker processes (default: one per core).
    #[arg(long)]
    server_threads: Option<usize>,
    /// Client worker threads.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// The nginx binary (Debian: `apt-get install -y nginx`).
    #[arg(long, default_value = "nginx")]
    nginx: String,
    /// Measure `airgate serve` alone, without the nginx baseline.
    #[arg(long)]
    no_nginx: bool,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Upper bound on the connection count.
const MAX_CONNECTIONS: usize = 4096;
/// Largest response the client accepts.
const MAX_RESPONSE: usize = 16 << 20;

/// One request of the shared list.
struct Target {
    request: Vec<u8>,
    body_len: usize,
    sigs: bool,
}

#[derive(Default)]
struct Measured {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
}

/// A server process of ours, stopped with SIGTERM (then SIGKILL) by its pid.
struct Server {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
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
        if !self.no_nginx && !nginx_present(&self.nginx) {
            bail!(gateway::Error::Usage(format!(
                "{} not found: install the baseline with `apt-get install -y nginx` \
                 (or give --nginx PATH, or --no-nginx to measure airgate alone)",
                self.nginx
            )));
        }
        let tmp = tempfile::tempdir()?;
        let exe = std::env::current_exe()?;
        let state = match &self.state {
            Some(s) => s.clone(),
            None => {
                let t = Instant::now();
                let state = fresh_state(&exe, tmp.path(), self.artifacts, self.artifact_bytes)?;
                if !self.json {
                    println!(
                        "state: {} artifacts of {} bytes signed, exported and imported in {:.1} s",
                        self.artifacts,
                        self.artifact_bytes,
                        t.elapsed().as_secs_f64()
                    );
                }
                state
            }
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = self.server_threads.unwrap_or(cores).max(1);
        let client_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.client_threads.max(1))
            .thread_name("bench-client")
            .enable_all()
            .build()?;

        let airgate = self.start_airgate(&exe, &state, tmp.path(), threads)?;
        // nginx's own directory: its workers may run as another user, so it
        // is readable by all (the state directory stays in `tmp`).
        let nginx_dir = tempfile::tempdir()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(nginx_dir.path(), std::fs::Permissions::from_mode(0o755))?;
        }
        let (targets, www) = client_rt.block_on(targets_and_files(
            airgate.addr,
            self.artifacts,
            nginx_dir.path(),
        ))?;
        // nginx serves what `airgate publish` writes (the static read side);
        // every body is checked against the server's before any timing.
        gateway::publish::publish(&state, &www)?;
        for t in targets.iter() {
            let path = std::str::from_utf8(&t.request)
                .ok()
                .and_then(|r| r.split(' ').nth(1))
                .unwrap_or_default()
                .to_owned();
            let file = www.join(percent_decoded(&path).trim_start_matches('/'));
            let len = std::fs::metadata(&file)
                .map(|m| m.len() as usize)
                .unwrap_or(0);
            if len != t.body_len {
                bail!(
                    "{}: published {len} bytes, served {}",
                    file.display(),
                    t.body_len
                );
            }
        }
        let targets = Arc::new(targets);
        let nginx = if self.no_nginx {
            None
        } else {
            Some(self.start_nginx(nginx_dir.path(), &www, threads)?)
        };
        let mean = |sigs: bool| {
            let v: Vec<usize> = targets
                .iter()
                .filter(|t| t.sigs == sigs)
                .map(|t| t.body_len)
                .collect();
            (v.len(), v.iter().sum::<usize>() / v.len().max(1))
        };
        let ((artifacts, artifact_mean), (sigs, sigs_mean)) = (mean(false), mean(true));
        if !self.json {
            println!(
                "airgate bench serve: {} keep-alive connections, {} s per server after 1 s warm-up (at most {} requests), \
                 one shuffled list of {} requests walked by both: {artifacts} artifacts (mean {artifact_mean} bytes) \
                 and {sigs} .sigs (mean {sigs_mean} bytes)",
                self.connections,
                self.seconds,
                self.max_requests,
                targets.len(),
            );
            println!(
                "  airgate serve: own process, {threads} worker threads, rate limiter on (limit not reached), \
                 request log (tracing text) to a file"
            );
            if nginx.is_some() {
                println!(
                    "  nginx: the tree `airgate publish` wrote (same bytes, checked), worker_processes {threads}, sendfile on, access_log (combined) to a file"
                );
            }
            println!(
                "  client: in-process, {} thread(s), the same for both; {cores} cores",
                self.client_threads.max(1)
            );
        }
        let mut rows = Vec::new();
        for server in std::iter::once(&airgate).chain(nginx.as_ref()) {
            let (m, elapsed, logged) = self.measure(&client_rt, server, &targets)?;
            rows.push(Row::new(server.name, (m, elapsed), logged, self.json));
        }
        drop(nginx);
        drop(airgate);
        client_rt.shutdown_timeout(Duration::from_secs(5));
        let ratio = match rows.as_slice() {
            [a, n] => Some((a.rps / n.rps.max(1e-9), a.p99 / n.p99.max(1e-9))),
            _ => None,
        };
        if self.json {
            let mut out = serde_json::json!({
                "connections": self.connections,
                "requests": targets.len(),
                "serverThreads": threads,
                "results": rows.iter().map(|r| r.json.clone()).collect::<Vec<_>>(),
            });
            if let Some((rps, p99)) = ratio {
                out["ratio"] = serde_json::json!({ "requestsPerSecond": rps, "p99": p99 });
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else if let Some((rps, p99)) = ratio {
            println!(
                "RATIO requests/s: airgate serve / nginx = {rps:.2}x; p99 latency: airgate serve / nginx = {p99:.2}x"
            );
        }
        if rows.iter().any(|r| r.errors > 0) {
            bail!("some responses were wrong or failed (see above)");
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Warm-up, then the measured run, against one server; also the lines
    /// its request log gained during the measured run.
    fn measure(
        &self,
        rt: &tokio::runtime::Runtime,
        server: &Server,
        targets: &Arc<Vec<Target>>,
    ) -> anyhow::Result<(Measured, f64, usize)> {
        let run = |secs: u64| {
            rt.block_on(hammer(
                server.addr,
                targets.clone(),
                self.connections,
                Duration::from_secs(secs),
                self.max_requests,
            ))
        };
        run(1)?;
        let lines_before = count_lines(&server.log);
        let started = Instant::now();
        let m = run(self.seconds.max(1))?;
        let elapsed = started.elapsed().as_secs_f64();
        Ok((
            m,
            elapsed,
            count_lines(&server.log).saturating_sub(lines_before),
        ))
    }

    /// `airgate serve` in its own process, stderr (its request log) to a file.
    fn start_airgate(
        &self,
        exe: &Path,
        state: &Path,
        dir: &Path,
        threads: usize,
    ) -> anyhow::Result<Server> {
        let log = dir.join("airgate-serve.log");
        let limit = (self.connections + 16).to_string();
        let mut child = Command::new(exe)
            .arg("serve")
            .arg("--state")
            .arg(state)
            .args(["--listen", "127.0.0.1:0"])
            .args(["--rate-limit", &u32::MAX.to_string()])
            .args(["--rate-burst", &u32::MAX.to_string()])
            .args(["--max-connections", &limit])
            .args(["--max-connections-per-client", &limit])
            .env("TOKIO_WORKER_THREADS", threads.to_string())
            .env("AIRGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting airgate serve")?;
        let stdout = child.stdout.take().context("airgate serve stdout")?;
        let mut server = Server {
            name: "airgate serve",
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("airgate serve: listening on http://")
            .and_then(|a| a.parse().ok());
        let Some(addr) = addr else {
            let err = std::fs::read_to_string(&server.log).unwrap_or_default();
            bail!("airgate serve did not start: {line}{err}");
        };
        server.addr = addr;
        // The rest of stdout (the recipe) is drained so the server never blocks on it.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        Ok(server)
    }

    /// nginx on the files in `www`, its config and logs in `dir`.
    fn start_nginx(&self, dir: &Path, www: &Path, threads: usize) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = dir.join("access.log");
        for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(dir.join("temp").join(sub))?;
        }
        let d = dir.display();
        let conf = format!(
            "daemon off;\nworker_processes {threads};\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections {wc}; }}\n\
             http {{\n  default_type application/octet-stream;\n  access_log {log};\n  sendfile on;\n  tcp_nodelay on;\n\
             \x20 keepalive_timeout 65s;\n  keepalive_requests 1000000000;\n\
             \x20 client_body_temp_path {d}/temp/body;\n  proxy_temp_path {d}/temp/proxy;\n\
             \x20 fastcgi_temp_path {d}/temp/fastcgi;\n  uwsgi_temp_path {d}/temp/uwsgi;\n  scgi_temp_path {d}/temp/scgi;\n\
             \x20 server {{\n    listen {addr};\n    root {www};\n  }}\n}}\n",
            wc = self.connections * 2 + 64,
            log = log.display(),
            www = www.display(),
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(&self.nginx)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", self.nginx))?;
        let mut server = Server {
            name: "nginx",
            child,
            addr,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline || !matches!(server.child.try_wait(), Ok(None)) {
                let err = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                bail!("nginx did not start on {addr}: {err}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        server.addr = addr;
        Ok(server)
    }
}

/// One server's figures.
struct Row {
    rps: f64,
    p99: f64,
    errors: u64,
    json: serde_json::Value,
}

impl Row {
    fn new(name: &str, (mut m, elapsed): (Measured, f64), logged: usize, quiet: bool) -> Row {
        m.latencies_us.sort_unstable();
        let pct = |p: f64| -> f64 {
            if m.latencies_us.is_empty() {
                return 0.0;
            }
            let i = ((m.latencies_us.len() as f64 - 1.0) * p).round() as usize;
            f64::from(m.latencies_us[i.min(m.latencies_us.len() - 1)]) / 1000.0
        };
        let rps = m.ok as f64 / elapsed;
        if !quiet {
            println!(
                "  {name:<14} {rps:>9.0} req/s  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  \
                 ({} requests in {elapsed:.1} s, {} errors, {logged} request-log lines)",
                pct(0.50),
                pct(0.90),
                pct(0.99),
                pct(1.0),
                m.ok,
                m.errors
            );
        }
        if let Some(e) = &m.first_error {
            eprintln!("  first error from {name}: {e}");
        }
        Row {
            rps,
            p99: pct(0.99),
            errors: m.errors,
            json: serde_json::json!({
                "server": name,
                "requests": m.ok,
                "errors": m.errors,
                "seconds": (elapsed * 100.0).round() / 100.0,
                "requestsPerSecond": rps.round(),
                "latencyMs": { "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0) },
                "requestLogLines": logged,
            }),
        }
    }
}

fn nginx_present(nginx: &str) -> bool {
    Command::new(nginx)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn count_lines(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `count` artifacts signed by a simulated upstream, exported and imported
/// with the CLI as a user would; returns the high-side state directory.
fn fresh_state(exe: &Path, dir: &Path, count: usize, bytes: usize) -> anyhow::Result<PathBuf> {
    let now = std::time::SystemTime::now();
    let upstream = SimulatedUpstream::create(&dir.join("upstream"), now)?;
    let artifacts = dir.join("artifacts");
    std::fs::create_dir_all(&artifacts)?;
    let mut files = Vec::with_capacity(count);
    for i in 0..count {
        let path = artifacts.join(format!("pkg-{i:05}.bin"));
        let mut data = format!("bench artifact {i}\n").into_bytes();
        data.resize(bytes.max(data.len()), b'a' + (i % 26) as u8);
        std::fs::write(&path, data)?;
        files.push(path);
    }
    upstream.sign_files(&files, now)?;
    let key = dir.join("key");
    let policy = dir.join("low-policy.toml");
    std::fs::write(&policy, upstream.low_side_policy()?)?;
    let medium = dir.join("medium.tar");
    let high = dir.join("high");
    run(Command::new(exe)
        .args(["export-key", "init", "--dir"])
        .arg(&key))?;
    run(Command::new(exe)
        .args(["export", "--exporter", "bench", "--policy"])
        .arg(&policy)
        .arg("--artifacts")
        .arg(&artifacts)
        .arg("--key")
        .arg(key.join("exporter.key.pem"))
        .arg("--out")
        .arg(&medium))?;
    run(Command::new(exe)
        .args(["ca", "init", "--name", "bench enclave", "--state"])
        .arg(&high))?;
    let pinned = high.join("upstream-tuf-root.json");
    std::fs::copy(&upstream.tuf_root, &pinned)?;
    std::fs::write(high.join("policy.toml"), upstream.high_side_policy(&pinned))?;
    run(Command::new(exe)
        .args(["exporter", "enroll", "--name", "bench", "--state"])
        .arg(&high)
        .arg(key.join("exporter.pub.pem")))?;
    run(Command::new(exe)
        .arg("import")
        .arg("--state")
        .arg(&high)
        .arg(&medium))?;
    Ok(high)
}

/// Percent-encodes a path for a request line ('/' kept).
/// Undoes `url_path`'s percent-encoding (for the published file's name).
fn percent_decoded(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn url_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request list (every artifact of the index, up to `limit`, and each
/// `.sigs`, shuffled with a fixed seed), and `dir/www`, where the caller
/// publishes the static tree nginx serves.
async fn targets_and_files(
    addr: SocketAddr,
    limit: usize,
    dir: &Path,
) -> anyhow::Result<(Vec<Target>, PathBuf)> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut buf = Vec::new();
    let (status, len) = get(&mut stream, &request_bytes("/artifacts/"), &mut buf).await?;
    if status != 200 {
        bail!("GET /artifacts/: status {status}");
    }
    let index: serde_json::Value = serde_json::from_slice(&buf[buf.len() - len..])?;
    let names: Vec<String> = index["artifacts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["name"].as_str().map(str::to_owned))
                .take(limit)
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        bail!("the state directory has no imported artifact");
    }
    let www = dir.join("www");
    let mut targets = Vec::with_capacity(names.len() * 2);
    for name in &names {
        if name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            bail!("artifact name {name:?} is not a plain relative path");
        }
        for (path, sigs) in [
            (format!("/artifacts/{name}"), false),
            (format!("/artifacts/{name}.sigs"), true),
        ] {
            let request = request_bytes(&url_path(&path));
            let (status, len) = get(&mut stream, &request, &mut buf).await?;
            if status != 200 {
                bail!("GET {path}: status {status}");
            }
            targets.push(Target {
                request,
                body_len: len,
                sigs,
            });
        }
    }
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..targets.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        targets.swap(i, (x % (i as u64 + 1)) as usize);
    }
    Ok((targets, www))
}

fn request_bytes(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: airgate-bench\r\n\r\n").into_bytes()
}

/// `connections` tasks, each walking the shared list from its own offset,
/// sending back-to-back GETs until `duration` or `max_requests` in total.
async fn hammer(
    addr: SocketAddr,
    targets: Arc<Vec<Target>>,
    connections: usize,
    duration: Duration,
    max_requests: u64,
) -> anyhow::Result<Measured> {
    let deadline = Instant::now() + duration;
    let budget = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let budget = budget.clone();
        let targets = targets.clone();
        let mut next = c * targets.len() / connections;
        tasks.push(tokio::spawn(async move {
            let mut m = Measured {
                latencies_us: Vec::with_capacity(4096),
                ..Measured::default()
            };
            let mut buf = Vec::with_capacity(64 << 10);
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
                let target = &targets[next % targets.len()];
                next += 1;
                let expected = target.body_len;
                let sent = Instant::now();
                match get(&mut stream, &target.request, &mut buf).await {
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
/// (Content-Length bodies only) into `buf`, the body last. Returns the
/// status and the body length.
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
