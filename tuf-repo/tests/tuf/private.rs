//! airgate's private TUF repository: init, publish, refresh, offline load,
//! tampering, expiry, key files, failures mid-publish, concurrency, and
//! python-tuf (`tuf.ngclient.Updater`) over loopback HTTP.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tuf_repo::{
    generate_key_file, init_private, load_private, publish, refresh, rotate_root, Error,
    InitSummary, PrivateRepoConfig, Role, RoleVersions, RootRotation,
};

use crate::common::*;

const TRUSTED_ROOT_V1: &[u8] =
    b"{\"mediaType\": \"application/vnd.dev.sigstore.trustedroot+json;version=0.1\", \"tlogs\": []}\n";
const TRUSTED_ROOT_V2: &[u8] =
    b"{\"mediaType\": \"application/vnd.dev.sigstore.trustedroot+json;version=0.1\", \"tlogs\": [{}]}\n";

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

fn at(base: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    base + chrono::Duration::seconds(secs)
}

fn now0() -> DateTime<Utc> {
    t("2026-03-01T00:00:00Z")
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A private repository in a temporary directory: `repo/` and `keys/`.
struct Private {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    keys: PathBuf,
    init: InitSummary,
}

impl Private {
    fn new(now: DateTime<Utc>) -> Private {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        let keys = tmp.path().join("keys");
        let init = init_private(&repo, &keys, &PrivateRepoConfig::default(), now).unwrap();
        Private {
            _tmp: tmp,
            repo,
            keys,
            init,
        }
    }

    fn publish(&self, targets: &[(&str, &[u8])], now: DateTime<Utc>) -> tuf_repo::PublishSummary {
        publish(&self.repo, &self.keys, targets, now).unwrap()
    }

    fn load(&self, now: DateTime<Utc>) -> Result<tuf_repo::LoadedRepo, Error> {
        load_private(&self.repo, &self.init.root_json, now)
    }

    fn file(&self, rel: &str) -> PathBuf {
        self.repo.join(rel)
    }
}

fn versions(root: u64, timestamp: u64, snapshot: u64, targets: u64) -> RoleVersions {
    RoleVersions {
        root,
        timestamp,
        snapshot,
        targets,
    }
}

#[test]
fn init_publish_load_round_trip() {
    let now = now0();
    let p = Private::new(now);
    assert_eq!(read(p.file("1.root.json")), p.init.root_json);
    assert_eq!(read(p.file("root.json")), p.init.root_json);
    assert_eq!(p.init.root_sha256, sha256_hex(&p.init.root_json));
    assert_eq!(p.init.root_expires, at(now, 365 * DAY));
    assert_eq!(p.init.key_ids[&Role::Root].len(), 1);
    assert_eq!(p.init.key_ids.len(), 4);
    let root: serde_json::Value = serde_json::from_slice(&p.init.root_json).unwrap();
    assert_eq!(root["signed"]["consistent_snapshot"], true);
    assert_eq!(root["signed"]["expires"], "2027-03-01T00:00:00Z");
    assert_eq!(root["signed"]["keys"].as_object().unwrap().len(), 4);
    for key in root["signed"]["keys"].as_object().unwrap().values() {
        assert_eq!(key["keytype"], "ed25519");
        assert_eq!(key["scheme"], "ed25519");
    }
    // Nothing published yet: clients cannot load it.
    assert!(matches!(p.load(now), Err(Error::Missing { .. })));

    let s = p.publish(&[("trusted_root.json", TRUSTED_ROOT_V1)], now);
    assert_eq!(s.versions, versions(1, 1, 1, 1));
    assert_eq!(
        s.resigned,
        vec![Role::Targets, Role::Snapshot, Role::Timestamp]
    );
    let target_rel = format!("targets/{}.trusted_root.json", sha256_hex(TRUSTED_ROOT_V1));
    assert_eq!(
        s.files,
        vec![
            target_rel.clone(),
            "1.targets.json".to_owned(),
            "1.snapshot.json".to_owned(),
            "timestamp.json".to_owned()
        ]
    );
    assert_eq!(s.published.len(), 1);
    assert_eq!(s.published[0].path, target_rel);
    assert_eq!(s.published[0].length, TRUSTED_ROOT_V1.len() as u64);
    assert_eq!(s.expires.timestamp, at(now, DAY));
    assert_eq!(s.expires.snapshot, at(now, 7 * DAY));
    assert_eq!(s.expires.targets, at(now, 90 * DAY));
    assert_eq!(read(p.file(&target_rel)), TRUSTED_ROOT_V1);

    let loaded = p.load(at(now, HOUR)).unwrap();
    assert_eq!(loaded.target("trusted_root.json"), Some(TRUSTED_ROOT_V1));
    assert_eq!(loaded.versions, versions(1, 1, 1, 1));
    assert_eq!(loaded.root_chain, vec![1]);
    assert_eq!(loaded.target("missing.json"), None);
    // The repository has the layout of the public Sigstore repository, so
    // the mirror verifier accepts it too (trusted_root.json is required there).
    let v = tuf_repo::verify_snapshot(
        &p.init.root_json,
        &p.repo,
        at(now, HOUR),
        None,
        &tuf_repo::Limits::default(),
    )
    .unwrap();
    assert_eq!(v.trusted_root_json, TRUSTED_ROOT_V1);
}

#[test]
fn republish_bumps_versions_keeps_other_targets_and_old_root_bootstraps() {
    let now = now0();
    let p = Private::new(now);
    p.publish(
        &[
            ("trusted_root.json", TRUSTED_ROOT_V1),
            ("notes.txt", b"kept\n"),
        ],
        now,
    );
    let later = at(now, 2 * HOUR);
    let s = p.publish(&[("trusted_root.json", TRUSTED_ROOT_V2)], later);
    assert_eq!(s.versions, versions(1, 2, 2, 2));
    let names: Vec<_> = s.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["notes.txt", "trusted_root.json"]);
    assert_eq!(s.expires.timestamp, at(later, DAY));
    // Old versions stay (a client that fetched timestamp v1 can still finish).
    for rel in [
        "1.targets.json",
        "1.snapshot.json",
        "2.targets.json",
        "2.snapshot.json",
    ] {
        assert!(p.file(rel).is_file(), "{rel}");
    }
    // Clients pinned to 1.root.json (or root.json) bootstrap and get the new content.
    let loaded = p.load(at(now, 3 * HOUR)).unwrap();
    assert_eq!(loaded.target("trusted_root.json"), Some(TRUSTED_ROOT_V2));
    assert_eq!(loaded.target("notes.txt"), Some(&b"kept\n"[..]));
    let via_copy = load_private(&p.repo, &read(p.file("root.json")), at(now, 3 * HOUR)).unwrap();
    assert_eq!(via_copy, loaded);
    // Publishing identical content again still bumps every version; the
    // content-addressed target file is not rewritten.
    let s = p.publish(&[("trusted_root.json", TRUSTED_ROOT_V2)], later);
    assert_eq!(s.versions, versions(1, 3, 3, 3));
    assert!(
        !s.files.iter().any(|f| f.starts_with("targets/")),
        "{:?}",
        s.files
    );
}

