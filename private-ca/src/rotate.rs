//! Intermediate CA rotation without downtime: a new intermediate signed by
//! the root (its key given as a file, kept offline otherwise), the trusted
//! root listing both with their windows (the old one closed at the rotation
//! time), new leaves from the new key, everything signed before still
//! verifying.
//!
//! Crash safety: the new key and certificate are written beside the old
//! ones as `*.next`, then `trusted_root.json` (the commit point), then the
//! `*.next` files replace the old ones. [`finish_pending`] (run by every
//! load) rolls a half-done rotation forward when the trusted root already
//! lists the new intermediate, and back otherwise.
//!
//! The CT log key rotates the same way ([`rotate_ct_key`]): a new key for the
//! SCTs of new leaves, both keys in the trusted root with their windows.
//!
//! The root rotates with its intermediate ([`rotate_root`]): a new
//! self-signed root and a new intermediate it signs form a new certificate
//! authority; the old one (old intermediate and old root) keeps its chain
//! with its window closed at the rotation time. Trust in the new root comes
//! from `trusted_root.json` as the private TUF repository distributes it,
//! as for Sigstore's public roots; the old root key signs nothing.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rcgen::Issuer;
use sha2::{Digest as _, Sha256};

use crate::ca::{
    cert_pem, files, new_intermediate, new_root, offset, pretty, rcgen_key, read_cert, unix_secs,
    CaConfig,
};
use crate::keys::{write_new_file, Curve, SigningKey};
use crate::{Error, Result};

/// What a rotation did.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// SHA-256 of the retired intermediate certificate.
    pub old_fingerprint: String,
    /// SHA-256 of the new intermediate certificate.
    pub new_fingerprint: String,
    /// The rotation time: the old window's end, the new one's start.
    pub at: String,
    /// Where the retired certificate was kept.
    pub retired_cert: PathBuf,
}

/// `retired/` file name of a certificate: what it was, when it retired,
/// and its fingerprint's start (two rotations in one second differ).
fn retired_name(what: &str, now: SystemTime, der: &[u8]) -> Result<String> {
    let fingerprint = hex(&Sha256::digest(der));
    Ok(format!(
        "{what}-{}-{}.crt.pem",
        unix_secs(now)?,
        &fingerprint[..16]
    ))
}

