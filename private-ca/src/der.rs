//! A minimal, bounds-checked DER reader and writer for the CA's own output.
//!
//! Crate-private: it reads back and re-encodes only certificates this CA just
//! built (the precertificate TBS for its SCT). Untrusted certificates, SCT
//! lists and RFC 3161 tokens are parsed in `gateway` with `x509-cert`, `der`,
//! `cms` and `x509-tsp`.

use std::fmt;

/// Universal tag: INTEGER.
pub const INTEGER: u8 = 0x02;
/// Universal tag: BIT STRING.
pub const BIT_STRING: u8 = 0x03;
/// Universal tag: OCTET STRING.
pub const OCTET_STRING: u8 = 0x04;
/// Universal tag: NULL.
pub const NULL: u8 = 0x05;
/// Universal tag: OBJECT IDENTIFIER.
pub const OID: u8 = 0x06;
/// Universal tag: UTF8String.
pub const UTF8_STRING: u8 = 0x0c;
/// Constructed SEQUENCE.
pub const SEQUENCE: u8 = 0x30;

/// Context-specific constructed tag `[n]`.
pub const fn context_constructed(n: u8) -> u8 {
    0xa0 | n
}

/// What went wrong while reading DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerError {
    /// Which structure was being read.
    pub context: &'static str,
    /// What was wrong with it.
    pub problem: &'static str,
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.problem)
    }
}

impl std::error::Error for DerError {}

/// One DER element: its tag, its content bytes, and its full encoding.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    /// The identifier octet.
    pub tag: u8,
    /// The content octets.
    pub content: &'a [u8],
    /// Tag, length and content together.
    pub raw: &'a [u8],
}

impl<'a> Element<'a> {
    /// A reader over this element's content (for constructed types).
    pub fn reader(&self) -> Reader<'a> {
        Reader::new(self.content)
    }
}

/// A cursor over DER-encoded bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    input: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Reader { input, position: 0 }
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.position >= self.input.len()
    }

    /// The tag of the next element without consuming it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.input.get(self.position).copied()
    }

    /// Reads the next element of any tag.
    pub fn read_any(&mut self, context: &'static str) -> Result<Element<'a>, DerError> {
        let err = |problem| DerError { context, problem };
        let start = self.position;
        let tag = *self.input.get(start).ok_or(err("unexpected end of data"))?;
        if tag & 0x1f == 0x1f {
            return Err(err("multi-byte tags are not supported"));
        }
        let first = *self
            .input
            .get(start + 1)
            .ok_or(err("unexpected end of data in length"))?;
        let (length, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else if first == 0x80 {
            return Err(err("indefinite length is not DER"));
        } else {
            let count = usize::from(first & 0x7f);
            if count > 4 {
                return Err(err("length too large"));
            }
            let bytes = self
                .input
                .get(start + 2..start + 2 + count)
                .ok_or(err("unexpected end of data in length"))?;
            if bytes.first() == Some(&0) {
                return Err(err("non-minimal length encoding"));
            }
            let mut length = 0usize;
            for b in bytes {
                length = (length << 8) | usize::from(*b);
            }
            if length < 0x80 {
                return Err(err("non-minimal length encoding"));
            }
            (length, 2 + count)
        };
        let content_start = start + header;
        let end = content_start
            .checked_add(length)
            .ok_or(err("length overflow"))?;
        let content = self
            .input
            .get(content_start..end)
            .ok_or(err("length runs past the end of data"))?;
        let raw = self
            .input
            .get(start..end)
            .ok_or(err("length runs past the end of data"))?;
        self.position = end;
        Ok(Element { tag, content, raw })
    }

    /// Reads the next element and checks its tag.
    pub fn read(&mut self, tag: u8, context: &'static str) -> Result<Element<'a>, DerError> {
        let element = self.read_any(context)?;
        if element.tag != tag {
            return Err(DerError {
                context,
                problem: "unexpected tag",
            });
        }
        Ok(element)
    }

    /// Reads the next element if it carries `tag`.
    pub fn read_optional(
        &mut self,
        tag: u8,
        context: &'static str,
    ) -> Result<Option<Element<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read(tag, context).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails unless all input was consumed.
    pub fn finish(&self, context: &'static str) -> Result<(), DerError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DerError {
                context,
                problem: "trailing data",
            })
        }
    }
}

/// Parses exactly one element spanning all of `input`.
pub fn parse_single<'a>(
    input: &'a [u8],
    tag: u8,
    context: &'static str,
) -> Result<Element<'a>, DerError> {
    let mut reader = Reader::new(input);
    let element = reader.read(tag, context)?;
    reader.finish(context)?;
    Ok(element)
}

