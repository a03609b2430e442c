//! An OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`)
//! and the closure of one tagged descriptor: every manifest, index, config
//! and layer reachable from it, present with the digest and size its
//! parent names. The walk is pure over a [`BlobSource`]; [`LayoutDir`] is
//! the directory edge.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, DigestAlgorithm, ImageIndex, ImageManifest};
use sha2::{Digest as _, Sha256};

use super::{
    ANNOTATION_REF_NAME, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
};
use crate::escape::quoted;

/// Largest manifest, index or `index.json` read (distribution's own limit).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Most manifests and indexes in one closure.
pub const MAX_NODES: usize = 4096;
/// Deepest nesting of indexes.
pub const MAX_DEPTH: usize = 4;
/// Most descriptors in one manifest or index.
pub const MAX_DESCRIPTORS: usize = 4096;

/// Why a layout or a closure is not acceptable. Each names the digest (or
/// file) it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The directory is not an OCI layout (`oci-layout` missing or not 1.0.0).
    #[error("not an OCI image layout: {0}")]
    NotALayout(String),
    /// A manifest, index or `index.json` that does not parse.
    #[error("{what} is not a valid {kind}: {detail}")]
    Malformed {
        /// The digest or file.
        what: String,
        /// `image manifest`, `image index`, ...
        kind: &'static str,
        /// The parser's message (escaped).
        detail: String,
    },
    /// A descriptor names a blob the layout does not hold.
    #[error("blob {digest} ({media_type}) is missing")]
    Missing {
        /// The digest.
        digest: String,
        /// The descriptor's media type.
        media_type: String,
    },
    /// A blob's bytes do not hash to the digest naming it.
    #[error("blob {digest} hashes to sha256:{found}")]
    Digest {
        /// The digest named.
        digest: String,
        /// What the bytes hash to.
        found: String,
    },
    /// A blob's size differs from its descriptor's.
    #[error("blob {digest} is {found} bytes, its descriptor says {expected}")]
    Size {
        /// The digest.
        digest: String,
        /// The descriptor's size.
        expected: u64,
        /// The blob's size.
        found: u64,
    },
    /// A digest algorithm other than sha256.
    #[error("digest {0} is not sha256 (the only algorithm accepted)")]
    Algorithm(String),
    /// A manifest or index larger than [`MAX_MANIFEST_BYTES`], or a
    /// closure beyond [`MAX_NODES`], [`MAX_DEPTH`] or [`MAX_DESCRIPTORS`].
    #[error("{0}")]
    Limit(String),
    /// A descriptor's media type is not one of an image's.
    #[error("{digest}: media type {media_type} is not an image manifest or index")]
    MediaType {
        /// The digest.
        digest: String,
        /// The media type (escaped).
        media_type: String,
    },
    /// Reading failed.
    #[error("{path}: {detail}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        detail: String,
    },
}

impl LayoutError {
    /// The stable name of the failed check.
    pub fn check(&self) -> &'static str {
        match self {
            LayoutError::NotALayout(_) => "oci.layout",
            LayoutError::Malformed { .. } | LayoutError::MediaType { .. } => "oci.format",
            LayoutError::Missing { .. } => "oci.blob-missing",
            LayoutError::Digest { .. } => "oci.blob-digest",
            LayoutError::Size { .. } => "oci.blob-size",
            LayoutError::Algorithm(_) => "oci.digest-algorithm",
            LayoutError::Limit(_) => "oci.limit",
            LayoutError::Io { .. } => "io",
        }
    }
}

/// Where blobs come from: a layout directory, a staged medium, the store.
pub trait BlobSource: Sync {
    /// The whole blob named by a sha256 hex digest, at most `limit` bytes,
    /// or `None` when absent. Not checked against the digest here.
    fn read(&self, sha256_hex: &str, limit: u64) -> Result<Option<Vec<u8>>, LayoutError>;
    /// Checks that the blob a descriptor names is present with its size
    /// (and, for sources that do not already guarantee it, its digest).
    fn check(&self, descriptor: &Descriptor) -> Result<(), LayoutError>;
}