#[test]
fn refresh_bumps_timestamp_only_then_snapshot_then_targets() {
    let now = now0();
    let p = Private::new(now);
    p.publish(&[("trusted_root.json", TRUSTED_ROOT_V1)], now);
    let targets_before = read(p.file("1.targets.json"));
    let snapshot_before = read(p.file("1.snapshot.json"));

    let t1 = at(now, HOUR);
    let s = refresh(&p.repo, &p.keys, t1).unwrap();
    assert_eq!(s.resigned, vec![Role::Timestamp]);
    assert_eq!(s.files, vec!["timestamp.json".to_owned()]);
    assert_eq!(s.versions, versions(1, 2, 1, 1));
    assert_eq!(s.expires.timestamp, at(t1, DAY));
    assert_eq!(s.expires.snapshot, at(now, 7 * DAY));
    assert!(s.published.is_empty());
    assert_eq!(read(p.file("1.targets.json")), targets_before);
    assert_eq!(read(p.file("1.snapshot.json")), snapshot_before);
    // Without the refresh the repository would expire after a day; with it,
    // it loads a day later.
    let loaded = p.load(at(now, DAY + HOUR / 2)).unwrap();
    assert_eq!(loaded.versions.timestamp, 2);
    assert_eq!(loaded.target("trusted_root.json"), Some(TRUSTED_ROOT_V1));

    // 5 days in (the timestamp expired meanwhile: refresh still works),
    // less than half the snapshot's 7 days is left: snapshot re-signed too.
    let t5 = at(now, 5 * DAY);
    assert!(matches!(
        p.load(t5),
        Err(Error::Expired {
            role: Role::Timestamp,
            ..
        })
    ));
    let s = refresh(&p.repo, &p.keys, t5).unwrap();
    assert_eq!(s.resigned, vec![Role::Snapshot, Role::Timestamp]);
    assert_eq!(s.versions, versions(1, 3, 2, 1));
    assert_eq!(s.expires.snapshot, at(t5, 7 * DAY));
    assert_eq!(
        p.load(t5).unwrap().target("trusted_root.json"),
        Some(TRUSTED_ROOT_V1)
    );

    // 50 days in, less than half the targets' 90 days is left: all re-signed,
    // same targets.
    let t50 = at(now, 50 * DAY);
    let s = refresh(&p.repo, &p.keys, t50).unwrap();
    assert_eq!(
        s.resigned,
        vec![Role::Targets, Role::Snapshot, Role::Timestamp]
    );
    assert_eq!(s.versions, versions(1, 4, 3, 2));
    assert_eq!(s.expires.targets, at(t50, 90 * DAY));
    let loaded = p.load(t50).unwrap();
    assert_eq!(loaded.target("trusted_root.json"), Some(TRUSTED_ROOT_V1));
    assert_eq!(loaded.targets.len(), 1);
}

