//! The private CA's error type. Messages never include key material.

use std::path::PathBuf;

/// What can go wrong in the private CA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O failure on a named path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file the ceremony would create already exists.
    #[error("{} already exists; refusing to overwrite CA material (use a new directory)", .0.display())]
    AlreadyExists(PathBuf),
    /// The ceremony's directory already holds something.
    #[error("{} is not empty (it holds \"{found}\"); the CA ceremony needs a new or empty directory", dir.display())]
    NotEmpty {
        /// The directory.
        dir: PathBuf,
        /// One entry found in it.
        found: String,
    },
    /// A key file is unusable (the message never includes key bytes).
    #[error("{what} key: {problem}")]
    Key {
        /// Which key.
        what: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A key file is readable by others.
    #[error("{} is accessible by group or others (mode {mode:o}); private keys must be 0600", path.display())]
    KeyPermissions {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The CA configuration is invalid.
    #[error("CA configuration: {0}")]
    Config(String),
    /// Building or signing a certificate failed.
    #[error("certificate issuance: {0}")]
    Issuance(String),
}

impl Error {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
