//! The command line as a user meets it: `artifact get`, and the messages
//! and refusals around ordinary mistakes (a public key as --key, an
//! existing --out, a non-empty CA directory, --json on errors, a closed
//! stdout pipe).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{airgate, stderr};
use crate::world::World;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A world with two artifacts exported and imported.
fn imported() -> World {
    let world = World::new(2);
    let (medium, out) = world.export("m.tar", &[]);
    assert!(out.status.success(), "export: {}", stderr(&out));
    let out = world.import(&[&medium], &[]);
    assert!(out.status.success(), "import: {}", stderr(&out));
    world
}

fn get(world: &World, name: &str, out_dir: &Path, json: bool) -> std::process::Output {
    let mut args = vec![
        "artifact".to_string(),
        "get".into(),
        "--state".into(),
        world.high.display().to_string(),
        name.into(),
        "--out".into(),
        out_dir.display().to_string(),
    ];
    if json {
        args.push("--json".into());
    }
    airgate(&args)
}

#[test]
fn artifact_get_writes_the_artifact_and_a_bundle_that_verifies() {
    let world = imported();
    let out_dir = world.root().join("got");
    let out = get(&world, "pkg-00001.tar.gz", &out_dir, true);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let artifact = out_dir.join("pkg-00001.tar.gz");
    assert_eq!(
        std::fs::read(&artifact).unwrap(),
        std::fs::read(world.artifacts.join("pkg-00001.tar.gz")).unwrap()
    );
    assert_eq!(doc["sigsElement"], 1, "[upstream, airgate]: {doc}");
    let bundle = out_dir.join("pkg-00001.tar.gz.sigstore.json");
    let sigs: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out_dir.join("pkg-00001.tar.gz.sigs")).unwrap())
            .unwrap();
    let ours: serde_json::Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    assert_eq!(sigs[1], ours);
    let identity = doc["identity"].as_str().unwrap();
    let issuer = doc["issuer"].as_str().unwrap();
    let verify = airgate([
        "verify",
        "--trusted-root",
        world.high.join("trusted_root.json").to_str().unwrap(),
        "--bundle",
        bundle.to_str().unwrap(),
        "--certificate-identity",
        identity,
        "--certificate-oidc-issuer",
        issuer,
        artifact.to_str().unwrap(),
    ]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    // The human form prints a recipe with the real identity and trust files.
    let out = get(&world, "pkg-00001.tar.gz", &out_dir, false);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("--cert-identity {identity}")),
        "{text}"
    );
    assert!(text.contains("trust_config.json"), "{text}");
}

#[test]
fn artifact_get_refuses_a_blob_changed_in_the_store_and_writes_nothing() {
    let world = imported();
    let out = airgate([
        "artifact",
        "get",
        "--json",
        "--state",
        world.high.to_str().unwrap(),
        "pkg-00000.tar.gz",
        "--out",
        world.root().join("first").to_str().unwrap(),
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sha = doc["sha256"].as_str().unwrap();
    let blob = gateway::state::blob_path(&world.high, sha);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();
    let out_dir = world.root().join("got");
    let out = get(&world, "pkg-00000.tar.gz", &out_dir, false);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no longer has its recorded SHA-256"),
        "{}",
        stderr(&out)
    );
    let left: Vec<_> = std::fs::read_dir(&out_dir).unwrap().collect();
    assert!(left.is_empty(), "a refused get left {left:?}");
}

#[test]
fn artifact_get_of_an_unknown_or_traversing_name_is_a_usage_error() {
    let world = imported();
    let out_dir = world.root().join("got");
    for (name, expect) in [
        (
            "no-such.tar.gz",
            "holds no artifact named \"no-such.tar.gz\"",
        ),
        ("../escape", "'..' component"),
    ] {
        let out = get(&world, name, &out_dir, false);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(expect), "{name}: {}", stderr(&out));
    }
    assert!(!world.root().join("escape").exists());
}