#[test]
fn refresh_before_any_publish_is_a_usage_error() {
    let p = Private::new(now0());
    let err = refresh(&p.repo, &p.keys, now0()).unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err}");
    assert!(!p.file("timestamp.json").exists());
}

#[test]
fn expired_metadata_is_detected() {
    let now = now0();
    let p = Private::new(now);
    p.publish(&[("trusted_root.json", TRUSTED_ROOT_V1)], now);
    p.load(at(now, DAY - 1)).unwrap();
    for when in [at(now, DAY), at(now, DAY + 1)] {
        match p.load(when) {
            Err(Error::Expired {
                role: Role::Timestamp,
                expires,
                reference_time,
            }) => {
                assert_eq!(expires, at(now, DAY));
                assert_eq!(reference_time, when);
            }
            other => panic!("expected an expired timestamp, got {other:?}"),
        }
    }
    // The root (365 days) expires too, whatever the online roles say.
    let late = at(now, 366 * DAY);
    let err = refresh(&p.repo, &p.keys, late).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Expired {
                role: Role::Root,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(p.load(at(now, HOUR)).unwrap().versions.timestamp, 1);
}

#[test]
fn tampered_targets_and_metadata_are_refused() {
    let now = now0();
    let p = Private::new(now);
    p.publish(&[("trusted_root.json", TRUSTED_ROOT_V1)], now);
    let check = at(now, HOUR);

    // Target bytes: same length, different content.
    let target = p.file(&format!(
        "targets/{}.trusted_root.json",
        sha256_hex(TRUSTED_ROOT_V1)
    ));
    let mut evil = TRUSTED_ROOT_V1.to_vec();
    evil[3] ^= 1;
    std::fs::write(&target, &evil).unwrap();
    let err = p.load(check).unwrap_err();
    assert!(matches!(err, Error::HashMismatch { .. }), "{err:?}");
    assert!(err.is_rejection());
    // Longer content.
    std::fs::write(&target, [TRUSTED_ROOT_V1, b" "].concat()).unwrap();
    let err = p.load(check).unwrap_err();
    assert!(err.is_rejection(), "{err:?}");
    // A publish refuses to build on a repository that does not verify.
    let err = publish(&p.repo, &p.keys, &[("other.txt", b"x")], check).unwrap_err();
    assert!(err.is_rejection(), "{err:?}");
    std::fs::write(&target, TRUSTED_ROOT_V1).unwrap();
    p.load(check).unwrap();

    // Targets metadata: a new target slipped in without re-signing.
    let rel = "1.targets.json";
    let original = read(p.file(rel));
    let mut doc: serde_json::Value = serde_json::from_slice(&original).unwrap();
    doc["signed"]["targets"]["evil.txt"] = serde_json::json!({
        "length": 1, "hashes": {"sha256": sha256_hex(b"e")}
    });
    std::fs::write(p.file(rel), serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let err = p.load(check).unwrap_err();
    assert!(err.is_rejection(), "{err:?}");
    std::fs::write(p.file(rel), &original).unwrap();

    // Timestamp: expiry pushed out without a valid signature.
    let original = read(p.file("timestamp.json"));
    let mut doc: serde_json::Value = serde_json::from_slice(&original).unwrap();
    doc["signed"]["expires"] = "2030-01-01T00:00:00Z".into();
    std::fs::write(p.file("timestamp.json"), serde_json::to_vec(&doc).unwrap()).unwrap();
    let err = p.load(check).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ThresholdNotMet {
                role: Role::Timestamp,
                ..
            }
        ),
        "{err:?}"
    );
    std::fs::write(p.file("timestamp.json"), &original).unwrap();
    p.load(check).unwrap();

    // Another repository's root does not bootstrap this one.
    let other = Private::new(now);
    let err = load_private(&p.repo, &other.init.root_json, check).unwrap_err();
    assert!(err.is_rejection(), "{err:?}");
}

