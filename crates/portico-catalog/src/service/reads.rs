//! Reading single entities back: by reference, by uid, by a list of references.

use std::collections::HashMap;

use portico_store::sqlx::{self, Row};
use serde_json::Value;

use super::persist::{self, load_entities};
use super::{Catalog, CatalogError};

impl Catalog {
    /// Entities by canonical reference, relations and errors stitched in.
    pub(crate) async fn load(
        &self,
        refs: &[String],
    ) -> Result<HashMap<String, Value>, CatalogError> {
        let mut conn = self.store.pool().acquire().await?;
        Ok(load_entities(&mut conn, refs).await?)
    }

    /// One entity by reference (compared case-insensitively).
    pub async fn entity_by_ref(&self, entity_ref: &str) -> Result<Option<Value>, CatalogError> {
        let key = entity_ref.to_lowercase();
        Ok(self.load(std::slice::from_ref(&key)).await?.remove(&key))
    }

    /// One entity by `metadata.uid`.
    pub async fn entity_by_uid(&self, uid: &str) -> Result<Option<Value>, CatalogError> {
        match self.ref_of_uid(uid).await? {
            Some(entity_ref) => self.entity_by_ref(&entity_ref).await,
            None => Ok(None),
        }
    }

    async fn ref_of_uid(&self, uid: &str) -> Result<Option<String>, CatalogError> {
        let row = sqlx::query("SELECT entity_ref FROM catalog_entities WHERE uid = $1")
            .bind(uid)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Deletes an entity by uid. An entity from a location comes back at its next refresh, as in
    /// Backstage.
    pub async fn delete_by_uid(&self, uid: &str) -> Result<(), CatalogError> {
        let entity_ref = self
            .ref_of_uid(uid)
            .await?
            .ok_or_else(|| CatalogError::NotFound(format!("No entity with uid {uid}")))?;
        let mut tx = self.store.begin_write().await?;
        persist::delete_entity(&mut tx, &entity_ref).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Entities for a list of references, in the same order, `None` for missing ones.
    pub async fn entities_by_refs(
        &self,
        refs: &[String],
    ) -> Result<Vec<Option<Value>>, CatalogError> {
        let keys: Vec<String> = refs.iter().map(|r| r.to_lowercase()).collect();
        let found = self.load(&keys).await?;
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }
}
