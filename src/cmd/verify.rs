//! `airgate verify`: cosign-compatible offline bundle verification.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use gateway::bundle::{
    ArtifactDigest, BundleLimits, BundleRejection, IdentityPolicy, Matcher, ParsedBundle,
    SignerPolicy, VerifiedSigner, Verifier,
};
use gateway::crypto::VerifyingKey;
use gateway::escape::quoted;
use gateway::{files, Error};

/// Verify a Sigstore bundle for an artifact, offline.
#[derive(Args)]
pub struct VerifyArgs {
    /// The Sigstore bundle (v0.1, v0.2 or v0.3), or a `.sigs` JSON array of
    /// bundles (conda CEP 142): verified if one of them verifies.
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    /// Expected signer identity (certificate SAN), exact.
    #[arg(
        long,
        value_name = "ID",
        conflicts_with = "certificate_identity_regexp"
    )]
    certificate_identity: Option<String>,
    /// Expected signer identity, as a regular expression (unanchored, like cosign).
    #[arg(long, value_name = "RE")]
    certificate_identity_regexp: Option<String>,
    /// Expected OIDC issuer, exact.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "certificate_oidc_issuer_regexp"
    )]
    certificate_oidc_issuer: Option<String>,
    /// Expected OIDC issuer, as a regular expression.
    #[arg(long, value_name = "RE")]
    certificate_oidc_issuer_regexp: Option<String>,
    /// Verify with this PEM public key instead of a certificate identity.
    #[arg(long, value_name = "PUBKEY.pem", conflicts_with_all = ["certificate_identity", "certificate_identity_regexp", "certificate_oidc_issuer", "certificate_oidc_issuer_regexp"])]
    key: Option<PathBuf>,
    /// trusted_root.json to verify against (default: the embedded production root).
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    /// Accept only an airgate verification summary (SLSA VSA v1, result
    /// PASSED) about the artifact, signed by the given identity: the enclave's
    /// "we vetted this". With a `.sigs`, the VSA element must verify.
    #[arg(long)]
    require_vsa: bool,
    /// Print a JSON result on stdout.
    #[arg(long)]
    json: bool,
    /// DANGER: evaluate "not in the future" checks as of this RFC 3339 time instead of now.
    #[arg(long, value_name = "TIME")]
    danger_as_of: Option<String>,
    /// The artifact: a path, or sha256:<64 hex> when no such file exists.
    #[arg(value_name = "FILE_OR_DIGEST")]
    artifact: String,
}

fn matcher(exact: Option<String>, regex: Option<String>, what: &str) -> anyhow::Result<Matcher> {
    match (exact, regex) {
        (Some(e), None) => Ok(Matcher::Exact(e)),
        (None, Some(r)) => Ok(Matcher::regex(&r)
            .map_err(|e| Error::Usage(format!("invalid {what} regular expression: {e}")))?),
        _ => Err(Error::Usage(format!(
            "give exactly one of --certificate-{what} or --certificate-{what}-regexp (or use --key)"
        ))
        .into()),
    }
}

impl VerifyArgs {
    fn policy(&self) -> anyhow::Result<SignerPolicy> {
        if let Some(key_path) = &self.key {
            let pem = files::read_limited(key_path, 1 << 20)?;
            let text = String::from_utf8_lossy(&pem);
            let key = VerifyingKey::from_pem(&text)
                .map_err(|e| Error::Usage(format!("{}: {e}", key_path.display())))?;
            return Ok(SignerPolicy::PublicKey(Box::new(key)));
        }
        let identity = matcher(
            self.certificate_identity.clone(),
            self.certificate_identity_regexp.clone(),
            "identity",
        )?;
        let issuer = matcher(
            self.certificate_oidc_issuer.clone(),
            self.certificate_oidc_issuer_regexp.clone(),
            "oidc-issuer",
        )?;
        Ok(SignerPolicy::identity(IdentityPolicy { identity, issuer }))
    }

    fn artifact_digest(&self) -> anyhow::Result<ArtifactDigest> {
        let path = Path::new(&self.artifact);
        if path.exists() {
            return Ok(files::hash_file(path)?);
        }
        if self.artifact.starts_with("sha256:") {
            return ArtifactDigest::parse(&self.artifact).ok_or_else(|| {
                Error::Usage(format!("{:?} is not sha256:<64 hex digits>", self.artifact)).into()
            });
        }
        Err(Error::io(path, std::io::Error::from(std::io::ErrorKind::NotFound)).into())
    }

