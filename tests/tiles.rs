//! The log as C2SP tlog-tiles, read by a client written here from the spec
//! alone (no airgate proof API): the signed checkpoint, hash tiles at two
//! levels, entry bundles; the root, an inclusion proof and a consistency
//! proof recomputed from tiles and checked against signed checkpoints.

use std::time::SystemTime;

use gateway::private_ca::SigningIdentity;
use gateway::signing::SigningRequest;
use gateway::state::StateDir;
use gateway::tlog::checkpoint::{Checkpoint, SignatureCheck, SignedNote};
use gateway::tlog::merkle::{self, leaf_hash, node_hash};
use gateway::tlog::tiles::{format_index, split_entry_bundle};

use crate::serve::support::Served;
use crate::world::World;

type Hash = [u8; 32];

/// RFC 6962 MTH(D[n]) over leaf hashes.
pub fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => gateway::crypto::sha256(b""),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// The largest power of two smaller than n.
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 6962 PATH(m, D[n]).
fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    if m < k {
        let mut p = path(m, &leaves[..k]);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = path(m - k, &leaves[k..]);
        p.push(mth(&leaves[..k]));
        p
    }
}

/// RFC 6962 SUBPROOF(m, D[n], b).
fn subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if complete {
            Vec::new()
        } else {
            vec![mth(leaves)]
        };
    }
    let k = split(n);
    if m <= k {
        let mut p = subproof(m, &leaves[..k], complete);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = subproof(m - k, &leaves[k..], false);
        p.push(mth(&leaves[..k]));
        p
    }
}

pub fn tile_url(level: &str, index: u64, width: u64) -> String {
    let partial = if width < 256 {
        format!(".p/{width}")
    } else {
        String::new()
    };
    format!("/tlog/tile/{level}/{}{partial}", format_index(index))
}

/// Every leaf hash of a tree of `size`, from level-0 hash tiles.
fn leaves_from_tiles(server: &Served, size: u64) -> Vec<Hash> {
    let mut out = Vec::new();
    for index in 0..size.div_ceil(256) {
        let width = (size - index * 256).min(256);
        let r = server.get(&tile_url("0", index, width));
        assert_eq!(r.status, 200, "{}", tile_url("0", index, width));
        assert_eq!(r.body.len() as u64, width * 32);
        out.extend(r.body.chunks(32).map(|c| <Hash>::try_from(c).unwrap()));
    }
    out
}

