//! The CA: ceremony (root, intermediate, CT and log keys), and Fulcio-profile
//! leaf issuance with an embedded SCT from the private CT signer.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
    PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::der;
use crate::keys::{write_new_file, Curve, SigningKey};
use crate::sct::{encode_sct_list, precert_signed_data, SignedCertificateTimestamp};
use crate::{Error, Result};

/// OID of the Fulcio OIDC issuer extension (raw string, deprecated form).
pub const OID_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";
/// OID of the Fulcio OIDC issuer extension (DER UTF8String).
pub const OID_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
/// OID of the RFC 6962 embedded SCT list extension.
pub const OID_SCT_LIST: &str = "1.3.6.1.4.1.11129.2.4.2";
/// OID of the RFC 6962 precertificate poison extension.
pub const OID_CT_POISON: &str = "1.3.6.1.4.1.11129.2.4.3";
/// airgate's OID arc: 2.25 + the UUID b4395fe4-6883-47df-8562-d11f36c28f88 (ITU-T X.667).
pub const OID_AIRGATE_ARC: &str = "2.25.239558945087499892173515845696179310472";
/// The custody extension: who signed the artifact upstream (see the README).
pub const OID_CUSTODY: &str = "2.25.239558945087499892173515845696179310472.1";

/// Placeholder OID rcgen writes (its OID type cannot hold 128-bit arcs); rewritten to
/// [`OID_CUSTODY`] before the TBS is signed.
const CUSTODY_PLACEHOLDER: &[u64] = &[1, 3, 6, 1, 4, 1, 0, 48879, 57005, 1];

/// File names inside a CA directory.
pub mod files {
    /// Public configuration (JSON).
    pub const CONFIG: &str = "ca.json";
    /// Root certificate (PEM).
    pub const ROOT_CERT: &str = "root.crt.pem";
    /// Root private key (PKCS#8 PEM, 0600; needed only for ceremonies).
    pub const ROOT_KEY: &str = "root.key.pem";
    /// Intermediate certificate (PEM).
    pub const INTERMEDIATE_CERT: &str = "intermediate.crt.pem";
    /// Intermediate private key (PKCS#8 PEM, 0600).
    pub const INTERMEDIATE_KEY: &str = "intermediate.key.pem";
    /// Private CT log key (PKCS#8 PEM, 0600).
    pub const CT_KEY: &str = "ctlog.key.pem";
    /// Transparency log key (PKCS#8 PEM, 0600).
    pub const TLOG_KEY: &str = "tlog.key.pem";
    /// Public trusted root for clients.
    pub const TRUSTED_ROOT: &str = "trusted_root.json";
    /// sigstore-python ClientTrustConfig.
    pub const TRUST_CONFIG: &str = "trust_config.json";
}

/// The CA's public configuration, written by the ceremony.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    /// Organization name on the CA certificates.
    pub name: String,
    /// URI of the CA (`certificateAuthorities[].uri`).
    pub ca_url: String,
    /// The OIDC issuer recorded in leaves (extensions .1.1 and .1.8).
    pub oidc_issuer: String,
    /// The default signing identity (a URI or an email address).
    pub default_identity: String,
    /// Base URL of the transparency log (its host names checkpoint signatures).
    pub tlog_url: String,
    /// Base URL of the CT log.
    pub ctlog_url: String,
    /// Start of validity of everything in the trusted root (RFC 3339).
    pub valid_from: String,
    /// Leaf certificate lifetime in seconds.
    pub leaf_validity_secs: u64,
}

impl CaConfig {
    /// Reads and validates `ca.json` from a state directory (public; no key needed).
    pub fn load(dir: &Path) -> Result<Self> {
        let config_path = dir.join(files::CONFIG);
        let text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
        let config: CaConfig = serde_json::from_str(&text)
            .map_err(|e| Error::Config(format!("{}: {e}", config_path.display())))?;
        config.validate()?;
        Ok(config)
    }