/// A manifest or an index.
#[derive(Debug, Clone)]
pub enum Node {
    /// An image index (or Docker manifest list).
    Index(Box<ImageIndex>),
    /// An image manifest.
    Manifest(Box<ImageManifest>),
}

/// One manifest or index of a closure, with its exact bytes.
#[derive(Debug, Clone)]
pub struct ClosureNode {
    /// Its descriptor (as its parent names it).
    pub descriptor: Descriptor,
    /// Its bytes, as stored (what its digest covers).
    pub bytes: Vec<u8>,
    /// Parsed.
    pub node: Node,
}

/// Everything one descriptor reaches, each digest once.
#[derive(Debug, Clone)]
pub struct Closure {
    /// Manifests and indexes, the root first, parents before children.
    pub nodes: Vec<ClosureNode>,
    /// Configs and layers (each checked present with its size).
    pub blobs: Vec<Descriptor>,
}

impl Closure {
    /// Every digest of the closure (nodes then blobs), as `sha256:<hex>`.
    pub fn digests(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| n.descriptor.digest().to_string())
            .chain(self.blobs.iter().map(|d| d.digest().to_string()))
            .collect()
    }

    /// Total bytes of the closure.
    pub fn size(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.descriptor.size())
            .chain(self.blobs.iter().map(Descriptor::size))
            .sum()
    }
}

/// An entry of `index.json`: a descriptor and its tag, if it has one.
#[derive(Debug, Clone)]
pub struct TaggedImage {
    /// `org.opencontainers.image.ref.name`, when present.
    pub tag: Option<String>,
    /// The descriptor.
    pub descriptor: Descriptor,
}

/// The sha256 hex of a descriptor, or why it has none.
pub fn sha256_hex(d: &Descriptor) -> Result<&str, LayoutError> {
    match d.digest().algorithm() {
        DigestAlgorithm::Sha256 => Ok(d.digest().digest()),
        _ => Err(LayoutError::Algorithm(quoted(d.digest().as_ref()))),
    }
}

/// True when a media type is a manifest's.
pub fn is_manifest(media_type: &str) -> bool {
    media_type == MEDIA_OCI_MANIFEST || media_type == MEDIA_DOCKER_MANIFEST
}

/// True when a media type is an index's.
pub fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_OCI_INDEX || media_type == MEDIA_DOCKER_LIST
}

/// Parses `index.json` (or any image index) bytes.
pub fn parse_index(bytes: &[u8], what: &str) -> Result<ImageIndex, LayoutError> {
    let index: ImageIndex = serde_json::from_slice(bytes).map_err(|e| LayoutError::Malformed {
        what: what.to_string(),
        kind: "image index",
        detail: quoted(&e.to_string()),
    })?;
    if index.schema_version() != 2 {
        return Err(LayoutError::Malformed {
            what: what.to_string(),
            kind: "image index",
            detail: format!("schemaVersion {} (2 expected)", index.schema_version()),
        });
    }
    if index.manifests().len() > MAX_DESCRIPTORS {
        return Err(LayoutError::Limit(format!(
            "{what} lists {} manifests (at most {MAX_DESCRIPTORS})",
            index.manifests().len()
        )));
    }
    Ok(index)
}

/// Parses a node's bytes by the media type its descriptor names; a
/// `mediaType` inside the document must agree.
pub fn parse_node(descriptor: &Descriptor, bytes: &[u8]) -> Result<Node, LayoutError> {
    let digest = descriptor.digest().to_string();
    let media_type = descriptor.media_type().to_string();
    let malformed = |kind, detail: String| LayoutError::Malformed {
        what: digest.clone(),
        kind,
        detail,
    };
    let (node, inner) = if is_index(&media_type) {
        let index = parse_index(bytes, &digest)?;
        let inner = index.media_type().as_ref().map(ToString::to_string);
        (Node::Index(Box::new(index)), inner)
    } else if is_manifest(&media_type) {
        let m: ImageManifest = serde_json::from_slice(bytes)
            .map_err(|e| malformed("image manifest", quoted(&e.to_string())))?;
        if m.schema_version() != 2 {
            return Err(malformed(
                "image manifest",
                format!("schemaVersion {} (2 expected)", m.schema_version()),
            ));
        }
        if m.layers().len() > MAX_DESCRIPTORS {
            return Err(LayoutError::Limit(format!(
                "{digest} lists {} layers (at most {MAX_DESCRIPTORS})",
                m.layers().len()
            )));
        }
        let inner = m.media_type().as_ref().map(ToString::to_string);
        (Node::Manifest(Box::new(m)), inner)
    } else {
        return Err(LayoutError::MediaType {
            digest,
            media_type: quoted(&media_type),
        });
    };
    if let Some(inner) = inner {
        if inner != media_type {
            return Err(malformed(
                "document",
                format!(
                    "its mediaType {} differs from its descriptor's {}",
                    quoted(&inner),
                    quoted(&media_type)
                ),
            ));
        }
    }
    Ok(node)
}

