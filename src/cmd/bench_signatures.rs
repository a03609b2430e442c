//! The signature verifications `Verifier::verify` makes for one bundle, made
//! again with the same trusted-root keys, the same signed bytes and the same
//! calls into `gateway::crypto` (aws-lc-rs), so `bench verify` can time them
//! apart from parsing and everything else. It follows
//! gateway/src/bundle/verify.rs step by step (SET, RFC 3161 timestamps, the
//! leaf's issuer, the SCT, the artifact or DSSE signature, the checkpoint,
//! failed attempts included) and must be kept in step with it; the verifier
//! itself carries no counter.

use std::borrow::Cow;

use gateway::bundle::rfc3161::{self, SignerIdentifier};
use gateway::bundle::{ArtifactDigest, ParsedBundle, SignedContent, SigningMaterial, TrustedRoot};
use gateway::crypto::{sha256, HashAlgorithm, KeyKind, SignatureScheme, VerifyingKey};
use gateway::private_ca::precert_signed_data;
use gateway::tlog::checkpoint::SignedNote;
use gateway::tlog::entry::set_payload;
use gateway::x509::Certificate;

type Op<'a> = Box<dyn Fn() -> bool + Send + Sync + 'a>;

/// One signature verification of a bundle.
pub(super) struct Check<'a> {
    /// What is verified and with which algorithm.
    pub(super) kind: String,
    op: Op<'a>,
    /// The result when the inventory was taken (a failed attempt stays failed).
    expected: bool,
}

impl Check<'_> {
    /// Verifies the signature again; true when the result is the one first seen.
    pub(super) fn run(&self) -> bool {
        (self.op)() == self.expected
    }
}

fn hash_name(h: HashAlgorithm) -> &'static str {
    match h {
        HashAlgorithm::Sha256 => "SHA-256",
        HashAlgorithm::Sha384 => "SHA-384",
        HashAlgorithm::Sha512 => "SHA-512",
    }
}

fn algorithm(key: &VerifyingKey, scheme: Option<SignatureScheme>) -> String {
    match scheme {
        Some(SignatureScheme::Ecdsa(h)) => format!("{} {}", key.kind().name(), hash_name(h)),
        Some(SignatureScheme::Ed25519) => "Ed25519".into(),
        Some(SignatureScheme::RsaPkcs1(h)) => format!("RSA PKCS#1 {}", hash_name(h)),
        Some(SignatureScheme::RsaPss(h)) => format!("RSA-PSS {}", hash_name(h)),
        None => format!("{}, unsupported scheme", key.kind().name()),
    }
}

#[derive(Default)]
struct Inventory<'a> {
    checks: Vec<Check<'a>>,
}

impl<'a> Inventory<'a> {
    /// Runs `op` once, records it, and returns its result.
    fn push(&mut self, what: &str, algorithm: String, op: Op<'a>) -> bool {
        let expected = op();
        self.checks.push(Check {
            kind: format!("{what}, {algorithm}"),
            op,
            expected,
        });
        expected
    }

    fn set(&mut self, bundle: &'a ParsedBundle, root: &'a TrustedRoot) {
        let Some(entry) = bundle.tlog_entries.first() else {
            return;
        };
        let (Some(tlog), Some(set), Some(time)) = (
            root.tlog(&entry.log_id),
            &entry.inclusion_promise,
            entry.integrated_time,
        ) else {
            return;
        };
        let payload = set_payload(
            &entry.canonicalized_body,
            time,
            &entry.log_id,
            entry.log_index,
        );
        self.push(
            "SET (log's inclusion promise)",
            algorithm(&tlog.key, Some(tlog.scheme)),
            Box::new(move || tlog.key.verify(tlog.scheme, &payload, set)),
        );
    }

