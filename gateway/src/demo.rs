//! A SIMULATED upstream: a stand-in for the public Sigstore stack (CA with CT
//! signer, transparency log) and its TUF repository, built with airgate's own
//! CA, log and TUF code. Used by `airgate demo`, the end-to-end tests and the
//! benchmarks; everything it makes is labelled as simulated.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use private_ca::{init_ceremony, CaConfig, SigningIdentity};

use crate::signing::SigningRequest;
use crate::state::StateDir;
use crate::{files, Error, Result};

/// The identity the simulated upstream signs with (a GitHub Actions-like workflow).
pub const SIMULATED_IDENTITY: &str =
    "https://github.com/simulated-org/app/.github/workflows/release.yml@refs/tags/v1.0.0";
/// The simulated OIDC issuer.
pub const SIMULATED_ISSUER: &str = "https://token.actions.simulated.invalid";

/// A simulated public Sigstore instance with its TUF repository.
#[derive(Debug, Clone)]
pub struct SimulatedUpstream {
    /// Its CA / log state directory.
    pub ca_dir: PathBuf,
    /// Its TUF repository (serves `trusted_root.json`).
    pub tuf_repo: PathBuf,
    /// The TUF role keys.
    pub tuf_keys: PathBuf,
    /// The TUF root to pin (`1.root.json`).
    pub tuf_root: PathBuf,
}

impl SimulatedUpstream {
    /// Creates the simulated stack under `dir` at `now`.
    pub fn create(dir: &Path, now: SystemTime) -> Result<Self> {
        let ca_dir = dir.join("sigstore");
        let mut config = CaConfig::with_defaults("SIMULATED public Sigstore");
        config.ca_url = "https://fulcio.simulated.invalid".into();
        config.oidc_issuer = SIMULATED_ISSUER.into();
        config.default_identity = SIMULATED_IDENTITY.into();
        config.tlog_url = "https://rekor.simulated.invalid".into();
        config.ctlog_url = "https://ctfe.simulated.invalid".into();
        init_ceremony(&ca_dir, config, now)?;
        let tuf_repo = dir.join("tuf");
        let tuf_keys = dir.join("tuf-keys");
        let now_utc: DateTime<Utc> = now.into();
        tuf_repo::init_private(
            &tuf_repo,
            &tuf_keys,
            &tuf_repo::PrivateRepoConfig::default(),
            now_utc,
        )?;
        let trusted_root_path = ca_dir.join(private_ca::ca::files::TRUSTED_ROOT);
        let trusted_root =
            std::fs::read(&trusted_root_path).map_err(|e| Error::io(&trusted_root_path, e))?;
        tuf_repo::publish(
            &tuf_repo,
            &tuf_keys,
            &[(tuf_repo::TRUSTED_ROOT_TARGET, &trusted_root)],
            now_utc,
        )?;
        Ok(SimulatedUpstream {
            tuf_root: tuf_repo.join("1.root.json"),
            ca_dir,
            tuf_repo,
            tuf_keys,
        })
    }

    /// The `file://` URL of the TUF repository.
    pub fn tuf_url(&self) -> Result<String> {
        let abs =
            std::fs::canonicalize(&self.tuf_repo).map_err(|e| Error::io(&self.tuf_repo, e))?;
        Ok(format!("file://{}", abs.display()))
    }

    /// Signs every file with the simulated identity, writing `FILE.sigstore.json` beside it.
    pub fn sign_files(&self, paths: &[PathBuf], now: SystemTime) -> Result<Vec<PathBuf>> {
        self.sign_files_as(paths, SIMULATED_IDENTITY, now)
    }

