//! Export -> import -> verify: the round trip, the custody chain, and named
//! negative media, each refused with the state directory unchanged.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{airgate, stderr};
use crate::interop::python_verify;
use crate::world::{state_fingerprint, World};

const PRIVATE_IDENTITY: &str = "https://airgate.internal/gateway";
const PRIVATE_ISSUER: &str = "https://oidc.airgate.internal";

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sigs_of(high: &Path, name: &str) -> (Vec<Value>, String) {
    let conn = rusqlite::Connection::open(high.join("state.db")).unwrap();
    let (sigs, sha): (Vec<u8>, String) = conn
        .query_row(
            "SELECT sigs, sha256 FROM artifacts WHERE name = ?1 ORDER BY import_id DESC LIMIT 1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    // Stored compressed (gateway::state::sigs_codec).
    assert!(sigs.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]), "a zstd frame");
    let sigs = gateway::state::sigs_codec::decode(sigs).unwrap();
    (serde_json::from_slice(&sigs).unwrap(), sha)
}

#[test]
fn export_import_verify_round_trip_keeps_the_custody_chain() {
    let world = World::new(4);
    let (medium, out) = world.export("media.tar", &[]);
    assert!(out.status.success(), "export: {}", stderr(&out));
    let out = world.import(&[&medium], &["--json"]);
    assert!(out.status.success(), "import: {}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["artifacts"].as_array().unwrap().len(), 4);
    for a in report["artifacts"].as_array().unwrap() {
        assert_eq!(a["decision"], "accepted");
        assert_eq!(a["upstream"]["identity"], gateway::demo::SIMULATED_IDENTITY);
        assert!(a["logIndex"].is_u64());
    }

    let name = "pkg-00003.tar.gz";
    let (sigs, sha) = sigs_of(&world.high, name);
    assert_eq!(
        sigs.len(),
        3,
        ".sigs holds [upstream, our signature, our VSA]"
    );
    // The upstream bundle is carried untouched.
    let original: Value = serde_json::from_slice(
        &std::fs::read(world.artifacts.join(format!("{name}.sigstore.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(sigs[0], original);

    let dir = world.root().join("check");
    std::fs::create_dir_all(&dir).unwrap();
    let artifact = dir.join(name);
    std::fs::copy(gateway::state::blob_path(&world.high, &sha), &artifact).unwrap();
    assert_eq!(
        std::fs::read(&artifact).unwrap(),
        std::fs::read(world.artifacts.join(name)).unwrap()
    );
    let ours = dir.join("ours.sigstore.json");
    std::fs::write(&ours, serde_json::to_vec(&sigs[1]).unwrap()).unwrap();

    // airgate verify against the private root.
    let out = airgate([
        "verify".as_ref(),
        "--bundle".as_ref(),
        ours.as_os_str(),
        "--trusted-root".as_ref(),
        world.high.join("trusted_root.json").as_os_str(),
        "--certificate-identity".as_ref(),
        PRIVATE_IDENTITY.as_ref(),
        "--certificate-oidc-issuer".as_ref(),
        PRIVATE_ISSUER.as_ref(),
        artifact.as_os_str(),
    ]);
    assert!(out.status.success(), "airgate verify: {}", stderr(&out));

    // The whole .sigs array: the upstream bundle fails under the private root,
    // airgate's verifies, so the array verifies and says which one did.
    let sigs_file = dir.join("served.sigs");
    std::fs::write(&sigs_file, serde_json::to_vec(&sigs).unwrap()).unwrap();
    let verify_sigs = |identity: &str| {
        airgate([
            "verify".as_ref(),
            "--bundle".as_ref(),
            sigs_file.as_os_str(),
            "--trusted-root".as_ref(),
            world.high.join("trusted_root.json").as_os_str(),
            "--certificate-identity".as_ref(),
            identity.as_ref(),
            "--certificate-oidc-issuer".as_ref(),
            PRIVATE_ISSUER.as_ref(),
            artifact.as_os_str(),
        ])
    };
    let out = verify_sigs(PRIVATE_IDENTITY);
    assert!(out.status.success(), "verify .sigs: {}", stderr(&out));
    assert!(
        stderr(&out).contains("bundle 2 of 3 verified"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("bundle 1 of 3: check"),
        "{}",
        stderr(&out)
    );
    let out = verify_sigs("https://someone.else.invalid");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    std::fs::write(&sigs_file, b"[]").unwrap();
    let out = verify_sigs(PRIVATE_IDENTITY);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("holds 0 bundles"), "{}", stderr(&out));

    // The custody extension names the upstream signer.
    let cert_b64 = sigs[1]["verificationMaterial"]["certificate"]["rawBytes"]
        .as_str()
        .unwrap();
    let cert =
        gateway::x509::Certificate::from_der(&gateway::encoding::b64_decode(cert_b64).unwrap())
            .unwrap();
    let ext = cert
        .extension(gateway::private_ca::ca::OID_CUSTODY)
        .expect("custody extension");
    assert!(!ext.critical);
    let custody = gateway::private_ca::Custody::from_der(&ext.value).unwrap();
    assert_eq!(custody.upstream_identity, gateway::demo::SIMULATED_IDENTITY);
    assert_eq!(custody.upstream_issuer, gateway::demo::SIMULATED_ISSUER);
    let upstream_index: u64 = original["verificationMaterial"]["tlogEntries"][0]["logIndex"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // One session leaf signs all four artifacts of this signer, so the
    // extension leaves the per-artifact log index to each VSA.
    assert_eq!(custody.upstream_log_index, None);
    let vsa = dsse_statement(&sigs[2]);
    assert_eq!(
        vsa["predicate"]["inputAttestations"][0]["annotations"]["logIndex"],
        upstream_index
    );
    let other = sigs_of(&world.high, "pkg-00000.tar.gz").0;
    assert_eq!(
        other[1]["verificationMaterial"]["certificate"],
        sigs[1]["verificationMaterial"]["certificate"],
        "one leaf per session and upstream signer"
    );
    assert_ne!(other[1]["messageSignature"], sigs[1]["messageSignature"]);

    // Importing the same medium again changes nothing.
    let before = state_fingerprint(&world.high);
    let out = world.import(&[&medium], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("already imported"),
        "{}",
        stdout(&out)
    );
    assert_eq!(before, state_fingerprint(&world.high));

    let out = airgate(["log", "verify", "--state", world.high.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The re-signed artifact of an imported medium, written out with our bundle.
/// The in-toto statement a DSSE bundle's envelope carries.
fn dsse_statement(bundle: &Value) -> Value {
    let payload = bundle["dsseEnvelope"]["payload"].as_str().unwrap();
    serde_json::from_slice(&gateway::encoding::b64_decode(payload).unwrap()).unwrap()
}

fn reimported(world: &World, name: &str) -> (PathBuf, PathBuf) {
    let (sigs, sha) = sigs_of(&world.high, name);
    let dir = world.root().join("check");
    std::fs::create_dir_all(&dir).unwrap();
    let artifact = dir.join(name);
    std::fs::copy(gateway::state::blob_path(&world.high, &sha), &artifact).unwrap();
    let ours = dir.join("ours.sigstore.json");
    std::fs::write(&ours, serde_json::to_vec(&sigs[1]).unwrap()).unwrap();
    (artifact, ours)
}

#[test]
#[ignore = "interop: real clients, run by tests/run-all.sh"]
fn sigstore_python_verifies_the_reimported_artifact_offline() {
    // Every option a user may reach for: a split medium with its chunk index
    // named, a dry run, then the real import with --json.
    let world = World::new(4);
    let (base, out) = world.export("media.tar", &["--split", "2K", "--sync"]);
    assert!(out.status.success(), "export: {}", stderr(&out));
    let chunks: Vec<PathBuf> = (0..)
        .map(|i| PathBuf::from(format!("{}.{i:03}", base.display())))
        .take_while(|p| p.exists())
        .collect();
    let chunk_refs: Vec<&Path> = chunks.iter().map(PathBuf::as_path).collect();
    let index = format!("{}.chunks.json", base.display());
    let before = state_fingerprint(&world.high);
    let out = world.import(&chunk_refs, &["--dry-run", "--chunk-index", &index]);
    assert!(out.status.success(), "dry run: {}", stderr(&out));
    assert_eq!(
        before,
        state_fingerprint(&world.high),
        "a dry run stores nothing"
    );
    let out = world.import(&chunk_refs, &["--json", "--chunk-index", &index]);
    assert!(out.status.success(), "import: {}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["checkpoint"].as_str().unwrap().contains("\n\n"));
    let (artifact, ours) = reimported(&world, "pkg-00001.tar.gz");
    python_verify(
        &world.high.join("trust_config.json"),
        &ours,
        &artifact,
        PRIVATE_IDENTITY,
        PRIVATE_ISSUER,
    )
    .expect("sigstore-python accepts the re-signed artifact");
    // One flipped byte of the artifact is refused.
    let mut bytes = std::fs::read(&artifact).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&artifact, bytes).unwrap();
    assert!(python_verify(
        &world.high.join("trust_config.json"),
        &ours,
        &artifact,
        PRIVATE_IDENTITY,
        PRIVATE_ISSUER,
    )
    .is_err());
}

#[test]
fn dry_run_reports_and_stores_nothing() {
    let world = World::new(2);
    let (medium, out) = world.export("media.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = state_fingerprint(&world.high);
    let out = world.import(&[&medium], &["--dry-run", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["artifacts"][0]["decision"], "accepted");
    assert!(report["artifacts"][0]["logIndex"].is_null());
    assert_eq!(before, state_fingerprint(&world.high));
}

/// Rewrites a medium tar entry by entry (the manifest stays last unless `edit` moves it).
/// The entries of a tar, in order.
type Entries = Vec<(tar::Header, Vec<u8>)>;

fn rewrite_tar(src: &Path, dst: &Path, edit: &mut dyn FnMut(&mut Entries)) {
    let mut archive = tar::Archive::new(std::fs::File::open(src).unwrap());
    let mut entries: Vec<(tar::Header, Vec<u8>)> = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_path(&path).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        entries.push((h, data));
    }
    edit(&mut entries);
    let mut b = tar::Builder::new(std::fs::File::create(dst).unwrap());
    for (h, data) in entries {
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap();
}

fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    {
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
    }
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(kind);
    h.set_cksum();
    h
}

/// Imports `medium`, expecting a refusal (exit 1) whose message contains `expect`,
/// and the state directory unchanged.
fn refused(world: &World, media: &[&Path], extra: &[&str], expect: &str) {
    let before = state_fingerprint(&world.high);
    let out = world.import(media, extra);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "expected a refusal: {err}");
    assert!(err.contains(expect), "expected {expect:?} in: {err}");
    assert_eq!(
        before,
        state_fingerprint(&world.high),
        "state changed after a refused import"
    );
}

struct Media {
    world: World,
    good: PathBuf,
}

fn media() -> Media {
    let world = World::new(3);
    let (good, out) = world.export("good.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    Media { world, good }
}

fn variant(m: &Media, name: &str, edit: &mut dyn FnMut(&mut Entries)) -> PathBuf {
    let path = m.world.media.join(name);
    rewrite_tar(&m.good, &path, edit);
    path
}

#[test]
fn medium_with_tampered_artifact_byte() {
    let m = media();
    let bad = variant(&m, "tampered-artifact-byte.tar", &mut |entries| {
        let (_, data) = entries
            .iter_mut()
            .find(|(h, _)| h.path().unwrap().starts_with("artifacts/"))
            .unwrap();
        data[0] ^= 1;
    });
    refused(&m.world, &[&bad], &[], "the signed manifest says");
}

#[test]
fn medium_with_entry_not_in_manifest() {
    let m = media();
    let bad = variant(&m, "entry-not-in-manifest.tar", &mut |entries| {
        let extra = b"smuggled".to_vec();
        let mut h = tar::Header::new_gnu();
        h.set_path("artifacts/0-smuggled.bin").unwrap();
        h.set_size(extra.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        entries.insert(1, (h, extra));
    });
    refused(&m.world, &[&bad], &[], "is not in the signed manifest");
}

#[test]
fn medium_signed_by_unenrolled_key() {
    let world = World::new(1);
    let other = world.root().join("other-key");
    let out = airgate(["export-key", "init", "--dir", other.to_str().unwrap()]);
    assert!(out.status.success());
    let out_path = world.media.join("unenrolled.tar");
    let out = airgate([
        "export",
        "--policy",
        world.policy.to_str().unwrap(),
        "--artifacts",
        world.artifacts.to_str().unwrap(),
        "--key",
        other.join("exporter.key.pem").to_str().unwrap(),
        "--exporter",
        "intruder",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    refused(&world, &[&out_path], &[], "not an enrolled exporter key");
}

#[test]
fn medium_with_path_traversal_name() {
    let m = media();
    let bad = variant(&m, "path-traversal.tar", &mut |entries| {
        entries.insert(
            0,
            (
                header("../../etc/cron.d/evil", tar::EntryType::Regular, 4),
                b"evil".to_vec(),
            ),
        );
    });
    refused(&m.world, &[&bad], &[], "unsafe name");
    assert!(!m.world.high.join("../etc").exists());
}

#[test]
fn medium_with_symlink_entry() {
    let m = media();
    let bad = variant(&m, "symlink.tar", &mut |entries| {
        let mut h = header("artifacts/link", tar::EntryType::Symlink, 0);
        h.set_link_name("/etc/shadow").unwrap();
        h.set_cksum();
        entries.insert(0, (h, Vec::new()));
    });
    refused(&m.world, &[&bad], &[], "symbolic link");
}

#[test]
fn medium_with_hardlink_entry() {
    let m = media();
    let bad = variant(&m, "hardlink.tar", &mut |entries| {
        let mut h = header("artifacts/hard", tar::EntryType::Link, 0);
        h.set_link_name("artifacts/pkg-00000.tar.gz").unwrap();
        h.set_cksum();
        entries.insert(0, (h, Vec::new()));
    });
    refused(&m.world, &[&bad], &[], "hard link");
}

#[test]
fn medium_with_duplicate_entry() {
    let m = media();
    let bad = variant(&m, "duplicate.tar", &mut |entries| {
        let first = entries[0].clone();
        entries.insert(1, first);
    });
    refused(&m.world, &[&bad], &[], "appears twice");
}

#[test]
fn truncated_medium() {
    let m = media();
    let bytes = std::fs::read(&m.good).unwrap();
    let bad = m.world.media.join("truncated.tar");
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let before = state_fingerprint(&m.world.high);
    let out = m.world.import(&[&bad], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("truncated") || err.contains("no manifest.intoto.json"),
        "{err}"
    );
    assert_eq!(before, state_fingerprint(&m.world.high));
}

#[test]
fn medium_starting_with_a_huge_entry_is_refused_from_its_header() {
    let m = media();
    // A header claiming a 100 GiB bundle where the manifest must be: refused
    // from the header, before reading its data.
    let bad = m.world.media.join("oversized.tar");
    let mut w = tar::Builder::new(std::fs::File::create(&bad).unwrap());
    let h = header(
        "bundles/huge.sigstore.json",
        tar::EntryType::Regular,
        100 << 30,
    );
    w.append(&h, &b""[..]).ok();
    drop(w);
    refused(&m.world, &[&bad], &[], "not manifest.intoto.json");
}

#[test]
fn split_medium_missing_and_swapped_chunks() {
    let world = World::new(6);
    let (base, out) = world.export("split.tar", &["--split", "2K"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let chunk = |i: usize| PathBuf::from(format!("{}.{i:03}", base.display()));
    let mut chunks: Vec<PathBuf> = (0..).map(chunk).take_while(|p| p.exists()).collect();
    assert!(chunks.len() >= 3, "expected several chunks");

    // Missing chunk: named.
    let without: Vec<&Path> = chunks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, p)| p.as_path())
        .collect();
    refused(&world, &without, &[], "chunk \"split.tar.001\": is missing");

    // Swapped chunks (contents exchanged): the first bad one is named.
    let a = std::fs::read(&chunks[0]).unwrap();
    let b = std::fs::read(&chunks[1]).unwrap();
    std::fs::write(&chunks[0], &b).unwrap();
    std::fs::write(&chunks[1], &a).unwrap();
    let all: Vec<&Path> = chunks.iter().map(PathBuf::as_path).collect();
    refused(&world, &all, &[], "chunk \"split.tar.000\"");
    std::fs::write(&chunks[0], &a).unwrap();
    std::fs::write(&chunks[1], &b).unwrap();

    // Intact chunks, given in any order, import.
    chunks.reverse();
    let all: Vec<&Path> = chunks.iter().map(PathBuf::as_path).collect();
    let out = world.import(&all, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn medium_older_than_the_transit_window_or_from_the_future() {
    let world = World::new(1);
    let old = (chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339();
    let stale = world.export_at("stale.tar", &old);
    refused(
        &world,
        &[&stale],
        &[],
        "older than the 30-day transit window",
    );
    refused(&world, &[&stale], &[], "max-transit-age-days");
    let future = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let early = world.export_at("future.tar", &future);
    refused(&world, &[&early], &[], "is in the future");
}

#[test]
fn import_offers_no_danger_as_of() {
    let m = media();
    let before = state_fingerprint(&m.world.high);
    let late = (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339();
    let out = m.world.import(&[&m.good], &["--danger-as-of", &late]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("real clock"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("max-transit-age-days"),
        "{}",
        stderr(&out)
    );
    assert_eq!(before, state_fingerprint(&m.world.high));
}

#[test]
fn tuf_rollback_relative_to_state() {
    let world = World::new(2);
    // Medium B carries the TUF repository as it is now (targets v1). Its
    // export time is a minute later than medium A's, so the export-order
    // check passes and the TUF state is what refuses it.
    let later = (chrono::Utc::now() + chrono::Duration::seconds(60)).to_rfc3339();
    let older = world.export_at("older.tar", &later);
    // The upstream republishes; medium A carries newer metadata.
    let trusted_root = std::fs::read(world.upstream.ca_dir.join("trusted_root.json")).unwrap();
    gateway::tuf_repo::publish(
        &world.upstream.tuf_repo,
        &world.upstream.tuf_keys,
        &[("trusted_root.json", &trusted_root)],
        chrono::Utc::now(),
    )
    .unwrap();
    let (newer, out) = world.export("newer.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = world.import(&[&newer], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    refused(&world, &[&older], &[], "rollback");
}

#[test]
fn bundle_failing_under_the_high_side_policy() {
    let m = media();
    let policy = m.world.high.join("policy.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace(
            gateway::demo::SIMULATED_IDENTITY,
            "https://github.com/other-org/app/.github/workflows/release.yml@refs/tags/v1.0.0",
        ),
    )
    .unwrap();
    refused(&m.world, &[&m.good], &[], "policy.identity");
}

#[test]
fn replayed_medium_with_reencoded_manifest_is_already_imported() {
    let m = media();
    let out = m.world.import(&[&m.good], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Same signed statement, different envelope bytes.
    let replay = variant(&m, "replay-reencoded.tar", &mut |entries| {
        let (h, data) = entries.first_mut().unwrap();
        let value: Value = serde_json::from_slice(data).unwrap();
        *data = serde_json::to_vec_pretty(&value).unwrap();
        h.set_size(data.len() as u64);
        h.set_cksum();
    });
    assert_ne!(
        std::fs::read(&replay).unwrap(),
        std::fs::read(&m.good).unwrap()
    );
    let before = state_fingerprint(&m.world.high);
    let out = m.world.import(&[&replay], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("already imported"),
        "{}",
        stdout(&out)
    );
    assert_eq!(before, state_fingerprint(&m.world.high));
}

#[test]
fn medium_exported_before_the_last_import_is_refused() {
    let world = World::new(2);
    let (first, out) = world.export("first.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let later = (chrono::Utc::now() + chrono::Duration::seconds(60)).to_rfc3339();
    let second = world.export_at("second.tar", &later);
    // Delivered out of order: the second arrives first.
    let out = world.import(&[&second], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    refused(&world, &[&first], &[], "is before");
    refused(&world, &[&first], &[], "import #1 from exporter \"low-1\"");
    // A newer export is accepted.
    let newest = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc3339();
    let third = world.export_at("third.tar", &newest);
    let out = world.import(&[&third], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn sigs_array_keeps_only_the_verified_bundle() {
    let world = World::new(2);
    let name = "pkg-00001.tar.gz";
    let single = world.artifacts.join(format!("{name}.sigstore.json"));
    let good: Value = serde_json::from_slice(&std::fs::read(&single).unwrap()).unwrap();
    let mut forged = good.clone();
    forged["messageSignature"]["signature"] = Value::String("AAAA".into());
    let junk = serde_json::json!({ "mediaType": "<img src=x onerror=alert(1)>" });
    std::fs::remove_file(&single).unwrap();
    std::fs::write(
        world.artifacts.join(format!("{name}.sigs")),
        serde_json::to_vec(&[junk, forged, good.clone()]).unwrap(),
    )
    .unwrap();
    let (medium, out) = world.export("sigs.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = world.import(&[&medium], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (sigs, _) = sigs_of(&world.high, name);
    assert_eq!(
        sigs.len(),
        3,
        "[the upstream bundle that verified, our signature, our VSA]"
    );
    assert_eq!(sigs[0], good);
    let conn = rusqlite::Connection::open(world.high.join("state.db")).unwrap();
    let raw: Vec<u8> = conn
        .query_row("SELECT sigs FROM artifacts WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("onerror"));
}

#[test]
fn failed_import_leaves_no_orphan_blobs() {
    let m = media();
    // Block the store's directory for the last artifact, so moving it fails
    // after the others have been moved in.
    let manifest = {
        let mut archive = tar::Archive::new(std::fs::File::open(&m.good).unwrap());
        let mut first = Vec::new();
        let mut entries = archive.entries().unwrap();
        entries
            .next()
            .unwrap()
            .unwrap()
            .read_to_end(&mut first)
            .unwrap();
        let env: Value = serde_json::from_slice(&first).unwrap();
        let payload = gateway::encoding::b64_decode(env["payload"].as_str().unwrap()).unwrap();
        serde_json::from_slice::<Value>(&payload).unwrap()
    };
    let last_artifact = manifest["subject"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|s| s["name"].as_str().unwrap().starts_with("artifacts/"))
        .unwrap();
    let last_sha = last_artifact["digest"]["sha256"].as_str().unwrap();
    let blocker = gateway::state::blob_path(&m.world.high, last_sha)
        .parent()
        .unwrap()
        .to_path_buf();
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"not a directory").unwrap();
    let before = state_fingerprint(&m.world.high);

    let out = m.world.import(&[&m.good], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(before, state_fingerprint(&m.world.high));
    let mut blobs = Vec::new();
    let mut stack = vec![m.world.high.join("blobs")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p != blocker {
                blobs.push(p);
            }
        }
    }
    assert!(blobs.is_empty(), "orphan blobs left: {blobs:?}");
    let staging = m.world.high.join("staging");
    assert!(
        !staging.exists() || std::fs::read_dir(&staging).unwrap().next().is_none(),
        "staging left behind"
    );

    // With the obstacle gone, the medium imports.
    std::fs::remove_file(&blocker).unwrap();
    let out = m.world.import(&[&m.good], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn medium_over_the_metadata_limit_is_refused_before_staging() {
    let m = media();
    let policy = m.world.high.join("policy.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace(
            "max-transit-age-days = 30",
            "max-transit-age-days = 30\nmax-metadata-size = \"2K\"",
        ),
    )
    .unwrap();
    refused(&m.world, &[&m.good], &[], "max-metadata-size");
    std::fs::write(
        &policy,
        text.replace(
            "max-transit-age-days = 30",
            "max-transit-age-days = 30\nmax-medium-size = 1024",
        ),
    )
    .unwrap();
    refused(&m.world, &[&m.good], &[], "max-medium-size");
}

/// `airgate demo --dir demo1` (relative, the first thing a newcomer types)
/// completes, carrying the files and the signed multi-arch image (pulled
/// back through the registry with its upstream digest), and a rerun into
/// the now non-empty directory is refused as usage.
#[test]
fn demo_with_a_relative_dir_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_airgate"))
            .args(["demo", "--dir", "demo1"])
            .current_dir(tmp.path())
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tmp.path().join("demo1/high/state.db").is_file());
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "verified image simulated/app:v1",
        "cosign .sig + bundle referrer; attestations: https://slsa.dev/provenance/v1",
        "accepted image simulated/app:v1",
        "(the upstream digest)",
        "conda channel listing app-1.0.0-0.conda",
        "airgate VSA, airgate CEP 27 publish attestation]",
        ".sig\",\"v1\"]",
    ] {
        assert!(text.contains(expected), "{expected} not in {text}");
    }
    let again = run();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
}

/// `airgate inspect` needs no state: without a key it labels everything as the
/// medium's claim; with the exporter's key it verifies and shows the identity;
/// another key, a flipped manifest byte and a non-medium are refused (exit 1).
#[test]
fn inspect_shows_claims_verifies_with_the_key_and_refuses_forgeries() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = tmp.path().join("demo");
    let out = airgate(["demo", "--dir", demo.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let medium = demo.join("transfer/media.tar");
    let key = demo.join("low/exporter-key/exporter.pub.pem");
    let inspect = |medium: &Path, extra: &[&str]| {
        let mut args = vec!["inspect", medium.to_str().unwrap()];
        args.extend_from_slice(extra);
        airgate(args)
    };

    let out = inspect(&medium, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NOT CHECKED"), "{text}");
    assert!(text.contains("\"app-1.0.0.tar.gz\""), "{text}");
    assert!(text.contains("demo-low-side"), "{text}");

    let out = inspect(
        &medium,
        &["--exporter-key", key.to_str().unwrap(), "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signature"], "verified");
    assert_eq!(v["statementSha256"].as_str().unwrap().len(), 64);
    assert_eq!(v["manifest"]["artifacts"].as_array().unwrap().len(), 4);

    // Another key: the enclave's CT key is not the exporter's.
    let other = tmp.path().join("other.pub.pem");
    let root = gateway::bundle::TrustedRoot::from_json(
        &std::fs::read(demo.join("high/trusted_root.json")).unwrap(),
    )
    .unwrap();
    std::fs::write(&other, root.tlogs[0].key.to_pem()).unwrap();
    let out = inspect(&medium, &["--exporter-key", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not by the given key"),
        "{}",
        stderr(&out)
    );

    // One character of the exporter's signature changed: the claims still
    // parse, the signature does not verify.
    let mut bytes = std::fs::read(&medium).unwrap();
    let at = bytes.windows(6).position(|w| w == b"\"sig\":").unwrap() + 10;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let forged = tmp.path().join("forged.tar");
    std::fs::write(&forged, &bytes).unwrap();
    assert!(inspect(&forged, &[]).status.success());
    let out = inspect(&forged, &["--exporter-key", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("signature"), "{}", stderr(&out));

    let junk = tmp.path().join("junk.tar");
    std::fs::write(&junk, vec![0x41u8; 4096]).unwrap();
    assert_eq!(inspect(&junk, &[]).status.code(), Some(1));
}

/// `airgate imports list` and `imports show N` read back what import recorded;
/// an unknown number is a usage error.
#[test]
fn imports_list_and_show_read_back_the_stored_report() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = tmp.path().join("demo");
    let out = airgate(["demo", "--dir", demo.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let high = demo.join("high");
    let state = high.to_str().unwrap();

    let out = airgate(["imports", "list", "--state", state, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["exporter"], "demo-low-side");
    assert_eq!(rows[0]["artifacts"], 4);
    let id = rows[0]["id"].as_i64().unwrap().to_string();

    let out = airgate(["imports", "show", "--state", state, &id, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "app-1.0.0.spdx.json",
            "app-1.0.0.tar.gz",
            "bin/app-linux-amd64",
            "conda/app-1.0.0-0.conda"
        ]
    );
    let out = airgate(["imports", "show", "--state", state, &id]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"accepted\""));

    let out = airgate(["imports", "show", "--state", state, "99"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no import #99"));
}
