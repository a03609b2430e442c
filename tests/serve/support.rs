//! Helpers for the `airgate serve` tests: a populated state directory (the
//! demo round trip plus a private TUF repository), the server as a child
//! process on an ephemeral loopback port, and a plain HTTP/1.1 client.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::common::{airgate, stderr};

/// A demo round trip (`airgate demo`) with a private TUF repository
/// (`airgate tuf init-private --state`) on its high side.
pub struct Demo {
    _tmp: tempfile::TempDir,
    /// The demo's working directory.
    pub root: PathBuf,
    /// The high-side state directory.
    pub high: PathBuf,
}

impl Demo {
    pub fn new() -> Demo {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("demo");
        let out = airgate([OsStr::new("demo"), OsStr::new("--dir"), root.as_os_str()]);
        assert!(
            out.status.success(),
            "airgate demo failed: {}",
            stderr(&out)
        );
        // The demo creates the private TUF repository itself (its step 8).
        let high = root.join("high");
        assert!(high.join("tuf-repo/1.root.json").is_file());
        Demo {
            _tmp: tmp,
            root,
            high,
        }
    }

    /// A scratch directory inside the demo's temp dir.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.root.parent().unwrap().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

/// `airgate serve` running as a child process; killed when dropped.
pub struct Served {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    log: PathBuf,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Served {
    /// Starts `airgate serve --state STATE --listen 127.0.0.1:0 EXTRA...` and
    /// waits for the line announcing its address.
    pub fn start(state: &Path, extra: &[&str]) -> Served {
        Served::start_on(state, "127.0.0.1:0", extra)
    }

    /// Starts `airgate serve` listening on `listen`.
    pub fn start_on(state: &Path, listen: &str, extra: &[&str]) -> Served {
        let log = state.parent().unwrap().join(format!(
            "serve-{}.log",
            SERVERS.fetch_add(1, Ordering::Relaxed)
        ));
        let mut child = Command::new(env!("CARGO_BIN_EXE_airgate"))
            .arg("serve")
            .arg("--state")
            .arg(state)
            .args(["--listen", listen])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("failed to start airgate serve");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // The rest of stdout (the verification recipe) is collected, not dropped.
        let rest = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = rest.clone();
        std::thread::spawn(move || {
            for l in stdout.lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&l);
                s.push('\n');
            }
        });
        let Some(url) = line.trim().strip_prefix("airgate serve: listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "airgate serve did not start: stdout {line:?}, log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let addr: SocketAddr = url
            .strip_prefix("http://")
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("{url:?}: {e}"));
        Served {
            child,
            addr,
            base: url.to_owned(),
            log,
            stdout: rest,
        }
    }

    /// What the server printed on stdout after its "listening" line, once
    /// it holds `until` (waits up to 10 s).
    pub fn stdout_until(&self, until: &str) -> String {
        let start = Instant::now();
        loop {
            let text = self.stdout.lock().unwrap().clone();
            if text.contains(until) || start.elapsed() > Duration::from_secs(10) {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// GET `target`.
    pub fn get(&self, target: &str) -> Response {
        request(self.addr, "GET", target, &[], &[])
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (at most `limit`) for the process to exit.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "airgate serve did not exit within {limit:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static SERVERS: AtomicU32 = AtomicU32::new(0);

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

/// Raw bytes sent on a fresh connection; what came back (until close).
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    raw
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`); the
/// target is sent byte for byte, unnormalized.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (e.g. 401) before reading the whole body.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw, method == "HEAD")
}

fn parse_response(raw: &[u8], head_only: bool) -> Response {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no complete response head in {:?}",
                String::from_utf8_lossy(raw)
            )
        });
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let rest = &raw[end + 4..];
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body = if head_only || status == 304 {
        Vec::new()
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)
    } else if let Some(len) = find("content-length") {
        let len: usize = len.parse().unwrap();
        assert_eq!(rest.len(), len, "body length differs from Content-Length");
        rest.to_vec()
    } else {
        rest.to_vec()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
