//! Locations: where entities are read from, and refreshing them. A refresh processes every
//! document on its own: an invalid entity is stored with its errors, a broken document is
//! recorded as a problem, entities that vanished from the location are removed, and a location
//! that cannot be read keeps its last good entities.

use std::collections::{HashMap, HashSet};

use portico_store::sqlx::{self, Row};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::overlay::Overlay;
use super::persist::{self, Write, WriteMode, now_ms};
use super::processing::{entity_ref_of, process};
use super::sources::{LOCATION_TYPES, read_location};
use super::{Catalog, CatalogError};
use crate::{validate_backstage, yaml};

/// Entities written per transaction during a refresh: keeps write locks short.
const BATCH: usize = 500;

/// Where a location was registered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocationOrigin {
    /// `catalog.locations` in the configuration.
    Config,
    /// `POST /api/catalog/locations`.
    Api,
}

impl LocationOrigin {
    fn as_str(self) -> &'static str {
        match self {
            LocationOrigin::Config => "config",
            LocationOrigin::Api => "api",
        }
    }
}

/// A problem found while refreshing a location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationProblem {
    /// File (or URL) the problem is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Line where the document starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// Entity the problem is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_ref: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// A registered location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// Stable id.
    pub id: String,
    /// `file` or `url`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Path or URL.
    pub target: String,
    /// Where it was registered from.
    pub origin: LocationOrigin,
    /// When it was last refreshed (ms since the epoch).
    pub refreshed_at: Option<i64>,
    /// Problems of the last refresh.
    pub problems: Vec<LocationProblem>,
}

/// What a refresh did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshReport {
    /// Entities stored (new or changed).
    pub written: usize,
    /// Entities already up to date.
    pub unchanged: usize,
    /// Entities removed because they left the location.
    pub removed: usize,
    /// References the location provides, invalid ones included.
    pub entity_refs: Vec<String>,
    /// Problems found.
    pub problems: Vec<LocationProblem>,
}

fn source_of(id: &str) -> String {
    format!("location:{id}")
}

fn location_from_row(row: &portico_store::sqlx::any::AnyRow) -> Location {
    let origin = if row.get::<String, _>(3) == "config" {
        LocationOrigin::Config
    } else {
        LocationOrigin::Api
    };
    Location {
        id: row.get(0),
        kind: row.get(1),
        target: row.get(2),
        origin,
        refreshed_at: row.get(4),
        problems: serde_json::from_str(&row.get::<String, _>(5)).unwrap_or_default(),
    }
}

const LOCATION_COLUMNS: &str = "id, type, target, origin, refreshed_at, problems";

