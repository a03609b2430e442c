//! Images through real registries: Debian's `docker-registry` (CNCF
//! distribution 2.8) on 127.0.0.1, filled by skopeo from a signed layout;
//! `export` pulls and verifies, `import` re-signs, `airgate push` seeds a
//! registry that skopeo then pulls with the upstream digests. Broken
//! registries (a tampered layer, a lost blob, no signatures) are refused by
//! name with nothing written.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use gateway::demo::ImageSigning;

use crate::common::{airgate, stderr};
use crate::images::{skopeo, skopeo_pull, ImageWorld, REPOSITORY};

/// A `docker-registry` on a free loopback port, with its storage in `dir`;
/// killed when dropped.
struct DockerRegistry {
    child: Child,
    addr: SocketAddr,
    storage: PathBuf,
}

impl DockerRegistry {
    fn start(dir: &Path) -> DockerRegistry {
        Self::start_with(dir, "")
    }

    /// With basic auth (distribution's htpasswd backend, bcrypt from
    /// apache2-utils' `htpasswd`) for `user`:`password`.
    fn start_with_login(dir: &Path, user: &str, password: &str) -> DockerRegistry {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("htpasswd must be installed (tests/run-all.sh installs apache2-utils)");
        assert!(out.status.success(), "{}", stderr(&out));
        let file = dir.join("htpasswd");
        std::fs::write(&file, &out.stdout).unwrap();
        Self::start_with(
            dir,
            &format!(
                "auth:\n  htpasswd:\n    realm: airgate-test\n    path: {}\n",
                file.display()
            ),
        )
    }

