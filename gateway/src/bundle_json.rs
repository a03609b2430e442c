//! The JSON of the bundles airgate writes, serialized straight from typed
//! fields. Byte for byte what the protobuf JSON mapping of the same
//! protobuf-specs `Bundle` gives with default fields kept (the unit tests
//! compare both), without building a dynamic message per bundle: an import
//! writes two bundles per artifact. Pure: values in, bytes out.

use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};

/// A bundle as airgate writes it: v0.3, one log entry with SET, inclusion
/// proof and checkpoint, the leaf certificate, and one content.
#[derive(Debug, Clone, Copy)]
pub struct BundleFields<'a> {
    /// `mediaType`.
    pub media_type: &'a str,
    /// The log entry.
    pub entry: EntryFields<'a>,
    /// The leaf certificate (DER).
    pub certificate_der: &'a [u8],
    /// What was signed.
    pub content: ContentFields<'a>,
}

/// `verificationMaterial.tlogEntries[0]`.
#[derive(Debug, Clone, Copy)]
pub struct EntryFields<'a> {
    /// `logIndex` (also the inclusion proof's).
    pub log_index: i64,
    /// `logId.keyId`.
    pub log_id: &'a [u8],
    /// `kindVersion.kind`.
    pub kind: &'a str,
    /// `kindVersion.version`.
    pub version: &'a str,
    /// `integratedTime`.
    pub integrated_time: i64,
    /// `inclusionPromise.signedEntryTimestamp`.
    pub signed_entry_timestamp: &'a [u8],
    /// `inclusionProof.rootHash`.
    pub root_hash: &'a [u8],
    /// `inclusionProof.treeSize`.
    pub tree_size: i64,
    /// `inclusionProof.hashes`.
    pub hashes: &'a [[u8; 32]],
    /// `inclusionProof.checkpoint.envelope`.
    pub checkpoint: &'a str,
    /// `canonicalizedBody`.
    pub canonicalized_body: &'a [u8],
}

/// The bundle's content.
#[derive(Debug, Clone, Copy)]
pub enum ContentFields<'a> {
    /// `messageSignature` over a SHA-256 digest.
    Message {
        /// `messageDigest.digest`.
        digest: &'a [u8],
        /// `signature`.
        signature: &'a [u8],
    },
    /// `dsseEnvelope` with one signature (empty key id).
    Dsse {
        /// `payload`.
        payload: &'a [u8],
        /// `payloadType`.
        payload_type: &'a str,
        /// `signatures[0].sig`.
        signature: &'a [u8],
    },
}

/// Serializes the bundle as compact JSON.
pub fn to_json(bundle: &BundleFields<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 * 1024);
    // Writing into a Vec cannot fail, and every field serializes infallibly.
    let _ = bundle.serialize(&mut serde_json::Serializer::new(&mut out));
    // An import holds every bundle it signs until it commits: no slack.
    out.shrink_to_fit();
    out
}

/// Bytes as standard base64 with padding (the protobuf JSON mapping).
struct B64<'a>(&'a [u8]);

impl Serialize for B64<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::encoding::b64_encode(self.0))
    }
}

/// An int64 as a decimal string (the protobuf JSON mapping).
struct I64(i64);

impl Serialize for I64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// A one-field object `{name: value}`.
struct One<'a, T>(&'static str, &'a T);

impl<T: Serialize> Serialize for One<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.0, self.1)?;
        m.end()
    }
}

impl Serialize for BundleFields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut b = s.serialize_struct("Bundle", 3)?;
        b.serialize_field("mediaType", self.media_type)?;
        b.serialize_field(
            "verificationMaterial",
            &Material {
                entry: &self.entry,
                certificate_der: self.certificate_der,
            },
        )?;
        match &self.content {
            ContentFields::Message { digest, signature } => {
                b.serialize_field("messageSignature", &Message { digest, signature })?
            }
            ContentFields::Dsse {
                payload,
                payload_type,
                signature,
            } => b.serialize_field(
                "dsseEnvelope",
                &Envelope {
                    payload,
                    payload_type,
                    signature,
                },
            )?,
        }
        b.end()
    }
}

struct Material<'a> {
    entry: &'a EntryFields<'a>,
    certificate_der: &'a [u8],
}