impl Catalog {
    /// Registers a location; registering the same type and target again returns the existing one.
    pub async fn add_location(
        &self,
        kind: &str,
        target: &str,
        origin: LocationOrigin,
    ) -> Result<(Location, bool), CatalogError> {
        if !LOCATION_TYPES.contains(&kind) {
            return Err(CatalogError::Input(format!(
                "unsupported location type \"{kind}\"; use one of: {}",
                LOCATION_TYPES.join(", ")
            )));
        }
        if target.trim().is_empty() {
            return Err(CatalogError::Input(
                "location target must not be empty".into(),
            ));
        }
        if kind == "url"
            && !url::Url::parse(target).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            return Err(CatalogError::Input(format!(
                "a url location needs an absolute http or https URL, not \"{target}\""
            )));
        }
        if let Some(existing) = self.location_by_target(kind, target).await? {
            return Ok((existing, false));
        }
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO catalog_locations (id, type, target, origin, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (type, target) DO NOTHING",
        )
        .bind(&id)
        .bind(kind)
        .bind(target)
        .bind(origin.as_str())
        .bind(now_ms())
        .execute(self.store.pool())
        .await?;
        let location = self
            .location_by_target(kind, target)
            .await?
            .ok_or_else(|| {
                CatalogError::Conflict(format!(
                    "location {kind}:{target} was removed while being added"
                ))
            })?;
        let created = location.id == id;
        Ok((location, created))
    }

    async fn location_by_target(
        &self,
        kind: &str,
        target: &str,
    ) -> Result<Option<Location>, CatalogError> {
        let sql = "SELECT id, type, target, origin, refreshed_at, problems FROM catalog_locations WHERE type = $1 AND target = $2";
        let row = sqlx::query(sql)
            .bind(kind)
            .bind(target)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.as_ref().map(location_from_row))
    }

    /// Every registered location, oldest first.
    pub async fn locations(&self) -> Result<Vec<Location>, CatalogError> {
        let rows = sqlx::query(portico_store::sqlx::AssertSqlSafe(format!(
            "SELECT {LOCATION_COLUMNS} FROM catalog_locations ORDER BY created_at, id"
        )))
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows.iter().map(location_from_row).collect())
    }

    /// One location by id.
    pub async fn location(&self, id: &str) -> Result<Option<Location>, CatalogError> {
        let row = sqlx::query(portico_store::sqlx::AssertSqlSafe(format!(
            "SELECT {LOCATION_COLUMNS} FROM catalog_locations WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row.as_ref().map(location_from_row))
    }

    /// Removes a location and every entity it provided.
    pub async fn remove_location(&self, id: &str) -> Result<(), CatalogError> {
        let mut tx = self.store.begin_write().await?;
        let refs: Vec<String> =
            sqlx::query("SELECT entity_ref FROM catalog_entities WHERE source = $1")
                .bind(source_of(id))
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
        for entity_ref in &refs {
            persist::delete_entity(&mut tx, entity_ref).await?;
        }
        let done = sqlx::query("DELETE FROM catalog_locations WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(CatalogError::NotFound(format!(
                "Found no location with ID {id}"
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Makes the config-registered locations exactly `wanted`: adds the new ones, removes the ones
    /// no longer configured (with their entities).
    pub async fn sync_config_locations(
        &self,
        wanted: &[(String, String)],
    ) -> Result<Vec<Location>, CatalogError> {
        let mut kept = Vec::new();
        for (kind, target) in wanted {
            kept.push(
                self.add_location(kind, target, LocationOrigin::Config)
                    .await?
                    .0,
            );
        }
        for location in self.locations().await? {
            if location.origin == LocationOrigin::Config
                && !kept.iter().any(|k| k.id == location.id)
            {
                self.remove_location(&location.id).await?;
            }
        }
        Ok(kept)
    }

    /// Refreshes every location; one failing location never stops the others.
    pub async fn refresh_all(&self) -> Result<Vec<(Location, RefreshReport)>, CatalogError> {
        let mut out = Vec::new();
        for location in self.locations().await? {
            let report = self.refresh_location(&location.id).await?;
            out.push((location, report));
        }
        Ok(out)
    }

    /// Reads a location again and brings its entities up to date.
    pub async fn refresh_location(&self, id: &str) -> Result<RefreshReport, CatalogError> {
        let location = self
            .location(id)
            .await?
            .ok_or_else(|| CatalogError::NotFound(format!("Found no location with ID {id}")))?;
        let source = source_of(id);
        let mut report = RefreshReport::default();
        let files = match read_location(&location.kind, &location.target, &self.http).await {
            Ok(files) => files,
            Err(message) => {
                report.problems.push(LocationProblem {
                    file: None,
                    line: None,
                    entity_ref: None,
                    message,
                });
                self.record_refresh(id, &report.problems).await?;
                return Ok(report);
            }
        };
        let overlays = self.all_overlays().await?;
        let mut seen: HashSet<String> = HashSet::new();
        let mut keep_files: HashSet<String> = HashSet::new();
        let mut pending: Vec<Candidate> = Vec::new();
        for file in &files {
            let bytes = match &file.bytes {
                Ok(bytes) => bytes,
                Err(message) => {
                    keep_files.insert(file.key.clone());
                    report
                        .problems
                        .push(problem(&file.key, None, None, message.clone()));
                    continue;
                }
            };
            for doc in yaml::parse_documents(bytes) {
                let value = match doc.content {
                    Ok(Some(value)) => value,
                    Ok(None) => continue,
                    Err(e) => {
                        // Its entity (if any) is unknown: keep what the file gave before.
                        keep_files.insert(file.key.clone());
                        report.problems.push(problem(
                            &file.key,
                            Some(doc.line),
                            None,
                            e.to_string(),
                        ));
                        continue;
                    }
                };
                let Some(entity_ref) = entity_ref_of(&value) else {
                    let message = validate_backstage(&value)
                        .first()
                        .map_or_else(|| "not an entity".into(), |e| e.message.clone());
                    report
                        .problems
                        .push(problem(&file.key, Some(doc.line), None, message));
                    continue;
                };
                if !seen.insert(entity_ref.clone()) {
                    let message = format!(
                        "{entity_ref} is defined more than once in this location; the first definition is kept"
                    );
                    report.problems.push(problem(
                        &file.key,
                        Some(doc.line),
                        Some(entity_ref),
                        message,
                    ));
                    continue;
                }
                pending.push(Candidate {
                    file: file.key.clone(),
                    location_ref: file.location_ref.clone(),
                    line: doc.line,
                    entity_ref,
                    raw: value,
                });
            }
        }
        for batch in pending.chunks(BATCH) {
            let mut tx = self.store.begin_write().await?;
            for candidate in batch {
                let overlay = overlays.get(&candidate.entity_ref);
                let Some(processed) = process(
                    &candidate.raw,
                    overlay,
                    Some(&candidate.location_ref),
                    &self.options.validate,
                ) else {
                    continue;
                };
                let raw = candidate.raw.to_string();
                let hash = persist::entity_hash(&raw, overlay, Some(&candidate.location_ref));
                for error in &processed.errors {
                    report.problems.push(problem(
                        &candidate.file,
                        Some(candidate.line),
                        Some(candidate.entity_ref.clone()),
                        error.message.clone(),
                    ));
                }
                match persist::write_entity(
                    &mut tx,
                    &source,
                    &candidate.file,
                    &raw,
                    &processed,
                    &hash,
                    WriteMode::Upsert,
                )
                .await?
                {
                    Write::Written => report.written += 1,
                    Write::Unchanged => report.unchanged += 1,
                    Write::Conflict { owner } => {
                        let owner = if owner == super::BUILTIN_SOURCE {
                            "Portico itself (a built-in entity)".to_string()
                        } else {
                            owner
                        };
                        let message = format!(
                            "{} is already provided by {owner}; this location's definition is ignored",
                            candidate.entity_ref
                        );
                        report.problems.push(problem(
                            &candidate.file,
                            Some(candidate.line),
                            Some(candidate.entity_ref.clone()),
                            message,
                        ));
                        seen.remove(&candidate.entity_ref);
                        continue;
                    }
                }
                report.entity_refs.push(candidate.entity_ref.clone());
            }
            tx.commit().await?;
        }
        report.removed = self.remove_stale(&source, &seen, &keep_files).await?;
        self.record_refresh(id, &report.problems).await?;
        Ok(report)
    }

    /// Deletes entities of `source` that the refresh did not see, except from files that could
    /// not be read completely.
    async fn remove_stale(
        &self,
        source: &str,
        seen: &HashSet<String>,
        keep_files: &HashSet<String>,
    ) -> Result<usize, CatalogError> {
        let rows =
            sqlx::query("SELECT entity_ref, source_key FROM catalog_entities WHERE source = $1")
                .bind(source)
                .fetch_all(self.store.pool())
                .await?;
        let stale: Vec<String> = rows
            .iter()
            .filter(|r| {
                !seen.contains(&r.get::<String, _>(0))
                    && !keep_files.contains(&r.get::<String, _>(1))
            })
            .map(|r| r.get(0))
            .collect();
        for batch in stale.chunks(BATCH) {
            let mut tx = self.store.begin_write().await?;
            for entity_ref in batch {
                persist::delete_entity(&mut tx, entity_ref).await?;
            }
            tx.commit().await?;
        }
        Ok(stale.len())
    }

    async fn record_refresh(
        &self,
        id: &str,
        problems: &[LocationProblem],
    ) -> Result<(), CatalogError> {
        sqlx::query("UPDATE catalog_locations SET refreshed_at = $1, problems = $2 WHERE id = $3")
            .bind(now_ms())
            .bind(serde_json::to_string(problems).unwrap_or_else(|_| "[]".into()))
            .bind(id)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// Refreshes the location that provides an entity; entities from other sources need none.
    pub async fn refresh_entity(&self, entity_ref: &str) -> Result<(), CatalogError> {
        let key = entity_ref.to_lowercase();
        let source = self
            .source_of(&key)
            .await?
            .ok_or_else(|| CatalogError::NotFound(format!("No entity {key}")))?;
        if let Some(id) = source.strip_prefix("location:") {
            self.refresh_location(id).await?;
        }
        Ok(())
    }

    /// Every overlay, by entity reference.
    pub(crate) async fn all_overlays(&self) -> Result<HashMap<String, Overlay>, CatalogError> {
        let rows = sqlx::query("SELECT entity_ref, overlay FROM catalog_overlays")
            .fetch_all(self.store.pool())
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.get::<String, _>(0),
                    serde_json::from_str(&r.get::<String, _>(1)).ok()?,
                ))
            })
            .collect())
    }
}

/// A document that names an entity, waiting to be processed and stored.
struct Candidate {
    file: String,
    location_ref: String,
    line: usize,
    entity_ref: String,
    raw: Value,
}

fn problem(
    file: &str,
    line: Option<usize>,
    entity_ref: Option<String>,
    message: String,
) -> LocationProblem {
    LocationProblem {
        file: Some(file.to_string()),
        line,
        entity_ref,
        message,
    }
}