#[cfg(unix)]
#[test]
fn key_files_are_private_and_never_overwritten() {
    use std::os::unix::fs::PermissionsExt;
    let now = now0();
    let p = Private::new(now);
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&p.keys), 0o700);
    let names: Vec<_> = p
        .init
        .key_files
        .iter()
        .map(|f| f.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["root-1.pem", "targets.pem", "snapshot.pem", "timestamp.pem"]
    );
    let mut before = Vec::new();
    for f in &p.init.key_files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
        let pem = std::fs::read_to_string(f).unwrap();
        assert!(
            pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
            "{}",
            f.display()
        );
        before.push(pem);
    }
    // Key material never shows in the summary.
    let shown = format!("{:?}", p.init);
    for pem in &before {
        let body = pem.lines().nth(1).unwrap();
        assert!(!shown.contains(body));
    }

    // Same keys directory, fresh repository: refused, keys untouched, no root written.
    let fresh = tempfile::tempdir().unwrap();
    let err = init_private(fresh.path(), &p.keys, &PrivateRepoConfig::default(), now).unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err}");
    assert!(!fresh.path().join("1.root.json").exists());
    // Same repository, fresh keys directory: refused, root untouched, no keys written.
    let fresh_keys = fresh.path().join("keys");
    let err = init_private(&p.repo, &fresh_keys, &PrivateRepoConfig::default(), now).unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err}");
    assert!(!fresh_keys.exists());
    assert_eq!(read(p.file("1.root.json")), p.init.root_json);
    for (f, pem) in p.init.key_files.iter().zip(&before) {
        assert_eq!(&std::fs::read_to_string(f).unwrap(), pem);
    }
    // A group-readable key is refused by publish, and the error does not quote it.
    let targets_key = p.keys.join("targets.pem");
    std::fs::set_permissions(&targets_key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = publish(&p.repo, &p.keys, &[], now).unwrap_err();
    assert!(matches!(err, Error::Key { .. }), "{err}");
    assert!(err.to_string().contains("chmod 600"), "{err}");
    assert!(!format!("{err:?}").contains(before[1].lines().nth(1).unwrap()));
}

#[test]
fn multiple_root_keys_with_a_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let config = PrivateRepoConfig {
        root_keys: 3,
        root_threshold: 2,
        ..PrivateRepoConfig::default()
    };
    let (repo, keys) = (tmp.path().join("repo"), tmp.path().join("keys"));
    let init = init_private(&repo, &keys, &config, now0()).unwrap();
    assert_eq!(init.key_ids[&Role::Root].len(), 3);
    let root: serde_json::Value = serde_json::from_slice(&init.root_json).unwrap();
    assert_eq!(root["signed"]["roles"]["root"]["threshold"], 2);
    assert_eq!(root["signatures"].as_array().unwrap().len(), 3);
    for i in 1..=3 {
        assert!(keys.join(format!("root-{i}.pem")).is_file());
    }
    assert_eq!(tuf_repo::PrivateRepoConfig::load(&keys).unwrap(), config);
    let bad = PrivateRepoConfig {
        root_threshold: 4,
        ..config
    };
    let err = init_private(&tmp.path().join("r2"), &tmp.path().join("k2"), &bad, now0());
    assert!(matches!(err, Err(Error::Usage(_))));
}

#[test]
fn publish_and_refresh_need_only_the_online_keys() {
    let now = now0();
    let p = Private::new(now);
    // The root key goes offline.
    let offline = tempfile::tempdir().unwrap();
    let root_key = p.keys.join("root-1.pem");
    std::fs::copy(&root_key, offline.path().join("root-1.pem")).unwrap();
    std::fs::remove_file(&root_key).unwrap();
    p.publish(&[("trusted_root.json", TRUSTED_ROOT_V1)], now);
    refresh(&p.repo, &p.keys, at(now, HOUR)).unwrap();
    assert_eq!(
        p.load(at(now, HOUR)).unwrap().target("trusted_root.json"),
        Some(TRUSTED_ROOT_V1)
    );
}

