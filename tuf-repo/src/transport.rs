//! The one [`tough::Transport`] tough gets from this crate: it confines every
//! fetch to the repository's base URL, enforces the [`Limits`] by file class
//! while reading (endless-data attacks), and records what was fetched so the
//! mirror can write exactly the bytes tough verified.

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures_core::Stream;
use tough::{Bytes, Transport, TransportError, TransportErrorKind, TransportStream};
use url::Url;

use crate::{Error, Limits, Role};

/// Where the repository is read from; decides how a missing file is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A live mirror (http, https or file URL): a missing file is a fetch failure.
    Mirror,
    /// A snapshot directory on the high side: a missing file is a rejection.
    Snapshot,
}

/// The kind of file a repository-relative path names, which decides its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileClass {
    Root,
    Timestamp,
    Snapshot,
    TargetsMetadata,
    Target,
}

impl FileClass {
    pub(crate) fn of(rel: &str) -> FileClass {
        if rel.starts_with("targets/") {
            return FileClass::Target;
        }
        match rel.strip_suffix(".json").map(split_version) {
            Some((_, "root")) => FileClass::Root,
            Some((None, "timestamp")) => FileClass::Timestamp,
            Some((_, "snapshot")) => FileClass::Snapshot,
            _ => FileClass::TargetsMetadata,
        }
    }

    fn limit(self, limits: &Limits) -> u64 {
        match self {
            FileClass::Root => limits.max_root_bytes,
            FileClass::Timestamp => limits.max_timestamp_bytes,
            FileClass::Snapshot => limits.max_snapshot_bytes,
            FileClass::TargetsMetadata => limits.max_targets_bytes,
            FileClass::Target => limits.max_target_bytes,
        }
    }
}

/// Splits `"14.targets"` into `(Some(14), "targets")`; `"timestamp"` into `(None, "timestamp")`.
pub(crate) fn split_version(stem: &str) -> (Option<u64>, &str) {
    match stem.split_once('.') {
        Some((v, rest))
            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && !rest.is_empty() =>
        {
            (v.parse().ok(), rest)
        }
        _ => (None, stem),
    }
}

/// The metadata role a repository-relative path holds, if it is a metadata file.
pub(crate) fn role_of(rel: &str) -> Option<Role> {
    if rel.starts_with("targets/") || rel.contains('/') {
        return None;
    }
    let (_, name) = split_version(rel.strip_suffix(".json")?);
    Some(match name {
        "root" => Role::Root,
        "timestamp" => Role::Timestamp,
        "snapshot" => Role::Snapshot,
        "targets" => Role::Targets,
        other => Role::Delegated(other.to_owned()),
    })
}

/// True when `rel` is a safe relative path: segments of `[A-Za-z0-9._%+-]`,
/// none empty, `.` or `..`, and only `targets/` may have sub-directories.
pub(crate) fn is_safe_relative(rel: &str) -> bool {
    let segments: Vec<&str> = rel.split('/').collect();
    let shape_ok = segments.len() == 1 || segments.first() == Some(&"targets");
    shape_ok
        && segments.iter().all(|s| {
            !s.is_empty()
                && *s != "."
                && *s != ".."
                && s.len() <= 255
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b))
        })
}

#[derive(Debug, Default)]
struct Record {
    /// Completely read files, by repository-relative path.
    files: BTreeMap<String, Vec<u8>>,
    /// Every requested path, in order.
    log: Vec<String>,
    /// The first limit violation, reported instead of tough's wrapped error.
    violation: Option<Error>,
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct GuardedTransport {
    inner: Box<dyn Transport + Send + Sync>,
    base: Url,
    limits: Limits,
    source: Source,
    record: Arc<Mutex<Record>>,
}

impl GuardedTransport {
    /// `base` must end with `/`.
    pub(crate) fn new(
        inner: Box<dyn Transport + Send + Sync>,
        base: Url,
        limits: Limits,
        source: Source,
    ) -> Self {
        GuardedTransport {
            inner,
            base,
            limits,
            source,
            record: Arc::default(),
        }
    }

    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    pub(crate) fn source(&self) -> Source {
        self.source
    }

