//! Crash test: `kill -9` the log writer at random points; afterwards every
//! acknowledged append is present and `airgate log verify` passes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{airgate, stderr};

#[test]
fn log_survives_kill_9_at_random_points_with_every_acknowledged_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut max_acked = 0u64;
    let mut seed = 0x2545_f491_4f6c_dd1du64 ^ u64::from(std::process::id());
    for round in 0..8 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run_for = Duration::from_millis(150 + seed % 700);
        let mut child = Command::new(env!("CARGO_BIN_EXE_airgate"))
            .args(["bench", "log", "--report-acks", "--batch", "37", "--dir"])
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line
                    .strip_prefix("acked ")
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    let _ = tx.send(n);
                }
            }
        });
        let start = Instant::now();
        // The first round runs until its first acknowledgement: a kill during
        // the CA ceremony that precedes the log (slow on a loaded machine)
        // would test `ca init`, not the log.
        let setting_up =
            |acked: u64| round == 0 && acked == 0 && start.elapsed() < Duration::from_secs(120);
        while start.elapsed() < run_for || setting_up(max_acked) {
            if let Ok(n) = rx.recv_timeout(Duration::from_millis(5)) {
                max_acked = max_acked.max(n);
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        while let Ok(n) = rx.try_recv() {
            max_acked = max_acked.max(n);
        }
        let state = dir.join("ca");
        let out = airgate(["log", "verify", "--state", state.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "round {round}: log verify failed: {}",
            stderr(&out)
        );
        let info = airgate(["log", "info", "--state", state.to_str().unwrap()]);
        let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        let size = v["treeSize"].as_u64().unwrap();
        assert!(
            size >= max_acked,
            "round {round}: acknowledged {max_acked} entries but the log has {size}"
        );
    }
    assert!(max_acked > 0, "the writer never acknowledged anything");
}
