//! Entities Portico provides itself, such as the built-in Portal Actions server: written at
//! start-up, they take their reference from any location or managed entity that carries it
//! (which then reports a conflict), and nobody can change or delete them through the API.

use serde_json::Value;

use super::persist::{self, WriteMode};
use super::processing::process;
use super::{BUILTIN_SOURCE, Catalog, CatalogError, summary};

impl Catalog {
    /// Stores (or refreshes) a built-in entity; it must be valid.
    pub async fn provide_builtin(&self, raw: Value) -> Result<(), CatalogError> {
        let processed = process(&raw, None, None, &self.options.validate)
            .ok_or_else(|| CatalogError::Input("a built-in entity has no kind and name".into()))?;
        if !processed.errors.is_empty() {
            return Err(CatalogError::Invalid {
                message: summary(&processed.errors),
                errors: processed.errors,
            });
        }
        let raw_json = raw.to_string();
        let hash = persist::entity_hash(&raw_json, None, None);
        let mut tx = self.store.begin_write().await?;
        persist::write_entity(
            &mut tx,
            BUILTIN_SOURCE,
            "",
            &raw_json,
            &processed,
            &hash,
            WriteMode::Takeover,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
