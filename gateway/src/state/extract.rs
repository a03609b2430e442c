//! `airgate artifact get`: an artifact and its bundles copied out of the
//! state without a server, each byte checked on the way out: the blob
//! against its recorded digest, the bundle by verifying it against the
//! enclave's trusted root and the identity airgate signed with.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::StateReader;
use crate::bundle::{
    ArtifactDigest, BundleLimits, IdentityPolicy, ParsedBundle, SignerPolicy, Verifier,
};
use crate::medium::EntryName;
use crate::{files, Error, Result};

/// What `extract_artifact` wrote.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// The artifact's bytes.
    pub artifact: PathBuf,
    /// The `.sigs` array as served.
    pub sigs: PathBuf,
    /// airgate's own bundle (the element that verified), for clients that
    /// take one bundle (`sigstore verify --bundle`).
    pub bundle: PathBuf,
    /// Hex SHA-256 of the artifact (checked on the copy).
    pub sha256: String,
    /// Which element of the `.sigs` array is airgate's bundle (0-based).
    pub element: usize,
    /// The identity and issuer the bundle verified for.
    pub identity: String,
    /// The OIDC issuer the bundle verified for.
    pub issuer: String,
}

/// A reader that writes everything it reads into `sink` (hash and copy in one pass).
struct Tee<R, W> {
    source: R,
    sink: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.source.read(buf)?;
        self.sink.write_all(&buf[..n])?;
        Ok(n)
    }
}

impl StateReader {
    /// Copies the current version of `name` to `out_dir/NAME`, with
    /// `NAME.sigs` and `NAME.sigstore.json` (airgate's bundle) beside it.
    /// Nothing is written unless the blob matches its digest and one bundle
    /// of the `.sigs` verifies (time-dependent checks as of `now`).
    pub fn extract_artifact(
        &self,
        name: &str,
        out_dir: &Path,
        now: DateTime<Utc>,
    ) -> Result<Extracted> {
        let entry = EntryName::parse(name).map_err(|e| {
            Error::Usage(format!(
                "artifact name {}: {e}",
                crate::escape::quoted(name)
            ))
        })?;
        let row = super::queries::artifact(&self.conn, name)?.ok_or_else(|| {
            Error::Usage(format!(
                "{} holds no artifact named {} (see `airgate imports show`)",
                self.dir.display(),
                crate::escape::quoted(name)
            ))
        })?;
        let (sigs, _) = self
            .artifact_sigs(name)?
            .ok_or_else(|| Error::internal("reading the .sigs of an artifact row", name))?;
        let target = entry.to_path(out_dir);
        let parent = target.parent().unwrap_or(out_dir).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let copy = self.copy_blob(&row.sha256, &parent)?;
        let issuer = private_ca::CaConfig::load(&self.dir)?.oidc_issuer;
        let policy = SignerPolicy::identity(IdentityPolicy::exact(&row.signer_identity, &issuer));
        let (element, bundle) = self.our_bundle(name, &sigs, &copy.1, &policy, now)?;
        let sigs_path = with_suffix(&target, ".sigs");
        let bundle_path = with_suffix(&target, ".sigstore.json");
        copy.0
            .persist(&target)
            .map_err(|e| Error::io(&target, e.error))?;
        files::write_atomic(&sigs_path, &sigs, Some(0o644))?;
        files::write_atomic(&bundle_path, &bundle, Some(0o644))?;
        Ok(Extracted {
            artifact: target,
            sigs: sigs_path,
            bundle: bundle_path,
            sha256: row.sha256,
            element,
            identity: row.signer_identity,
            issuer,
        })
    }

    /// Which element of the served `.sigs` of `name` is airgate's bundle
    /// (verified against the recorded digest), with the identity and issuer
    /// it verified for: what a verification recipe names.
    pub fn airgate_bundle_element(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(usize, String, String)> {
        let row = super::queries::artifact(&self.conn, name)?.ok_or_else(|| {
            Error::Usage(format!("no artifact named {}", crate::escape::quoted(name)))
        })?;
        let (sigs, _) = self
            .artifact_sigs(name)?
            .ok_or_else(|| Error::internal("reading the .sigs of an artifact row", name))?;
        let digest = ArtifactDigest::parse(&format!("sha256:{}", row.sha256))
            .ok_or_else(|| Error::internal("parsing a recorded digest", &row.sha256))?;
        let issuer = private_ca::CaConfig::load(&self.dir)?.oidc_issuer;
        let policy = SignerPolicy::identity(IdentityPolicy::exact(&row.signer_identity, &issuer));
        let (element, _) = self.our_bundle(name, &sigs, &digest, &policy, now)?;
        Ok((element, row.signer_identity, issuer))
    }

    /// Streams the blob into a temporary file in `dir`, hashing on the way;
    /// a blob that no longer matches its recorded digest is refused.
    fn copy_blob(
        &self,
        sha256_hex: &str,
        dir: &Path,
    ) -> Result<(tempfile::NamedTempFile, ArtifactDigest)> {
        let path = super::blob_path(&self.dir, sha256_hex);
        let blob = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".airgate-get-")
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        let sink = std::io::BufWriter::new(tmp.as_file());
        let digest = ArtifactDigest::of_reader(Tee { source: blob, sink })
            .map_err(|e| Error::io(&path, e))?;
        if hex::encode(digest.0) != sha256_hex {
            return Err(Error::Log(crate::tlog::LogError::Tampered(format!(
                "blob {} no longer has its recorded SHA-256 {sha256_hex}",
                path.display()
            ))));
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
                .map_err(|e| Error::io(tmp.path(), e))?;
        }
        Ok((tmp, digest))
    }

    /// The first element of `sigs` that verifies for `policy` over `digest`.
    fn our_bundle(
        &self,
        name: &str,
        sigs: &[u8],
        digest: &ArtifactDigest,
        policy: &SignerPolicy,
        now: DateTime<Utc>,
    ) -> Result<(usize, Vec<u8>)> {
        let elements = crate::judge::artifact::split_bundles(sigs, true).map_err(|e| {
            Error::Log(crate::tlog::LogError::Tampered(format!("{name}.sigs: {e}")))
        })?;
        let root =
            crate::bundle::TrustedRoot::from_json(&self.trusted_root_json).map_err(|source| {
                Error::TrustRoot {
                    location: self
                        .dir
                        .join(private_ca::ca::files::TRUSTED_ROOT)
                        .display()
                        .to_string(),
                    source,
                }
            })?;
        let verifier = Verifier::new(root);
        let mut last = None;
        for (i, element) in elements.iter().enumerate() {
            let verified = ParsedBundle::from_json(element, &BundleLimits::default())
                .map_err(crate::bundle::BundleRejection::from)
                .and_then(|b| {
                    verifier
                        .verify(&b, digest, policy, now)
                        .map_err(crate::bundle::BundleRejection::from)
                });
            match verified {
                Ok(_) => return Ok((i, element.to_vec())),
                Err(rejection) => last = Some(rejection),
            }
        }
        Err(Error::Bundle {
            subject: format!("{name}.sigs"),
            rejection: last.unwrap_or(crate::bundle::BundleRejection::Malformed(
                crate::bundle::BundleFormatError::Missing("bundle"),
            )),
        })
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
