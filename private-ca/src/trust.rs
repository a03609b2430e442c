//! The public trust material: `trusted_root.json` and sigstore-python's
//! `trust_config.json`, in the exact shape real clients accept (see INTEROP).

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::ca::CaConfig;

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Media type of trusted roots.
pub const TRUSTED_ROOT_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1";

/// Builds `trusted_root.json` for the private stack. `chain` is intermediate(s) then root.
pub fn trusted_root_json(
    config: &CaConfig,
    chain: &[Vec<u8>],
    tlog_spki: &[u8],
    ctlog_spki: &[u8],
) -> Value {
    let log = |url: &str, spki: &[u8]| {
        json!({
            "baseUrl": url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64(spki),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": config.valid_from},
            },
            "logId": {"keyId": b64(&Sha256::digest(spki))},
        })
    };
    json!({
        "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
        "tlogs": [log(&config.tlog_url, tlog_spki)],
        "certificateAuthorities": [{
            "subject": {"organization": config.name, "commonName": format!("{} root", config.name)},
            "uri": config.ca_url,
            "certChain": {"certificates": chain.iter().map(|c| json!({"rawBytes": b64(c)})).collect::<Vec<_>>()},
            "validFor": {"start": config.valid_from},
        }],
        "ctlogs": [log(&config.ctlog_url, ctlog_spki)],
        "timestampAuthorities": [],
    })
}

/// Target name of the signing config in the private TUF repository (the name
/// sigstore-python and sigstore-js look up).
pub const SIGNING_CONFIG_TARGET: &str = "signing_config.v0.2.json";

/// The enclave's SigningConfig v0.2 (protobuf-specs): the CA, the OIDC issuer
/// and the log by URL, each valid from the CA's start; no TSA. Clients that
/// bootstrap over TUF require it; airgate signs locally (`airgate sign`,
/// import), so these URLs name the services as the trusted root does.
pub fn signing_config_json(config: &CaConfig) -> Value {
    let service = |url: &str| {
        json!({
            "url": url,
            "majorApiVersion": 1,
            "validFor": {"start": config.valid_from},
            "operator": config.name,
        })
    };
    json!({
        "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
        "caUrls": [service(&config.ca_url)],
        "oidcUrls": [service(&config.oidc_issuer)],
        "rekorTlogUrls": [service(&config.tlog_url)],
        "tsaUrls": [],
        "rekorTlogConfig": {"selector": "ANY"},
        "tsaConfig": {"selector": "ANY"},
    })
}

/// Wraps a trusted root in a sigstore-python ClientTrustConfig.
pub fn client_trust_config_json(trusted_root: &Value) -> Value {
    json!({
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": trusted_root,
        "signingConfig": {"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json"},
    })
}