    fn timestamps(&mut self, bundle: &'a ParsedBundle, root: &'a TrustedRoot) {
        for raw in &bundle.timestamps {
            let Ok(token) = rfc3161::parse(raw) else {
                continue;
            };
            let matches_signer = |cert: &Certificate| match &token.signer {
                SignerIdentifier::IssuerAndSerial { issuer, serial } => {
                    cert.issuer_raw() == issuer.as_slice() && cert.serial() == serial.as_slice()
                }
                SignerIdentifier::SubjectKeyId(id) => cert.subject_key_id() == Some(id.as_slice()),
            };
            for tsa in &root.timestamp_authorities {
                let (signer, path_valid): (Cow<'a, Certificate>, bool) = if let Some(pos) =
                    tsa.chain.iter().position(matches_signer)
                {
                    let path = &tsa.chain[pos..];
                    (
                        Cow::Borrowed(&tsa.chain[pos]),
                        path.iter().all(|c| c.valid_at(token.gen_time)),
                    )
                } else if let Some(embedded) = token.certificates.iter().find(|c| matches_signer(c))
                {
                    let mut issuer_at = None;
                    for (pos, ca) in tsa.chain.iter().enumerate() {
                        if ca.subject_raw() != embedded.issuer_raw() || !ca.is_ca() {
                            continue;
                        }
                        let cert = embedded.clone();
                        if self.push(
                            "TSA certificate by its CA",
                            algorithm(ca.public_key(), embedded.signature_scheme()),
                            Box::new(move || cert.is_signed_by(ca)),
                        ) {
                            issuer_at = Some(pos);
                            break;
                        }
                    }
                    let Some(pos) = issuer_at else {
                        continue;
                    };
                    let valid = embedded.valid_at(token.gen_time)
                        && tsa.chain[pos..].iter().all(|c| c.valid_at(token.gen_time));
                    (Cow::Owned(embedded.clone()), valid)
                } else {
                    continue;
                };
                let scheme = token.signature_scheme;
                let usable = signer.eku_time_stamping()
                    && path_valid
                    && tsa.valid_for.contains(token.gen_time);
                let what = algorithm(signer.public_key(), Some(scheme));
                let (attributes, signature) =
                    (token.signed_attributes.clone(), token.signature.clone());
                let verified = self.push(
                    "RFC 3161 timestamp",
                    what,
                    Box::new(move || signer.public_key().verify(scheme, &attributes, &signature)),
                );
                if verified && usable {
                    break;
                }
            }
        }
    }

    /// The leaf's issuer among the trusted CAs, then its one embedded SCT.
    fn certificate(&mut self, leaf: &'a Certificate, root: &'a TrustedRoot) {
        let mut issuers: Vec<&'a Certificate> = Vec::new();
        for ca in &root.certificate_authorities {
            for cert in &ca.chain {
                if cert.subject_raw() != leaf.issuer_raw() {
                    continue;
                }
                let already = issuers.iter().any(|c| c.der() == cert.der());
                if already
                    || self.push(
                        "leaf certificate by its CA",
                        algorithm(cert.public_key(), leaf.signature_scheme()),
                        Box::new(move || leaf.is_signed_by(cert)),
                    )
                {
                    if !already {
                        issuers.push(cert);
                    }
                    break;
                }
            }
        }
        let Some(Ok(scts)) = leaf.embedded_scts() else {
            return;
        };
        let (Some(sct), Ok(tbs)) = (scts.into_iter().next(), leaf.precert_tbs()) else {
            return;
        };
        let (Some(ctlog), Some(scheme)) = (root.ctlog(&sct.log_id), sct.scheme) else {
            return;
        };
        // The verifier signs over the issuer it chose by validity; the one the
        // SCT verifies with is that issuer (trial runs here are not timed).
        let signed_over = |issuer: &Certificate| {
            precert_signed_data(
                sct.timestamp_ms,
                &sha256(issuer.public_key().spki_der()),
                &tbs,
                &sct.extensions,
            )
            .ok()
        };
        let signed = issuers
            .iter()
            .filter_map(|i| signed_over(i))
            .find(|s| ctlog.key.verify(scheme, s, &sct.signature))
            .or_else(|| issuers.first().and_then(|i| signed_over(i)));
        let Some(signed) = signed else {
            return;
        };
        let signature = sct.signature;
        self.push(
            "SCT (CT log)",
            algorithm(&ctlog.key, Some(scheme)),
            Box::new(move || ctlog.key.verify(scheme, &signed, &signature)),
        );
    }

    fn content(&mut self, bundle: &'a ParsedBundle, key: &'a VerifyingKey, artifact: [u8; 32]) {
        match &bundle.content {
            SignedContent::MessageSignature { signature, .. } => {
                let scheme = match key.kind() {
                    KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::EcdsaP521 => {
                        SignatureScheme::Ecdsa(HashAlgorithm::Sha256)
                    }
                    KeyKind::Rsa => SignatureScheme::RsaPkcs1(HashAlgorithm::Sha256),
                    KeyKind::Ed25519 => return,
                };
                self.push(
                    "artifact signature (prehashed)",
                    algorithm(key, Some(scheme)),
                    Box::new(move || {
                        key.verify_prehashed(scheme, &artifact, signature)
                            || (key.kind() == KeyKind::Rsa
                                && key.verify_prehashed(
                                    SignatureScheme::RsaPss(HashAlgorithm::Sha256),
                                    &artifact,
                                    signature,
                                ))
                    }),
                );
            }
            SignedContent::Dsse(envelope) => {
                let Some(first) = envelope.signatures.first() else {
                    return;
                };
                let pae = envelope.pae();
                self.push(
                    "DSSE envelope signature",
                    algorithm(key, Some(SignatureScheme::default_for(key.kind()))),
                    Box::new(move || key.verify_default(&pae, &first.sig)),
                );
            }
        }
    }

    fn checkpoint(&mut self, bundle: &'a ParsedBundle, root: &'a TrustedRoot) {
        let Some(entry) = bundle.tlog_entries.first() else {
            return;
        };
        let Some(tlog) = root.tlog(&entry.log_id) else {
            return;
        };
        let Some(text) = entry
            .inclusion_proof
            .as_ref()
            .and_then(|p| p.checkpoint.as_ref())
        else {
            return;
        };
        let Ok(note) = SignedNote::parse(text) else {
            return;
        };
        let name = tlog.checkpoint_name();
        let mut hint = [0u8; 4];
        if let Some(prefix) = entry.log_id.get(..4) {
            hint.copy_from_slice(prefix);
        }
        let scheme = SignatureScheme::default_for(tlog.key.kind());
        for sig in note.signatures {
            if sig.name != name || sig.key_hint != hint {
                continue;
            }
            let text = note.text.clone();
            if self.push(
                "checkpoint (signed note)",
                algorithm(&tlog.key, Some(scheme)),
                Box::new(move || tlog.key.verify_default(text.as_bytes(), &sig.signature)),
            ) {
                break;
            }
        }
    }
}

/// Every signature verification `Verifier::verify` makes for `bundle`.
pub(super) fn inventory<'a>(
    bundle: &'a ParsedBundle,
    root: &'a TrustedRoot,
    artifact: &ArtifactDigest,
) -> Vec<Check<'a>> {
    let mut inv = Inventory::default();
    inv.set(bundle, root);
    inv.timestamps(bundle, root);
    if let SigningMaterial::Certificate(leaf) = &bundle.material {
        inv.certificate(leaf, root);
        inv.content(bundle, leaf.public_key(), artifact.0);
    }
    inv.checkpoint(bundle, root);
    inv.checks
}
