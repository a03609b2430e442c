//! tuf-repo
