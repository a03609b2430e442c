//! C2SP signed notes and tlog checkpoints. Pure: no I/O.
//!
//! A signed note is a UTF-8 text body ending in a newline, a blank line, and
//! one or more signature lines `— <name> <base64(key hint || signature)>\n`.
//! A checkpoint body is `<origin>\n<size>\n<base64 root hash>\n[extension lines]`.

use crate::crypto::VerifyingKey;
use crate::encoding::{b64_decode_strict, b64_encode};
use crate::tlog::merkle::Hash;

/// Upper bound on a note's size (a checkpoint is a few hundred bytes).
pub const MAX_NOTE_BYTES: usize = 1 << 20;
/// Upper bound on the number of signature lines considered.
pub const MAX_NOTE_SIGNATURES: usize = 100;

/// Why a signed note or checkpoint is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Oversized note.
    #[error("note is {0} bytes, over the limit")]
    TooLarge(usize),
    /// No blank line separating text and signatures.
    #[error("no blank line separates the note text from its signatures")]
    MissingSeparator,
    /// The note has no signatures.
    #[error("note carries no signatures")]
    NoSignatures,
    /// Too many signatures.
    #[error("note carries more than {MAX_NOTE_SIGNATURES} signatures")]
    TooManySignatures,
    /// A signature line is malformed.
    #[error("malformed signature line {0}")]
    BadSignatureLine(usize),
    /// The checkpoint body is missing a line.
    #[error("checkpoint is missing its {0} line")]
    MissingLine(&'static str),
    /// The tree size is not a canonical decimal.
    #[error("checkpoint tree size {0:?} is not a decimal number")]
    BadSize(String),
    /// The root hash is not base64 of 32 bytes.
    #[error("checkpoint root hash is not base64 of 32 bytes")]
    BadRootHash,
    /// An empty extension line.
    #[error("checkpoint has an empty extension line")]
    EmptyExtensionLine,
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Signer name.
    pub name: String,
    /// First four bytes of the key ID.
    pub key_hint: [u8; 4],
    /// The signature proper.
    pub signature: Vec<u8>,
}

/// A parsed signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The signed text, including its final newline.
    pub text: String,
    /// Signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Parses a signed note.
    pub fn parse(note: &str) -> Result<Self, NoteError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge(note.len()));
        }
        let split = note.find("\n\n").ok_or(NoteError::MissingSeparator)?;
        let text = &note[..split + 1];
        let sig_block = &note[split + 2..];
        if sig_block.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        if !sig_block.ends_with('\n') {
            return Err(NoteError::BadSignatureLine(1));
        }
        let mut signatures = Vec::new();
        for (i, line) in sig_block[..sig_block.len() - 1].split('\n').enumerate() {
            if signatures.len() >= MAX_NOTE_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            let bad = || NoteError::BadSignatureLine(i + 1);
            let rest = line.strip_prefix("\u{2014} ").ok_or_else(bad)?;
            let (name, encoded) = rest.split_once(' ').ok_or_else(bad)?;
            if name.is_empty() || encoded.contains(' ') || name.contains('+') {
                return Err(bad());
            }
            let raw = b64_decode_strict(encoded).ok_or_else(bad)?;
            if raw.len() < 5 {
                return Err(bad());
            }
            let mut key_hint = [0u8; 4];
            key_hint.copy_from_slice(&raw[..4]);
            signatures.push(NoteSignature {
                name: name.to_string(),
                key_hint,
                signature: raw[4..].to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        Ok(SignedNote {
            text: text.to_string(),
            signatures,
        })
    }

    /// Finds a signature by `name` and `key_hint` that `key` verifies.
    ///
    /// Signatures by other names or keys (witness cosignatures, rotated keys)
    /// are ignored, as C2SP requires.
    pub fn verify(&self, name: &str, key_hint: [u8; 4], key: &VerifyingKey) -> SignatureCheck {
        let mut candidates = 0;
        for sig in &self.signatures {
            if sig.name != name || sig.key_hint != key_hint {
                continue;
            }
            candidates += 1;
            if key.verify_default(self.text.as_bytes(), &sig.signature) {
                return SignatureCheck::Valid;
            }
        }
        if candidates == 0 {
            SignatureCheck::NoMatchingSignature
        } else {
            SignatureCheck::Invalid
        }
    }

    /// Serializes the note.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for sig in &self.signatures {
            let mut raw = sig.key_hint.to_vec();
            raw.extend_from_slice(&sig.signature);
            out.push_str(&format!("\u{2014} {} {}\n", sig.name, b64_encode(&raw)));
        }
        out
    }
}