/// Reads a manifest or index a descriptor names, checking size and digest.
pub fn read_node(source: &dyn BlobSource, d: &Descriptor) -> Result<ClosureNode, LayoutError> {
    let bytes = read_checked(source, d)?;
    let node = parse_node(d, &bytes)?;
    Ok(ClosureNode {
        descriptor: d.clone(),
        bytes,
        node,
    })
}

/// Reads a small blob (at most [`MAX_MANIFEST_BYTES`]) a descriptor names,
/// checking its size and sha256.
pub fn read_checked(source: &dyn BlobSource, d: &Descriptor) -> Result<Vec<u8>, LayoutError> {
    let hex = sha256_hex(d)?;
    if d.size() > MAX_MANIFEST_BYTES {
        return Err(LayoutError::Limit(format!(
            "{} is {} bytes (manifests and signature blobs may be at most {MAX_MANIFEST_BYTES})",
            d.digest(),
            d.size()
        )));
    }
    let bytes = source
        .read(hex, MAX_MANIFEST_BYTES + 1)?
        .ok_or_else(|| missing(d))?;
    if bytes.len() as u64 != d.size() {
        return Err(LayoutError::Size {
            digest: d.digest().to_string(),
            expected: d.size(),
            found: bytes.len() as u64,
        });
    }
    let found = hex::encode(Sha256::digest(&bytes));
    if found != hex {
        return Err(LayoutError::Digest {
            digest: d.digest().to_string(),
            found,
        });
    }
    Ok(bytes)
}

fn missing(d: &Descriptor) -> LayoutError {
    LayoutError::Missing {
        digest: d.digest().to_string(),
        media_type: quoted(d.media_type().as_ref()),
    }
}

/// Closes the graph below `root`: every node read and checked, every config
/// and layer checked present with its size (and digest, per the source).
pub fn close(source: &dyn BlobSource, root: &Descriptor) -> Result<Closure, LayoutError> {
    let mut nodes: Vec<ClosureNode> = Vec::new();
    let mut blobs: BTreeMap<String, Descriptor> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut stack = vec![(root.clone(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        if !seen.insert(d.digest().to_string()) {
            continue;
        }
        if depth > MAX_DEPTH {
            return Err(LayoutError::Limit(format!(
                "{} is nested more than {MAX_DEPTH} indexes deep",
                d.digest()
            )));
        }
        if nodes.len() >= MAX_NODES {
            return Err(LayoutError::Limit(format!(
                "the closure of {} holds more than {MAX_NODES} manifests",
                root.digest()
            )));
        }
        let node = read_node(source, &d)?;
        match &node.node {
            Node::Index(index) => {
                for child in index.manifests().iter().rev() {
                    stack.push((child.clone(), depth + 1));
                }
            }
            Node::Manifest(m) => {
                for blob in std::iter::once(m.config()).chain(m.layers()) {
                    sha256_hex(blob)?;
                    blobs
                        .entry(blob.digest().to_string())
                        .or_insert_with(|| blob.clone());
                }
            }
        }
        nodes.push(node);
    }
    for (digest, blob) in &blobs {
        if seen.contains(digest) {
            continue;
        }
        source.check(blob)?;
    }
    let blobs = blobs
        .into_iter()
        .filter(|(digest, _)| !seen.contains(digest))
        .map(|(_, d)| d)
        .collect();
    Ok(Closure { nodes, blobs })
}

/// The entries of an index (`index.json`), with their tags.
pub fn tagged(index: &ImageIndex) -> Vec<TaggedImage> {
    index
        .manifests()
        .iter()
        .map(|d| TaggedImage {
            tag: d
                .annotations()
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_REF_NAME))
                .cloned(),
            descriptor: d.clone(),
        })
        .collect()
}

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct LayoutDir {
    root: PathBuf,
    hash_blobs: bool,
}

