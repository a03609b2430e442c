//! Import v2: named negative media for what the importer must not trust
//! before or without checking it. Each is refused (or "already imported")
//! with the state directory unchanged.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{airgate, stderr};
use crate::world::{envelope, read_entries, state_fingerprint, statement_of, write_entries, World};

fn refused(world: &World, media: &[&Path], expect: &str) -> String {
    let before = state_fingerprint(&world.high);
    let out = world.import(media, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "expected a refusal: {err}");
    assert!(err.contains(expect), "expected {expect:?} in: {err}");
    assert_eq!(before, state_fingerprint(&world.high), "state changed");
    assert_refusal_recorded(world, expect);
    err
}

/// The newest row of the append-only refusal record names the reason.
fn assert_refusal_recorded(world: &World, expect: &str) {
    let out = crate::common::airgate([
        "imports",
        "refused",
        "--state",
        world.high.to_str().unwrap(),
        "--json",
        "--limit",
        "1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = rows[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(expect),
        "refusal record {rows} lacks {expect:?}"
    );
}

fn imported(world: &World, media: &[&Path]) -> String {
    let out = world.import(media, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Peak RSS (KiB) of a child, polled from /proc while it runs.
fn run_measuring_rss(mut command: Command) -> (std::process::ExitStatus, u64, Duration, String) {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            if let Some(kib) = text
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, peak, started.elapsed(), err)
}

#[test]
fn outsider_medium_of_a_gigabyte_is_refused_before_staging_in_bounded_memory() {
    let world = World::new(1);
    // An outsider: a genuine medium signed by a key nobody enrolled...
    let other = world.root().join("outsider-key");
    let out = airgate(["export-key", "init", "--dir", other.to_str().unwrap()]);
    assert!(out.status.success());
    let small = world.media.join("outsider-small.tar");
    let out = airgate([
        "export",
        "--policy",
        world.policy.to_str().unwrap(),
        "--artifacts",
        world.artifacts.to_str().unwrap(),
        "--key",
        other.join("exporter.key.pem").to_str().unwrap(),
        "--exporter",
        "outsider",
        "--out",
        small.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // ...followed by a gigabyte of "bundles" (a sparse file: no disk used).
    let mut bytes = std::fs::read(&small).unwrap();
    bytes.truncate(bytes.len() - 1024);
    let mut h = tar::Header::new_gnu();
    h.set_path("bundles/zz-huge.sigstore.json").unwrap();
    h.set_size(1 << 30);
    h.set_mode(0o644);
    h.set_cksum();
    bytes.extend_from_slice(h.as_bytes());
    let big = world.media.join("outsider-1g.tar");
    std::fs::write(&big, &bytes).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
    f.set_len(bytes.len() as u64 + (1 << 30) + 1024).unwrap();
    drop(f);
    assert!(std::fs::metadata(&big).unwrap().len() > 1 << 30);

    let before = state_fingerprint(&world.high);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_airgate"));
    cmd.args([
        "import",
        "--state",
        world.high.to_str().unwrap(),
        big.to_str().unwrap(),
    ]);
    let (status, peak_kib, elapsed, err) = run_measuring_rss(cmd);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("not an enrolled exporter key"), "{err}");
    assert!(
        peak_kib > 0 && peak_kib < 64 * 1024,
        "peak RSS {peak_kib} KiB"
    );
    // Reading the gigabyte would take far longer than refusing after the manifest.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_eq!(
        before,
        state_fingerprint(&world.high),
        "nothing staged or stored"
    );
}

#[test]
fn medium_with_a_reencoded_base64_payload_is_refused() {
    let world = World::new(1);
    let (good, out) = world.export("good.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut entries = read_entries(&good);
    let mut env: Value = serde_json::from_slice(&entries[0].1).unwrap();
    let payload = env["payload"].as_str().unwrap().to_string();
    let wrapped: Vec<String> = payload
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    env["payload"] = Value::String(wrapped.join("\n"));
    entries[0].1 = serde_json::to_vec(&env).unwrap();
    let len = entries[0].1.len() as u64;
    entries[0].0.set_size(len);
    entries[0].0.set_cksum();
    let bad = world.media.join("wrapped-base64.tar");
    write_entries(&bad, &entries);
    refused(&world, &[&bad], "strict standard base64");
}

#[test]
fn genuine_old_medium_replayed_after_a_newer_release_is_refused() {
    let world = World::new(2);
    let (old, out) = world.export("old.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    imported(&world, &[&old]);
    // A re-release: new bytes under the same name, allowed by the policy.
    let policy = world.high.join("policy.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace("[[rule]]", "[[rule]]\nallow-replace = true"),
    )
    .unwrap();
    let name = "pkg-00001.tar.gz";
    std::fs::write(world.artifacts.join(name), b"release 2 bytes\n").unwrap();
    world
        .upstream
        .sign_files(&[world.artifacts.join(name)], std::time::SystemTime::now())
        .unwrap();
    let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
    let newer = world.export_at("newer.tar", &later);
    imported(&world, &[&newer]);
    // The genuine old medium, re-wrapped (other envelope bytes, same
    // statement), is still the old medium: already imported, nothing changes.
    let mut entries = read_entries(&old);
    let value: Value = serde_json::from_slice(&entries[0].1).unwrap();
    entries[0].1 = serde_json::to_vec_pretty(&value).unwrap();
    let len = entries[0].1.len() as u64;
    entries[0].0.set_size(len);
    entries[0].0.set_cksum();
    let rewrapped = world.media.join("old-rewrapped.tar");
    write_entries(&rewrapped, &entries);
    let before = state_fingerprint(&world.high);
    let out = imported(&world, &[&rewrapped]);
    assert!(out.contains("already imported"), "{out}");
    assert_eq!(before, state_fingerprint(&world.high));
    // The old content exported again (a new statement, an older time) is refused.
    let old_time = (chrono::Utc::now() - chrono::Duration::seconds(60)).to_rfc3339();
    let replay = world.resign(&old, "old-resigned.tar", &mut |s| {
        s["predicate"]["exportTime"] = Value::String(old_time.clone());
    });
    refused(&world, &[&replay], "is before");
    // What is served is still the new release.
    let conn = rusqlite::Connection::open(world.high.join("state.db")).unwrap();
    let sha: String = conn
        .query_row(
            "SELECT sha256 FROM artifacts WHERE name = ?1 ORDER BY import_id DESC LIMIT 1",
            [name],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        sha,
        hex::encode(gateway::crypto::sha256(b"release 2 bytes\n"))
    );
}

#[test]
fn name_imported_with_other_bytes_is_refused_naming_both_digests() {
    let world = World::new(2);
    let (first, out) = world.export("first.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    imported(&world, &[&first]);
    let name = "pkg-00000.tar.gz";
    let old_sha = hex::encode(gateway::crypto::sha256(
        &std::fs::read(world.artifacts.join(name)).unwrap(),
    ));
    std::fs::write(world.artifacts.join(name), b"other bytes, same name\n").unwrap();
    world
        .upstream
        .sign_files(&[world.artifacts.join(name)], std::time::SystemTime::now())
        .unwrap();
    let new_sha = hex::encode(gateway::crypto::sha256(b"other bytes, same name\n"));
    let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
    let second = world.export_at("second.tar", &later);
    let err = refused(&world, &[&second], "names are immutable");
    assert!(err.contains(&old_sha) && err.contains(&new_sha), "{err}");
    // A reviewed, named setting allows it; history stays queryable.
    let policy = world.high.join("policy.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace("[[rule]]", "[[rule]]\nallow-replace = true"),
    )
    .unwrap();
    let out = world.import(&[&second], &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let replaced = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap();
    assert_eq!(replaced["replacesImport"], 1);
    let conn = rusqlite::Connection::open(world.high.join("state.db")).unwrap();
    let versions: Vec<String> = conn
        .prepare("SELECT sha256 FROM artifacts WHERE name = ?1 ORDER BY import_id")
        .unwrap()
        .query_map([name], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(versions, vec![old_sha, new_sha]);
}

#[test]
fn manifest_claiming_other_tuf_versions_than_the_snapshot_verifies() {
    let world = World::new(1);
    let claimed = world.export_and_resign("tuf-claim.tar", &mut |s| {
        s["predicate"]["tuf"]["root"] = Value::from(99);
    });
    refused(&world, &[&claimed], "the manifest claims root v99");
}

#[test]
fn medium_without_a_tuf_snapshot_says_so() {
    let world = World::new(1);
    let (good, out) = world.export("good.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut entries = read_entries(&good);
    let mut statement = statement_of(&entries[0].1);
    entries.retain(|(h, _)| !h.path().unwrap().starts_with("tuf/"));
    let keep = |v: &Value| !v["name"].as_str().unwrap().starts_with("tuf/");
    let list: Vec<Value> = statement["subject"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| keep(v))
        .cloned()
        .collect();
    statement["subject"] = Value::Array(list);
    let list: Vec<Value> = statement["predicate"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| keep(v))
        .cloned()
        .collect();
    statement["predicate"]["entries"] = Value::Array(list);
    statement["predicate"]["packDigest"] = Value::String(pack_digest_of(&statement));
    let bad = world.write_resigned(entries, &statement, "no-tuf.tar");
    refused(&world, &[&bad], "carries no TUF snapshot");
}

#[test]
fn duplicated_artifact_record_is_a_rejection_before_signing() {
    let world = World::new(2);
    let bad = world.export_and_resign("duplicate-record.tar", &mut |s| {
        let first = s["predicate"]["artifacts"][0].clone();
        s["predicate"]["artifacts"]
            .as_array_mut()
            .unwrap()
            .push(first);
    });
    refused(&world, &[&bad], "has two records");
}

#[test]
fn manifest_with_a_duplicate_digest_key_is_refused() {
    let world = World::new(1);
    let (good, out) = world.export("good.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut entries = read_entries(&good);
    let payload = serde_json::to_string(&statement_of(&entries[0].1)).unwrap();
    // {"sha256":zeros,"sha256":real}: a last-wins parser would read the real one.
    let doubled = payload.replacen(
        "\"sha256\":\"",
        &format!("\"sha256\":\"{}\",\"sha256\":\"", "0".repeat(64)),
        1,
    );
    entries[0].1 = envelope(&world.key, doubled.as_bytes());
    let len = entries[0].1.len() as u64;
    entries[0].0.set_size(len);
    entries[0].0.set_cksum();
    let bad = world.media.join("duplicate-key.tar");
    write_entries(&bad, &entries);
    refused(&world, &[&bad], "duplicate key \"sha256\"");
}

#[test]
fn medium_policy_digest_recorded_is_the_carried_file_hash() {
    let world = World::new(1);
    let (good, out) = world.export("good.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    imported(&world, &[&good]);
    let conn = rusqlite::Connection::open(world.high.join("state.db")).unwrap();
    let (recorded, tuf): (String, String) = conn
        .query_row(
            "SELECT medium_policy_sha256, tuf_versions FROM imports",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        recorded,
        hex::encode(gateway::crypto::sha256(
            &std::fs::read(&world.policy).unwrap()
        ))
    );
    let tuf: Value = serde_json::from_str(&tuf).unwrap();
    assert!(tuf["root"].as_u64().unwrap() >= 1, "{tuf}");
}

fn pack_digest_of(statement: &Value) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for s in statement["subject"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        let size = statement["predicate"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap()["size"]
            .as_u64()
            .unwrap();
        h.update(name.as_bytes());
        h.update([0]);
        h.update(s["digest"]["sha256"].as_str().unwrap().as_bytes());
        h.update([0]);
        h.update(size.to_string().as_bytes());
        h.update([b'\n']);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

impl World {
    fn export_and_resign(&self, name: &str, edit: &mut dyn FnMut(&mut Value)) -> PathBuf {
        let (good, out) = self.export(&format!("{name}.orig"), &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        self.resign(&good, name, edit)
    }

    fn write_resigned(
        &self,
        mut entries: Vec<crate::world::Entry>,
        statement: &Value,
        name: &str,
    ) -> PathBuf {
        entries[0].1 = envelope(&self.key, &serde_json::to_vec(statement).unwrap());
        let len = entries[0].1.len() as u64;
        entries[0].0.set_size(len);
        entries[0].0.set_cksum();
        let out = self.media.join(name);
        write_entries(&out, &entries);
        out
    }
}

#[test]
fn control_characters_from_a_medium_never_reach_the_terminal() {
    let world = World::new(1);
    let (good, out) = world.export("good.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let paint = "\u{1b}[2K\rimported 3 artifact(s)";
    let mut bad_media = Vec::new();
    // A tar numeric field holding an escape sequence.
    let mut bytes = std::fs::read(&good).unwrap();
    bytes[124..136].copy_from_slice(b"\x1b[2K\rimports");
    let numeric = world.media.join("numeric.tar");
    std::fs::write(&numeric, &bytes).unwrap();
    bad_media.push(numeric);
    // An unknown key id.
    let mut entries = read_entries(&good);
    let mut env: Value = serde_json::from_slice(&entries[0].1).unwrap();
    env["signatures"][0]["keyid"] = Value::String(paint.into());
    entries[0].1 = serde_json::to_vec(&env).unwrap();
    let len = entries[0].1.len() as u64;
    entries[0].0.set_size(len);
    entries[0].0.set_cksum();
    let keyid = world.media.join("keyid.tar");
    write_entries(&keyid, &entries);
    bad_media.push(keyid);
    // A signed export time.
    let time = world.resign(&good, "time.tar", &mut |s| {
        s["predicate"]["exportTime"] = Value::String(paint.into());
    });
    bad_media.push(time);
    for medium in &bad_media {
        let out = world.import(&[medium.as_path()], &[]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            !err.contains('\u{1b}') && !err.contains('\r'),
            "raw control characters: {err:?}"
        );
    }
}

/// After `airgate exporter revoke`, a genuine medium signed by the revoked key
/// is refused naming the exporter, the key and the revocation time; the list
/// shows the key as revoked, and a second revoke is a usage error.
#[test]
fn medium_signed_by_a_revoked_exporter_key_is_refused_naming_the_key() {
    let world = World::new(1);
    let (good, out) = world.export("good.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let state = world.high.to_str().unwrap();
    let revoke = || {
        crate::common::airgate([
            "exporter",
            "revoke",
            "--state",
            state,
            "--reason",
            "laptop lost",
            "low-1",
        ])
    };
    let out = revoke();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = refused(&world, &[&good], "of exporter \"low-1\", revoked at");
    assert!(err.contains("is signed by key"), "{err}");
    let list = crate::common::airgate(["exporter", "list", "--state", state]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("revoked at"));
    assert_eq!(revoke().status.code(), Some(2));
}
