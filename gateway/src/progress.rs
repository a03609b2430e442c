//! Byte-level progress for long streams (export packing, import reading):
//! a reader that reports how many bytes passed through it, and the phases
//! an import goes through. Pure: the caller decides how to draw.

use std::io::Read;

/// The phases of an import, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportPhase {
    /// Reading the medium: manifest signature first, then staging (bytes).
    Reading,
    /// Verifying the TUF snapshot and the collectors.
    VerifyingTuf,
    /// Re-verifying each artifact's upstream signatures (count).
    VerifyingArtifacts,
    /// Re-signing and attesting the accepted artifacts.
    Signing,
    /// Logging, storing and committing.
    Committing,
}

impl ImportPhase {
    /// A short label for a progress line.
    pub fn label(self) -> &'static str {
        match self {
            ImportPhase::Reading => "authenticating and staging the medium",
            ImportPhase::VerifyingTuf => "verifying the TUF snapshot and collectors",
            ImportPhase::VerifyingArtifacts => "re-verifying artifacts",
            ImportPhase::Signing => "re-signing and attesting",
            ImportPhase::Committing => "logging, storing, committing",
        }
    }
}

/// A reader that calls `report(bytes_so_far)` after every read.
pub struct ProgressReader<'a, R> {
    inner: R,
    done: u64,
    report: &'a dyn Fn(u64),
}

impl<'a, R: Read> ProgressReader<'a, R> {
    /// Wraps `inner`.
    pub fn new(inner: R, report: &'a dyn Fn(u64)) -> Self {
        ProgressReader {
            inner,
            done: 0,
            report,
        }
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.report)(self.done);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn reports_every_byte_that_passes() {
        let seen = Cell::new(0u64);
        let report = |n: u64| seen.set(n);
        let data = vec![7u8; 10_000];
        let mut reader = ProgressReader::new(&data[..], &report);
        let mut buf = [0u8; 4096];
        assert_eq!(reader.read(&mut buf).unwrap(), 4096);
        assert_eq!(seen.get(), 4096);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(seen.get(), 10_000);
    }
}