    /// A configuration with airgate defaults for `name`.
    pub fn with_defaults(name: &str) -> Self {
        CaConfig {
            name: name.to_string(),
            ca_url: "https://fulcio.airgate.internal".into(),
            oidc_issuer: "https://oidc.airgate.internal".into(),
            default_identity: "https://airgate.internal/gateway".into(),
            tlog_url: "https://tlog.airgate.internal".into(),
            ctlog_url: "https://ctlog.airgate.internal".into(),
            valid_from: String::new(),
            leaf_validity_secs: 600,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() || self.name.len() > 64 {
            return Err(Error::Config("name must be 1 to 64 characters".into()));
        }
        for (field, url) in [
            ("ca_url", &self.ca_url),
            ("oidc_issuer", &self.oidc_issuer),
            ("tlog_url", &self.tlog_url),
            ("ctlog_url", &self.ctlog_url),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://"))
                || url.contains(char::is_whitespace)
            {
                return Err(Error::Config(format!(
                    "{field} {url:?} is not an http(s) URL"
                )));
            }
        }
        SigningIdentity::parse(&self.default_identity)?;
        if !(60..=86_400).contains(&self.leaf_validity_secs) {
            return Err(Error::Config(
                "leaf_validity_secs must be between 60 and 86400".into(),
            ));
        }
        Ok(())
    }
}

/// The identity a leaf certificate names in its SAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningIdentity {
    /// A URI SAN.
    Uri(String),
    /// An rfc822Name (email) SAN.
    Email(String),
}

impl SigningIdentity {
    /// `scheme://...` becomes a URI SAN, `user@host` an email SAN.
    pub fn parse(text: &str) -> Result<Self> {
        if text.is_empty()
            || text.len() > 1024
            || text.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(Error::Config(format!(
                "identity {text:?} is empty, too long or has spaces"
            )));
        }
        if text.contains("://") {
            Ok(SigningIdentity::Uri(text.to_string()))
        } else if text.contains('@') {
            Ok(SigningIdentity::Email(text.to_string()))
        } else {
            Err(Error::Config(format!(
                "identity {text:?} is neither a URI nor an email address"
            )))
        }
    }

    /// The identity text.
    pub fn as_str(&self) -> &str {
        match self {
            SigningIdentity::Uri(s) | SigningIdentity::Email(s) => s,
        }
    }
}

/// Who signed an imported artifact upstream, recorded in the custody extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Custody {
    /// Upstream signer identity (SAN), or `key:sha256:<hex>` for managed keys.
    pub upstream_identity: String,
    /// Upstream OIDC issuer (empty for managed keys).
    pub upstream_issuer: String,
    /// Upstream transparency log index, when the leaf signs exactly one
    /// artifact (a session leaf shared by several leaves it to their VSAs).
    pub upstream_log_index: Option<u64>,
}

impl Custody {
    /// DER: `SEQUENCE { identity UTF8String, issuer UTF8String, logIndex INTEGER OPTIONAL }`.
    pub fn to_der(&self) -> Vec<u8> {
        let mut body = der::encode_tlv(der::UTF8_STRING, self.upstream_identity.as_bytes());
        body.extend(der::encode_tlv(
            der::UTF8_STRING,
            self.upstream_issuer.as_bytes(),
        ));
        if let Some(index) = self.upstream_log_index {
            body.extend(der::encode_tlv(der::INTEGER, &encode_unsigned(index)));
        }
        der::encode_tlv(der::SEQUENCE, &body)
    }

    /// Parses the extension value written by [`Custody::to_der`].
    pub fn from_der(bytes: &[u8]) -> Option<Self> {
        let seq = der::parse_single(bytes, der::SEQUENCE, "custody").ok()?;
        let mut r = seq.reader();
        let identity = r.read(der::UTF8_STRING, "identity").ok()?;
        let issuer = r.read(der::UTF8_STRING, "issuer").ok()?;
        let index = match r.read_optional(der::INTEGER, "logIndex").ok()? {
            Some(index) => Some(der::integer_to_u64(index.content)?),
            None => None,
        };
        r.finish("custody").ok()?;
        Some(Custody {
            upstream_identity: String::from_utf8(identity.content.to_vec()).ok()?,
            upstream_issuer: String::from_utf8(issuer.content.to_vec()).ok()?,
            upstream_log_index: index,
        })
    }
}

fn encode_unsigned(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    let mut out = bytes[skip..].to_vec();
    if out[0] & 0x80 != 0 {
        out.insert(0, 0);
    }
    out
}

/// A request for a leaf certificate.
#[derive(Debug, Clone)]
pub struct LeafRequest {
    /// The SAN.
    pub identity: SigningIdentity,
    /// Custody record, for re-signed imports.
    pub custody: Option<Custody>,
}