/// Decodes an OBJECT IDENTIFIER's content into its dotted form.
#[cfg(test)]
pub fn oid_to_string(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u128> = Vec::new();
    let mut value: u128 = 0;
    let mut in_arc = false;
    for byte in content {
        if !in_arc && *byte == 0x80 {
            return None; // non-minimal arc encoding
        }
        if value > (u128::MAX >> 7) {
            return None;
        }
        value = (value << 7) | u128::from(byte & 0x7f);
        in_arc = byte & 0x80 != 0;
        if !in_arc {
            if arcs.is_empty() {
                let (a, b) = match value {
                    0..=39 => (0, value),
                    40..=79 => (1, value - 40),
                    _ => (2, value - 80),
                };
                arcs.push(a);
                arcs.push(b);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    if in_arc || arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(u128::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// Encodes a dotted OID (arcs up to 128 bits, as 2.25 UUID OIDs need) as OID content bytes.
pub fn oid_from_dotted(dotted: &str) -> Option<Vec<u8>> {
    let arcs: Vec<u128> = dotted
        .split('.')
        .map(|a| a.parse::<u128>().ok())
        .collect::<Option<Vec<_>>>()?;
    if arcs.len() < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] >= 40) {
        return None;
    }
    let first = arcs[0].checked_mul(40)?.checked_add(arcs[1])?;
    let mut out = Vec::new();
    for arc in std::iter::once(first).chain(arcs[2..].iter().copied()) {
        let mut chunk = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            chunk.push(0x80 | (rest & 0x7f) as u8);
            rest >>= 7;
        }
        chunk.reverse();
        out.extend(chunk);
    }
    Some(out)
}

/// Encodes a DER length.
pub fn encode_length(length: usize, out: &mut Vec<u8>) {
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes = length.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = &bytes[skip..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

/// Encodes a complete TLV.
pub fn encode_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    encode_length(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

/// Decodes a non-negative INTEGER content into u64 (rejecting negatives and overflow).
pub fn integer_to_u64(content: &[u8]) -> Option<u64> {
    if content.is_empty() || content.len() > 9 {
        return None;
    }
    if content[0] & 0x80 != 0 {
        return None;
    }
    let bytes = if content.len() == 9 {
        if content[0] != 0 {
            return None;
        }
        &content[1..]
    } else {
        content
    };
    let mut value = 0u64;
    for b in bytes {
        value = (value << 8) | u64::from(*b);
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_sequence() {
        let data = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xff];
        let seq = parse_single(&data, SEQUENCE, "test").unwrap();
        let mut r = seq.reader();
        let int = r.read(INTEGER, "int").unwrap();
        assert_eq!(int.content, &[5]);
        let os = r.read(OCTET_STRING, "os").unwrap();
        assert_eq!(os.content, &[0xff]);
        r.finish("seq").unwrap();
    }

    #[test]
    fn truncated_length_is_rejected() {
        assert!(Reader::new(&[0x30, 0x82, 0x01]).read_any("t").is_err());
        assert!(Reader::new(&[0x30, 0x05, 0x00]).read_any("t").is_err());
        assert!(Reader::new(&[0x30]).read_any("t").is_err());
        assert!(Reader::new(&[]).read_any("t").is_err());
    }

    #[test]
    fn indefinite_and_non_minimal_lengths_are_rejected() {
        assert!(Reader::new(&[0x30, 0x80, 0x00, 0x00])
            .read_any("t")
            .is_err());
        assert!(Reader::new(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5])
            .read_any("t")
            .is_err());
        assert!(Reader::new(&[0x04, 0x82, 0x00, 0x80])
            .read_any("t")
            .is_err());
    }

    #[test]
    fn huge_length_does_not_panic() {
        assert!(Reader::new(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff])
            .read_any("t")
            .is_err());
        assert!(
            Reader::new(&[0x04, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
                .read_any("t")
                .is_err()
        );
    }

    #[test]
    fn trailing_data_is_reported() {
        assert!(parse_single(&[0x05, 0x00, 0x00], NULL, "t").is_err());
    }

    #[test]
    fn oid_decoding() {
        // 1.3.6.1.4.1.57264.1.8
        let content = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xbf, 0x30, 0x01, 0x08];
        assert_eq!(oid_to_string(&content).unwrap(), "1.3.6.1.4.1.57264.1.8");
        assert_eq!(oid_to_string(&[0x2a, 0x86, 0x48]).unwrap(), "1.2.840");
        assert_eq!(oid_to_string(&[0x2a, 0x86]), None);
        assert_eq!(oid_to_string(&[0x2a, 0x80, 0x01]), None);
        assert_eq!(oid_to_string(&[]), None);
    }

    #[test]
    fn oid_encoding_round_trips_including_uuid_arcs() {
        for dotted in [
            "1.3.6.1.4.1.57264.1.8",
            "2.25.239558945087499892173515845696179310472.1",
            "1.2.840.10045.4.3.3",
        ] {
            let content = oid_from_dotted(dotted).unwrap();
            assert_eq!(oid_to_string(&content).unwrap(), dotted);
        }
        assert_eq!(
            oid_from_dotted("1.3.6.1.4.1.57264.1.8").unwrap(),
            vec![0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xbf, 0x30, 0x01, 0x08]
        );
        assert!(oid_from_dotted("3.1").is_none());
        assert!(oid_from_dotted("1").is_none());
    }

    #[test]
    fn length_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536, 1 << 24] {
            let content = vec![0u8; len];
            let tlv = encode_tlv(OCTET_STRING, &content);
            let e = parse_single(&tlv, OCTET_STRING, "t").unwrap();
            assert_eq!(e.content.len(), len);
        }
    }

    #[test]
    fn integers() {
        assert_eq!(integer_to_u64(&[0x00, 0xff]), Some(255));
        assert_eq!(integer_to_u64(&[0xff]), None);
        assert_eq!(integer_to_u64(&[]), None);
    }
}