    /// A `.sigs` array (conda CEP 142): each bundle is verified under the same
    /// policy and trusted root; the first that verifies wins (a client keeps
    /// the signatures its policy names: with the enclave's root, airgate's own
    /// bundle; the upstream one is for the public root). Every element that
    /// fails is reported on stderr; all failing is a rejection (the first's).
    fn verify_sigs<T>(
        &self,
        bytes: &[u8],
        verify_one: &dyn Fn(&[u8]) -> Result<T, BundleRejection>,
    ) -> anyhow::Result<Result<T, BundleRejection>> {
        let elements = match gateway::judge::artifact::split_bundles(bytes, true) {
            Ok(elements) => elements,
            // A malformed .sigs is a rejected input (exit 1), like a malformed bundle.
            Err(e) => {
                return Ok(Err(BundleRejection::Malformed(
                    gateway::bundle::BundleFormatError::Json(e.to_string()),
                )))
            }
        };
        let total = elements.len();
        let mut first_failure = None;
        for (i, element) in elements.iter().enumerate() {
            match verify_one(element) {
                Ok(v) => {
                    eprintln!(
                        "{}: bundle {} of {total} verified",
                        self.bundle.display(),
                        i + 1
                    );
                    return Ok(Ok(v));
                }
                Err(rejection) => {
                    eprintln!(
                        "{}: bundle {} of {total}: {rejection}",
                        self.bundle.display(),
                        i + 1,
                    );
                    first_failure.get_or_insert(rejection);
                }
            }
        }
        Ok(Err(first_failure.unwrap_or(BundleRejection::Malformed(
            gateway::bundle::BundleFormatError::Missing("bundle"),
        ))))
    }

    /// Runs the verification.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let now = crate::output::danger_as_of(self.danger_as_of.as_deref())?;
        let policy = self.policy()?;
        let artifact = self.artifact_digest()?;
        let root = files::load_trusted_root(self.trusted_root.as_deref())?;
        let bundle_bytes =
            files::read_limited(&self.bundle, BundleLimits::default().max_bundle_bytes)?;
        let subject = self.bundle.display().to_string();
        let verifier = Verifier::new(root);
        let verify_one = |bytes: &[u8]| -> Result<_, BundleRejection> {
            ParsedBundle::from_json(bytes, &BundleLimits::default())
                .map_err(BundleRejection::from)
                .and_then(|bundle| {
                    verifier
                        .verify(&bundle, &artifact, &policy, now)
                        .map_err(BundleRejection::from)
                })
                .and_then(|v| {
                    if self.require_vsa {
                        require_vsa(v)
                    } else {
                        Ok(v)
                    }
                })
        };
        let is_sigs = bundle_bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
        let result = if is_sigs {
            self.verify_sigs(&bundle_bytes, &verify_one)?
        } else {
            verify_one(&bundle_bytes)
        };
        match result {
            Ok(verified) => {
                if self.json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&verified_json(&verified, &artifact))?
                    );
                } else {
                    print_verified(&verified, &artifact);
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(rejection) => {
                if self.json {
                    let out = serde_json::json!({
                        "verified": false,
                        "artifact": artifact.to_string(),
                        "check": rejection.check(),
                        "error": rejection.to_string(),
                    });
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&out).context("encoding JSON")?
                    );
                    return Err(crate::output::json_printed(Error::Bundle {
                        subject,
                        rejection,
                    }));
                }
                Err(Error::Bundle { subject, rejection }.into())
            }
        }
    }
}

