//! Overlay storage and permissions: admins, the entity's owner, or anyone when it has no owner
//! may write an overlay; writing or removing one reprocesses the entity at once.

use portico_store::sqlx::{self, Row};
use serde_json::Value;

use super::overlay::Overlay;
use super::persist::{self, Write, WriteMode, now_ms};
use super::processing::{MANAGED_BY_LOCATION, process};
use super::{Actor, Catalog, CatalogError, summary};
use crate::{Entity, EntityRef};

impl Catalog {
    /// The overlay of an entity, if any.
    pub async fn overlay(&self, entity_ref: &str) -> Result<Option<Overlay>, CatalogError> {
        let row = sqlx::query("SELECT overlay FROM catalog_overlays WHERE entity_ref = $1")
            .bind(entity_ref.to_lowercase())
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.and_then(|r| serde_json::from_str(&r.get::<String, _>(0)).ok()))
    }

    /// Stores an overlay and reprocesses the entity; refuses an overlay that makes it invalid.
    pub async fn put_overlay(
        &self,
        entity_ref: &str,
        overlay: Overlay,
        actor: &Actor,
    ) -> Result<Value, CatalogError> {
        let key = entity_ref.to_lowercase();
        let stored = self.stored(&key).await?;
        self.check_overlay_permission(&stored, actor)?;
        let without = process(
            &stored.raw,
            None,
            stored.location.as_deref(),
            &self.options.validate,
        );
        let with = process(
            &stored.raw,
            Some(&overlay),
            stored.location.as_deref(),
            &self.options.validate,
        );
        if let (Some(without), Some(with)) = (without, with) {
            let new_errors: Vec<_> = with
                .errors
                .into_iter()
                .filter(|e| !without.errors.contains(e))
                .collect();
            if !new_errors.is_empty() {
                return Err(CatalogError::Invalid {
                    message: summary(&new_errors),
                    errors: new_errors,
                });
            }
        }
        sqlx::query(
            "INSERT INTO catalog_overlays (entity_ref, overlay, updated_by, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (entity_ref) DO UPDATE SET overlay = excluded.overlay, updated_by = excluded.updated_by,
               updated_at = excluded.updated_at",
        )
        .bind(&key)
        .bind(serde_json::to_string(&overlay).unwrap_or_else(|_| "{}".into()))
        .bind(&actor.user_ref)
        .bind(now_ms())
        .execute(self.store.pool())
        .await?;
        self.reprocess(&key).await
    }

    /// Removes an overlay and reprocesses the entity, giving back the source's version.
    pub async fn delete_overlay(
        &self,
        entity_ref: &str,
        actor: &Actor,
    ) -> Result<Value, CatalogError> {
        let key = entity_ref.to_lowercase();
        let stored = self.stored(&key).await?;
        self.check_overlay_permission(&stored, actor)?;
        let done = sqlx::query("DELETE FROM catalog_overlays WHERE entity_ref = $1")
            .bind(&key)
            .execute(self.store.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(CatalogError::NotFound(format!(
                "Entity {key} has no overlay"
            )));
        }
        self.reprocess(&key).await
    }

    fn check_overlay_permission(&self, stored: &Stored, actor: &Actor) -> Result<(), CatalogError> {
        let is = |r: &str| {
            actor.user_ref.eq_ignore_ascii_case(r)
                || actor
                    .ownership_refs
                    .iter()
                    .any(|o| o.eq_ignore_ascii_case(r))
        };
        if self.options.admins.iter().any(|a| is(a)) {
            return Ok(());
        }
        let owner = Entity::new(&stored.entity).and_then(|e| {
            let owner = e.spec_str("owner")?;
            EntityRef::parse(owner, Some("Group"), e.namespace()).ok()
        });
        match owner {
            None => Ok(()),
            Some(owner) if is(&owner.canonical()) => Ok(()),
            Some(owner) => Err(CatalogError::NotAllowed(format!(
                "only admins or the owner ({}) may change the overlay of {}",
                owner.canonical(),
                stored.entity_ref
            ))),
        }
    }

    /// Processes a stored entity again from its raw form with its current overlay.
    async fn reprocess(&self, key: &str) -> Result<Value, CatalogError> {
        let stored = self.stored(key).await?;
        let overlay = self.overlay(key).await?;
        let processed = process(
            &stored.raw,
            overlay.as_ref(),
            stored.location.as_deref(),
            &self.options.validate,
        )
        .ok_or_else(|| CatalogError::Input(format!("stored entity {key} has no kind and name")))?;
        let raw_json = stored.raw.to_string();
        let hash = persist::entity_hash(&raw_json, overlay.as_ref(), stored.location.as_deref());
        let mut tx = self.store.begin_write().await?;
        if let Write::Conflict { owner } = persist::write_entity(
            &mut tx,
            &stored.source,
            &stored.source_key,
            &raw_json,
            &processed,
            &hash,
            WriteMode::Upsert,
        )
        .await?
        {
            return Err(CatalogError::Conflict(format!(
                "Entity {key} moved to {owner} meanwhile"
            )));
        }
        tx.commit().await?;
        self.entity_by_ref(key)
            .await?
            .ok_or_else(|| CatalogError::NotFound(format!("No entity {key}")))
    }

    async fn stored(&self, key: &str) -> Result<Stored, CatalogError> {
        let row = sqlx::query(
            "SELECT raw, entity, source, source_key FROM catalog_entities WHERE entity_ref = $1",
        )
        .bind(key)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or_else(|| CatalogError::NotFound(format!("No entity {key}")))?;
        let entity: Value = serde_json::from_str(&row.get::<String, _>(1)).unwrap_or(Value::Null);
        let location = Entity::new(&entity)
            .and_then(|e| e.annotation(MANAGED_BY_LOCATION))
            .map(str::to_string);
        Ok(Stored {
            entity_ref: key.to_string(),
            raw: serde_json::from_str(&row.get::<String, _>(0)).unwrap_or(Value::Null),
            entity,
            source: row.get(2),
            source_key: row.get(3),
            location,
        })
    }
}

/// An entity row as stored.
struct Stored {
    entity_ref: String,
    raw: Value,
    entity: Value,
    source: String,
    source_key: String,
    location: Option<String>,
}
