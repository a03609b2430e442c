//! "We vetted this": the SLSA Verification Summary Attestation (VSA v1) the
//! high side signs for every imported artifact, as an in-toto Statement v1
//! in a DSSE envelope. Pure: facts in, statement bytes out; and back, for
//! `airgate verify`, from a payload a verified signature covers.
//!
//! Every field comes from what was verified: the artifact digest (hashed
//! on import), the upstream signer and log entry (from the verified
//! bundle), the high-side policy (hashed as read), the time of the import.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The DSSE payload type of in-toto statements.
pub const INTOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// in-toto Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// SLSA Verification Summary v1.
pub const VSA_PREDICATE_V1: &str = "https://slsa.dev/verification_summary/v1";

/// One upstream bundle the high side verified (an input attestation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedInput {
    /// SHA-256 (hex) of the bundle bytes as received and verified.
    pub bundle_sha256: String,
    /// The verified signer identity (certificate SAN or key ID).
    pub identity: String,
    /// The verified OIDC issuer (empty for key-signed bundles).
    pub issuer: String,
    /// The log index a signature or verified proof covers.
    pub log_index: u64,
    /// The log's URL, from the trusted root.
    pub log_url: String,
}

/// The verified facts a VSA states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsaFacts {
    /// This gateway's verifier ID (the identity airgate signs as).
    pub verifier_id: String,
    /// airgate's version.
    pub verifier_version: String,
    /// When the high side verified the artifact (the import's clock).
    pub time_verified: DateTime<Utc>,
    /// The artifact's name.
    pub name: String,
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// Where the high-side policy lives (its name in the state directory).
    pub policy_uri: String,
    /// SHA-256 (hex) of the policy bytes as read.
    pub policy_sha256: String,
    /// The upstream bundles that verified.
    pub inputs: Vec<VerifiedInput>,
}

/// The in-toto statement bytes (compact JSON) for `facts`.
pub fn vsa_statement(facts: &VsaFacts) -> Vec<u8> {
    let inputs: Vec<serde_json::Value> = facts
        .inputs
        .iter()
        .map(|i| {
            json!({
                "uri": format!("airgate:{}.sigs", facts.name),
                "digest": {"sha256": i.bundle_sha256},
                "annotations": {
                    "identity": i.identity,
                    "issuer": i.issuer,
                    "logIndex": i.log_index,
                    "logUrl": i.log_url,
                },
            })
        })
        .collect();
    let statement = json!({
        "_type": STATEMENT_V1,
        "subject": [{"name": facts.name, "digest": {"sha256": facts.sha256}}],
        "predicateType": VSA_PREDICATE_V1,
        "predicate": {
            "verifier": {"id": facts.verifier_id, "version": {"airgate": facts.verifier_version}},
            "timeVerified": facts.time_verified.to_rfc3339_opts(SecondsFormat::Secs, true),
            "resourceUri": format!("airgate:{}", facts.name),
            "policy": {"uri": facts.policy_uri, "digest": {"sha256": facts.policy_sha256}},
            "inputAttestations": inputs,
            "verificationResult": "PASSED",
            // airgate verifies signatures and identities, not build provenance:
            // no SLSA build level is claimed.
            "verifiedLevels": [],
        },
    });
    serde_json::to_vec(&statement).unwrap_or_default()
}

/// An in-toto Statement v1 about one artifact with a caller's predicate
/// (`airgate sign --predicate`): the predicate must be a JSON object with
/// unique keys, the type an absolute URI.
pub fn statement(
    name: &str,
    sha256: &str,
    predicate_type: &str,
    predicate: &[u8],
) -> Result<Vec<u8>, String> {
    let scheme_ok = predicate_type
        .split_once(':')
        .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty());
    if !scheme_ok
        || predicate_type
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "predicate type {} is not an absolute URI (e.g. https://slsa.dev/provenance/v1)",
            crate::escape::quoted(predicate_type)
        ));
    }
    let value: serde_json::Value =
        crate::strict_json::from_slice(predicate).map_err(|e| format!("predicate: {e}"))?;
    if !value.is_object() {
        return Err("predicate: not a JSON object".into());
    }
    let statement = json!({
        "_type": STATEMENT_V1,
        "subject": [{"name": name, "digest": {"sha256": sha256}}],
        "predicateType": predicate_type,
        "predicate": value,
    });
    serde_json::to_vec(&statement).map_err(|e| format!("statement: {e}"))
}

