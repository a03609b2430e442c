//! Signing with the private stack: a short-lived leaf per session and signer, a log entry per
//! signature, and a standard v0.3 Sigstore bundle (protobuf-specs JSON with
//! default fields kept, as clients require; see [`crate::bundle_json`]).

use std::time::SystemTime;

use rusqlite::Transaction;

use private_ca::{Custody, IssuedLeaf, LeafRequest, PrivateCa, SigningIdentity};

use crate::bundle::MEDIA_TYPE_V0_3;
use crate::bundle_json::{self, BundleFields, ContentFields, EntryFields};
use crate::tlog::entry::{dsse_body, hashedrekord_body, EntryKind};
use crate::tlog::{AppendedBatch, Log, LogError, NewEntry};

/// One artifact to sign.
#[derive(Debug, Clone)]
pub struct SigningRequest {
    /// The artifact's SHA-256.
    pub artifact_sha256: [u8; 32],
    /// The identity the leaf names.
    pub identity: SigningIdentity,
    /// Upstream custody, for re-signed imports.
    pub custody: Option<Custody>,
    /// In-toto statements about the artifact to sign too, with the same
    /// leaf, each as a DSSE envelope logged as a `dsse` entry (on import: the
    /// VSA, and for conda packages the CEP 27 publish attestation).
    pub attestations: Vec<Vec<u8>>,
}

/// A signed artifact.
#[derive(Debug, Clone)]
pub struct SignedArtifact {
    /// The v0.3 bundle JSON.
    pub bundle_json: Vec<u8>,
    /// The log index of its entry.
    pub log_index: u64,
    /// The leaf certificate (DER).
    pub certificate_der: Vec<u8>,
    /// The DSSE attestation bundles, one per requested statement, in order.
    pub attestations: Vec<SignedAttestation>,
}

/// A signed and logged DSSE attestation.
#[derive(Debug, Clone)]
pub struct SignedAttestation {
    /// The v0.3 bundle JSON (a `dsseEnvelope` bundle).
    pub bundle_json: Vec<u8>,
    /// The log index of its `dsse` entry.
    pub log_index: u64,
}

/// A DSSE signature over an in-toto statement, ready to be logged.
#[derive(Debug, Clone)]
pub struct DsseSigned {
    /// The statement (the envelope's payload).
    pub statement: Vec<u8>,
    /// The signature over its PAE.
    pub signature: Vec<u8>,
}

impl DsseSigned {
    /// The envelope as protobuf-specs JSON (what the `dsse` entry's
    /// `envelopeHash` covers).
    fn envelope_json(&self) -> Vec<u8> {
        use crate::encoding::b64_encode;
        serde_json::to_vec(&serde_json::json!({
            "payload": b64_encode(&self.statement),
            "payloadType": crate::attest::INTOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": b64_encode(&self.signature)}],
        }))
        .unwrap_or_default()
    }
}

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The CA could not issue or sign.
    #[error("private CA: {0}")]
    Ca(#[from] private_ca::Error),
    /// The log append failed.
    #[error("transparency log: {0}")]
    Log(#[from] LogError),
    /// The bundle could not be serialized.
    #[error("bundle serialization: {0}")]
    Serialize(String),
}

/// A signature made by a leaf, ready to be logged.
#[derive(Debug, Clone)]
pub struct LeafSignature {
    /// The leaf certificate (DER).
    pub certificate_der: Vec<u8>,
    /// The signature over the artifact digest.
    pub signature: Vec<u8>,
    /// The artifact's SHA-256.
    pub artifact_sha256: [u8; 32],
    /// The attestations signed with the same leaf, in request order.
    pub attestations: Vec<DsseSigned>,
}

/// Issues one short-lived leaf per signing session and signer (the identity
/// plus, for imports, the verified upstream signer) and signs every artifact
/// digest and attestation with its group's leaf, on all cores (no log yet).
/// A leaf that covers exactly one artifact names its upstream log index in
/// the custody extension; a shared one leaves it to each artifact's VSA.
pub fn sign_with_session_leaves(
    ca: &PrivateCa,
    requests: &[SigningRequest],
    now: SystemTime,
) -> Result<Vec<LeafSignature>, SigningError> {
    use rayon::prelude::*;
    let (groups, group_of) = session_groups(requests);
    let leaves = groups
        .par_iter()
        .map(|request| ca.issue_leaf(request, now))
        .collect::<Result<Vec<_>, _>>()?;
    requests
        .par_iter()
        .zip(group_of.par_iter())
        .map(|(request, &g)| sign_one(&leaves[g], request))
        .collect()
}

/// The leaf requests of a session (one per identity and upstream signer) and
/// each request's group.
fn session_groups(requests: &[SigningRequest]) -> (Vec<LeafRequest>, Vec<usize>) {
    let mut index: std::collections::HashMap<SessionKey<'_>, usize> =
        std::collections::HashMap::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut group_of = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let g = *index.entry(session_key(r)).or_insert_with(|| {
            members.push(Vec::new());
            members.len() - 1
        });
        members[g].push(i);
        group_of.push(g);
    }
    let groups = members
        .iter()
        .map(|m| {
            let first = &requests[m[0]];
            let custody = first.custody.clone().map(|mut c| {
                if m.len() > 1 {
                    c.upstream_log_index = None;
                }
                c
            });
            LeafRequest {
                identity: first.identity.clone(),
                custody,
            }
        })
        .collect();
    (groups, group_of)
}