/// The outcome of looking for a verifying signature on a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    /// A signature with the expected name and key hint verified.
    Valid,
    /// No signature line carries the expected name and key hint.
    NoMatchingSignature,
    /// Matching lines exist but none verifies.
    Invalid,
}

/// A parsed tlog checkpoint body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root_hash: Hash,
    /// Extension lines (opaque).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Parses a checkpoint body (the signed text of a note).
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(NoteError::MissingLine("origin"))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or(NoteError::MissingLine("origin"))?;
        let size_line = lines.next().ok_or(NoteError::MissingLine("tree size"))?;
        let root_line = lines.next().ok_or(NoteError::MissingLine("root hash"))?;
        let size_ok = !size_line.is_empty()
            && size_line.bytes().all(|b| b.is_ascii_digit())
            && (size_line == "0" || !size_line.starts_with('0'));
        let size: u64 = if size_ok {
            size_line
                .parse()
                .map_err(|_| NoteError::BadSize(size_line.to_string()))?
        } else {
            return Err(NoteError::BadSize(size_line.to_string()));
        };
        let root = b64_decode_strict(root_line).ok_or(NoteError::BadRootHash)?;
        let root_hash: Hash = root.try_into().map_err(|_| NoteError::BadRootHash)?;
        let mut extensions = Vec::new();
        for line in lines {
            if line.is_empty() {
                return Err(NoteError::EmptyExtensionLine);
            }
            extensions.push(line.to_string());
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root_hash,
            extensions,
        })
    }

    /// The checkpoint body text (what gets signed).
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            b64_encode(&self.root_hash)
        );
        for ext in &self.extensions {
            out.push_str(ext);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &str = "example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u{2014} example.com/log AQIDBAUG\n";

    #[test]
    fn parses_note_and_checkpoint() {
        let note = SignedNote::parse(NOTE).unwrap();
        assert_eq!(note.signatures.len(), 1);
        assert_eq!(note.signatures[0].key_hint, [1, 2, 3, 4]);
        assert_eq!(note.signatures[0].signature, vec![5, 6]);
        let cp = Checkpoint::parse(&note.text).unwrap();
        assert_eq!(cp.origin, "example.com/log");
        assert_eq!(cp.size, 5);
        assert_eq!(cp.to_text(), note.text);
        assert_eq!(note.to_text(), NOTE);
    }

    #[test]
    fn missing_parts_are_reported() {
        assert_eq!(
            SignedNote::parse("a\n5\n"),
            Err(NoteError::MissingSeparator)
        );
        assert_eq!(
            SignedNote::parse("a\n5\nx\n\n"),
            Err(NoteError::NoSignatures)
        );
        assert!(matches!(
            SignedNote::parse("a\n\n\u{2014} n AQIDBAUG"),
            Err(NoteError::BadSignatureLine(1))
        ));
        assert!(matches!(
            Checkpoint::parse("5\nAAAA\n"),
            Err(NoteError::BadRootHash | NoteError::MissingLine(_))
        ));
        assert!(matches!(
            Checkpoint::parse("o\n05\nAAAA\n"),
            Err(NoteError::BadSize(_))
        ));
        assert!(matches!(
            Checkpoint::parse("o\n-1\nAAAA\n"),
            Err(NoteError::BadSize(_))
        ));
        assert!(matches!(
            Checkpoint::parse("o\n1\n"),
            Err(NoteError::MissingLine("root hash"))
        ));
    }
}