/// The CEP 27 publish predicate (conda packages).
pub const CEP27_PREDICATE: &str = "https://schemas.conda.org/attestations-publish-1.schema.json";

/// The conda package filename of an artifact name (its last component),
/// when it is one: `NAME-VERSION-BUILD.conda` or `.tar.bz2`, as CEP 27 and
/// conda-sigstore require of a subject.
pub fn conda_filename(name: &str) -> Option<&str> {
    let file = name.rsplit('/').next()?;
    let stem = file
        .strip_suffix(".conda")
        .or_else(|| file.strip_suffix(".tar.bz2"))?;
    let parts: Vec<&str> = stem.split('-').collect();
    (parts.len() >= 3 && parts.iter().all(|p| !p.is_empty())).then_some(file)
}

/// The CEP 27 publish attestation for a conda package artifact (`None` for
/// any other name): exactly one subject, the package filename and its
/// SHA-256; `predicate` = `{"targetChannel": URL}` or null.
pub fn cep27_statement(name: &str, sha256: &str, target_channel: Option<&str>) -> Option<Vec<u8>> {
    let file = conda_filename(name)?;
    let predicate = target_channel.map(|url| json!({ "targetChannel": url }));
    let statement = json!({
        "_type": STATEMENT_V1,
        "subject": [{"name": file, "digest": {"sha256": sha256}}],
        "predicateType": CEP27_PREDICATE,
        "predicate": predicate,
    });
    serde_json::to_vec(&statement).ok()
}

/// What `airgate verify` prints of a verified VSA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsaSummary {
    /// The subject's name.
    pub subject: String,
    /// The subject's SHA-256.
    pub sha256: String,
    /// `predicate.verifier.id`.
    pub verifier_id: String,
    /// `predicate.timeVerified`.
    pub time_verified: String,
    /// `predicate.verificationResult`.
    pub result: String,
    /// `predicate.policy.uri` and its SHA-256.
    pub policy: (String, String),
    /// The input attestations.
    pub inputs: Vec<VerifiedInput>,
}

#[derive(Deserialize)]
struct Statement {
    subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: Predicate,
}