    /// Signs every file as `identity`.
    pub fn sign_files_as(
        &self,
        paths: &[PathBuf],
        identity: &str,
        now: SystemTime,
    ) -> Result<Vec<PathBuf>> {
        let mut state = StateDir::open(&self.ca_dir)?;
        let identity = SigningIdentity::parse(identity)?;
        let mut requests = Vec::new();
        for path in paths {
            requests.push(SigningRequest {
                artifact_sha256: files::hash_file(path)?.0,
                identity: identity.clone(),
                custody: None,
                attestations: Vec::new(),
            });
        }
        let mut out = Vec::new();
        for (chunk_paths, chunk) in paths.chunks(5000).zip(requests.chunks(5000)) {
            let signed = state.sign(chunk, now)?;
            for (path, s) in chunk_paths.iter().zip(signed.artifacts) {
                let mut name = path
                    .file_name()
                    .map(|n| n.to_os_string())
                    .unwrap_or_default();
                name.push(".sigstore.json");
                let bundle = path.with_file_name(name);
                std::fs::write(&bundle, &s.bundle_json).map_err(|e| Error::io(&bundle, e))?;
                out.push(bundle);
            }
        }
        Ok(out)
    }

    /// A low-side policy trusting this simulated instance (pinned TUF root, file mirror).
    pub fn low_side_policy(&self) -> Result<String> {
        Ok(format!(
            r#"# Low-side policy: trust the SIMULATED upstream Sigstore (demo only).
[trust]
tuf-mirror = "{}"
tuf-root = "{}"

[[rule]]
name = "simulated release workflow"
artifacts = ["**"]
images = ["**"]
signers = [{{ identity = "{SIMULATED_IDENTITY}", issuer = "{SIMULATED_ISSUER}" }}]
"#,
            self.tuf_url()?,
            self.tuf_root.display()
        ))
    }

    /// A high-side policy for the same upstream (its own pinned copy of the TUF root).
    pub fn high_side_policy(&self, pinned_root: &Path) -> String {
        format!(
            r#"# High-side policy: who may sign what, judged again on this side.
[trust]
tuf-root = "{}"

[import]
max-transit-age-days = 30

[[rule]]
name = "simulated release workflow"
artifacts = ["**"]
images = ["**"]
signers = [{{ identity = "{SIMULATED_IDENTITY}", issuer = "{SIMULATED_ISSUER}" }}]
"#,
            pinned_root.display()
        )
    }
}

/// Writes a SIMULATED conda package `NAME-VERSION-BUILD.conda` (rattler's
/// package writer: `info/index.json` for `subdir`, `info/paths.json`, one
/// script) into `out_dir`.
pub fn write_conda_package(
    out_dir: &Path,
    name: &str,
    version: &str,
    build: &str,
    subdir: &str,
) -> Result<PathBuf> {
    let fail = |e: std::io::Error| Error::internal("writing a conda package", e);
    let src = tempfile::tempdir().map_err(fail)?;
    let base = src.path();
    let index = serde_json::json!({
        "name": name, "version": version, "build": build, "build_number": 0,
        "subdir": subdir, "depends": [], "license": "Apache-2.0", "timestamp": 1767225600000u64,
    });
    let script = format!("#!/bin/sh\necho SIMULATED {name} {version}\n");
    let files: [(&str, Vec<u8>); 3] = [
        (
            "info/index.json",
            serde_json::to_vec(&index).unwrap_or_default(),
        ),
        (
            "info/paths.json",
            br#"{"paths":[],"paths_version":1}"#.to_vec(),
        ),
        ("bin/app", script.into_bytes()),
    ];
    let mut paths = Vec::new();
    for (rel, bytes) in &files {
        let path = base.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        std::fs::write(&path, bytes).map_err(fail)?;
        paths.push(path);
    }
    let stem = format!("{name}-{version}-{build}");
    std::fs::create_dir_all(out_dir).map_err(fail)?;
    let out = out_dir.join(format!("{stem}.conda"));
    let file = std::fs::File::create(&out).map_err(fail)?;
    rattler_package_streaming::write::write_conda_package(
        file,
        base,
        &paths,
        rattler_conda_types::compression_level::CompressionLevel::Lowest,
        None,
        &stem,
        None,
        None,
    )
    .map_err(fail)?;
    Ok(out)
}