/// A freshly issued leaf with its one-use signing key.
#[derive(Debug)]
pub struct IssuedLeaf {
    /// The final certificate (DER), carrying one embedded SCT.
    pub certificate_der: Vec<u8>,
    /// The precertificate (DER, poisoned) the SCT was issued for.
    pub precertificate_der: Vec<u8>,
    /// The SCT timestamp (ms since the epoch).
    pub sct_timestamp_ms: u64,
    /// The leaf's private key (P-256), for one signing session.
    pub key: SigningKey,
}

/// Summary of a ceremony (public facts only).
#[derive(Debug, Clone)]
pub struct CeremonySummary {
    /// The CA directory.
    pub dir: PathBuf,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Hex SHA-256 of the root certificate.
    pub root_fingerprint: String,
    /// Hex log ID of the transparency log key.
    pub tlog_id: String,
    /// Hex log ID of the CT log key.
    pub ctlog_id: String,
}

pub(crate) fn unix_secs(t: SystemTime) -> Result<i64> {
    let d = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::Issuance("time before 1970".into()))?;
    i64::try_from(d.as_secs()).map_err(|_| Error::Issuance("time out of range".into()))
}

pub(crate) fn offset(t: SystemTime) -> Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(unix_secs(t)?)
        .map_err(|e| Error::Issuance(e.to_string()))
}

fn random_serial() -> SerialNumber {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 20];
    // A failing RNG leaves zeros; the top-bit clear + nonzero first byte keep it valid.
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

pub(crate) fn rcgen_key(key: &SigningKey, what: &'static str) -> Result<KeyPair> {
    let alg = match key.curve() {
        Curve::P256 => &PKCS_ECDSA_P256_SHA256,
        Curve::P384 => &PKCS_ECDSA_P384_SHA384,
    };
    let der = key.pkcs8_der()?;
    KeyPair::from_pkcs8_der_and_sign_algo(&der.into(), alg).map_err(|e| Error::Key {
        what,
        problem: e.to_string(),
    })
}

fn dn(organization: &str, common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, organization);
    dn.push(DnType::CommonName, common_name);
    dn
}

pub(crate) fn cert_pem(der_bytes: &[u8]) -> String {
    crate::pem::encode("CERTIFICATE", der_bytes)
}

/// Runs the key ceremony in `dir`: root (P-384), intermediate (P-384), CT log key and
/// transparency log key (P-256), plus `trusted_root.json` and `trust_config.json`.
/// Refuses to overwrite anything already there.
pub fn init_ceremony(dir: &Path, mut config: CaConfig, now: SystemTime) -> Result<CeremonySummary> {
    config.validate()?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    if let Some(entry) = entries.next() {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        return Err(Error::NotEmpty {
            dir: dir.to_path_buf(),
            found: entry
                .file_name()
                .to_string_lossy()
                .escape_debug()
                .to_string(),
        });
    }
    let start = offset(now)?;
    config.valid_from = chrono_like_rfc3339(unix_secs(now)?);

    let (root_key, root_der, root_issuer) = new_root(&config, start)?;
    let (intermediate_key, inter_der) = new_intermediate(&config, start, &root_issuer)?;

    let ct_key = SigningKey::generate(Curve::P256)?;
    let tlog_key = SigningKey::generate(Curve::P256)?;

    let trusted_root = crate::trust::trusted_root_json(
        &config,
        &[inter_der.clone(), root_der.clone()],
        tlog_key.public_key_spki(),
        ct_key.public_key_spki(),
    );
    let trust_config = crate::trust::client_trust_config_json(&trusted_root);

    let mut written = Vec::new();
    // Private keys first, so a crash never leaves public material without its keys.
    let key_files = [
        (files::ROOT_KEY, &root_key),
        (files::INTERMEDIATE_KEY, &intermediate_key),
        (files::CT_KEY, &ct_key),
        (files::TLOG_KEY, &tlog_key),
    ];
    for (name, key) in key_files {
        key.save_new(&dir.join(name))?;
        written.push(dir.join(name));
    }
    let config_json = serde_json::to_value(&config).map_err(|e| Error::Config(e.to_string()))?;
    let public_files = [
        (files::ROOT_CERT, cert_pem(&root_der)),
        (files::INTERMEDIATE_CERT, cert_pem(&inter_der)),
        (files::TRUSTED_ROOT, pretty(&trusted_root)?),
        (files::TRUST_CONFIG, pretty(&trust_config)?),
        // The config last: its presence marks a complete ceremony.
        (files::CONFIG, pretty(&config_json)?),
    ];
    for (name, text) in public_files {
        write_new_file(&dir.join(name), text.as_bytes(), 0o644)?;
        written.push(dir.join(name));
    }

    Ok(CeremonySummary {
        dir: dir.to_path_buf(),
        files: written,
        root_fingerprint: hex(&Sha256::digest(&root_der)),
        tlog_id: hex(&tlog_key.key_id()),
        ctlog_id: hex(&ct_key.key_id()),
    })
}

