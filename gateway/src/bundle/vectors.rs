//! Negative vectors: each test breaks exactly one check of a real bundle and
//! asserts the typed failure it must produce. Named after the broken check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::*;
use crate::crypto::VerifyingKey;
use crate::encoding::{b64_decode, b64_encode};

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";
const A_TXT: &[u8] = include_bytes!("../../testdata/a.txt");
const V01: &[u8] = include_bytes!("../../testdata/happy-v0.1.sigstore.json");
const V03: &[u8] = include_bytes!("../../testdata/happy-v0.3.sigstore.json");
const DSSE: &[u8] = include_bytes!("../../testdata/happy-dsse-v0.3.sigstore.json");
const REKOR2: &[u8] = include_bytes!("../../testdata/rekor2-happy.sigstore.json");
const STAGING_ROOT: &[u8] = include_bytes!("../../testdata/staging-rekor2-trusted-root.json");
const MANAGED: &[u8] = include_bytes!("../../testdata/managed-key.sigstore.json");
const MANAGED_KEY: &str = include_str!("../../testdata/managed-key.pub");

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn prod() -> Verifier {
    Verifier::new(TrustedRoot::from_json(PRODUCTION_TRUSTED_ROOT).unwrap())
}

fn policy() -> SignerPolicy {
    SignerPolicy::identity(IdentityPolicy::exact(IDENTITY, ISSUER))
}

