//! `snapshot` over loopback HTTP (a tiny in-test file server on 127.0.0.1),
//! then `verify_snapshot` offline.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tuf_repo::{snapshot, verify_snapshot, Error, Limits, PRODUCTION_ROOT};
use url::Url;

use crate::common::*;

/// Serves the files under a directory over HTTP/1.1 (GET only, one
/// connection at a time, `Connection: close`), until dropped.
struct FileServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    fn serve(root: &Path) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let root = root.to_owned();
        let thread = {
            let stop = stop.clone();
            let requests = requests.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let _ = respond(conn, &root, &requests);
                    }
                }
            })
        };
        FileServer {
            addr,
            stop,
            requests,
            thread: Some(thread),
        }
    }

    fn url(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).unwrap()
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(conn: TcpStream, root: &Path, requests: &Mutex<Vec<String>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    requests.lock().unwrap().push(path.clone());
    let rel = path.trim_start_matches('/');
    let file: Option<PathBuf> = (!rel.split('/').any(|s| s == ".." || s.is_empty()))
        .then(|| root.join(rel))
        .filter(|p| p.is_file());
    let mut conn = conn;
    match file.map(std::fs::read) {
        Some(Ok(body)) => {
            write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            conn.write_all(&body)?;
        }
        _ => write!(
            conn,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?,
    }
    conn.flush()
}

#[test]
fn http_round_trip_production() {
    let server = FileServer::serve(&prod());
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("medium/tuf");
    let summary = snapshot(
        &server.url(),
        PRODUCTION_ROOT,
        &out,
        as_of_fixtures(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(summary.root_chain, vec![12, 13, 14, 15]);
    assert!(server.requests().iter().any(|r| r == "/16.root.json"));
    drop(server);
    let v = verify_snapshot(
        PRODUCTION_ROOT,
        &out,
        as_of_fixtures(),
        None,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(
        v.trusted_root_json,
        read(prod().join(
            "targets/6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66.trusted_root.json"
        ))
    );
    assert_eq!(v.versions, summary.versions);
}

#[test]
fn http_round_trip_staging_with_its_own_root() {
    let server = FileServer::serve(&staging());
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("tuf");
    let root = read(staging().join("9.root.json"));
    let summary = snapshot(
        &server.url(),
        &root,
        &out,
        as_of_fixtures(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(summary.root_chain, (9..=14).collect::<Vec<_>>());
    let v = verify_snapshot(&root, &out, as_of_fixtures(), None, &Limits::default()).unwrap();
    assert_eq!(
        v.trusted_root_json,
        read(staging().join(
            "targets/44deb991d4bbf2150751ccee235d9810bce4434383c26d8898c1bcadbace6ed8.trusted_root.json"
        ))
    );
}

#[test]
fn http_mirror_without_timestamp_is_a_fetch_error() {
    let mirror = copy_repo(&prod());
    std::fs::remove_file(mirror.path().join("timestamp.json")).unwrap();
    let server = FileServer::serve(mirror.path());
    let work = tempfile::tempdir().unwrap();
    let err = snapshot(
        &server.url(),
        PRODUCTION_ROOT,
        &work.path().join("tuf"),
        as_of_fixtures(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Fetch { .. }), "{err}");
    assert!(!err.is_rejection());
}

#[test]
fn http_mirror_serving_endless_timestamp_is_refused() {
    let mirror = copy_repo(&prod());
    let path = mirror.path().join("timestamp.json");
    let mut data = read(&path);
    data.extend(std::iter::repeat_n(b' ', 2 << 20));
    std::fs::write(&path, data).unwrap();
    let server = FileServer::serve(mirror.path());
    let work = tempfile::tempdir().unwrap();
    let err = snapshot(
        &server.url(),
        PRODUCTION_ROOT,
        &work.path().join("tuf"),
        as_of_fixtures(),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::TooLarge { what, .. } if what == "timestamp.json"),
        "{err}"
    );
}
