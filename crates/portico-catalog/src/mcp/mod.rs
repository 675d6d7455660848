//! MCP server entities: API entities with `spec.type: mcp-server`, in the portal shape
//! (`spec.definition` = a registry server.json) or the upstream shape (`spec.remotes`). Works out
//! the transport, the auth method and whether the server is available, with the reason if not.

pub mod auth;
pub mod definition;

use serde::Serialize;
use serde_json::Value;

pub use auth::McpAuth;
pub use definition::ServerDefinition;

use crate::entity::{Entity, SCHEMA_VERSION_ANNOTATION};

/// The registry schema version of `spec.definition` that Portico reads.
pub const SUPPORTED_SCHEMA_VERSION: &str = "2025-09-29";

/// How Portico talks to a remote MCP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// MCP streamable HTTP (preferred).
    StreamableHttp,
    /// The legacy HTTP+SSE transport.
    Sse,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::StreamableHttp => "streamable-http",
            Transport::Sse => "sse",
        })
    }
}

/// One remote endpoint of a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Remote {
    /// Transport of the endpoint.
    #[serde(rename = "type")]
    pub transport: Transport,
    /// Where to connect.
    pub url: String,
}

/// Which remote URLs are acceptable. The public registry's rules (https only, never localhost)
/// are a switch: off for a self-hosted portal, where loopback and plain http are normal in dev.
#[derive(Debug, Clone, Default)]
pub struct RemotePolicy {
    /// Apply the public registry's rules.
    pub registry_rules: bool,
}

impl RemotePolicy {
    /// `Ok` when Portico may use this URL for this transport; otherwise why not.
    pub fn check(&self, _transport: Transport, url: &str) -> Result<(), String> {
        if url.contains('{') {
            return Err(format!(
                "is a URL template (\"{url}\"); Portico needs a concrete URL"
            ));
        }
        let parsed = url::Url::parse(url)
            .map_err(|_| format!("must be an absolute http or https URL, found \"{url}\""))?;
        match parsed.scheme() {
            "https" => {}
            "http" if !self.registry_rules => {}
            "http" => return Err(format!("must use https (registry rule), found \"{url}\"")),
            other => {
                return Err(format!(
                    "must use http or https, found {other}: in \"{url}\""
                ));
            }
        }
        if self.registry_rules && is_local_host(&parsed) {
            return Err(format!(
                "must not point to localhost (registry rule), found \"{url}\""
            ));
        }
        Ok(())
    }
}

fn is_local_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
        None => true,
    }
}

/// What Portico knows about one MCP server entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct McpServer {
    /// Whether users can enable it.
    pub available: bool,
    /// Why it is not available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The remote Portico connects to: the first streamable-http one, else the first sse one.
    pub transport: Option<Remote>,
    /// How Portico authenticates; `None` when the annotations are invalid.
    pub auth: Option<McpAuth>,
    /// The parsed `spec.definition`, when there is a valid one.
    #[serde(skip)]
    pub definition: Option<ServerDefinition>,
}

/// Reads an MCP server entity. `entity_valid` says whether the stock rules passed; the returned
/// problems are Portico's own MCP rules.
pub fn inspect(
    entity: &Entity<'_>,
    policy: &RemotePolicy,
    entity_valid: bool,
) -> (McpServer, Vec<String>) {
    let mut problems = Vec::new();
    let definition_text = entity.spec_str("definition");
    check_schema_version(entity, definition_text.is_some(), &mut problems);
    let definition = definition_text.and_then(|text| {
        let (definition, errors) = definition::parse(text, policy);
        problems.extend(errors);
        definition
    });
    let spec_remotes = entity
        .spec()
        .and_then(|s| s.get("remotes"))
        .map(|v| spec_remotes(v, policy, &mut problems));
    if let (Some(def), Some(listed)) = (&definition, &spec_remotes) {
        let same =
            def.remotes.len() == listed.len() && def.remotes.iter().all(|r| listed.contains(r));
        if !same {
            problems.push(
                "spec.remotes and the remotes in spec.definition disagree; list the same remotes in both, or keep only one".into(),
            );
        }
    }
    let remotes = definition
        .as_ref()
        .map(|d| d.remotes.clone())
        .or(spec_remotes)
        .unwrap_or_default();
    let auth = match auth::auth_of(entity) {
        Ok(a) => Some(a),
        Err(errors) => {
            problems.extend(errors);
            None
        }
    };
    let transport = remotes
        .iter()
        .find(|r| r.transport == Transport::StreamableHttp)
        .or_else(|| remotes.iter().find(|r| r.transport == Transport::Sse))
        .cloned();
    let reason = if !entity_valid || !problems.is_empty() {
        Some("the entity has validation errors".to_string())
    } else if entity.spec_str("lifecycle") != Some("production") {
        Some(format!(
            "spec.lifecycle is \"{}\"; only servers in \"production\" are available",
            entity.spec_str("lifecycle").unwrap_or_default()
        ))
    } else if transport.is_none() {
        Some("it has no streamable-http or sse remote".to_string())
    } else {
        None
    };
    let definition = definition.filter(|_| problems.is_empty());
    let server = McpServer {
        available: reason.is_none(),
        reason,
        transport,
        auth,
        definition,
    };
    (server, problems)
}

fn check_schema_version(entity: &Entity<'_>, has_definition: bool, problems: &mut Vec<String>) {
    match entity.annotation(SCHEMA_VERSION_ANNOTATION) {
        Some(SUPPORTED_SCHEMA_VERSION) => {}
        Some(other) => problems.push(format!(
            "Unsupported {SCHEMA_VERSION_ANNOTATION} \"{other}\"; the supported version is '{SUPPORTED_SCHEMA_VERSION}'"
        )),
        None if has_definition => problems.push(format!(
            "Annotation {SCHEMA_VERSION_ANNOTATION} is required with spec.definition; set it to '{SUPPORTED_SCHEMA_VERSION}'"
        )),
        None => {}
    }
}

/// The upstream `spec.remotes` list (its shape was checked by the kind schema).
fn spec_remotes(value: &Value, policy: &RemotePolicy, problems: &mut Vec<String>) -> Vec<Remote> {
    let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let url = item.get("url").and_then(Value::as_str).unwrap_or_default();
        let transport = match item.get("type").and_then(Value::as_str) {
            Some("streamable-http") => Transport::StreamableHttp,
            Some("sse") => Transport::Sse,
            other => {
                problems.push(format!(
                    "spec.remotes[{i}].type must be \"streamable-http\" or \"sse\", found \"{}\"",
                    other.unwrap_or_default()
                ));
                continue;
            }
        };
        match policy.check(transport, url) {
            Ok(()) => out.push(Remote {
                transport,
                url: url.to_string(),
            }),
            Err(why) => problems.push(format!("spec.remotes[{i}].url {why}")),
        }
    }
    out
}