/// Which signatures the simulated upstream attaches to an image.
#[derive(Debug, Clone, Copy)]
pub struct ImageSigning {
    /// A cosign `.sig` manifest (simple-signing layer).
    pub legacy: bool,
    /// A Sigstore bundle v0.3 referrer (cosign sign statement).
    pub referrer: bool,
    /// A SLSA provenance attestation referrer.
    pub provenance: bool,
}

impl ImageSigning {
    /// Both forms and a provenance attestation.
    pub const ALL: ImageSigning = ImageSigning {
        legacy: true,
        referrer: true,
        provenance: true,
    };
}

/// The SLSA provenance predicate type.
pub const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v1";

/// A gzip-compressed tar layer holding one file, and the sha256 of the
/// uncompressed tar (its diff ID).
fn tar_layer(path: &str, contents: &[u8]) -> Result<(Vec<u8>, String)> {
    use std::io::Write as _;
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(contents.len() as u64);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_cksum();
    let fail = |e: std::io::Error| Error::internal("building a layer", e);
    builder
        .append_data(&mut header, path, contents)
        .map_err(fail)?;
    let tar = builder.into_inner().map_err(fail)?;
    let diff_id = format!("sha256:{}", hex::encode(crate::crypto::sha256(&tar)));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).map_err(fail)?;
    Ok((gz.finish().map_err(fail)?, diff_id))
}

/// Writes a SIMULATED multi-arch image (linux/amd64 and linux/arm64, a
/// shared base layer and one own layer each, real tar layers and configs)
/// into a layout at `dir` (created if needed), tagged `tag`. `base` is the
/// shared base layer's content: images made with the same `base` share it.
/// Returns the index's digest (`sha256:<hex>`).
pub fn write_image_layout(dir: &Path, tag: &str, base: &[u8]) -> Result<String> {
    use crate::oci::cosign::{tagged_descriptor, Blob};
    use crate::oci::{LayoutDir, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST};
    let oci = |e: crate::oci::LayoutError| Error::Usage(e.to_string());
    let layout = match LayoutDir::open(dir, true) {
        Ok(l) => l,
        Err(_) => LayoutDir::create(dir).map_err(oci)?,
    };
    let layer_type = "application/vnd.oci.image.layer.v1.tar+gzip";
    let (base_gz, base_diff) = tar_layer("etc/os-release", base)?;
    let base_layer = Blob::new(layer_type, base_gz);
    layout.put(&base_layer).map_err(oci)?;
    let mut children = Vec::new();
    for arch in ["amd64", "arm64"] {
        let (own_gz, own_diff) = tar_layer(
            "app/hello",
            format!("SIMULATED app {tag} for {arch}\n").as_bytes(),
        )?;
        let own = Blob::new(layer_type, own_gz);
        layout.put(&own).map_err(oci)?;
        let config = serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "created": "2026-01-01T00:00:00Z",
            "config": {"Cmd": ["/app/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [base_diff, own_diff]},
        });
        let config = Blob::new(
            MEDIA_OCI_CONFIG,
            serde_json::to_vec(&config).unwrap_or_default(),
        );
        layout.put(&config).map_err(oci)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": config.descriptor,
            "layers": [base_layer.descriptor, own.descriptor],
        });
        let manifest = Blob::new(
            MEDIA_OCI_MANIFEST,
            serde_json::to_vec(&manifest).unwrap_or_default(),
        );
        layout.put(&manifest).map_err(oci)?;
        let mut d = serde_json::to_value(&manifest.descriptor).unwrap_or_default();
        d["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
        children.push(d);
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_INDEX,
        "manifests": children,
    });
    let index = Blob::new(
        MEDIA_OCI_INDEX,
        serde_json::to_vec(&index).unwrap_or_default(),
    );
    layout.put(&index).map_err(oci)?;
    let mut entries: Vec<_> = layout.index().map_err(oci)?.manifests().clone();
    entries.push(tagged_descriptor(&index.descriptor, tag));
    layout.write_index(&entries).map_err(oci)?;
    Ok(index.descriptor.digest().to_string())
}