#[test]
fn a_spec_client_verifies_inclusion_and_consistency_from_tiles_alone() {
    let world = World::new(0);
    let mut state = StateDir::open(&world.high).unwrap();
    let identity = SigningIdentity::parse(&state.ca().config().default_identity).unwrap();
    let mut early = None;
    for batch in 0..6 {
        let requests: Vec<SigningRequest> = (0..50)
            .map(|i| SigningRequest {
                artifact_sha256: gateway::crypto::sha256(format!("tile {batch}/{i}").as_bytes()),
                identity: identity.clone(),
                custody: None,
                attestations: Vec::new(),
            })
            .collect();
        let signed = state.sign(&requests, SystemTime::now()).unwrap();
        if batch == 0 {
            early = Some(signed.checkpoint.note.clone());
        }
    }
    drop(state);
    let server = Served::start(&world.high, &[]);
    let root = gateway::bundle::TrustedRoot::from_json(
        &std::fs::read(world.high.join("trusted_root.json")).unwrap(),
    )
    .unwrap();
    let tlog = &root.tlogs[0];
    let hint: [u8; 4] = tlog.key.key_id()[..4].try_into().unwrap();
    let verified = |text: &str| -> Checkpoint {
        let note = SignedNote::parse(text).unwrap();
        assert_eq!(
            note.verify(&tlog.checkpoint_name(), hint, &tlog.key),
            SignatureCheck::Valid
        );
        Checkpoint::parse(&note.text).unwrap()
    };

    let cp = verified(&server.get("/tlog/checkpoint").text());
    assert_eq!(cp.size, 300);
    let leaves = leaves_from_tiles(&server, cp.size);
    // The root recomputed from the tiles is the signed root.
    assert_eq!(mth(&leaves), cp.root_hash);
    // Level 1 holds the level-8 nodes: here the root of the first 256 leaves.
    let level1 = server.get(&tile_url("1", 0, 1));
    assert_eq!(level1.status, 200);
    assert_eq!(level1.body, mth(&leaves[..256]).to_vec());
    // Entry bundles hash to the leaves.
    for (index, width) in [(0u64, 256u64), (1, 44)] {
        let bundle = server.get(&tile_url("entries", index, width));
        assert_eq!(bundle.status, 200);
        let entries = split_entry_bundle(&bundle.body).unwrap();
        assert_eq!(entries.len() as u64, width);
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(leaf_hash(e), leaves[(index * 256) as usize + i]);
        }
    }
    // Inclusion of entry 137, its proof built from tile hashes.
    let proof = path(137, &leaves);
    merkle::verify_inclusion(137, cp.size, &leaves[137], &proof, &cp.root_hash).unwrap();
    // Consistency with the checkpoint kept after the first 50 entries.
    let old = verified(&early.unwrap());
    assert_eq!(old.size, 50);
    assert_eq!(mth(&leaves[..50]), old.root_hash);
    let proof = subproof(50, &leaves, true);
    merkle::verify_consistency(50, 300, &old.root_hash, &cp.root_hash, &proof).unwrap();

    // Full tiles are immutable; tiles past the signed tree and bad paths are refused.
    let full = server.get(&tile_url("0", 0, 256));
    assert!(full.header("cache-control").unwrap().contains("immutable"));
    for (target, status) in [
        (tile_url("0", 1, 256), 404),
        (tile_url("0", 1, 45), 404),
        (tile_url("1", 0, 2), 404),
        (tile_url("entries", 2, 1), 404),
        ("/tlog/tile/0/1".to_string(), 400),
        ("/tlog/tile/9/000".to_string(), 400),
        ("/tlog/tile/0/000.p/256".to_string(), 400),
    ] {
        let r = server.get(&target);
        assert_eq!(r.status, status, "{target}: {}", r.text());
    }
}

/// A witness's key pair and its verifier key text.
fn witness(name: &str) -> (gateway::private_ca::Ed25519SigningKey, String) {
    use gateway::tlog::cosignature::{key_hint, COSIGNATURE_V1};
    let key = gateway::private_ca::Ed25519SigningKey::generate().unwrap();
    let public: [u8; 32] = key.public_key_spki()[12..].try_into().unwrap();
    let mut raw = vec![COSIGNATURE_V1];
    raw.extend_from_slice(&public);
    let vkey = format!(
        "{name}+{}+{}",
        hex::encode(key_hint(name, &public)),
        gateway::encoding::b64_encode(&raw)
    );
    (key, vkey)
}

/// The checkpoint `text` cosigned by `key` as `name` at `time`, as a note.
fn cosigned(
    text: &str,
    name: &str,
    key: &gateway::private_ca::Ed25519SigningKey,
    vkey: &str,
    time: u64,
) -> String {
    let w = gateway::tlog::cosignature::parse_vkey(vkey).unwrap();
    let mut raw = w.key_hint.to_vec();
    raw.extend_from_slice(&time.to_be_bytes());
    raw.extend_from_slice(&key.sign(&gateway::tlog::cosignature::signed_message(text, time)));
    format!(
        "{text}\n\u{2014} {name} {}\n",
        gateway::encoding::b64_encode(&raw)
    )
}

