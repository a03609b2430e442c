//! `airgate publish`: the read side as plain files any web server, CDN or
//! object store can serve, the same paths `airgate serve` answers.
//!
//! Incremental and reader-safe: every file is written to a temporary name
//! and renamed; immutable files (TUF's versioned metadata and targets, full
//! and partial log tiles, content-addressed `.sigs.SHA256`) are written
//! once and must never change; files others point at come before the files
//! that point at them, and the mutable indexes (`timestamp.json`,
//! `repodata.json`, `artifacts/index.json`, `index.html`) and the
//! checkpoints last. A reader mid-publish sees the old tree or parts of the
//! new one that only reference what is already there.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::medium::EntryName;
use crate::state::{blob_path, queries, StateReader, TUF_REPO};
use crate::tlog::tiles::{self, TILE_HEIGHT, TILE_WIDTH};
use crate::{Error, Result};

/// What a publish did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PublishReport {
    /// Files written (new or changed).
    pub written: usize,
    /// Files already up to date.
    pub unchanged: usize,
    /// Artifacts published.
    pub artifacts: usize,
    /// conda packages listed.
    pub conda_packages: usize,
    /// The tree size of the published checkpoint.
    pub tree_size: u64,
}

/// Where the publisher records what it wrote (path -> SHA-256), to skip
/// unchanged files on the next run without re-reading them.
const RECORD: &str = ".airgate-published.json";

struct Tree {
    out: PathBuf,
    record: BTreeMap<String, String>,
    report: PublishReport,
}

