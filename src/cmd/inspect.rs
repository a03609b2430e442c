//! `airgate inspect`: what a medium carries, read from its manifest alone.
//! Needs no state; checks the exporter's signature when given its key.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use gateway::crypto::VerifyingKey;
use gateway::escape::quoted;
use gateway::medium::manifest::{
    read_manifest_claims, verify_manifest, EnrolledExporter, EntryKind, MediumPredicate,
};
use gateway::Error;
use serde_json::json;

/// Show what a medium carries (exporter, export time, artifacts and their
/// upstream signers, low-side rejections, TUF versions, collectors, lock).
#[derive(Args)]
pub struct InspectArgs {
    /// The medium (.tar), or the first chunk of a split medium.
    medium: PathBuf,
    /// The exporter's public key (PEM): check the manifest's signature with it.
    /// Without it, everything shown is the medium's unverified claim.
    #[arg(long, value_name = "PUB")]
    exporter_key: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl InspectArgs {
    /// Runs the inspection.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let file = std::fs::File::open(&self.medium)
            .map_err(|e| Error::Usage(format!("{}: {e}", self.medium.display())))?;
        let bytes = gateway::medium::unpack::read_manifest(std::io::BufReader::new(file))?;
        let refused = |e: gateway::medium::manifest::ManifestError| {
            eprintln!("error: {}: {e}", self.medium.display());
            ExitCode::from(1)
        };
        let claims = match read_manifest_claims(&bytes) {
            Ok(c) => c,
            Err(e) => return Ok(refused(e)),
        };
        let (predicate, verified) = match &self.exporter_key {
            None => (claims.predicate, None),
            Some(path) => {
                let pem = gateway::files::read_limited(path, 64 << 10)?;
                let key = VerifyingKey::from_pem(&String::from_utf8_lossy(&pem))
                    .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
                let given = hex::encode(key.key_id());
                if given != claims.signed_by_keyid {
                    eprintln!(
                        "error: {} is signed by key id {}, not by the given key {given}",
                        self.medium.display(),
                        quoted(&claims.signed_by_keyid)
                    );
                    return Ok(ExitCode::from(1));
                }
                let exporter = EnrolledExporter {
                    name: claims.predicate.exporter.clone(),
                    key,
                    revoked_at: None,
                };
                let v = match verify_manifest(&bytes, &[exporter]) {
                    Ok(v) => v,
                    Err(e) => return Ok(refused(e)),
                };
                (v.predicate, Some(hex::encode(v.statement_sha256)))
            }
        };
        if self.json {
            let out = json!({
                "signature": if verified.is_some() { "verified" } else { "not checked" },
                "statementSha256": verified,
                "signedByKeyId": claims.signed_by_keyid,
                "manifest": predicate,
                "artifactDigests": predicate.artifacts.iter()
                    .map(|a| json!({"name": a.name, "sha256": a.sha256, "size": a.size}))
                    .collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            print_human(
                &self.medium,
                &predicate,
                verified.as_deref(),
                &claims.signed_by_keyid,
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn print_human(medium: &std::path::Path, p: &MediumPredicate, verified: Option<&str>, keyid: &str) {
    println!("medium {}", medium.display());
    match verified {
        Some(id) => {
            println!("  signature: VERIFIED with the given exporter key {}", quoted(keyid));
            println!("  identity (sha256 of the signed statement): {id}");
        }
        None => println!(
            "  signature: NOT CHECKED (no --exporter-key): everything below is the medium's claim, signed by key id {}",
            quoted(keyid)
        ),
    }
    println!(
        "  exporter {} (key id {})",
        quoted(&p.exporter),
        quoted(&p.exporter_key_id)
    );
    println!(
        "  export time {}, written by {}",
        quoted(&p.export_time),
        quoted(&p.tool_version)
    );
    println!(
        "  TUF snapshot: root v{}, timestamp v{}, snapshot v{}, targets v{}; trusted root sha256 {}",
        p.tuf.root, p.tuf.timestamp, p.tuf.snapshot, p.tuf.targets, quoted(&p.trusted_root_sha256)
    );
    println!("  artifacts ({}):", p.artifacts.len());
    for a in &p.artifacts {
        println!(
            "    {}  {} bytes  sha256 {}",
            quoted(&a.name),
            a.size,
            quoted(&a.sha256)
        );
        println!(
            "      upstream signer {} (issuer {}), log index {} at {}, from {}",
            quoted(&a.upstream.identity),
            quoted(&a.upstream.issuer),
            a.upstream.log_index,
            quoted(&a.upstream.log_url),
            quoted(&a.origin)
        );
    }
    println!("  rejected by the low side ({}):", p.rejected.len());
    for r in &p.rejected {
        println!(
            "    {}: {} ({})",
            quoted(&r.name),
            quoted(&r.reason),
            quoted(&r.check)
        );
    }
    println!("  collectors ({}):", p.collectors.len());
    for c in &p.collectors {
        println!(
            "    {} {} for {}, sha256 {}",
            quoted(&c.name),
            quoted(&c.version),
            quoted(&c.platform),
            quoted(&c.sha256)
        );
    }
    for e in p
        .entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Lock | EntryKind::Policy))
    {
        println!(
            "  {} {} bytes, sha256 {}",
            quoted(&e.name),
            e.size,
            quoted(&e.sha256)
        );
    }
    let total: u64 = p.entries.iter().map(|e| e.size).sum();
    println!("  {} entries, {} bytes", p.entries.len(), total);
}