impl LayoutDir {
    /// Opens a layout, checking `oci-layout`; `hash_blobs` makes
    /// [`BlobSource::check`] hash every config and layer (otherwise only
    /// their sizes are checked, for callers that hash them later anyway).
    pub fn open(root: &Path, hash_blobs: bool) -> Result<Self, LayoutError> {
        let marker = root.join("oci-layout");
        let bytes = read_file(&marker, 4096)?.ok_or_else(|| {
            LayoutError::NotALayout(format!("{} has no oci-layout file", root.display()))
        })?;
        let version = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(str::to_string));
        if version.as_deref() != Some("1.0.0") {
            return Err(LayoutError::NotALayout(format!(
                "{} does not declare imageLayoutVersion 1.0.0",
                marker.display()
            )));
        }
        Ok(LayoutDir {
            root: root.to_path_buf(),
            hash_blobs,
        })
    }

    /// The layout's `index.json`.
    pub fn index(&self) -> Result<ImageIndex, LayoutError> {
        let path = self.root.join("index.json");
        let bytes = read_file(&path, MAX_MANIFEST_BYTES + 1)?
            .ok_or_else(|| LayoutError::NotALayout(format!("{} is missing", path.display())))?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(LayoutError::Limit(format!(
                "{} is larger than {MAX_MANIFEST_BYTES} bytes",
                path.display()
            )));
        }
        parse_index(&bytes, "index.json")
    }

    /// The path of a blob (the hex is a checked sha256: no separators).
    pub fn blob_path(&self, sha256_hex: &str) -> PathBuf {
        self.root.join("blobs").join("sha256").join(sha256_hex)
    }
}

impl LayoutDir {
    /// Creates an empty layout at `root` (which must not hold one).
    pub fn create(root: &Path) -> Result<Self, LayoutError> {
        let io = |e: std::io::Error| LayoutError::Io {
            path: root.display().to_string(),
            detail: e.to_string(),
        };
        std::fs::create_dir_all(root.join("blobs").join("sha256")).map_err(io)?;
        std::fs::write(root.join("oci-layout"), super::carry::OCI_LAYOUT_FILE).map_err(io)?;
        let dir = LayoutDir {
            root: root.to_path_buf(),
            hash_blobs: true,
        };
        dir.write_index(&[])?;
        Ok(dir)
    }

    /// Stores a blob (content-addressed: an existing one is kept).
    pub fn put(&self, blob: &super::cosign::Blob) -> Result<(), LayoutError> {
        let path = self.blob_path(sha256_hex(&blob.descriptor)?);
        if path.exists() {
            return Ok(());
        }
        crate::files::write_atomic(&path, &blob.bytes, None).map_err(|e| LayoutError::Io {
            path: path.display().to_string(),
            detail: e.to_string(),
        })
    }