fn next(name: &str) -> String {
    format!("{name}.next")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rotates the intermediate in `dir` at `now`, signing the new one with the
/// root key at `root_key`.
pub fn rotate_intermediate(dir: &Path, root_key: &Path, now: SystemTime) -> Result<Rotation> {
    finish_pending(dir)?;
    let config = CaConfig::load(dir)?;
    let root_der = read_cert(&dir.join(files::ROOT_CERT))?;
    let old_der = read_cert(&dir.join(files::INTERMEDIATE_CERT))?;
    let key = SigningKey::load(root_key, Curve::P384, "root")?;
    if crate::der_cert::spki(&root_der) != Some(key.public_key_spki()) {
        return Err(Error::Key {
            what: "root",
            problem: format!("{} does not match {}", root_key.display(), files::ROOT_CERT),
        });
    }
    let root = Issuer::from_ca_cert_der(&root_der.clone().into(), rcgen_key(&key, "root")?)
        .map_err(|e| Error::Config(format!("root certificate: {e}")))?;
    let at = crate::ca::chrono_like_rfc3339(unix_secs(now)?);
    let (new_key, new_der) = new_intermediate(&config, offset(now)?, &root)?;
    let (_, trusted) = read_trusted_root(dir)?;
    let rotated = crate::trust::rotate_ca(&trusted, &[new_der.clone(), root_der], &at)
        .map_err(Error::Config)?;

    new_key.save_new(&dir.join(next(files::INTERMEDIATE_KEY)))?;
    write_new_file(
        &dir.join(next(files::INTERMEDIATE_CERT)),
        cert_pem(&new_der).as_bytes(),
        0o644,
    )?;
    let retired = dir.join("retired");
    std::fs::create_dir_all(&retired).map_err(|e| Error::io(&retired, e))?;
    let retired_cert = retired.join(retired_name("intermediate", now, &old_der)?);
    write_new_file(&retired_cert, cert_pem(&old_der).as_bytes(), 0o644)?;
    write_trust(dir, &rotated)?;
    finish_pending(dir)?;
    Ok(Rotation {
        old_fingerprint: hex(&Sha256::digest(&old_der)),
        new_fingerprint: hex(&Sha256::digest(&new_der)),
        at,
        retired_cert,
    })
}

/// What a root rotation did.
#[derive(Debug, Clone)]
pub struct RootRotation {
    /// SHA-256 of the retired root certificate.
    pub old_root_fingerprint: String,
    /// SHA-256 of the new root certificate.
    pub new_root_fingerprint: String,
    /// SHA-256 of the new intermediate certificate (signed by the new root).
    pub new_intermediate_fingerprint: String,
    /// The rotation time: the old CA's window end, the new one's start.
    pub at: String,
    /// Where the new root's private key was written.
    pub root_key: PathBuf,
    /// Where the retired root and intermediate certificates were kept.
    pub retired: Vec<PathBuf>,
}

/// Rotates the root CA in `dir` at `now`: a new root key and self-signed
/// certificate, a new intermediate it signs, and the trusted root listing
/// the new authority from `now` and the old one (its chain unchanged) until
/// `now`. The new root key is written to `root_key_out` (which must not
/// exist: keep it offline), or by default replaces `root.key.pem` in `dir`.
pub fn rotate_root(
    dir: &Path,
    root_key_out: Option<&Path>,
    now: SystemTime,
) -> Result<RootRotation> {
    finish_pending(dir)?;
    let config = CaConfig::load(dir)?;
    let old_root = read_cert(&dir.join(files::ROOT_CERT))?;
    let old_intermediate = read_cert(&dir.join(files::INTERMEDIATE_CERT))?;
    let start = offset(now)?;
    let (root_key, root_der, issuer) = new_root(&config, start)?;
    let (intermediate_key, intermediate_der) = new_intermediate(&config, start, &issuer)?;
    let at = crate::ca::chrono_like_rfc3339(unix_secs(now)?);
    let (_, trusted) = read_trusted_root(dir)?;
    let rotated =
        crate::trust::rotate_ca(&trusted, &[intermediate_der.clone(), root_der.clone()], &at)
            .map_err(Error::Config)?;
    // The new root key first: written where it will live (or as `.next`).
    let root_key_path = match root_key_out {
        Some(p) => p.to_path_buf(),
        None => dir.join(next(files::ROOT_KEY)),
    };
    root_key.save_new(&root_key_path)?;
    intermediate_key.save_new(&dir.join(next(files::INTERMEDIATE_KEY)))?;
    write_new_file(
        &dir.join(next(files::INTERMEDIATE_CERT)),
        cert_pem(&intermediate_der).as_bytes(),
        0o644,
    )?;
    write_new_file(
        &dir.join(next(files::ROOT_CERT)),
        cert_pem(&root_der).as_bytes(),
        0o644,
    )?;
    let retired_dir = dir.join("retired");
    std::fs::create_dir_all(&retired_dir).map_err(|e| Error::io(&retired_dir, e))?;
    let mut retired = Vec::new();
    for (name, der) in [("root", &old_root), ("intermediate", &old_intermediate)] {
        let path = retired_dir.join(retired_name(name, now, der)?);
        write_new_file(&path, cert_pem(der).as_bytes(), 0o644)?;
        retired.push(path);
    }
    write_trust(dir, &rotated)?;
    finish_pending(dir)?;
    Ok(RootRotation {
        old_root_fingerprint: hex(&Sha256::digest(&old_root)),
        new_root_fingerprint: hex(&Sha256::digest(&root_der)),
        new_intermediate_fingerprint: hex(&Sha256::digest(&intermediate_der)),
        at,
        root_key: match root_key_out {
            Some(p) => p.to_path_buf(),
            None => dir.join(files::ROOT_KEY),
        },
        retired,
    })
}

/// What a CT or log key rotation did.
#[derive(Debug, Clone)]
pub struct KeyRotation {
    /// Hex log ID of the retired key.
    pub old_log_id: String,
    /// Hex log ID of the new key.
    pub new_log_id: String,
    /// The rotation time: the old key's window end, the new one's start.
    pub at: String,
}

/// Which P-256 service key a rotation replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKey {
    /// The CT log key (the SCTs of new leaves).
    Ct,
    /// The transparency log key (SETs and checkpoints; the tree goes on).
    Log,
}

