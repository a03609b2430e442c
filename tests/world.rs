//! A test world: a SIMULATED upstream Sigstore + TUF repository, signed
//! artifacts on a low side with an exporter key and policy, and a high-side
//! state directory with the exporter enrolled and its own policy.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::SystemTime;

use gateway::crypto::{pem_encode, VerifyingKey};
use gateway::demo::SimulatedUpstream;
use gateway::private_ca::{init_ceremony, CaConfig, Ed25519SigningKey};
use gateway::state::StateDir;

use crate::common::airgate;

pub struct World {
    pub tmp: tempfile::TempDir,
    pub upstream: SimulatedUpstream,
    pub artifacts: PathBuf,
    pub key: PathBuf,
    pub policy: PathBuf,
    pub high: PathBuf,
    pub media: PathBuf,
}

impl World {
    /// `count` small artifacts signed by the simulated upstream.
    pub fn new(count: usize) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let now = SystemTime::now();
        let upstream = SimulatedUpstream::create(&root.join("upstream"), now).unwrap();
        let artifacts = root.join("low/artifacts");
        std::fs::create_dir_all(&artifacts).unwrap();
        let mut files = Vec::new();
        for i in 0..count {
            let path = artifacts.join(format!("pkg-{i:05}.tar.gz"));
            std::fs::write(&path, format!("artifact number {i}\n").repeat(i % 7 + 1)).unwrap();
            files.push(path);
        }
        upstream.sign_files(&files, now).unwrap();
        let key_dir = root.join("low/key");
        std::fs::create_dir_all(&key_dir).unwrap();
        let key = Ed25519SigningKey::generate().unwrap();
        key.save_new(&key_dir.join("exporter.key.pem")).unwrap();
        std::fs::write(
            key_dir.join("exporter.pub.pem"),
            pem_encode("PUBLIC KEY", key.public_key_spki()),
        )
        .unwrap();
        let policy = root.join("low/policy.toml");
        std::fs::write(&policy, upstream.low_side_policy().unwrap()).unwrap();
        let high = root.join("high");
        init_ceremony(&high, CaConfig::with_defaults("Test Enclave"), now).unwrap();
        let pinned = high.join("upstream-tuf-root.json");
        std::fs::copy(&upstream.tuf_root, &pinned).unwrap();
        std::fs::write(high.join("policy.toml"), upstream.high_side_policy(&pinned)).unwrap();
        {
            let state = StateDir::open(&high).unwrap();
            let public = VerifyingKey::from_spki_der(key.public_key_spki()).unwrap();
            state
                .enroll("low-1", &public, "2026-11-23T00:00:00Z")
                .unwrap();
        }
        let media = root.join("transfer");
        std::fs::create_dir_all(&media).unwrap();
        World {
            tmp,
            upstream,
            artifacts,
            key: key_dir.join("exporter.key.pem"),
            policy,
            high,
            media,
        }
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// `airgate export` of the artifact directory to `media/<name>`.
    pub fn export(&self, name: &str, extra: &[&str]) -> (PathBuf, Output) {
        let out = self.media.join(name);
        let mut args: Vec<String> = vec![
            "export".into(),
            "--policy".into(),
            self.policy.display().to_string(),
            "--artifacts".into(),
            self.artifacts.display().to_string(),
            "--key".into(),
            self.key.display().to_string(),
            "--exporter".into(),
            "low-1".into(),
            "--out".into(),
            out.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let output = airgate(&args);
        (out, output)
    }

    /// `airgate import` into the high side.
    pub fn import(&self, media: &[&Path], extra: &[&str]) -> Output {
        let mut args: Vec<String> = vec![
            "import".into(),
            "--state".into(),
            self.high.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(media.iter().map(|p| p.display().to_string()));
        airgate(&args)
    }
}

/// Everything observable in a state directory: every table's rows and every
/// file (except the database files, compared by content) with its hash.
pub fn state_fingerprint(dir: &Path) -> String {
    let mut out = String::new();
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    tables.sort();
    // A refusal appends to refused_imports and changes nothing else.
    tables.retain(|t| t != "refused_imports");
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let columns = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let mut row = String::new();
                for i in 0..columns {
                    let v: rusqlite::types::Value = r.get(i)?;
                    row.push_str(&format!("{v:?}|"));
                }
                Ok(row)
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.sort();
        out.push_str(&format!("table {table}: {}\n", rows.join("\n")));
    }
    drop(conn);
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let name = p.strip_prefix(dir).unwrap().display().to_string();
            if p.is_dir() {
                stack.push(p);
                files.push(format!("{name}/"));
            } else if !name.starts_with("state.db") && name != "state.lock" {
                let data = std::fs::read(&p).unwrap();
                files.push(format!(
                    "{name} {}",
                    hex::encode(gateway::crypto::sha256(&data))
                ));
            }
        }
    }
    files.sort();
    out.push_str(&files.join("\n"));
    out
}

