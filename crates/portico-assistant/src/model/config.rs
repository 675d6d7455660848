//! `assistant.model`: which chat model the assistant talks to. `provider: openai` covers every
//! OpenAI-compatible server (OpenAI, Ollama, vLLM, llama-server), `provider: anthropic` the
//! Anthropic Messages API, `provider: embedded` a GGUF model run in process (crate
//! `portico-llama`, wired by the server); `auto` (the default) is the embedded model when one is
//! installed or `path` names one, else none; `none` means no model. Mistakes are reported with the
//! key to fix; the API key never appears in Debug output or in errors.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::anthropic::AnthropicProvider;
use super::openai::OpenAiProvider;
use super::retry::Endpoint;
use super::{ModelError, ModelProvider};

/// OpenAI's API, the default base URL of `provider: openai`.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Anthropic's API, the default base URL of `provider: anthropic`.
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";

/// The most retries `maxRetries` may ask for.
const MAX_RETRIES_LIMIT: u32 = 10;

/// Which API the model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProviderKind {
    /// The embedded model when one is installed (or `path` is set), else none.
    #[default]
    Auto,
    /// No model.
    None,
    /// A GGUF model run in process.
    Embedded,
    /// OpenAI chat completions, or any server compatible with it.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

impl ProviderKind {
    /// The name written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Auto => "auto",
            ProviderKind::None => "none",
            ProviderKind::Embedded => "embedded",
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
        }
    }
}

impl Serialize for ProviderKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProviderKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        match name.as_str() {
            "auto" => Ok(ProviderKind::Auto),
            "none" => Ok(ProviderKind::None),
            "embedded" => Ok(ProviderKind::Embedded),
            "openai" => Ok(ProviderKind::OpenAi),
            "anthropic" => Ok(ProviderKind::Anthropic),
            "ollama" | "vllm" | "llama-server" | "llama.cpp" | "llamacpp" | "lmstudio" => {
                Err(serde::de::Error::custom(format!(
                    "assistant.model.provider: {name} speaks the OpenAI API; write `provider: openai` \
                     and set assistant.model.baseUrl to its /v1 URL (Ollama: http://localhost:11434/v1)"
                )))
            }
            _ => Err(serde::de::Error::custom(format!(
                "assistant.model.provider must be auto, embedded, openai, anthropic or none, not {name:?}"
            ))),
        }
    }
}

/// In which order the embedded model writes the two fields of a tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ToolFieldOrder {
    /// `{"arguments": …, "tool": …}`: the model writes arguments before it names the tool.
    ArgumentsFirst,
    /// `{"tool": …, "arguments": …}`: the model names the tool, then writes arguments under that
    /// tool's schema (measured best by `bench/model`).
    #[default]
    ToolFirst,
}

/// `assistant.model`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelConfig {
    /// `auto` (the default), `embedded`, `openai`, `anthropic` or `none`.
    #[serde(default)]
    pub provider: ProviderKind,
    /// Embedded model: the GGUF file; default: the model `portico model install` put in the
    /// data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Embedded model: threads for inference; default: the machine's cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// Embedded model: field order of a tool call.
    #[serde(default)]
    pub tool_field_order: ToolFieldOrder,
    /// Embedded model: how many tools, ranked against the question, the model may choose from
    /// (all of them stay in its prompt); 0 offers all.
    #[serde(default = "default_rank_top_k")]
    pub rank_top_k: usize,
    /// Where the API lives; defaults to the provider's own host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The model's name, required when a provider is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The API key; required by api.openai.com and api.anthropic.com, optional for servers that
    /// need none (Ollama, llama-server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Most tokens per answer.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Sampling temperature; the provider's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// How long the provider may stay silent (before its first byte, or between two streamed
    /// chunks) before the call fails.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Retries after 429 or 5xx answers.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
}

fn default_rank_top_k() -> usize {
    3
}

fn default_max_tokens() -> u32 {
    1024
}

fn default_timeout_seconds() -> u64 {
    120
}