    fn start_with(dir: &Path, auth: &str) -> DockerRegistry {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let storage = dir.join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{auth}",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry must be installed (tests/run-all.sh installs Debian's)");
        let registry = DockerRegistry {
            child,
            addr,
            storage,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// The stored data of a blob (distribution's filesystem layout).
    fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `skopeo copy` of one tag of the layout to the registry. The referrers
/// index is copied without --preserve-digests: skopeo 1.9 cannot write the
/// descriptors' `artifactType` back, so it rewrites the index (the
/// referrer manifests themselves keep their bytes).
fn fill(w: &ImageWorld, registry: &DockerRegistry, tag: &str, preserve: bool) {
    let mut args = vec!["copy", "--all", "--dest-tls-verify=false"];
    if preserve {
        args.push("--preserve-digests");
    }
    let src = format!("oci:{}:{tag}", w.layout.display());
    let dst = format!("docker://{}/{REPOSITORY}:{tag}", registry.addr);
    args.extend([src.as_str(), dst.as_str()]);
    let out = skopeo(&args);
    assert!(out.status.success(), "skopeo copy {tag}: {}", stderr(&out));
}

/// An image world whose upstream registry holds the image, filled by
/// skopeo: the tag, and when `signed`, the `.sig` tag and the referrers
/// fallback tag.
fn upstream(signed: bool) -> (ImageWorld, DockerRegistry, String) {
    let forms = if signed {
        ImageSigning::ALL
    } else {
        ImageSigning {
            legacy: false,
            referrer: false,
            provenance: false,
        }
    };
    let w = ImageWorld::new(forms);
    let registry = DockerRegistry::start(&w.world.root().join("upstream-registry"));
    fill(&w, &registry, "v1", true);
    let digest = w.tagged("v1")["digest"].as_str().unwrap().to_string();
    if signed {
        let hex = digest.trim_start_matches("sha256:");
        fill(&w, &registry, &format!("sha256-{hex}.sig"), true);
        fill(&w, &registry, &format!("sha256-{hex}"), false);
    }
    std::fs::write(
        &w.config,
        format!(
            "[[image]]\npull = \"{}/{REPOSITORY}\"\nplain-http = true\ntags = [\"v1\"]\n",
            registry.addr
        ),
    )
    .unwrap();
    (w, registry, digest)
}

fn assert_refused_with_nothing_written(out: &Output, medium: &Path, check: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    assert!(
        stderr(out).contains(check),
        "expected {check}: {}",
        stderr(out)
    );
    assert!(
        !medium.exists(),
        "a refused export wrote {}",
        medium.display()
    );
    let leftovers: Vec<_> = std::fs::read_dir(medium.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
#[ignore = "interop: docker-registry and skopeo, run by tests/run-all.sh"]
fn export_pulls_from_a_registry_import_re_signs_and_push_seeds_a_registry_skopeo_pulls() {
    let (w, registry, digest) = upstream(true);
    let (medium, out) = w.export("pulled.tar");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("image simulated/app:v1 {digest}")),
        "{text}"
    );
    assert!(
        text.contains("cosign .sig") && text.contains("bundle referrer"),
        "{text}"
    );
    assert!(
        text.contains("attestation https://slsa.dev/provenance/v1"),
        "{text}"
    );
    assert!(stderr(&out).contains("pulled "), "{}", stderr(&out));

    let out = w.world.import(&[&medium], &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["images"][0]["decision"], "accepted", "{report}");

    let to = format!("{}/enclave", registry.addr);
    let push = |extra: &[&str]| {
        let mut args = vec![
            "push",
            "--state",
            w.world.high.to_str().unwrap(),
            "--to",
            &to,
            "--plain-http",
            "--json",
        ];
        args.extend_from_slice(extra);
        airgate(args)
    };
    let out = push(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pushed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hex = digest.trim_start_matches("sha256:");
    assert_eq!(pushed[0]["target"], "enclave/simulated/app", "{pushed}");
    let tags: Vec<&str> = pushed[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        tags,
        [
            format!("sha256-{hex}"),
            format!("sha256-{hex}.sig"),
            "v1".into()
        ]
    );
    assert!(pushed[0]["blobsUploaded"].as_u64().unwrap() > 0);
    // Pushing again uploads nothing: every blob is already there.
    let again: serde_json::Value = serde_json::from_slice(&push(&[]).stdout).unwrap();
    assert_eq!(again[0]["blobsUploaded"], 0, "{again}");

    let reference = format!("docker://{to}/{REPOSITORY}:v1");
    let index = skopeo_pull(&reference, &w.world.root().join("from-enclave"));
    assert_eq!(index["manifests"][0]["digest"], digest, "{index}");
    // Our .sig tag in the enclave registry is the one the state holds.
    let sig = format!("docker://{to}/{REPOSITORY}:sha256-{hex}.sig");
    let out = skopeo(&["inspect", "--tls-verify=false", "--raw", &sig]);
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        2,
        "the upstream signature and ours: {manifest}"
    );

    // Hostile arguments are usage errors naming them.
    let out = push(&["--repository", "no/such"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("\"no/such\""), "{}", stderr(&out));
}

#[test]
#[ignore = "interop: docker-registry and skopeo, run by tests/run-all.sh"]
fn export_refuses_a_pulled_image_whose_registry_serves_a_tampered_layer() {
    let (w, registry, _) = upstream(true);
    let index = w.manifest(&w.tagged("v1"));
    let manifest = w.manifest(&index["manifests"][0]);
    let layer = manifest["layers"][1]["digest"].as_str().unwrap();
    let data = registry.blob_data(layer);
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&data, bytes).unwrap();
    let (medium, out) = w.export("tampered.tar");
    assert_refused_with_nothing_written(&out, &medium, "oci.blob-digest");
}

#[test]
#[ignore = "interop: docker-registry and skopeo, run by tests/run-all.sh"]
fn export_refuses_a_pulled_image_whose_registry_lost_a_blob() {
    let (w, registry, _) = upstream(true);
    let index = w.manifest(&w.tagged("v1"));
    let manifest = w.manifest(&index["manifests"][1]);
    let config = manifest["config"]["digest"].as_str().unwrap();
    std::fs::remove_file(registry.blob_data(config)).unwrap();
    let (medium, out) = w.export("lost.tar");
    assert_refused_with_nothing_written(&out, &medium, "oci.blob-missing");
}

#[test]
#[ignore = "interop: docker-registry and skopeo, run by tests/run-all.sh"]
fn export_refuses_a_pulled_image_the_registry_holds_unsigned() {
    let (w, _registry, _) = upstream(false);
    let (medium, out) = w.export("unsigned.tar");
    assert_refused_with_nothing_written(&out, &medium, "oci.unsigned");
}

/// Configuration and connection problems: exit 2, naming what is wrong.
#[test]
fn pull_configuration_and_unreachable_registries_are_usage_errors() {
    let w = ImageWorld::new(ImageSigning::ALL);
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for (config, expected) in [
        (
            "[[image]]\npull = \"org/app\"\ntags = [\"v1\"]\n".to_string(),
            "\"org/app\"",
        ),
        (
            "[[image]]\npull = \"127.0.0.1:5000/org/app\"\n".to_string(),
            "list the tags",
        ),
        (
            "[[image]]\npull = \"127.0.0.1:5000/org/app:v1\"\ntags = [\"v1\"]\n".to_string(),
            "names a tag or digest",
        ),
        (
            format!(
                "[[image]]\npull = \"127.0.0.1:5000/org/app\"\nlayout = \"{}\"\ntags = [\"v1\"]\n",
                w.layout.display()
            ),
            "exactly one of layout",
        ),
        (
            "[[image]]\npull = \"127.0.0.1:5000/org/app\"\ntags = [\"v1\", \"v1\"]\n".to_string(),
            "listed twice",
        ),
        (
            format!("[[image]]\npull = \"{closed}/org/app\"\nplain-http = true\ntags = [\"v1\"]\n"),
            &format!("http://{closed}/v2/org/app/manifests/v1"),
        ),
    ] {
        std::fs::write(&w.config, &config).unwrap();
        let (medium, out) = w.export("m.tar");
        assert_eq!(out.status.code(), Some(2), "{config}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{config}: {}",
            stderr(&out)
        );
        assert!(!medium.exists());
    }
}

/// A registry behind basic auth: `airgate push` and the pull need
/// `AIRGATE_REGISTRY_USERNAME` / `_PASSWORD`; without them, or with a wrong
/// password, they stop with exit 2 naming the registry; with them the image
/// pushed from the enclave is pulled and verified again.
#[test]
#[ignore = "interop: docker-registry and skopeo, run by tests/run-all.sh"]
fn push_and_pull_authenticate_to_a_registry_behind_basic_auth() {
    let w = ImageWorld::new(ImageSigning::ALL);
    let (medium, out) = w.export("m.tar");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(w.world.import(&[&medium], &[]).status.success());
    let registry =
        DockerRegistry::start_with_login(&w.world.root().join("locked"), "alice", "s3cret");
    let to = registry.addr.to_string();
    let push = |user: Option<&str>, password: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_airgate"));
        cmd.args([
            "push",
            "--state",
            w.world.high.to_str().unwrap(),
            "--to",
            &to,
        ])
        .arg("--plain-http")
        .env_remove("AIRGATE_REGISTRY_USERNAME")
        .env_remove("AIRGATE_REGISTRY_PASSWORD");
        if let (Some(u), Some(p)) = (user, password) {
            cmd.env("AIRGATE_REGISTRY_USERNAME", u)
                .env("AIRGATE_REGISTRY_PASSWORD", p);
        }
        cmd.output().unwrap()
    };
    let out = push(None, None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("asks for credentials"),
        "{}",
        stderr(&out)
    );
    let out = push(Some("alice"), Some("wrong"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    let out = push(Some("alice"), Some("s3cret"));
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(
        &w.config,
        format!("[[image]]\npull = \"{to}/{REPOSITORY}\"\nplain-http = true\ntags = [\"v1\"]\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_airgate"))
        .args(["export", "--config", w.config.to_str().unwrap()])
        .args(["--policy", w.world.policy.to_str().unwrap()])
        .args([
            "--key",
            w.world.key.to_str().unwrap(),
            "--exporter",
            "low-1",
        ])
        .arg("--out")
        .arg(w.world.media.join("again.tar"))
        .env("AIRGATE_REGISTRY_USERNAME", "alice")
        .env("AIRGATE_REGISTRY_PASSWORD", "s3cret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("image simulated/app:v1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A username without a password (or the reverse) is a usage error, not a
/// silent anonymous pull.
#[test]
fn half_given_registry_credentials_are_a_usage_error() {
    let w = ImageWorld::new(ImageSigning::ALL);
    std::fs::write(
        &w.config,
        "[[image]]\npull = \"127.0.0.1:9/org/app\"\nplain-http = true\ntags = [\"v1\"]\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_airgate"))
        .args(["export", "--config", w.config.to_str().unwrap()])
        .args(["--policy", w.world.policy.to_str().unwrap()])
        .args([
            "--key",
            w.world.key.to_str().unwrap(),
            "--exporter",
            "low-1",
        ])
        .arg("--out")
        .arg(w.world.media.join("m.tar"))
        .env("AIRGATE_REGISTRY_USERNAME", "someone")
        .env_remove("AIRGATE_REGISTRY_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("or neither"), "{}", stderr(&out));
}

/// `airgate push` refuses a bad target and an unreachable registry (exit 2).
#[test]
fn push_refuses_a_bad_target_and_an_unreachable_registry() {
    let w = ImageWorld::new(ImageSigning::ALL);
    let (medium, out) = w.export("m.tar");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(w.world.import(&[&medium], &[]).status.success());
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    for (to, expected) in [
        ("not a host", "--to"),
        ("registry/UPPER", "--to"),
        (closed.as_str(), closed.as_str()),
    ] {
        let out = airgate([
            "push",
            "--state",
            w.world.high.to_str().unwrap(),
            "--to",
            to,
            "--plain-http",
        ]);
        assert_eq!(out.status.code(), Some(2), "{to}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{to}: {}", stderr(&out));
    }
}
