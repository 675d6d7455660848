//! Model-safe tool names: `^[A-Za-z0-9_-]{1,64}$`, deterministic, collision-free across
//! servers. A tool keeps the readable `server__tool` when that is already safe and
//! unambiguous; otherwise the name is shortened and sanitized and ends in `_` plus ten hex
//! digits of a hash of the full server ref and tool name. Readable names never end in that
//! pattern, so the two forms cannot collide; the pool keeps a map back to (server, tool) and
//! refuses the rare hash collision instead of guessing.

use sha2::{Digest, Sha256};

/// Longest name model APIs accept.
pub const MAX_LEN: usize = 64;
const HASH_LEN: usize = 10;
const SEP: &str = "__";

/// Whether `name` is acceptable to model APIs.
pub fn is_model_safe(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn ends_like_hash(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() > HASH_LEN
        && b[b.len() - HASH_LEN - 1] == b'_'
        && b[b.len() - HASH_LEN..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// Splits an entity ref `kind:namespace/name` into (namespace, name); missing parts default.
fn ref_parts(server_ref: &str) -> (&str, &str) {
    let rest = server_ref.split_once(':').map_or(server_ref, |(_, r)| r);
    match rest.split_once('/') {
        Some((ns, name)) => (ns, name),
        None => ("default", rest),
    }
}

fn sanitize(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if out.len() >= max {
            break;
        }
        if c.is_ascii_alphanumeric() || c == '-' {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_matches('_');
    if trimmed.is_empty() {
        "x".into()
    } else {
        trimmed.to_string()
    }
}

/// The model-safe name of `tool` on the server with entity ref `server_ref`.
pub fn model_safe_name(server_ref: &str, tool: &str) -> String {
    let (namespace, name) = ref_parts(server_ref);
    let plain = format!("{name}{SEP}{tool}");
    let readable = namespace.eq_ignore_ascii_case("default")
        && !name.is_empty()
        && !name.contains(SEP)
        && is_model_safe(name)
        && is_model_safe(&plain)
        && !ends_like_hash(tool);
    if readable {
        return plain;
    }
    let mut h = Sha256::new();
    h.update(server_ref.as_bytes());
    h.update(b"\n");
    h.update(tool.as_bytes());
    let hash: String = h.finalize()[..HASH_LEN / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let prefix = sanitize(name, 20);
    let room = MAX_LEN - HASH_LEN - 1 - prefix.len() - SEP.len();
    let tool_part = sanitize(tool, room);
    format!("{prefix}{SEP}{tool_part}_{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_when_safe() {
        assert_eq!(
            model_safe_name("api:default/github", "create_issue"),
            "github__create_issue"
        );
        assert_eq!(model_safe_name("github", "list"), "github__list");
    }

    #[test]
    fn hashed_when_not() {
        for (server, tool) in [
            ("api:team-a/github", "create_issue"),
            ("api:default/my.server", "x"),
            ("api:default/s", "tool with spaces/and:colons"),
            ("api:default/s", &"t".repeat(100)),
            ("api:default/s", "ünïcödé"),
            ("api:default/s", "tool_0123456789"),
        ] {
            let n = model_safe_name(server, tool);
            assert!(is_model_safe(&n), "{n}");
            assert!(ends_like_hash(&n), "{n}");
            assert_eq!(n, model_safe_name(server, tool), "deterministic");
        }
    }

    #[test]
    fn namespaces_do_not_collide() {
        let a = model_safe_name("api:default/github", "create_issue");
        let b = model_safe_name("api:team/github", "create_issue");
        let c = model_safe_name("api:other/github", "create_issue");
        assert_ne!(a, b);
        assert_ne!(b, c);
    }
}