#[test]
fn witness_cosignatures_are_verified_stored_and_served_with_the_checkpoint() {
    use crate::common::{airgate, stderr};
    use crate::serve::support::request;
    let demo = crate::serve::support::Demo::new();
    let high = demo.high.to_str().unwrap();
    let (key, vkey) = witness("witness.example/w1");
    let out = airgate(["log", "witness", "add", "--state", high, &vkey]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A malformed key and a second key under the same name are refused.
    let out = airgate(["log", "witness", "add", "--state", high, "w2+00000000+AAAA"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let (_, again) = witness("witness.example/w1");
    let out = airgate(["log", "witness", "add", "--state", high, &again]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("already enrolled"),
        "{}",
        stderr(&out)
    );

    let server = Served::start(&demo.high, &[]);
    let served = server.get("/tlog/checkpoint").text();
    let note = SignedNote::parse(&served).unwrap();
    let post = |body: &str| {
        request(
            server.addr,
            "POST",
            "/tlog/cosignature",
            &[],
            body.as_bytes(),
        )
    };

    // Refused, nothing stored: a forged cosignature, text this log never
    // signed, no enrolled witness, an oversized body.
    let (other, _) = witness("witness.example/w1");
    let wrong_key = {
        let w = gateway::tlog::cosignature::parse_vkey(&vkey).unwrap();
        let mut raw = w.key_hint.to_vec();
        raw.extend_from_slice(&1u64.to_be_bytes());
        raw.extend_from_slice(
            &other.sign(&gateway::tlog::cosignature::signed_message(&note.text, 1)),
        );
        format!(
            "{}\n\u{2014} witness.example/w1 {}\n",
            note.text,
            gateway::encoding::b64_encode(&raw)
        )
    };
    let unsigned_text = note.text.replace("\n12\n", "\n11\n");
    for (body, status, expect) in [
        (wrong_key, 400, "does not verify"),
        (
            cosigned(&unsigned_text, "witness.example/w1", &key, &vkey, 1),
            400,
            "size 11",
        ),
        (served.clone(), 400, "no cosignature by an enrolled witness"),
        ("not a note".to_string(), 400, "refused"),
        ("x".repeat(70_000), 413, "over the limit"),
    ] {
        let r = post(&body);
        assert_eq!(r.status, status, "{expect}: {}", r.text());
        assert!(
            r.json()["error"].as_str().unwrap().contains(expect),
            "{expect}: {}",
            r.text()
        );
    }
    assert_eq!(
        server.get("/checkpoint").text(),
        served,
        "nothing was stored"
    );

    // A real cosignature is stored once and served as one more signature line.
    let good = cosigned(&note.text, "witness.example/w1", &key, &vkey, 1_800_000_000);
    let r = post(&good);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["accepted"][0], "witness.example/w1");
    assert_eq!(post(&good).json()["already"][0], "witness.example/w1");
    for path in ["/checkpoint", "/tlog/checkpoint"] {
        let now = SignedNote::parse(&server.get(path).text()).unwrap();
        assert_eq!(now.text, note.text);
        assert_eq!(now.signatures.len(), 2, "{path}");
        let w = gateway::tlog::cosignature::parse_vkey(&vkey).unwrap();
        assert_eq!(
            gateway::tlog::cosignature::verify(&w, &now.signatures[1], &now.text).unwrap(),
            1_800_000_000
        );
        // The log's own signature still verifies: clients ignore other names.
        let root = gateway::bundle::TrustedRoot::from_json(
            &std::fs::read(demo.high.join("trusted_root.json")).unwrap(),
        )
        .unwrap();
        let tlog = &root.tlogs[0];
        let hint: [u8; 4] = tlog.key.key_id()[..4].try_into().unwrap();
        assert_eq!(
            now.verify(&tlog.checkpoint_name(), hint, &tlog.key),
            SignatureCheck::Valid
        );
    }
    // `log witness list` shows the enrolled key.
    let out = airgate(["log", "witness", "list", "--state", high]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&vkey));
    drop(server);

    // `log verify` checks the stored cosignature; a rewritten one (by someone
    // who can write the database and drops the trigger) is named and refused.
    let out = airgate(["log", "verify", "--state", high]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 witness cosignatures verified"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let forged = cosigned(
        &note.text,
        "witness.example/w1",
        &other,
        &vkey,
        1_800_000_000,
    );
    let forged_line = forged.lines().last().unwrap().to_string();
    let conn = rusqlite::Connection::open(demo.high.join("state.db")).unwrap();
    conn.execute_batch("DROP TRIGGER checkpoint_cosignatures_no_update")
        .unwrap();
    conn.execute(
        "UPDATE checkpoint_cosignatures SET line = ?1",
        [&forged_line],
    )
    .unwrap();
    drop(conn);
    let out = airgate(["log", "verify", "--state", high]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the stored cosignature of witness")
            && stderr(&out).contains("does not verify"),
        "{}",
        stderr(&out)
    );
}