/// A fresh root key (P-384) and its self-signed certificate, valid from
/// `start` for twenty years, with the issuer that signs intermediates (the
/// ceremony's and every root rotation's).
pub(crate) fn new_root(
    config: &CaConfig,
    start: time::OffsetDateTime,
) -> Result<(SigningKey, Vec<u8>, Issuer<'static, rcgen::KeyPair>)> {
    let root_key = SigningKey::generate(Curve::P384)?;
    let mut root_params = CertificateParams::default();
    root_params.distinguished_name = dn(&config.name, &format!("{} root", config.name));
    root_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root_params.not_before = start;
    root_params.not_after = start + Duration::from_secs(20 * 365 * 86_400);
    root_params.serial_number = Some(random_serial());
    let root_rcgen = rcgen_key(&root_key, "root")?;
    let root_cert = root_params
        .self_signed(&root_rcgen)
        .map_err(|e| Error::Issuance(e.to_string()))?;
    let der = root_cert.der().to_vec();
    Ok((root_key, der, Issuer::new(root_params, root_rcgen)))
}

/// A fresh intermediate key and its certificate, signed by `root` and valid
/// from `start` for ten years (the ceremony's and every rotation's).
pub(crate) fn new_intermediate<S: rcgen::SigningKey>(
    config: &CaConfig,
    start: time::OffsetDateTime,
    root: &Issuer<'_, S>,
) -> Result<(SigningKey, Vec<u8>)> {
    let key = SigningKey::generate(Curve::P256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(&config.name, &format!("{} intermediate", config.name));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    params.use_authority_key_identifier_extension = true;
    params.not_before = start;
    params.not_after = start + Duration::from_secs(10 * 365 * 86_400);
    params.serial_number = Some(random_serial());
    let rcgen = rcgen_key(&key, "intermediate")?;
    let cert = params
        .signed_by(&rcgen, root)
        .map_err(|e| Error::Issuance(e.to_string()))?;
    Ok((key, cert.der().to_vec()))
}

pub(crate) fn pretty(value: &serde_json::Value) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| Error::Config(e.to_string()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3339 UTC with seconds precision, from unix seconds.
pub(crate) fn chrono_like_rfc3339(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "1970-01-01T00:00:00Z".into(),
    }
}

/// A loaded private CA, ready to issue leaves.
pub struct PrivateCa {
    config: CaConfig,
    dir: PathBuf,
    root_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    intermediate_spki_hash: [u8; 32],
    issuer: Issuer<'static, DeferredSigner>,
    intermediate_key: SigningKey,
    ct_key: SigningKey,
}

/// The intermediate's public half for rcgen: rcgen assembles the TBS, and airgate
/// signs the final TBS itself (after rewriting the custody OID), so rcgen's own
/// signature is never computed.
struct DeferredSigner {
    point: Vec<u8>,
}

impl rcgen::PublicKeyData for DeferredSigner {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for DeferredSigner {
    fn sign(&self, _msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        Ok(Vec::new())
    }
}

/// A leaf's public key for rcgen.
struct LeafPublicKey<'a> {
    point: &'a [u8],
}

impl rcgen::PublicKeyData for LeafPublicKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.point
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

impl std::fmt::Debug for PrivateCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateCa")
            .field("name", &self.config.name)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

pub(crate) fn read_cert(path: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    crate::pem::decode(&text, "CERTIFICATE")
        .ok_or_else(|| Error::Config(format!("{} is not a PEM certificate", path.display())))
}

impl PrivateCa {
    /// Loads the CA from the directory a ceremony wrote (the root key is not needed).
    pub fn load(dir: &Path) -> Result<Self> {
        crate::rotate::finish_pending(dir)?;
        let config = CaConfig::load(dir)?;
        let root_der = read_cert(&dir.join(files::ROOT_CERT))?;
        let intermediate_der = read_cert(&dir.join(files::INTERMEDIATE_CERT))?;
        let intermediate_key = SigningKey::load(
            &dir.join(files::INTERMEDIATE_KEY),
            Curve::P256,
            "intermediate",
        )?;
        let ct_key = SigningKey::load(&dir.join(files::CT_KEY), Curve::P256, "CT log")?;
        let spki = crate::der_cert::spki(&intermediate_der)
            .ok_or_else(|| Error::Config("intermediate certificate is malformed".into()))?;
        if spki != intermediate_key.public_key_spki() {
            return Err(Error::Key {
                what: "intermediate",
                problem: "does not match the intermediate certificate".into(),
            });
        }
        let intermediate_spki_hash = Sha256::digest(spki).into();
        let deferred = DeferredSigner {
            point: intermediate_key.public_point().to_vec(),
        };
        let issuer = Issuer::from_ca_cert_der(&intermediate_der.clone().into(), deferred)
            .map_err(|e| Error::Config(format!("intermediate certificate: {e}")))?;
        Ok(PrivateCa {
            config,
            dir: dir.to_path_buf(),
            root_der,
            intermediate_der,
            intermediate_spki_hash,
            issuer,
            intermediate_key,
            ct_key,
        })
    }

    /// The CA configuration.
    pub fn config(&self) -> &CaConfig {
        &self.config
    }

    /// Root certificate (DER).
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// Intermediate certificate (DER).
    pub fn intermediate_der(&self) -> &[u8] {
        &self.intermediate_der
    }

    /// Issues a leaf for `request` at `now`: fresh P-256 key, Fulcio extensions,
    /// custody extension if given, and exactly one embedded SCT.
    pub fn issue_leaf(&self, request: &LeafRequest, now: SystemTime) -> Result<IssuedLeaf> {
        let now_secs = unix_secs(now)?;
        let not_before = offset(now)?;
        let leaf_key = SigningKey::generate(Curve::P256)?;
        let leaf_public = LeafPublicKey {
            point: leaf_key.public_point(),
        };

        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.serial_number = Some(random_serial());
        params.not_before = not_before;
        params.not_after = not_before + Duration::from_secs(self.config.leaf_validity_secs);
        params.subject_alt_names = vec![match &request.identity {
            SigningIdentity::Uri(u) => SanType::URI(
                u.as_str()
                    .try_into()
                    .map_err(|e: rcgen::Error| Error::Issuance(e.to_string()))?,
            ),
            SigningIdentity::Email(e) => SanType::Rfc822Name(
                e.as_str()
                    .try_into()
                    .map_err(|e: rcgen::Error| Error::Issuance(e.to_string()))?,
            ),
        }];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        params.use_authority_key_identifier_extension = true;
        params.is_ca = IsCa::NoCa;
        let issuer_bytes = self.config.oidc_issuer.as_bytes();
        let mut extensions = vec![
            CustomExtension::from_oid_content(&oid_arcs(OID_ISSUER_V1)?, issuer_bytes.to_vec()),
            CustomExtension::from_oid_content(
                &oid_arcs(OID_ISSUER_V2)?,
                der::encode_tlv(der::UTF8_STRING, issuer_bytes),
            ),
        ];
        if let Some(custody) = &request.custody {
            extensions.push(CustomExtension::from_oid_content(
                CUSTODY_PLACEHOLDER,
                custody.to_der(),
            ));
        }

        // 1. The precertificate: same TBS plus the critical poison extension.
        let mut poison = CustomExtension::from_oid_content(
            &oid_arcs(OID_CT_POISON)?,
            der::encode_tlv(der::NULL, &[]),
        );
        poison.set_criticality(true);
        params.custom_extensions = extensions
            .iter()
            .cloned()
            .chain(std::iter::once(poison))
            .collect();
        let precert = self.sign_params(&params, &leaf_public)?;

        // 2. The SCT covers the precertificate TBS without the poison.
        let precert_tbs = crate::der_cert::tbs(&precert)
            .ok_or_else(|| Error::Issuance("precertificate TBS".into()))?;
        let signed_tbs = crate::der_cert::tbs_without_extension(precert_tbs, OID_CT_POISON)
            .map_err(|e| Error::Issuance(format!("precertificate: {e}")))?;
        let timestamp_ms = u64::try_from(now_secs).map_err(|_| Error::Issuance("time".into()))?
            * 1000
            + u64::from(
                now.duration_since(UNIX_EPOCH)
                    .map(|d| d.subsec_millis())
                    .unwrap_or(0),
            );
        let data =
            precert_signed_data(timestamp_ms, &self.intermediate_spki_hash, &signed_tbs, &[])
                .map_err(|e| Error::Issuance(e.to_string()))?;
        let sct = SignedCertificateTimestamp {
            version: 0,
            log_id: self.ct_key.key_id(),
            timestamp_ms,
            extensions: Vec::new(),
            hash_algorithm: 4,
            signature_algorithm: 3,
            signature: self.ct_key.sign(&data)?,
        };

        // 3. The final certificate: the SCT list where the poison was.
        let mut sct_ext = CustomExtension::from_oid_content(
            &oid_arcs(OID_SCT_LIST)?,
            der::encode_tlv(der::OCTET_STRING, &encode_sct_list(&[sct])),
        );
        sct_ext.set_criticality(false);
        params.custom_extensions = extensions
            .into_iter()
            .chain(std::iter::once(sct_ext))
            .collect();
        let certificate = self.sign_params(&params, &leaf_public)?;

        // Self-check: verifiers will rebuild exactly the TBS the CT signer signed.
        let final_tbs = crate::der_cert::tbs(&certificate)
            .ok_or_else(|| Error::Issuance("certificate TBS".into()))?;
        let rebuilt = crate::der_cert::tbs_without_extension(final_tbs, OID_SCT_LIST)
            .map_err(|e| Error::Issuance(format!("certificate: {e}")))?;
        if rebuilt != signed_tbs {
            return Err(Error::Issuance(
                "final certificate TBS differs from the precertificate TBS; the SCT would not verify".into(),
            ));
        }
        Ok(IssuedLeaf {
            certificate_der: certificate,
            precertificate_der: precert,
            sct_timestamp_ms: timestamp_ms,
            key: leaf_key,
        })
    }

    /// Assembles `params` with rcgen, rewrites the custody placeholder OID, and
    /// signs the TBS once with the intermediate key.
    fn sign_params(&self, params: &CertificateParams, leaf: &LeafPublicKey<'_>) -> Result<Vec<u8>> {
        let cert = params
            .signed_by(leaf, &self.issuer)
            .map_err(|e| Error::Issuance(e.to_string()))?;
        let placeholder = placeholder_oid_der()?;
        let custody = der::oid_from_dotted(OID_CUSTODY)
            .ok_or_else(|| Error::Issuance("custody OID".into()))?;
        crate::der_cert::resign(cert.der(), Some((&placeholder, &custody)), |tbs| {
            self.intermediate_key.sign(tbs)
        })
    }
}

fn placeholder_oid_der() -> Result<Vec<u8>> {
    let dotted = CUSTODY_PLACEHOLDER
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".");
    der::oid_from_dotted(&dotted).ok_or_else(|| Error::Issuance("placeholder OID".into()))
}

