//! Wiring of the assistant: the MCP client pool with the catalog's credential source, and the
//! configured model.

use std::sync::Arc;

use portico_assistant::model::{ModelError, provider_from_config};
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
    let model = provider_from_config(&config.model)?;
    Ok(Assistant::new(AssistantParts {
        store: catalog.store().clone(),
        catalog: catalog.clone(),
        auth: auth.clone(),
        tools: pool,
        model,
        config,
    }))
}