/// A tar entry as the tests rewrite it.
pub type Entry = (tar::Header, Vec<u8>);

/// Reads every entry of a medium (names and bytes; headers rebuilt plain).
pub fn read_entries(path: &Path) -> Vec<Entry> {
    use std::io::Read;
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_path(&name).unwrap();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            (h, data)
        })
        .collect()
}

/// Writes entries as a tar.
pub fn write_entries(path: &Path, entries: &[Entry]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (h, data) in entries {
        b.append(h, &data[..]).unwrap();
    }
    b.into_inner().unwrap();
}

/// The statement a manifest envelope signs, as JSON.
pub fn statement_of(manifest: &[u8]) -> serde_json::Value {
    let env: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    let payload = gateway::encoding::b64_decode(env["payload"].as_str().unwrap()).unwrap();
    serde_json::from_slice(&payload).unwrap()
}

/// A DSSE envelope over `payload`, signed with the exporter key at `key`.
pub fn envelope(key: &Path, payload: &[u8]) -> Vec<u8> {
    let key = Ed25519SigningKey::load(key, "exporter").unwrap();
    let sig = key.sign(&gateway::bundle::pae(
        "application/vnd.in-toto+json",
        payload,
    ));
    serde_json::to_vec(&serde_json::json!({
        "payload": gateway::encoding::b64_encode(payload),
        "payloadType": "application/vnd.in-toto+json",
        "signatures": [{"keyid": hex::encode(key.key_id()), "sig": gateway::encoding::b64_encode(&sig)}],
    }))
    .unwrap()
}

impl World {
    /// A genuine medium re-signed by the enrolled exporter after `edit`
    /// changed its statement: what an exporter could sign, for rules that
    /// do not rest on the signature (export order, transit window, claims).
    pub fn resign(
        &self,
        src: &Path,
        name: &str,
        edit: &mut dyn FnMut(&mut serde_json::Value),
    ) -> PathBuf {
        let mut entries = read_entries(src);
        let mut statement = statement_of(&entries[0].1);
        edit(&mut statement);
        let manifest = envelope(&self.key, &serde_json::to_vec(&statement).unwrap());
        entries[0].0.set_size(manifest.len() as u64);
        entries[0].0.set_cksum();
        entries[0].1 = manifest;
        let out = self.media.join(name);
        write_entries(&out, &entries);
        out
    }

    /// A genuine export re-signed with another export time (RFC 3339).
    pub fn export_at(&self, name: &str, export_time: &str) -> PathBuf {
        let (medium, out) = self.export(&format!("{name}.orig"), &[]);
        assert!(out.status.success(), "{}", crate::common::stderr(&out));
        let time = export_time.to_string();
        self.resign(&medium, name, &mut |s| {
            s["predicate"]["exportTime"] = serde_json::Value::String(time.clone());
        })
    }
}