impl ServiceKey {
    fn file(self) -> &'static str {
        match self {
            ServiceKey::Ct => files::CT_KEY,
            ServiceKey::Log => files::TLOG_KEY,
        }
    }

    fn what(self) -> &'static str {
        match self {
            ServiceKey::Ct => "CT log",
            ServiceKey::Log => "transparency log",
        }
    }
}

/// Rotates the private CT log key in `dir` at `now`: a new key signs the SCTs
/// of new leaves (see [`rotate_service_key`]).
pub fn rotate_ct_key(dir: &Path, now: SystemTime) -> Result<KeyRotation> {
    rotate_service_key(dir, ServiceKey::Ct, now)
}

/// Rotates the transparency log's key in `dir` at `now`: a new key signs
/// the SETs and checkpoints of everything appended from the switch on; the
/// tree, its origin and its indexes go on (see [`rotate_service_key`]).
pub fn rotate_log_key(dir: &Path, now: SystemTime) -> Result<KeyRotation> {
    rotate_service_key(dir, ServiceKey::Log, now)
}

/// Rotates a P-256 service key: the trusted root lists both keys with their
/// windows, the old one closed at the next whole second after `now` (SCT and
/// entry times may have milliseconds, windows whole seconds), which the call
/// waits for: the caller holds the state lock, so the new key signs nothing
/// before its window and the old nothing after. Crash-safe as
/// [`rotate_intermediate`]: the new key is written as `<key>.next`,
/// `trusted_root.json` is the commit point.
pub fn rotate_service_key(dir: &Path, which: ServiceKey, now: SystemTime) -> Result<KeyRotation> {
    finish_pending(dir)?;
    let old = SigningKey::load(&dir.join(which.file()), Curve::P256, which.what())?;
    let new_key = SigningKey::generate(Curve::P256)?;
    let switch = now
        .checked_add(std::time::Duration::from_millis(999))
        .ok_or_else(|| Error::Issuance("time out of range".into()))?;
    let switch_secs = unix_secs(switch)?;
    let at = crate::ca::chrono_like_rfc3339(switch_secs);
    let (_, trusted) = read_trusted_root(dir)?;
    let rotate = match which {
        ServiceKey::Ct => crate::trust::rotate_ctlog,
        ServiceKey::Log => crate::trust::rotate_tlog,
    };
    let rotated = rotate(&trusted, new_key.public_key_spki(), &at).map_err(Error::Config)?;
    new_key.save_new(&dir.join(next(which.file())))?;
    write_trust(dir, &rotated)?;
    finish_pending(dir)?;
    let switch_at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(switch_secs as u64);
    if let Ok(wait) = switch_at.duration_since(SystemTime::now()) {
        std::thread::sleep(wait);
    }
    Ok(KeyRotation {
        old_log_id: hex(&old.key_id()),
        new_log_id: hex(&new_key.key_id()),
        at,
    })
}

/// Closes the window of the retired intermediate with certificate SHA-256
/// `fingerprint` at `at` (a compromise): `trusted_root.json` and
/// `trust_config.json` are rewritten, the trusted root first.
pub fn revoke_intermediate(dir: &Path, fingerprint: &str, at: &str) -> Result<()> {
    finish_pending(dir)?;
    let (_, trusted) = read_trusted_root(dir)?;
    let revoked = crate::trust::revoke_ca(&trusted, fingerprint, at).map_err(Error::Config)?;
    write_trust(dir, &revoked)
}