fn verified_json(
    v: &gateway::bundle::VerifiedBundle,
    artifact: &ArtifactDigest,
) -> serde_json::Value {
    let signer = match &v.signer {
        VerifiedSigner::Certificate {
            identity, issuer, ..
        } => {
            serde_json::json!({"identity": identity, "issuer": issuer})
        }
        VerifiedSigner::PublicKey { key_id } => serde_json::json!({"keyId": key_id}),
    };
    serde_json::json!({
        "verified": true,
        "artifact": artifact.to_string(),
        "signer": signer,
        "logIndex": v.log_index,
        "logUrl": v.log_url,
        "entryKind": v.entry_kind,
        "integratedTime": v.integrated_time.map(|t| t.to_rfc3339()),
        "timestamps": v.timestamps.iter().map(|t| t.to_rfc3339()).collect::<Vec<_>>(),
        "predicateType": v.predicate_type,
        "verificationSummary": vsa_of(v).map(|r| match r {
            Ok(s) => serde_json::json!({
                "subject": s.subject, "sha256": s.sha256, "verifier": s.verifier_id,
                "timeVerified": s.time_verified, "result": s.result,
                "policy": {"uri": s.policy.0, "sha256": s.policy.1},
                "inputs": s.inputs,
            }),
            Err(e) => serde_json::json!({"error": e}),
        }),
    })
}

/// `--require-vsa`: the verified bundle must be a readable VSA that passed.
fn require_vsa(
    v: gateway::bundle::VerifiedBundle,
) -> Result<gateway::bundle::VerifiedBundle, BundleRejection> {
    let refuse = |why: String| BundleRejection::Failed {
        failure: gateway::bundle::VerificationFailure::VsaRequired(why),
    };
    match vsa_of(&v) {
        None => Err(refuse(format!(
            "--require-vsa: this bundle verifies but is not a verification summary ({})",
            v.predicate_type
                .as_deref()
                .map_or_else(|| "a message signature".to_string(), quoted)
        ))),
        Some(Err(e)) => Err(refuse(format!("--require-vsa: unreadable summary: {e}"))),
        Some(Ok(s)) if s.result != "PASSED" => Err(refuse(format!(
            "--require-vsa: the summary's result is {}",
            quoted(&s.result)
        ))),
        Some(Ok(_)) => Ok(v),
    }
}

/// The SLSA verification summary a verified DSSE envelope carries, if any.
fn vsa_of(
    v: &gateway::bundle::VerifiedBundle,
) -> Option<Result<gateway::attest::VsaSummary, String>> {
    gateway::attest::read_vsa(v.dsse_payload.as_deref()?).transpose()
}

/// The verified fields of a VSA (the statement a verified signature covers).
fn print_vsa(summary: &gateway::attest::VsaSummary) {
    println!("  verification summary (SLSA VSA v1, covered by the verified signature):");
    println!(
        "    subject:        {} sha256:{}",
        quoted(&summary.subject),
        summary.sha256
    );
    println!("    verifier:       {}", quoted(&summary.verifier_id));
    println!("    time verified:  {}", quoted(&summary.time_verified));
    println!("    result:         {}", quoted(&summary.result));
    println!(
        "    policy:         {} sha256:{}",
        quoted(&summary.policy.0),
        summary.policy.1
    );
    for i in &summary.inputs {
        println!(
            "    input:          bundle sha256:{} signed by {} ({}), log index {} at {}",
            i.bundle_sha256,
            quoted(&i.identity),
            quoted(&i.issuer),
            i.log_index,
            quoted(&i.log_url)
        );
    }
}

fn print_verified(v: &gateway::bundle::VerifiedBundle, artifact: &ArtifactDigest) {
    println!("Verified OK: {artifact}");
    match &v.signer {
        VerifiedSigner::Certificate {
            identity, issuer, ..
        } => {
            println!("  signer identity:  {identity}");
            println!(
                "  OIDC issuer:      {}",
                issuer.as_deref().unwrap_or("(none)")
            );
        }
        VerifiedSigner::PublicKey { key_id } => println!("  signer key:       sha256:{key_id}"),
    }
    println!(
        "  log index:        {} ({}, {})",
        v.log_index, v.log_url, v.entry_kind
    );
    match v.integrated_time {
        Some(t) => println!("  integrated time:  {}", t.to_rfc3339()),
        None => println!("  integrated time:  (none)"),
    }
    for t in &v.timestamps {
        println!("  RFC 3161 time:    {}", t.to_rfc3339());
    }
    if let Some(p) = &v.predicate_type {
        println!("  predicate type:   {}", quoted(p));
    }
    match vsa_of(v) {
        Some(Ok(summary)) => print_vsa(&summary),
        Some(Err(e)) => println!("  verification summary unreadable: {}", quoted(&e)),
        None => {}
    }
}
