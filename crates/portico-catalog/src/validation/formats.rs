//! Field formats of `@backstage/catalog-model`'s validator functions, hand-written (no regex) so
//! that validating an entity costs a few hundred nanoseconds.

/// `^[a-z0-9]+(?:-+[a-z0-9]+)*$`, 1–63 characters.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// 1–253 characters, every `.`-separated label a DNS label.
pub fn is_dns_subdomain(s: &str) -> bool {
    let b = s.as_bytes();
    if !(1..=253).contains(&b.len()) {
        return false;
    }
    let mut label_start = 0;
    for i in 0..=b.len() {
        if i == b.len() || b[i] == b'.' {
            let label = &b[label_start..i];
            let ok = (1..=63).contains(&label.len())
                && label
                    .iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && label[0] != b'-'
                && label[label.len() - 1] != b'-';
            if !ok {
                return false;
            }
            label_start = i + 1;
        }
    }
    true
}

/// `[prefix/]suffix` with at most one `/`, each side checked by its own rule.
fn is_prefix_and_or_suffix(s: &str, prefix: fn(&str) -> bool, suffix: fn(&str) -> bool) -> bool {
    match s.bytes().position(|c| c == b'/') {
        None => suffix(s),
        Some(i) => {
            let rest = &s[i + 1..];
            !rest.bytes().any(|c| c == b'/') && prefix(&s[..i]) && suffix(rest)
        }
    }
}

/// `apiVersion`: optional DNS-subdomain prefix, suffix `^[a-z0-9A-Z]+$` of 1–63 characters.
pub fn is_api_version(s: &str) -> bool {
    is_prefix_and_or_suffix(s, is_dns_subdomain, |n| {
        (1..=63).contains(&n.len()) && n.bytes().all(|c| c.is_ascii_alphanumeric())
    })
}

/// `kind`: `^[a-zA-Z][a-z0-9A-Z]*$`, 1–63 characters.
pub fn is_kind(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b[0].is_ascii_alphabetic()
        && b.iter().all(u8::is_ascii_alphanumeric)
}

/// Entity names, label values: `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`, 1–63 characters
/// (all ASCII, so bytes and JavaScript's UTF-16 length agree).
pub fn is_object_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// `metadata.namespace`: a DNS label.
pub fn is_namespace(s: &str) -> bool {
    is_dns_label(s)
}

/// Label and annotation keys: optional DNS-subdomain prefix, the name rule after it.
pub fn is_label_or_annotation_key(s: &str) -> bool {
    is_prefix_and_or_suffix(s, is_dns_subdomain, is_object_name)
}

/// Label values: empty, or the name rule.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_object_name(s)
}

/// Tags: `^[a-z0-9:+#]+(\-[a-z0-9:+#]+)*$`, 1–63 characters.
pub fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    let ok =
        |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b':' | b'+' | b'#');
    (1..=63).contains(&b.len())
        && b.iter().all(|c| ok(c) || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && !s.contains("--")
}

/// A non-empty string after trimming whitespace, as JavaScript's `trim()` sees whitespace.
pub fn is_non_empty(s: &str) -> bool {
    s.chars().any(|c| !(c.is_whitespace() || c == '\u{feff}'))
}

/// A string that `new URL(value)` accepts: an absolute URL of any scheme.
pub fn is_url(s: &str) -> bool {
    url::Url::parse(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_object_name("a"));
        assert!(is_object_name("a-b_c.d"));
        assert!(!is_object_name("-a"));
        assert!(!is_object_name("a."));
        assert!(is_object_name(&"a".repeat(63)));
        assert!(!is_object_name(&"a".repeat(64)));
        assert!(!is_object_name("é"));
    }

    #[test]
    fn dns_labels_allow_repeated_dashes_inside() {
        assert!(is_dns_label("a--b"));
        assert!(!is_dns_label("A"));
        assert!(!is_dns_label("a-"));
    }

    #[test]
    fn tags_do_not_allow_repeated_dashes() {
        assert!(is_tag("a:b+c#d-e"));
        assert!(!is_tag("a--b"));
        assert!(!is_tag("Java"));
    }

    #[test]
    fn keys_and_versions() {
        assert!(is_label_or_annotation_key("mcp.spotify.com/auth-api-id"));
        assert!(!is_label_or_annotation_key("a/b/c"));
        assert!(!is_label_or_annotation_key("Mcp.com/x"));
        assert!(is_api_version("backstage.io/v1alpha1"));
        assert!(is_api_version("v1"));
        assert!(!is_api_version("backstage.io/v1-alpha"));
    }
}