fn artifact() -> ArtifactDigest {
    ArtifactDigest::of_bytes(A_TXT)
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn verify_value(
    verifier: &Verifier,
    v: &Value,
    policy: &SignerPolicy,
) -> Result<VerifiedBundle, BundleRejection> {
    verifier.verify_bytes(v.to_string().as_bytes(), &artifact(), policy, now())
}

fn failure(result: Result<VerifiedBundle, BundleRejection>) -> VerificationFailure {
    match result {
        Err(BundleRejection::Failed { failure }) => failure,
        other => panic!("expected a verification failure, got {other:?}"),
    }
}

fn flip_b64(v: &mut Value, pointer: &str, byte: usize) {
    let slot = v.pointer_mut(pointer).unwrap();
    let mut raw = b64_decode(slot.as_str().unwrap()).unwrap();
    let i = byte.min(raw.len() - 1);
    raw[i] ^= 0x01;
    *slot = Value::String(b64_encode(&raw));
}

const ENTRY: &str = "/verificationMaterial/tlogEntries/0";

#[test]
fn happy_paths_verify() {
    let v = prod();
    for bundle in [V01, V03, DSSE] {
        let out = v
            .verify_bytes(bundle, &artifact(), &policy(), now())
            .unwrap();
        assert!(
            matches!(out.signer, VerifiedSigner::Certificate { ref identity, .. } if identity == IDENTITY)
        );
    }
    let staging = Verifier::new(TrustedRoot::from_json(STAGING_ROOT).unwrap());
    let out = staging
        .verify_bytes(REKOR2, &artifact(), &policy(), now())
        .unwrap();
    assert_eq!(out.timestamps.len(), 1);
    assert!(out.integrated_time.is_none());
}

/// A leaf that verified once is remembered (issuer signature and SCT), and
/// every other check still runs: the same leaf over another artifact, with
/// a broken SET, or with a broken message signature is still refused; a
/// changed leaf is a different leaf.
#[test]
fn remembered_leaf_skips_nothing_else() {
    let v = prod();
    v.verify_bytes(V01, &artifact(), &policy(), now()).unwrap();
    assert_eq!(v.verified_leaf_count(), 1);
    v.verify_bytes(V01, &artifact(), &policy(), now()).unwrap();
    assert_eq!(v.verified_leaf_count(), 1);
    let other = ArtifactDigest::of_bytes(b"another artifact");
    assert!(v.verify_bytes(V01, &other, &policy(), now()).is_err());
    let mut b = json(V01);
    flip_b64(
        &mut b,
        &format!("{ENTRY}/inclusionPromise/signedEntryTimestamp"),
        20,
    );
    assert_eq!(
        failure(verify_value(&v, &b, &policy())),
        VerificationFailure::SetInvalid
    );
    let mut b = json(V01);
    flip_b64(&mut b, "/messageSignature/signature", 30);
    assert!(verify_value(&v, &b, &policy()).is_err());
    let mut b = json(V01);
    flip_b64(
        &mut b,
        "/verificationMaterial/x509CertificateChain/certificates/0/rawBytes",
        400,
    );
    assert!(verify_value(&v, &b, &policy()).is_err());
    assert_eq!(v.verified_leaf_count(), 1);
    let uncached = Verifier::without_checkpoint_cache(
        TrustedRoot::from_json(PRODUCTION_TRUSTED_ROOT).unwrap(),
    );
    uncached
        .verify_bytes(V01, &artifact(), &policy(), now())
        .unwrap();
    assert_eq!(uncached.verified_leaf_count(), 0);
}

#[test]
fn set_invalid() {
    let mut b = json(V01);
    flip_b64(
        &mut b,
        &format!("{ENTRY}/inclusionPromise/signedEntryTimestamp"),
        20,
    );
    assert_eq!(
        failure(verify_value(&prod(), &b, &policy())),
        VerificationFailure::SetInvalid
    );
}

#[test]
fn set_over_changed_integrated_time_is_invalid() {
    let mut b = json(V01);
    let t = b
        .pointer(&format!("{ENTRY}/integratedTime"))
        .unwrap()
        .as_str()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    *b.pointer_mut(&format!("{ENTRY}/integratedTime")).unwrap() =
        Value::String((t + 1).to_string());
    assert_eq!(
        failure(verify_value(&prod(), &b, &policy())),
        VerificationFailure::SetInvalid
    );
}

#[test]
fn inclusion_proof_hash_corrupted() {
    let mut b = json(V03);
    flip_b64(&mut b, &format!("{ENTRY}/inclusionProof/hashes/3"), 7);
    assert!(matches!(
        failure(verify_value(&prod(), &b, &policy())),
        VerificationFailure::InclusionProofInvalid(crate::tlog::merkle::ProofError::RootMismatch)
    ));
}

#[test]
fn inclusion_proof_missing_hash() {
    let mut b = json(V03);
    b.pointer_mut(&format!("{ENTRY}/inclusionProof/hashes"))
        .unwrap()
        .as_array_mut()
        .unwrap()
        .pop();
    assert!(matches!(
        failure(verify_value(&prod(), &b, &policy())),
        VerificationFailure::InclusionProofInvalid(
            crate::tlog::merkle::ProofError::WrongLength { .. }
        )
    ));
}

#[test]
fn inclusion_proof_index_beyond_tree() {
    let mut b = json(V03);
    let size = b
        .pointer(&format!("{ENTRY}/inclusionProof/treeSize"))
        .unwrap()
        .clone();
    *b.pointer_mut(&format!("{ENTRY}/inclusionProof/logIndex"))
        .unwrap() = size;
    assert!(matches!(
        failure(verify_value(&prod(), &b, &policy())),
        VerificationFailure::InclusionProofInvalid(
            crate::tlog::merkle::ProofError::IndexOutOfRange { .. }
        )
    ));
}

fn resign_checkpoint(b: &mut Value, key_hint: Option<[u8; 4]>) {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    let pointer = format!("{ENTRY}/inclusionProof/checkpoint/envelope");
    let note =
        crate::tlog::checkpoint::SignedNote::parse(b.pointer(&pointer).unwrap().as_str().unwrap())
            .unwrap();
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let other = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    let sig = other.sign(&rng, note.text.as_bytes()).unwrap();
    let mut signatures = note.signatures.clone();
    signatures[0].signature = sig.as_ref().to_vec();
    if let Some(hint) = key_hint {
        signatures[0].key_hint = hint;
    }
    let resigned = crate::tlog::checkpoint::SignedNote {
        text: note.text,
        signatures,
    };
    *b.pointer_mut(&pointer).unwrap() = Value::String(resigned.to_text());
}

#[test]
fn checkpoint_signed_by_another_key() {
    let mut b = json(V03);
    resign_checkpoint(&mut b, None);
    assert_eq!(
        failure(verify_value(&prod(), &b, &policy())),
        VerificationFailure::CheckpointSignatureInvalid
    );
}

#[test]
fn checkpoint_key_hint_of_another_log() {
    let mut b = json(V03);
    resign_checkpoint(&mut b, Some([0xde, 0xad, 0xbe, 0xef]));
    assert!(matches!(
        failure(verify_value(&prod(), &b, &policy())),
        VerificationFailure::CheckpointNoMatchingSignature { .. }
    ));
}

#[test]
fn checkpoint_malformed() {
    let mut b = json(V03);
    *b.pointer_mut(&format!("{ENTRY}/inclusionProof/checkpoint/envelope"))
        .unwrap() = Value::String("not a signed note".into());
    assert!(matches!(
        failure(verify_value(&prod(), &b, &policy())),
        VerificationFailure::CheckpointMalformed(_)
    ));
}

fn root_with(mutate: impl FnOnce(&mut Value)) -> Verifier {
    let mut root = json(PRODUCTION_TRUSTED_ROOT);
    mutate(&mut root);
    Verifier::new(TrustedRoot::from_json(root.to_string().as_bytes()).unwrap())
}

fn fresh_p256_spki_b64() -> String {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
        .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    b64_encode(pair.public_key().as_der().unwrap().as_ref())
}

#[test]
fn sct_by_unknown_log() {
    let verifier = root_with(|root| {
        for log in root["ctlogs"].as_array_mut().unwrap() {
            let spki = fresh_p256_spki_b64();
            let id = b64_encode(&crate::crypto::sha256(&b64_decode(&spki).unwrap()));
            log["publicKey"]["rawBytes"] = Value::String(spki);
            log["logId"]["keyId"] = Value::String(id);
        }
    });
    assert!(matches!(
        failure(verifier.verify_bytes(V03, &artifact(), &policy(), now())),
        VerificationFailure::SctUnknownLog { .. }
    ));
}

#[test]
fn sct_signature_by_wrong_key() {
    // Same log ID, different key: the SCT signature cannot verify.
    let verifier = root_with(|root| {
        for log in root["ctlogs"].as_array_mut().unwrap() {
            log["publicKey"]["rawBytes"] = Value::String(fresh_p256_spki_b64());
        }
    });
    assert_eq!(
        failure(verifier.verify_bytes(V03, &artifact(), &policy(), now())),
        VerificationFailure::SctSignatureInvalid
    );
}

#[test]
fn sct_outside_ct_log_validity() {
    let verifier = root_with(|root| {
        for log in root["ctlogs"].as_array_mut().unwrap() {
            log["publicKey"]["validFor"] = serde_json::json!({"start": "2030-01-01T00:00:00Z"});
        }
    });
    assert!(matches!(
        failure(verifier.verify_bytes(V03, &artifact(), &policy(), now())),
        VerificationFailure::SctLogNotValidAt { .. }
    ));
}

#[test]
fn integrated_time_outside_tlog_key_validity() {
    let verifier = root_with(|root| {
        root["tlogs"][0]["publicKey"]["validFor"] =
            serde_json::json!({"start": "2021-01-12T11:53:27Z", "end": "2022-01-01T00:00:00Z"});
    });
    assert!(matches!(
        failure(verifier.verify_bytes(V03, &artifact(), &policy(), now())),
        VerificationFailure::TlogLogNotValidAt { .. }
    ));
}

#[test]
fn integrated_time_outside_ca_validity() {
    let verifier = root_with(|root| {
        for ca in root["certificateAuthorities"].as_array_mut().unwrap() {
            ca["validFor"] =
                serde_json::json!({"start": "2021-01-01T00:00:00Z", "end": "2022-01-01T00:00:00Z"});
        }
    });
    assert!(matches!(
        failure(verifier.verify_bytes(V03, &artifact(), &policy(), now())),
        VerificationFailure::CertificateAuthorityNotValidAt { .. }
    ));
}

#[test]
fn certificate_from_unknown_ca() {
    let verifier = root_with(|root| {
        root["certificateAuthorities"] = Value::Array(vec![]);
    });
    assert_eq!(
        failure(verifier.verify_bytes(V03, &artifact(), &policy(), now())),
        VerificationFailure::CertificateChainUntrusted
    );
}

#[test]
fn tlog_unknown_log() {
    let verifier = root_with(|root| {
        root["tlogs"] = Value::Array(vec![]);
    });
    assert!(matches!(
        failure(verifier.verify_bytes(V03, &artifact(), &policy(), now())),
        VerificationFailure::TlogUnknownLog { .. }
    ));
}

#[test]
fn verified_time_in_the_future() {
    let past = DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    assert!(matches!(
        failure(prod().verify_bytes(V03, &artifact(), &policy(), past)),
        VerificationFailure::TimeInFuture { .. }
    ));
}

#[test]
fn wrong_identity() {
    let p = SignerPolicy::identity(IdentityPolicy::exact(
        "https://github.com/evil/repo",
        ISSUER,
    ));
    let f = failure(prod().verify_bytes(V03, &artifact(), &p, now()));
    match f {
        VerificationFailure::IdentityMismatch { found, .. } => {
            assert_eq!(found, vec![IDENTITY.to_string()])
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_identity_regex() {
    let p = SignerPolicy::identity(IdentityPolicy {
        identity: Matcher::regex("^https://github.com/sigstore/").unwrap(),
        issuer: Matcher::Exact(ISSUER.into()),
    });
    assert!(matches!(
        failure(prod().verify_bytes(V03, &artifact(), &p, now())),
        VerificationFailure::IdentityMismatch { .. }
    ));
}

#[test]
fn wrong_issuer() {
    let p = SignerPolicy::identity(IdentityPolicy::exact(
        IDENTITY,
        "https://accounts.google.com",
    ));
    match failure(prod().verify_bytes(V03, &artifact(), &p, now())) {
        VerificationFailure::IssuerMismatch { found, .. } => {
            assert_eq!(found.as_deref(), Some(ISSUER))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn any_of_policy_accepts_the_second_alternative() {
    let p = SignerPolicy::AnyIdentity(vec![
        IdentityPolicy::exact("someone@example.com", "https://accounts.google.com"),
        IdentityPolicy::exact(IDENTITY, ISSUER),
    ]);
    assert!(prod().verify_bytes(V03, &artifact(), &p, now()).is_ok());
}

#[test]
fn artifact_signature_invalid() {
    let mut b = json(V03);
    flip_b64(&mut b, "/messageSignature/signature", 30);
    assert_eq!(
        failure(verify_value(&prod(), &b, &policy())),
        VerificationFailure::ArtifactSignatureInvalid
    );
}

#[test]
fn message_digest_hint_mismatch() {
    let mut b = json(V03);
    flip_b64(&mut b, "/messageSignature/messageDigest/digest", 0);
    assert_eq!(
        failure(verify_value(&prod(), &b, &policy())),
        VerificationFailure::MessageDigestMismatch
    );
}

#[test]
fn wrong_artifact() {
    let other = ArtifactDigest::of_bytes(b"not a.txt");
    let mut b = json(V03);
    b["messageSignature"]
        .as_object_mut()
        .unwrap()
        .remove("messageDigest");
    assert_eq!(
        failure(prod().verify_bytes(b.to_string().as_bytes(), &other, &policy(), now())),
        VerificationFailure::ArtifactSignatureInvalid
    );
}

#[test]
fn dsse_subject_mismatch() {
    let other = ArtifactDigest::of_bytes(b"something else");
    assert!(matches!(
        failure(prod().verify_bytes(DSSE, &other, &policy(), now())),
        VerificationFailure::DsseSubjectMismatch { .. }
    ));
}

#[test]
fn dsse_signature_invalid() {
    let mut b = json(DSSE);
    flip_b64(&mut b, "/dsseEnvelope/signatures/0/sig", 30);
    assert_eq!(
        failure(verify_value(&prod(), &b, &policy())),
        VerificationFailure::DsseSignatureInvalid
    );
}

#[test]
fn dsse_payload_changed() {
    let mut b = json(DSSE);
    flip_b64(&mut b, "/dsseEnvelope/payload", 40);
    assert_eq!(
        failure(verify_value(&prod(), &b, &policy())),
        VerificationFailure::DsseSignatureInvalid
    );
}

#[test]
fn tlog_kind_version_mismatch() {
    let mut b = json(V03);
    *b.pointer_mut(&format!("{ENTRY}/kindVersion/version"))
        .unwrap() = Value::String("0.0.2".into());
    assert!(matches!(
        failure(verify_value(&prod(), &b, &policy())),
        VerificationFailure::TlogKindMismatch { .. }
    ));
}

#[test]
fn no_verified_time_without_set_or_timestamp() {
    let mut b = json(V03);
    let entry = b.pointer_mut(ENTRY).unwrap().as_object_mut().unwrap();
    entry.remove("inclusionPromise");
    assert_eq!(
        failure(verify_value(&prod(), &b, &policy())),
        VerificationFailure::NoVerifiedTime
    );
}

#[test]
fn timestamp_does_not_cover_signature() {
    let staging = Verifier::new(TrustedRoot::from_json(STAGING_ROOT).unwrap());
    let mut b = json(REKOR2);
    // Replace the signature: the TSA imprint no longer matches (checked before the signature).
    flip_b64(&mut b, "/messageSignature/signature", 20);
    assert!(matches!(
        failure(verify_value(&staging, &b, &policy())),
        VerificationFailure::TimestampImprintMismatch(0)
    ));
}

#[test]
fn timestamp_corrupted_token() {
    let staging = Verifier::new(TrustedRoot::from_json(STAGING_ROOT).unwrap());
    let mut b = json(REKOR2);
    flip_b64(
        &mut b,
        "/verificationMaterial/timestampVerificationData/rfc3161Timestamps/0/signedTimestamp",
        usize::MAX, // the last byte: inside the TSA's signature
    );
    assert_eq!(
        failure(verify_value(&staging, &b, &policy())),
        VerificationFailure::TimestampSignatureInvalid(0)
    );
}

#[test]
fn timestamp_from_untrusted_tsa() {
    let mut root = json(STAGING_ROOT);
    root["timestampAuthorities"] = Value::Array(vec![]);
    let staging = Verifier::new(TrustedRoot::from_json(root.to_string().as_bytes()).unwrap());
    assert_eq!(
        failure(staging.verify_bytes(REKOR2, &artifact(), &policy(), now())),
        VerificationFailure::TimestampUntrusted(0)
    );
}

#[test]
fn managed_key_verifies_and_wrong_key_is_refused() {
    let key = VerifyingKey::from_pem(MANAGED_KEY).unwrap();
    let good = SignerPolicy::PublicKey(Box::new(key));
    let out = prod()
        .verify_bytes(MANAGED, &artifact(), &good, now())
        .unwrap();
    assert!(matches!(out.signer, VerifiedSigner::PublicKey { .. }));

    let other = VerifyingKey::from_spki_der(&b64_decode(&fresh_p256_spki_b64()).unwrap()).unwrap();
    let bad = SignerPolicy::PublicKey(Box::new(other));
    assert_eq!(
        failure(prod().verify_bytes(MANAGED, &artifact(), &bad, now())),
        VerificationFailure::KeyMismatch
    );
}

#[test]
fn managed_key_bundle_needs_a_key() {
    assert!(matches!(
        failure(prod().verify_bytes(MANAGED, &artifact(), &policy(), now())),
        VerificationFailure::PublicKeyRequired { .. }
    ));
}

#[test]
fn certificate_bundle_with_key_policy_is_refused() {
    let key = VerifyingKey::from_pem(MANAGED_KEY).unwrap();
    assert_eq!(
        failure(prod().verify_bytes(
            V03,
            &artifact(),
            &SignerPolicy::PublicKey(Box::new(key)),
            now()
        )),
        VerificationFailure::CertificateNotExpected
    );
}

#[test]
fn two_tlog_entries_are_refused() {
    let mut b = json(V03);
    let entry = b.pointer(ENTRY).unwrap().clone();
    b.pointer_mut("/verificationMaterial/tlogEntries")
        .unwrap()
        .as_array_mut()
        .unwrap()
        .push(entry);
    assert_eq!(
        failure(verify_value(&prod(), &b, &policy())),
        VerificationFailure::TlogEntryCount(2)
    );
}

#[test]
fn truncated_bundle_never_panics() {
    let v = prod();
    for cut in (0..V03.len()).step_by(7) {
        let r = v.verify_bytes(&V03[..cut], &artifact(), &policy(), now());
        assert!(matches!(r, Err(BundleRejection::Malformed(_))), "cut {cut}");
    }
}

#[test]
fn oversized_bundle() {
    let mut big = V03.to_vec();
    big.resize(BundleLimits::default().max_bundle_bytes + 1, b' ');
    assert!(matches!(
        prod().verify_bytes(&big, &artifact(), &policy(), now()),
        Err(BundleRejection::Malformed(
            BundleFormatError::TooLarge { .. }
        ))
    ));
}

#[test]
fn non_json_bundle() {
    assert!(matches!(
        prod().verify_bytes(b"\x00\x01binary", &artifact(), &policy(), now()),
        Err(BundleRejection::Malformed(BundleFormatError::Json(_)))
    ));
}

#[test]
fn byte_flips_anywhere_never_panic_nor_verify() {
    // Flip every 3rd byte of the bundle's JSON text; each variant must be rejected
    // (or, if the flip lands in insignificant whitespace/case, still verify) without panicking.
    let v = prod();
    let mut verified_variants = 0;
    for i in (0..V01.len()).step_by(3) {
        let mut b = V01.to_vec();
        b[i] ^= 0x20;
        if v.verify_bytes(&b, &artifact(), &policy(), now()).is_ok() {
            verified_variants += 1;
        }
    }
    // Only flips inside JSON whitespace or base64 padding-insensitive spots may still verify.
    assert!(
        verified_variants < 5,
        "{verified_variants} mutated bundles verified"
    );
}

// --- vectors built with airgate's own stack (full control over every field) ---

struct OwnStack {
    _dir: tempfile::TempDir,
    state: crate::state::StateDir,
    verifier: Verifier,
    policy: SignerPolicy,
}

fn own_stack() -> OwnStack {
    let dir = tempfile::tempdir().unwrap();
    private_ca::init_ceremony(
        dir.path(),
        private_ca::CaConfig::with_defaults("Vectors"),
        std::time::SystemTime::now() - std::time::Duration::from_secs(7200),
    )
    .unwrap();
    let state = crate::state::StateDir::open(dir.path()).unwrap();
    let root =
        TrustedRoot::from_json(&std::fs::read(dir.path().join("trusted_root.json")).unwrap())
            .unwrap();
    let policy = SignerPolicy::identity(IdentityPolicy::exact(
        state.ca().config().default_identity.clone(),
        state.ca().config().oidc_issuer.clone(),
    ));
    OwnStack {
        _dir: dir,
        state,
        verifier: Verifier::new(root),
        policy,
    }
}

fn own_bundle(
    stack: &mut OwnStack,
    digest: [u8; 32],
    signed_at: std::time::SystemTime,
    logged_at: std::time::SystemTime,
) -> Value {
    let leaf = stack
        .state
        .ca()
        .issue_leaf(
            &private_ca::LeafRequest {
                identity: private_ca::SigningIdentity::parse(
                    &stack.state.ca().config().default_identity,
                )
                .unwrap(),
                custody: None,
            },
            signed_at,
        )
        .unwrap();
    let signature = leaf.key.sign_sha256_digest(&digest).unwrap();
    let signed = stack
        .state
        .log_signatures(
            &[crate::signing::LeafSignature {
                certificate_der: leaf.certificate_der,
                signature,
                artifact_sha256: digest,
                attestations: Vec::new(),
            }],
            logged_at,
        )
        .unwrap();
    serde_json::from_slice(&signed.artifacts[0].bundle_json).unwrap()
}

#[test]
fn integrated_time_outside_certificate_validity() {
    let mut stack = own_stack();
    let now = std::time::SystemTime::now();
    // The leaf is valid for 10 minutes from an hour ago; the log integrated it now.
    let b = own_bundle(
        &mut stack,
        [7; 32],
        now - std::time::Duration::from_secs(3600),
        now,
    );
    let f = failure(stack.verifier.verify_bytes(
        b.to_string().as_bytes(),
        &ArtifactDigest([7; 32]),
        &stack.policy,
        Utc::now(),
    ));
    assert!(
        matches!(
            f,
            VerificationFailure::CertificateNotValidAt {
                time_source: TimeSource::IntegratedTime,
                ..
            }
        ),
        "{f:?}"
    );
}

#[test]
fn own_stack_bundle_verifies_as_a_control() {
    let mut stack = own_stack();
    let now = std::time::SystemTime::now();
    let b = own_bundle(&mut stack, [8; 32], now, now);
    stack
        .verifier
        .verify_bytes(
            b.to_string().as_bytes(),
            &ArtifactDigest([8; 32]),
            &stack.policy,
            Utc::now(),
        )
        .unwrap();
}

#[test]
fn tlog_body_records_another_signature() {
    // A second, equally valid ECDSA signature over the same digest by the same leaf:
    // the signature check passes, but the log recorded the first one.
    let mut stack = own_stack();
    let now = std::time::SystemTime::now();
    let digest = [9u8; 32];
    let leaf = stack
        .state
        .ca()
        .issue_leaf(
            &private_ca::LeafRequest {
                identity: private_ca::SigningIdentity::parse(
                    &stack.state.ca().config().default_identity,
                )
                .unwrap(),
                custody: None,
            },
            now,
        )
        .unwrap();
    let first = leaf.key.sign_sha256_digest(&digest).unwrap();
    let second = leaf.key.sign_sha256_digest(&digest).unwrap();
    assert_ne!(first, second);
    let signed = stack
        .state
        .log_signatures(
            &[crate::signing::LeafSignature {
                certificate_der: leaf.certificate_der,
                signature: first,
                artifact_sha256: digest,
                attestations: Vec::new(),
            }],
            now,
        )
        .unwrap();
    let mut b: Value = serde_json::from_slice(&signed.artifacts[0].bundle_json).unwrap();
    b["messageSignature"]["signature"] = Value::String(b64_encode(&second));
    assert_eq!(
        failure(stack.verifier.verify_bytes(
            b.to_string().as_bytes(),
            &ArtifactDigest(digest),
            &stack.policy,
            Utc::now()
        )),
        VerificationFailure::TlogBodyMismatch("signature")
    );
}

#[test]
fn tlog_body_for_another_artifact() {
    // The messageDigest hint and the signature are for artifact B, the log entry for A.
    let mut stack = own_stack();
    let now = std::time::SystemTime::now();
    let a = own_bundle(&mut stack, [1; 32], now, now);
    let b = own_bundle(&mut stack, [2; 32], now, now);
    let mut mixed = b.clone();
    mixed["verificationMaterial"]["tlogEntries"] = a["verificationMaterial"]["tlogEntries"].clone();
    mixed["verificationMaterial"]["certificate"] = a["verificationMaterial"]["certificate"].clone();
    mixed["messageSignature"] = a["messageSignature"].clone();
    mixed["messageSignature"]["messageDigest"]["digest"] = Value::String(b64_encode(&[2u8; 32]));
    let f = failure(stack.verifier.verify_bytes(
        mixed.to_string().as_bytes(),
        &ArtifactDigest([2; 32]),
        &stack.policy,
        Utc::now(),
    ));
    assert_eq!(f, VerificationFailure::ArtifactSignatureInvalid, "{f:?}");
    let mut body_only = b.clone();
    body_only["verificationMaterial"]["tlogEntries"] =
        a["verificationMaterial"]["tlogEntries"].clone();
    let f = failure(stack.verifier.verify_bytes(
        body_only.to_string().as_bytes(),
        &ArtifactDigest([2; 32]),
        &stack.policy,
        Utc::now(),
    ));
    assert_eq!(f.check(), "tlog.body", "{f:?}");
}
