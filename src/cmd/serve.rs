//! `airgate serve`: the high side's HTTP server (artifacts with `.sigs`,
//! the private TUF repository, the log, the dashboard) until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use gateway::http::{
    BearerToken, HttpLimits, RateLimit, Server, ServerConfig, TufRefresher, Writes,
};
use gateway::{files, Error};

/// Serve artifacts, signatures, the private TUF repository, the log and a dashboard.
#[derive(Args)]
pub struct ServeArgs {
    /// The high-side state directory (read-only unless --token-file is given).
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed on stdout).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Enable `POST /api/v1/import`, authorized by the bearer token in this file
    /// (16 to 4096 printable characters; keep the file mode 0600).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Where uploaded media are spooled before import (default: the system temp dir).
    #[arg(long, value_name = "DIR")]
    upload_dir: Option<PathBuf>,
    /// Re-sign the private TUF timestamp this often (and at start); at most
    /// half the timestamp expiry. A number with d, h, m or s.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    tuf_refresh_interval: Duration,
    /// Requests per second per client IP, or "off".
    #[arg(long, value_name = "N|off", default_value = "100")]
    rate_limit: String,
    /// Requests a client may burst above the rate.
    #[arg(long, value_name = "N", default_value_t = 200)]
    rate_burst: u32,
    /// Largest medium accepted by POST /api/v1/import (bytes, or with K, M, G, T).
    #[arg(long, value_name = "SIZE", default_value = "16G", value_parser = parse_size)]
    max_import_size: u64,
    /// Most connections served at once.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: usize,
    /// Most open connections per client address (behind a proxy all clients
    /// share one: raise it there).
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_connections_per_client: usize,
    /// Slowest average upload accepted for POST /api/v1/import, after --upload-grace.
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_size)]
    min_upload_rate: u64,
    /// How long an upload may take before --min-upload-rate applies.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    upload_grace: Duration,
    /// Longest a client may take to send a request's headers (also how long
    /// a kept-alive connection may wait for its next request).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_timeout)]
    header_read_timeout: Duration,
    /// Longest a connection may go with no byte moving either way.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    idle_timeout: Duration,
    /// How long shutdown waits for open requests.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    shutdown_grace: Duration,
    /// Log format on stderr (filter with AIRGATE_LOG, e.g. AIRGATE_LOG=warn).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// key=value text.
    Text,
    /// One JSON object per line.
    Json,
}

/// A duration flag: a whole number with s, m, h or d; a bare number is seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "{} is not a duration: give a whole number of seconds, or one with s, m, h or d (10, 10s, 5m, 1h)",
            gateway::escape::quoted(text)
        )
    };
    let (digits, scale) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1),
        Some((i, 'm')) => (&t[..i], 60),
        Some((i, 'h')) => (&t[..i], 3_600),
        Some((i, 'd')) => (&t[..i], 86_400),
        Some((_, c)) if c.is_ascii_digit() => (t, 1),
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

/// Binds the listen address (a host name such as `localhost` is resolved;
/// the first address that binds wins).
fn bind(listen: &str) -> anyhow::Result<std::net::TcpListener> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = listen
        .to_socket_addrs()
        .map_err(|e| {
            Error::Usage(format!(
                "--listen {}: not HOST:PORT ({e})",
                gateway::escape::quoted(listen)
            ))
        })?
        .collect();
    let mut last = None;
    for addr in addrs {
        match std::net::TcpListener::bind(addr) {
            Ok(l) => {
                l.set_nonblocking(true)?;
                return Ok(l);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Error::Usage(format!(
        "cannot listen on {}: {}",
        gateway::escape::quoted(listen),
        last.map_or_else(|| "no address".to_string(), |e| e.to_string())
    ))
    .into())
}

/// A duration that must not be zero (a zero timeout would drop every
/// connection at once).
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!("{text:?}: a timeout must be at least 1s")),
        d => Ok(d),
    }
}

/// Bytes, or a number with K, M, G or T (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("{text:?}: use bytes or a number with K, M, G or T")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?}: use bytes or a number with K, M, G or T"))?;
    n.checked_mul(1u64 << shift)
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("{text:?} is out of range"))
}