fn default_max_retries() -> u32 {
    3
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            provider: ProviderKind::Auto,
            path: None,
            threads: None,
            tool_field_order: ToolFieldOrder::default(),
            rank_top_k: default_rank_top_k(),
            base_url: None,
            model: None,
            api_key: None,
            max_tokens: default_max_tokens(),
            temperature: None,
            timeout_seconds: default_timeout_seconds(),
            max_retries: default_max_retries(),
        }
    }
}

impl fmt::Debug for ModelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelConfig")
            .field("provider", &self.provider)
            .field("path", &self.path)
            .field("threads", &self.threads)
            .field("tool_field_order", &self.tool_field_order)
            .field("rank_top_k", &self.rank_top_k)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("max_tokens", &self.max_tokens)
            .field("temperature", &self.temperature)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// The configured remote provider, or `None` when `assistant.model.provider` is `none`, or
/// `auto` or `embedded` (the embedded model is built by the server, which knows where models are
/// installed).
pub fn provider_from_config(
    config: &ModelConfig,
) -> Result<Option<Arc<dyn ModelProvider>>, ModelError> {
    Ok(match config.provider {
        ProviderKind::None | ProviderKind::Auto | ProviderKind::Embedded => None,
        ProviderKind::OpenAi => Some(Arc::new(OpenAiProvider::new(Settings::from_config(
            config,
        )?)?)),
        ProviderKind::Anthropic => Some(Arc::new(AnthropicProvider::new(Settings::from_config(
            config,
        )?)?)),
    })
}

/// A checked configuration, as the clients use it.
pub(crate) struct Settings {
    /// The provider.
    pub kind: ProviderKind,
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// The base URL to show in errors.
    pub endpoint: Endpoint,
    /// The model's name.
    pub model: String,
    /// The key, if one is needed.
    pub api_key: Option<SecretString>,
    /// Most tokens per answer.
    pub max_tokens: u32,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Silence that counts as a timeout.
    pub timeout: Duration,
    /// Retries after 429 or 5xx.
    pub max_retries: u32,
}

