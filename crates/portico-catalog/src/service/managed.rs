//! Managed entities: created, updated and deleted through the API, validated on write.

use serde_json::Value;

use super::persist::{self, Write, WriteMode};
use super::processing::{entity_ref_of, process};
use super::{Catalog, CatalogError, MANAGED_SOURCE, summary};
use crate::validate_backstage;

impl Catalog {
    /// Creates a managed entity; 409 when its reference is taken.
    pub async fn create_managed(&self, raw: Value) -> Result<Value, CatalogError> {
        let entity_ref = checked_ref(&raw)?;
        self.write_managed(raw, &entity_ref, WriteMode::Create)
            .await
    }

    /// Replaces a managed entity; 404 when missing, 409 when another source owns it.
    pub async fn update_managed(
        &self,
        entity_ref: &str,
        raw: Value,
    ) -> Result<Value, CatalogError> {
        let given = checked_ref(&raw)?;
        if given != entity_ref.to_lowercase() {
            return Err(CatalogError::Input(format!(
                "the entity in the body is {given}, but the path names {entity_ref}"
            )));
        }
        if self.entity_by_ref(&given).await?.is_none() {
            return Err(CatalogError::NotFound(format!("No entity {given}")));
        }
        self.write_managed(raw, &given, WriteMode::Upsert).await
    }

    async fn write_managed(
        &self,
        raw: Value,
        entity_ref: &str,
        mode: WriteMode,
    ) -> Result<Value, CatalogError> {
        let overlays = self.overlay(entity_ref).await?;
        let processed = process(&raw, overlays.as_ref(), None, &self.options.validate)
            .ok_or_else(|| CatalogError::Input("the entity has no kind and name".into()))?;
        if !processed.errors.is_empty() {
            return Err(CatalogError::Invalid {
                message: summary(&processed.errors),
                errors: processed.errors,
            });
        }
        let raw_json = raw.to_string();
        let hash = persist::entity_hash(&raw_json, overlays.as_ref(), None);
        let mut tx = self.store.begin_write().await?;
        if let Write::Conflict { owner } = persist::write_entity(
            &mut tx,
            MANAGED_SOURCE,
            "",
            &raw_json,
            &processed,
            &hash,
            mode,
        )
        .await?
        {
            return Err(CatalogError::Conflict(if owner == MANAGED_SOURCE {
                format!("Entity {entity_ref} already exists")
            } else {
                format!("Entity {entity_ref} is provided by {owner}; it cannot be managed here")
            }));
        }
        tx.commit().await?;
        self.entity_by_ref(entity_ref)
            .await?
            .ok_or_else(|| CatalogError::NotFound(format!("No entity {entity_ref}")))
    }

    /// Deletes a managed entity; 404 when missing, 409 when another source owns it.
    pub async fn delete_managed(&self, entity_ref: &str) -> Result<(), CatalogError> {
        let key = entity_ref.to_lowercase();
        let owner = self
            .source_of(&key)
            .await?
            .ok_or_else(|| CatalogError::NotFound(format!("No entity {key}")))?;
        if owner != MANAGED_SOURCE {
            return Err(CatalogError::Conflict(format!(
                "Entity {key} is provided by {owner}, not managed here"
            )));
        }
        let mut tx = self.store.begin_write().await?;
        persist::delete_entity(&mut tx, &key).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The source that provides an entity.
    pub(crate) async fn source_of(&self, entity_ref: &str) -> Result<Option<String>, CatalogError> {
        use portico_store::sqlx::{self, Row};
        let row = sqlx::query("SELECT source FROM catalog_entities WHERE entity_ref = $1")
            .bind(entity_ref)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.map(|r| r.get(0)))
    }
}

/// The reference of a raw entity, or the envelope errors that keep it from having one.
fn checked_ref(raw: &Value) -> Result<String, CatalogError> {
    entity_ref_of(raw).ok_or_else(|| {
        let errors = validate_backstage(raw);
        CatalogError::Invalid {
            message: summary(&errors),
            errors,
        }
    })
}
