//! Copy-paste verification recipes printed after import, at serve start
//! and by `artifact get`: the real identity, issuer and trust files.

use std::path::Path;

/// Shell-quotes one word when it needs it (single quotes, `'` escaped).
fn sh(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+=,".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Verifying a local artifact and airgate's bundle with sigstore-python
/// (`trust_config.json`) and with `airgate verify` (`trusted_root.json`).
pub fn local(state: &Path, bundle: &Path, artifact: &Path, identity: &str, issuer: &str) -> String {
    let p = |p: &Path| sh(&p.display().to_string());
    format!(
        "  sigstore --trust-config {tc} verify identity --offline --bundle {b} --cert-identity {i} --cert-oidc-issuer {o} {a}\n  \
         airgate verify --trusted-root {tr} --bundle {b} --certificate-identity {i} --certificate-oidc-issuer {o} {a}",
        tc = p(&state.join("trust_config.json")),
        tr = p(&state.join("trusted_root.json")),
        b = p(bundle),
        a = p(artifact),
        i = sh(identity),
        o = sh(issuer),
    )
}

/// Fetching an artifact and its `.sigs` from a server at `base`, then
/// verifying with the enclave's root: `airgate verify` reads the `.sigs`
/// array itself; sigstore-python bootstraps from the served TUF repository
/// (`1.root.json` pinned once, out of band) and takes airgate's bundle, the
/// element at `element` of the array.
pub fn served(base: &str, name: &str, element: usize, identity: &str, issuer: &str) -> String {
    let file = name.rsplit('/').next().unwrap_or(name);
    format!(
        "  curl -fsSO {base}/artifacts/{n} -fsSO {base}/artifacts/{n}.sigs\n  \
         airgate verify --trusted-root trusted_root.json --bundle {f}.sigs --certificate-identity {i} --certificate-oidc-issuer {o} {f}\n  \
         sigstore --instance {base}/tuf trust-instance 1.root.json   # 1.root.json pinned out of band\n  \
         python3 -c 'import json,sys; json.dump(json.load(open(sys.argv[1]))[{element}], open(sys.argv[2], \"w\"))' {f}.sigs {f}.sigstore.json\n  \
         sigstore --instance {base}/tuf verify identity --bundle {f}.sigstore.json --cert-identity {i} --cert-oidc-issuer {o} {f}",
        n = sh(name),
        f = sh(file),
        i = sh(identity),
        o = sh(issuer),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_with_shell_syntax_are_quoted() {
        assert_eq!(sh("https://a.b/c@d"), "https://a.b/c@d");
        assert_eq!(sh("a b"), "'a b'");
        assert_eq!(sh("it's"), "'it'\\''s'");
        assert_eq!(sh("$(x)"), "'$(x)'");
        assert_eq!(sh(""), "''");
    }

    #[test]
    fn local_recipe_names_both_trust_files() {
        let r = local(
            Path::new("/s"),
            Path::new("/o/a.sigstore.json"),
            Path::new("/o/a"),
            "https://id",
            "https://iss",
        );
        assert!(r.contains("--trust-config /s/trust_config.json"));
        assert!(r.contains("--trusted-root /s/trusted_root.json"));
        assert!(r.contains("--cert-identity https://id --cert-oidc-issuer https://iss /o/a"));
    }
}
