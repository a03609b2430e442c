//! `EntryName`: a path inside a transfer medium that is safe everywhere.
//!
//! Relative, `/`-separated, no empty, `.` or `..` components, a limited
//! character set, and explicit length limits. It deliberately does not act
//! like a `String`: the only way in is [`EntryName::parse`].

use std::fmt;

/// Longest entry name, in bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// Longest single path component, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 128;
/// Deepest nesting.
pub const MAX_DEPTH: usize = 16;

/// Why a name is unsafe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty name.
    #[error("name is empty")]
    Empty,
    /// Over the length limit.
    #[error("name is {0} bytes long (limit {MAX_NAME_BYTES})")]
    TooLong(usize),
    /// A component over its length limit.
    #[error("a path component is {0} bytes long (limit {MAX_COMPONENT_BYTES})")]
    ComponentTooLong(usize),
    /// Too deep.
    #[error("name nests {0} directories deep (limit {MAX_DEPTH})")]
    TooDeep(usize),
    /// Absolute path.
    #[error("name is absolute (starts with '/')")]
    Absolute,
    /// `.` or `..` or an empty component.
    #[error("name has a '{0}' component")]
    BadComponent(String),
    /// A character outside the allowed set.
    #[error("name has the disallowed character {0:?} (allowed: letters, digits, and . _ - + @ = , ~ % /)")]
    BadCharacter(char),
}

/// A validated name of an entry in a medium.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryName(String);

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '.' | '_' | '-' | '+' | '@' | '=' | ',' | '~' | '%' | '/')
}

impl EntryName {
    /// Validates `text` as an entry name.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        if text.len() > MAX_NAME_BYTES {
            return Err(NameError::TooLong(text.len()));
        }
        if text.starts_with('/') {
            return Err(NameError::Absolute);
        }
        if let Some(c) = text.chars().find(|c| !allowed(*c)) {
            return Err(NameError::BadCharacter(c));
        }
        let components: Vec<&str> = text.split('/').collect();
        if components.len() > MAX_DEPTH {
            return Err(NameError::TooDeep(components.len()));
        }
        for component in &components {
            match *component {
                "" => return Err(NameError::BadComponent(String::new())),
                "." | ".." => return Err(NameError::BadComponent((*component).to_string())),
                c if c.len() > MAX_COMPONENT_BYTES => {
                    return Err(NameError::ComponentTooLong(c.len()))
                }
                _ => {}
            }
        }
        Ok(EntryName(text.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Joins a prefix directory and this name (`prefix/name`), re-validating.
    pub fn under(&self, prefix: &str) -> Result<EntryName, NameError> {
        EntryName::parse(&format!("{prefix}/{}", self.0))
    }

    /// The name with its first component removed, if it has more than one.
    pub fn strip_first(&self) -> Option<(&str, EntryName)> {
        let (first, rest) = self.0.split_once('/')?;
        Some((first, EntryName(rest.to_string())))
    }

    /// The path of this entry below `root` on the local filesystem.
    pub fn to_path(&self, root: &std::path::Path) -> std::path::PathBuf {
        self.0.split('/').fold(root.to_path_buf(), |p, c| p.join(c))
    }
}

impl fmt::Display for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_artifact_names() {
        for ok in [
            "a.txt",
            "requests-2.32.3-py3-none-any.whl",
            "pkgs/npm/@scope+pkg-1.0.0.tgz",
            "x=1,y~2%20",
        ] {
            assert_eq!(EntryName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_unsafe_names() {
        assert_eq!(EntryName::parse(""), Err(NameError::Empty));
        assert_eq!(EntryName::parse("/etc/passwd"), Err(NameError::Absolute));
        assert!(matches!(
            EntryName::parse("../x"),
            Err(NameError::BadComponent(_))
        ));
        assert!(matches!(
            EntryName::parse("a/../../x"),
            Err(NameError::BadComponent(_))
        ));
        assert!(matches!(
            EntryName::parse("a/./x"),
            Err(NameError::BadComponent(_))
        ));
        assert!(matches!(
            EntryName::parse("a//x"),
            Err(NameError::BadComponent(_))
        ));
        assert!(matches!(
            EntryName::parse("a/"),
            Err(NameError::BadComponent(_))
        ));
        assert!(matches!(
            EntryName::parse("a\\b"),
            Err(NameError::BadCharacter('\\'))
        ));
        assert!(matches!(
            EntryName::parse("a\nb"),
            Err(NameError::BadCharacter('\n'))
        ));
        assert!(matches!(
            EntryName::parse("a\u{0}b"),
            Err(NameError::BadCharacter(_))
        ));
        assert!(matches!(
            EntryName::parse("caf\u{e9}"),
            Err(NameError::BadCharacter(_))
        ));
        assert!(matches!(
            EntryName::parse("a b"),
            Err(NameError::BadCharacter(' '))
        ));
        assert!(matches!(
            EntryName::parse(&"a".repeat(256)),
            Err(NameError::TooLong(256))
        ));
        assert!(matches!(
            EntryName::parse(&"b".repeat(129)),
            Err(NameError::ComponentTooLong(129))
        ));
        assert!(matches!(
            EntryName::parse(&"d/".repeat(16).to_string().add_x()),
            Err(NameError::TooDeep(17))
        ));
    }

    trait AddX {
        fn add_x(self) -> String;
    }
    impl AddX for String {
        fn add_x(mut self) -> String {
            self.push('x');
            self
        }
    }
}
