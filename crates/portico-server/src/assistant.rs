//! Wiring of the assistant: the MCP client pool with the catalog's credential source, and the
//! configured model: a remote provider, or the embedded one (`portico-llama`) when
//! `assistant.model.provider` is `embedded`, or `auto` with a model installed or named by `path`.

use std::path::Path;
use std::sync::Arc;

use portico_assistant::model::{ModelError, ModelProvider, ProviderKind, provider_from_config};
use portico_assistant::{Assistant, AssistantConfig, AssistantParts};
use portico_auth::Auth;
use portico_catalog::service::Catalog;
use portico_mcp::{Connector, Limits, McpError, Pool, PoolConfig, UrlPolicy};

use crate::credentials::CatalogCredentials;

/// Why the assistant could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AssistantSetupError {
    /// The MCP client could not be built.
    #[error("the MCP client could not start: {0}")]
    Mcp(#[from] McpError),
    /// `assistant.model` is wrong.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The embedded model cannot be used.
    #[error("the embedded model: {0}")]
    Embedded(#[from] portico_llama::LlamaError),
}

/// `config` with `assistant.model.path` set to the model `portico model install` put in
/// `data_dir`, when the provider is `auto` or `embedded` and no path is set.
pub fn with_installed_model(mut config: AssistantConfig, data_dir: &Path) -> AssistantConfig {
    let model = &mut config.model;
    if matches!(model.provider, ProviderKind::Auto | ProviderKind::Embedded)
        && model.path.is_none()
        && let Some(installed) = portico_llama::installed(data_dir).into_iter().next()
    {
        model.path = Some(installed.path.display().to_string());
    }
    config
}

/// The model `config` asks for, loaded; `None` when there is none.
fn model(config: &AssistantConfig) -> Result<Option<Arc<dyn ModelProvider>>, AssistantSetupError> {
    let model = &config.model;
    let path = match (model.provider, model.path.as_deref()) {
        (ProviderKind::Auto | ProviderKind::Embedded, Some(path)) => path,
        (ProviderKind::Auto, None) => return Ok(None),
        (ProviderKind::Embedded, None) => {
            return Err(ModelError::Config(
                "assistant.model.provider is embedded but no model is installed: run `portico \
                 model install`, or set assistant.model.path to a GGUF file"
                    .into(),
            )
            .into());
        }
        _ => return Ok(provider_from_config(model)?),
    };
    let settings = portico_llama::EmbeddedSettings::from_config(model, path.into())?;
    tracing::info!(path = %path, threads = settings.threads, "loading the embedded model");
    let provider = portico_llama::EmbeddedProvider::load(settings)?;
    Ok(Some(Arc::new(provider)))
}

/// The assistant over `catalog` and `auth`, configured by `config`.
pub fn assistant_service(
    catalog: &Catalog,
    auth: &Auth,
    config: AssistantConfig,
) -> Result<Assistant, AssistantSetupError> {
    let credentials = Arc::new(CatalogCredentials::new(catalog.clone(), auth.clone()));
    let connector = Connector::new(UrlPolicy::loopback_allowed(), Limits::default())?;
    let pool = Arc::new(Pool::new(connector, credentials, PoolConfig::default()));
    let model = model(&config)?;
    Ok(Assistant::new(AssistantParts {
        store: catalog.store().clone(),
        catalog: catalog.clone(),
        auth: auth.clone(),
        tools: pool,
        model,
        config,
    }))
}