impl Settings {
    /// Checks `config` for a provider that is set.
    pub(crate) fn from_config(config: &ModelConfig) -> Result<Self, ModelError> {
        let kind = config.provider;
        let name = kind.as_str();
        let (default_url, example_model) = match kind {
            ProviderKind::None | ProviderKind::Auto | ProviderKind::Embedded => {
                return Err(ModelError::NotConfigured(
                    "set assistant.model.provider to openai or anthropic".into(),
                ));
            }
            ProviderKind::OpenAi => (OPENAI_BASE_URL, "gpt-4o-mini"),
            ProviderKind::Anthropic => (ANTHROPIC_BASE_URL, "claude-sonnet-4-5"),
        };
        let model = config
            .model
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                ModelError::Config(format!(
                    "assistant.model.model is required when assistant.model.provider is {name} \
                     (for example {example_model})"
                ))
            })?
            .to_string();

        let raw_url = config
            .base_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .unwrap_or(default_url);
        let url = reqwest::Url::parse(raw_url).map_err(|e| {
            ModelError::Config(format!(
                "assistant.model.baseUrl is not a valid URL ({e}); for example {default_url}"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ModelError::Config(format!(
                "assistant.model.baseUrl must be an http or https URL such as {default_url}"
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ModelError::Config(
                "assistant.model.baseUrl must not have a query or fragment".into(),
            ));
        }
        let base_url = url.as_str().trim_end_matches('/').to_string();
        if kind == ProviderKind::Anthropic && base_url.ends_with("/v1") {
            return Err(ModelError::Config(format!(
                "assistant.model.baseUrl for anthropic is the API root without /v1 (such as \
                 {ANTHROPIC_BASE_URL}); Portico adds /v1/messages"
            )));
        }

        let api_key = config
            .api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| SecretString::from(k.to_string()));
        if let Some(k) = &api_key
            && HeaderValue::from_str(k.expose_secret()).is_err()
        {
            return Err(ModelError::Config(
                "assistant.model.apiKey holds characters that cannot be sent in an HTTP header"
                    .into(),
            ));
        }
        // The hosted APIs always need a key; self-hosted servers often need none.
        let hosted = matches!(url.host_str(), Some("api.openai.com" | "api.anthropic.com"));
        if api_key.is_none() && hosted {
            return Err(ModelError::Config(format!(
                "assistant.model.apiKey is required for {}",
                url.host_str().unwrap_or(name)
            )));
        }

        if config.max_tokens == 0 {
            return Err(ModelError::Config(
                "assistant.model.maxTokens must be at least 1".into(),
            ));
        }
        let max_temperature = if kind == ProviderKind::Anthropic {
            1.0
        } else {
            2.0
        };
        if let Some(t) = config.temperature
            && !(0.0..=max_temperature).contains(&t)
        {
            return Err(ModelError::Config(format!(
                "assistant.model.temperature must be between 0 and {max_temperature} for {name}"
            )));
        }
        if config.timeout_seconds == 0 {
            return Err(ModelError::Config(
                "assistant.model.timeoutSeconds must be at least 1".into(),
            ));
        }
        if config.max_retries > MAX_RETRIES_LIMIT {
            return Err(ModelError::Config(format!(
                "assistant.model.maxRetries must be at most {MAX_RETRIES_LIMIT}"
            )));
        }
        let timeout = Duration::from_secs(config.timeout_seconds);
        Ok(Self {
            kind,
            endpoint: Endpoint::new(&url, timeout),
            base_url,
            model,
            api_key,
            max_tokens: config.max_tokens,
            temperature: config.temperature,
            timeout,
            max_retries: config.max_retries,
        })
    }

    /// The HTTP client: silence timeout, no redirects (a redirect could carry the key
    /// elsewhere), proxies as reqwest finds them.
    pub(crate) fn client(&self) -> Result<reqwest::Client, ModelError> {
        reqwest::Client::builder()
            .read_timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(30)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portico/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ModelError::Config(format!("the HTTP client cannot be built: {e}")))
    }

    /// `kind:model`, for logs.
    pub(crate) fn name(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<ModelConfig, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    fn config_error(v: serde_json::Value) -> String {
        match provider_from_config(&parse(v).expect("parses")) {
            Err(ModelError::Config(m)) => m,
            Err(other) => panic!("expected a config error, got {other:?}"),
            Ok(_) => panic!("expected a config error, got a provider"),
        }
    }

    #[test]
    fn no_provider_is_the_default_and_gives_no_remote_model() {
        let c = ModelConfig::default();
        assert_eq!(c.provider, ProviderKind::Auto);
        assert_eq!(
            (c.tool_field_order, c.rank_top_k),
            (ToolFieldOrder::ToolFirst, 3)
        );
        assert_eq!(parse(json!({})).unwrap(), c);
        assert!(provider_from_config(&c).unwrap().is_none());
        for provider in ["none", "auto", "embedded"] {
            let c = parse(json!({"provider": provider, "model": "x"})).unwrap();
            assert!(provider_from_config(&c).unwrap().is_none(), "{provider}");
        }
        let c = parse(
            json!({"provider": "embedded", "path": "/m.gguf", "threads": 2,
            "toolFieldOrder": "arguments-first", "rankTopK": 0}),
        )
        .unwrap();
        assert_eq!(c.tool_field_order, ToolFieldOrder::ArgumentsFirst);
        let e = parse(json!({"toolFieldOrder": "tool"})).unwrap_err();
        assert!(e.contains("arguments-first"), "{e}");
    }

    #[test]
    fn defaults_fill_the_rest() {
        let c = parse(json!({"provider": "openai", "model": "llama3.2", "baseUrl": "http://localhost:11434/v1"}))
            .unwrap();
        assert_eq!(
            (c.max_tokens, c.timeout_seconds, c.max_retries),
            (1024, 120, 3)
        );
        assert_eq!((c.api_key.as_deref(), c.temperature), (None, None));
        let p = provider_from_config(&c).unwrap().expect("a provider");
        assert_eq!(p.name(), "openai:llama3.2");
        let s = Settings::from_config(
            &parse(json!({"provider": "anthropic", "model": "m", "apiKey": "k"})).unwrap(),
        )
        .unwrap();
        assert_eq!(s.base_url, ANTHROPIC_BASE_URL);
        let s = Settings::from_config(
            &parse(json!({"provider": "openai", "model": "m", "apiKey": "k"})).unwrap(),
        )
        .unwrap();
        assert_eq!(s.base_url, OPENAI_BASE_URL);
    }

    #[test]
    fn unknown_keys_and_providers_are_refused_with_the_key_to_fix() {
        let e = parse(json!({"provider": "openai", "modle": "x"})).unwrap_err();
        assert!(e.contains("unknown field `modle`"), "{e}");
        let e = parse(json!({"provider": "openia"})).unwrap_err();
        assert!(
            e.contains(
                "assistant.model.provider must be auto, embedded, openai, anthropic or none"
            ),
            "{e}"
        );
        let e = parse(json!({"provider": "ollama"})).unwrap_err();
        assert!(
            e.contains("provider: openai") && e.contains("11434/v1"),
            "{e}"
        );
    }

    #[test]
    fn a_provider_needs_a_model() {
        let m = config_error(json!({"provider": "openai", "apiKey": "k"}));
        assert!(m.starts_with("assistant.model.model is required"), "{m}");
        let m = config_error(json!({"provider": "anthropic", "model": "  ", "apiKey": "k"}));
        assert!(
            m.starts_with("assistant.model.model is required") && m.contains("anthropic"),
            "{m}"
        );
    }

    #[test]
    fn bad_base_urls_name_the_key() {
        for url in [
            "localhost:11434",
            "ftp://x/v1",
            "not a url",
            "http://x/v1?key=1",
        ] {
            let m = config_error(json!({"provider": "openai", "model": "m", "baseUrl": url}));
            assert!(m.starts_with("assistant.model.baseUrl"), "{url}: {m}");
        }
        let m = config_error(
            json!({"provider": "anthropic", "model": "m", "apiKey": "k", "baseUrl": "https://api.anthropic.com/v1/"}),
        );
        assert!(m.contains("without /v1"), "{m}");
    }

    #[test]
    fn keys_are_required_by_the_hosted_apis_only() {
        let m = config_error(json!({"provider": "openai", "model": "gpt-4o-mini"}));
        assert_eq!(m, "assistant.model.apiKey is required for api.openai.com");
        let m = config_error(json!({"provider": "anthropic", "model": "m", "apiKey": "  "}));
        assert_eq!(
            m,
            "assistant.model.apiKey is required for api.anthropic.com"
        );
        for (provider, url) in [
            ("openai", "http://127.0.0.1:11434/v1"),
            ("anthropic", "http://127.0.0.1:4000"),
        ] {
            let c = json!({"provider": provider, "model": "m", "baseUrl": url});
            assert!(provider_from_config(&parse(c).unwrap()).unwrap().is_some());
        }
        let m = config_error(json!({"provider": "openai", "model": "m", "apiKey": "sk-1\nx"}));
        assert!(m.starts_with("assistant.model.apiKey holds"), "{m}");
        assert!(!m.contains("sk-1"));
    }

    #[test]
    fn numbers_out_of_range_name_the_key() {
        let base = || json!({"provider": "anthropic", "model": "m", "apiKey": "k"});
        let with = |k: &str, v: serde_json::Value| {
            let mut c = base();
            c[k] = v;
            config_error(c)
        };
        assert!(with("maxTokens", json!(0)).starts_with("assistant.model.maxTokens"));
        assert!(with("temperature", json!(1.5)).starts_with("assistant.model.temperature"));
        assert!(with("temperature", json!(-0.1)).starts_with("assistant.model.temperature"));
        assert!(with("timeoutSeconds", json!(0)).starts_with("assistant.model.timeoutSeconds"));
        assert!(with("maxRetries", json!(11)).starts_with("assistant.model.maxRetries"));
        let mut ok = json!({"provider": "openai", "model": "m", "apiKey": "k", "temperature": 1.5});
        assert!(provider_from_config(&parse(ok.clone()).unwrap()).is_ok());
        ok["temperature"] = json!(2.5);
        assert!(config_error(ok).starts_with("assistant.model.temperature"));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let c =
            parse(json!({"provider": "openai", "model": "m", "apiKey": "sk-very-secret"})).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("sk-very-secret"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}
