//! conda packages across the gap: real packages (written by rattler's
//! package writer), carried, attested with CEP 27, and served as a conda
//! channel whose repodata comes from each package's own metadata.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rattler_conda_types::compression_level::CompressionLevel;
use serde_json::Value;

use crate::common::stderr;
use crate::serve::support::Served;
use crate::world::World;

/// Writes a real conda package `NAME-VERSION-BUILD.{conda,tar.bz2}` into
/// `out_dir`, whose `info/index.json` names `index_name` (normally `name`).
pub fn package(
    out_dir: &Path,
    name: &str,
    index_name: &str,
    version: &str,
    build: &str,
    subdir: &str,
    tar_bz2: bool,
) -> PathBuf {
    let src = tempfile::tempdir().unwrap();
    let base = src.path();
    std::fs::create_dir_all(base.join("info")).unwrap();
    std::fs::create_dir_all(base.join("bin")).unwrap();
    let index = serde_json::json!({
        "name": index_name, "version": version, "build": build, "build_number": 0,
        "subdir": subdir, "depends": [], "license": "MIT", "timestamp": 1700000000000u64,
    });
    std::fs::write(
        base.join("info/index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::write(
        base.join("info/paths.json"),
        br#"{"paths":[],"paths_version":1}"#,
    )
    .unwrap();
    std::fs::write(
        base.join("bin").join(name),
        format!("#!/bin/sh\necho {name} {version}\n"),
    )
    .unwrap();
    let paths = vec![
        base.join("info/index.json"),
        base.join("info/paths.json"),
        base.join("bin").join(name),
    ];
    let stem = format!("{name}-{version}-{build}");
    std::fs::create_dir_all(out_dir).unwrap();
    if tar_bz2 {
        let path = out_dir.join(format!("{stem}.tar.bz2"));
        let file = std::fs::File::create(&path).unwrap();
        rattler_package_streaming::write::write_tar_bz2_package(
            file,
            base,
            &paths,
            CompressionLevel::Lowest,
            None,
            None,
        )
        .unwrap();
        path
    } else {
        let path = out_dir.join(format!("{stem}.conda"));
        let file = std::fs::File::create(&path).unwrap();
        rattler_package_streaming::write::write_conda_package(
            file,
            base,
            &paths,
            CompressionLevel::Lowest,
            None,
            &stem,
            None,
            None,
        )
        .unwrap();
        path
    }
}

/// A high side that imported two real conda packages (one `.conda`, one
/// `.tar.bz2`) and one whose metadata names another package.
pub struct CondaWorld {
    pub world: World,
    pub conda: PathBuf,
    pub tar_bz2: PathBuf,
    pub import_stderr: String,
}

impl CondaWorld {
    pub fn new() -> CondaWorld {
        let world = World::new(0);
        let dir = world.artifacts.join("conda");
        let conda = package(&dir, "tool", "tool", "1.0", "h0_0", "linux-64", false);
        let tar_bz2 = package(&dir, "data", "data", "2.1", "0", "noarch", true);
        let fake = package(&dir, "fake", "other", "1.0", "0", "linux-64", false);
        world
            .upstream
            .sign_files(&[conda.clone(), tar_bz2.clone(), fake], SystemTime::now())
            .unwrap();
        // The enclave names its channel: CEP 27 statements carry it as targetChannel.
        let policy = world.high.join("policy.toml");
        let text = std::fs::read_to_string(&policy).unwrap().replace(
            "[import]\n",
            "[import]\nconda-channel = \"https://conda.enclave.example/conda\"\n",
        );
        std::fs::write(&policy, text).unwrap();
        let (medium, out) = world.export("conda.tar", &[]);
        assert!(out.status.success(), "export: {}", stderr(&out));
        let out = world.import(&[&medium], &[]);
        assert!(out.status.success(), "import: {}", stderr(&out));
        CondaWorld {
            import_stderr: stderr(&out),
            world,
            conda,
            tar_bz2,
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(gateway::crypto::sha256(bytes))
}

#[test]
fn conda_packages_get_a_cep27_attestation_and_a_channel_built_from_their_metadata() {
    let w = CondaWorld::new();
    let served = Served::start(&w.world.high, &[]);
    // .sigs = [upstream, signature, VSA, CEP 27 publish attestation].
    let sigs = served.get("/artifacts/conda/tool-1.0-h0_0.conda.sigs");
    assert_eq!(sigs.status, 200);
    let array: Vec<Value> = serde_json::from_slice(&sigs.body).unwrap();
    assert_eq!(array.len(), 4, "{}", sigs.text());
    let payload =
        gateway::encoding::b64_decode(array[3]["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(statement["predicateType"], gateway::attest::CEP27_PREDICATE);
    assert_eq!(statement["subject"].as_array().unwrap().len(), 1);
    assert_eq!(statement["subject"][0]["name"], "tool-1.0-h0_0.conda");
    assert_eq!(
        statement["predicate"]["targetChannel"],
        "https://conda.enclave.example/conda"
    );
    let bytes = std::fs::read(&w.conda).unwrap();
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        sha256_hex(&bytes).as_str()
    );

    // repodata.json per subdir, from each package's own info/index.json.
    let repodata = served.get("/conda/linux-64/repodata.json");
    assert_eq!(repodata.status, 200);
    let v = repodata.json();
    assert_eq!(v["info"]["subdir"], "linux-64");
    let record = &v["packages.conda"]["tool-1.0-h0_0.conda"];
    assert_eq!(record["name"], "tool");
    assert_eq!(record["version"], "1.0");
    assert_eq!(record["sha256"], sha256_hex(&bytes).as_str());
    assert_eq!(record["size"], bytes.len());
    assert_eq!(
        record["attestations_sha256"],
        sha256_hex(&sigs.body).as_str()
    );
    // CEP 50: the sidecar at FILE.sigs.SHA256, for that SHA-256 only.
    let pinned = served.get(&format!(
        "/conda/linux-64/tool-1.0-h0_0.conda.sigs.{}",
        sha256_hex(&sigs.body)
    ));
    assert_eq!(pinned.status, 200);
    assert_eq!(pinned.body, sigs.body);
    let stale = served.get(&format!(
        "/conda/linux-64/tool-1.0-h0_0.conda.sigs.{}",
        "00".repeat(32)
    ));
    assert_eq!(stale.status, 404);
    // The package whose metadata names another package is carried, not listed.
    assert!(v["packages.conda"].get("fake-1.0-0.conda").is_none(), "{v}");
    assert!(
        w.import_stderr.contains("not listed in the conda channel"),
        "{}",
        w.import_stderr
    );
    assert_eq!(served.get("/artifacts/conda/fake-1.0-0.conda").status, 200);
    let noarch = served.get("/conda/noarch/repodata.json").json();
    assert_eq!(noarch["packages"]["data-2.1-0.tar.bz2"]["name"], "data");
    // An empty subdir still answers (clients always ask for noarch and their platform).
    let empty = served.get("/conda/osx-arm64/repodata.json");
    assert_eq!(empty.status, 200);
    assert!(empty.json()["packages.conda"]
        .as_object()
        .unwrap()
        .is_empty());

    // Package bytes and .sigs through the channel are the artifact's.
    let file = served.get("/conda/linux-64/tool-1.0-h0_0.conda");
    assert_eq!(file.status, 200);
    assert_eq!(file.body, bytes);
    assert_eq!(
        served.get("/conda/linux-64/tool-1.0-h0_0.conda.sigs").body,
        sigs.body
    );
    // Unknown packages, wrong subdirs, and non-subdirs are 404s with a reason.
    for (target, status) in [
        ("/conda/linux-64/nope-1.0-0.conda", 404),
        ("/conda/linux-64/nope-1.0-0.conda.sigs", 404),
        ("/conda/noarch/tool-1.0-h0_0.conda", 404),
        ("/conda/not-a-subdir/repodata.json", 404),
        ("/conda/linux-64/%FF.conda", 400),
    ] {
        let r = served.get(target);
        assert_eq!(r.status, status, "{target}: {}", r.text());
        assert!(r.json()["error"].is_string(), "{target}");
    }
}

/// py-rattler (PyPI) reads the served channel: `fetch_repo_data` fetches
/// `repodata.json` for linux-64 and noarch, the records carry the verified
/// sha256 and the `.sigs` digest (`attestations_sha256`), and the package
/// downloaded from the record's URL has that sha256; the sidecar at
/// `URL.sigs.SHA256` hashes to the advertised digest, and sigstore-python
/// verifies its CEP 27 publish attestation with the enclave's trust config.
/// (conda-sigstore itself cannot run here: it imports `conda`, which is not
/// published on PyPI or Debian in a version it supports.)
#[test]
#[ignore = "interop: real clients, run by tests/run-all.sh"]
fn py_rattler_fetches_the_channel_and_downloads_a_package() {
    let w = CondaWorld::new();
    let served = Served::start(&w.world.high, &[]);
    let cache = w.world.root().join("rattler-cache");
    let ca: Value =
        serde_json::from_slice(&std::fs::read(w.world.high.join("ca.json")).unwrap()).unwrap();
    let script = r#"
import asyncio, hashlib, json, sys, urllib.request
from rattler import Channel, fetch_repo_data, PackageName
from rattler.platform import Platform
from sigstore.models import Bundle, ClientTrustConfig
from sigstore.verify import Verifier, policy
url, cache, trust_config, identity, issuer = sys.argv[1:6]
verifier = Verifier(trusted_root=ClientTrustConfig.from_json(open(trust_config).read()).trusted_root)
def cep27(bundle, data):
    # sigstore-python verifies the CEP 27 envelope; its one subject must be this package.
    kind, payload = verifier.verify_dsse(Bundle.from_json(json.dumps(bundle)), policy.Identity(identity=identity, issuer=issuer))
    s = json.loads(payload)
    return {"predicateType": s["predicateType"], "subjects": s["subject"],
            "matches": s["subject"][0]["digest"]["sha256"] == hashlib.sha256(data).hexdigest(),
            "targetChannel": (s.get("predicate") or {}).get("targetChannel")}
async def main():
    repos = await fetch_repo_data(channels=[Channel(url)], platforms=[Platform("linux-64"), Platform("noarch")], cache_path=cache, callback=None)
    out = {}
    for repo in repos:
        for name in repo.package_names():
            for r in repo.load_records(PackageName(name)):
                data = urllib.request.urlopen(str(r.url)).read()
                sidecar = urllib.request.urlopen(f"{r.url}.sigs.{r.attestations_sha256.hex()}").read()
                out[r.file_name] = {
                    "subdir": r.subdir, "url": str(r.url), "sha256": r.sha256.hex(), "size": r.size,
                    "downloaded_sha256": hashlib.sha256(data).hexdigest(),
                    "attestations_sha256": r.attestations_sha256.hex(),
                    "sidecar_sha256": hashlib.sha256(sidecar).hexdigest(),
                    "sidecar_bundles": len(json.loads(sidecar)),
                    "cep27": cep27(json.loads(sidecar)[3], data),
                }
    print(json.dumps(out))
asyncio.run(main())
"#;
    let out = std::process::Command::new(crate::common::python())
        .args(["-c", script])
        .arg(format!("{}/conda", served.base))
        .arg(&cache)
        .arg(w.world.high.join("trust_config.json"))
        .arg(ca["default_identity"].as_str().unwrap())
        .arg(ca["oidc_issuer"].as_str().unwrap())
        .output()
        .expect("the interop venv's python (tests/run-all.sh makes it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "py-rattler failed: {stdout} {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        served.log()
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    for (file, path, subdir) in [
        ("tool-1.0-h0_0.conda", &w.conda, "linux-64"),
        ("data-2.1-0.tar.bz2", &w.tar_bz2, "noarch"),
    ] {
        let r = &report[file];
        let want = sha256_hex(&std::fs::read(path).unwrap());
        assert_eq!(r["subdir"], subdir, "{report}");
        assert_eq!(r["sha256"], want.as_str(), "{report}");
        assert_eq!(r["downloaded_sha256"], want.as_str(), "{report}");
        assert_eq!(r["sidecar_sha256"], r["attestations_sha256"], "{report}");
        assert_eq!(r["sidecar_bundles"], 4, "{report}");
        let c = &r["cep27"];
        assert_eq!(
            c["predicateType"],
            gateway::attest::CEP27_PREDICATE,
            "{report}"
        );
        assert_eq!(c["subjects"].as_array().unwrap().len(), 1, "{report}");
        assert_eq!(c["subjects"][0]["name"], file, "{report}");
        assert_eq!(c["matches"], true, "{report}");
        assert_eq!(c["targetChannel"], "https://conda.enclave.example/conda");
    }
    assert!(report.get("fake-1.0-0.conda").is_none(), "{report}");
}

#[test]
fn a_package_whose_index_json_is_huge_is_refused_without_reading_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let base = src.path();
    std::fs::create_dir_all(base.join("info")).unwrap();
    // 8 MiB of index.json compresses to a few KiB: what a bomb looks like.
    let padding = "x".repeat(8 << 20);
    let index = format!(
        r#"{{"name":"big","version":"1","build":"0","build_number":0,"subdir":"noarch","license":"{padding}"}}"#
    );
    std::fs::write(base.join("info/index.json"), index).unwrap();
    let paths = vec![base.join("info/index.json")];
    for tar_bz2 in [false, true] {
        let path = if tar_bz2 {
            let p = dir.path().join("big-1-0.tar.bz2");
            rattler_package_streaming::write::write_tar_bz2_package(
                std::fs::File::create(&p).unwrap(),
                base,
                &paths,
                CompressionLevel::Lowest,
                None,
                None,
            )
            .unwrap();
            p
        } else {
            let p = dir.path().join("big-1-0.conda");
            rattler_package_streaming::write::write_conda_package(
                std::fs::File::create(&p).unwrap(),
                base,
                &paths,
                CompressionLevel::Lowest,
                None,
                "big-1-0",
                None,
                None,
            )
            .unwrap();
            p
        };
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let err = gateway::conda::record_of(&path, &name, &"ab".repeat(32), 1).unwrap_err();
        assert!(err.contains("over"), "{name}: {err}");
    }
}