#[test]
fn another_repositorys_keys_are_refused_before_signing() {
    let now = now0();
    let a = Private::new(now);
    let b = Private::new(now);
    a.publish(&[("trusted_root.json", TRUSTED_ROOT_V1)], now);
    let err = publish(
        &a.repo,
        &b.keys,
        &[("trusted_root.json", TRUSTED_ROOT_V2)],
        now,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Key { .. }), "{err}");
    assert!(err.to_string().contains("wrong keys directory"), "{err}");
    assert!(!a.file("2.targets.json").exists());
    assert_eq!(a.load(now).unwrap().versions.targets, 1);
}

#[test]
fn invalid_targets_are_refused() {
    let now = now0();
    let p = Private::new(now);
    for name in ["dir/trusted_root.json", ".hidden", "../x", "a b", ""] {
        let err = publish(&p.repo, &p.keys, &[(name, b"x")], now).unwrap_err();
        assert!(matches!(err, Error::Usage(_)), "{name:?}: {err}");
    }
    let err = publish(&p.repo, &p.keys, &[("a", b"1"), ("a", b"2")], now).unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err}");
    assert!(!p.file("timestamp.json").exists());
}

/// A publish that fails half-way through putting its files in place (here
/// `2.snapshot.json` cannot be created) leaves the previous repository
/// loadable; the next publish succeeds.
#[test]
fn failure_mid_publish_leaves_the_previous_repository_loadable() {
    let now = now0();
    let p = Private::new(now);
    p.publish(&[("trusted_root.json", TRUSTED_ROOT_V1)], now);
    let blocker = p.file("2.snapshot.json");
    std::fs::create_dir_all(blocker.join("occupied")).unwrap();
    let err = publish(
        &p.repo,
        &p.keys,
        &[("trusted_root.json", TRUSTED_ROOT_V2)],
        now,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("2.snapshot.json"), "{err}");
    // The new target and 2.targets.json went in place before the failure.
    assert!(p.file("2.targets.json").is_file());
    assert!(p
        .file(&format!(
            "targets/{}.trusted_root.json",
            sha256_hex(TRUSTED_ROOT_V2)
        ))
        .is_file());
    let loaded = p.load(now).unwrap();
    assert_eq!(loaded.versions, versions(1, 1, 1, 1));
    assert_eq!(loaded.target("trusted_root.json"), Some(TRUSTED_ROOT_V1));
    // No staging directory left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&p.repo)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    std::fs::remove_dir_all(&blocker).unwrap();
    let s = p.publish(&[("trusted_root.json", TRUSTED_ROOT_V2)], now);
    assert_eq!(s.versions, versions(1, 2, 2, 2));
    assert_eq!(
        p.load(now).unwrap().target("trusted_root.json"),
        Some(TRUSTED_ROOT_V2)
    );
}

#[test]
fn concurrent_publishes_are_serialized() {
    let now = now0();
    let p = Private::new(now);
    p.publish(&[("trusted_root.json", TRUSTED_ROOT_V1)], now);
    let names: Vec<String> = (0..4).map(|i| format!("artifact-{i}.txt")).collect();
    std::thread::scope(|s| {
        for name in &names {
            let (repo, keys) = (&p.repo, &p.keys);
            s.spawn(move || {
                publish(repo, keys, &[(name.as_str(), name.as_bytes())], now).unwrap();
            });
        }
        s.spawn(|| refresh(&p.repo, &p.keys, now).unwrap());
    });
    let loaded = p.load(now).unwrap();
    assert_eq!(loaded.versions, versions(1, 6, 5, 5));
    for name in &names {
        assert_eq!(loaded.target(name), Some(name.as_bytes()));
    }
    assert_eq!(loaded.target("trusted_root.json"), Some(TRUSTED_ROOT_V1));
}

// ---------------------------------------------------------------- python-tuf

/// `python3 -m http.server` on 127.0.0.1 serving a directory, killed when dropped.
struct PyServer {
    child: Child,
    url: String,
}

