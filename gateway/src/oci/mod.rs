//! Container images: OCI image layouts (image-spec v1.1) with cosign
//! signatures in both forms real clients write: the legacy tag-based
//! `sha256-<hex>.sig` manifest of simple-signing payloads (cosign's
//! signature specification) and Sigstore bundle v0.3 referrers (cosign's
//! bundle specification) with the referrers fallback tag `sha256-<hex>`.
//!
//! What a signature covers: the exact bytes of the manifest or index it
//! names by digest. An index's bytes pin every child manifest by digest, and
//! each manifest pins its config and layers, so a verified signature on the
//! tagged descriptor covers the whole closure below it; a signature on a
//! child only covers that child. airgate requires the tagged descriptor
//! itself to be signed and checks the closure's digests and sizes.
//!
//! - [`layout`]: reading a layout and closing its graph (digests and sizes);
//! - [`cosign`]: the signature forms, parsed and written;
//! - [`judge`]: may this image pass, under a policy and a trusted root.

pub mod carry;
pub mod cosign;
pub mod judge;
pub mod layout;

pub use judge::{
    Companion, ImageJudge, ImageRejection, ImageSignature, SignatureForm, VerifiedImage,
};
pub use layout::{BlobSource, Closure, LayoutDir, LayoutError, Node, TaggedImage};

/// OCI image manifest media type.
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest v2 schema 2 media type.
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config media type.
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The OCI empty descriptor's media type (`{}`).
pub const MEDIA_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// cosign's simple-signing payload layer media type.
pub const MEDIA_SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Sigstore bundle v0.3 media type (artifact type of bundle referrers).
pub const MEDIA_BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The annotation naming a tag in a layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// cosign: base64 signature over the payload layer.
pub const ANNOTATION_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// cosign: the PEM signing certificate.
pub const ANNOTATION_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
/// cosign: the PEM chain (intermediates then root).
pub const ANNOTATION_CHAIN: &str = "dev.sigstore.cosign/chain";
/// cosign: the Rekor bundle (SET and entry).
pub const ANNOTATION_BUNDLE: &str = "dev.sigstore.cosign/bundle";
/// Bundle referrers: `message-signature` or `dsse-envelope`.
pub const ANNOTATION_BUNDLE_CONTENT: &str = "dev.sigstore.bundle.content";
/// Bundle referrers: the in-toto predicate type.
pub const ANNOTATION_BUNDLE_PREDICATE: &str = "dev.sigstore.bundle.predicateType";
/// The OCI creation-time annotation.
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// The predicate of cosign v3's image signature statements.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
/// The empty JSON object blob `{}` and its digest.
pub const EMPTY_BLOB: &[u8] = b"{}";

/// Checks a repository name as the distribution spec defines it
/// (lowercase path components separated by `/`, at most 255 characters).
pub fn check_repository(name: &str) -> Result<(), String> {
    let component = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && c.bytes()
                .last()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && !c.contains("..")
    };
    if name.len() > 255 || !name.split('/').all(component) {
        return Err(format!(
            "repository {} is not a valid name (lowercase letters, digits, '.', '_', '-' in '/'-separated parts, like \"org/app\")",
            crate::escape::quoted(name)
        ));
    }
    Ok(())
}

/// Checks a tag as the distribution spec defines it
/// (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`).
pub fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        return Err(format!(
            "tag {} is not a valid tag (letters, digits, '.', '_', '-'; at most 128)",
            crate::escape::quoted(tag)
        ));
    }
    Ok(())
}

/// Splits a carried `repository:tag` reference, both parts checked.
pub fn split_reference(reference: &str) -> Result<(&str, &str), String> {
    let (repo, tag) = reference
        .rsplit_once(':')
        .ok_or_else(|| format!("reference {} has no tag", crate::escape::quoted(reference)))?;
    check_repository(repo)?;
    check_tag(tag)?;
    Ok((repo, tag))
}

/// Splits `registry/repository` (`registry.example:5000/org/app`) into the
/// registry host (a domain or IPv4 address with an optional port, or
/// `localhost`, as distribution's reference grammar tells it from a path)
/// and the repository, both checked. Tags and digests go elsewhere.
pub fn split_registry(reference: &str) -> Result<(&str, &str), String> {
    let bad = |why: &str| {
        format!(
            "registry reference {} {why}",
            crate::escape::quoted(reference)
        )
    };
    let (host, path) = reference
        .split_once('/')
        .ok_or_else(|| bad("has no repository (registry.example/org/app)"))?;
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    });
    if !name_ok || !port_ok {
        return Err(bad("does not start with a registry host (host[:port])"));
    }
    if !(name.contains('.') || port.is_some() || name == "localhost") {
        return Err(bad(
            "does not start with a registry host: a host has a '.' or a port, or is localhost",
        ));
    }
    if path.contains('@') || path.contains(':') {
        return Err(bad("names a tag or digest: list tags in tags = [...]"));
    }
    check_repository(path)?;
    Ok((host, path))
}

