//! Entity references, `[kind:][namespace/]name`, parsed and compared the way Backstage does.

use std::fmt;

/// Default namespace of every entity that names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A reference that cannot be parsed; the text is Backstage's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// The reference text is empty.
    #[error("Entity reference must not be empty")]
    Empty,
    /// One of the parts is present but empty, like `component:` or `/name`.
    #[error("Entity reference \"{0}\" was not on the form [<kind>:][<namespace>/]<name>")]
    Malformed(String),
    /// No kind in the text and no default kind for this field.
    #[error(
        "Entity reference \"{0}\" had missing or empty kind (e.g. did not start with \"component:\" or similar)"
    )]
    MissingKind(String),
}

/// The parts of a reference, borrowed from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefParts<'a> {
    /// `kind` before the `:`, if given.
    pub kind: Option<&'a str>,
    /// `namespace` before the `/`, if given.
    pub namespace: Option<&'a str>,
    /// The name.
    pub name: &'a str,
}

/// Splits reference text into its parts without allocating; a `/` before the first `:` means the
/// text has no kind.
pub fn split_ref(text: &str) -> Result<RefParts<'_>, RefError> {
    if text.is_empty() {
        return Err(RefError::Empty);
    }
    let slash = text.find('/');
    let colon = text.find(':').filter(|&c| slash.is_none_or(|s| c < s));
    let kind = colon.map(|c| &text[..c]);
    let name_from = match (colon, slash) {
        (_, Some(s)) => s + 1,
        (Some(c), None) => c + 1,
        (None, None) => 0,
    };
    let namespace = slash.map(|s| &text[colon.map_or(0, |c| c + 1)..s]);
    let name = &text[name_from..];
    if kind == Some("") || namespace == Some("") || name.is_empty() {
        return Err(RefError::Malformed(text.to_string()));
    }
    Ok(RefParts {
        kind,
        namespace,
        name,
    })
}

/// A complete entity reference: kind, namespace and name.
#[derive(Debug, Clone, Eq)]
pub struct EntityRef {
    /// Entity kind, as written.
    pub kind: String,
    /// Namespace, as written.
    pub namespace: String,
    /// Name, as written.
    pub name: String,
}

impl EntityRef {
    /// Builds a reference from its three parts.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Parses reference text, filling in a missing kind or namespace from the defaults.
    pub fn parse(
        text: &str,
        default_kind: Option<&str>,
        default_namespace: &str,
    ) -> Result<Self, RefError> {
        let parts = split_ref(text)?;
        let kind = parts
            .kind
            .or(default_kind)
            .ok_or_else(|| RefError::MissingKind(text.to_string()))?;
        Ok(Self::new(
            kind,
            parts.namespace.unwrap_or(default_namespace),
            parts.name,
        ))
    }

    /// The canonical text `kind:namespace/name`, all lowercase.
    pub fn canonical(&self) -> String {
        format!("{self}")
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}/{}",
            self.kind.to_lowercase(),
            self.namespace.to_lowercase(),
            self.name.to_lowercase()
        )
    }
}

impl PartialEq for EntityRef {
    /// References compare case-insensitively, as the catalog does.
    fn eq(&self, other: &Self) -> bool {
        self.kind.eq_ignore_ascii_case(&other.kind)
            && self.namespace.eq_ignore_ascii_case(&other.namespace)
            && self.name.to_lowercase() == other.name.to_lowercase()
    }
}

impl std::hash::Hash for EntityRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.canonical().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() {
        let r = EntityRef::parse("Component:Ns/My-Thing", None, DEFAULT_NAMESPACE).unwrap();
        assert_eq!(r.canonical(), "component:ns/my-thing");
        let r = EntityRef::parse("team-a", Some("Group"), "prod").unwrap();
        assert_eq!(r.canonical(), "group:prod/team-a");
        // A slash before the first colon means there is no kind.
        let r = EntityRef::parse("ns/name:with-colon", Some("User"), DEFAULT_NAMESPACE).unwrap();
        assert_eq!(r.canonical(), "user:ns/name:with-colon");
    }

    #[test]
    fn errors_use_backstage_text() {
        assert_eq!(
            EntityRef::parse("", None, "default")
                .unwrap_err()
                .to_string(),
            "Entity reference must not be empty"
        );
        assert_eq!(
            EntityRef::parse("component:", None, "default")
                .unwrap_err()
                .to_string(),
            "Entity reference \"component:\" was not on the form [<kind>:][<namespace>/]<name>"
        );
        assert_eq!(
            EntityRef::parse("x", None, "default")
                .unwrap_err()
                .to_string(),
            "Entity reference \"x\" had missing or empty kind (e.g. did not start with \"component:\" or similar)"
        );
    }

    #[test]
    fn comparison_ignores_case() {
        let a = EntityRef::new("API", "Default", "Example-MCP");
        let b = EntityRef::new("api", "default", "example-mcp");
        assert_eq!(a, b);
    }
}
