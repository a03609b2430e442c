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

/// `trusted_root.json` after an intermediate rotation at `at` (RFC 3339):
/// every CA entry still open gets `validFor.end = at`, and a new entry for
/// `chain` (new intermediate, then root) opens at `at` with the same
/// subject and URI. Everything signed before `at` still verifies under the
/// old entry; leaves from the new key chain to the new one.
pub fn rotate_ca(trusted_root: &Value, chain: &[Vec<u8>], at: &str) -> Result<Value, String> {
    let mut root = trusted_root.clone();
    let cas = root
        .get_mut("certificateAuthorities")
        .and_then(Value::as_array_mut)
        .ok_or("trusted_root.json has no certificateAuthorities")?;
    let open: Vec<usize> = cas
        .iter()
        .enumerate()
        .filter(|(_, ca)| ca.pointer("/validFor/end").is_none())
        .map(|(i, _)| i)
        .collect();
    let Some(&last) = open.last() else {
        return Err("trusted_root.json has no open certificate authority to rotate".into());
    };
    let mut next = cas[last].clone();
    for i in open {
        if let Some(window) = cas[i].get_mut("validFor").and_then(Value::as_object_mut) {
            window.insert("end".into(), json!(at));
        }
    }
    next["certChain"] = json!({"certificates": chain.iter().map(|c| json!({"rawBytes": b64(c)})).collect::<Vec<_>>()});
    next["validFor"] = json!({"start": at});
    cas.push(next);
    Ok(root)
}

/// `trusted_root.json` after a CT log key rotation at `at` (RFC 3339): every
/// CT log key still open gets `publicKey.validFor.end = at`, and a new entry
/// for `spki` (same base URL, its own log ID) opens at `at`. SCTs the old key
/// issued before `at` still verify; new leaves carry SCTs from the new key.
pub fn rotate_ctlog(trusted_root: &Value, spki: &[u8], at: &str) -> Result<Value, String> {
    rotate_key_list(trusted_root, "ctlogs", "CT log", spki, at)
}

/// `trusted_root.json` after a transparency-log key rotation at `at` (RFC
/// 3339): every open key of the log gets `publicKey.validFor.end = at`, and
/// a new entry for `spki` (same base URL, its own log ID) opens at `at`.
/// The tree goes on: entries the old key signed before `at` keep verifying
/// (their SETs and checkpoints name the old log ID), new entries and
/// checkpoints are the new key's.
pub fn rotate_tlog(trusted_root: &Value, spki: &[u8], at: &str) -> Result<Value, String> {
    rotate_key_list(trusted_root, "tlogs", "transparency log", spki, at)
}

/// Closes every open key of `list` (`ctlogs` or `tlogs`) at `at` and adds
/// `spki` opening then, with the last open entry's other fields.
fn rotate_key_list(
    trusted_root: &Value,
    list: &str,
    what: &str,
    spki: &[u8],
    at: &str,
) -> Result<Value, String> {
    let mut root = trusted_root.clone();
    let logs = root
        .get_mut(list)
        .and_then(Value::as_array_mut)
        .ok_or_else(|| format!("trusted_root.json has no {list}"))?;
    let open: Vec<usize> = logs
        .iter()
        .enumerate()
        .filter(|(_, log)| log.pointer("/publicKey/validFor/end").is_none())
        .map(|(i, _)| i)
        .collect();
    let Some(&last) = open.last() else {
        return Err(format!(
            "trusted_root.json has no open {what} key to rotate"
        ));
    };
    let mut next = logs[last].clone();
    for i in open {
        if let Some(window) = logs[i]
            .pointer_mut("/publicKey/validFor")
            .and_then(Value::as_object_mut)
        {
            window.insert("end".into(), json!(at));
        }
    }
    next["publicKey"]["rawBytes"] = json!(b64(spki));
    next["publicKey"]["validFor"] = json!({"start": at});
    next["logId"] = json!({"keyId": b64(&Sha256::digest(spki))});
    logs.push(next);
    Ok(root)
}

