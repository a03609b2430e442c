//! Interop: bundles produced by airgate's private stack are verified, offline,
//! by unmodified sigstore-python (CLI) and sigstore-js (library), and the same
//! tampered bundles are rejected by both and by `airgate verify`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use gateway::private_ca::{ca::files, Curve, LeafRequest, SigningIdentity, SigningKey};
use gateway::signing::{LeafSignature, SigningRequest};
use gateway::state::StateDir;
use serde_json::Value;

use crate::common::{airgate, js_dir, python, stderr};

const IDENTITY: &str = "https://airgate.internal/gateway";
const ISSUER: &str = "https://oidc.airgate.internal";

/// Verdict of sigstore-python's CLI: Ok(()) or Err(stderr).
pub fn python_verify(
    trust_config: &Path,
    bundle: &Path,
    artifact: &Path,
    identity: &str,
    issuer: &str,
) -> Result<(), String> {
    let out = Command::new(python())
        .args(["-m", "sigstore", "--trust-config"])
        .arg(trust_config)
        .args(["verify", "identity", "--offline", "--bundle"])
        .arg(bundle)
        .args(["--cert-identity", identity, "--cert-oidc-issuer", issuer])
        .arg(artifact)
        .output()
        .expect("the interop venv's python must run (tests/run-all.sh makes it)");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !err.contains("No module named sigstore"),
        "sigstore-python is not installed in {}: run tests/run-all.sh",
        python().display()
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(err)
    }
}