impl SimulatedUpstream {
    /// Signs the image tagged `tag` in a layout as `identity`, in the forms
    /// asked, as cosign would attach them (SIMULATED public instance).
    pub fn sign_image(
        &self,
        dir: &Path,
        repository: &str,
        tag: &str,
        identity: &str,
        forms: ImageSigning,
        now: SystemTime,
    ) -> Result<()> {
        use crate::oci::cosign::{self, referrers_tag, signature_tag, tagged_descriptor};
        let oci = |e: crate::oci::LayoutError| Error::Usage(e.to_string());
        let layout = crate::oci::LayoutDir::open(dir, true).map_err(oci)?;
        let index = layout.index().map_err(oci)?;
        let root = crate::oci::layout::tagged(&index)
            .into_iter()
            .find(|t| t.tag.as_deref() == Some(tag))
            .ok_or_else(|| Error::Usage(format!("no image tagged {tag:?} in {}", dir.display())))?
            .descriptor;
        let hex = crate::oci::layout::sha256_hex(&root)
            .map_err(oci)?
            .to_string();
        let payload = cosign::payload(repository, root.digest().as_ref());
        let mut statements = Vec::new();
        if forms.referrer {
            statements.push((
                cosign::sign_statement(repository, &hex),
                crate::oci::COSIGN_SIGN_PREDICATE,
            ));
        }
        if forms.provenance {
            let predicate = serde_json::json!({
                "buildDefinition": {"buildType": "https://simulated.invalid/build/v1", "externalParameters": {}},
                "runDetails": {"builder": {"id": "https://simulated.invalid/builder"}},
            });
            let statement = crate::attest::statement(
                repository,
                &hex,
                SLSA_PROVENANCE,
                &serde_json::to_vec(&predicate).unwrap_or_default(),
            )
            .map_err(Error::Usage)?;
            statements.push((statement, SLSA_PROVENANCE));
        }
        let mut state = StateDir::open(&self.ca_dir)?;
        let signed = state.sign(
            &[SigningRequest {
                artifact_sha256: crate::crypto::sha256(&payload),
                identity: SigningIdentity::parse(identity)?,
                custody: None,
                attestations: statements.iter().map(|(s, _)| s.clone()).collect(),
            }],
            now,
        )?;
        let signed = signed
            .artifacts
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("signing an image", "no signature"))?;
        let ours = cosign::OurSignatures {
            payload,
            payload_bundle: signed.bundle_json,
            referrers: signed
                .attestations
                .into_iter()
                .zip(&statements)
                .map(|(a, (_, p))| (a.bundle_json, p.to_string()))
                .collect(),
        };
        let created =
            chrono::DateTime::<Utc>::from(now).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let attached = cosign::attach(
            &root,
            &[],
            &[],
            &ours,
            &crate::oci::cosign::chain_pem(&[state.ca().intermediate_der(), state.ca().root_der()]),
            &created,
        )
        .map_err(|e| Error::internal("attaching signatures", e))?;
        for blob in &attached.blobs {
            layout.put(blob).map_err(oci)?;
        }
        let mut entries: Vec<_> = index.manifests().clone();
        if forms.legacy {
            entries.push(tagged_descriptor(
                &attached.signature_manifest,
                &signature_tag(&hex),
            ));
        }
        if !statements.is_empty() {
            entries.push(tagged_descriptor(
                &attached.referrers_index,
                &referrers_tag(&hex),
            ));
        }
        layout.write_index(&entries).map_err(oci)
    }
}