impl PyServer {
    fn serve(dir: &Path) -> PyServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(python())
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the interop venv's python must run (tests/run-all.sh)");
        let server = PyServer {
            child,
            url: format!("http://127.0.0.1:{port}/"),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "python3 -m http.server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The interop venv's Python: `$AIRGATE_PYTHON`, else the repository's
/// `tests/.venv/bin/python` (made by `tests/run-all.sh`).
fn python() -> PathBuf {
    std::env::var_os("AIRGATE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/.venv/bin/python"))
}

fn require_python_tuf() {
    let out = Command::new(python())
        .args(["-c", "import tuf, tuf.ngclient; print(tuf.__version__)"])
        .output()
        .expect(
            "the interop venv's python is required: run tests/run-all.sh, or set AIRGATE_PYTHON",
        );
    assert!(
        out.status.success(),
        "python-tuf is required for this test (tests/run-all.sh installs it into tests/.venv): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `ngclient.py`; returns its JSON report and whether it succeeded.
fn ngclient(metadata_dir: &Path, url: &str, target_dir: &Path) -> (bool, serde_json::Value) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tuf/ngclient.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(metadata_dir)
        .arg(url)
        .arg(target_dir)
        .arg("trusted_root.json")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "ngclient.py printed no JSON ({e}): stdout {stdout:?} stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

fn client_dirs(root_json: &[u8]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let metadata = tmp.path().join("metadata");
    let targets = tmp.path().join("targets");
    std::fs::create_dir_all(&metadata).unwrap();
    std::fs::create_dir_all(&targets).unwrap();
    std::fs::write(metadata.join("root.json"), root_json).unwrap();
    (tmp, metadata, targets)
}

#[test]
#[ignore = "interop: real clients, run by tests/run-all.sh"]
fn python_tuf_bootstraps_updates_and_refuses_tampering() {
    require_python_tuf();
    // python-tuf checks expiry against the real clock.
    let now = Utc::now();
    let p = Private::new(now);
    p.publish(&[("trusted_root.json", TRUSTED_ROOT_V1)], now);
    let server = PyServer::serve(&p.repo);

    // Bootstrap from our root, download, compare bytes.
    let (_client, metadata, targets) = client_dirs(&p.init.root_json);
    let (ok, report) = ngclient(&metadata, &server.url, &targets);
    assert!(ok, "python-tuf failed: {report}");
    let path = PathBuf::from(report["path"].as_str().unwrap());
    assert_eq!(read(&path), TRUSTED_ROOT_V1);
    assert_eq!(report["sha256"], sha256_hex(TRUSTED_ROOT_V1));
    assert_eq!(
        report["versions"],
        serde_json::json!({"root": 1, "timestamp": 1, "snapshot": 1, "targets": 1})
    );

    // Publish new content and refresh: the same client (with its cached
    // metadata) updates to the new versions and downloads the new bytes.
    p.publish(&[("trusted_root.json", TRUSTED_ROOT_V2)], now);
    refresh(&p.repo, &p.keys, Utc::now()).unwrap();
    let (ok, report) = ngclient(&metadata, &server.url, &targets);
    assert!(ok, "python-tuf failed after republishing: {report}");
    assert_eq!(read(report["path"].as_str().unwrap()), TRUSTED_ROOT_V2);
    assert_eq!(
        report["versions"],
        serde_json::json!({"root": 1, "timestamp": 3, "snapshot": 2, "targets": 2})
    );

    // Tampered target bytes: a fresh client refuses the download.
    let target = p.file(&format!(
        "targets/{}.trusted_root.json",
        sha256_hex(TRUSTED_ROOT_V2)
    ));
    let mut evil = TRUSTED_ROOT_V2.to_vec();
    evil[5] ^= 1;
    std::fs::write(&target, &evil).unwrap();
    let (_fresh, metadata2, targets2) = client_dirs(&p.init.root_json);
    let (ok, report) = ngclient(&metadata2, &server.url, &targets2);
    assert!(!ok, "python-tuf accepted a tampered target: {report}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("LengthOrHashMismatchError"),
        "{report}"
    );
    std::fs::write(&target, TRUSTED_ROOT_V2).unwrap();

    // Tampered timestamp (signature no longer valid): refused.
    let ts = read(p.file("timestamp.json"));
    let mut doc: serde_json::Value = serde_json::from_slice(&ts).unwrap();
    doc["signed"]["expires"] = "2099-01-01T00:00:00Z".into();
    std::fs::write(p.file("timestamp.json"), serde_json::to_vec(&doc).unwrap()).unwrap();
    let (_fresh, metadata3, targets3) = client_dirs(&p.init.root_json);
    let (ok, report) = ngclient(&metadata3, &server.url, &targets3);
    assert!(!ok, "python-tuf accepted a forged timestamp: {report}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("UnsignedMetadataError"),
        "{report}"
    );
    drop(server);
}

// ---------------------------------------------------------------- root rotation

fn rotation(current: &[PathBuf], new: &[PathBuf], online: bool) -> RootRotation {
    RootRotation {
        current_root_keys: current.to_vec(),
        new_root_keys: new.to_vec(),
        threshold: None,
        rotate_online_keys: online,
    }
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".airgate") || n.ends_with(".next"))
        .collect()
}

/// Root v2 with a new root key and new online keys: a client trusting v1
/// walks to v2; the old root key and the old online keys are retired.
#[test]
fn root_rotation_with_new_root_and_online_keys_is_followed_from_root_v1() {
    let now = now0();
    let p = Private::new(now);
    p.publish(&[("trusted_root.json", TRUSTED_ROOT_V1)], now);
    let old_targets_key = read(p.keys.join("targets.pem"));
    let new_key = p._tmp.path().join("offline-root-2.pem");
    let new_id = generate_key_file(&new_key).unwrap();
    // A key file is never overwritten.
    let before = read(&new_key);
    let err = generate_key_file(&new_key).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(read(&new_key), before);
    let old_root_key = p.keys.join("root-1.pem");

    let s = rotate_root(
        &p.repo,
        &p.keys,
        &rotation(
            std::slice::from_ref(&old_root_key),
            std::slice::from_ref(&new_key),
            true,
        ),
        at(now, HOUR),
    )
    .unwrap();
    assert_eq!((s.from_version, s.to_version), (1, 2));
    assert!(s.online_keys_rotated);
    assert_eq!(s.key_ids[&Role::Root], vec![new_id]);
    assert_eq!(s.published.versions, versions(2, 2, 2, 2));
    assert_eq!(
        s.published.resigned,
        vec![Role::Root, Role::Targets, Role::Snapshot, Role::Timestamp]
    );
    assert_eq!(read(p.file("2.root.json")), s.root_json);
    assert_eq!(read(p.file("root.json")), s.root_json);
    assert_ne!(read(p.keys.join("targets.pem")), old_targets_key);
    assert!(leftovers(&p.repo).is_empty() && leftovers(&p.keys).is_empty());

    let loaded = p.load(at(now, HOUR)).unwrap();
    assert_eq!(loaded.root_chain, vec![1, 2]);
    assert_eq!(loaded.newest_root_json, s.root_json);
    assert_eq!(loaded.target("trusted_root.json"), Some(TRUSTED_ROOT_V1));

    // The new online keys publish; the retired root key cannot sign v3.
    let again = p.publish(&[("trusted_root.json", TRUSTED_ROOT_V2)], at(now, 2 * HOUR));
    assert_eq!(again.versions, versions(2, 3, 3, 3));
    let err = rotate_root(
        &p.repo,
        &p.keys,
        &rotation(&[old_root_key], &[], false),
        at(now, 3 * HOUR),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("not a root key of root version 2"),
        "{err}"
    );
    assert!(!p.file("3.root.json").exists());
}

/// Keeping the root keys re-signs the root with them and rotates only the
/// online keys.
#[test]
fn root_rotation_keeping_the_root_keys_rotates_the_online_keys() {
    let now = now0();
    let p = Private::new(now);
    p.publish(&[("trusted_root.json", TRUSTED_ROOT_V1)], now);
    let root_key = p.keys.join("root-1.pem");
    let s = rotate_root(&p.repo, &p.keys, &rotation(&[root_key], &[], true), now).unwrap();
    assert_eq!(s.key_ids[&Role::Root], p.init.key_ids[&Role::Root]);
    assert_ne!(
        s.key_ids[&Role::Timestamp],
        p.init.key_ids[&Role::Timestamp]
    );
    assert_eq!(p.load(now).unwrap().root_chain, vec![1, 2]);
    refresh(&p.repo, &p.keys, at(now, DAY / 2)).unwrap();
}

/// A root with threshold 2 is not replaced on one signature; a key given
/// twice counts once; nothing is written.
#[test]
fn root_rotation_below_the_old_threshold_is_refused() {
    let now = now0();
    let tmp = tempfile::tempdir().unwrap();
    let (repo, keys) = (tmp.path().join("repo"), tmp.path().join("keys"));
    let config = PrivateRepoConfig {
        root_keys: 2,
        root_threshold: 2,
        ..PrivateRepoConfig::default()
    };
    init_private(&repo, &keys, &config, now).unwrap();
    publish(&repo, &keys, &[("trusted_root.json", TRUSTED_ROOT_V1)], now).unwrap();
    let one = keys.join("root-1.pem");
    let err = rotate_root(
        &repo,
        &keys,
        &rotation(std::slice::from_ref(&one), &[], true),
        now,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err:?}");
    assert!(
        err.to_string().contains("needs 2 of its root keys"),
        "{err}"
    );
    let err =
        rotate_root(&repo, &keys, &rotation(&[one.clone(), one], &[], true), now).unwrap_err();
    assert!(err.to_string().contains("are the same key"), "{err}");
    assert!(!repo.join("2.root.json").exists());
    assert!(leftovers(&keys).is_empty());
    let both = [keys.join("root-1.pem"), keys.join("root-2.pem")];
    let mut r = rotation(&both, &[], false);
    r.threshold = Some(3);
    let err = rotate_root(&repo, &keys, &r, now).unwrap_err();
    assert!(
        err.to_string()
            .contains("a root threshold of 3 with 2 root keys"),
        "{err}"
    );
    r.threshold = Some(1);
    let s = rotate_root(&repo, &keys, &r, now).unwrap();
    assert_eq!(s.to_version, 2);
}

/// A rotation interrupted after the new root went in place but before the
/// new timestamp: clients refuse the mixed state; the next refresh rolls the
/// journaled commit forward and promotes the pending online keys.
#[test]
fn root_rotation_interrupted_mid_commit_is_rolled_forward() {
    let now = now0();
    let p = Private::new(now);
    p.publish(&[("trusted_root.json", TRUSTED_ROOT_V1)], now);
    let err = tuf_repo::rotate_root_failing_before(
        &p.repo,
        &p.keys,
        &rotation(&[p.keys.join("root-1.pem")], &[], true),
        now,
        "timestamp.json",
    )
    .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("timestamp.json"), "{err}");
    assert!(p.file("2.root.json").is_file());
    assert!(
        p.load(now).is_err(),
        "a mixed root v2 / old timestamp loaded"
    );
    assert_eq!(leftovers(&p.keys).len(), 3);

