//! The signing policy: a TOML file reviewed like code. Which trust root, and
//! which signers may sign which artifacts. Anything no rule allows is denied.
//!
//! ```toml
//! [trust]
//! tuf-mirror = "https://tuf-repo-cdn.sigstore.dev"   # or file:///path
//! tuf-root = "production"                             # or a root.json path, relative to this file
//!
//! [[rule]]
//! name = "release workflow"
//! artifacts = ["dist/*.whl", "*.tar.gz"]
//! signers = [
//!   { identity = "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main",
//!     issuer = "https://token.actions.githubusercontent.com" },
//!   { identity-regexp = "^https://github.com/org/", issuer = "https://token.actions.githubusercontent.com" },
//! ]
//! keys = ["keys/release.pub"]   # managed keys (PEM), relative to this file
//! ```
//! Parsing takes bytes and returns a typed policy; key files are read by the caller.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::bundle::{IdentityPolicy, Matcher, SignerPolicy};
use crate::crypto::VerifyingKey;
use crate::medium::EntryName;

/// Largest policy file accepted.
pub const MAX_POLICY_BYTES: usize = 1 << 20;

/// Why a policy file is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not valid TOML or not the policy schema.
    #[error("{0}")]
    Toml(String),
    /// A field is invalid.
    #[error("rule {rule:?}: {problem}")]
    Rule {
        /// The rule's name (or index).
        rule: String,
        /// What is wrong.
        problem: String,
    },
    /// The trust section is invalid.
    #[error("[trust]: {0}")]
    Trust(String),
    /// The import section is invalid.
    #[error("[import]: {0}")]
    Import(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PolicyToml {
    trust: Option<TrustToml>,
    import: Option<ImportToml>,
    #[serde(default)]
    rule: Vec<RuleToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ImportToml {
    max_transit_age_days: Option<u32>,
    identity: Option<String>,
    max_medium_size: Option<SizeToml>,
    max_metadata_size: Option<SizeToml>,
    conda_channel: Option<String>,
}

/// A size in bytes: an integer, or a string with K, M, G or T (powers of 1024).
#[derive(Deserialize)]
#[serde(untagged)]
enum SizeToml {
    Bytes(u64),
    Text(String),
}

impl SizeToml {
    fn bytes(&self, key: &str) -> Result<u64, PolicyError> {
        let bad = || {
            PolicyError::Import(format!(
                "{key} must be a positive number of bytes, or a number with K, M, G or T (like \"512M\")"
            ))
        };
        let n = match self {
            SizeToml::Bytes(n) => *n,
            SizeToml::Text(text) => {
                let t = text.trim();
                let (digits, shift) = match t.as_bytes().last().map(u8::to_ascii_uppercase) {
                    Some(b'K') => (&t[..t.len() - 1], 10),
                    Some(b'M') => (&t[..t.len() - 1], 20),
                    Some(b'G') => (&t[..t.len() - 1], 30),
                    Some(b'T') => (&t[..t.len() - 1], 40),
                    _ => (t, 0),
                };
                let n: u64 = digits.trim().parse().map_err(|_| bad())?;
                n.checked_mul(1 << shift).ok_or_else(bad)?
            }
        };
        if n == 0 {
            return Err(bad());
        }
        Ok(n)
    }
}

/// High-side import settings (`[import]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportConfig {
    /// Oldest export time accepted, in days before now.
    pub max_transit_age_days: u32,
    /// Identity of re-signed leaves (default: the CA's).
    pub identity: Option<String>,
    /// Largest medium accepted (the total of its entries), checked while it
    /// is read, before its signature can be.
    pub max_medium_bytes: u64,
    /// Largest total of bundles, TUF metadata and other small entries,
    /// which are held in memory while the medium is read.
    pub max_metadata_bytes: u64,
    /// The enclave's conda channel URL, stated as `targetChannel` in the CEP 27
    /// publish attestations of imported conda packages (none: not stated).
    pub conda_channel: Option<String>,
}

impl Default for ImportConfig {
    /// 30 days in transit, the CA's identity, media up to 1 TiB with up to
    /// 512 MiB of metadata.
    fn default() -> Self {
        ImportConfig {
            max_transit_age_days: 30,
            identity: None,
            max_medium_bytes: 1 << 40,
            max_metadata_bytes: 512 << 20,
            conda_channel: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TrustToml {
    tuf_mirror: Option<String>,
    tuf_root: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RuleToml {
    name: Option<String>,
    #[serde(default)]
    artifacts: Vec<String>,
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    signers: Vec<SignerToml>,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    allow_replace: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SignerToml {
    identity: Option<String>,
    identity_regexp: Option<String>,
    issuer: Option<String>,
    issuer_regexp: Option<String>,
}

/// Where the public trust root comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TufRootSource {
    /// The Sigstore production root embedded in airgate.
    Production,
    /// A pinned `root.json` file.
    File(PathBuf),
}

/// The trust section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustConfig {
    /// The TUF mirror URL, if any.
    pub tuf_mirror: Option<String>,
    /// The pinned TUF root.
    pub tuf_root: TufRootSource,
}

/// A glob over entry names (`globset`, with `/` literal): `*` matches within
/// one path component, `**` across components, `?` one character, `[ab]`
/// and `{a,b}` as usual. Matching is linear in the name's length.
#[derive(Debug, Clone)]
pub struct Glob {
    pattern: String,
    matcher: globset::GlobMatcher,
}

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for Glob {}

impl Glob {
    /// Compiles a pattern.
    pub fn new(pattern: &str) -> Result<Self, String> {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| e.kind().to_string())?;
        Ok(Glob {
            pattern: pattern.to_string(),
            matcher: glob.compile_matcher(),
        })
    }

    /// True when `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }

    /// The pattern.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

/// One rule: artifact patterns and the signers allowed for them.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Human name.
    pub name: String,
    /// Artifact name patterns.
    pub artifacts: Vec<Glob>,
    /// Image repository patterns (`org/app`, `registry.example/**`).
    pub images: Vec<Glob>,
    /// Allowed certificate identities.
    pub signers: Vec<IdentityPolicy>,
    /// Allowed managed keys (paths as written in the policy, resolved).
    pub key_paths: Vec<PathBuf>,
    /// High side: a medium may carry other bytes under a name already
    /// imported (`allow-replace = true`, a reviewed setting).
    pub allow_replace: bool,
}

/// A parsed policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The trust section (required on the low side).
    pub trust: Option<TrustConfig>,
    /// Import settings (high side).
    pub import: ImportConfig,
    /// Rules, in file order.
    pub rules: Vec<Rule>,
}

/// What a policy allows for one artifact.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// Names of the matching rules.
    pub rules: Vec<String>,
    /// Allowed identities (union over matching rules).
    pub identities: Vec<IdentityPolicy>,
    /// Allowed managed keys.
    pub keys: Vec<VerifyingKey>,
    /// A matching rule allows replacing an imported name.
    pub allow_replace: bool,
}

impl Allowed {
    /// The signer policies to try, identities first.
    pub fn signer_policies(&self) -> Vec<SignerPolicy> {
        let mut out = Vec::new();
        if !self.identities.is_empty() {
            out.push(SignerPolicy::AnyIdentity(self.identities.clone()));
        }
        out.extend(
            self.keys
                .iter()
                .map(|k| SignerPolicy::PublicKey(Box::new(k.clone()))),
        );
        out
    }
}

/// A `conda-channel` URL as CEP 27 wants a `targetChannel`: http(s), a
/// host, no credentials, query, fragment or trailing slash.
fn conda_channel(url: &str) -> Result<String, String> {
    let bad = |why: &str| {
        Err(format!(
            "conda-channel = {}: {why} (e.g. \"https://conda.enclave.example/conda\")",
            crate::escape::quoted(url)
        ))
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("not a URL");
    };
    if scheme != "https" && scheme != "http" {
        return bad("not an http or https URL");
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return bad("needs a host and no credentials");
    }
    if url.ends_with('/')
        || url.contains(['?', '#'])
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return bad("no trailing slash, query, fragment or spaces");
    }
    Ok(url.to_string())
}

