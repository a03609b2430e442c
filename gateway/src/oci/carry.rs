//! The OCI layout a medium carries (`oci/oci-layout`, `oci/index.json`,
//! `oci/blobs/sha256/<hex>`): every verified image tagged `repository:tag`,
//! its verified `.sig` manifest tagged `repository:sha256-<hex>.sig`, and a
//! referrers index of its verified bundle referrers tagged
//! `repository:sha256-<hex>`. Blobs appear once however many images share
//! them. Pure: the caller says where each blob's bytes are.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::image::Descriptor;
use serde_json::json;

use super::cosign::{
    referrer_descriptor, referrers_index, referrers_tag, signature_tag, tagged_descriptor,
};
use super::judge::VerifiedImage;
use super::layout::{sha256_hex, LayoutDir};
use super::MEDIA_OCI_INDEX;
use crate::medium::manifest::{ImageRecord, ImageSignatureRecord};

/// The `oci-layout` file.
pub const OCI_LAYOUT_FILE: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Where a carried blob's bytes are.
#[derive(Debug, Clone)]
pub enum CarriedData {
    /// In memory (manifests, indexes made on the way).
    Bytes(Vec<u8>),
    /// A file of the source layout (configs, layers), hashed while written.
    File(PathBuf),
}

/// One blob of the carried layout.
#[derive(Debug, Clone)]
pub struct CarriedBlob {
    /// Its sha256 (hex), which names it.
    pub sha256_hex: String,
    /// Its size.
    pub size: u64,
    /// Its bytes.
    pub data: CarriedData,
    /// The references whose closure or signatures need it.
    pub used_by: Vec<String>,
}

/// The layout to carry.
#[derive(Debug, Clone)]
pub struct Carried {
    /// `oci/index.json`.
    pub index_json: Vec<u8>,
    /// Blobs by digest, each once.
    pub blobs: Vec<CarriedBlob>,
    /// What the manifest records of each image.
    pub records: Vec<ImageRecord>,
}

/// Lays out verified images, each with the layout it was read from.
pub fn carry(images: &[(VerifiedImage, &LayoutDir)]) -> Carried {
    let mut blobs: BTreeMap<String, CarriedBlob> = BTreeMap::new();
    let mut tags: Vec<Descriptor> = Vec::new();
    let mut records = Vec::new();
    for (image, layout) in images {
        let (Some(root), Some(tag)) = (image.root(), image.tag.as_deref()) else {
            continue;
        };
        let reference = format!("{}:{tag}", image.repository);
        let Ok(hex) = sha256_hex(root) else { continue };
        let hex = hex.to_string();
        let mut add = |d: &Descriptor, data: CarriedData| {
            let Ok(h) = sha256_hex(d) else { return };
            let entry = blobs.entry(h.to_string()).or_insert_with(|| CarriedBlob {
                sha256_hex: h.to_string(),
                size: d.size(),
                data,
                used_by: Vec::new(),
            });
            if !entry.used_by.contains(&reference) {
                entry.used_by.push(reference.clone());
            }
        };
        let file =
            |d: &Descriptor| CarriedData::File(layout.blob_path(sha256_hex(d).unwrap_or_default()));
        for node in &image.closure.nodes {
            add(&node.descriptor, CarriedData::Bytes(node.bytes.clone()));
        }
        for blob in &image.closure.blobs {
            add(blob, file(blob));
        }
        tags.push(tagged_descriptor(root, &reference));
        if let Some(legacy) = &image.legacy {
            add(
                &legacy.node.descriptor,
                CarriedData::Bytes(legacy.node.bytes.clone()),
            );
            for b in &legacy.blobs {
                add(b, file(b));
            }
            tags.push(tagged_descriptor(
                &legacy.node.descriptor,
                &format!("{}:{}", image.repository, signature_tag(&hex)),
            ));
        }
        if !image.referrers.is_empty() {
            let listed: Vec<Descriptor> = image
                .referrers
                .iter()
                .map(|r| referrer_descriptor(&r.node))
                .collect();
            for r in &image.referrers {
                add(&r.node.descriptor, CarriedData::Bytes(r.node.bytes.clone()));
                for b in &r.blobs {
                    add(b, file(b));
                }
            }
            let index = referrers_index(&listed);
            add(&index.descriptor, CarriedData::Bytes(index.bytes.clone()));
            tags.push(tagged_descriptor(
                &index.descriptor,
                &format!("{}:{}", image.repository, referrers_tag(&hex)),
            ));
        }
        records.push(record(image, reference, root));
    }
    records.sort_by(|a, b| a.reference.cmp(&b.reference));
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_INDEX,
        "manifests": tags,
    });
    Carried {
        index_json: serde_json::to_vec(&index).unwrap_or_default(),
        blobs: blobs.into_values().collect(),
        records,
    }
}

fn record(image: &VerifiedImage, reference: String, root: &Descriptor) -> ImageRecord {
    ImageRecord {
        reference,
        digest: root.digest().to_string(),
        size: image.closure.size(),
        signatures: image
            .signatures
            .iter()
            .map(|s| ImageSignatureRecord {
                form: s.form.name().to_string(),
                upstream: s.upstream(),
            })
            .collect(),
        attestations: image
            .attestations
            .iter()
            .filter_map(|a| a.verified.predicate_type.clone())
            .collect(),
    }
}