#[cfg(test)]
pub(crate) mod tests_support {
    //! An in-memory layout for unit tests.
    use std::collections::BTreeMap;

    use oci_spec::image::Descriptor;

    use super::cosign::Blob;
    use super::layout::{sha256_hex, BlobSource, LayoutError};

    /// Blobs by hex digest.
    #[derive(Default)]
    pub struct MemoryLayout {
        blobs: BTreeMap<String, Vec<u8>>,
    }

    impl MemoryLayout {
        fn put(&mut self, blob: Blob) -> Descriptor {
            let hex = blob.descriptor.digest().digest().to_string();
            self.blobs.insert(hex, blob.bytes);
            blob.descriptor
        }

        /// A layer.
        pub fn blob(&mut self, data: &[u8]) -> Descriptor {
            self.put(Blob::new(
                "application/vnd.oci.image.layer.v1.tar",
                data.to_vec(),
            ))
        }

        /// A manifest over a config and layers.
        pub fn image(&mut self, config: &[u8], layers: &[Descriptor]) -> Descriptor {
            let config = self.put(Blob::new(super::MEDIA_OCI_CONFIG, config.to_vec()));
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": super::MEDIA_OCI_MANIFEST,
                "config": config,
                "layers": layers,
            });
            self.put(Blob::new(
                super::MEDIA_OCI_MANIFEST,
                serde_json::to_vec(&manifest).unwrap_or_default(),
            ))
        }

        /// An index over manifests.
        pub fn index(&mut self, children: &[Descriptor]) -> Descriptor {
            let index = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": super::MEDIA_OCI_INDEX,
                "manifests": children,
            });
            self.put(Blob::new(
                super::MEDIA_OCI_INDEX,
                serde_json::to_vec(&index).unwrap_or_default(),
            ))
        }

        /// Drops a blob.
        pub fn remove(&mut self, d: &Descriptor) {
            self.blobs.remove(d.digest().digest());
        }

        /// Flips the last byte of a blob.
        pub fn tamper(&mut self, d: &Descriptor) {
            if let Some(b) = self.blobs.get_mut(d.digest().digest()) {
                if let Some(last) = b.last_mut() {
                    *last ^= 1;
                }
            }
        }
    }

    impl BlobSource for MemoryLayout {
        fn read(&self, hex: &str, limit: u64) -> Result<Option<Vec<u8>>, LayoutError> {
            Ok(self
                .blobs
                .get(hex)
                .map(|b| b[..b.len().min(limit as usize)].to_vec()))
        }

        fn check(&self, d: &Descriptor) -> Result<(), LayoutError> {
            let hex = sha256_hex(d)?;
            let bytes = self.read(hex, u64::MAX)?.ok_or(LayoutError::Missing {
                digest: d.digest().to_string(),
                media_type: d.media_type().to_string(),
            })?;
            if bytes.len() as u64 != d.size() {
                return Err(LayoutError::Size {
                    digest: d.digest().to_string(),
                    expected: d.size(),
                    found: bytes.len() as u64,
                });
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_the_distribution_spec() {
        for ok in ["app", "org/app", "a.b/c_d/e-f", "0rg/4pp"] {
            assert!(check_repository(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "Org/app", "org//app", "/app", "app/", "-app", "a..b", "a/../b", "a:b",
        ] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn registry_references_split_into_host_and_repository() {
        assert_eq!(
            split_registry("127.0.0.1:5000/simulated/app"),
            Ok(("127.0.0.1:5000", "simulated/app"))
        );
        assert_eq!(
            split_registry("ghcr.io/org/app"),
            Ok(("ghcr.io", "org/app"))
        );
        assert_eq!(split_registry("localhost/app"), Ok(("localhost", "app")));
        for bad in [
            "org/app",
            "app",
            "ghcr.io/",
            "ghcr.io/Org/app",
            "ghcr.io/org/app:v1",
            "ghcr.io/org/app@sha256:00",
            "host:99999/app",
            "host:/app",
            "-bad.example/app",
            "bad..example/app",
            "h\u{1b}[2K.example/app",
        ] {
            let e = split_registry(bad).unwrap_err();
            assert!(!e.contains('\u{1b}'), "{e}");
        }
    }

    #[test]
    fn tags_follow_the_distribution_spec() {
        assert!(check_tag("v1.0_rc-1").is_ok());
        assert!(check_tag(&"a".repeat(128)).is_ok());
        for bad in ["", ".hidden", "-x", "a/b", "a:b", &"a".repeat(129)] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
        assert_eq!(split_reference("org/app:v1"), Ok(("org/app", "v1")));
        assert!(split_reference("org/app").is_err());
    }
}
