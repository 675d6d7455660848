//! Configuration: Backstage-style `app-config.yaml` files, deep-merged in order, `${VAR}`
//! substituted, `PORTICO_…` environment variables applied last, then turned into a typed
//! [`Config`] once, at the edge. Unknown keys are errors, so a typo never goes unnoticed. With no
//! file at all the defaults give a working local setup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use portico_catalog::service::memory::QueryIndex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything Portico reads from configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// `backend.*`: base URL, listen address, database, external access.
    #[serde(default)]
    pub backend: Backend,
    /// `catalog.*`: locations, refresh, overlay admins.
    #[serde(default)]
    pub catalog: Catalog,
    /// `mcp.*`: rules for MCP servers.
    #[serde(default)]
    pub mcp: Mcp,
    /// `auth.*`: sign-in providers, token lifetime, token encryption.
    #[serde(default)]
    pub auth: portico_auth::AuthConfig,
    /// `mcpActions.*`: named subsets of the built-in actions server.
    #[serde(default)]
    pub mcp_actions: McpActions,
    /// `assistant.*`: the model, the tool policy, limits.
    #[serde(default)]
    pub assistant: portico_assistant::AssistantConfig,
}

/// `mcpActions.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpActions {
    /// Subsets by key, each served at `/api/mcp-actions/v1/{key}`.
    #[serde(default)]
    pub servers: BTreeMap<String, portico_mcp::actions::SubsetConfig>,
}

/// `backend.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Backend {
    /// The URL users and other services reach Portico at.
    pub base_url: String,
    /// Where to listen.
    pub listen: Listen,
    /// The database; SQLite in the data directory when no URL is given.
    #[serde(default)]
    pub database: Database,
    /// Non-user callers.
    #[serde(default)]
    pub auth: BackendAuth,
}

impl Default for Backend {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:7007".into(),
            listen: Listen::default(),
            database: Database::default(),
            auth: BackendAuth::default(),
        }
    }
}

/// `backend.listen`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Interface to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 7007,
        }
    }
}

/// `backend.database`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// `sqlite://PATH` or `postgres://…`; empty means SQLite in the data directory.
    #[serde(default)]
    pub url: String,
}

/// `backend.auth`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendAuth {
    /// Static tokens for scripts and services, as Backstage configures them.
    #[serde(default)]
    pub external_access: Vec<ExternalAccess>,
}

/// One `backend.auth.externalAccess` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "camelCase")]
pub enum ExternalAccess {
    /// `type: static`: a fixed bearer token acting as `subject`.
    Static {
        /// The token and who it stands for.
        options: StaticTokenOptions,
    },
}

/// `options` of a static external access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticTokenOptions {
    /// The bearer token (at least 8 characters, no whitespace).
    pub token: String,
    /// Who the token stands for, e.g. `catalog-sync`.
    pub subject: String,
}

/// `catalog.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Catalog {
    /// Locations read at start-up and on every refresh.
    #[serde(default)]
    pub locations: Vec<LocationConfig>,
    /// Seconds between refreshes of every location.
    pub refresh_interval_seconds: u64,
    /// User or group references that may write any overlay.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Where catalog queries are answered: `memory` (a copy kept current, the default) or
    /// `database`.
    #[serde(default)]
    pub query_index: QueryIndex,
}

impl Default for Catalog {
    fn default() -> Self {
        Self {
            locations: Vec::new(),
            refresh_interval_seconds: 60,
            admins: Vec::new(),
            query_index: QueryIndex::Memory,
        }
    }
}

/// One `catalog.locations` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationConfig {
    /// `file` or `url`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Path (relative to the working directory) or URL.
    pub target: String,
}

/// `mcp.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mcp {
    /// Apply the public MCP registry's URL rules (https only, no localhost) to catalog entities.
    #[serde(default)]
    pub registry_rules: bool,
}