fn oid_arcs(dotted: &str) -> Result<Vec<u64>> {
    dotted
        .split('.')
        .map(|a| {
            a.parse::<u64>()
                .map_err(|_| Error::Issuance(format!("OID {dotted} has an arc over 64 bits")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use x509_parser::prelude::FromDer;

    fn ceremony() -> (tempfile::TempDir, PrivateCa) {
        let dir = tempfile::tempdir().unwrap();
        init_ceremony(
            dir.path(),
            CaConfig::with_defaults("Test Enclave"),
            SystemTime::now(),
        )
        .unwrap();
        let ca = PrivateCa::load(dir.path()).unwrap();
        (dir, ca)
    }

    #[test]
    fn ceremony_refuses_to_overwrite() {
        let (dir, _) = ceremony();
        let err = init_ceremony(
            dir.path(),
            CaConfig::with_defaults("Again"),
            SystemTime::now(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::NotEmpty { .. }));
    }

    #[test]
    fn ceremony_refuses_a_non_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes\n.txt"), b"x").unwrap();
        let err =
            init_ceremony(dir.path(), CaConfig::with_defaults("X"), SystemTime::now()).unwrap_err();
        assert!(err.to_string().contains("notes\\n.txt"), "{err}");
    }

    #[test]
    fn leaf_has_the_fulcio_profile_custody_and_one_sct() {
        let (_dir, ca) = ceremony();
        let custody = Custody {
            upstream_identity:
                "https://github.com/org/repo/.github/workflows/release.yml@refs/tags/v1".into(),
            upstream_issuer: "https://token.actions.githubusercontent.com".into(),
            upstream_log_index: Some(123_456_789),
        };
        let leaf = ca
            .issue_leaf(
                &LeafRequest {
                    identity: SigningIdentity::parse("https://airgate.internal/gateway").unwrap(),
                    custody: Some(custody.clone()),
                },
                SystemTime::now(),
            )
            .unwrap();
        let (rest, cert) =
            x509_parser::certificate::X509Certificate::from_der(&leaf.certificate_der).unwrap();
        assert!(rest.is_empty());
        assert!(cert.subject().as_raw().len() <= 2, "subject must be empty");
        let by_oid = |oid: &str| {
            cert.extensions()
                .iter()
                .find(|e| der::oid_to_string(e.oid.as_bytes()).as_deref() == Some(oid))
        };
        assert!(
            by_oid("2.5.29.17").unwrap().critical,
            "SAN must be critical"
        );
        assert!(
            by_oid("2.5.29.15").unwrap().critical,
            "KeyUsage must be critical"
        );
        assert!(
            cert.extended_key_usage()
                .unwrap()
                .unwrap()
                .value
                .code_signing
        );
        assert_eq!(
            by_oid(OID_ISSUER_V1).unwrap().value,
            b"https://oidc.airgate.internal"
        );
        assert_eq!(
            by_oid(OID_ISSUER_V2).unwrap().value,
            der::encode_tlv(der::UTF8_STRING, b"https://oidc.airgate.internal").as_slice()
        );
        let custody_ext = by_oid(OID_CUSTODY).expect("custody extension");
        assert!(!custody_ext.critical);
        assert_eq!(Custody::from_der(custody_ext.value).unwrap(), custody);
        assert!(by_oid(OID_SCT_LIST).is_some());
        assert!(by_oid(OID_CT_POISON).is_none());
        // The precertificate carries the poison instead.
        let (_, pre) =
            x509_parser::certificate::X509Certificate::from_der(&leaf.precertificate_der).unwrap();
        assert!(pre
            .extensions()
            .iter()
            .any(
                |e| der::oid_to_string(e.oid.as_bytes()).as_deref() == Some(OID_CT_POISON)
                    && e.critical
            ));
        // The leaf verifies under the intermediate.
        let (_, inter) =
            x509_parser::certificate::X509Certificate::from_der(ca.intermediate_der()).unwrap();
        assert_eq!(cert.issuer().as_raw(), inter.subject().as_raw());
        assert!(cert.validity().time_to_expiration().is_some());
    }

    #[test]
    fn custody_der_round_trips() {
        let c = Custody {
            upstream_identity: "a@b.c".into(),
            upstream_issuer: "".into(),
            upstream_log_index: Some(0),
        };
        assert_eq!(Custody::from_der(&c.to_der()).unwrap(), c);
        let c = Custody {
            upstream_log_index: Some(u64::MAX),
            ..c
        };
        assert_eq!(Custody::from_der(&c.to_der()).unwrap(), c);
        let session = Custody {
            upstream_log_index: None,
            ..c
        };
        assert_eq!(Custody::from_der(&session.to_der()).unwrap(), session);
        assert!(Custody::from_der(b"\x30\x00").is_none());
    }

    #[test]
    fn identities_parse() {
        assert!(matches!(
            SigningIdentity::parse("a@b.c").unwrap(),
            SigningIdentity::Email(_)
        ));
        assert!(matches!(
            SigningIdentity::parse("https://x/y").unwrap(),
            SigningIdentity::Uri(_)
        ));
        assert!(SigningIdentity::parse("plain").is_err());
        assert!(SigningIdentity::parse("a b@c").is_err());
    }
}