/// Compiles a rule's patterns (relative globs, no `..`).
fn globs(patterns: &[String], what: &str) -> Result<Vec<Glob>, String> {
    let mut out = Vec::new();
    for pattern in patterns {
        if pattern.is_empty() || pattern.starts_with('/') || pattern.split('/').any(|c| c == "..") {
            return Err(format!(
                "{what} pattern {} must be a relative glob",
                crate::escape::quoted(pattern)
            ));
        }
        out.push(
            Glob::new(pattern)
                .map_err(|e| format!("{what} pattern {}: {e}", crate::escape::quoted(pattern)))?,
        );
    }
    Ok(out)
}

fn matcher(exact: Option<String>, regex: Option<String>, what: &str) -> Result<Matcher, String> {
    match (exact, regex) {
        (Some(e), None) if !e.is_empty() => Ok(Matcher::Exact(e)),
        (None, Some(r)) => Matcher::regex(&r).map_err(|e| format!("invalid {what}-regexp: {e}")),
        (Some(_), Some(_)) => Err(format!("give {what} or {what}-regexp, not both")),
        _ => Err(format!("a signer needs {what} or {what}-regexp")),
    }
}

impl Policy {
    /// Parses policy TOML. Relative paths resolve against `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Self, PolicyError> {
        let toml: PolicyToml = toml::from_str(text)
            .map_err(|e| PolicyError::Toml(crate::escape::toml_error(text, &e)))?;
        let trust = match toml.trust {
            None => None,
            Some(t) => {
                let tuf_root = match t.tuf_root.as_deref() {
                    None | Some("production") => TufRootSource::Production,
                    Some("") => return Err(PolicyError::Trust("tuf-root is empty".into())),
                    Some(path) => TufRootSource::File(base_dir.join(path)),
                };
                if let Some(m) = &t.tuf_mirror {
                    if !(m.starts_with("https://")
                        || m.starts_with("http://")
                        || m.starts_with("file://"))
                    {
                        return Err(PolicyError::Trust(format!(
                            "tuf-mirror {m:?} is not an https, http or file URL"
                        )));
                    }
                }
                Some(TrustConfig {
                    tuf_mirror: t.tuf_mirror,
                    tuf_root,
                })
            }
        };
        let import = match toml.import {
            None => ImportConfig::default(),
            Some(i) => {
                let defaults = ImportConfig::default();
                let days = i.max_transit_age_days.unwrap_or(30);
                if days == 0 || days > 3650 {
                    return Err(PolicyError::Import(
                        "max-transit-age-days must be 1 to 3650".into(),
                    ));
                }
                ImportConfig {
                    max_transit_age_days: days,
                    identity: i.identity,
                    max_medium_bytes: match &i.max_medium_size {
                        Some(size) => size.bytes("max-medium-size")?,
                        None => defaults.max_medium_bytes,
                    },
                    max_metadata_bytes: match &i.max_metadata_size {
                        Some(size) => size.bytes("max-metadata-size")?,
                        None => defaults.max_metadata_bytes,
                    },
                    conda_channel: match i.conda_channel {
                        Some(url) => Some(conda_channel(&url).map_err(PolicyError::Import)?),
                        None => None,
                    },
                }
            }
        };
        let mut rules = Vec::new();
        for (i, rule) in toml.rule.into_iter().enumerate() {
            let name = rule.name.unwrap_or_else(|| format!("#{}", i + 1));
            let err = |problem: String| PolicyError::Rule {
                rule: name.clone(),
                problem,
            };
            if rule.artifacts.is_empty() && rule.images.is_empty() {
                return Err(err(
                    "artifacts and images are empty: the rule would match nothing".into(),
                ));
            }
            if rule.signers.is_empty() && rule.keys.is_empty() {
                return Err(err(
                    "no signers and no keys: the rule would allow nobody".into()
                ));
            }
            let artifacts = globs(&rule.artifacts, "artifact").map_err(err)?;
            let images = globs(&rule.images, "image").map_err(err)?;
            let mut signers = Vec::new();
            for s in rule.signers {
                signers.push(IdentityPolicy {
                    identity: matcher(s.identity, s.identity_regexp, "identity").map_err(err)?,
                    issuer: matcher(s.issuer, s.issuer_regexp, "issuer").map_err(err)?,
                });
            }
            rules.push(Rule {
                name: name.clone(),
                artifacts,
                images,
                signers,
                key_paths: rule.keys.iter().map(|k| base_dir.join(k)).collect(),
                allow_replace: rule.allow_replace,
            });
        }
        Ok(Policy {
            trust,
            import,
            rules,
        })
    }

    /// What the policy allows for `name`, or `None` (default deny).
    pub fn allowed(
        &self,
        name: &EntryName,
        keys: &dyn Fn(&Path) -> Option<VerifyingKey>,
    ) -> Option<Allowed> {
        let matching: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.artifacts.iter().any(|g| g.matches(name.as_str())))
            .collect();
        allowed_by(&matching, keys)
    }

    /// What the policy allows for an image repository (`org/app`), or
    /// `None` (default deny): the rules whose `images` patterns match.
    pub fn allowed_image(
        &self,
        repository: &str,
        keys: &dyn Fn(&Path) -> Option<VerifyingKey>,
    ) -> Option<Allowed> {
        let matching: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.images.iter().any(|g| g.matches(repository)))
            .collect();
        allowed_by(&matching, keys)
    }

    /// Every key file the rules reference.
    pub fn key_paths(&self) -> Vec<&Path> {
        self.rules
            .iter()
            .flat_map(|r| r.key_paths.iter().map(PathBuf::as_path))
            .collect()
    }
}