    fn lock(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The repository-relative path of `url`, if `url` lies inside the repository.
    pub(crate) fn relative(&self, url: &Url) -> Option<String> {
        if url.query().is_some() || url.fragment().is_some() {
            return None;
        }
        let rel = url.as_str().strip_prefix(self.base.as_str())?;
        is_safe_relative(rel).then(|| rel.to_owned())
    }

    /// Takes the first limit violation seen, if any.
    pub(crate) fn take_violation(&self) -> Option<Error> {
        self.lock().violation.take()
    }

    /// The last path requested (what tough was working on when it failed).
    pub(crate) fn last_requested(&self) -> Option<String> {
        self.lock().log.last().cloned()
    }

    /// The bytes of a completely read file.
    pub(crate) fn recorded(&self, rel: &str) -> Option<Vec<u8>> {
        self.lock().files.get(rel).cloned()
    }

    /// Every completely read file.
    pub(crate) fn recorded_files(&self) -> BTreeMap<String, Vec<u8>> {
        self.lock().files.clone()
    }

    /// Fetches `rel` for this crate's own use (the root chain walk): `Ok(None)`
    /// when the file does not exist, an error for anything else that fails.
    pub(crate) async fn fetch_optional(&self, rel: &str) -> Result<Option<Vec<u8>>, Error> {
        let url = self
            .base
            .join(rel)
            .map_err(|e| Error::Usage(format!("cannot build a URL for {rel}: {e}")))?;
        match self.read_all(url.clone()).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == TransportErrorKind::FileNotFound => Ok(None),
            Err(e) => Err(self.take_violation().unwrap_or_else(|| Error::Fetch {
                url: url.to_string(),
                detail: error_chain(&e),
            })),
        }
    }

    async fn read_all(&self, url: Url) -> Result<Vec<u8>, TransportError> {
        let Some(rel) = self.relative(&url) else {
            return Err(TransportError::new_with_cause(
                TransportErrorKind::Other,
                url.as_str(),
                "refusing a URL outside the repository",
            ));
        };
        self.lock().log.push(rel.clone());
        let limit = FileClass::of(&rel).limit(&self.limits);
        let limit_bytes = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut stream = self.inner.fetch(url.clone()).await?;
        let mut data = Vec::new();
        while let Some(chunk) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
            let chunk = chunk?;
            if chunk.len() > limit_bytes.saturating_sub(data.len()) {
                let mut record = self.lock();
                if record.violation.is_none() {
                    record.violation = Some(Error::TooLarge {
                        what: rel.clone(),
                        limit,
                    });
                }
                return Err(TransportError::new_with_cause(
                    TransportErrorKind::Other,
                    url.as_str(),
                    format!("{rel} exceeds the limit of {limit} bytes"),
                ));
            }
            data.extend_from_slice(&chunk);
        }
        if let Err(detail) = check_role_type(&rel, &data) {
            let mut record = self.lock();
            if record.violation.is_none() {
                record.violation = Some(Error::malformed(rel.clone(), &detail));
            }
            return Err(TransportError::new_with_cause(
                TransportErrorKind::Other,
                url.as_str(),
                detail,
            ));
        }
        self.lock().files.insert(rel, data.clone());
        Ok(data)
    }
}

/// A metadata file must say which role it is (`signed._type`, as python-tuf
/// checks): binding a role to its file's position alone lets one role's
/// signed metadata be served as another's.
pub(crate) fn check_role_type(rel: &str, data: &[u8]) -> Result<(), String> {
    let Some(role) = role_of(rel) else {
        return Ok(());
    };
    let expected = match role {
        Role::Root => "root",
        Role::Timestamp => "timestamp",
        Role::Snapshot => "snapshot",
        Role::Targets | Role::Delegated(_) => "targets",
    };
    let doc: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("is not JSON: {e}"))?;
    match doc.get("signed").and_then(|s| s.get("_type")) {
        Some(serde_json::Value::String(t)) if t == expected => Ok(()),
        Some(serde_json::Value::String(t)) => Err(format!(
            "signed._type is {t:?}, but the file holds the {expected} role"
        )),
        Some(other) => Err(format!("signed._type is not a string ({other})")),
        None => Err(format!("signed._type is missing (expected {expected:?})")),
    }
}