/// Closes the window of the retired CT or log key with hex log ID `log_id`
/// at `at` (a compromise), as [`revoke_intermediate`] does.
pub fn revoke_service_key(dir: &Path, which: ServiceKey, log_id: &str, at: &str) -> Result<()> {
    finish_pending(dir)?;
    let (_, trusted) = read_trusted_root(dir)?;
    let list = match which {
        ServiceKey::Ct => "ctlogs",
        ServiceKey::Log => "tlogs",
    };
    let revoked =
        crate::trust::revoke_log_key(&trusted, list, log_id, at).map_err(Error::Config)?;
    write_trust(dir, &revoked)
}

/// `trusted_root.json` as text and parsed.
fn read_trusted_root(dir: &Path) -> Result<(String, serde_json::Value)> {
    let path = dir.join(files::TRUSTED_ROOT);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let value = serde_json::from_str(&text)
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    Ok((text, value))
}

/// Writes `trusted_root.json` (the commit point), then the
/// `trust_config.json` that derives from it.
fn write_trust(dir: &Path, trusted: &serde_json::Value) -> Result<()> {
    replace_file(&dir.join(files::TRUSTED_ROOT), pretty(trusted)?.as_bytes())?;
    write_trust_config(dir, trusted)
}

/// `trust_config.json` from `trusted` (after a crash it may lag the trusted root).
fn write_trust_config(dir: &Path, trusted: &serde_json::Value) -> Result<()> {
    let config = crate::trust::client_trust_config_json(trusted);
    replace_file(&dir.join(files::TRUST_CONFIG), pretty(&config)?.as_bytes())
}

/// Completes or undoes a rotation a crash interrupted (see the module doc).
pub fn finish_pending(dir: &Path) -> Result<()> {
    finish_pending_key(dir, ServiceKey::Ct)?;
    finish_pending_key(dir, ServiceKey::Log)?;
    finish_pending_intermediate(dir)
}

/// A pending `<key>.next` (the CT or the log key) replaces the key when the
/// trusted root lists its public key (the rotation was committed), and is
/// removed otherwise.
fn finish_pending_key(dir: &Path, which: ServiceKey) -> Result<()> {
    let key_next = dir.join(next(which.file()));
    if !key_next.exists() {
        return Ok(());
    }
    let key = SigningKey::load(&key_next, Curve::P256, which.what())?;
    let (text, trusted) = read_trusted_root(dir)?;
    let needle = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        key.public_key_spki(),
    );
    if text.contains(&needle) {
        rename(&key_next, &dir.join(which.file()))?;
        write_trust_config(dir, &trusted)
    } else {
        std::fs::remove_file(&key_next).map_err(|e| Error::io(&key_next, e))
    }
}