    let s = refresh(&p.repo, &p.keys, at(now, HOUR)).unwrap();
    assert_eq!(s.versions.root, 2);
    let loaded = p.load(at(now, HOUR)).unwrap();
    assert_eq!(loaded.root_chain, vec![1, 2]);
    assert_eq!(loaded.target("trusted_root.json"), Some(TRUSTED_ROOT_V1));
    assert!(leftovers(&p.repo).is_empty() && leftovers(&p.keys).is_empty());
}

/// A journal naming a path outside the repository is refused by name, and
/// nothing is renamed.
#[test]
fn journal_naming_a_path_outside_the_repository_is_refused() {
    let now = now0();
    let p = Private::new(now);
    p.publish(&[("trusted_root.json", TRUSTED_ROOT_V1)], now);
    let stage = p.file(".airgate-tuf-stage-evil");
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::write(stage.join(".commit"), "timestamp.json\n../escaped\n").unwrap();
    std::fs::write(stage.join("timestamp.json"), b"{}").unwrap();
    let err = refresh(&p.repo, &p.keys, now).unwrap_err();
    assert!(err.to_string().contains("the journal names"), "{err}");
    assert!(err.to_string().contains("../escaped"), "{err}");
    p.load(now).unwrap();
}

/// python-tuf, bootstrapped from root v1 with its cached metadata, follows a
/// root rotation (new root key and online keys) on its next refresh.
#[test]
#[ignore = "interop: real clients, run by tests/run-all.sh"]
fn python_tuf_follows_a_root_rotation() {
    require_python_tuf();
    let now = Utc::now();
    let p = Private::new(now);
    p.publish(&[("trusted_root.json", TRUSTED_ROOT_V1)], now);
    let server = PyServer::serve(&p.repo);
    let (_client, metadata, targets) = client_dirs(&p.init.root_json);
    let (ok, report) = ngclient(&metadata, &server.url, &targets);
    assert!(ok, "python-tuf failed: {report}");

    let new_key = p._tmp.path().join("offline-root-2.pem");
    generate_key_file(&new_key).unwrap();
    rotate_root(
        &p.repo,
        &p.keys,
        &rotation(&[p.keys.join("root-1.pem")], &[new_key], true),
        Utc::now(),
    )
    .unwrap();
    p.publish(&[("trusted_root.json", TRUSTED_ROOT_V2)], Utc::now());
    let (ok, report) = ngclient(&metadata, &server.url, &targets);
    assert!(ok, "python-tuf did not follow the rotation: {report}");
    assert_eq!(read(report["path"].as_str().unwrap()), TRUSTED_ROOT_V2);
    assert_eq!(
        report["versions"],
        serde_json::json!({"root": 2, "timestamp": 3, "snapshot": 3, "targets": 3})
    );
    // A fresh client from v1 walks the chain too.
    let (_fresh, metadata2, targets2) = client_dirs(&p.init.root_json);
    let (ok, report) = ngclient(&metadata2, &server.url, &targets2);
    assert!(
        ok,
        "a fresh python-tuf client from root v1 failed: {report}"
    );
    drop(server);
}