/// What one session leaf is shared by: the identity and the upstream signer.
type SessionKey<'a> = (&'a str, Option<(&'a str, &'a str)>);

fn session_key(r: &SigningRequest) -> SessionKey<'_> {
    let upstream = r
        .custody
        .as_ref()
        .map(|c| (c.upstream_identity.as_str(), c.upstream_issuer.as_str()));
    (r.identity.as_str(), upstream)
}

/// Signs one artifact digest and its attestations with a session leaf.
fn sign_one(leaf: &IssuedLeaf, request: &SigningRequest) -> Result<LeafSignature, SigningError> {
    let signature = leaf.key.sign_sha256_digest(&request.artifact_sha256)?;
    let attestations = request
        .attestations
        .iter()
        .map(|statement| {
            let pae = crate::bundle::pae(crate::attest::INTOTO_PAYLOAD_TYPE, statement);
            let signature = leaf.key.sign_sha256_digest(&crate::crypto::sha256(&pae))?;
            Ok(DsseSigned {
                statement: statement.clone(),
                signature,
            })
        })
        .collect::<Result<Vec<_>, SigningError>>()?;
    Ok(LeafSignature {
        certificate_der: leaf.certificate_der.clone(),
        signature,
        artifact_sha256: request.artifact_sha256,
        attestations,
    })
}

/// Signed artifacts and the checkpoint their batch was logged under.
#[derive(Debug, Clone)]
pub struct SignedBatch {
    /// One per request, in order.
    pub artifacts: Vec<SignedArtifact>,
    /// The signed checkpoint over the tree including them.
    pub checkpoint: crate::tlog::StoredCheckpoint,
}

/// Appends the signatures to the log as one batch inside `tx` and builds their
/// bundles, each with an inclusion proof against the batch's checkpoint. An
/// artifact's attestations, if any, are the entries right after its signature.
/// The log entries of one signature: its hashedrekord, then one dsse entry
/// per attestation.
fn entries_of(s: &LeafSignature) -> Vec<(NewEntry, Option<&DsseSigned>)> {
    let mut out = Vec::with_capacity(1 + s.attestations.len());
    out.push((
        NewEntry {
            kind: EntryKind::HashedRekord,
            body: hashedrekord_body(&s.artifact_sha256, &s.signature, &s.certificate_der),
            artifact_sha256: s.artifact_sha256,
        },
        None,
    ));
    for d in &s.attestations {
        let body = dsse_body(
            &d.envelope_json(),
            &d.statement,
            &d.signature,
            &s.certificate_der,
        );
        out.push((
            NewEntry {
                kind: EntryKind::Dsse,
                body,
                artifact_sha256: s.artifact_sha256,
            },
            Some(d),
        ));
    }
    out
}

pub fn log_and_bundle(
    log: &Log,
    tx: &Transaction<'_>,
    signatures: &[LeafSignature],
    now: SystemTime,
) -> Result<SignedBatch, SigningError> {
    use rayon::prelude::*;
    // Entry bodies (canonical JSON) are built on all cores, kept in order.
    let per_signature: Vec<Vec<(NewEntry, Option<&DsseSigned>)>> =
        signatures.par_iter().map(entries_of).collect();
    let mut entries = Vec::with_capacity(signatures.len() * 2);
    let mut jobs = Vec::with_capacity(signatures.len() * 2);
    for (i, list) in per_signature.into_iter().enumerate() {
        for (entry, dsse) in list {
            entries.push(entry);
            jobs.push((i, dsse));
        }
    }
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let batch = log.append_batch(tx, &entries, now_secs)?;
    // Proofs come with the batch; bundles serialize on all cores.
    let built = jobs
        .par_iter()
        .zip(batch.entries.par_iter())
        .zip(entries.par_iter())
        .map(|((&(i, dsse), entry), new)| {
            let s = &signatures[i];
            let content = match dsse {
                None => Content::Message {
                    signature: &s.signature,
                    artifact_sha256: &s.artifact_sha256,
                },
                Some(d) => Content::Dsse(d),
            };
            let json = bundle_json(log, &batch, entry, &new.body, &s.certificate_der, content)?;
            Ok((json, entry.index))
        })
        .collect::<Result<Vec<_>, SigningError>>()?;
    let mut artifacts: Vec<SignedArtifact> = Vec::with_capacity(signatures.len());
    for (&(i, dsse), (bundle_json, log_index)) in jobs.iter().zip(built) {
        match dsse {
            None => artifacts.push(SignedArtifact {
                bundle_json,
                log_index,
                certificate_der: signatures[i].certificate_der.clone(),
                attestations: Vec::new(),
            }),
            Some(_) => {
                if let Some(last) = artifacts.last_mut() {
                    last.attestations.push(SignedAttestation {
                        bundle_json,
                        log_index,
                    });
                }
            }
        }
    }
    Ok(SignedBatch {
        artifacts,
        checkpoint: batch.checkpoint,
    })
}

