//! The catalog service: entities from locations, managed entities and overlays, processed and
//! stored, then read back the way Backstage's catalog API serves them.

mod builtin;
pub mod filter;
mod locations;
mod managed;
pub mod memory;
pub mod overlay;
mod overlays;
pub mod persist;
pub mod processing;
pub mod query;
mod reads;
mod registry;
pub mod search;
pub mod sources;

use std::borrow::Cow;

use portico_store::Store;
use serde::Serialize;

pub use locations::{Location, LocationOrigin, LocationProblem, RefreshReport};
pub use overlay::Overlay;
pub use registry::RegistryEntry;

use crate::{ValidateOptions, ValidationError};

/// Source name of entities written through the API.
pub const MANAGED_SOURCE: &str = "managed";
/// Source name of entities Portico provides itself.
pub const BUILTIN_SOURCE: &str = "builtin";

/// Who is asking: the signed-in user and the entities they own through (groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user's entity reference, e.g. `user:default/jane`.
    pub user_ref: String,
    /// References that count as the user for ownership (the user and their groups).
    pub ownership_refs: Vec<String>,
}

/// Settings of the catalog service.
#[derive(Debug, Clone, Default)]
pub struct CatalogOptions {
    /// Validation settings.
    pub validate: ValidateOptions,
    /// User or group references that may write any overlay.
    pub admins: Vec<String>,
    /// Where queries are answered: an in-memory copy (the default) or the database.
    pub query_index: memory::QueryIndex,
}

/// Errors of catalog operations, each with the HTTP meaning the API gives it.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Nothing has that reference, id or uid.
    #[error("{0}")]
    NotFound(String),
    /// The reference belongs to another source, or the location already exists.
    #[error("{0}")]
    Conflict(String),
    /// The input is malformed.
    #[error("{0}")]
    Input(String),
    /// The entity is not valid; the list says why.
    #[error("{message}")]
    Invalid {
        /// Summary.
        message: String,
        /// Every problem.
        errors: Vec<ValidationError>,
    },
    /// The caller may not do this.
    #[error("{0}")]
    NotAllowed(String),
    /// The database failed.
    #[error("catalog storage failed: {0}")]
    Database(#[from] portico_store::sqlx::Error),
}

impl CatalogError {
    /// Backstage's name for the error class (`NotFoundError`, `ConflictError`, …).
    pub fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            CatalogError::NotFound(_) => "NotFoundError",
            CatalogError::Conflict(_) => "ConflictError",
            CatalogError::Input(_) | CatalogError::Invalid { .. } => "InputError",
            CatalogError::NotAllowed(_) => "NotAllowedError",
            CatalogError::Database(_) => "Error",
        })
    }
}

/// The catalog: a store plus the rules for what goes in.
#[derive(Clone)]
pub struct Catalog {
    store: Store,
    options: CatalogOptions,
    http: reqwest::Client,
    memory: std::sync::Arc<memory::MemoryIndex>,
}

impl Catalog {
    /// A catalog over `store`.
    pub fn new(store: Store, options: CatalogOptions) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(5))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            store,
            options,
            http,
            memory: std::sync::Arc::default(),
        }
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The settings.
    pub fn options(&self) -> &CatalogOptions {
        &self.options
    }
}

/// A list of validation errors as one summary line.
pub(crate) fn summary(errors: &[ValidationError]) -> String {
    match errors {
        [] => "valid".into(),
        [one] => one.message.clone(),
        [first, rest @ ..] => format!("{} (and {} more)", first.message, rest.len()),
    }
}

/// A serializable wrapper for API responses that carry a list of validation errors.
#[derive(Debug, Serialize)]
pub struct ErrorList<'a> {
    /// The errors.
    pub errors: &'a [ValidationError],
}
