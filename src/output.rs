//! Error reporting and exit codes: 1 = rejected by verification or policy,
//! 2 = usage or I/O error.

use std::process::ExitCode;

/// Exit code for a verification or policy rejection.
pub const EXIT_REJECTED: u8 = 1;
/// Exit code for usage and I/O errors.
pub const EXIT_USAGE: u8 = 2;

/// Prints an error (with its chain) and a hint, and picks the exit code.
/// With `--json` the same facts also go to stdout as one JSON object
/// (`{"error", "hint", "exitCode"}`), for exit 1 and exit 2 alike.
pub fn report_error(err: &anyhow::Error, json: bool) -> ExitCode {
    let gateway_error = err.chain().find_map(|e| e.downcast_ref::<gateway::Error>());
    let text = message(err);
    eprintln!("error: {text}");
    // A failed bundle verification is one line naming the failed check (the
    // cosign-like contract of `airgate verify`); other errors get a hint.
    let one_line = matches!(gateway_error, Some(gateway::Error::Bundle { .. }));
    let hint = gateway_error
        .and_then(gateway::Error::hint)
        .filter(|_| !one_line);
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
    let code = match gateway_error {
        Some(e) if e.is_rejection() => EXIT_REJECTED,
        _ => EXIT_USAGE,
    };
    if json && err.downcast_ref::<JsonPrinted>().is_none() {
        let doc = serde_json::json!({ "error": text, "hint": hint, "exitCode": code });
        println!("{doc}");
    }
    ExitCode::from(code)
}

/// Marks an error whose JSON report the command already printed on stdout,
/// so `--json` output stays one document. It adds no text to the message.
#[derive(Debug)]
pub struct JsonPrinted;

impl std::fmt::Display for JsonPrinted {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Ok(())
    }
}

/// Wraps an error whose JSON report is already on stdout.
pub fn json_printed(err: impl Into<anyhow::Error>) -> anyhow::Error {
    err.into().context(JsonPrinted)
}

/// True when the command line asks for `--json` (before any `--`).
pub fn json_requested(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    args.take_while(|a| a != "--").any(|a| a == "--json")
}

/// A closed stdout (`airgate imports list | head -1`) ends the process
/// quietly with success instead of a panic message and exit 101: std's
/// print macros panic on EPIPE, and Rust ignores SIGPIPE.
pub fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        if text.starts_with("failed printing to stdout") && text.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// The error and its causes on one line, each cause once (a cause whose
/// text an outer message already carries is not repeated), with every
/// control character escaped: no input reaches the terminal raw.
pub fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if part.is_empty() || text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    gateway::escape::sanitized(&text)
}

/// Parses an RFC 3339 time for `--danger-as-of` and warns loudly on stderr.
pub fn danger_as_of(value: Option<&str>) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    match value {
        None => Ok(chrono::Utc::now()),
        Some(text) => {
            let at = parse_time(text, "--danger-as-of")?;
            eprintln!(
                "WARNING: --danger-as-of: evaluating time-dependent checks as of {}, NOT the current time",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            Ok(at)
        }
    }
}

/// Parses a time given on the command line: RFC 3339 (`2026-08-22T00:00:00Z`),
/// a date (`2026-08-22`, midnight UTC), or seconds since 1970 (as
/// `SOURCE_DATE_EPOCH` gives them).
pub fn parse_time(text: &str, flag: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    use chrono::TimeZone;
    let t = text.trim();
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(at.with_timezone(&chrono::Utc));
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(at) = day.and_hms_opt(0, 0, 0) {
            return Ok(chrono::Utc.from_utc_datetime(&at));
        }
    }
    if let Some(at) = t
        .parse::<i64>()
        .ok()
        .and_then(|secs| chrono::Utc.timestamp_opt(secs, 0).single())
    {
        return Ok(at);
    }
    Err(gateway::Error::Usage(format!(
        "{flag} {} is not a time: give RFC 3339 (2026-08-22T00:00:00Z), a date (2026-08-22) or seconds since 1970",
        gateway::escape::quoted(text)
    ))
    .into())
}

/// A byte progress bar on a TTY (none when stderr is not a terminal or for --json).
pub fn progress_bar(json: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(byte_style());
    Some(bar)
}

/// A labelled byte bar: `phase [====    ] 1.2 GiB/2 GiB 800 MiB/s 1s`.
fn byte_style() -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(
        "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
}

/// A labelled phase without byte counts: `phase (3 artifacts) 2s`.
fn phase_style() -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner())
}

/// Import progress on a TTY: a byte bar while the medium is read, then one
/// labelled line per phase.
pub struct ImportProgress {
    bar: Option<indicatif::ProgressBar>,
    phase: std::sync::Mutex<Option<gateway::progress::ImportPhase>>,
    /// With `--timings`: when each phase began.
    timings: Option<std::sync::Mutex<Vec<(gateway::progress::ImportPhase, std::time::Instant)>>>,
}

impl ImportProgress {
    /// Draws nothing when stderr is not a terminal or with `--json`; with
    /// `timings`, [`ImportProgress::finish`] prints each phase's wall time.
    pub fn new(json: bool, timings: bool) -> Self {
        ImportProgress {
            bar: progress_bar(json),
            phase: std::sync::Mutex::new(None),
            timings: timings.then(|| std::sync::Mutex::new(Vec::new())),
        }
    }

    fn record_phase(&self, phase: gateway::progress::ImportPhase) {
        let Some(t) = &self.timings else { return };
        let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
        if t.last().map(|(p, _)| *p) != Some(phase) {
            t.push((phase, std::time::Instant::now()));
        }
    }

    /// Records progress in `phase`.
    pub fn update(&self, phase: gateway::progress::ImportPhase, done: u64, total: u64) {
        use gateway::progress::ImportPhase;
        self.record_phase(phase);
        let Some(bar) = &self.bar else { return };
        let mut current = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if *current != Some(phase) {
            *current = Some(phase);
            let label = match phase {
                ImportPhase::VerifyingArtifacts => format!("{} ({total})", phase.label()),
                _ => phase.label().to_owned(),
            };
            bar.set_message(label);
            if phase == ImportPhase::Reading {
                bar.set_style(byte_style());
            } else {
                bar.set_style(phase_style());
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
            }
        }
        if phase == ImportPhase::Reading {
            bar.set_length(total);
            bar.set_position(done);
        }
    }

    /// Clears the bar; with timings, prints one line per phase to stderr.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let Some(t) = &self.timings else { return };
        let t = t.lock().unwrap_or_else(|e| e.into_inner());
        let end = std::time::Instant::now();
        for (i, (phase, start)) in t.iter().enumerate() {
            let until = t.get(i + 1).map_or(end, |(_, next)| *next);
            eprintln!(
                "{:>8.3} s  {}",
                until.duration_since(*start).as_secs_f64(),
                phase.label()
            );
        }
    }
}
