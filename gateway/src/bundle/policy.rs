//! Who must have signed: certificate identity policies and managed keys.

use regex::Regex;

use crate::crypto::VerifyingKey;

/// Matches a string exactly or against a regular expression.
///
/// Regular expressions follow cosign's `--certificate-identity-regexp`:
/// they match anywhere in the value unless anchored with `^`/`$`.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Exact string equality.
    Exact(String),
    /// Regular expression search.
    Regex(Regex),
}

impl Matcher {
    /// Compiles a regular expression matcher (size-limited).
    pub fn regex(pattern: &str) -> Result<Self, regex::Error> {
        regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map(Matcher::Regex)
    }

    /// True when `value` satisfies this matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(expected) => expected == value,
            Matcher::Regex(re) => re.is_match(value),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Exact(s) => write!(f, "{s:?}"),
            Matcher::Regex(re) => write!(f, "/{}/", re.as_str()),
        }
    }
}

/// A signer identity (SAN) together with its OIDC issuer.
#[derive(Debug, Clone)]
pub struct IdentityPolicy {
    /// Matcher for the certificate's SAN.
    pub identity: Matcher,
    /// Matcher for the OIDC issuer extension.
    pub issuer: Matcher,
}

impl IdentityPolicy {
    /// An exact identity and issuer.
    pub fn exact(identity: impl Into<String>, issuer: impl Into<String>) -> Self {
        IdentityPolicy {
            identity: Matcher::Exact(identity.into()),
            issuer: Matcher::Exact(issuer.into()),
        }
    }
}

/// What a bundle must be signed by.
#[derive(Debug, Clone)]
pub enum SignerPolicy {
    /// A certificate whose identity satisfies at least one of these.
    AnyIdentity(Vec<IdentityPolicy>),
    /// A managed public key.
    PublicKey(Box<VerifyingKey>),
}

impl SignerPolicy {
    /// A single identity requirement.
    pub fn identity(policy: IdentityPolicy) -> Self {
        SignerPolicy::AnyIdentity(vec![policy])
    }

    /// Human description of what is expected.
    pub fn describe_identities(policies: &[IdentityPolicy]) -> String {
        policies
            .iter()
            .map(|p| format!("{} (issuer {})", p.identity, p.issuer))
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_unanchored_like_cosign() {
        let m = Matcher::regex("example\\.com").unwrap();
        assert!(m.matches("https://example.com/x"));
        let anchored = Matcher::regex("^https://example\\.com$").unwrap();
        assert!(!anchored.matches("https://example.com/x"));
    }

    #[test]
    fn exact_is_exact() {
        assert!(Matcher::Exact("a".into()).matches("a"));
        assert!(!Matcher::Exact("a".into()).matches("ab"));
    }
}
