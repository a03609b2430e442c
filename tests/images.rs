//! Container images across the gap: OCI layouts signed upstream in both
//! cosign forms, verified and carried by export, refused by name when
//! broken.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::SystemTime;

use gateway::demo::{write_image_layout, ImageSigning, SIMULATED_IDENTITY};

use crate::common::stderr;
use crate::world::{read_entries, World};

pub const REPOSITORY: &str = "simulated/app";

/// A world whose low side also has a signed multi-arch image layout.
pub struct ImageWorld {
    pub world: World,
    pub layout: PathBuf,
    pub config: PathBuf,
}

impl ImageWorld {
    pub fn new(forms: ImageSigning) -> ImageWorld {
        Self::signed_as(forms, SIMULATED_IDENTITY)
    }

    pub fn signed_as(forms: ImageSigning, identity: &str) -> ImageWorld {
        let world = World::new(1);
        let layout = world.root().join("low/layout");
        write_image_layout(&layout, "v1", b"SIMULATED base layer\n").unwrap();
        if forms.legacy || forms.referrer || forms.provenance {
            world
                .upstream
                .sign_image(
                    &layout,
                    REPOSITORY,
                    "v1",
                    identity,
                    forms,
                    SystemTime::now(),
                )
                .unwrap();
        }
        let config = world.root().join("low/airgate.toml");
        std::fs::write(
            &config,
            format!(
                "[[image]]\nlayout = \"{}\"\nrepository = \"{REPOSITORY}\"\n",
                layout.display()
            ),
        )
        .unwrap();
        ImageWorld {
            world,
            layout,
            config,
        }
    }

    pub fn export(&self, name: &str) -> (PathBuf, Output) {
        self.world
            .export(name, &["--config", &self.config.display().to_string()])
    }

    /// The blob path of a digest in the low-side layout.
    pub fn blob(&self, digest: &str) -> PathBuf {
        self.layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    /// The layout's `index.json` as JSON.
    pub fn index(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.layout.join("index.json")).unwrap()).unwrap()
    }

    /// The descriptor tagged `tag`.
    pub fn tagged(&self, tag: &str) -> serde_json::Value {
        self.index()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .cloned()
            .unwrap_or_else(|| panic!("no {tag}"))
    }

    /// The manifest a descriptor names.
    pub fn manifest(&self, d: &serde_json::Value) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.blob(d["digest"].as_str().unwrap())).unwrap())
            .unwrap()
    }
}

