//! `spec.definition`: an MCP registry `server.json` (schema 2025-09-29) as YAML or JSON text,
//! checked against the registry schema and its semantic rules.

use serde_json::{Map, Value};

use super::{Remote, RemotePolicy, Transport};

/// What Portico keeps of a valid definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDefinition {
    /// Registry name, `namespace/name`.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Version of the server.
    pub version: String,
    /// Optional display title.
    pub title: Option<String>,
    /// Remote endpoints in the order given.
    pub remotes: Vec<Remote>,
}

/// Collects problems under `spec.definition`.
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, path: &str, message: impl std::fmt::Display) {
        self.0.push(format!("spec.definition: {path} {message}"));
    }
}

/// Parses and validates the definition text. Every problem is listed; the definition is returned
/// (with empty text for missing fields) whenever the text is a mapping, so that its usable remotes
/// can still be shown.
pub fn parse(text: &str, policy: &RemotePolicy) -> (Option<ServerDefinition>, Vec<String>) {
    let value = match crate::yaml::parse_single(text) {
        Ok(Some(value)) => value,
        Ok(None) => {
            return (
                None,
                vec!["spec.definition is empty; it must hold a server.json as YAML or JSON".into()],
            );
        }
        Err(e) => {
            return (
                None,
                vec![format!("spec.definition is not valid YAML or JSON: {e}")],
            );
        }
    };
    let Value::Object(map) = value else {
        let message = format!(
            "spec.definition must be a mapping (a server.json object), got {}",
            crate::js::type_of(&value)
        );
        return (None, vec![message]);
    };
    let mut problems = Problems(Vec::new());
    let name = required_string(&map, "name", &mut problems);
    let description = required_string(&map, "description", &mut problems);
    let version = required_string(&map, "version", &mut problems);
    if let Some(name) = name {
        check_name(name, &mut problems);
    }
    if let Some(description) = description {
        check_length("description", description, 1, 100, &mut problems);
    }
    if let Some(version) = version {
        check_version(version, &mut problems);
    }
    let title = optional_string(&map, "title", &mut problems);
    if let Some(title) = title {
        check_length("title", title, 1, 100, &mut problems);
    }
    if let Some(url) = optional_string(&map, "websiteUrl", &mut problems) {
        check_uri("websiteUrl", url, &mut problems);
    }
    if let Some(schema) = optional_string(&map, "$schema", &mut problems)
        && !schema.contains(super::SUPPORTED_SCHEMA_VERSION)
    {
        problems.add(
            "$schema",
            format!(
                "names another schema (\"{schema}\"); Portico reads schema {}",
                super::SUPPORTED_SCHEMA_VERSION
            ),
        );
    }
    check_repository(map.get("repository"), &mut problems);
    if map.get("packages").is_some_and(|p| !p.is_array()) {
        problems.add("packages", "must be an array");
    }
    let remotes = remotes(map.get("remotes"), policy, &mut problems);
    let definition = ServerDefinition {
        name: name.unwrap_or_default().to_string(),
        description: description.unwrap_or_default().to_string(),
        version: version.unwrap_or_default().to_string(),
        title: title.map(str::to_string),
        remotes,
    };
    (Some(definition), problems.0)
}

fn required_string<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    problems: &mut Problems,
) -> Option<&'a str> {
    match map.get(key) {
        None => {
            problems.add(key, "is required");
            None
        }
        Some(value) => string_or_problem(value, key, problems),
    }
}

fn optional_string<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    problems: &mut Problems,
) -> Option<&'a str> {
    map.get(key)
        .and_then(|value| string_or_problem(value, key, problems))
}

fn string_or_problem<'a>(value: &'a Value, path: &str, problems: &mut Problems) -> Option<&'a str> {
    let s = value.as_str();
    if s.is_none() {
        problems.add(path, format!("must be a string, found {}", value));
    }
    s
}

fn check_length(path: &str, value: &str, min: usize, max: usize, problems: &mut Problems) {
    let len = value.chars().count();
    if len < min || len > max {
        problems.add(
            path,
            format!("must be {min} to {max} characters long, found {len}"),
        );
    }
}

/// `namespace/name`: the schema pattern plus the registry's semantic rules.
fn check_name(name: &str, problems: &mut Problems) {
    check_length("name", name, 3, 200, problems);
    let Some((namespace, server)) = name.split_once('/') else {
        problems.add("name", format!("must be \"<namespace>/<name>\" in reverse-DNS form, like \"com.example/weather\"; found \"{name}\""));
        return;
    };
    let part_ok = |part: &str, extra: &[char]| {
        part.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || extra.contains(&c))
    };
    if server.contains('/') {
        problems.add(
            "name",
            format!("must contain exactly one \"/\"; found \"{name}\""),
        );
    } else if !part_ok(namespace, &[]) || !part_ok(server, &['_']) {
        problems.add(
            "name",
            format!("may use letters, digits, '.' and '-' before the \"/\" (and also '_' after it); found \"{name}\""),
        );
    }
    for (label, part) in [("namespace", namespace), ("server name", server)] {
        if part.chars().count() < 2 {
            problems.add(
                "name",
                format!("needs a {label} of at least 2 characters; found \"{name}\""),
            );
        } else if part.starts_with(['.', '-']) || part.ends_with(['.', '-']) {
            problems.add(
                "name",
                format!("has a {label} that starts or ends with '.' or '-'; found \"{name}\""),
            );
        }
    }
}

