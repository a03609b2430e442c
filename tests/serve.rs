//! `airgate serve` end to end: each test builds a demo state directory with a
//! private TUF repository, starts the server binary on 127.0.0.1 with an
//! ephemeral port, and drives it with real clients (python-tuf, sigstore-js,
//! headless Chromium) or a plain HTTP/1.1 client.

pub mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use gateway::bundle::TrustedRoot;
use gateway::demo::{SimulatedUpstream, SIMULATED_IDENTITY, SIMULATED_ISSUER};
use gateway::encoding::b64_decode;
use gateway::tlog::checkpoint::{Checkpoint, SignatureCheck, SignedNote};
use gateway::tlog::entry::set_payload;
use gateway::tlog::merkle;
use serde_json::Value;

use crate::common::{airgate, stderr};
use support::{request, Demo, Served};

/// The identity and issuer the demo's private CA signs with.
const AIRGATE_IDENTITY: &str = "https://airgate.internal/gateway";
const AIRGATE_ISSUER: &str = "https://oidc.airgate.internal";
/// The demo's artifact with a `/` in its name.
const NESTED: &str = "bin/app-linux-amd64";

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(gateway::crypto::sha256(data))
}

fn trusted_root(high: &Path) -> TrustedRoot {
    TrustedRoot::from_json(&std::fs::read(high.join("trusted_root.json")).unwrap()).unwrap()
}