/// The union of what matching rules allow (`None` when none match).
fn allowed_by(matching: &[&Rule], keys: &dyn Fn(&Path) -> Option<VerifyingKey>) -> Option<Allowed> {
    if matching.is_empty() {
        return None;
    }
    Some(Allowed {
        rules: matching.iter().map(|r| r.name.clone()).collect(),
        identities: matching
            .iter()
            .flat_map(|r| r.signers.iter().cloned())
            .collect(),
        keys: matching
            .iter()
            .flat_map(|r| r.key_paths.iter())
            .filter_map(|p| keys(p))
            .collect(),
        allow_replace: matching.iter().any(|r| r.allow_replace),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
[trust]
tuf-mirror = "file:///mirror"
tuf-root = "root.json"

[[rule]]
name = "beacon"
artifacts = ["*.txt", "docs/**"]
signers = [{ identity = "https://example.com/id", issuer = "https://issuer.example" }]

[[rule]]
artifacts = ["bin/*"]
signers = [{ identity-regexp = "^https://github.com/org/", issuer = "https://token.actions.githubusercontent.com" }]
"#;

    fn none(_: &Path) -> Option<VerifyingKey> {
        None
    }

    #[test]
    fn parses_and_matches_with_default_deny() {
        let p = Policy::parse(POLICY, Path::new("/cfg")).unwrap();
        let trust = p.trust.clone().unwrap();
        assert_eq!(
            trust.tuf_root,
            TufRootSource::File(PathBuf::from("/cfg/root.json"))
        );
        let a = p
            .allowed(&EntryName::parse("a.txt").unwrap(), &none)
            .unwrap();
        assert_eq!(a.rules, vec!["beacon".to_string()]);
        assert!(p
            .allowed(&EntryName::parse("docs/x/y.md").unwrap(), &none)
            .is_some());
        assert!(p
            .allowed(&EntryName::parse("bin/tool").unwrap(), &none)
            .is_some());
        assert!(p
            .allowed(&EntryName::parse("bin/sub/tool").unwrap(), &none)
            .is_none());
        assert!(p
            .allowed(&EntryName::parse("sub/a.txt").unwrap(), &none)
            .is_none());
        assert!(p
            .allowed(&EntryName::parse("a.whl").unwrap(), &none)
            .is_none());
    }

    #[test]
    fn globs() {
        let g = |p: &str, n: &str| Glob::new(p).unwrap().matches(n);
        assert!(g("*", "a"));
        assert!(!g("*", "a/b"));
        assert!(g("**", "a/b/c"));
        assert!(g("**/*.whl", "x.whl"));
        assert!(g("**/*.whl", "a/b/x.whl"));
        assert!(g("a/**/z", "a/z"));
        assert!(g("a/**/z", "a/b/c/z"));
        assert!(g("?.txt", "a.txt"));
        assert!(!g("?.txt", "ab.txt"));
        assert!(g("pkg-*.tar.gz", "pkg-1.0.tar.gz"));
        assert!(g("{a,b}/*.whl", "b/x.whl"));
    }

    /// The hand-written matcher this replaced backtracked exponentially on
    /// patterns like `*a*a*a…b`; globset compiles to a linear-time matcher.
    #[test]
    fn glob_with_many_stars_matches_in_linear_time() {
        let pattern = format!("{}b", "*a".repeat(40));
        let name = "a".repeat(200);
        let started = std::time::Instant::now();
        assert!(!Glob::new(&pattern).unwrap().matches(&name));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn malformed_glob_is_refused_naming_the_rule() {
        let bad = "[[rule]]\nname = \"r\"\nartifacts = [\"a[\"]\nsigners = [{ identity = \"a\", issuer = \"b\" }]";
        assert!(
            matches!(Policy::parse(bad, Path::new(".")), Err(PolicyError::Rule { rule, .. }) if rule == "r")
        );
    }

    #[test]
    fn invalid_policies_are_refused_with_the_rule_named() {
        let bad = r#"[[rule]]
name = "empty"
artifacts = []
signers = [{ identity = "a", issuer = "b" }]"#;
        assert!(
            matches!(Policy::parse(bad, Path::new(".")), Err(PolicyError::Rule { rule, .. }) if rule == "empty")
        );
        let bad = r#"[[rule]]
artifacts = ["*"]"#;
        assert!(Policy::parse(bad, Path::new(".")).is_err());
        let bad = r#"[[rule]]
artifacts = ["*"]
signers = [{ identity = "a", identity-regexp = "b", issuer = "c" }]"#;
        assert!(Policy::parse(bad, Path::new(".")).is_err());
        let bad = r#"[[rule]]
artifacts = ["../*"]
signers = [{ identity = "a", issuer = "c" }]"#;
        assert!(Policy::parse(bad, Path::new(".")).is_err());
        assert!(matches!(
            Policy::parse("unknown = 1", Path::new(".")),
            Err(PolicyError::Toml(_))
        ));
        assert!(matches!(
            Policy::parse("[trust]\ntuf-mirror = \"ftp://x\"", Path::new(".")),
            Err(PolicyError::Trust(_))
        ));
    }

    #[test]
    fn import_size_limits_parse_with_units_and_default() {
        let p = Policy::parse(
            "[import]\nmax-medium-size = \"2G\"\nmax-metadata-size = 1048576",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(p.import.max_medium_bytes, 2 << 30);
        assert_eq!(p.import.max_metadata_bytes, 1 << 20);
        let p = Policy::parse("[import]\nmax-transit-age-days = 7", Path::new(".")).unwrap();
        assert_eq!(
            p.import.max_medium_bytes,
            ImportConfig::default().max_medium_bytes
        );
        assert_eq!(p.import.max_metadata_bytes, 512 << 20);
    }

    #[test]
    fn import_size_limit_zero_or_garbage_is_refused() {
        for bad in [
            "0",
            "\"0M\"",
            "\"12Q\"",
            "\"lots\"",
            "\"99999999999T\"",
            "-1",
        ] {
            let text = format!("[import]\nmax-medium-size = {bad}");
            assert!(
                matches!(
                    Policy::parse(&text, Path::new(".")),
                    Err(PolicyError::Import(_)) | Err(PolicyError::Toml(_))
                ),
                "{bad} accepted"
            );
        }
        assert!(matches!(
            Policy::parse("[import]\nmax-transit-age-days = 0", Path::new(".")),
            Err(PolicyError::Import(_))
        ));
    }

    #[test]
    fn conda_channel_is_a_plain_http_url() {
        let p = Policy::parse(
            "[import]\nconda-channel = \"https://conda.enclave.example/conda\"",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(
            p.import.conda_channel.as_deref(),
            Some("https://conda.enclave.example/conda")
        );
        for bad in [
            "conda.example/c",
            "ftp://h/c",
            "https://u:p@h/c",
            "https://h/c/",
            "https://h/c?x=1",
            "https:///c",
        ] {
            let text = format!("[import]\nconda-channel = \"{bad}\"");
            let err = Policy::parse(&text, Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(err.contains("conda-channel"), "{bad}: {err}");
        }
    }
}