/// A specific version: not `latest`, not a range, at most 255 characters.
fn check_version(version: &str, problems: &mut Problems) {
    if version.chars().count() > 255 {
        problems.add("version", "must be at most 255 characters long");
    }
    if version.trim().is_empty() {
        problems.add("version", "must not be empty");
    } else if version == "latest" {
        problems.add("version", "must be a specific version, not \"latest\"");
    } else if is_range(version) {
        problems.add(
            "version",
            format!("must be a specific version, not a range (found \"{version}\")"),
        );
    }
}

fn is_range(version: &str) -> bool {
    version.starts_with(['^', '~', '>', '<', '='])
        || version.contains("||")
        || version.contains(" - ")
        || version
            .split(['.', '-', '+'])
            .any(|part| matches!(part, "x" | "X" | "*"))
}

fn check_uri(path: &str, value: &str, problems: &mut Problems) {
    if url::Url::parse(value).is_err() {
        problems.add(path, format!("must be an absolute URL, found \"{value}\""));
    }
}

fn check_repository(value: Option<&Value>, problems: &mut Problems) {
    let Some(value) = value else { return };
    let Some(repo) = value.as_object() else {
        problems.add("repository", "must be a mapping with url and source");
        return;
    };
    if let Some(url) = required_string(repo, "url", &mut Problems(Vec::new())) {
        check_uri("repository.url", url, problems);
    } else {
        problems.add("repository.url", "is required and must be a string");
    }
    for key in ["source", "id", "subfolder"] {
        if repo.get(key).is_some_and(|v| !v.is_string())
            || (key == "source" && !repo.contains_key(key))
        {
            problems.add(
                &format!("repository.{key}"),
                if key == "source" {
                    "is required and must be a string"
                } else {
                    "must be a string"
                },
            );
        }
    }
}

fn remotes(value: Option<&Value>, policy: &RemotePolicy, problems: &mut Problems) -> Vec<Remote> {
    let Some(value) = value else {
        problems.add("remotes", "is required: list at least one streamable-http or sse remote for Portico to connect to");
        return Vec::new();
    };
    let Some(items) = value.as_array() else {
        problems.add("remotes", "must be a list of {type, url}");
        return Vec::new();
    };
    if items.is_empty() {
        problems.add(
            "remotes",
            "must list at least one streamable-http or sse remote",
        );
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("remotes[{i}]");
        let Some(remote) = item.as_object() else {
            problems.add(&path, "must be a mapping with type and url");
            continue;
        };
        let transport = match remote.get("type").and_then(Value::as_str) {
            Some("streamable-http") => Some(Transport::StreamableHttp),
            Some("sse") => Some(Transport::Sse),
            Some(other) => {
                problems.add(
                    &format!("{path}.type"),
                    format!("must be \"streamable-http\" or \"sse\", found \"{other}\""),
                );
                None
            }
            None => {
                problems.add(
                    &format!("{path}.type"),
                    "is required: \"streamable-http\" or \"sse\"",
                );
                None
            }
        };
        let url = remote.get("url").and_then(Value::as_str);
        if url.is_none() {
            problems.add(&format!("{path}.url"), "is required and must be a string");
        }
        check_headers(remote.get("headers"), &path, problems);
        if let (Some(transport), Some(url)) = (transport, url) {
            match policy.check(transport, url) {
                Ok(()) => out.push(Remote {
                    transport,
                    url: url.to_string(),
                }),
                Err(why) => problems.add(&format!("{path}.url"), why),
            }
        }
    }
    out
}

fn check_headers(value: Option<&Value>, path: &str, problems: &mut Problems) {
    let Some(value) = value else { return };
    let Some(headers) = value.as_array() else {
        problems.add(&format!("{path}.headers"), "must be a list");
        return;
    };
    for (j, header) in headers.iter().enumerate() {
        let at = format!("{path}.headers[{j}]");
        let Some(header) = header.as_object() else {
            problems.add(&at, "must be a mapping with a name");
            continue;
        };
        if !header.get("name").is_some_and(Value::is_string) {
            problems.add(&format!("{at}.name"), "is required and must be a string");
        }
        for key in ["description", "value", "default", "placeholder"] {
            if header.get(key).is_some_and(|v| !v.is_string()) {
                problems.add(&format!("{at}.{key}"), "must be a string");
            }
        }
        for key in ["isRequired", "isSecret"] {
            if header.get(key).is_some_and(|v| !v.is_boolean()) {
                problems.add(&format!("{at}.{key}"), "must be true or false");
            }
        }
        if let Some(format) = header.get("format")
            && !matches!(
                format.as_str(),
                Some("string" | "number" | "boolean" | "filepath")
            )
        {
            problems.add(
                &format!("{at}.format"),
                "must be one of string, number, boolean, filepath",
            );
        }
    }
}