#[derive(Deserialize)]
struct Subject {
    name: String,
    digest: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Predicate {
    verifier: Verifier,
    time_verified: String,
    policy: Descriptor,
    #[serde(default)]
    input_attestations: Vec<Descriptor>,
    verification_result: String,
}

#[derive(Deserialize)]
struct Verifier {
    id: String,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(default)]
    uri: String,
    #[serde(default)]
    digest: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    annotations: Option<Annotations>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Annotations {
    identity: String,
    issuer: String,
    log_index: u64,
    log_url: String,
}

/// Reads a VSA from a statement a verified signature covers. `Err` names
/// what is missing; a statement of another predicate type is `Ok(None)`.
pub fn read_vsa(payload: &[u8]) -> Result<Option<VsaSummary>, String> {
    let probe: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("statement: {e}"))?;
    if probe.get("predicateType").and_then(|v| v.as_str()) != Some(VSA_PREDICATE_V1) {
        return Ok(None);
    }
    let s: Statement =
        serde_json::from_value(probe).map_err(|e| format!("verification summary: {e}"))?;
    debug_assert_eq!(s.predicate_type, VSA_PREDICATE_V1);
    let [subject] = <[Subject; 1]>::try_from(s.subject)
        .map_err(|v| format!("verification summary has {} subjects, not 1", v.len()))?;
    let p = s.predicate;
    let inputs = p
        .input_attestations
        .into_iter()
        .filter_map(|d| {
            let a = d.annotations?;
            Some(VerifiedInput {
                bundle_sha256: d.digest.get("sha256").cloned().unwrap_or_default(),
                identity: a.identity,
                issuer: a.issuer,
                log_index: a.log_index,
                log_url: a.log_url,
            })
        })
        .collect();
    Ok(Some(VsaSummary {
        subject: subject.name,
        sha256: subject.digest.get("sha256").cloned().unwrap_or_default(),
        verifier_id: p.verifier.id,
        time_verified: p.time_verified,
        result: p.verification_result,
        policy: (
            p.policy.uri,
            p.policy.digest.get("sha256").cloned().unwrap_or_default(),
        ),
        inputs,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn facts() -> VsaFacts {
        VsaFacts {
            verifier_id: "https://airgate.internal/gateway".into(),
            verifier_version: "0.1.0".into(),
            time_verified: DateTime::parse_from_rfc3339("2026-12-03T08:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            name: "bin/app".into(),
            sha256: "ab".repeat(32),
            policy_uri: "policy.toml".into(),
            policy_sha256: "cd".repeat(32),
            inputs: vec![VerifiedInput {
                bundle_sha256: "ef".repeat(32),
                identity: "https://github.com/o/r/.github/workflows/release.yml@refs/tags/v1"
                    .into(),
                issuer: "https://token.actions.githubusercontent.com".into(),
                log_index: 42,
                log_url: "https://rekor.sigstore.dev".into(),
            }],
        }
    }

    #[test]
    fn statement_has_the_vsa_v1_required_fields() {
        let v: serde_json::Value = serde_json::from_slice(&vsa_statement(&facts())).unwrap();
        assert_eq!(v["_type"], STATEMENT_V1);
        assert_eq!(v["predicateType"], VSA_PREDICATE_V1);
        assert_eq!(v["subject"][0]["digest"]["sha256"], "ab".repeat(32));
        let p = &v["predicate"];
        for field in [
            "verifier",
            "timeVerified",
            "resourceUri",
            "policy",
            "verificationResult",
            "verifiedLevels",
        ] {
            assert!(!p[field].is_null(), "{field} missing: {p}");
        }
        assert_eq!(p["verifier"]["id"], "https://airgate.internal/gateway");
        assert_eq!(p["timeVerified"], "2026-12-03T08:00:00Z");
    }

    #[test]
    fn read_back_gives_the_stated_facts() {
        let summary = read_vsa(&vsa_statement(&facts())).unwrap().unwrap();
        assert_eq!(summary.subject, "bin/app");
        assert_eq!(summary.result, "PASSED");
        assert_eq!(summary.inputs, facts().inputs);
        assert_eq!(summary.policy, ("policy.toml".into(), "cd".repeat(32)));
    }

    #[test]
    fn a_caller_predicate_becomes_a_statement_about_the_file() {
        let s = statement(
            "a.tar",
            &"ab".repeat(32),
            "https://slsa.dev/provenance/v1",
            br#"{"x":1}"#,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&s).unwrap();
        assert_eq!(v["subject"][0]["name"], "a.tar");
        assert_eq!(v["predicate"]["x"], 1);
    }

    #[test]
    fn predicate_not_an_object_or_type_not_a_uri_is_refused() {
        let sha = "ab".repeat(32);
        assert!(statement("a", &sha, "https://t/v1", b"[1]")
            .unwrap_err()
            .contains("not a JSON object"));
        assert!(statement("a", &sha, "https://t/v1", br#"{"x":1,"x":2}"#).is_err());
        assert!(statement("a", &sha, "provenance", b"{}")
            .unwrap_err()
            .contains("absolute URI"));
        assert!(statement("a", &sha, "https://t/\nv1", b"{}").is_err());
    }

    #[test]
    fn conda_package_names_get_a_cep27_statement_with_one_subject() {
        assert_eq!(
            conda_filename("linux-64/numpy-1.26.4-py311h0_0.conda"),
            Some("numpy-1.26.4-py311h0_0.conda")
        );
        assert_eq!(
            conda_filename("zlib-1.3-h0.tar.bz2"),
            Some("zlib-1.3-h0.tar.bz2")
        );
        for not_conda in [
            "app.tar.gz",
            "a-b.conda",
            "--.conda",
            "a--b-c.conda",
            "x.conda.sig",
        ] {
            assert_eq!(conda_filename(not_conda), None, "{not_conda}");
        }
        let s = cep27_statement("noarch/pkg-1.0-0.conda", &"ab".repeat(32), None).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&s).unwrap();
        assert_eq!(v["predicateType"], CEP27_PREDICATE);
        assert_eq!(v["subject"].as_array().unwrap().len(), 1);
        assert_eq!(v["subject"][0]["name"], "pkg-1.0-0.conda");
        assert!(v["predicate"].is_null());
        assert!(cep27_statement("app.tar.gz", &"ab".repeat(32), None).is_none());
    }

    #[test]
    fn another_predicate_is_not_a_vsa() {
        let other = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}"#;
        assert_eq!(read_vsa(other).unwrap(), None);
    }

    #[test]
    fn a_vsa_with_two_subjects_is_refused_by_name() {
        let mut v: serde_json::Value = serde_json::from_slice(&vsa_statement(&facts())).unwrap();
        let s = v["subject"][0].clone();
        v["subject"].as_array_mut().unwrap().push(s);
        let err = read_vsa(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.contains("2 subjects"), "{err}");
    }
}
