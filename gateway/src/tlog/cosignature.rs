//! Witness cosignatures on checkpoints (C2SP tlog-cosignature, Ed25519
//! `cosignature/v1`). Pure: parse a witness's verifier key, check a
//! cosignature line against the exact checkpoint text airgate signed.
//!
//! A cosignature signs `cosignature/v1\ntime <T>\n<checkpoint text>`; its
//! note signature is `key hint (4) || timestamp T (8, big-endian) ||
//! Ed25519 signature (64)`, the key hint being the first four bytes of
//! SHA-256(name || "\n" || 0x04 || public key).

use crate::crypto::VerifyingKey;
use crate::encoding::b64_decode_strict;
use crate::tlog::checkpoint::NoteSignature;

/// The signature type byte of `cosignature/v1` keys.
pub const COSIGNATURE_V1: u8 = 0x04;
/// The DER prefix of an Ed25519 SubjectPublicKeyInfo.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A witness's verifier key, from `NAME+HASH+BASE64(0x04 || pubkey)`.
#[derive(Debug, Clone)]
pub struct WitnessKey {
    /// The witness's name (as in its note signature lines).
    pub name: String,
    /// The key hint.
    pub key_hint: [u8; 4],
    /// The Ed25519 public key.
    pub key: VerifyingKey,
    /// The verifier key text, as given.
    pub vkey: String,
}

/// The key hint of a `cosignature/v1` key.
pub fn key_hint(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut input = name.as_bytes().to_vec();
    input.push(b'\n');
    input.push(COSIGNATURE_V1);
    input.extend_from_slice(public);
    let h = crate::crypto::sha256(&input);
    [h[0], h[1], h[2], h[3]]
}

/// Parses a witness verifier key; the error says which part is wrong.
pub fn parse_vkey(text: &str) -> Result<WitnessKey, String> {
    let text = text.trim();
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("a witness key is NAME+HASH+BASE64KEY".into());
    };
    if name.is_empty()
        || name.len() > 256
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err("the witness name must be 1-256 characters, no spaces or '+'".into());
    }
    let raw = b64_decode_strict(key).ok_or("the key is not base64")?;
    let [kind, public @ ..] = raw.as_slice() else {
        return Err("the key is empty".into());
    };
    if *kind != COSIGNATURE_V1 {
        return Err(format!(
            "key type 0x{kind:02x} is not cosignature/v1 (0x04)"
        ));
    }
    let public: [u8; 32] = public
        .try_into()
        .map_err(|_| "an Ed25519 key is 32 bytes".to_string())?;
    let hint = key_hint(name, &public);
    if hash.len() != 8 || hex::decode(hash).ok().as_deref() != Some(&hint[..]) {
        return Err(format!(
            "the key hash {hash:.16} does not match the name and key (want {})",
            hex::encode(hint)
        ));
    }
    let mut spki = ED25519_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(&public);
    let key = VerifyingKey::from_spki_der(&spki).map_err(|e| e.to_string())?;
    Ok(WitnessKey {
        name: name.to_string(),
        key_hint: hint,
        key,
        vkey: text.to_string(),
    })
}

/// The message a witness signs for `checkpoint_text` at `time`.
pub fn signed_message(checkpoint_text: &str, time: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{checkpoint_text}").into_bytes()
}

/// Verifies one note signature as `witness`'s cosignature of
/// `checkpoint_text`; returns the cosigning time.
pub fn verify(
    witness: &WitnessKey,
    sig: &NoteSignature,
    checkpoint_text: &str,
) -> Result<u64, String> {
    if sig.name != witness.name || sig.key_hint != witness.key_hint {
        return Err("not this witness's key".into());
    }
    let [t0, t1, t2, t3, t4, t5, t6, t7, rest @ ..] = sig.signature.as_slice() else {
        return Err("a cosignature is 8 bytes of time and a 64-byte signature".into());
    };
    if rest.len() != 64 {
        return Err("a cosignature is 8 bytes of time and a 64-byte signature".into());
    }
    let time = u64::from_be_bytes([*t0, *t1, *t2, *t3, *t4, *t5, *t6, *t7]);
    let message = signed_message(checkpoint_text, time);
    if witness
        .key
        .verify(crate::crypto::SignatureScheme::Ed25519, &message, rest)
    {
        Ok(time)
    } else {
        Err("the cosignature does not verify with the witness key".into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::encoding::b64_encode;

    fn witness() -> (private_ca::Ed25519SigningKey, String) {
        let key = private_ca::Ed25519SigningKey::generate().unwrap();
        let public: [u8; 32] = key.public_key_spki()[12..].try_into().unwrap();
        let mut raw = vec![COSIGNATURE_V1];
        raw.extend_from_slice(&public);
        let vkey = format!(
            "witness.example+{}+{}",
            hex::encode(key_hint("witness.example", &public)),
            b64_encode(&raw)
        );
        (key, vkey)
    }

    fn cosign(
        key: &private_ca::Ed25519SigningKey,
        w: &WitnessKey,
        text: &str,
        time: u64,
    ) -> NoteSignature {
        let mut signature = time.to_be_bytes().to_vec();
        signature.extend_from_slice(&key.sign(&signed_message(text, time)));
        NoteSignature {
            name: w.name.clone(),
            key_hint: w.key_hint,
            signature,
        }
    }

    #[test]
    fn a_cosignature_verifies_for_its_checkpoint_only() {
        let (key, vkey) = witness();
        let w = parse_vkey(&vkey).unwrap();
        let text = "tlog.example - 1\n3\nAAAA\n";
        let sig = cosign(&key, &w, text, 1_700_000_000);
        assert_eq!(verify(&w, &sig, text).unwrap(), 1_700_000_000);
        assert!(verify(&w, &sig, "tlog.example - 1\n4\nAAAA\n").is_err());
        let mut late = sig.clone();
        late.signature[7] ^= 1;
        assert!(verify(&w, &late, text).is_err());
    }

    #[test]
    fn malformed_witness_keys_are_refused_by_part() {
        let (_, vkey) = witness();
        let (name, rest) = vkey.split_once('+').unwrap();
        let (_, key) = rest.split_once('+').unwrap();
        for (bad, expect) in [
            ("nokey".to_string(), "NAME+HASH+BASE64KEY"),
            (format!("{name}+00000000+{key}"), "does not match"),
            (format!("{name}+{}", rest.replace(key, "!!")), "base64"),
            (format!("a b+00000000+{key}"), "no spaces"),
        ] {
            let err = parse_vkey(&bad).unwrap_err();
            assert!(err.contains(expect), "{bad}: {err}");
        }
    }
}