/// What a bundle carries: a message signature or a DSSE envelope.
enum Content<'a> {
    Message {
        signature: &'a [u8],
        artifact_sha256: &'a [u8; 32],
    },
    Dsse(&'a DsseSigned),
}

/// Signs every request with its session leaf, appends them to the log as one batch
/// inside `tx`, and returns their bundles.
pub fn sign_batch(
    ca: &PrivateCa,
    log: &Log,
    tx: &Transaction<'_>,
    requests: &[SigningRequest],
    now: SystemTime,
) -> Result<SignedBatch, SigningError> {
    let signatures = sign_with_session_leaves(ca, requests, now)?;
    log_and_bundle(log, tx, &signatures, now)
}

fn bundle_json(
    log: &Log,
    batch: &AppendedBatch,
    entry: &crate::tlog::AppendedEntry,
    body: &[u8],
    certificate_der: &[u8],
    content: Content<'_>,
) -> Result<Vec<u8>, SigningError> {
    let log_index = i64::try_from(entry.index)
        .map_err(|_| SigningError::Serialize("log index overflow".into()))?;
    let tree_size = i64::try_from(batch.checkpoint.size)
        .map_err(|_| SigningError::Serialize("tree size overflow".into()))?;
    let kind = match content {
        Content::Message { .. } => EntryKind::HashedRekord,
        Content::Dsse(_) => EntryKind::Dsse,
    };
    let log_id = log.log_id();
    Ok(bundle_json::to_json(&BundleFields {
        media_type: MEDIA_TYPE_V0_3,
        entry: EntryFields {
            log_index,
            log_id: &log_id,
            kind: kind.kind(),
            version: kind.version(),
            integrated_time: entry.integrated_time,
            signed_entry_timestamp: &entry.signed_entry_timestamp,
            root_hash: &batch.checkpoint.root_hash,
            tree_size,
            hashes: &entry.inclusion_proof,
            checkpoint: &batch.checkpoint.note,
            canonicalized_body: body,
        },
        certificate_der,
        content: match content {
            Content::Message {
                signature,
                artifact_sha256,
            } => ContentFields::Message {
                digest: artifact_sha256,
                signature,
            },
            Content::Dsse(d) => ContentFields::Dsse {
                payload: &d.statement,
                payload_type: crate::attest::INTOTO_PAYLOAD_TYPE,
                signature: &d.signature,
            },
        },
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::bundle::{ArtifactDigest, IdentityPolicy, SignerPolicy, TrustedRoot, Verifier};
    use crate::tlog::open_database;
    use private_ca::{init_ceremony, CaConfig, Curve, SigningKey};

    #[test]
    fn signed_bundles_verify_from_the_first_entry_on() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        init_ceremony(dir.path(), CaConfig::with_defaults("Test"), now).unwrap();
        let ca = PrivateCa::load(dir.path()).unwrap();
        let log_key =
            SigningKey::load(&dir.path().join("tlog.key.pem"), Curve::P256, "tlog").unwrap();
        let log = Log::new(log_key, &ca.config().tlog_url);
        let mut conn = open_database(&dir.path().join("state.db")).unwrap();
        log.initialize(&conn).unwrap();
        let root =
            TrustedRoot::from_json(&std::fs::read(dir.path().join("trusted_root.json")).unwrap())
                .unwrap();
        let verifier = Verifier::new(root);
        let identity = SigningIdentity::parse(&ca.config().default_identity).unwrap();
        let policy = SignerPolicy::identity(IdentityPolicy::exact(
            ca.config().default_identity.clone(),
            ca.config().oidc_issuer.clone(),
        ));
        let later = chrono::Utc::now() + chrono::Duration::seconds(5);
        for batch_size in [1usize, 3, 10] {
            let requests: Vec<SigningRequest> = (0..batch_size)
                .map(|i| SigningRequest {
                    artifact_sha256: crate::crypto::sha256(
                        format!("artifact {batch_size} {i}").as_bytes(),
                    ),
                    identity: identity.clone(),
                    custody: None,
                    attestations: Vec::new(),
                })
                .collect();
            let tx = conn.transaction().unwrap();
            let signed = sign_batch(&ca, &log, &tx, &requests, now).unwrap();
            tx.commit().unwrap();
            for (req, s) in requests.iter().zip(&signed.artifacts) {
                let json: serde_json::Value = serde_json::from_slice(&s.bundle_json).unwrap();
                let entry = &json["verificationMaterial"]["tlogEntries"][0];
                assert!(entry["logIndex"].is_string(), "{entry}");
                assert!(entry["inclusionProof"]["hashes"].is_array());
                let out = verifier
                    .verify_bytes(
                        &s.bundle_json,
                        &ArtifactDigest(req.artifact_sha256),
                        &policy,
                        later,
                    )
                    .unwrap_or_else(|e| panic!("entry {}: {e}", s.log_index));
                assert_eq!(out.log_index, s.log_index);
            }
        }
    }
}