/// Verdict of sigstore-js (`@sigstore/verify` with default thresholds).
pub fn js_verify(
    trusted_root: &Path,
    bundle: &Path,
    artifact: &Path,
    identity: &str,
    issuer: &str,
) -> Result<(), String> {
    let dir = js_dir();
    let out = Command::new("node")
        .arg(dir.join("verify.mjs"))
        .arg(trusted_root)
        .arg(bundle)
        .arg(artifact)
        .args([identity, issuer])
        .output()
        .expect("node must be installed");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn airgate_verify(state: &Path, bundle: &Path, artifact: &Path) -> std::process::Output {
    airgate([
        "verify".as_ref(),
        "--bundle".as_ref(),
        bundle.as_os_str(),
        "--trusted-root".as_ref(),
        state.join(files::TRUSTED_ROOT).as_os_str(),
        "--certificate-identity".as_ref(),
        IDENTITY.as_ref(),
        "--certificate-oidc-issuer".as_ref(),
        ISSUER.as_ref(),
        artifact.as_os_str(),
    ])
}

struct Case {
    name: String,
    bundle: PathBuf,
    artifact: PathBuf,
}

fn all_clients(state: &Path, case: &Case) -> [(&'static str, Result<(), String>); 3] {
    let ours = airgate_verify(state, &case.bundle, &case.artifact);
    [
        (
            "airgate",
            if ours.status.success() {
                Ok(())
            } else {
                Err(stderr(&ours))
            },
        ),
        (
            "sigstore-python",
            python_verify(
                &state.join(files::TRUST_CONFIG),
                &case.bundle,
                &case.artifact,
                IDENTITY,
                ISSUER,
            ),
        ),
        (
            "sigstore-js",
            js_verify(
                &state.join(files::TRUSTED_ROOT),
                &case.bundle,
                &case.artifact,
                IDENTITY,
                ISSUER,
            ),
        ),
    ]
}

fn flip_b64_at(v: &mut Value, pointer: &str, byte: usize) {
    let slot = v
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer}"));
    let mut raw = gateway::encoding::b64_decode(slot.as_str().unwrap()).unwrap();
    let i = byte.min(raw.len() - 1);
    raw[i] ^= 0x01;
    *slot = Value::String(gateway::encoding::b64_encode(&raw));
}

fn flip_checkpoint_signature(v: &mut Value) {
    let pointer = "/verificationMaterial/tlogEntries/0/inclusionProof/checkpoint/envelope";
    let text = v.pointer(pointer).unwrap().as_str().unwrap().to_string();
    let mut note = gateway::tlog::checkpoint::SignedNote::parse(&text).unwrap();
    let sig = &mut note.signatures[0].signature;
    let last = sig.len() - 1;
    sig[last] ^= 0x01;
    *v.pointer_mut(pointer).unwrap() = Value::String(note.to_text());
}

/// A certificate identical to `cert_der` but with one byte of its embedded SCT's
/// signature flipped, re-signed by the intermediate: valid chain, invalid SCT.
fn with_tampered_sct(cert_der: &[u8], intermediate: &SigningKey) -> Vec<u8> {
    use der::{Decode, Encode};
    let cert = gateway::x509::Certificate::from_der(cert_der).unwrap();
    let sct = cert.embedded_scts().unwrap().unwrap().remove(0);
    let mut parsed = x509_cert::Certificate::from_der(cert_der).unwrap();
    let mut new_tbs = parsed.tbs_certificate.to_der().unwrap();
    let pos = new_tbs
        .windows(sct.signature.len())
        .position(|w| w == sct.signature.as_slice())
        .expect("SCT signature inside the TBS");
    new_tbs[pos + sct.signature.len() - 1] ^= 0x01;
    let signature = intermediate.sign(&new_tbs).unwrap();
    parsed.tbs_certificate = x509_cert::TbsCertificate::from_der(&new_tbs).unwrap();
    parsed.signature = der::asn1::BitString::from_bytes(&signature).unwrap();
    parsed.to_der().unwrap()
}

#[test]
#[ignore = "interop: real clients, run by tests/run-all.sh"]
fn private_stack_bundles_verify_in_sigstore_python_and_js_and_tampering_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let out = airgate([
        "ca",
        "init",
        "--dir",
        state.to_str().unwrap(),
        "--name",
        "Interop Enclave",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // 1. The very first entry of a fresh log (index 0, empty proof), via `airgate sign`.
    let first = tmp.path().join("first.txt");
    std::fs::write(&first, b"the first artifact of a new log\n").unwrap();
    let first_bundle = tmp.path().join("first.sigstore.json");
    let out = airgate([
        "sign".as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
        first.as_os_str(),
        "-o".as_ref(),
        first_bundle.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&std::fs::read(&first_bundle).unwrap()).unwrap();
    assert_eq!(v["verificationMaterial"]["tlogEntries"][0]["logIndex"], "0");
    assert_eq!(
        v["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"],
        Value::Array(vec![])
    );

    // 2. An entry deep in a larger tree, plus one with a tampered SCT.
    let mut dir = StateDir::open(&state).unwrap();
    let identity = SigningIdentity::parse(IDENTITY).unwrap();
    let now = SystemTime::now();
    let mut deep_artifact = None;
    let mut deep_bundle = None;
    for batch in 0..6 {
        let requests: Vec<SigningRequest> = (0..50)
            .map(|i| SigningRequest {
                artifact_sha256: gateway::crypto::sha256(
                    format!("artifact {batch}/{i}\n").as_bytes(),
                ),
                identity: identity.clone(),
                custody: None,
                attestations: Vec::new(),
            })
            .collect();
        let signed = dir.sign(&requests, now).unwrap();
        if batch == 4 {
            deep_artifact = Some(format!("artifact {batch}/37\n"));
            deep_bundle = Some(signed.artifacts[37].bundle_json.clone());
        }
    }
    let deep = tmp.path().join("deep.txt");
    std::fs::write(&deep, deep_artifact.unwrap()).unwrap();
    let deep_path = tmp.path().join("deep.sigstore.json");
    std::fs::write(&deep_path, deep_bundle.unwrap()).unwrap();
    let deep_json: Value = serde_json::from_slice(&std::fs::read(&deep_path).unwrap()).unwrap();
    assert!(
        deep_json["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"]
            .as_array()
            .unwrap()
            .len()
            >= 7
    );

    let sct_artifact = tmp.path().join("sct.txt");
    std::fs::write(&sct_artifact, b"artifact whose certificate has a bad SCT\n").unwrap();
    let intermediate = SigningKey::load(
        &state.join(files::INTERMEDIATE_KEY),
        Curve::P256,
        "intermediate",
    )
    .unwrap();
    let leaf = dir
        .ca()
        .issue_leaf(
            &LeafRequest {
                identity: identity.clone(),
                custody: None,
            },
            now,
        )
        .unwrap();
    let digest = gateway::crypto::sha256(&std::fs::read(&sct_artifact).unwrap());
    let tampered_cert = with_tampered_sct(&leaf.certificate_der, &intermediate);
    let signed = dir
        .log_signatures(
            &[LeafSignature {
                certificate_der: tampered_cert,
                signature: leaf.key.sign_sha256_digest(&digest).unwrap(),
                artifact_sha256: digest,
                attestations: Vec::new(),
            }],
            now,
        )
        .unwrap();
    let sct_bundle = tmp.path().join("sct.sigstore.json");
    std::fs::write(&sct_bundle, &signed.artifacts[0].bundle_json).unwrap();

    let good = [
        Case {
            name: "first entry (index 0)".into(),
            bundle: first_bundle.clone(),
            artifact: first.clone(),
        },
        Case {
            name: "deep entry".into(),
            bundle: deep_path.clone(),
            artifact: deep.clone(),
        },
    ];
    for case in &good {
        for (client, verdict) in all_clients(&state, case) {
            assert!(
                verdict.is_ok(),
                "{client} rejected the {}: {}",
                case.name,
                verdict.unwrap_err()
            );
        }
    }

    // 3. One flipped byte in each part is rejected by every client.
    let mut bad = Vec::new();
    let mut write_variant = |name: &str, mutate: &dyn Fn(&mut Value)| {
        let mut v = deep_json.clone();
        mutate(&mut v);
        let path = tmp
            .path()
            .join(format!("bad-{}.sigstore.json", name.replace(' ', "-")));
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        bad.push(Case {
            name: name.into(),
            bundle: path,
            artifact: deep.clone(),
        });
    };
    write_variant("signature", &|v| {
        flip_b64_at(v, "/messageSignature/signature", 20)
    });
    write_variant("SET", &|v| {
        flip_b64_at(
            v,
            "/verificationMaterial/tlogEntries/0/inclusionPromise/signedEntryTimestamp",
            20,
        )
    });
    write_variant("proof hash", &|v| {
        flip_b64_at(
            v,
            "/verificationMaterial/tlogEntries/0/inclusionProof/hashes/2",
            9,
        )
    });
    write_variant("checkpoint", &flip_checkpoint_signature);
    bad.push(Case {
        name: "SCT".into(),
        bundle: sct_bundle,
        artifact: sct_artifact,
    });
    for case in &bad {
        for (client, verdict) in all_clients(&state, case) {
            assert!(
                verdict.is_err(),
                "{client} accepted a bundle with a flipped byte in the {}",
                case.name
            );
        }
    }
    // airgate names the failed check for the SCT variant.
    let sct_case = bad.last().unwrap();
    let out = airgate_verify(&state, &sct_case.bundle, &sct_case.artifact);
    assert!(stderr(&out).contains("sct.signature"), "{}", stderr(&out));

    // The log still audits clean.
    let out = airgate(["log", "verify", "--state", state.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}