impl Tree {
    fn open(out: &Path) -> Result<Tree> {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let path = out.join(RECORD);
        let record = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Usage(format!(
                    "{}: not a publish record ({e}); remove it to republish everything",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        Ok(Tree {
            out: out.to_path_buf(),
            record,
            report: PublishReport::default(),
        })
    }

    fn current(&self, rel: &str, sha: &str) -> bool {
        self.record.get(rel).is_some_and(|s| s == sha) && self.out.join(rel).is_file()
    }

    /// Writes `bytes` at `rel` unless it already holds them; an immutable
    /// file that would change is an error (the tree or the state was altered).
    fn put(&mut self, rel: &str, bytes: &[u8], immutable: bool) -> Result<()> {
        let sha = hex::encode(crate::crypto::sha256(bytes));
        if self.current(rel, &sha) {
            self.report.unchanged += 1;
            return Ok(());
        }
        let path = self.out.join(rel);
        if immutable && path.is_file() {
            let existing = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            if existing == bytes {
                self.record.insert(rel.to_string(), sha);
                self.report.unchanged += 1;
                return Ok(());
            }
            return Err(Error::Usage(format!(
                "{}: an immutable file would change; the published tree or the state was altered",
                path.display()
            )));
        }
        write_file(&path, |f| f.write_all(bytes))?;
        self.record.insert(rel.to_string(), sha);
        self.report.written += 1;
        Ok(())
    }

    /// Copies a stored blob (streamed) to `rel` unless it is there already.
    fn put_blob(&mut self, rel: &str, state: &Path, sha: &str) -> Result<()> {
        if self.current(rel, sha) {
            self.report.unchanged += 1;
            return Ok(());
        }
        let src = blob_path(state, sha);
        let mut input = std::fs::File::open(&src).map_err(|e| Error::io(&src, e))?;
        let path = self.out.join(rel);
        write_file(&path, |f| std::io::copy(&mut input, f).map(|_| ()))?;
        self.record.insert(rel.to_string(), sha.to_string());
        self.report.written += 1;
        Ok(())
    }

    fn finish(self) -> Result<PublishReport> {
        let bytes = serde_json::to_vec(&self.record)
            .map_err(|e| Error::internal("writing the publish record", e))?;
        let path = self.out.join(RECORD);
        write_file(&path, |f| f.write_all(&bytes))?;
        Ok(self.report)
    }
}

/// Writes a file through a temporary name in its directory, fsynced, then renamed.
fn write_file(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".airgate-publish-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    fill(tmp.as_file_mut()).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(tmp.path(), e))?;
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

fn rel_of(prefix: &str, name: &str) -> Result<String> {
    let entry =
        EntryName::parse(name).map_err(|e| Error::internal("naming a published artifact", e))?;
    Ok(format!("{prefix}/{}", entry.as_str()))
}

/// Publishes the state at `state` into `out` (see the module doc).
pub fn publish(state: &Path, out: &Path) -> Result<PublishReport> {
    let reader = StateReader::open(state)?;
    let mut tree = Tree::open(out)?;
    let conn = reader.connection();
    // 1. Artifacts and their .sigs (what indexes point at).
    let rows = queries::artifacts(conn, None, usize::MAX >> 1, true)?;
    let mut index = Vec::with_capacity(rows.len());
    for (row, sigs) in &rows {
        let sigs = sigs.clone().unwrap_or_default();
        tree.put_blob(&rel_of("artifacts", &row.name)?, state, &row.sha256)?;
        tree.put(
            &format!("{}.sigs", rel_of("artifacts", &row.name)?),
            &sigs,
            false,
        )?;
        index.push(serde_json::json!({
            "name": row.name, "sha256": row.sha256, "size": row.size,
            "sigsSha256": hex::encode(crate::crypto::sha256(&sigs)), "sigsSize": sigs.len(),
            "importId": row.import_id, "logIndex": row.log_index,
        }));
    }
    tree.report.artifacts = rows.len();
    // 2. conda packages (bytes, .sigs, content-addressed .sigs.SHA256).
    let mut repodata = Vec::new();
    let mut subdirs = queries::conda_subdirs(conn)?;
    if !subdirs.iter().any(|s| s == "noarch") {
        subdirs.push("noarch".into());
    }
    for subdir in &subdirs {
        let listed = queries::conda_listed(conn, subdir)?;
        for l in &listed {
            let Some(name) = queries::conda_artifact(conn, subdir, &l.filename)? else {
                continue;
            };
            let Some((sigs, sha)) = reader.artifact_sigs(&name)? else {
                continue;
            };
            let base = format!("conda/{subdir}/{}", l.filename);
            tree.put_blob(&base, state, &sha)?;
            tree.put(&format!("{base}.sigs"), &sigs, false)?;
            tree.put(&format!("{base}.sigs.{}", l.sigs_sha256), &sigs, true)?;
        }
        tree.report.conda_packages += listed.len();
        let body = crate::conda::repodata(subdir, &listed)
            .map_err(|e| Error::internal("building repodata.json", e))?;
        repodata.push((format!("conda/{subdir}/repodata.json"), body));
    }
    // 3. The private TUF repository: versioned files once, timestamp last.
    publish_tuf(&mut tree, &state.join(TUF_REPO))?;
    // 4. Log tiles within the newest signed checkpoint.
    let log = reader.log_reader();
    let checkpoint = log.latest_checkpoint()?;
    let size = checkpoint.as_ref().map_or(0, |c| c.size);
    publish_tiles(&mut tree, &log, size)?;
    // 5. Mutable indexes, then the checkpoints.
    for (rel, body) in repodata {
        tree.put(&rel, &body, false)?;
    }
    let index = serde_json::to_vec(&serde_json::json!({ "artifacts": index }))
        .map_err(|e| Error::internal("serializing the index", e))?;
    tree.put("artifacts/index.json", &index, false)?;
    tree.put(
        "index.html",
        static_dashboard(&rows, size).as_bytes(),
        false,
    )?;
    if let Some(cp) = checkpoint {
        let note = crate::state::witness::cosigned_note(conn, &cp.note, cp.size)?;
        tree.put("tlog/checkpoint", note.as_bytes(), false)?;
        tree.put("checkpoint", note.as_bytes(), false)?;
    }
    tree.report.tree_size = size;
    tree.finish()
}

/// Copies the TUF repository: targets and versioned metadata (immutable),
/// then `root.json` and `timestamp.json`.
fn publish_tuf(tree: &mut Tree, repo: &Path) -> Result<()> {
    if !repo.join("1.root.json").is_file() {
        return Ok(());
    }
    let targets = repo.join("targets");
    if targets.is_dir() {
        for e in sorted_files(&targets)? {
            let bytes =
                std::fs::read(targets.join(&e)).map_err(|err| Error::io(targets.join(&e), err))?;
            tree.put(&format!("tuf/targets/{e}"), &bytes, true)?;
        }
    }
    let mut last = Vec::new();
    for e in sorted_files(repo)? {
        let bytes = std::fs::read(repo.join(&e)).map_err(|err| Error::io(repo.join(&e), err))?;
        if e == "timestamp.json" || e == "root.json" {
            last.push((e, bytes));
        } else if e.ends_with(".json") {
            tree.put(&format!("tuf/{e}"), &bytes, true)?;
        }
    }
    last.sort_by_key(|(e, _)| e == "timestamp.json");
    for (e, bytes) in last {
        tree.put(&format!("tuf/{e}"), &bytes, false)?;
    }
    Ok(())
}

fn sorted_files(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        if e.file_type()
            .map_err(|err| Error::io(e.path(), err))?
            .is_file()
        {
            if let Some(n) = e.file_name().to_str() {
                if !n.starts_with('.') {
                    names.push(n.to_string());
                }
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Hash tiles at every level and entry bundles for a tree of `size`.
fn publish_tiles(tree: &mut Tree, log: &crate::tlog::LogReader<'_>, size: u64) -> Result<()> {
    for level in 0..8u8 {
        let have = tiles::available(size, level);
        if have == 0 {
            break;
        }
        for index in 0..have.div_ceil(TILE_WIDTH) {
            let width = (have - index * TILE_WIDTH).min(TILE_WIDTH);
            let rel = tile_rel(&level.to_string(), index, width);
            if tree.out.join(&rel).is_file() && tree.record.contains_key(&rel) {
                tree.report.unchanged += 1;
                continue;
            }
            let hashes =
                log.node_range(TILE_HEIGHT * u32::from(level), index * TILE_WIDTH, width)?;
            tree.put(&rel, &hashes.concat(), true)?;
        }
    }
    for index in 0..size.div_ceil(TILE_WIDTH) {
        let width = (size - index * TILE_WIDTH).min(TILE_WIDTH);
        let rel = tile_rel("entries", index, width);
        if tree.out.join(&rel).is_file() && tree.record.contains_key(&rel) {
            tree.report.unchanged += 1;
            continue;
        }
        let bodies = log.body_range(index * TILE_WIDTH, width)?;
        let bundle = tiles::entry_bundle(bodies.iter().map(Vec::as_slice))
            .map_err(|e| Error::internal("building an entry bundle", e))?;
        tree.put(&rel, &bundle, true)?;
    }
    Ok(())
}

fn tile_rel(level: &str, index: u64, width: u64) -> String {
    let partial = if width < TILE_WIDTH {
        format!(".p/{width}")
    } else {
        String::new()
    };
    format!("tlog/tile/{level}/{}{partial}", tiles::format_index(index))
}

/// A static dashboard: the artifacts with their verified upstream signers
/// and log indexes, the log size.
fn static_dashboard(rows: &[queries::WithSigs], size: u64) -> String {
    let esc = crate::escape::html;
    let mut h = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>airgate</title>\
         <style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px}table{border-collapse:collapse;width:100%;table-layout:fixed}\
         td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;overflow-wrap:anywhere}</style></head><body>\
         <h1>airgate high side (published)</h1>",
    );
    h.push_str(&format!(
        "<p>Transparency log: tree size {size}; <a href=\"tlog/checkpoint\">checkpoint</a>, <a href=\"tuf/1.root.json\">TUF root</a>, <a href=\"artifacts/index.json\">index</a>.</p>"
    ));
    h.push_str("<table><thead><tr><th>Name</th><th>sha256</th><th>Upstream signer</th><th>Log index</th></tr></thead><tbody>");
    for (row, _) in rows {
        let href = format!("artifacts/{}", row.name);
        h.push_str(&format!(
            "<tr class=\"artifact\"><td><a href=\"{}\">{}</a> (<a href=\"{}.sigs\">.sigs</a>)</td><td>{}</td><td>{}<br>{}</td><td>{}</td></tr>",
            esc(&href), esc(&row.name), esc(&href), esc(&row.sha256), esc(&row.upstream_identity), esc(&row.upstream_issuer), row.log_index
        ));
    }
    h.push_str("</tbody></table></body></html>\n");
    h
}