#[tough::async_trait]
impl Transport for GuardedTransport {
    async fn fetch(&self, url: Url) -> Result<TransportStream, TransportError> {
        let data = self.read_all(url).await?;
        Ok(Box::pin(OneChunk(Some(Bytes::from(data)))))
    }
}

/// A stream of one chunk.
struct OneChunk(Option<Bytes>);

impl Stream for OneChunk {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.take().map(Ok))
    }
}

/// An error and its sources, joined with ": ".
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn file_classes_follow_the_live_layout() {
        assert_eq!(FileClass::of("13.root.json"), FileClass::Root);
        assert_eq!(FileClass::of("root.json"), FileClass::Root);
        assert_eq!(FileClass::of("timestamp.json"), FileClass::Timestamp);
        assert_eq!(FileClass::of("165.snapshot.json"), FileClass::Snapshot);
        assert_eq!(FileClass::of("14.targets.json"), FileClass::TargetsMetadata);
        assert_eq!(
            FileClass::of("8.registry.npmjs.org.json"),
            FileClass::TargetsMetadata
        );
        assert_eq!(
            FileClass::of("targets/6494e2.trusted_root.json"),
            FileClass::Target
        );
    }

    #[test]
    fn roles_are_named_from_file_names() {
        assert_eq!(role_of("15.root.json"), Some(Role::Root));
        assert_eq!(role_of("timestamp.json"), Some(Role::Timestamp));
        assert_eq!(role_of("snapshot.json"), Some(Role::Snapshot));
        assert_eq!(role_of("14.targets.json"), Some(Role::Targets));
        assert_eq!(
            role_of("8.registry.npmjs.org.json"),
            Some(Role::Delegated("registry.npmjs.org".into()))
        );
        assert_eq!(role_of("targets/abc.trusted_root.json"), None);
    }

    #[test]
    fn role_type_missing_wrong_or_not_a_string() {
        let doc = |t: &str| format!(r#"{{"signed":{t},"signatures":[]}}"#);
        assert!(check_role_type("2.root.json", doc(r#"{"_type":"root"}"#).as_bytes()).is_ok());
        assert!(check_role_type("targets/x.json", b"not json at all").is_ok());
        for (file, signed) in [
            ("2.root.json", r#"{"_type":"targets"}"#),
            ("timestamp.json", r#"{"_type":"snapshot"}"#),
            ("3.snapshot.json", r#"{}"#),
            ("4.targets.json", r#"{"_type":4}"#),
            ("8.registry.npmjs.org.json", r#"{"_type":"root"}"#),
        ] {
            assert!(
                check_role_type(file, doc(signed).as_bytes()).is_err(),
                "{file} {signed}"
            );
        }
    }

    #[test]
    fn unsafe_relative_paths_are_refused() {
        assert!(is_safe_relative("14.targets.json"));
        assert!(is_safe_relative("targets/abc.trusted_root.json"));
        assert!(is_safe_relative("targets/registry.npmjs.org/abc.keys.json"));
        for bad in [
            "",
            "../x.json",
            "a/../b",
            "targets/../x",
            "/etc/passwd",
            "sub/1.root.json",
            "targets//x",
            "x y.json",
            "targets/.",
        ] {
            assert!(!is_safe_relative(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn urls_outside_the_repository_have_no_relative_path() {
        let base = Url::parse("https://mirror.example/repo/").unwrap();
        let t = GuardedTransport::new(
            Box::new(tough::FilesystemTransport),
            base,
            Limits::default(),
            Source::Mirror,
        );
        let ok = Url::parse("https://mirror.example/repo/timestamp.json").unwrap();
        assert_eq!(t.relative(&ok).as_deref(), Some("timestamp.json"));
        for bad in [
            "https://mirror.example/other/timestamp.json",
            "https://evil.example/repo/timestamp.json",
            "https://mirror.example/repo/timestamp.json?x=1",
            "https://mirror.example/repo/a/b.json",
        ] {
            assert_eq!(t.relative(&Url::parse(bad).unwrap()), None, "{bad}");
        }
    }
}