impl Serialize for Material<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("VerificationMaterial", 2)?;
        m.serialize_field("tlogEntries", &[self.entry])?;
        m.serialize_field("certificate", &One("rawBytes", &B64(self.certificate_der)))?;
        m.end()
    }
}

impl Serialize for EntryFields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut e = s.serialize_struct("TransparencyLogEntry", 7)?;
        e.serialize_field("logIndex", &I64(self.log_index))?;
        e.serialize_field("logId", &One("keyId", &B64(self.log_id)))?;
        e.serialize_field("kindVersion", &KindVersion(self.kind, self.version))?;
        e.serialize_field("integratedTime", &I64(self.integrated_time))?;
        e.serialize_field(
            "inclusionPromise",
            &One("signedEntryTimestamp", &B64(self.signed_entry_timestamp)),
        )?;
        e.serialize_field("inclusionProof", &Proof(self))?;
        e.serialize_field("canonicalizedBody", &B64(self.canonicalized_body))?;
        e.end()
    }
}

struct KindVersion<'a>(&'a str, &'a str);

impl Serialize for KindVersion<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut k = s.serialize_struct("KindVersion", 2)?;
        k.serialize_field("kind", self.0)?;
        k.serialize_field("version", self.1)?;
        k.end()
    }
}

struct Proof<'a>(&'a EntryFields<'a>);

impl Serialize for Proof<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let hashes: Vec<B64<'_>> = e.hashes.iter().map(|h| B64(h)).collect();
        let mut p = s.serialize_struct("InclusionProof", 5)?;
        p.serialize_field("logIndex", &I64(e.log_index))?;
        p.serialize_field("rootHash", &B64(e.root_hash))?;
        p.serialize_field("treeSize", &I64(e.tree_size))?;
        p.serialize_field("hashes", &hashes)?;
        p.serialize_field("checkpoint", &One("envelope", &e.checkpoint))?;
        p.end()
    }
}

struct Message<'a> {
    digest: &'a [u8],
    signature: &'a [u8],
}

impl Serialize for Message<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("MessageSignature", 2)?;
        m.serialize_field("messageDigest", &Digest(self.digest))?;
        m.serialize_field("signature", &B64(self.signature))?;
        m.end()
    }
}

struct Digest<'a>(&'a [u8]);

impl Serialize for Digest<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut d = s.serialize_struct("HashOutput", 2)?;
        d.serialize_field("algorithm", "SHA2_256")?;
        d.serialize_field("digest", &B64(self.0))?;
        d.end()
    }
}

struct Envelope<'a> {
    payload: &'a [u8],
    payload_type: &'a str,
    signature: &'a [u8],
}

impl Serialize for Envelope<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut e = s.serialize_struct("Envelope", 3)?;
        e.serialize_field("payload", &B64(self.payload))?;
        e.serialize_field("payloadType", self.payload_type)?;
        e.serialize_field("signatures", &[Sig(self.signature)])?;
        e.end()
    }
}

struct Sig<'a>(&'a [u8]);