#[cfg(test)]
mod ctlog_rotate_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ct_rotation_closes_the_open_key_and_opens_the_new_one() {
        let config = CaConfig::with_defaults("T");
        let before = trusted_root_json(&config, &[b"i".to_vec(), b"r".to_vec()], b"t", b"old");
        let after = rotate_ctlog(&before, b"new", "2026-12-03T08:00:00Z").unwrap();
        let logs = after["ctlogs"].as_array().unwrap();
        assert_eq!(logs.len(), 2);
        assert_eq!(
            logs[0]["publicKey"]["validFor"]["end"],
            "2026-12-03T08:00:00Z"
        );
        assert_eq!(logs[0]["publicKey"]["rawBytes"], b64(b"old"));
        assert_eq!(logs[1]["publicKey"]["rawBytes"], b64(b"new"));
        assert_eq!(
            logs[1]["publicKey"]["validFor"]["start"],
            "2026-12-03T08:00:00Z"
        );
        assert!(logs[1]["publicKey"]["validFor"].get("end").is_none());
        assert_eq!(logs[1]["logId"]["keyId"], b64(&Sha256::digest(b"new")));
        assert_eq!(logs[1]["baseUrl"], logs[0]["baseUrl"]);
        // The transparency log and the CAs are untouched.
        assert_eq!(after["tlogs"], before["tlogs"]);
        assert_eq!(
            after["certificateAuthorities"],
            before["certificateAuthorities"]
        );
        let closed = rotate_ctlog(&after, b"third", "2026-12-04T00:00:00Z").unwrap();
        let logs = closed["ctlogs"].as_array().unwrap();
        assert_eq!(
            logs[0]["publicKey"]["validFor"]["end"],
            "2026-12-03T08:00:00Z"
        );
        assert_eq!(
            logs[1]["publicKey"]["validFor"]["end"],
            "2026-12-04T00:00:00Z"
        );
        assert!(rotate_ctlog(&json!({}), b"x", "t").is_err());
    }
}

#[cfg(test)]
mod rotate_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rotation_closes_the_open_ca_and_opens_the_new_one() {
        let config = CaConfig::with_defaults("T");
        let before = trusted_root_json(&config, &[b"old".to_vec(), b"root".to_vec()], b"t", b"c");
        let after = rotate_ca(
            &before,
            &[b"new".to_vec(), b"root".to_vec()],
            "2026-12-03T08:00:00Z",
        )
        .unwrap();
        let cas = after["certificateAuthorities"].as_array().unwrap();
        assert_eq!(cas.len(), 2);
        assert_eq!(cas[0]["validFor"]["end"], "2026-12-03T08:00:00Z");
        assert_eq!(
            cas[0]["validFor"]["start"],
            before["certificateAuthorities"][0]["validFor"]["start"]
        );
        assert_eq!(cas[1]["validFor"]["start"], "2026-12-03T08:00:00Z");
        assert!(cas[1]["validFor"].get("end").is_none());
        assert_eq!(
            cas[1]["certChain"]["certificates"][0]["rawBytes"],
            b64(b"new")
        );
        assert_eq!(cas[1]["uri"], cas[0]["uri"]);
        // A second rotation closes only the newest.
        let again = rotate_ca(
            &after,
            &[b"third".to_vec(), b"root".to_vec()],
            "2026-12-04T00:00:00Z",
        )
        .unwrap();
        let cas = again["certificateAuthorities"].as_array().unwrap();
        assert_eq!(cas[0]["validFor"]["end"], "2026-12-03T08:00:00Z");
        assert_eq!(cas[1]["validFor"]["end"], "2026-12-04T00:00:00Z");
    }

    #[test]
    fn a_root_without_an_open_ca_is_refused() {
        let closed = json!({"certificateAuthorities": [{"validFor": {"start": "a", "end": "b"}}]});
        assert!(rotate_ca(&closed, &[], "c")
            .unwrap_err()
            .contains("no open"));
        assert!(rotate_ca(&json!({}), &[], "c").is_err());
    }
}

/// `trusted_root.json` with the certificate authority whose first
/// certificate (the intermediate) has SHA-256 `fingerprint` (hex) closed at
/// `at` (RFC 3339, UTC, `YYYY-MM-DDTHH:MM:SSZ`): a compromise. What it signed
/// before `at` still verifies; after, not. Only a window that is already
/// closed (rotated out) can be moved earlier: the current CA must be
/// rotated first, so signing never stops. `at` may not precede the window's
/// start or move its end later.
pub fn revoke_ca(trusted_root: &Value, fingerprint: &str, at: &str) -> Result<Value, String> {
    let mut root = trusted_root.clone();
    let cas = root
        .get_mut("certificateAuthorities")
        .and_then(Value::as_array_mut)
        .ok_or("trusted_root.json has no certificateAuthorities")?;
    let matches = |ca: &Value| {
        ca.pointer("/certChain/certificates/0/rawBytes")
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|der| hex::encode(Sha256::digest(der)) == fingerprint.to_ascii_lowercase())
    };
    let ca = cas.iter_mut().find(|ca| matches(ca)).ok_or_else(|| {
        format!("no certificate authority with intermediate sha256 {fingerprint:?}")
    })?;
    let window = ca
        .get_mut("validFor")
        .and_then(Value::as_object_mut)
        .ok_or("that certificate authority has no validFor")?;
    close_earlier(
        window,
        at,
        "that is the current certificate authority: rotate it first (airgate ca rotate), then revoke the retired one",
    )?;
    Ok(root)
}

