//! Portico's assistant: a user's enabled MCP servers and the built-in actions become the tools of a
//! run; the model chooses and Portico calls them with the user's credentials, under the tool
//! policy, streaming run events that are stored before they are sent.

pub mod audit;
pub mod config;
pub mod conversations;
pub mod enablement;
pub mod events;
pub mod model;
pub mod policy;
pub mod retrieval;
pub mod run;
pub mod service;

pub use config::{AssistantConfig, ToolApproval};
pub use events::{RunEvent, StoredEvent};
pub use service::{Assistant, AssistantParts};

/// Errors of the assistant; the HTTP layer maps them to Backstage's error names.
#[derive(Debug, thiserror::Error)]
pub enum AssistantError {
    /// Nothing of that id for this user (another user's ids look the same).
    #[error("{0}")]
    NotFound(String),
    /// The request is wrong.
    #[error("{0}")]
    Input(String),
    /// Stored data could not be read back.
    #[error("stored assistant data is damaged: {0}")]
    Corrupt(String),
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] portico_catalog::service::CatalogError),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] portico_store::sqlx::Error),
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