    /// Replaces `index.json` with these (tagged) descriptors, atomically.
    pub fn write_index(&self, manifests: &[Descriptor]) -> Result<(), LayoutError> {
        let path = self.root.join("index.json");
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": super::MEDIA_OCI_INDEX,
            "manifests": manifests,
        });
        let bytes = serde_json::to_vec(&index).unwrap_or_default();
        crate::files::write_atomic(&path, &bytes, None).map_err(|e| LayoutError::Io {
            path: path.display().to_string(),
            detail: e.to_string(),
        })
    }

    /// The layout's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl BlobSource for LayoutDir {
    fn read(&self, sha256_hex: &str, limit: u64) -> Result<Option<Vec<u8>>, LayoutError> {
        read_file(&self.blob_path(sha256_hex), limit)
    }

    fn check(&self, d: &Descriptor) -> Result<(), LayoutError> {
        let hex = sha256_hex(d)?;
        let path = self.blob_path(hex);
        let io = |e: std::io::Error| LayoutError::Io {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing(d)),
            Err(e) => return Err(io(e)),
        };
        let found = file.metadata().map_err(io)?.len();
        if found != d.size() {
            return Err(LayoutError::Size {
                digest: d.digest().to_string(),
                expected: d.size(),
                found,
            });
        }
        if self.hash_blobs {
            let mut hasher = Sha256::new();
            let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
            std::io::copy(&mut reader, &mut hasher).map_err(io)?;
            let got = hex::encode(hasher.finalize());
            if got != hex {
                return Err(LayoutError::Digest {
                    digest: d.digest().to_string(),
                    found: got,
                });
            }
        }
        Ok(())
    }
}

/// Reads at most `limit` bytes of a regular file; `None` when absent.
fn read_file(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, LayoutError> {
    let io = |e: std::io::Error| LayoutError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mut out = Vec::new();
    file.take(limit).read_to_end(&mut out).map_err(io)?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::tests_support::MemoryLayout;

    #[test]
    fn closure_of_an_index_visits_each_digest_once() {
        let mut layout = MemoryLayout::default();
        let shared = layout.blob(b"shared base layer");
        let own_a = layout.blob(b"a");
        let own_b = layout.blob(b"b");
        let a = layout.image(b"config a", &[shared.clone(), own_a]);
        let b = layout.image(b"config b", &[shared, own_b]);
        let index = layout.index(&[a, b]);
        let closure = close(&layout, &index).expect("closes");
        assert_eq!(closure.nodes.len(), 3);
        assert_eq!(
            closure.blobs.len(),
            5,
            "two configs, one shared and two own layers"
        );
    }

    #[test]
    fn missing_blob_is_named() {
        let mut layout = MemoryLayout::default();
        let layer = layout.blob(b"layer");
        let image = layout.image(b"config", std::slice::from_ref(&layer));
        layout.remove(&layer);
        let err = close(&layout, &image).expect_err("missing");
        assert_eq!(err.check(), "oci.blob-missing");
        assert!(err.to_string().contains(&layer.digest().to_string()));
    }

    #[test]
    fn wrong_size_is_refused() {
        let mut layout = MemoryLayout::default();
        let mut layer = layout.blob(b"layer");
        layer.set_size(4);
        let image = layout.image(b"config", &[layer]);
        assert_eq!(
            close(&layout, &image).expect_err("size").check(),
            "oci.blob-size"
        );
    }

    #[test]
    fn tampered_manifest_is_refused_by_digest() {
        let mut layout = MemoryLayout::default();
        let image = layout.image(b"config", &[]);
        layout.tamper(&image);
        assert_eq!(
            close(&layout, &image).expect_err("digest").check(),
            "oci.blob-digest"
        );
    }

    #[test]
    fn media_type_disagreement_is_refused() {
        let mut layout = MemoryLayout::default();
        let image = layout.image(b"config", &[]);
        let mut as_index = image.clone();
        as_index.set_media_type(oci_spec::image::MediaType::ImageIndex);
        assert_eq!(
            close(&layout, &as_index).expect_err("type").check(),
            "oci.format"
        );
    }

    #[test]
    fn non_sha256_digest_is_refused() {
        let d = Descriptor::new(
            oci_spec::image::MediaType::ImageManifest,
            2,
            oci_spec::image::Digest::try_from(format!("sha512:{}", "a".repeat(128)))
                .expect("digest"),
        );
        assert_eq!(
            close(&MemoryLayout::default(), &d)
                .expect_err("alg")
                .check(),
            "oci.digest-algorithm"
        );
    }

    #[test]
    fn index_json_garbage_is_quoted() {
        let err = parse_index(
            b"{\"schemaVersion\":2,\"manifests\":[{\"x\x01",
            "index.json",
        )
        .expect_err("garbage");
        assert_eq!(err.check(), "oci.format");
        assert!(!err.to_string().contains('\x01'));
    }
}
