//! The sigstore-conformance bundle-verify suite, run through `airgate verify`
//! in artifact-path and `sha256:` digest modes (140 runs), no case special-cased.

use std::collections::HashMap;

use crate::common::{airgate, fixtures, stderr};

struct Case {
    fields: HashMap<String, String>,
}

impl Case {
    fn get(&self, key: &str) -> &str {
        self.fields.get(key).map(String::as_str).unwrap_or("")
    }
}

fn cases() -> Vec<Case> {
    let tsv = std::fs::read_to_string(fixtures().join("conformance/CASES.tsv")).expect("CASES.tsv");
    let mut lines = tsv.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split('\t')
        .map(str::to_string)
        .collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| Case {
            fields: header
                .iter()
                .cloned()
                .zip(line.split('\t').map(str::to_string))
                .collect(),
        })
        .collect()
}

#[test]
fn conformance_suite_all_140_runs_match_expected() {
    let root = fixtures();
    let cases = cases();
    assert_eq!(cases.len(), 70, "expected the 70-case suite");
    let mut mismatches = Vec::new();
    let mut runs = 0;
    for case in &cases {
        for mode in ["path", "digest"] {
            let mut args: Vec<String> = vec![
                "verify".into(),
                "--bundle".into(),
                root.join(case.get("bundle")).display().to_string(),
                "--trusted-root".into(),
                root.join(case.get("trusted_root")).display().to_string(),
            ];
            if case.get("verify_mode") == "key" {
                args.push("--key".into());
                args.push(root.join(case.get("key")).display().to_string());
            } else {
                args.extend([
                    "--certificate-identity".into(),
                    case.get("identity").to_string(),
                    "--certificate-oidc-issuer".into(),
                    case.get("issuer").to_string(),
                ]);
            }
            args.push(match mode {
                "path" => root.join(case.get("artifact")).display().to_string(),
                _ => format!("sha256:{}", case.get("artifact_sha256")),
            });
            let out = airgate(&args);
            runs += 1;
            let code = out.status.code().unwrap_or(-1);
            let got = if code == 0 { "pass" } else { "fail" };
            if got != case.get("expected") || !(0..=2).contains(&code) {
                mismatches.push(format!(
                    "{} [{mode}]: expected {}, exit {code}: {}",
                    case.get("case"),
                    case.get("expected"),
                    stderr(&out).lines().next().unwrap_or("")
                ));
            }
            if got == "fail" && code == 1 {
                // A rejection names the failed check in one line.
                assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
            }
        }
    }
    assert_eq!(runs, 140);
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn verify_json_output_reports_signer_and_log_index() {
    let dir = fixtures().join("conformance/bundle-verify");
    let out = airgate([
        "verify",
        "--json",
        "--bundle",
        dir.join("happy-path-v0.3/bundle.sigstore.json")
            .to_str()
            .unwrap(),
        "--certificate-identity-regexp",
        "^https://github.com/sigstore-conformance/",
        "--certificate-oidc-issuer",
        "https://token.actions.githubusercontent.com",
        dir.join("a.txt").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert!(v["logIndex"].as_u64().unwrap() > 0);
    assert_eq!(
        v["signer"]["issuer"],
        "https://token.actions.githubusercontent.com"
    );
}

#[test]
fn verify_exit_codes_distinguish_rejection_from_usage() {
    let dir = fixtures().join("conformance/bundle-verify");
    let bundle = dir.join("happy-path-v0.3/bundle.sigstore.json");
    // Wrong identity: rejected (1), naming the check.
    let out = airgate([
        "verify",
        "--bundle",
        bundle.to_str().unwrap(),
        "--certificate-identity",
        "someone@example.com",
        "--certificate-oidc-issuer",
        "https://accounts.google.com",
        dir.join("a.txt").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("policy.identity"), "{}", stderr(&out));
    // Missing artifact: I/O error (2).
    let out = airgate([
        "verify",
        "--bundle",
        bundle.to_str().unwrap(),
        "--certificate-identity",
        "x",
        "--certificate-oidc-issuer",
        "y",
        "/nonexistent/artifact",
    ]);
    assert_eq!(out.status.code(), Some(2));
    // Missing identity flags: usage error (2).
    let out = airgate(["verify", "--bundle", bundle.to_str().unwrap(), "sha256:00"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Verifies a mutated copy of a real conformance bundle with `--json`;
/// returns (exit code, JSON).
fn verify_mutated(
    case: &str,
    trusted_root: Option<&str>,
    edit: &dyn Fn(&mut serde_json::Value),
) -> (Option<i32>, serde_json::Value) {
    let dir = fixtures().join("conformance/bundle-verify");
    let mut bundle: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join(case).join("bundle.sigstore.json")).unwrap(),
    )
    .unwrap();
    edit(&mut bundle);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bundle.json");
    std::fs::write(&path, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let root = match trusted_root {
        Some(r) => dir.join(r),
        None => fixtures().join(
            "tuf-sigstore-prod/targets/6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66.trusted_root.json",
        ),
    };
    let out = airgate([
        "verify",
        "--json",
        "--bundle",
        path.to_str().unwrap(),
        "--trusted-root",
        root.to_str().unwrap(),
        "--certificate-identity-regexp",
        "^https://github.com/sigstore-conformance/",
        "--certificate-oidc-issuer",
        "https://token.actions.githubusercontent.com",
        dir.join("a.txt").to_str().unwrap(),
    ]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), json)
}

#[test]
fn rekor_v2_bundle_with_a_rewritten_log_index() {
    let root = Some("rekor2-happy-path/trusted_root.json");
    let (code, ok) = verify_mutated("rekor2-happy-path", root, &|_| {});
    assert_eq!(code, Some(0), "{ok}");
    let proof_index = ok["logIndex"].as_u64().unwrap();
    // Nothing signs a Rekor v2 entry's logIndex but the proof's position:
    // a rewritten one is refused, never reported.
    let (code, bad) = verify_mutated("rekor2-happy-path", root, &|b| {
        b["verificationMaterial"]["tlogEntries"][0]["logIndex"] = "999999".into();
    });
    assert_eq!(code, Some(1), "{bad}");
    assert_eq!(bad["check"], "tlog.index", "{bad}");
    assert_ne!(proof_index, 999_999);
}

#[test]
fn inclusion_proof_without_its_checkpoint() {
    let drop_checkpoint = |b: &mut serde_json::Value| {
        let proof = &mut b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"];
        proof.as_object_mut().unwrap().remove("checkpoint");
    };
    // v0.2+: malformed. v0.1 (which a SET alone would carry): still refused.
    let (code, bad) = verify_mutated("happy-path-v0.3", None, &drop_checkpoint);
    assert_eq!(code, Some(1), "{bad}");
    assert_eq!(bad["check"], "format", "{bad}");
    let (code, bad) = verify_mutated("happy-path-v0.1", None, &drop_checkpoint);
    assert_eq!(code, Some(1), "{bad}");
    assert_eq!(bad["check"], "tlog.checkpoint", "{bad}");
}

#[test]
fn v0_1_bundle_without_any_proof_verifies_on_its_set() {
    let (code, ok) = verify_mutated("happy-path-v0.1", None, &|b| {
        let entry = &mut b["verificationMaterial"]["tlogEntries"][0];
        entry.as_object_mut().unwrap().remove("inclusionProof");
    });
    assert_eq!(code, Some(0), "{ok}");
    assert_eq!(ok["verified"], true);
}

#[test]
fn the_same_rfc3161_timestamp_twice() {
    let root = Some("rekor2-timestamp-with-embedded-cert/trusted_root.json");
    let (code, ok) = verify_mutated("rekor2-timestamp-with-embedded-cert", root, &|_| {});
    assert_eq!(code, Some(0), "{ok}");
    let (code, bad) = verify_mutated("rekor2-timestamp-with-embedded-cert", root, &|b| {
        let list = &mut b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"];
        let first = list[0].clone();
        list.as_array_mut().unwrap().push(first);
    });
    assert_eq!(code, Some(1), "{bad}");
    assert_eq!(bad["check"], "timestamp", "{bad}");
    assert!(
        bad["error"]
            .as_str()
            .unwrap_or_default()
            .contains("same token"),
        "{bad}"
    );
}