impl Serialize for Sig<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut g = s.serialize_struct("Signature", 2)?;
        g.serialize_field("sig", &B64(self.0))?;
        g.serialize_field("keyid", "")?;
        g.end()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use prost_reflect::{ReflectMessage, SerializeOptions};
    use sigstore_protobuf_specs::dev::sigstore::bundle::v1::{
        bundle, verification_material, Bundle, VerificationMaterial,
    };
    use sigstore_protobuf_specs::dev::sigstore::common::v1::{
        HashAlgorithm, HashOutput, LogId, MessageSignature, X509Certificate,
    };
    use sigstore_protobuf_specs::dev::sigstore::rekor::v1::{
        Checkpoint, InclusionPromise, InclusionProof, KindVersion, TransparencyLogEntry,
    };
    use sigstore_protobuf_specs::io::intoto::{Envelope, Signature};

    /// The same bundle as protobuf-specs types.
    fn proto(f: &BundleFields<'_>) -> Bundle {
        let e = &f.entry;
        Bundle {
            media_type: f.media_type.to_string(),
            verification_material: Some(VerificationMaterial {
                tlog_entries: vec![TransparencyLogEntry {
                    log_index: e.log_index,
                    log_id: Some(LogId {
                        key_id: e.log_id.to_vec(),
                    }),
                    kind_version: Some(KindVersion {
                        kind: e.kind.to_string(),
                        version: e.version.to_string(),
                    }),
                    integrated_time: e.integrated_time,
                    inclusion_promise: Some(InclusionPromise {
                        signed_entry_timestamp: e.signed_entry_timestamp.to_vec(),
                    }),
                    inclusion_proof: Some(InclusionProof {
                        log_index: e.log_index,
                        root_hash: e.root_hash.to_vec(),
                        tree_size: e.tree_size,
                        hashes: e.hashes.iter().map(|h| h.to_vec()).collect(),
                        checkpoint: Some(Checkpoint {
                            envelope: e.checkpoint.to_string(),
                        }),
                    }),
                    canonicalized_body: e.canonicalized_body.to_vec(),
                }],
                timestamp_verification_data: None,
                content: Some(verification_material::Content::Certificate(
                    X509Certificate {
                        raw_bytes: f.certificate_der.to_vec(),
                    },
                )),
            }),
            content: Some(match f.content {
                ContentFields::Message { digest, signature } => {
                    bundle::Content::MessageSignature(MessageSignature {
                        message_digest: Some(HashOutput {
                            algorithm: HashAlgorithm::Sha2256 as i32,
                            digest: digest.to_vec(),
                        }),
                        signature: signature.to_vec(),
                    })
                }
                ContentFields::Dsse {
                    payload,
                    payload_type,
                    signature,
                } => bundle::Content::DsseEnvelope(Envelope {
                    payload: payload.to_vec(),
                    payload_type: payload_type.to_string(),
                    signatures: vec![Signature {
                        sig: signature.to_vec(),
                        keyid: String::new(),
                    }],
                }),
            }),
        }
    }

    /// The protobuf JSON mapping of `proto(f)`, default fields kept.
    fn reflected(f: &BundleFields<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        let options = SerializeOptions::new().skip_default_fields(false);
        proto(f)
            .transcode_to_dynamic()
            .serialize_with_options(&mut serde_json::Serializer::new(&mut out), &options)
            .unwrap();
        out
    }

    fn fields<'a>(
        hashes: &'a [[u8; 32]],
        log_index: i64,
        note: &'a str,
        content: ContentFields<'a>,
    ) -> BundleFields<'a> {
        BundleFields {
            media_type: crate::bundle::MEDIA_TYPE_V0_3,
            entry: EntryFields {
                log_index,
                log_id: &[7u8; 32],
                kind: "hashedrekord",
                version: "0.0.1",
                integrated_time: 1_796_307_191,
                signed_entry_timestamp: b"\x30\x45set",
                root_hash: &[9u8; 32],
                tree_size: log_index + 1,
                hashes,
                checkpoint: note,
                canonicalized_body: br#"{"apiVersion":"0.0.1"}"#,
            },
            certificate_der: b"\x30\x82cert\xff\x00",
            content,
        }
    }

    #[test]
    fn message_bundles_are_the_protobuf_json_mapping_byte_for_byte() {
        let note = "tlog.example - 1\n2\nroot=\n\n\u{2014} tlog.example AAAA\n";
        let hashes = [[1u8; 32], [2u8; 32]];
        for (log_index, hashes) in [(0, &hashes[..0]), (1, &hashes[..1]), (41, &hashes[..])] {
            let f = fields(
                hashes,
                log_index,
                note,
                ContentFields::Message {
                    digest: &[3u8; 32],
                    signature: b"\x30\x44sig",
                },
            );
            assert_eq!(
                String::from_utf8(to_json(&f)).unwrap(),
                String::from_utf8(reflected(&f)).unwrap()
            );
        }
    }

    #[test]
    fn dsse_bundles_are_the_protobuf_json_mapping_byte_for_byte() {
        let hashes = [[5u8; 32]];
        let mut f = fields(
            &hashes,
            7,
            "origin \"quoted\" \\ tab\t\n",
            ContentFields::Dsse {
                payload: br#"{"_type":"https://in-toto.io/Statement/v1"}"#,
                payload_type: "application/vnd.in-toto+json",
                signature: b"\x30\x45dsse",
            },
        );
        f.entry.kind = "dsse";
        assert_eq!(to_json(&f), reflected(&f));
    }
}