fn rate_limit(text: &str, burst: u32) -> anyhow::Result<RateLimit> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(RateLimit::Off);
    }
    let per_second: u32 = text.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
        Error::Usage(format!(
            "--rate-limit {text:?}: give a positive number or \"off\""
        ))
    })?;
    Ok(RateLimit::PerClient {
        per_second,
        burst: burst.max(1),
    })
}

fn load_token(path: &Path) -> anyhow::Result<BearerToken> {
    let bytes = files::read_limited(path, 8192)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::Usage(format!("{}: the token is not UTF-8", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    file = %path.display(),
                    "the token file is readable by other users; chmod 600 it"
                );
            }
        }
    }
    BearerToken::new(&text).with_context(|| format!("token file {}", path.display()))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIRGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialization (none here) would be a no-op, not an error worth failing on.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stop with SIGINT");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            if let Err(e) = r {
                tracing::warn!(error = %e, "cannot listen for SIGINT");
                std::future::pending::<()>().await;
            }
        }
        () = terminate => {}
    }
    tracing::info!("shutdown signal received; finishing open requests");
}

/// Resolves when the channel says `true`; never if its sender goes away first.
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl ServeArgs {
    /// Runs the server until SIGINT or SIGTERM.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        init_logging(self.log_format);
        let writes = match &self.token_file {
            None => Writes::Disabled,
            Some(path) => Writes::Enabled {
                token: load_token(path)?,
                upload_dir: self.upload_dir.clone().unwrap_or_else(std::env::temp_dir),
            },
        };
        let writes_on = matches!(writes, Writes::Enabled { .. });
        let config = ServerConfig {
            state_dir: self.state.clone(),
            writes,
            limits: HttpLimits {
                max_import_bytes: self.max_import_size,
                max_connections: self.max_connections.max(1),
                max_connections_per_client: self.max_connections_per_client.max(1),
                min_upload_rate: self.min_upload_rate,
                upload_grace: self.upload_grace,
                header_read_timeout: self.header_read_timeout,
                idle_timeout: self.idle_timeout,
                ..HttpLimits::default()
            },
            rate_limit: rate_limit(&self.rate_limit, self.rate_burst)?,
            shutdown_grace: self.shutdown_grace,
        };
        let server = Server::new(config)
            .with_context(|| format!("serving the state directory {}", self.state.display()))?;
        // The port first: a port in use fails before anything is re-signed.
        let std_listener = bind(&self.listen)?;
        let refresher = TufRefresher::new(&self.state, self.tuf_refresh_interval)
            .context("--tuf-refresh-interval")?;
        // Fresh metadata before the first request.
        if let Some(r) = &refresher {
            r.refresh_now()
                .context("refreshing the private TUF repository before serving it")?;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener)?;
            let addr = listener.local_addr()?;
            {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "airgate serve: listening on http://{addr}")
                    .and_then(|()| out.flush());
            }
            print_recipe(&self.state, &format!("http://{addr}"));
            tracing::info!(
                %addr,
                state = %self.state.display(),
                imports_over_http = if writes_on { "on (bearer token)" } else { "off" },
                "listening"
            );
            let (tx, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                shutdown_signal().await;
                let _ = tx.send(true);
            });
            match refresher {
                Some(r) => {
                    tokio::spawn(r.run(stopped(rx.clone())));
                }
                None => tracing::warn!(
                    "no private TUF repository is published in the state directory; /tuf/ answers 404 (create it with `airgate tuf init-private --state DIR`)"
                ),
            }
            server.run(listener, stopped(rx)).await?;
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        })
    }
}

/// A copy-paste recipe for the first artifact served (none when empty).
/// Written without `println!`: a server whose stdout was closed keeps serving.
fn print_recipe(state: &std::path::Path, base: &str) {
    use std::io::Write;
    let Ok(reader) = gateway::state::StateReader::open(state) else {
        return;
    };
    let Ok(Some((name, _))) = reader.first_artifact() else {
        return;
    };
    match reader.airgate_bundle_element(&name, chrono::Utc::now()) {
        Ok((element, identity, issuer)) => {
            let text = format!(
                "Verify a served artifact (trusted_root.json and 1.root.json come from {}):\n{}",
                state.display(),
                super::recipe::served(base, &name, element, &identity, &issuer)
            );
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}").and_then(|()| out.flush());
        }
        Err(e) => eprintln!("warning: no verification recipe for {name}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_number_durations_are_seconds() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "ten", "10x", "-1", "1.5s", "s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("16G"), Ok(16 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
