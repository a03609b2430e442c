//! `airgate publish`: the read side as plain files, identical to what
//! `airgate serve` answers, incremental, and served by Debian's nginx to
//! the real clients.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{airgate, stderr};
use crate::conda::CondaWorld;
use crate::serve::support::Served;

fn publish(state: &Path, out: &Path) -> Value {
    let out = airgate([
        "publish",
        "--json",
        "--state",
        state.to_str().unwrap(),
        "--to",
        out.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every file a publish wrote is what `airgate serve` answers at that path.
fn same_as_served(tree: &Path, server: &Served) {
    let mut checked = 0;
    for path in walk(tree) {
        let rel = path
            .strip_prefix(tree)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        // The server re-signs timestamp.json when it starts (its refresher),
        // and renders its own dashboard and index.
        if rel.starts_with('.')
            || ["index.html", "artifacts/index.json", "tuf/timestamp.json"].contains(&rel.as_str())
        {
            continue;
        }
        let r = server.get(&format!("/{rel}"));
        // A content-addressed .sigs of an earlier version stays in the tree
        // (readers of the older repodata.json still find it); the server
        // answers only the current one.
        if r.status == 404 && rel.contains(".sigs.") {
            continue;
        }
        assert_eq!(r.status, 200, "/{rel}");
        assert!(
            r.body == std::fs::read(&path).unwrap(),
            "/{rel} differs from the served bytes"
        );
        checked += 1;
    }
    assert!(checked > 10, "only {checked} files compared");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn publish_writes_what_serve_answers_and_only_what_changed() {
    let w = CondaWorld::new();
    let high = &w.world.high;
    let out = airgate(["tuf", "init-private", "--state", high.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tree = w.world.root().join("published");
    let first = publish(high, &tree);
    assert_eq!(first["artifacts"], 3);
    assert_eq!(first["conda_packages"], 2);
    assert_eq!(first["unchanged"], 0);
    // Nothing changed: nothing is written.
    let again = publish(high, &tree);
    assert_eq!(again["written"], 0, "{again}");
    {
        let server = Served::start(high, &[]);
        same_as_served(&tree, &server);
    }
    // A new import: only what it changed is written; immutable files stay.
    let root_v1 = std::fs::metadata(tree.join("tuf/1.root.json"))
        .unwrap()
        .modified()
        .unwrap();
    let extra = w.world.artifacts.join("extra-1.0.tar.gz");
    std::fs::write(&extra, b"one more\n").unwrap();
    w.world
        .upstream
        .sign_files(&[extra], std::time::SystemTime::now())
        .unwrap();
    let (medium, out) = w.world.export("second.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = w.world.import(&[&medium], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let third = publish(high, &tree);
    assert_eq!(third["artifacts"], 4);
    let written = third["written"].as_u64().unwrap();
    assert!(
        written > 0 && written < first["written"].as_u64().unwrap(),
        "{third}"
    );
    assert_eq!(
        std::fs::metadata(tree.join("tuf/1.root.json"))
            .unwrap()
            .modified()
            .unwrap(),
        root_v1
    );
    let server = Served::start(high, &[]);
    same_as_served(&tree, &server);
    // An immutable file altered in the tree is refused, not overwritten.
    std::fs::remove_file(tree.join(".airgate-published.json")).unwrap();
    std::fs::write(tree.join("tuf/1.root.json"), b"{}").unwrap();
    let out = airgate([
        "publish",
        "--state",
        high.to_str().unwrap(),
        "--to",
        tree.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("immutable file would change"),
        "{}",
        stderr(&out)
    );
}

/// Debian's nginx serving a published tree with the configuration the
/// README gives; stopped when dropped.
pub struct Nginx {
    child: Child,
    pub base: String,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The nginx configuration the README documents, for `root` on `port`.
pub fn nginx_conf(root: &Path, port: u16, prefix: &Path) -> String {
    format!(
        r#"daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi; uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;
    types {{ application/json json; text/html html; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        # Written once, never changed: cache forever.
        location ~ ^/(tuf/targets/|tuf/[0-9]+\.|tlog/tile/) {{ add_header Cache-Control "public, max-age=31536000, immutable"; }}
        location ~ "\.sigs\.[0-9a-f]{{64}}$" {{ add_header Cache-Control "public, max-age=31536000, immutable"; }}
        location ~ /checkpoint$ {{ default_type text/plain; add_header Cache-Control "no-cache"; }}
        # Everything else changes in place: revalidate.
        location / {{ add_header Cache-Control "no-cache"; }}
    }}
}}
"#,
        root = root.display(),
        prefix = prefix.display(),
    )
}

impl Nginx {
    pub fn start(root: &Path, scratch: &Path) -> Nginx {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect(
                "Debian's nginx is required (apt-get install nginx; tests/run-all.sh installs it)",
            );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::create_dir_all(scratch).unwrap();
        let conf = scratch.join("nginx.conf");
        std::fs::write(&conf, nginx_conf(root, port, scratch)).unwrap();
        let child = Command::new(nginx)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(scratch)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("failed to start nginx");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nginx did not start: {}",
                std::fs::read_to_string(scratch.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

/// Real clients against nginx over a published tree: sigstore-python
/// bootstraps from the published TUF repository and verifies an artifact
/// and its VSA fetched from nginx; py-rattler reads the conda channel; the
/// tiles verify; then a new import is published and the clients see it.
#[test]
#[ignore = "interop: real clients, run by tests/run-all.sh"]
fn real_clients_read_a_published_tree_through_nginx() {
    let w = CondaWorld::new();
    let high = &w.world.high;
    let out = airgate(["tuf", "init-private", "--state", high.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tree = w.world.root().join("published");
    publish(high, &tree);
    let nginx = Nginx::start(&tree, &w.world.root().join("nginx"));
    let ca: Value = serde_json::from_slice(&std::fs::read(high.join("ca.json")).unwrap()).unwrap();
    let home = w.world.root().join("py-home");
    let script = r#"
import sys, json, hashlib, urllib.request, asyncio
from pathlib import Path
from sigstore.models import ClientTrustConfig, Bundle
from sigstore.verify import Verifier, policy
from rattler import Channel, fetch_repo_data, PackageName
from rattler.platform import Platform
base, root, identity, issuer, name, cache = sys.argv[1:7]
get = lambda path: urllib.request.urlopen(f"{base}/{path}").read()
config = ClientTrustConfig.from_tuf(f"{base}/tuf", offline=False, bootstrap_root=Path(root))
verifier = Verifier(trusted_root=config.trusted_root)
who = policy.Identity(identity=identity, issuer=issuer)
data, sigs = get(f"artifacts/{name}"), json.loads(get(f"artifacts/{name}.sigs"))
verifier.verify_artifact(data, Bundle.from_json(json.dumps(sigs[1])), who)
_, payload = verifier.verify_dsse(Bundle.from_json(json.dumps(sigs[2])), who)
assert json.loads(payload)["subject"][0]["digest"]["sha256"] == hashlib.sha256(data).hexdigest()
async def conda():
    repos = await fetch_repo_data(channels=[Channel(f"{base}/conda")], platforms=[Platform("linux-64"), Platform("noarch")], cache_path=cache, callback=None)
    return sorted(r.file_name for repo in repos for n in repo.package_names() for r in repo.load_records(PackageName(n)))
index = json.loads(get("artifacts/index.json"))
print(json.dumps({"verified": name, "conda": asyncio.run(conda()), "artifacts": [a["name"] for a in index["artifacts"]],
                  "checkpoint": get("tlog/checkpoint").decode()}))
"#;
    let run = |name: &str| -> Value {
        let out = Command::new(crate::common::python())
            .args(["-c", script])
            .arg(&nginx.base)
            .arg(high.join("tuf-repo/1.root.json"))
            .arg(ca["default_identity"].as_str().unwrap())
            .arg(ca["oidc_issuer"].as_str().unwrap())
            .arg(name)
            .arg(w.world.root().join("rattler-cache"))
            .env("HOME", &home)
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_DATA_HOME", home.join("data"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let before = run("conda/tool-1.0-h0_0.conda");
    assert_eq!(
        before["conda"],
        serde_json::json!(["data-2.1-0.tar.bz2", "tool-1.0-h0_0.conda"])
    );
    assert_eq!(before["artifacts"].as_array().unwrap().len(), 3);
    // The tiles nginx serves recompute the checkpoint's root.
    let cp = gateway::tlog::checkpoint::Checkpoint::parse(
        &gateway::tlog::checkpoint::SignedNote::parse(before["checkpoint"].as_str().unwrap())
            .unwrap()
            .text,
    )
    .unwrap();
    let tile = ureq_get(&format!(
        "{}{}",
        nginx.base,
        crate::tiles::tile_url("0", 0, cp.size)
    ));
    let leaves: Vec<[u8; 32]> = tile.chunks(32).map(|c| c.try_into().unwrap()).collect();
    assert_eq!(crate::tiles::mth(&leaves), cp.root_hash);

    // A new import, published again: the clients see it.
    let extra = w.world.artifacts.join("extra-1.0.tar.gz");
    std::fs::write(&extra, b"one more\n").unwrap();
    w.world
        .upstream
        .sign_files(&[extra], std::time::SystemTime::now())
        .unwrap();
    let (medium, out) = w.world.export("second.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(w.world.import(&[&medium], &[]).status.success());
    publish(high, &tree);
    let after = run("extra-1.0.tar.gz");
    assert_eq!(after["artifacts"].as_array().unwrap().len(), 4, "{after}");
    assert_ne!(after["checkpoint"], before["checkpoint"]);
    let log = std::fs::read_to_string(w.world.root().join("nginx/access.log")).unwrap();
    assert!(log.contains("GET /tuf/timestamp.json"), "{log}");
}

/// A plain GET through std (the response body).
fn ureq_get(url: &str) -> Vec<u8> {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let addr: std::net::SocketAddr = host.parse().unwrap();
    let r = crate::serve::support::request(addr, "GET", &format!("/{path}"), &[], b"");
    assert_eq!(r.status, 200, "{url}");
    r.body
}