fn finish_pending_intermediate(dir: &Path) -> Result<()> {
    let key_next = dir.join(next(files::INTERMEDIATE_KEY));
    let cert_next = dir.join(next(files::INTERMEDIATE_CERT));
    let root_next = [next(files::ROOT_CERT), next(files::ROOT_KEY)];
    if !key_next.exists() && !cert_next.exists() && root_next.iter().all(|n| !dir.join(n).exists())
    {
        return Ok(());
    }
    let committed = cert_next.exists() && {
        let der = read_cert(&cert_next)?;
        let (text, _) = read_trusted_root(dir)?;
        let needle = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der);
        text.contains(&needle)
    };
    // A root rotation also leaves the new root certificate (and, by
    // default, its key) as `.next`; they go with the intermediate.
    let root_cert_next = dir.join(next(files::ROOT_CERT));
    let root_key_next = dir.join(next(files::ROOT_KEY));
    if committed {
        // Whatever is still `.next` moves in (a crash may have cut the
        // renames short); the intermediate certificate, the marker, last.
        if key_next.exists() {
            rename(&key_next, &dir.join(files::INTERMEDIATE_KEY))?;
        }
        if root_key_next.exists() {
            rename(&root_key_next, &dir.join(files::ROOT_KEY))?;
        }
        if root_cert_next.exists() {
            rename(&root_cert_next, &dir.join(files::ROOT_CERT))?;
        }
        rename(&cert_next, &dir.join(files::INTERMEDIATE_CERT))?;
        // trust_config.json follows the trusted root (a crash may have come first).
        write_trust_config(dir, &read_trusted_root(dir)?.1)?;
    } else {
        for p in [&key_next, &cert_next, &root_cert_next, &root_key_next] {
            if p.exists() {
                std::fs::remove_file(p).map_err(|e| Error::io(p, e))?;
            }
        }
    }
    Ok(())
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| Error::io(to, e))?;
    if let Some(parent) = to.parent() {
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Replaces `path` atomically (a temporary file renamed over it), keeping mode 0644.
fn replace_file(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    if tmp.exists() {
        std::fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    write_new_file(&tmp, data, 0o644)?;
    rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A ceremony, and a new intermediate written as `.next` (a rotation cut
    /// short before or after its commit point).
    fn interrupted(commit: bool) -> (tempfile::TempDir, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        crate::init_ceremony(dir.path(), CaConfig::with_defaults("T"), now).unwrap();
        let root_der = read_cert(&dir.path().join(files::ROOT_CERT)).unwrap();
        let key = SigningKey::load(&dir.path().join(files::ROOT_KEY), Curve::P384, "root").unwrap();
        let root =
            Issuer::from_ca_cert_der(&root_der.clone().into(), rcgen_key(&key, "root").unwrap())
                .unwrap();
        let config = CaConfig::load(dir.path()).unwrap();
        let (new_key, new_der) = new_intermediate(&config, offset(now).unwrap(), &root).unwrap();
        new_key
            .save_new(&dir.path().join(next(files::INTERMEDIATE_KEY)))
            .unwrap();
        write_new_file(
            &dir.path().join(next(files::INTERMEDIATE_CERT)),
            cert_pem(&new_der).as_bytes(),
            0o644,
        )
        .unwrap();
        if commit {
            let path = dir.path().join(files::TRUSTED_ROOT);
            let trusted: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let rotated = crate::trust::rotate_ca(
                &trusted,
                &[new_der.clone(), root_der],
                "2026-12-03T00:00:00Z",
            )
            .unwrap();
            replace_file(&path, pretty(&rotated).unwrap().as_bytes()).unwrap();
        }
        (dir, new_der)
    }

    #[test]
    fn a_rotation_cut_short_before_its_commit_is_rolled_back() {
        let (dir, new_der) = interrupted(false);
        let ca = crate::PrivateCa::load(dir.path()).unwrap();
        assert_ne!(ca.intermediate_der(), new_der.as_slice());
        assert!(!dir.path().join(next(files::INTERMEDIATE_KEY)).exists());
        assert!(!dir.path().join(next(files::INTERMEDIATE_CERT)).exists());
    }

    #[test]
    fn a_rotation_cut_short_after_its_commit_is_rolled_forward() {
        let (dir, new_der) = interrupted(true);
        let ca = crate::PrivateCa::load(dir.path()).unwrap();
        assert_eq!(ca.intermediate_der(), new_der.as_slice());
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &new_der);
        let trust_config = std::fs::read_to_string(dir.path().join(files::TRUST_CONFIG)).unwrap();
        assert!(
            trust_config.contains(&b64),
            "trust_config.json follows the trusted root"
        );
    }

    #[test]
    fn a_root_rotation_makes_a_new_authority_and_keeps_the_old_one_windowed() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        crate::init_ceremony(dir.path(), CaConfig::with_defaults("T"), now).unwrap();
        let before = crate::PrivateCa::load(dir.path()).unwrap();
        let (old_root, old_intermediate) = (
            before.root_der().to_vec(),
            before.intermediate_der().to_vec(),
        );
        let out = dir.path().join("offline-root.key.pem");
        let r = rotate_root(dir.path(), Some(&out), now).unwrap();
        assert!(out.exists());
        let after = crate::PrivateCa::load(dir.path()).unwrap();
        assert_ne!(after.root_der(), old_root.as_slice());
        assert_ne!(after.intermediate_der(), old_intermediate.as_slice());
        assert_eq!(
            r.new_root_fingerprint,
            hex(&Sha256::digest(after.root_der()))
        );
        let (_, trusted) = read_trusted_root(dir.path()).unwrap();
        let cas = trusted["certificateAuthorities"].as_array().unwrap();
        assert_eq!(cas.len(), 2);
        assert_eq!(cas[0]["validFor"]["end"], cas[1]["validFor"]["start"]);
        let b64 =
            |der: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
        let chain = |ca: &serde_json::Value| -> Vec<String> {
            ca["certChain"]["certificates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["rawBytes"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(chain(&cas[0]), [b64(&old_intermediate), b64(&old_root)]);
        assert_eq!(
            chain(&cas[1]),
            [b64(after.intermediate_der()), b64(after.root_der())]
        );
        // The new key file is refused as an output a second time.
        assert!(rotate_root(dir.path(), Some(&out), now).is_err());
        // An intermediate rotation now needs the new root's key.
        assert!(rotate_intermediate(dir.path(), &dir.path().join(files::ROOT_KEY), now).is_err());
        rotate_intermediate(dir.path(), &out, now).unwrap();
    }

    #[test]
    fn a_root_rotation_cut_short_rolls_back_before_its_commit_and_forward_after() {
        for commit in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let now = SystemTime::now();
            crate::init_ceremony(dir.path(), CaConfig::with_defaults("T"), now).unwrap();
            let old_root = read_cert(&dir.path().join(files::ROOT_CERT)).unwrap();
            let config = CaConfig::load(dir.path()).unwrap();
            let start = offset(now).unwrap();
            let (root_key, root_der, issuer) = new_root(&config, start).unwrap();
            let (key, der) = new_intermediate(&config, start, &issuer).unwrap();
            root_key
                .save_new(&dir.path().join(next(files::ROOT_KEY)))
                .unwrap();
            key.save_new(&dir.path().join(next(files::INTERMEDIATE_KEY)))
                .unwrap();
            for (name, d) in [
                (files::INTERMEDIATE_CERT, &der),
                (files::ROOT_CERT, &root_der),
            ] {
                write_new_file(&dir.path().join(next(name)), cert_pem(d).as_bytes(), 0o644)
                    .unwrap();
            }
            if commit {
                // Cut short after the commit and after the first rename.
                let (_, trusted) = read_trusted_root(dir.path()).unwrap();
                let rotated = crate::trust::rotate_ca(
                    &trusted,
                    &[der.clone(), root_der.clone()],
                    "2026-12-03T00:00:00Z",
                )
                .unwrap();
                write_trust(dir.path(), &rotated).unwrap();
                rename(
                    &dir.path().join(next(files::INTERMEDIATE_KEY)),
                    &dir.path().join(files::INTERMEDIATE_KEY),
                )
                .unwrap();
            }
            let ca = crate::PrivateCa::load(dir.path()).unwrap();
            let expected_root = if commit { &root_der } else { &old_root };
            assert_eq!(ca.root_der(), expected_root.as_slice(), "commit {commit}");
            assert_eq!(ca.intermediate_der() == der.as_slice(), commit);
            for name in [
                files::ROOT_CERT,
                files::ROOT_KEY,
                files::INTERMEDIATE_CERT,
                files::INTERMEDIATE_KEY,
            ] {
                assert!(
                    !dir.path().join(next(name)).exists(),
                    "{name}.next left, commit {commit}"
                );
            }
        }
    }
}