/// Moves a retired window's end back to `at` (only a closed window, only
/// earlier, never before its start); `current` is the error for an open one.
fn close_earlier(
    window: &mut serde_json::Map<String, Value>,
    at: &str,
    current: &str,
) -> Result<(), String> {
    let start = window
        .get("start")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(end) = window
        .get("end")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Err(current.to_string());
    };
    // RFC 3339 UTC with seconds (as airgate writes them) orders as text.
    if at.len() != 20 || !at.ends_with('Z') {
        return Err(format!("{at} is not YYYY-MM-DDTHH:MM:SSZ"));
    }
    if at < start.as_str() {
        return Err(format!("{at} is before the window's start {start}"));
    }
    if at > end.as_str() {
        return Err(format!(
            "{at} is after the window's end {end}: a revocation only moves the end earlier"
        ));
    }
    window.insert("end".into(), json!(at));
    Ok(())
}

/// `trusted_root.json` after revoking the retired key with hex log ID
/// `log_id` of `list` (`"ctlogs"` or `"tlogs"`) from `at`: its
/// `publicKey.validFor.end` moves back to `at`, as [`revoke_ca`] does for a CA.
pub fn revoke_log_key(
    trusted_root: &Value,
    list: &str,
    log_id: &str,
    at: &str,
) -> Result<Value, String> {
    let mut root = trusted_root.clone();
    let logs = root
        .get_mut(list)
        .and_then(Value::as_array_mut)
        .ok_or_else(|| format!("trusted_root.json has no {list}"))?;
    let matches = |log: &Value| {
        log.pointer("/logId/keyId")
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|id| hex::encode(id) == log_id.to_ascii_lowercase())
    };
    let log = logs
        .iter_mut()
        .find(|l| matches(l))
        .ok_or_else(|| format!("no key with log ID {log_id:?} in {list}"))?;
    let window = log
        .pointer_mut("/publicKey/validFor")
        .and_then(Value::as_object_mut)
        .ok_or("that key has no publicKey.validFor")?;
    close_earlier(
        window,
        at,
        "that is the current key: rotate it first (airgate ca rotate-ct or rotate-log), then revoke the retired one",
    )?;
    Ok(root)
}

#[cfg(test)]
mod revoke_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rotated() -> Value {
        let config = CaConfig::with_defaults("T");
        let mut before =
            trusted_root_json(&config, &[b"old".to_vec(), b"root".to_vec()], b"t", b"c");
        before["certificateAuthorities"][0]["validFor"]["start"] = json!("2026-12-01T00:00:00Z");
        rotate_ca(
            &before,
            &[b"new".to_vec(), b"root".to_vec()],
            "2026-12-03T00:00:00Z",
        )
        .unwrap()
    }

    #[test]
    fn revocation_moves_a_closed_window_end_earlier() {
        let old = hex::encode(Sha256::digest(b"old"));
        let v = revoke_ca(&rotated(), &old, "2026-12-02T00:00:00Z").unwrap();
        assert_eq!(
            v["certificateAuthorities"][0]["validFor"]["end"],
            "2026-12-02T00:00:00Z"
        );
        assert!(v["certificateAuthorities"][1]["validFor"]
            .get("end")
            .is_none());
    }

    #[test]
    fn revocation_refuses_the_current_ca_and_windows_out_of_range() {
        let root = rotated();
        let old = hex::encode(Sha256::digest(b"old"));
        let new = hex::encode(Sha256::digest(b"new"));
        assert!(revoke_ca(&root, &new, "2026-12-02T00:00:00Z")
            .unwrap_err()
            .contains("rotate it first"));
        assert!(revoke_ca(&root, &old, "2026-11-30T00:00:00Z")
            .unwrap_err()
            .contains("before the window"));
        assert!(revoke_ca(&root, &old, "2026-12-04T00:00:00Z")
            .unwrap_err()
            .contains("only moves the end earlier"));
        assert!(revoke_ca(&root, &old, "yesterday")
            .unwrap_err()
            .contains("is not"));
        assert!(revoke_ca(&root, &"00".repeat(32), "2026-12-02T00:00:00Z")
            .unwrap_err()
            .contains("no certificate authority"));
    }
}
