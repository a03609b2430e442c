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