/// Problems with the configuration, each saying what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not valid YAML.
    #[error("config file {path} is not valid YAML: {message}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// `${VAR}` names a variable that is not set.
    #[error("config refers to ${{{0}}}, but the environment variable {0} is not set")]
    MissingVariable(String),
    /// The merged configuration does not fit the schema.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Where configuration comes from: files in order, and the environment.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// Files, later ones overriding earlier ones.
    pub files: Vec<PathBuf>,
    /// Environment variables (name, value).
    pub env: Vec<(String, String)>,
}

impl Config {
    /// Loads and merges the sources over the defaults.
    pub fn load(sources: &ConfigSources) -> Result<Self, ConfigError> {
        let mut merged = serde_json::to_value(Config::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        for path in &sources.files {
            let layer = read_file(path)?;
            deep_merge(&mut merged, layer);
        }
        let vars: BTreeMap<&str, &str> = sources
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        substitute(&mut merged, &vars)?;
        apply_env_overrides(&mut merged, &vars)?;
        let config: Config =
            serde_json::from_value(merged).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.auth
            .check()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        for access in &self.backend.auth.external_access {
            let ExternalAccess::Static { options } = access;
            if options.token.len() < 8 || options.token.contains(char::is_whitespace) {
                return Err(ConfigError::Invalid(format!(
                    "backend.auth.externalAccess: the static token for subject \"{}\" must be at least 8 characters with no whitespace",
                    options.subject
                )));
            }
        }
        Ok(())
    }
}

fn read_file(path: &Path) -> Result<Value, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut docs = portico_catalog::yaml::parse_documents(&bytes);
    match docs.len() {
        0 => Ok(Value::Object(Default::default())),
        1 => match docs.remove(0).content {
            Ok(value) => Ok(value.unwrap_or(Value::Object(Default::default()))),
            Err(e) => Err(ConfigError::Yaml {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
        },
        _ => Err(ConfigError::Yaml {
            path: path.to_path_buf(),
            message: "a config file holds one YAML document".into(),
        }),
    }
}

/// Merges `layer` into `base`: objects key by key, anything else replaced.
pub fn deep_merge(base: &mut Value, layer: Value) {
    match (base, layer) {
        (Value::Object(base), Value::Object(layer)) => {
            for (k, v) in layer {
                match base.get_mut(&k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (base, layer) => *base = layer,
    }
}

/// Replaces `${VAR}` in every string; `$${…}` stays literal as `${…}`.
fn substitute(value: &mut Value, vars: &BTreeMap<&str, &str>) -> Result<(), ConfigError> {
    match value {
        Value::String(s) if s.contains('$') => *s = substitute_str(s, vars)?,
        Value::Array(items) => items.iter_mut().try_for_each(|v| substitute(v, vars))?,
        Value::Object(map) => map.values_mut().try_for_each(|v| substitute(v, vars))?,
        _ => {}
    }
    Ok(())
}

fn substitute_str(s: &str, vars: &BTreeMap<&str, &str>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(literal) = after.strip_prefix("${") {
            out.push_str("${");
            rest = literal;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| ConfigError::Invalid(format!("unclosed ${{ in \"{s}\"")))?;
            let name = body[..end].trim();
            let value = vars
                .get(name)
                .ok_or_else(|| ConfigError::MissingVariable(name.to_string()))?;
            out.push_str(value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Environment variables that are not config keys.
const NOT_OVERRIDES: &[&str] = &[
    "PORTICO_DATA_DIR",
    "PORTICO_TOKEN",
    "PORTICO_URL",
    "PORTICO_LOG",
    "PORTICO_TEST_POSTGRES_URL",
    "PORTICO_TEST_POSTGRES",
];

/// `PORTICO_BACKEND_LISTEN_PORT=8080` sets `backend.listen.port`: segments match keys
/// case-insensitively (`PORTICO_BACKEND_BASEURL` is `backend.baseUrl`); values are read as YAML.
fn apply_env_overrides(config: &mut Value, vars: &BTreeMap<&str, &str>) -> Result<(), ConfigError> {
    for (name, raw) in vars {
        let Some(path) = name.strip_prefix("PORTICO_") else {
            continue;
        };
        if NOT_OVERRIDES.contains(name) || path.is_empty() {
            continue;
        }
        let segments: Vec<String> = path.split('_').map(str::to_lowercase).collect();
        let target = find_path(config, &segments).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "environment variable {name} names no configuration key"
            ))
        })?;
        *target = match portico_catalog::yaml::parse_single(raw) {
            Ok(Some(v)) => v,
            _ => Value::String((*raw).to_string()),
        };
    }
    Ok(())
}

fn find_path<'a>(value: &'a mut Value, segments: &[String]) -> Option<&'a mut Value> {
    let Some((first, rest)) = segments.split_first() else {
        return Some(value);
    };
    let map = value.as_object_mut()?;
    let key = map.keys().find(|k| k.to_lowercase() == *first)?.clone();
    find_path(map.get_mut(&key)?, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(files: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (i, text) in files.iter().enumerate() {
            let path = dir.path().join(format!("{i}.yaml"));
            std::fs::write(&path, text).unwrap();
            paths.push(path);
        }
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(&ConfigSources { files: paths, env })
    }

    #[test]
    fn defaults_need_no_file() {
        let config = load(&[], &[]).unwrap();
        assert_eq!(config.backend.listen.port, 7007);
        assert_eq!(config.backend.listen.host, "127.0.0.1");
        assert_eq!(config.catalog.refresh_interval_seconds, 60);
    }

    #[test]
    fn files_deep_merge_in_order_and_variables_substitute() {
        let a = "backend:\n  listen: {port: 8000}\n  auth:\n    externalAccess:\n      - type: static\n        options: {token: '${TOKEN}', subject: ci}\ncatalog:\n  locations: [{type: file, target: a}]\n";
        let b = "backend:\n  listen: {host: 0.0.0.0}\ncatalog:\n  locations: [{type: url, target: 'https://x/y.yaml'}]\n";
        let config = load(&[a, b], &[("TOKEN", "secret-token")]).unwrap();
        assert_eq!(
            (
                config.backend.listen.host.as_str(),
                config.backend.listen.port
            ),
            ("0.0.0.0", 8000)
        );
        assert_eq!(
            config.catalog.locations,
            vec![LocationConfig {
                kind: "url".into(),
                target: "https://x/y.yaml".into()
            }]
        );
        let ExternalAccess::Static { options } = &config.backend.auth.external_access[0];
        assert_eq!(options.token, "secret-token");
    }

    #[test]
    fn environment_overrides_win() {
        let config = load(
            &["backend: {listen: {port: 8000}}\n"],
            &[
                ("PORTICO_BACKEND_LISTEN_PORT", "9001"),
                ("PORTICO_BACKEND_BASEURL", "https://portico.example.com"),
            ],
        )
        .unwrap();
        assert_eq!(config.backend.listen.port, 9001);
        assert_eq!(config.backend.base_url, "https://portico.example.com");
    }

    #[test]
    fn mistakes_get_clear_errors() {
        let err = load(&["backend: {lisen: {port: 1}}\n"], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `lisen`"), "{err}");
        let err = load(&["backend: {baseUrl: '${NOPE}'}\n"], &[])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "config refers to ${NOPE}, but the environment variable NOPE is not set"
        );
        let err = load(&[], &[("PORTICO_BACKEND_NOPE", "1")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PORTICO_BACKEND_NOPE names no configuration key"),
            "{err}"
        );
        let err = load(&["backend:\n  auth:\n    externalAccess: [{type: static, options: {token: short, subject: x}}]\n"], &[]).unwrap_err().to_string();
        assert!(err.contains("at least 8 characters"), "{err}");
        assert_eq!(
            substitute_str("a$${B}c", &BTreeMap::new()).unwrap(),
            "a${B}c"
        );
    }
}

#[cfg(test)]
mod sample_tests {
    use super::*;

    /// `config/app-config.yaml` documents every key with its default: it must load, and give
    /// exactly the defaults.
    #[test]
    fn the_documented_sample_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/app-config.yaml");
        let config = Config::load(&ConfigSources {
            files: vec![path],
            env: Vec::new(),
        })
        .unwrap();
        assert_eq!(config, Config::default());
    }
}
