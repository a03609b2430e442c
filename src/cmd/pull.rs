//! `[[image]] pull`: mirrors tags of a registry repository into an OCI
//! layout, with what cosign attaches to each (the `sha256-<hex>.sig`
//! manifest and the referrers, from the referrers API or its fallback
//! tag). The mirror is untrusted input: blobs are stored under the digest
//! their parent names, bounded by the size it names, and `export` then
//! closes and judges the layout like any other (a wrong byte is
//! `oci.blob-digest`, a missing one `oci.blob-missing`).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context;
use gateway::escape::quoted;
use gateway::oci::cosign::{referrers_tag, signature_tag, tagged_descriptor, Blob};
use gateway::oci::layout::{
    parse_node, sha256_hex, MAX_DEPTH, MAX_DESCRIPTORS, MAX_MANIFEST_BYTES, MAX_NODES,
};
use gateway::oci::{LayoutDir, Node, MEDIA_OCI_INDEX};
use gateway::Error;
use oci_spec::image::Descriptor;

use super::registry::{Credentials, Registry};

/// What a pull fetched.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pulled {
    /// Manifests and indexes.
    pub manifests: usize,
    /// Configs and layers.
    pub blobs: usize,
    /// Bytes of configs and layers.
    pub bytes: u64,
}

/// Mirrors `tags` of `host/repository` into a new layout at `dir`.
pub fn pull(
    reference: &str,
    tags: &[String],
    plain_http: bool,
    dir: &Path,
) -> anyhow::Result<Pulled> {
    let (host, repository) = gateway::oci::split_registry(reference).map_err(Error::Usage)?;
    let layout = LayoutDir::create(dir).map_err(|e| Error::Usage(e.to_string()))?;
    let registry = Registry::new(
        host,
        repository,
        plain_http,
        false,
        Credentials::from_env()?,
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut mirror = Mirror {
        registry,
        layout,
        seen: BTreeSet::new(),
        pulled: Pulled::default(),
        reference: reference.to_string(),
    };
    runtime
        .block_on(mirror.tags(tags))
        .with_context(|| format!("pulling {}", quoted(reference)))?;
    Ok(mirror.pulled)
}

struct Mirror {
    registry: Registry,
    layout: LayoutDir,
    seen: BTreeSet<String>,
    pulled: Pulled,
    reference: String,
}

impl Mirror {
    /// Each tag with its signatures, then `index.json` naming them.
    async fn tags(&mut self, tags: &[String]) -> anyhow::Result<()> {
        let mut entries = Vec::new();
        for tag in tags {
            let root = self.tagged(tag).await?.ok_or_else(|| {
                Error::Usage(format!(
                    "{}:{tag}: the registry has no such tag",
                    self.reference
                ))
            })?;
            entries.push(tagged_descriptor(&root, tag));
            let hex = sha256_hex(&root)
                .map_err(|e| Error::Usage(e.to_string()))?
                .to_string();
            if let Some(sig) = self.tagged(&signature_tag(&hex)).await? {
                entries.push(tagged_descriptor(&sig, &signature_tag(&hex)));
            }
            if let Some(list) = self.referrers(&hex).await? {
                entries.push(tagged_descriptor(&list, &referrers_tag(&hex)));
            }
        }
        self.layout
            .write_index(&entries)
            .map_err(|e| Error::Usage(e.to_string()))?;
        Ok(())
    }

    /// The manifest a tag names (its digest is what its bytes hash to) and
    /// its closure; `None` when the tag does not exist.
    async fn tagged(&mut self, tag: &str) -> anyhow::Result<Option<Descriptor>> {
        let Some(fetched) = self.registry.manifest(tag).await? else {
            return Ok(None);
        };
        let media_type = if fetched.media_type.is_empty() {
            serde_json::from_slice::<serde_json::Value>(&fetched.bytes)
                .ok()
                .and_then(|v| v["mediaType"].as_str().map(str::to_string))
                .unwrap_or_default()
        } else {
            fetched.media_type
        };
        let blob = Blob::new(&media_type, fetched.bytes);
        self.layout
            .put(&blob)
            .map_err(|e| Error::Usage(e.to_string()))?;
        self.pulled.manifests += 1;
        self.walk(&blob.descriptor, &blob.bytes).await?;
        Ok(Some(blob.descriptor))
    }

    /// The referrers of `sha256:<hex>`: the API's index, or the fallback
    /// tag's; stored as an index in the layout.
    async fn referrers(&mut self, hex: &str) -> anyhow::Result<Option<Descriptor>> {
        let digest = format!("sha256:{hex}");
        if let Some(bytes) = self.registry.referrers(&digest).await? {
            let blob = Blob::new(MEDIA_OCI_INDEX, bytes);
            self.layout
                .put(&blob)
                .map_err(|e| Error::Usage(e.to_string()))?;
            self.walk(&blob.descriptor, &blob.bytes).await?;
            return Ok(Some(blob.descriptor));
        }
        self.tagged(&referrers_tag(hex)).await
    }

    /// Fetches everything below a node, breadth first, within the limits
    /// the layout reader enforces (so what is left out is named there).
    async fn walk(&mut self, root: &Descriptor, bytes: &[u8]) -> anyhow::Result<()> {
        let mut queue = std::collections::VecDeque::new();
        queue.push_back((root.clone(), bytes.to_vec(), 0usize));
        while let Some((d, bytes, depth)) = queue.pop_front() {
            let Ok(node) = parse_node(&d, &bytes) else {
                continue;
            };
            match node {
                Node::Index(index) => {
                    for child in index.manifests().iter().take(MAX_DESCRIPTORS) {
                        if depth + 1 > MAX_DEPTH || self.pulled.manifests >= MAX_NODES {
                            break;
                        }
                        if let Some(bytes) = self.child(child).await? {
                            queue.push_back((child.clone(), bytes, depth + 1));
                        }
                    }
                }
                Node::Manifest(m) => {
                    for blob in std::iter::once(m.config()).chain(m.layers()) {
                        self.blob(blob).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A child manifest by digest, stored under that digest.
    async fn child(&mut self, d: &Descriptor) -> anyhow::Result<Option<Vec<u8>>> {
        let Ok(hex) = sha256_hex(d) else {
            return Ok(None);
        };
        if d.size() > MAX_MANIFEST_BYTES || !self.seen.insert(hex.to_string()) {
            return Ok(None);
        }
        let Some(fetched) = self.registry.manifest(d.digest().as_ref()).await? else {
            return Ok(None);
        };
        let path = self.layout.blob_path(hex);
        gateway::files::write_atomic(&path, &fetched.bytes, None)?;
        self.pulled.manifests += 1;
        Ok(Some(fetched.bytes))
    }

    /// A config or layer, streamed into the layout (at most one byte more
    /// than its descriptor says, so an oversized one is named, not stored whole).
    async fn blob(&mut self, d: &Descriptor) -> anyhow::Result<()> {
        let Ok(hex) = sha256_hex(d) else {
            return Ok(());
        };
        let path = self.layout.blob_path(hex);
        if !self.seen.insert(hex.to_string()) || path.exists() {
            return Ok(());
        }
        let found = self
            .registry
            .blob_to_file(d.digest().as_ref(), d.size().saturating_add(1), &path)
            .await?;
        if !found {
            return Ok(());
        }
        self.pulled.blobs += 1;
        self.pulled.bytes += d.size();
        Ok(())
    }
}
