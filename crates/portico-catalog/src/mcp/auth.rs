//! How Portico authenticates to an MCP server, from the entity's annotations: nothing, the user's
//! OAuth token from a provider (`auth-api-id`, optional `auth-scopes`), or a plugin-to-plugin token
//! (`auth-plugin-id`).

use serde::Serialize;

use crate::entity::Entity;

/// Annotation naming the frontend auth API whose provider issues the user's token.
pub const AUTH_API_ID: &str = "mcp.spotify.com/auth-api-id";
/// Annotation holding a JSON array of OAuth scopes the server needs.
pub const AUTH_SCOPES: &str = "mcp.spotify.com/auth-scopes";
/// Annotation naming the backend plugin that hosts the server.
pub const AUTH_PLUGIN_ID: &str = "mcp.spotify.com/auth-plugin-id";

/// The one table from Backstage auth API ids to provider ids and their default scopes.
const PROVIDERS: &[(&str, &str, &[&str])] = &[
    ("core.auth.github", "github", &["read:user"]),
    ("core.auth.gitlab", "gitlab", &["read_user"]),
    (
        "core.auth.google",
        "google",
        &["openid", "email", "profile"],
    ),
    (
        "core.auth.microsoft",
        "microsoft",
        &["openid", "offline_access", "profile", "email", "User.Read"],
    ),
    (
        "core.auth.okta",
        "okta",
        &["openid", "email", "profile", "offline_access"],
    ),
    (
        "core.auth.onelogin",
        "onelogin",
        &["openid", "email", "profile", "offline_access"],
    ),
    ("core.auth.atlassian", "atlassian", &[]),
    ("core.auth.bitbucket", "bitbucket", &["team"]),
    (
        "core.auth.bitbucket-server",
        "bitbucketServer",
        &["PROJECT_ADMIN"],
    ),
    ("core.auth.vmware-cloud", "vmwareCloudServices", &["openid"]),
];

/// The auth provider id for an `auth-api-id`; ids outside the table name a provider configured
/// under that same id (custom OAuth2/OIDC, Auth0, …).
pub fn provider_for_api_id(api_id: &str) -> &str {
    PROVIDERS
        .iter()
        .find(|(id, _, _)| *id == api_id)
        .map_or(api_id, |(_, provider, _)| provider)
}

/// Scopes a provider asks for by default, before any server adds its own.
pub fn default_scopes(provider: &str) -> &'static [&'static str] {
    PROVIDERS
        .iter()
        .find(|(_, p, _)| *p == provider)
        .map_or(&[], |(_, _, scopes)| scopes)
}

/// The authentication method of one MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "method", rename_all = "camelCase")]
pub enum McpAuth {
    /// No credentials are sent.
    None,
    /// The user's token from an OAuth provider, sent as a Bearer token.
    #[serde(rename = "oauth", rename_all = "camelCase")]
    OAuth {
        /// The `auth-api-id` annotation, e.g. `core.auth.github`.
        api_id: String,
        /// The provider id it maps to, e.g. `github`.
        provider: String,
        /// Scopes the server needs beyond the provider's defaults.
        scopes: Vec<String>,
    },
    /// A plugin-to-plugin token whose audience is the plugin.
    #[serde(rename_all = "camelCase")]
    Plugin {
        /// The `auth-plugin-id` annotation, e.g. `mcp-actions`.
        plugin_id: String,
    },
}

impl std::fmt::Display for McpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            McpAuth::None => f.write_str("none"),
            McpAuth::OAuth {
                api_id,
                provider,
                scopes,
            } if scopes.is_empty() => {
                write!(f, "oauth via {provider} ({api_id})")
            }
            McpAuth::OAuth {
                api_id,
                provider,
                scopes,
            } => {
                write!(
                    f,
                    "oauth via {provider} ({api_id}), scopes {}",
                    scopes.join(" ")
                )
            }
            McpAuth::Plugin { plugin_id } => write!(f, "plugin token for {plugin_id}"),
        }
    }
}

/// Reads the auth annotations; the errors say what to fix.
pub fn auth_of(entity: &Entity<'_>) -> Result<McpAuth, Vec<String>> {
    let api_id = entity.annotation(AUTH_API_ID);
    let scopes = entity.annotation(AUTH_SCOPES);
    let plugin_id = entity.annotation(AUTH_PLUGIN_ID);
    let mut errors = Vec::new();
    if api_id.is_some() && plugin_id.is_some() {
        errors.push(format!(
            "use one authentication method per MCP server: either {AUTH_API_ID} or {AUTH_PLUGIN_ID}, not both"
        ));
    }
    if scopes.is_some() && api_id.is_none() {
        errors.push(format!(
            "{AUTH_SCOPES} needs {AUTH_API_ID}: scopes are only used with an OAuth provider"
        ));
    }
    for (key, value) in [(AUTH_API_ID, api_id), (AUTH_PLUGIN_ID, plugin_id)] {
        if value.is_some_and(|v| v.trim().is_empty()) {
            errors.push(format!("{key} must not be empty"));
        }
    }
    let parsed_scopes = match scopes.map(parse_scopes).transpose() {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            errors.push(e);
            Vec::new()
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(match (api_id, plugin_id) {
        (Some(api_id), _) => McpAuth::OAuth {
            api_id: api_id.to_string(),
            provider: provider_for_api_id(api_id).to_string(),
            scopes: parsed_scopes,
        },
        (None, Some(plugin_id)) => McpAuth::Plugin {
            plugin_id: plugin_id.to_string(),
        },
        (None, None) => McpAuth::None,
    })
}

fn parse_scopes(text: &str) -> Result<Vec<String>, String> {
    let bad = |why: &str| {
        format!(
            "{AUTH_SCOPES} must be a JSON array of scope strings, like '[\"repo\",\"read:org\"]'; {why}"
        )
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(&format!("it is not valid JSON ({e})")))?;
    let items = value.as_array().ok_or_else(|| bad("it is not an array"))?;
    items
        .iter()
        .map(|s| match s.as_str() {
            Some(s) if !s.trim().is_empty() && !s.contains(char::is_whitespace) => {
                Ok(s.to_string())
            }
            _ => Err(bad(&format!("{s} is not a scope"))),
        })
        .collect()
}