fn names(medium: &Path) -> Vec<String> {
    read_entries(medium)
        .iter()
        .map(|(h, _)| h.path().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn assert_refused(out: &Output, check: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let text = format!("{}{}", stderr(out), String::from_utf8_lossy(&out.stdout));
    assert!(text.contains(check), "expected {check}: {text}");
}

#[test]
fn export_carries_a_signed_multi_arch_image_with_both_forms_and_its_attestation() {
    let w = ImageWorld::new(ImageSigning::ALL);
    let (medium, out) = w.export("m.tar");
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("image simulated/app:v1"), "{stdout}");
    assert!(
        stdout.contains("cosign .sig") && stdout.contains("bundle referrer"),
        "{stdout}"
    );
    assert!(
        stdout.contains("https://slsa.dev/provenance/v1"),
        "{stdout}"
    );
    let entries = names(&medium);
    assert!(entries.contains(&"oci/index.json".to_string()));
    assert!(entries.contains(&"oci/oci-layout".to_string()));
    // The index, two manifests, two configs, three layers (one shared), the
    // .sig manifest with its config and payload, two referrers with their
    // bundle and the shared empty config, the referrers index.
    let blobs = entries
        .iter()
        .filter(|n| n.starts_with("oci/blobs/sha256/"))
        .count();
    assert_eq!(blobs, 8 + 3 + 5 + 1, "{entries:?}");
}

#[test]
fn export_refuses_an_unsigned_image() {
    let w = ImageWorld::new(ImageSigning {
        legacy: false,
        referrer: false,
        provenance: false,
    });
    let (medium, out) = w.export("m.tar");
    assert_refused(&out, "oci.unsigned");
    assert!(!medium.exists());
}

#[test]
fn export_refuses_an_image_signed_by_another_identity() {
    let w = ImageWorld::signed_as(
        ImageSigning::ALL,
        "https://github.com/someone-else/app/.github/workflows/release.yml@refs/tags/v1",
    );
    let (medium, out) = w.export("m.tar");
    assert_refused(&out, "image simulated/app:v1");
    assert_refused(&out, "policy.identity");
    assert!(!medium.exists());
}

#[test]
fn export_refuses_a_tampered_layer() {
    let w = ImageWorld::new(ImageSigning::ALL);
    let index = w.manifest(&w.tagged("v1"));
    let amd64 = w.manifest(&index["manifests"][0]);
    let layer = w.blob(amd64["layers"][1]["digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&layer).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&layer, bytes).unwrap();
    let (medium, out) = w.export("m.tar");
    assert_refused(&out, "oci.blob-digest");
    assert!(!medium.exists());
}

#[test]
fn export_refuses_a_missing_blob() {
    let w = ImageWorld::new(ImageSigning::ALL);
    let index = w.manifest(&w.tagged("v1"));
    let arm64 = w.manifest(&index["manifests"][1]);
    std::fs::remove_file(w.blob(arm64["config"]["digest"].as_str().unwrap())).unwrap();
    let (medium, out) = w.export("m.tar");
    assert_refused(&out, "oci.blob-missing");
    assert!(!medium.exists());
}

#[test]
fn export_refuses_a_signature_for_another_digest() {
    // The .sig tag and the referrers moved onto another image: each
    // signature names the first image's digest, not this one's.
    let w = ImageWorld::new(ImageSigning {
        legacy: true,
        referrer: true,
        provenance: false,
    });
    let signed = w.tagged("v1");
    let hex = signed["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    write_image_layout(&w.layout, "v2", b"another base\n").unwrap();
    let other = w.tagged("v2");
    let other_hex = other["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let mut index = w.index();
    for d in index["manifests"].as_array_mut().unwrap() {
        let name = d["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap()
            .to_string();
        if name.contains(&hex) {
            d["annotations"]["org.opencontainers.image.ref.name"] =
                name.replace(&hex, &other_hex).into();
        }
        if name == "v1" {
            d["annotations"]["org.opencontainers.image.ref.name"] = "old".into();
        }
    }
    std::fs::write(
        w.layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::write(
        &w.config,
        format!(
            "[[image]]\nlayout = \"{}\"\nrepository = \"{REPOSITORY}\"\ntags = [\"v2\"]\n",
            w.layout.display()
        ),
    )
    .unwrap();
    let (medium, out) = w.export("m.tar");
    assert_refused(&out, "oci.digest-not-signed");
    assert!(!medium.exists());
}

#[test]
fn export_refuses_a_repository_the_policy_does_not_name() {
    let w = ImageWorld::new(ImageSigning::ALL);
    let policy = std::fs::read_to_string(&w.world.policy).unwrap();
    std::fs::write(
        &w.world.policy,
        policy.replace("images = [\"**\"]", "images = [\"other/*\"]"),
    )
    .unwrap();
    let (_, out) = w.export("m.tar");
    assert_refused(&out, "policy.default-deny");
}

#[test]
fn export_configuration_refuses_a_bad_repository_name() {
    let w = ImageWorld::new(ImageSigning::ALL);
    std::fs::write(
        &w.config,
        format!(
            "[[image]]\nlayout = \"{}\"\nrepository = \"Bad/Name\"\n",
            w.layout.display()
        ),
    )
    .unwrap();
    let (_, out) = w.export("m.tar");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("\"Bad/Name\""), "{}", stderr(&out));
}

#[test]
fn import_re_verifies_and_re_signs_an_image_in_both_forms() {
    let w = ImageWorld::new(ImageSigning::ALL);
    let (medium, out) = w.export("m.tar");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = w.world.import(&[&medium], &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let image = &report["images"][0];
    assert_eq!(image["reference"], "simulated/app:v1");
    assert_eq!(image["decision"], "accepted");
    assert_eq!(image["signatures"].as_array().unwrap().len(), 2);
    assert!(image["logIndex"].is_u64());
    let db = rusqlite::Connection::open(w.world.high.join("state.db")).unwrap();
    let tags: Vec<String> = db
        .prepare("SELECT tag FROM oci_tags ORDER BY tag")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(tags.len(), 3, "{tags:?}");
    assert!(tags[0].starts_with("sha256-") && tags[1].ends_with(".sig") && tags[2] == "v1");
}

const OUR_IDENTITY: &str = "https://airgate.internal/gateway";
const OUR_ISSUER: &str = "https://oidc.airgate.internal";

/// An image world exported and imported, served.
fn served_world() -> (ImageWorld, crate::serve::support::Served) {
    let w = ImageWorld::new(ImageSigning::ALL);
    let (medium, out) = w.export("m.tar");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = w.world.import(&[&medium], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let served = crate::serve::support::Served::start(&w.world.high, &[]);
    (w, served)
}

fn hex_of(digest: &serde_json::Value) -> String {
    digest
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string()
}

#[test]
fn serve_answers_the_registry_api_read_only_with_the_exact_upstream_bytes() {
    use crate::serve::support::request;
    let (w, s) = served_world();
    let root = w.tagged("v1");
    let digest = root["digest"].as_str().unwrap().to_string();
    let hex = hex_of(&root["digest"]);
    let r = s.get("/v2/");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert_eq!(
        s.get("/v2/_catalog").json()["repositories"],
        serde_json::json!([REPOSITORY])
    );
    let tags = s.get("/v2/simulated/app/tags/list").json();
    let tags: Vec<&str> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tags.contains(&"v1"), "{tags:?}");
    assert!(
        tags.contains(&format!("sha256-{hex}.sig").as_str()),
        "{tags:?}"
    );
    assert!(tags.contains(&format!("sha256-{hex}").as_str()), "{tags:?}");
    // The index by tag and by digest: the upstream bytes, typed and named.
    let upstream = std::fs::read(w.blob(&digest)).unwrap();
    for reference in ["v1", digest.as_str()] {
        let r = s.get(&format!("/v2/simulated/app/manifests/{reference}"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.body, upstream);
        assert_eq!(
            r.header("content-type"),
            Some(gateway::oci::MEDIA_OCI_INDEX)
        );
        assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    }
    let head = request(s.addr, "HEAD", "/v2/simulated/app/manifests/v1", &[], &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(upstream.len().to_string().as_str())
    );
    // A layer, whole and by range.
    let index = w.manifest(&root);
    let amd64 = w.manifest(&index["manifests"][0]);
    let layer = amd64["layers"][0]["digest"].as_str().unwrap();
    let bytes = std::fs::read(w.blob(layer)).unwrap();
    let r = s.get(&format!("/v2/simulated/app/blobs/{layer}"));
    assert_eq!((r.status, &r.body), (200, &bytes));
    let r = request(
        s.addr,
        "GET",
        &format!("/v2/simulated/app/blobs/{layer}"),
        &[("Range", "bytes=0-9")],
        &[],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, bytes[..10].to_vec());
    let r = request(
        s.addr,
        "GET",
        &format!("/v2/simulated/app/blobs/{layer}"),
        &[("Range", "bytes=999999-")],
        &[],
    );
    assert_eq!(r.status, 416);
    // Referrers: the upstream cosign-sign and provenance bundles, then our
    // cosign-sign and VSA bundles; filtered by artifact type.
    let all = s
        .get(&format!("/v2/simulated/app/referrers/{digest}"))
        .json();
    assert_eq!(all["manifests"].as_array().unwrap().len(), 4, "{all}");
    let bundles = s.get(&format!(
        "/v2/simulated/app/referrers/{digest}?artifactType=application/vnd.dev.sigstore.bundle.v0.3%2Bjson"
    ));
    assert_eq!(bundles.header("oci-filters-applied"), Some("artifactType"));
    assert_eq!(bundles.json()["manifests"].as_array().unwrap().len(), 4);
    let none = s
        .get(&format!(
            "/v2/simulated/app/referrers/{digest}?artifactType=text/plain"
        ))
        .json();
    assert_eq!(none["manifests"], serde_json::json!([]));
    let predicates: Vec<String> = all["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["dev.sigstore.bundle.predicateType"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        predicates.contains(&"https://slsa.dev/verification_summary/v1".to_string()),
        "{predicates:?}"
    );
    // Errors by the distribution spec.
    let r = s.get("/v2/simulated/app/manifests/nope");
    assert_eq!(
        (r.status, r.json()["errors"][0]["code"].as_str()),
        (404, Some("MANIFEST_UNKNOWN"))
    );
    let r = s.get("/v2/Bad/tags/list");
    assert_eq!(
        (r.status, r.json()["errors"][0]["code"].as_str()),
        (400, Some("NAME_INVALID"))
    );
    // A traversal decodes to a path of no endpoint: refused before any lookup.
    let r = s.get("/v2/simulated/app/blobs/sha256:..%2F..%2Fetc");
    assert_eq!(
        (r.status, r.json()["errors"][0]["code"].as_str()),
        (404, Some("NAME_UNKNOWN"))
    );
    let r = s.get("/v2/simulated/app/blobs/sha256:..");
    assert_eq!(
        (r.status, r.json()["errors"][0]["code"].as_str()),
        (400, Some("DIGEST_INVALID"))
    );
    for method in ["PUT", "DELETE", "POST", "PATCH"] {
        let r = request(s.addr, method, "/v2/simulated/app/manifests/v1", &[], b"{}");
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.json()["errors"][0]["code"], "UNSUPPORTED");
    }
}

#[test]
fn our_sig_tag_keeps_the_upstream_layer_and_adds_ours_which_airgate_verifies() {
    let (w, s) = served_world();
    let digest = w.tagged("v1")["digest"].as_str().unwrap().to_string();
    let hex = digest.trim_start_matches("sha256:");
    let sig = s
        .get(&format!("/v2/simulated/app/manifests/sha256-{hex}.sig"))
        .json();
    let layers = sig["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "upstream then ours: {sig}");
    let ours = &layers[1];
    let payload = s
        .get(&format!(
            "/v2/simulated/app/blobs/{}",
            ours["digest"].as_str().unwrap()
        ))
        .body;
    let parsed = gateway::oci::cosign::parse_payload(&payload).unwrap();
    assert_eq!(parsed.critical.image.docker_manifest_digest, digest);
    let annotations: std::collections::BTreeMap<String, String> =
        serde_json::from_value(ours["annotations"].clone()).unwrap();
    let bundle = gateway::oci::cosign::layer_bundle(&payload, &annotations).unwrap();
    let dir = w.world.root().join("check");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("payload.json"), &payload).unwrap();
    std::fs::write(dir.join("sig.sigstore.json"), &bundle).unwrap();
    let verify = |payload: &Path| {
        crate::common::airgate([
            "verify".as_ref(),
            "--bundle".as_ref(),
            dir.join("sig.sigstore.json").as_os_str(),
            "--trusted-root".as_ref(),
            w.world.high.join("trusted_root.json").as_os_str(),
            "--certificate-identity".as_ref(),
            OUR_IDENTITY.as_ref(),
            "--certificate-oidc-issuer".as_ref(),
            OUR_ISSUER.as_ref(),
            payload.as_os_str(),
        ])
    };
    let out = verify(&dir.join("payload.json"));
    assert!(out.status.success(), "{}", stderr(&out));
    let mut tampered = payload.clone();
    tampered[10] ^= 1;
    std::fs::write(dir.join("tampered.json"), tampered).unwrap();
    assert_eq!(verify(&dir.join("tampered.json")).status.code(), Some(1));
}

pub fn skopeo(args: &[&str]) -> Output {
    std::process::Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo must be installed (tests/run-all.sh installs Debian's)")
}

/// `skopeo copy --all --preserve-digests` of a plain-HTTP registry's
/// `reference` (`docker://…`) into the layout `out_dir` tagged v1; returns
/// the layout's `index.json`.
pub fn skopeo_pull(reference: &str, out_dir: &Path) -> serde_json::Value {
    let out = skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        reference,
        &format!("oci:{}:v1", out_dir.display()),
    ]);
    assert!(out.status.success(), "skopeo copy: {}", stderr(&out));
    serde_json::from_slice(&std::fs::read(out_dir.join("index.json")).unwrap()).unwrap()
}

#[test]
#[ignore = "interop: skopeo, run by tests/run-all.sh"]
fn skopeo_copies_the_image_from_airgate_serve_with_the_upstream_digests() {
    let (w, s) = served_world();
    let root = w.tagged("v1");
    let digest = root["digest"].as_str().unwrap().to_string();
    let reference = format!("docker://{}/{REPOSITORY}:v1", s.addr);
    let out_dir = w.world.root().join("pulled");
    let pulled = skopeo_pull(&reference, &out_dir);
    assert_eq!(pulled["manifests"][0]["digest"], digest, "{pulled}");
    // Every manifest, config and layer arrived byte for byte.
    let index = w.manifest(&root);
    for m in index["manifests"].as_array().unwrap() {
        let manifest = w.manifest(m);
        let digests = std::iter::once(m["digest"].clone())
            .chain(std::iter::once(manifest["config"]["digest"].clone()))
            .chain(
                manifest["layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["digest"].clone()),
            );
        for d in digests {
            let hex = hex_of(&d);
            assert_eq!(
                std::fs::read(out_dir.join("blobs/sha256").join(&hex)).unwrap(),
                std::fs::read(w.blob(&format!("sha256:{hex}"))).unwrap(),
                "{hex}"
            );
        }
    }
    let out = skopeo(&["inspect", "--tls-verify=false", "--raw", &reference]);
    assert!(
        out.status.success(),
        "skopeo inspect --raw: {}",
        stderr(&out)
    );
    assert_eq!(out.stdout, std::fs::read(w.blob(&digest)).unwrap());
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--override-arch",
        "arm64",
        &reference,
    ]);
    assert!(out.status.success(), "skopeo inspect: {}", stderr(&out));
    let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["Architecture"], "arm64", "{inspected}");
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 2);
}

#[test]
#[ignore = "interop: sigstore-python, run by tests/run-all.sh"]
fn sigstore_python_verifies_our_referrer_bundle_against_the_manifest_digest() {
    let (w, s) = served_world();
    let digest = w.tagged("v1")["digest"].as_str().unwrap().to_string();
    let hex = digest.trim_start_matches("sha256:").to_string();
    // The fallback tag lists the upstream referrers first, ours last.
    let listed = s
        .get(&format!("/v2/{REPOSITORY}/manifests/sha256-{hex}"))
        .json();
    let ours = listed["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| {
            m["annotations"]["dev.sigstore.bundle.predicateType"]
                == gateway::oci::COSIGN_SIGN_PREDICATE
        })
        .cloned()
        .unwrap();
    let manifest = s
        .get(&format!(
            "/v2/{REPOSITORY}/manifests/{}",
            ours["digest"].as_str().unwrap()
        ))
        .json();
    assert_eq!(manifest["subject"]["digest"], digest);
    let bundle = s
        .get(&format!(
            "/v2/{REPOSITORY}/blobs/{}",
            manifest["layers"][0]["digest"].as_str().unwrap()
        ))
        .body;
    let path = w.world.root().join("ours.sigstore.json");
    std::fs::write(&path, &bundle).unwrap();
    let trust = w.world.high.join("trust_config.json");
    crate::interop::python_verify(&trust, &path, Path::new(&digest), OUR_IDENTITY, OUR_ISSUER)
        .expect("sigstore-python accepts our DSSE referrer for the manifest digest");
    // Another digest, and a one-byte tamper of the signature, are refused.
    let other = format!("sha256:{}", "0".repeat(64));
    assert!(crate::interop::python_verify(
        &trust,
        &path,
        Path::new(&other),
        OUR_IDENTITY,
        OUR_ISSUER
    )
    .is_err());
    let mut v: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
    let sig = v["dsseEnvelope"]["signatures"][0]["sig"]
        .as_str()
        .unwrap()
        .to_string();
    let mut raw = gateway::encoding::b64_decode(&sig).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    v["dsseEnvelope"]["signatures"][0]["sig"] = gateway::encoding::b64_encode(&raw).into();
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    assert!(crate::interop::python_verify(
        &trust,
        &path,
        Path::new(&digest),
        OUR_IDENTITY,
        OUR_ISSUER
    )
    .is_err());
}

/// A medium's entries after the manifest: (name, bytes).
type Files = Vec<(String, Vec<u8>)>;

/// A medium rebuilt by the enrolled exporter after `edit` changed its
/// entries (name, bytes): a hostile but authenticated medium, for rules that
/// rest on the high side's own verification.
fn rebuilt(w: &World, src: &Path, name: &str, edit: &mut dyn FnMut(&mut Files)) -> PathBuf {
    use gateway::medium::manifest::{
        pack_digest, read_manifest_claims, sign_manifest, EntryKind, ManifestEntry,
    };
    let entries = read_entries(src);
    let mut predicate = read_manifest_claims(&entries[0].1).unwrap().predicate;
    let mut files: Vec<(String, Vec<u8>)> = entries[1..]
        .iter()
        .map(|(h, d)| (h.path().unwrap().to_string_lossy().into_owned(), d.clone()))
        .collect();
    edit(&mut files);
    files.sort_by(|a, b| a.0.cmp(&b.0));
    predicate.entries = files
        .iter()
        .map(|(n, d)| ManifestEntry {
            name: n.clone(),
            sha256: hex::encode(gateway::crypto::sha256(d)),
            size: d.len() as u64,
            kind: EntryKind::for_name(&gateway::medium::EntryName::parse(n).unwrap()).unwrap(),
        })
        .collect();
    predicate.pack_digest = pack_digest(&predicate.entries);
    let key = gateway::export::load_exporter_key(&w.key).unwrap();
    let manifest = sign_manifest(&predicate, &key.key_id(), &|m| key.sign(m)).unwrap();
    let mut head = entries[0].0.clone();
    head.set_size(manifest.len() as u64);
    head.set_cksum();
    let mut out = vec![(head, manifest)];
    for (n, d) in files {
        let mut h = tar::Header::new_gnu();
        h.set_path(&n).unwrap();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        out.push((h, d));
    }
    let path = w.media.join(name);
    crate::world::write_entries(&path, &out);
    path
}

/// Exports the signed image, rebuilds the medium with `edit`, imports it:
/// refused (exit 1) with `check`, and the state unchanged.
fn import_refuses(edit: &mut dyn FnMut(&mut Files, &ImageWorld), check: &str) {
    let w = ImageWorld::new(ImageSigning::ALL);
    let (medium, out) = w.export("m.tar");
    assert!(out.status.success(), "{}", stderr(&out));
    let hostile = rebuilt(&w.world, &medium, "hostile.tar", &mut |files| {
        edit(files, &w)
    });
    let before = crate::world::state_fingerprint(&w.world.high);
    let out = w.world.import(&[&hostile], &[]);
    assert_refused(&out, check);
    // Only the refusal is recorded: no image, tag, manifest, blob or log entry.
    let db = rusqlite::Connection::open(w.world.high.join("state.db")).unwrap();
    for table in [
        "oci_images",
        "oci_tags",
        "oci_manifests",
        "oci_blobs",
        "tlog_entries",
    ] {
        let n: i64 = db
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    let after = crate::world::state_fingerprint(&w.world.high);
    let changed: Vec<&str> = after.lines().filter(|l| !before.contains(l)).collect();
    assert!(
        changed.iter().all(|l| l.contains("refused_imports")),
        "{changed:?}"
    );
}

fn blob_entry(w: &ImageWorld, digest: &str) -> String {
    let _ = w;
    format!("oci/blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

fn first_layer(w: &ImageWorld) -> String {
    let index = w.manifest(&w.tagged("v1"));
    let amd64 = w.manifest(&index["manifests"][0]);
    amd64["layers"][1]["digest"].as_str().unwrap().to_string()
}

#[test]
fn import_refuses_a_medium_without_a_layer_the_image_needs() {
    import_refuses(
        &mut |files, w| {
            let gone = blob_entry(w, &first_layer(w));
            files.retain(|(n, _)| *n != gone);
        },
        "oci.blob-missing",
    );
}

#[test]
fn import_refuses_a_blob_named_by_another_digest() {
    import_refuses(
        &mut |files, w| {
            let name = blob_entry(w, &first_layer(w));
            for (n, d) in files.iter_mut() {
                if *n == name {
                    let last = d.len() - 1;
                    d[last] ^= 1;
                }
            }
        },
        "oci.blob-digest",
    );
}

#[test]
fn import_refuses_a_blob_nothing_references() {
    import_refuses(
        &mut |files, _| {
            let smuggled = b"not part of any image".to_vec();
            let name = format!(
                "oci/blobs/sha256/{}",
                hex::encode(gateway::crypto::sha256(&smuggled))
            );
            files.push((name, smuggled));
        },
        "oci.unreferenced-blob",
    );
}

/// The blob entries of the image's own closure (no signatures).
fn closure_entries(w: &ImageWorld) -> Vec<String> {
    closure_entries_of(w, "v1")
}

/// The blob entries of the closure of the layout's image tagged `tag`.
fn closure_entries_of(w: &ImageWorld, tag: &str) -> Vec<String> {
    let root = w.tagged(tag);
    let index = w.manifest(&root);
    let mut out = vec![blob_entry(w, root["digest"].as_str().unwrap())];
    for m in index["manifests"].as_array().unwrap() {
        out.push(blob_entry(w, m["digest"].as_str().unwrap()));
        let manifest = w.manifest(m);
        out.push(blob_entry(
            w,
            manifest["config"]["digest"].as_str().unwrap(),
        ));
        for l in manifest["layers"].as_array().unwrap() {
            out.push(blob_entry(w, l["digest"].as_str().unwrap()));
        }
    }
    out
}

#[test]
fn import_refuses_an_image_whose_signatures_were_stripped() {
    import_refuses(
        &mut |files, w| {
            let keep = closure_entries(w);
            files.retain(|(n, _)| !n.starts_with("oci/blobs/") || keep.contains(n));
            for (n, d) in files.iter_mut() {
                if n == "oci/index.json" {
                    let mut index: serde_json::Value = serde_json::from_slice(d).unwrap();
                    index["manifests"].as_array_mut().unwrap().retain(|m| {
                        !m["annotations"]["org.opencontainers.image.ref.name"]
                            .as_str()
                            .unwrap()
                            .contains(":sha256-")
                    });
                    *d = serde_json::to_vec(&index).unwrap();
                }
            }
        },
        "oci.unsigned",
    );
}

/// A hostile medium moves the `.sig` tag and the referrers of the signed
/// image onto another (unsigned) image: every signature names the first
/// digest, so the second is refused as `oci.digest-not-signed`.
#[test]
fn import_refuses_signatures_moved_onto_another_image() {
    let w = ImageWorld::new(ImageSigning::ALL);
    write_image_layout(&w.layout, "v2", b"another base\n").unwrap();
    std::fs::write(
        &w.config,
        format!(
            "[[image]]\nlayout = \"{}\"\nrepository = \"{REPOSITORY}\"\ntags = [\"v1\"]\n",
            w.layout.display()
        ),
    )
    .unwrap();
    let (medium, out) = w.export("m.tar");
    assert!(out.status.success(), "{}", stderr(&out));
    let hex = |tag: &str| {
        w.tagged(tag)["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string()
    };
    let (signed, other) = (hex("v1"), hex("v2"));
    let hostile = rebuilt(&w.world, &medium, "hostile.tar", &mut |files| {
        let gone = closure_entries_of(&w, "v1");
        files.retain(|(n, _)| !gone.contains(n));
        for name in closure_entries_of(&w, "v2") {
            if files.iter().all(|(n, _)| *n != name) {
                let digest = name.trim_start_matches("oci/blobs/sha256/");
                files.push((name.clone(), std::fs::read(w.blob(digest)).unwrap()));
            }
        }
        for (n, d) in files.iter_mut() {
            if n == "oci/index.json" {
                let mut index: serde_json::Value = serde_json::from_slice(d).unwrap();
                for m in index["manifests"].as_array_mut().unwrap() {
                    let name = m["annotations"]["org.opencontainers.image.ref.name"]
                        .as_str()
                        .unwrap()
                        .to_string();
                    if name.ends_with(":v1") {
                        let mut moved = w.tagged("v2");
                        moved["annotations"]["org.opencontainers.image.ref.name"] =
                            format!("{REPOSITORY}:v2").into();
                        *m = moved;
                    } else {
                        m["annotations"]["org.opencontainers.image.ref.name"] =
                            name.replace(&signed, &other).into();
                    }
                }
                *d = serde_json::to_vec(&index).unwrap();
            }
        }
    });
    let out = w.world.import(&[&hostile], &[]);
    assert_refused(&out, "oci.digest-not-signed");
    let db = rusqlite::Connection::open(w.world.high.join("state.db")).unwrap();
    let n: i64 = db
        .query_row("SELECT COUNT(*) FROM oci_manifests", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn import_refuses_an_image_the_high_side_policy_does_not_allow() {
    let w = ImageWorld::new(ImageSigning::ALL);
    let (medium, out) = w.export("m.tar");
    assert!(out.status.success(), "{}", stderr(&out));
    let policy = w.world.high.join("policy.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace("images = [\"**\"]", "images = [\"vetted/*\"]"),
    )
    .unwrap();
    let out = w.world.import(&[&medium], &[]);
    assert_refused(&out, "policy.default-deny");
    // A rule for the repository that names another signer.
    let other = "https://github.com/simulated-org/app/.github/workflows/other.yml@refs/tags/v1.0.0";
    std::fs::write(
        &policy,
        format!(
            "{}\n[[rule]]\nname = \"images\"\nimages = [\"simulated/*\"]\nsigners = [{{ identity = \"{other}\", issuer = \"https://token.actions.simulated.invalid\" }}]\n",
            text.replace("images = [\"**\"]\n", "")
        ),
    )
    .unwrap();
    let out = w.world.import(&[&medium], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("simulated/app:v1"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("policy.identity"), "{}", stderr(&out));
}
