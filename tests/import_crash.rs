//! Crash test: `kill -9` an import at random points. Afterwards the medium is
//! either wholly imported or not at all, recovery leaves no orphan blob, and
//! the log audits clean; importing again completes it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{airgate, stderr};
use crate::world::World;

fn imported_count(world: &World) -> (i64, i64) {
    let conn = rusqlite::Connection::open(world.high.join("state.db")).unwrap();
    let imports: i64 = conn
        .query_row("SELECT COUNT(*) FROM imports", [], |r| r.get(0))
        .unwrap();
    let artifacts: i64 = conn
        .query_row("SELECT COUNT(*) FROM artifacts", [], |r| r.get(0))
        .unwrap();
    (imports, artifacts)
}

fn blob_files(world: &World) -> Vec<String> {
    let mut out = Vec::new();
    let root = world.high.join("blobs");
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn import_killed_at_random_points_is_all_or_nothing() {
    const ARTIFACTS: i64 = 120;
    let world = World::new(ARTIFACTS as usize);
    let (medium, out) = world.export("media.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut interrupted = 0;
    for round in 0..14u32 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // A random point in a window that doubles each round: early rounds interrupt
        // the import (parsing, verifying, signing, committing), later ones let it finish.
        let window = 20u64 << round.min(8);
        let delay = Duration::from_millis(5 + seed % window);
        let mut child = Command::new(env!("CARGO_BIN_EXE_airgate"))
            .args(["import", "--state"])
            .arg(&world.high)
            .arg(&medium)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let mut exited = false;
        while start.elapsed() < delay {
            if child.try_wait().unwrap().is_some() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if !exited {
            child.kill().unwrap(); // SIGKILL
        }
        child.wait().unwrap();

        // All or nothing, straight after the kill.
        let (imports, artifacts) = imported_count(&world);
        assert!(
            (imports == 0 && artifacts == 0) || (imports == 1 && artifacts == ARTIFACTS),
            "round {round}: partial import: {imports} imports, {artifacts} artifacts"
        );
        // Recovery (any writer opening the state) removes orphan blobs.
        let out = airgate(["exporter", "list", "--state", world.high.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let blobs = blob_files(&world);
        assert_eq!(
            blobs.len() as i64,
            artifacts,
            "round {round}: blobs {} vs artifacts {artifacts}",
            blobs.len()
        );
        assert!(
            !std::fs::read_dir(world.high.join("staging"))
                .unwrap()
                .any(|_| true),
            "staging left behind"
        );
        let out = airgate(["log", "verify", "--state", world.high.to_str().unwrap()]);
        if artifacts > 0 || world.high.join("state.db").exists() {
            assert!(
                out.status.success() || stderr(&out).contains("nothing was signed"),
                "round {round}: {}",
                stderr(&out)
            );
        }
        if imports == 1 {
            break;
        }
        interrupted += 1;
    }
    // Finish (or confirm) the import; a second import is a no-op.
    let out = world.import(&[&medium], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(imported_count(&world), (1, ARTIFACTS));
    assert_eq!(blob_files(&world).len() as i64, ARTIFACTS);
    let out = airgate(["log", "verify", "--state", world.high.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        interrupted > 0,
        "no round interrupted the import; the test proves nothing"
    );
}