#[test]
fn export_with_a_public_key_as_key_says_so() {
    let world = World::new(1);
    let public = world.key.with_file_name("exporter.pub.pem");
    let out = airgate([
        "export",
        "--policy",
        world.policy.to_str().unwrap(),
        "--artifacts",
        world.artifacts.to_str().unwrap(),
        "--key",
        public.to_str().unwrap(),
        "--exporter",
        "low-1",
        "--out",
        world.media.join("m.tar").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("export key:") && err.contains("is a public key"),
        "{err}"
    );
    assert!(!err.contains("private CA"), "{err}");
}

#[test]
fn export_refuses_to_replace_an_existing_medium_without_force() {
    let world = World::new(1);
    let (medium, out) = world.export("m.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = std::fs::read(&medium).unwrap();
    let (_, again) = world.export("m.tar", &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already exists; pass --force"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(&medium).unwrap(), before);
    let (_, forced) = world.export("m.tar", &["--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
}

#[test]
fn ca_init_refuses_a_non_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), b"keep me").unwrap();
    let out = airgate(["ca", "init", "--state", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not empty (it holds \"notes.txt\")"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn json_errors_are_one_json_document_for_usage_and_rejection() {
    let out = airgate([
        "verify",
        "--json",
        "--key",
        "/nonexistent/key.pem",
        "--bundle",
        "/nonexistent/b.json",
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    assert_eq!(doc["exitCode"], 2);
    assert!(doc["error"]
        .as_str()
        .unwrap()
        .contains("/nonexistent/key.pem"));
    // A rejection prints its own report: still exactly one document.
    let world = imported();
    let bundle = world.artifacts.join("pkg-00000.tar.gz.sigstore.json");
    let out = airgate([
        "verify",
        "--json",
        "--bundle",
        bundle.to_str().unwrap(),
        "--certificate-identity",
        "someone@else.example",
        "--certificate-oidc-issuer",
        "https://else.example",
        "--trusted-root",
        world
            .upstream
            .ca_dir
            .join("trusted_root.json")
            .to_str()
            .unwrap(),
        world.artifacts.join("pkg-00000.tar.gz").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    assert_eq!(doc["verified"], false);
}

#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    let world = imported();
    let mut child = Command::new(env!("CARGO_BIN_EXE_airgate"))
        .args(["imports", "list", "--state"])
        .arg(&world.high)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn sign_with_a_predicate_attests_the_file_as_a_logged_dsse_envelope() {
    let world = World::new(1);
    let file = world.artifacts.join("pkg-00000.tar.gz");
    let predicate = world.root().join("provenance.json");
    std::fs::write(
        &predicate,
        br#"{"buildDefinition":{"buildType":"https://example.com/t"}}"#,
    )
    .unwrap();
    let bundle = world.root().join("out.sigstore.json");
    let out = airgate([
        "sign",
        "--state",
        world.high.to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
        "--predicate",
        predicate.to_str().unwrap(),
        "--predicate-type",
        "https://slsa.dev/provenance/v1",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let attestation = world.root().join("out.intoto.sigstore.json");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&attestation).unwrap()).unwrap();
    assert_eq!(
        doc["verificationMaterial"]["tlogEntries"][0]["kindVersion"]["kind"],
        "dsse"
    );
    let ca: serde_json::Value =
        serde_json::from_slice(&std::fs::read(world.high.join("ca.json")).unwrap()).unwrap();
    let verify = |artifact: &Path| {
        airgate([
            "verify",
            "--json",
            "--trusted-root",
            world.high.join("trusted_root.json").to_str().unwrap(),
            "--bundle",
            attestation.to_str().unwrap(),
            "--certificate-identity",
            ca["default_identity"].as_str().unwrap(),
            "--certificate-oidc-issuer",
            ca["oidc_issuer"].as_str().unwrap(),
            artifact.to_str().unwrap(),
        ])
    };
    let out = verify(&file);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(v["entryKind"], "dsse/0.0.1");
    // The statement's subject is this file: another file does not verify.
    let other = world.root().join("other");
    std::fs::write(&other, b"other bytes").unwrap();
    assert_eq!(verify(&other).status.code(), Some(1));
    // A predicate that is not a JSON object is a usage error, nothing signed.
    std::fs::write(&predicate, b"[1, 2]").unwrap();
    let out = airgate([
        "sign",
        "--state",
        world.high.to_str().unwrap(),
        "-o",
        world.root().join("x.json").to_str().unwrap(),
        "--predicate",
        predicate.to_str().unwrap(),
        "--predicate-type",
        "https://slsa.dev/provenance/v1",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a JSON object"),
        "{}",
        stderr(&out)
    );
    assert!(!world.root().join("x.json").exists());
}

#[test]
fn verify_prints_the_verified_fields_of_an_imported_artifacts_vsa() {
    let world = imported();
    let sigs: Vec<serde_json::Value> = serde_json::from_slice(
        &gateway::state::StateReader::open(&world.high)
            .unwrap()
            .artifact_sigs("pkg-00001.tar.gz")
            .unwrap()
            .unwrap()
            .0,
    )
    .unwrap();
    let vsa = world.root().join("vsa.json");
    std::fs::write(&vsa, serde_json::to_vec(&sigs[2]).unwrap()).unwrap();
    let ca: serde_json::Value =
        serde_json::from_slice(&std::fs::read(world.high.join("ca.json")).unwrap()).unwrap();
    let out = airgate([
        "verify",
        "--trusted-root",
        world.high.join("trusted_root.json").to_str().unwrap(),
        "--bundle",
        vsa.to_str().unwrap(),
        "--certificate-identity",
        ca["default_identity"].as_str().unwrap(),
        "--certificate-oidc-issuer",
        ca["oidc_issuer"].as_str().unwrap(),
        world.artifacts.join("pkg-00001.tar.gz").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "verification summary (SLSA VSA v1",
        "subject:        \"pkg-00001.tar.gz\"",
        "result:         \"PASSED\"",
        gateway::demo::SIMULATED_IDENTITY,
        "policy:         \"airgate:policy.toml\"",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
}

#[test]
fn require_vsa_accepts_only_a_passed_summary_from_the_sigs() {
    let world = imported();
    let out_dir = world.root().join("got");
    let got = get(&world, "pkg-00000.tar.gz", &out_dir, true);
    assert!(got.status.success(), "{}", stderr(&got));
    let doc: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap();
    let verify = |bundle: &Path| {
        airgate([
            "verify",
            "--require-vsa",
            "--trusted-root",
            world.high.join("trusted_root.json").to_str().unwrap(),
            "--bundle",
            bundle.to_str().unwrap(),
            "--certificate-identity",
            doc["identity"].as_str().unwrap(),
            "--certificate-oidc-issuer",
            doc["issuer"].as_str().unwrap(),
            out_dir.join("pkg-00000.tar.gz").to_str().unwrap(),
        ])
    };
    // The .sigs holds the VSA: verified (element 3).
    let out = verify(&out_dir.join("pkg-00000.tar.gz.sigs"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("bundle 3 of 3 verified"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("result:         \"PASSED\""),
        "{}",
        stdout(&out)
    );
    // airgate's message signature alone verifies, but is not a summary.
    let out = verify(&out_dir.join("pkg-00000.tar.gz.sigstore.json"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("policy.vsa"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a verification summary"),
        "{}",
        stderr(&out)
    );
}