/// Row counts and log size: what an import would change.
fn state_fingerprint(high: &Path) -> (i64, i64, i64, i64, Vec<String>) {
    let conn = rusqlite::Connection::open_with_flags(
        high.join("state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    let mut blobs: Vec<String> = walk(&high.join("blobs"));
    blobs.sort();
    (
        count("SELECT COUNT(*) FROM imports"),
        count("SELECT COUNT(*) FROM artifacts"),
        count("SELECT COUNT(*) FROM tlog_entries"),
        count("SELECT COUNT(*) FROM tlog_checkpoints"),
        blobs,
    )
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[test]
fn serve_artifacts_index_blobs_and_sigs() {
    let demo = Demo::new();
    // An artifact recorded without any bundle: its .sigs must be 200 [].
    {
        let conn = rusqlite::Connection::open(demo.high.join("state.db")).unwrap();
        conn.execute(
            "INSERT INTO artifacts (name, import_id, sha256, size, upstream_identity, upstream_issuer, \
             upstream_log_index, upstream_log_url, signer_identity, log_index, sigs) \
             SELECT 'unsigned/readme.txt', import_id, sha256, size, '', '', 0, '', '', 0, CAST('[]' AS BLOB) \
             FROM artifacts WHERE name = ?1",
            [NESTED],
        )
        .unwrap();
    }
    let server = Served::start(&demo.high, &[]);

    let index = server.get("/artifacts/");
    assert_eq!(index.status, 200);
    assert_eq!(index.header("content-type"), Some("application/json"));
    let index = index.json();
    let list = index["artifacts"].as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "app-1.0.0.spdx.json",
            "app-1.0.0.tar.gz",
            NESTED,
            "conda/app-1.0.0-0.conda",
            "unsigned/readme.txt"
        ]
    );
    assert_eq!(
        server.get("/artifacts").json(),
        index,
        "both index routes agree"
    );

    for entry in list {
        let name = entry["name"].as_str().unwrap();
        let blob = server.get(&format!("/artifacts/{name}"));
        assert_eq!(blob.status, 200, "{name}");
        assert_eq!(
            blob.header("content-type"),
            Some("application/octet-stream")
        );
        let digest = sha256_hex(&blob.body);
        assert_eq!(entry["sha256"], digest.as_str(), "{name}: index sha256");
        assert_eq!(entry["size"], blob.body.len(), "{name}: index size");
        assert_eq!(
            blob.header("etag").unwrap(),
            format!("\"sha256:{digest}\""),
            "{name}: ETag"
        );
        assert_eq!(
            blob.header("digest").unwrap(),
            format!(
                "sha-256={}",
                gateway::encoding::b64_encode(&gateway::crypto::sha256(&blob.body))
            )
        );
        let sigs = server.get(&format!("/artifacts/{name}.sigs"));
        assert_eq!(sigs.status, 200, "{name}.sigs");
        assert_eq!(entry["sigsSha256"], sha256_hex(&sigs.body).as_str());
        let array = sigs.json();
        let array = array.as_array().unwrap();
        if name == "unsigned/readme.txt" {
            assert!(array.is_empty(), "an artifact without bundles has .sigs []");
            continue;
        }
        // Upstream bundle first, airgate's last; the low side's file is what was served.
        let expected = if name.ends_with(".conda") { 4 } else { 3 };
        assert_eq!(
            array.len(),
            expected,
            "{name}: [upstream, airgate, airgate VSA] (and CEP 27 for a conda package)"
        );
        let original = std::fs::read(demo.root.join("low/artifacts").join(name)).unwrap();
        assert_eq!(
            blob.body, original,
            "{name}: served bytes are the imported bytes"
        );
        let digest = gateway::encoding::b64_encode(&gateway::crypto::sha256(&original));
        for bundle in &array[..2] {
            assert_eq!(
                bundle["messageSignature"]["messageDigest"]["digest"],
                digest.as_str()
            );
        }
        // The VSA: a DSSE in-toto statement whose subject is the served bytes.
        let envelope = &array[2]["dsseEnvelope"];
        assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
        let statement: Value = serde_json::from_slice(
            &gateway::encoding::b64_decode(envelope["payload"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(
            statement["predicateType"],
            "https://slsa.dev/verification_summary/v1"
        );
        assert_eq!(
            statement["subject"][0]["digest"]["sha256"],
            sha256_hex(&original).as_str()
        );
    }

    // Conditional GET and HEAD.
    let blob = server.get(&format!("/artifacts/{NESTED}"));
    let etag = blob.header("etag").unwrap().to_owned();
    let again = request(
        server.addr,
        "GET",
        &format!("/artifacts/{NESTED}"),
        &[("If-None-Match", &etag)],
        &[],
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let head = request(
        server.addr,
        "HEAD",
        &format!("/artifacts/{NESTED}"),
        &[],
        &[],
    );
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length").unwrap(),
        blob.body.len().to_string()
    );
    // Unknown names: 404 for the artifact and for its .sigs.
    for target in [
        "/artifacts/app-9.9.9.tar.gz",
        "/artifacts/app-9.9.9.tar.gz.sigs",
    ] {
        let r = server.get(target);
        assert_eq!(r.status, 404, "{target}");
        assert!(r.json()["error"]
            .as_str()
            .unwrap()
            .contains("app-9.9.9.tar.gz"));
    }
}

#[test]
fn serve_refuses_malformed_paths() {
    let demo = Demo::new();
    let server = Served::start(&demo.high, &[]);
    let secret_markers = [
        "PRIVATE KEY",
        demo.high.to_str().unwrap(),
        demo.root.to_str().unwrap(),
    ];
    let long_name = "a".repeat(300);
    let deep = "d/".repeat(20) + "x";
    let cases: Vec<(String, &[u16])> = vec![
        ("/artifacts/../tlog.key.pem".into(), &[400]),
        ("/artifacts/../../../etc/passwd".into(), &[400]),
        ("/artifacts/%2e%2e/tlog.key.pem".into(), &[400]),
        ("/artifacts/%2E%2E/%2E%2E/etc/passwd".into(), &[400]),
        ("/artifacts/bin/%2e%2e/%2e%2e/state.db".into(), &[400]),
        ("/artifacts/..%2ftlog.key.pem".into(), &[400]),
        ("/artifacts/%2fetc%2fpasswd".into(), &[400]),
        ("/artifacts//etc/passwd".into(), &[400]),
        ("/artifacts/./app-1.0.0.tar.gz".into(), &[400]),
        ("/artifacts/bin%00/app".into(), &[400]),
        ("/artifacts/%ff%fe".into(), &[400]),
        (format!("/artifacts/{long_name}"), &[400]),
        (format!("/artifacts/{long_name}.sigs"), &[400]),
        (format!("/artifacts/{deep}"), &[400]),
        ("/tuf/..%2fca.json".into(), &[400]),
        ("/tuf/%2e%2e".into(), &[400]),
        ("/tuf/.airgate-tuf-stage-x".into(), &[400]),
        ("/tuf/targets/..%2f..%2ftlog.key.pem".into(), &[400]),
        ("/tuf/targets/%2e%2e".into(), &[400]),
        ("/tuf/../tlog.key.pem".into(), &[404]),
        ("/tuf/tuf-keys/timestamp.pem".into(), &[404]),
        ("/tuf/config.json".into(), &[404]),
        ("/tuf/ca.json".into(), &[404]),
        ("/tlog.key.pem".into(), &[404]),
        (format!("/artifacts/{}", "b".repeat(8000)), &[414]),
    ];
    for (target, expected) in &cases {
        let r = server.get(target);
        assert!(
            expected.contains(&r.status),
            "{}: status {} (expected {expected:?}): {}",
            &target[..target.len().min(80)],
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        let body = r.json();
        let message = body["error"].as_str().expect("JSON error message");
        for marker in &secret_markers {
            assert!(
                !message.contains(marker),
                "{target}: the error leaks {marker:?}: {message}"
            );
        }
    }
    // The files those paths aimed at exist (so the refusals above matter),
    // and a well-formed request still works.
    assert!(demo.high.join("tlog.key.pem").is_file());
    assert_eq!(server.get("/artifacts/app-1.0.0.tar.gz").status, 200);
    assert_eq!(server.get("/tuf/1.root.json").status, 200);
}

#[test]
#[ignore = "interop: real clients, run by tests/run-all.sh"]
fn serve_python_tuf_updater_downloads_trusted_root() {
    let demo = Demo::new();
    let server = Served::start(&demo.high, &[]);
    let root = server.get("/tuf/1.root.json");
    assert_eq!(root.status, 200);
    assert_eq!(
        root.body,
        std::fs::read(demo.high.join("tuf-repo/1.root.json")).unwrap()
    );
    let client = demo.scratch("python-tuf");
    let metadata = client.join("metadata");
    let targets = client.join("targets");
    std::fs::create_dir_all(&metadata).unwrap();
    std::fs::create_dir_all(&targets).unwrap();
    std::fs::write(metadata.join("root.json"), &root.body).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tuf-repo/tests/tuf/ngclient.py");
    let out = Command::new(crate::common::python())
        .arg(&script)
        .arg(&metadata)
        .arg(format!("{}/tuf/", server.base))
        .arg(&targets)
        .arg("trusted_root.json")
        .output()
        .expect("the interop venv's python (tests/run-all.sh makes it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python-tuf failed: {stdout} {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    let downloaded = std::fs::read(report["path"].as_str().unwrap()).unwrap();
    assert_eq!(
        downloaded,
        std::fs::read(demo.high.join("trusted_root.json")).unwrap(),
        "python-tuf downloaded our trusted_root.json"
    );
    // The server re-signed the timestamp at start (init-private published v1).
    assert!(
        report["versions"]["timestamp"].as_u64().unwrap() >= 2,
        "{report}"
    );
    // python-tuf fetched the consistent-snapshot target path from /tuf/targets/.
    assert!(server.log().contains(&format!(
        "/tuf/targets/{}.trusted_root.json",
        report["sha256"].as_str().unwrap()
    )));
}

/// Runs `verify-tuf.mjs` against `base` with the TUF cache `cache`.
fn sigstore_js_over_tuf(base: &str, root_json: &Path, cache: &Path) -> Value {
    sigstore_js_over_tuf_for(base, NESTED, root_json, cache)
}

/// Runs `verify-tuf.mjs` for the served artifact `name` (airgate's
/// identity) with the TUF cache `cache`.
pub fn sigstore_js_over_tuf_for(base: &str, name: &str, root_json: &Path, cache: &Path) -> Value {
    let out = Command::new("node")
        .arg(crate::common::js_dir().join("verify-tuf.mjs"))
        .arg(base)
        .arg(name)
        .arg(root_json)
        .arg(cache)
        .args([AIRGATE_IDENTITY, AIRGATE_ISSUER])
        .output()
        .expect("node must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify-tuf.mjs failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

/// sigstore-js bootstraps from root v1 and caches the metadata; the root is
/// rotated (a new offline root key from `tuf new-key`, new online keys);
/// the same client follows the chain to root v2 on its next verify, and
/// still verifies the artifact and refuses the tampered one.
#[test]
#[ignore = "interop: real clients, run by tests/run-all.sh"]
fn sigstore_js_follows_a_private_tuf_root_rotation() {
    let demo = Demo::new();
    let root_v1 = demo.high.join("tuf-repo/1.root.json");
    let cache = demo.scratch("sigstore-js-cache");
    {
        let server = Served::start(&demo.high, &[]);
        let before = sigstore_js_over_tuf(&server.base, &root_v1, &cache);
        assert_eq!(before["bundles"][1]["ok"], true, "{before}");
    }
    let key = demo.scratch("offline-keys").join("root-2.pem");
    let out = crate::common::airgate(["tuf", "new-key", "--out", key.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let high = demo.high.to_str().unwrap();
    let current = demo.high.join("tuf-keys/root-1.pem");
    let out = crate::common::airgate([
        "tuf",
        "rotate-root",
        "--state",
        high,
        "--current-root-key",
        current.to_str().unwrap(),
        "--new-root-key",
        key.to_str().unwrap(),
        "--rotate-online-keys",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("version 1 -> 2"));
    // The retired root key cannot rotate again: refused, nothing written.
    let out = crate::common::airgate([
        "tuf",
        "rotate-root",
        "--state",
        high,
        "--current-root-key",
        current.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a root key of root version 2"));
    assert!(!demo.high.join("tuf-repo/3.root.json").exists());

    let server = Served::start(&demo.high, &[]);
    let after = sigstore_js_over_tuf(&server.base, &root_v1, &cache);
    assert_eq!(after["bundles"][1]["ok"], true, "{after}\n{}", server.log());
    assert_eq!(after["tampered"]["ok"], false, "{after}");
    assert!(
        server.log().contains("/tuf/2.root.json"),
        "{}",
        server.log()
    );
}

#[test]
#[ignore = "interop: real clients, run by tests/run-all.sh"]
fn serve_sigstore_js_verifies_through_private_tuf() {
    let demo = Demo::new();
    let server = Served::start(&demo.high, &[]);
    let cache = demo.scratch("sigstore-js-cache");
    let report = sigstore_js_over_tuf(
        &server.base,
        &demo.high.join("tuf-repo/1.root.json"),
        &cache,
    );
    assert_eq!(report["artifactStatus"], 200, "{report}");
    assert_eq!(report["sigsStatus"], 200, "{report}");
    let bundles = report["bundles"].as_array().unwrap();
    assert_eq!(bundles.len(), 3, "{report}");
    // airgate's bundle verifies against the trusted root sigstore-js got from our TUF repository ...
    assert_eq!(bundles[1]["ok"], true, "airgate's bundle: {report}");
    // ... which holds only the private stack: the upstream bundle does not.
    assert_eq!(bundles[0]["ok"], false, "upstream bundle: {report}");
    // And a tampered artifact is rejected.
    assert_eq!(report["tampered"]["ok"], false, "{report}");
    // airgate's attestation (the VSA) verifies through the same TUF root, its
    // subject is the artifact, and a one-byte signature tamper is rejected.
    assert_eq!(
        report["attestation"]["ok"],
        true,
        "{report}\n{}",
        server.log()
    );
    assert_eq!(
        report["attestationPredicateType"],
        "https://slsa.dev/verification_summary/v1"
    );
    assert_eq!(report["attestationSubjectMatches"], true, "{report}");
    assert_eq!(report["attestationTampered"]["ok"], false, "{report}");
    // The trusted root came through TUF: the client cached it and the metadata.
    let cached: Vec<&str> = report["cache"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for file in [
        "timestamp.json",
        "snapshot.json",
        "targets.json",
        "root.json",
    ] {
        assert!(
            cached.iter().any(|c| c.ends_with(&format!("/{file}"))),
            "{file} not in the TUF cache: {cached:?}"
        );
    }
    let root_in_cache = cached
        .iter()
        .find(|c| c.ends_with("targets/trusted_root.json"))
        .unwrap_or_else(|| panic!("trusted_root.json not in the TUF cache: {cached:?}"));
    assert_eq!(
        std::fs::read(cache.join(root_in_cache)).unwrap(),
        std::fs::read(demo.high.join("trusted_root.json")).unwrap()
    );
    let log = server.log();
    assert!(log.contains("uri=\"/tuf/timestamp.json\""), "{log}");
    assert!(log.contains(".trusted_root.json\""), "{log}");
}

#[test]
fn serve_log_proofs_verify_against_the_served_checkpoint() {
    let demo = Demo::new();
    let server = Served::start(&demo.high, &[]);
    let root = trusted_root(&demo.high);
    let tlog = &root.tlogs[0];
    let key_id = tlog.key.key_id();
    let hint: [u8; 4] = key_id[..4].try_into().unwrap();

    // The checkpoint: signed by the log key of our trusted root.
    let text = server.get("/checkpoint");
    assert_eq!(text.status, 200);
    assert!(text
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let note = SignedNote::parse(&text.text()).unwrap();
    assert_eq!(
        note.verify(&tlog.checkpoint_name(), hint, &tlog.key),
        SignatureCheck::Valid
    );
    let checkpoint = Checkpoint::parse(&note.text).unwrap();
    assert_eq!(
        checkpoint.size, 12,
        "the demo imported four artifacts, each signed and attested (the conda package also with CEP 27), and an image (.sig payload, sign statement, VSA)"
    );

    // Rekor LogInfo agrees with it.
    let info = server.get("/api/v1/log").json();
    assert_eq!(info["treeSize"], checkpoint.size);
    assert_eq!(info["rootHash"], hex::encode(checkpoint.root_hash).as_str());
    assert_eq!(info["signedTreeHead"], text.text().as_str());
    assert!(checkpoint
        .origin
        .ends_with(&format!(" - {}", info["treeID"].as_str().unwrap())));
    assert_eq!(
        server.get("/api/v1/log/publicKey").text(),
        tlog.key.to_pem(),
        "publicKey serves the trusted root's log key"
    );

    // Every entry: inclusion proof against the served checkpoint, and its SET.
    let mut leaves = Vec::new();
    for index in 0..checkpoint.size {
        let r = server.get(&format!("/api/v1/log/entries?logIndex={index}"));
        assert_eq!(r.status, 200);
        let map = r.json();
        let (uuid, entry) = map.as_object().unwrap().iter().next().unwrap();
        let body = b64_decode(entry["body"].as_str().unwrap()).unwrap();
        let leaf = merkle::leaf_hash(&body);
        assert_eq!(uuid, &hex::encode(leaf));
        assert_eq!(entry["logIndex"], index);
        assert_eq!(entry["logID"], hex::encode(key_id).as_str());
        let proof = &entry["verification"]["inclusionProof"];
        assert_eq!(proof["checkpoint"], text.text().as_str());
        assert_eq!(proof["treeSize"], checkpoint.size);
        assert_eq!(
            proof["rootHash"],
            hex::encode(checkpoint.root_hash).as_str()
        );
        let hashes: Vec<merkle::Hash> = proof["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                hex::decode(h.as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap()
            })
            .collect();
        merkle::verify_inclusion(
            index,
            checkpoint.size,
            &leaf,
            &hashes,
            &checkpoint.root_hash,
        )
        .unwrap();
        // A wrong sibling does not verify: the check above can fail.
        if let Some(first) = hashes.first() {
            let mut bad = hashes.clone();
            bad[0] = merkle::node_hash(first, first);
            assert!(merkle::verify_inclusion(
                index,
                checkpoint.size,
                &leaf,
                &bad,
                &checkpoint.root_hash
            )
            .is_err());
        }
        let set = b64_decode(
            entry["verification"]["signedEntryTimestamp"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let payload = set_payload(
            &body,
            entry["integratedTime"].as_i64().unwrap(),
            &key_id,
            index,
        );
        assert!(
            tlog.key.verify_default(&payload, &set),
            "SET of entry {index}"
        );
        leaves.push((leaf, body));
    }

    // The entry of the nested artifact is the one its airgate bundle names.
    let sigs = server.get(&format!("/artifacts/{NESTED}.sigs")).json();
    let ours = &sigs.as_array().unwrap()[1];
    let log_index: u64 = ours["verificationMaterial"]["tlogEntries"][0]["logIndex"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = serde_json::from_slice(&leaves[log_index as usize].1).unwrap();
    let blob = server.get(&format!("/artifacts/{NESTED}"));
    assert_eq!(
        body["spec"]["data"]["hash"]["value"],
        sha256_hex(&blob.body).as_str()
    );

    // Consistency proofs between every pair of sizes.
    let mut tree = merkle::MemoryTree::new();
    for (leaf, _) in &leaves {
        tree.push(*leaf);
    }
    for first in 1..=checkpoint.size {
        for last in first..=checkpoint.size {
            let r = server
                .get(&format!(
                    "/api/v1/log/proof?firstSize={first}&lastSize={last}"
                ))
                .json();
            let hashes: Vec<merkle::Hash> = r["hashes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    hex::decode(h.as_str().unwrap())
                        .unwrap()
                        .try_into()
                        .unwrap()
                })
                .collect();
            let new_root = tree.root(last).unwrap();
            assert_eq!(r["rootHash"], hex::encode(new_root).as_str());
            merkle::verify_consistency(first, last, &tree.root(first).unwrap(), &new_root, &hashes)
                .unwrap();
        }
    }
    // Out-of-range requests are refused with a reason.
    for (target, status) in [
        ("/api/v1/log/entries?logIndex=12", 404),
        ("/api/v1/log/entries?logIndex=-1", 400),
        ("/api/v1/log/entries?logIndex=1e3", 400),
        ("/api/v1/log/entries", 400),
        ("/api/v1/log/proof?firstSize=0&lastSize=2", 400),
        ("/api/v1/log/proof?firstSize=3&lastSize=2", 400),
        ("/api/v1/log/proof?firstSize=1&lastSize=13", 400),
    ] {
        let r = server.get(target);
        assert_eq!(r.status, status, "{target}");
        assert!(r.json()["error"].is_string());
    }
}

/// Headless Chromium with a throwaway profile.
struct Chromium {
    profile: PathBuf,
}

impl Chromium {
    const PATH: &'static str = "/usr/bin/chromium";

    fn new(demo: &Demo) -> Chromium {
        assert!(
            Path::new(Self::PATH).exists(),
            "headless Chromium is required (apt-get install chromium; tests/run-all.sh installs it)"
        );
        Chromium {
            profile: demo.scratch("chromium-profile"),
        }
    }

    fn run(&self, args: &[String]) -> Vec<u8> {
        let out = Command::new(Self::PATH)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", self.profile.display()))
            .args(args)
            .output()
            .expect("failed to run chromium");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The DOM of `url` after rendering.
    fn dump(&self, url: &str) -> String {
        String::from_utf8(self.run(&["--dump-dom".into(), url.into()])).unwrap()
    }

    /// A 1280 px wide screenshot of `url` (1800 px tall, so every table of
    /// the demo's pages is in it), decoded: (width, height, RGBA rows).
    fn screenshot(&self, url: &str, file: &Path) -> (u32, u32, Vec<u8>) {
        let _ = std::fs::remove_file(file);
        self.run(&[
            "--window-size=1280,1800".into(),
            format!("--screenshot={}", file.display()),
            url.into(),
        ]);
        let mut decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(file).unwrap()));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::ALPHA);
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(frame.color_type, png::ColorType::Rgba, "{frame:?}");
        pixels.truncate(frame.buffer_size());
        (frame.width, frame.height, pixels)
    }
}

/// The page fits a 1280 px wide window: the screenshot is 1280 wide and its
/// rightmost columns (inside the body's margin) are all background white, so
/// no table, cell border or text runs into the right edge or past it.
fn assert_fits_1280(chromium: &Chromium, url: &str, file: &Path) {
    const BAND: u32 = 8;
    let (width, height, rgba) = chromium.screenshot(url, file);
    assert_eq!(width, 1280, "{url}: screenshot width");
    for y in 0..height {
        for x in width - BAND..width {
            let i = ((y * width + x) * 4) as usize;
            assert_eq!(
                &rgba[i..i + 3],
                &[255, 255, 255],
                "{url} overflows 1280 px: pixel ({x}, {y}) at the right edge is not background (see {})",
                file.display()
            );
        }
    }
}

/// A second medium with one byte of its artifact changed in transit.
fn tampered_second_medium(demo: &Demo) -> PathBuf {
    let mut tar = std::fs::read(second_medium(demo)).unwrap();
    let needle = b"a second release";
    let at = tar.windows(needle.len()).position(|w| w == needle).unwrap();
    tar[at] = b'A';
    let tampered = demo.scratch("transfer-tampered").join("media.tar");
    std::fs::write(&tampered, tar).unwrap();
    tampered
}

/// One artifact's log indexes as the state records them: (ours, upstream).
fn log_indexes(high: &Path, name: &str) -> (i64, i64) {
    let conn = rusqlite::Connection::open_with_flags(
        high.join("state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row(
        "SELECT log_index, upstream_log_index FROM artifacts WHERE name = ?1",
        [name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

fn assert_contains_all(page: &str, dom: &str, expected: &[&str]) {
    for e in expected {
        assert!(dom.contains(e), "{page} lacks {e:?}:\n{dom}");
    }
}

#[test]
#[ignore = "interop: real clients, run by tests/run-all.sh"]
fn serve_dashboard_in_headless_chromium() {
    let demo = Demo::new();
    // A refused import first: a medium altered in transit.
    let out = airgate([
        "import".as_ref(),
        "--state".as_ref(),
        demo.high.as_os_str(),
        tampered_second_medium(&demo).as_os_str(),
    ] as [&std::ffi::OsStr; 4]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let server = Served::start(&demo.high, &[]);
    let chromium = Chromium::new(&demo);
    let dump = |target: &str| chromium.dump(&format!("{}{target}", server.base));
    let dom = dump("/");
    let nested_sha =
        sha256_hex(&std::fs::read(demo.root.join("low/artifacts").join(NESTED)).unwrap());
    assert_contains_all(
        "the dashboard",
        &dom,
        &[
            "airgate high side",
            NESTED,
            "app-1.0.0.tar.gz",
            "app-1.0.0.spdx.json",
            nested_sha.as_str(),
            SIMULATED_IDENTITY,
            SIMULATED_ISSUER,
            AIRGATE_IDENTITY,
            "demo-low-side",
            "tlog.airgate.internal",
            "timestamp.json</a> version",
            &format!("href=\"/dashboard/artifact/{NESTED}\""),
            "href=\"/dashboard/import/1\"",
        ],
    );
    assert_eq!(dom.matches("class=\"artifact\"").count(), 4, "{dom}");
    assert!(dom.contains("id=\"tree-size\">12<"), "{dom}");
    // The refusal is listed, with the reason the importer recorded.
    assert_eq!(dom.matches("class=\"refusal\"").count(), 1, "{dom}");
    assert!(dom.contains("media.tar"), "{dom}");
    assert!(dom.contains("tool-2.0.0.tar.gz"), "{dom}");

    dashboard_search_is_escaped(&server, &dump, &nested_sha);
    dashboard_detail_pages(&demo, &dump, &nested_sha);

    for (name, target) in [
        ("home", "/".to_owned()),
        ("artifact", format!("/dashboard/artifact/{NESTED}")),
        ("import", "/dashboard/import/1".to_owned()),
    ] {
        let file = demo.scratch("screenshots").join(format!("{name}.png"));
        assert_fits_1280(&chromium, &format!("{}{target}", server.base), &file);
    }
}

fn dashboard_search_is_escaped(server: &Served, dump: &dyn Fn(&str) -> String, nested_sha: &str) {
    // Search by name, then by digest prefix.
    let dom = dump("/?q=linux");
    assert_eq!(dom.matches("class=\"artifact\"").count(), 1, "{dom}");
    assert!(dom.contains(NESTED));
    let dom = dump(&format!("/?q=sha256:{}", &nested_sha[..12]));
    assert_eq!(dom.matches("class=\"artifact\"").count(), 1, "{dom}");
    assert!(dom.contains(NESTED));
    let dom = dump("/?q=no-such-thing");
    assert_eq!(dom.matches("class=\"artifact\"").count(), 0, "{dom}");

    // A search is escaped, not interpreted: no element is injected.
    let dom = dump("/?q=%3Cb%20id%3Dinjected%3Ex%3C%2Fb%3E");
    assert!(!dom.contains("id=\"injected\""), "{dom}");
    assert!(dom.contains("&lt;b id=injected&gt;"), "{dom}");
    let raw = server.get("/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    assert!(!raw.text().contains("<script>"));
    assert!(raw
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
}

fn dashboard_detail_pages(demo: &Demo, dump: &dyn Fn(&str) -> String, nested_sha: &str) {
    let (ours, upstream) = log_indexes(&demo.high, NESTED);
    let dom = dump(&format!("/dashboard/artifact/{NESTED}"));
    assert_contains_all(
        "the chain of custody",
        &dom,
        &[
            nested_sha,
            SIMULATED_IDENTITY,
            SIMULATED_ISSUER,
            "https://rekor.simulated.invalid",
            &format!("id=\"upstream-log-index\">{upstream}<"),
            "exporter <span class=\"exporter\">demo-low-side</span>",
            "manifest signature verified",
            "stored report records it as accepted",
            AIRGATE_IDENTITY,
            &format!("logIndex={ours}\">{ours}</a>"),
            "signed entry timestamp of entry",
            "latest checkpoint (size 12) signed by tlog.airgate.internal",
            "inclusion proof verified against checkpoint of size 12",
        ],
    );
    assert!(!dom.contains("class=\"fail\""), "{dom}");
    let steps: Vec<usize> = ["upstream", "low-side", "medium", "high-side", "airgate"]
        .iter()
        .map(|id| dom.find(&format!("<li id=\"{id}\"")).unwrap())
        .collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");

    let dom = dump("/dashboard/import/1");
    assert_contains_all(
        "the import page",
        &dom,
        &[
            "Import #1",
            "demo-low-side",
            NESTED,
            "app-1.0.0.tar.gz",
            SIMULATED_IDENTITY,
            "checkpoint of size 12 signed by tlog.airgate.internal",
            "airgate imports show 1",
        ],
    );
    assert_eq!(dom.matches("class=\"report-artifact\"").count(), 4, "{dom}");
    assert_eq!(dom.matches(">accepted<").count(), 4, "{dom}");
}

#[test]
fn serve_dashboard_pages_refuse_bad_ids_and_show_a_failed_proof() {
    let demo = Demo::new();
    let target = format!("/dashboard/artifact/{NESTED}");
    {
        let server = Served::start(&demo.high, &[]);
        let page = server.get(&target);
        assert_eq!(page.status, 200, "{}", page.text());
        assert!(page
            .text()
            .contains("inclusion proof verified against checkpoint of size 12"));
        let long_id = "9".repeat(30);
        let cases: [(&str, u16, &str); 9] = [
            ("/dashboard/artifact/no-such.tgz", 404, "no artifact named"),
            ("/dashboard/artifact/..%2fstate.db", 400, "is refused"),
            (
                "/dashboard/artifact/%3Cb%3Ex",
                400,
                "&quot;&lt;b&gt;x&quot;",
            ),
            ("/dashboard/import/999", 404, "no import #999"),
            ("/dashboard/import/0", 400, "not an import number"),
            ("/dashboard/import/1x", 400, "not an import number"),
            ("/dashboard/import/-1", 400, "not an import number"),
            (
                "/dashboard/import/%3Cscript%3E",
                400,
                "&quot;&lt;script&gt;&quot;",
            ),
            (
                &format!("/dashboard/import/{long_id}"),
                400,
                "not an import number",
            ),
        ];
        for (path, status, message) in cases {
            let r = server.get(path);
            let body = r.text();
            assert_eq!(r.status, status, "{path}: {body}");
            assert!(
                r.header("content-type").unwrap().starts_with("text/html"),
                "{path}"
            );
            assert!(r
                .header("content-security-policy")
                .unwrap()
                .starts_with("default-src 'none'"));
            assert!(body.contains(message), "{path}: {body}");
            assert!(
                !body.contains("<script>") && !body.contains("<b>"),
                "{body}"
            );
            assert!(!body.contains(demo.high.to_str().unwrap()), "{body}");
        }
    }
    // Alter a stored tree node the entry's proof needs: the page must say the
    // proof failed, computed from the log, never that it verified.
    let (ours, _) = log_indexes(&demo.high, NESTED);
    let conn = rusqlite::Connection::open(demo.high.join("state.db")).unwrap();
    conn.execute_batch("DROP TRIGGER tlog_nodes_no_update")
        .unwrap();
    conn.execute(
        "UPDATE tlog_nodes SET hash = zeroblob(32) WHERE NOT (level = 0 AND idx = ?1)",
        [ours],
    )
    .unwrap();
    drop(conn);
    let server = Served::start(&demo.high, &[]);
    let page = server.get(&target).text();
    assert!(
        page.contains(&format!(
            "inclusion proof of entry {ours} failed against checkpoint of size 12"
        )),
        "{page}"
    );
    assert!(!page.contains("inclusion proof verified"), "{page}");
    assert!(
        page.contains("<li id=\"airgate\" class=\"broken\">"),
        "{page}"
    );
    // The checkpoint itself is still the log's, and says so.
    assert!(
        page.contains("latest checkpoint (size 12) signed by"),
        "{page}"
    );
}

/// A second medium from the demo's simulated upstream and exporter key.
fn second_medium(demo: &Demo) -> PathBuf {
    let upstream_dir = demo.root.join("upstream");
    let upstream = SimulatedUpstream {
        ca_dir: upstream_dir.join("sigstore"),
        tuf_repo: upstream_dir.join("tuf"),
        tuf_keys: upstream_dir.join("tuf-keys"),
        tuf_root: upstream_dir.join("tuf/1.root.json"),
    };
    let artifacts = demo.scratch("artifacts-2");
    let file = artifacts.join("tool-2.0.0.tar.gz");
    std::fs::write(
        &file,
        b"a second release, carried over by HTTP\n".repeat(100),
    )
    .unwrap();
    upstream.sign_files(&[file], SystemTime::now()).unwrap();
    let medium = demo.scratch("transfer-2").join("media.tar");
    let out = airgate([
        "export".as_ref(),
        "--policy".as_ref(),
        demo.root.join("low/policy.toml").as_os_str(),
        "--artifacts".as_ref(),
        artifacts.as_os_str(),
        "--key".as_ref(),
        demo.root
            .join("low/exporter-key/exporter.key.pem")
            .as_os_str(),
        "--exporter".as_ref(),
        "demo-low-side".as_ref(),
        "--out".as_ref(),
        medium.as_os_str(),
    ] as [&std::ffi::OsStr; 11]);
    assert!(out.status.success(), "export failed: {}", stderr(&out));
    medium
}

#[test]
fn serve_import_requires_the_bearer_token_and_refusals_change_nothing() {
    let demo = Demo::new();
    let medium = std::fs::read(second_medium(&demo)).unwrap();
    let token = "s3cret-token-0123456789abcdef";
    let token_file = demo.scratch("secrets").join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let before = state_fingerprint(&demo.high);
    let timestamp_before = std::fs::read(demo.high.join("tuf-repo/timestamp.json")).unwrap();

    // Without a configured token the endpoint does not exist.
    {
        let server = Served::start(&demo.high, &[]);
        let r = request(server.addr, "POST", "/api/v1/import", &[], &medium);
        assert_eq!(r.status, 404);
        let r = request(
            server.addr,
            "POST",
            "/api/v1/import",
            &[("Authorization", &format!("Bearer {token}"))],
            &medium,
        );
        assert_eq!(r.status, 404, "no token configured: no writes at all");
        assert!(r.json()["error"].as_str().unwrap().contains("--token-file"));
    }
    assert_eq!(state_fingerprint(&demo.high), before);

    let server = Served::start(
        &demo.high,
        &[
            "--token-file",
            token_file.to_str().unwrap(),
            "--tuf-refresh-interval",
            "12h",
        ],
    );
    let timestamp_served = server.get("/tuf/timestamp.json").body;
    // Warm the server's caches: they must not outlive the import below.
    assert_eq!(server.get("/api/v1/log").json()["treeSize"], 12);
    let checkpoint_before = server.get("/checkpoint").text();
    assert_eq!(
        server.get("/artifacts/").json()["artifacts"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(server.get("/artifacts/tool-2.0.0.tar.gz.sigs").status, 404);
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong-token-0123456789abcdef")],
        vec![("Authorization", "Bearer s3cret-token-0123456789abcde")],
        vec![("Authorization", "Basic czNjcmV0LXRva2Vu")],
        vec![("Authorization", token)],
    ] {
        let r = request(server.addr, "POST", "/api/v1/import", &headers, &medium);
        assert_eq!(r.status, 401, "{headers:?}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"airgate\"")
        );
        assert!(r.json()["error"].is_string());
    }
    // Nothing changed: no import, artifact, log entry, checkpoint or blob, and
    // the TUF repository was not re-published.
    assert_eq!(state_fingerprint(&demo.high), before);
    assert_eq!(server.get("/tuf/timestamp.json").body, timestamp_served);
    assert_eq!(server.get("/artifacts/tool-2.0.0.tar.gz").status, 404);
    assert!(server
        .log()
        .contains("import refused: missing or invalid bearer token"));

    // With the token: a medium that is not a medium is refused (422), state unchanged.
    let auth = format!("Bearer {token}");
    let r = request(
        server.addr,
        "POST",
        "/api/v1/import",
        &[("Authorization", &auth)],
        b"this is not a tar",
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let message = r.json()["error"].as_str().unwrap().to_owned();
    assert!(!message.contains(demo.high.to_str().unwrap()), "{message}");
    assert_eq!(state_fingerprint(&demo.high), before);

    // The real medium imports, is served at once, and re-publishes TUF.
    let r = request(
        server.addr,
        "POST",
        "/api/v1/import",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-tar"),
        ],
        &medium,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let report = r.json();
    assert_eq!(report["alreadyImported"], false);
    assert_eq!(report["artifacts"][0]["name"], "tool-2.0.0.tar.gz");
    assert_eq!(report["artifacts"][0]["decision"], "accepted", "{report}");
    let blob = server.get("/artifacts/tool-2.0.0.tar.gz");
    assert_eq!(blob.status, 200);
    assert_eq!(
        blob.body,
        b"a second release, carried over by HTTP\n".repeat(100)
    );
    assert_eq!(
        server
            .get("/artifacts/tool-2.0.0.tar.gz.sigs")
            .json()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(server.get("/api/v1/log").json()["treeSize"], 14);
    assert_ne!(server.get("/checkpoint").text(), checkpoint_before);
    assert_eq!(
        server.get("/artifacts/").json()["artifacts"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_ne!(
        std::fs::read(demo.high.join("tuf-repo/timestamp.json")).unwrap(),
        timestamp_before
    );
    let after = state_fingerprint(&demo.high);
    assert_eq!(
        (after.0, after.1, after.2),
        // One import, one artifact, its signature and its VSA.
        (before.0 + 1, before.1 + 1, before.2 + 2)
    );

    // The same medium again is reported, not re-imported.
    let r = request(
        server.addr,
        "POST",
        "/api/v1/import",
        &[("Authorization", &auth)],
        &medium,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["alreadyImported"], true);
    assert_eq!(state_fingerprint(&demo.high), after);
}

#[test]
fn serve_rate_limits_and_shuts_down_gracefully() {
    let demo = Demo::new();
    let mut server = Served::start(&demo.high, &["--rate-limit", "2", "--rate-burst", "5"]);
    let statuses: Vec<u16> = (0..12).map(|_| server.get("/checkpoint").status).collect();
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let limited = (0..3)
        .map(|_| server.get("/checkpoint"))
        .find(|r| r.status == 429)
        .expect("still limited");
    assert!(
        limited
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert!(limited.json()["error"]
        .as_str()
        .unwrap()
        .contains("too many requests"));

    let status = server.terminate(Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}");
    let log = server.log();
    assert!(log.contains("shutdown signal received"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

/// Reads from `stream` until the server closes it (EOF or reset); returns
/// how long that took and what was received.
fn time_until_closed(
    mut stream: std::net::TcpStream,
    since: std::time::Instant,
) -> (Duration, String) {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("connection still open after 20s: {e}"),
        }
    }
    (since.elapsed(), String::from_utf8_lossy(&got).into_owned())
}

#[test]
fn serve_drops_slow_header_and_idle_connections_freeing_their_slots() {
    use std::io::Write;
    let demo = Demo::new();
    let server = Served::start(
        &demo.high,
        &[
            "--max-connections",
            "2",
            "--header-read-timeout",
            "1s",
            "--idle-timeout",
            "3s",
        ],
    );
    let start = std::time::Instant::now();
    // Slot 1: a request whose headers never finish (slowloris).
    let mut slow = std::net::TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"GET /checkpoint HTTP/1.1\r\nHost: airgate\r\n")
        .unwrap();
    // Slot 2: a connection that never sends a byte (the header deadline
    // runs from the moment the server waits for a request).
    let silent = std::net::TcpStream::connect(server.addr).unwrap();

    let silent_thread = std::thread::spawn(move || time_until_closed(silent, start));
    let (slow_after, slow_got) = time_until_closed(slow, start);
    let (silent_after, _) = silent_thread.join().unwrap();
    assert!(
        slow_after >= Duration::from_millis(900) && slow_after < Duration::from_secs(8),
        "slow-header connection closed after {slow_after:?}"
    );
    assert!(
        !slow_got.contains("200 OK"),
        "an unfinished request was answered: {slow_got:?}"
    );
    assert!(
        silent_after >= Duration::from_millis(900) && silent_after < Duration::from_secs(10),
        "silent connection closed after {silent_after:?}"
    );
    // Both slots are free again: a well-behaved client is served.
    let ok = server.get("/checkpoint");
    assert_eq!(ok.status, 200);
    // A connection that stays busy is not cut: requests on one keep-alive
    // connection, each within the header deadline, spread over longer than
    // the idle timeout, all succeed.
    let mut busy = std::net::TcpStream::connect(server.addr).unwrap();
    busy.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for _ in 0..6 {
        busy.write_all(b"GET /api/v1/log/publicKey HTTP/1.1\r\nHost: airgate\r\n\r\n")
            .unwrap();
        let mut reader = std::io::BufReader::new(&busy);
        let mut status_line = String::new();
        std::io::BufRead::read_line(&mut reader, &mut status_line).unwrap();
        assert!(status_line.starts_with("HTTP/1.1 200"), "{status_line:?}");
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; length];
        std::io::Read::read_exact(&mut reader, &mut body).unwrap();
        std::thread::sleep(Duration::from_millis(700));
    }
}

#[test]
fn serve_refuses_a_zero_timeout() {
    let demo = Demo::new();
    let out = airgate([
        "serve",
        "--state",
        demo.high.to_str().unwrap(),
        "--idle-timeout",
        "0s",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("at least 1s"), "{}", stderr(&out));
}

#[test]
fn serve_health_endpoint_and_localhost_listen_address() {
    let demo = Demo::new();
    let server = Served::start_on(&demo.high, "localhost:0", &[]);
    let r = server.get("/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    assert!(r.json()["logSize"].as_u64().unwrap() > 0);
}

#[test]
fn serve_refuses_requests_without_one_host_header_or_with_bare_lf() {
    let demo = Demo::new();
    let server = Served::start(&demo.high, &[]);
    let status = |raw: &[u8]| -> String {
        let got = support::raw_exchange(server.addr, raw);
        String::from_utf8_lossy(&got)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    };
    assert!(
        status(b"GET /checkpoint HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").contains("200")
    );
    assert!(status(b"GET /checkpoint HTTP/1.1\r\nConnection: close\r\n\r\n").contains("400"));
    assert!(
        status(b"GET /checkpoint HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n")
            .contains("400")
    );
    // Bare LF line endings: the connection is refused (closed) unanswered.
    assert!(!status(b"GET /checkpoint HTTP/1.1\nHost: a\nConnection: close\n\n").contains("200"));
    assert!(
        !status(b"GET /checkpoint HTTP/1.1\r\nHost: a\nConnection: close\r\n\r\n").contains("200")
    );
    // A chunked body where none is expected: 400, connection closed.
    assert!(status(
        b"GET /checkpoint HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    .contains("400"));
}

#[test]
fn serve_one_client_cannot_make_others_wait() {
    let demo = Demo::new();
    let server = Served::start(
        &demo.high,
        &[
            "--max-connections",
            "10",
            "--max-connections-per-client",
            "4",
        ],
    );
    // 40 idle connections from 127.0.0.1 (more than all 10 slots)...
    let idle: Vec<std::net::TcpStream> = (0..40)
        .map(|_| std::net::TcpStream::connect(server.addr).unwrap())
        .collect();
    // ...and another client (127.0.0.2, also loopback) is served at once.
    let sock = socket_from("127.0.0.2", server.addr);
    let start = std::time::Instant::now();
    let mut sock = sock;
    use std::io::{Read, Write};
    sock.write_all(b"GET /checkpoint HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    sock.read_to_end(&mut got).unwrap();
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "waited {:?}",
        start.elapsed()
    );
    drop(idle);
}

/// A TCP connection to `to` from the loopback address `from`.
fn socket_from(from: &str, to: std::net::SocketAddr) -> std::net::TcpStream {
    // std cannot bind before connect; a connect from another loopback source
    // goes through a socket bound with tokio's TcpSocket.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let stream = socket.connect(to).await.unwrap();
        let std = stream.into_std().unwrap();
        std.set_nonblocking(false).unwrap();
        std
    })
}

#[test]
fn serve_cuts_an_upload_that_trickles() {
    let demo = Demo::new();
    let token = "s3cret-token-0123456789abcdef";
    let token_file = demo.scratch("secrets").join("token");
    std::fs::write(&token_file, token).unwrap();
    let server = Served::start(
        &demo.high,
        &[
            "--token-file",
            token_file.to_str().unwrap(),
            "--upload-grace",
            "1",
            "--min-upload-rate",
            "1K",
        ],
    );
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(format!("POST /api/v1/import HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\nContent-Length: 100000\r\n\r\n").as_bytes()).unwrap();
    let start = std::time::Instant::now();
    // One byte per 300 ms: under every idle timeout, far under the rate.
    let mut writer = s.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..60 {
            if writer.write_all(b"x").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    drop(s);
    let _ = trickle.join();
}

#[test]
fn serve_port_in_use_fails_before_anything_is_re_signed() {
    let demo = Demo::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let before = std::fs::read(demo.high.join("tuf-repo/timestamp.json")).unwrap();
    let out = airgate([
        "serve",
        "--state",
        demo.high.to_str().unwrap(),
        "--listen",
        &addr,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot listen"), "{}", stderr(&out));
    assert_eq!(
        before,
        std::fs::read(demo.high.join("tuf-repo/timestamp.json")).unwrap()
    );
}

/// `airgate log monitor` from a checkpoint kept elsewhere: growth is proven and
/// recorded with --update; a served log rolled back to an older backup, a
/// checkpoint of another log and an unreachable server are each refused.
#[test]
fn log_monitor_proves_growth_and_catches_a_rolled_back_server() {
    let demo = Demo::new();
    let scratch = demo.scratch("monitor");
    let backup = scratch.join("high-backup");
    let cp = Command::new("cp")
        .args(["-a", demo.high.to_str().unwrap(), backup.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(cp.success());
    let key = scratch.join("log.pub.pem");
    std::fs::write(&key, trusted_root(&demo.high).tlogs[0].key.to_pem()).unwrap();
    let kept = scratch.join("kept-checkpoint.txt");
    let out = airgate(["log", "checkpoint", "--state", demo.high.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(&kept, &out.stdout).unwrap();

    // The log grows by one entry after the checkpoint was kept.
    let file = scratch.join("extra.txt");
    std::fs::write(&file, b"one more artifact\n").unwrap();
    let bundle = scratch.join("extra.sigstore.json");
    let out = airgate([
        "sign",
        "--state",
        demo.high.to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let monitor = |base: &str, extra: &[&str]| {
        let mut args = vec![
            "log",
            "monitor",
            "--url",
            base,
            "--checkpoint",
            kept.to_str().unwrap(),
            "--log-key",
            key.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        airgate(args)
    };
    let server = Served::start(&demo.high, &[]);
    let out = monitor(&server.base, &["--update"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tree size 12 -> 13"), "{text}");
    let now = SignedNote::parse(&std::fs::read_to_string(&kept).unwrap()).unwrap();
    assert_eq!(Checkpoint::parse(&now.text).unwrap().size, 13);
    let out = monitor(&server.base, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("tree size 13 -> 13"));

    // The gateway restored from the backup taken before the new entry.
    let rolled_back = Served::start(&backup, &[]);
    let out = monitor(&rolled_back.base, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("truncated"), "{}", stderr(&out));

    // Another enclave's log key does not vouch for this log.
    let other = Demo::new();
    std::fs::write(&key, trusted_root(&other.high).tlogs[0].key.to_pem()).unwrap();
    let out = monitor(&server.base, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no signature by the given log key"));

    // An unreachable server is an I/O failure, not a verdict.
    drop(server);
    let out = monitor("http://127.0.0.1:9", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// sigstore-python bootstraps the enclave over its TUF repository
/// (`ClientTrustConfig.from_tuf`, what `sigstore --instance URL trust-instance`
/// runs): it needs `signing_config.v0.2.json` beside `trusted_root.json`, and
/// the trusted root it gets verifies a bundle re-signed by the enclave.
#[test]
#[ignore = "interop: real clients, run by tests/run-all.sh"]
fn sigstore_python_bootstraps_the_enclave_from_its_tuf_repository() {
    let demo = Demo::new();
    let server = Served::start(&demo.high, &[]);
    let home = demo.scratch("sigstore-python-home");
    // The served .sigs: [upstream, airgate's signature, airgate's VSA]. Both
    // of airgate's verify (verify_artifact; verify_dsse, then the statement's
    // subject against the artifact, as the sigstore CLI does); a one-byte tamper of the artifact, of either
    // signature, or of the VSA payload is rejected.
    let script = r#"
import sys, json, base64, copy
from pathlib import Path
from sigstore.models import ClientTrustConfig, Bundle
from sigstore.verify import Verifier, policy
url, root, sigs, artifact, identity, issuer = sys.argv[1:7]
config = ClientTrustConfig.from_tuf(url, offline=False, bootstrap_root=Path(root))
verifier = Verifier(trusted_root=config.trusted_root)
who = policy.Identity(identity=identity, issuer=issuer)
data = Path(artifact).read_bytes()
elements = json.loads(Path(sigs).read_text())
import hashlib
def attempt(element, data):
    try:
        bundle = Bundle.from_json(json.dumps(element))
        if "dsseEnvelope" not in element:
            verifier.verify_artifact(data, bundle, who)
            return "ok"
        # An attestation: the envelope verifies, then its subject must be the artifact.
        _, payload = verifier.verify_dsse(bundle, who)
        subjects = json.loads(payload)["subject"]
        digest = hashlib.sha256(data).hexdigest()
        return "ok" if any(s["digest"].get("sha256") == digest for s in subjects) else "subject mismatch"
    except Exception as e:
        return f"{type(e).__name__}: {e}"
def flip(b64):
    raw = bytearray(base64.b64decode(b64)); raw[-1] ^= 1
    return base64.b64encode(bytes(raw)).decode()
tampered = bytearray(data); tampered[0] ^= 1
sig, vsa = elements[1], elements[2]
bad_sig = copy.deepcopy(sig); bad_sig["messageSignature"]["signature"] = flip(sig["messageSignature"]["signature"])
bad_vsa = copy.deepcopy(vsa); bad_vsa["dsseEnvelope"]["signatures"][0]["sig"] = flip(vsa["dsseEnvelope"]["signatures"][0]["sig"])
statement = json.loads(base64.b64decode(vsa["dsseEnvelope"]["payload"]))
statement["predicate"]["verificationResult"] = "FAILED"
forged = copy.deepcopy(vsa); forged["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
print(json.dumps({
    "rekor": [u.url for u in config.signing_config._inner.rekor_tlog_urls],
    "signature": attempt(sig, data), "attestation": attempt(vsa, data),
    "signatureTamperedArtifact": attempt(sig, bytes(tampered)),
    "attestationTamperedArtifact": attempt(vsa, bytes(tampered)),
    "signatureTampered": attempt(bad_sig, data), "attestationTampered": attempt(bad_vsa, data),
    "attestationPayloadForged": attempt(forged, data),
}))
"#;
    let out_dir = demo.scratch("sigstore-python-fetch");
    let name = "app-1.0.0.tar.gz";
    for file in [name.to_string(), format!("{name}.sigs")] {
        let r = server.get(&format!("/artifacts/{file}"));
        assert_eq!(r.status, 200, "{file}");
        std::fs::write(out_dir.join(&file), &r.body).unwrap();
    }
    let ca: Value =
        serde_json::from_slice(&std::fs::read(demo.high.join("ca.json")).unwrap()).unwrap();
    let out = Command::new(crate::common::python())
        .args(["-c", script])
        .arg(format!("{}/tuf", server.base))
        .arg(demo.high.join("tuf-repo/1.root.json"))
        .arg(out_dir.join(format!("{name}.sigs")))
        .arg(out_dir.join(name))
        .arg(ca["default_identity"].as_str().unwrap())
        .arg(ca["oidc_issuer"].as_str().unwrap())
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_DATA_HOME", home.join("data"))
        .output()
        .expect("the interop venv's python (tests/run-all.sh makes it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sigstore-python from_tuf failed: {stdout} {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["signature"], "ok", "{report}");
    assert_eq!(report["attestation"], "ok", "{report}");
    for refused in [
        "signatureTamperedArtifact",
        "attestationTamperedArtifact",
        "signatureTampered",
        "attestationTampered",
        "attestationPayloadForged",
    ] {
        assert_ne!(report[refused], "ok", "{refused}: {report}");
    }
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["rekor"][0], ca["tlog_url"]);
}

#[test]
#[ignore = "interop: real clients, run by tests/run-all.sh"]
fn serve_prints_a_recipe_that_sigstore_python_and_airgate_follow() {
    let demo = Demo::new();
    let server = Served::start(&demo.high, &[]);
    let printed = server.stdout_until("verify identity");
    let recipe: Vec<&str> = printed
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(str::trim)
        .collect();
    assert_eq!(recipe.len(), 5, "{printed}");
    assert!(recipe[0].starts_with(&format!("curl -fsSO {}/artifacts/", server.base)));
    // A client machine: the pinned trust files, the tools on PATH, its own home.
    let client = demo.scratch("recipe-client");
    std::fs::copy(
        demo.high.join("trusted_root.json"),
        client.join("trusted_root.json"),
    )
    .unwrap();
    std::fs::copy(
        demo.high.join("tuf-repo/1.root.json"),
        client.join("1.root.json"),
    )
    .unwrap();
    let python = crate::common::python();
    let path = std::env::join_paths(
        [
            python.parent().unwrap().to_path_buf(),
            Path::new(env!("CARGO_BIN_EXE_airgate"))
                .parent()
                .unwrap()
                .to_path_buf(),
        ]
        .into_iter()
        .chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .unwrap();
    let run = |line: &str| {
        Command::new("bash")
            .args(["-euc", line])
            .current_dir(&client)
            .env("PATH", &path)
            .env("HOME", &client)
            .env("XDG_DATA_HOME", client.join("data"))
            .env("XDG_CACHE_HOME", client.join("cache"))
            .output()
            .unwrap()
    };
    for line in &recipe {
        let out = run(line);
        assert!(out.status.success(), "{line}: {}", stderr(&out));
    }
    // The sigstore CLI, bootstrapped the same way, verifies airgate's VSA too.
    let vsa_step = recipe[4].replace(".sigstore.json", ".vsa.sigstore.json");
    let extract = recipe[3]
        .replace("))[1]", "))[2]")
        .replace(".sigstore.json", ".vsa.sigstore.json");
    for line in [extract.as_str(), vsa_step.as_str()] {
        let out = run(line);
        assert!(out.status.success(), "{line}: {}", stderr(&out));
    }
    // The same last step refuses a one-byte tamper of the fetched artifact.
    let name = recipe[4].rsplit(' ').next().unwrap();
    let mut bytes = std::fs::read(client.join(name)).unwrap();
    bytes[0] ^= 1;
    std::fs::write(client.join(name), &bytes).unwrap();
    assert!(!run(recipe[4]).status.success());
    assert!(!run(&vsa_step).status.success());
    assert!(!run(recipe[1]).status.success());
}
