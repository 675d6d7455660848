//! Entity rows in SQL: writing an entity with its search rows and relations in one go, deleting
//! it, and reading entities back with their relations stitched in. The same SQL runs on SQLite and
//! PostgreSQL.

use std::collections::HashMap;

use portico_store::sqlx::any::AnyRow;
use portico_store::sqlx::{self, AnyConnection, AssertSqlSafe, Row};
use serde_json::{Value, json};

use super::overlay::Overlay;
use super::processing::Processed;
use super::search::{SearchRow, search_rows};
use crate::ValidationError;

/// Rows per multi-row INSERT: well under both databases' bind-parameter limits.
const INSERT_CHUNK: usize = 400;

/// What happened to one entity write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Stored (new or changed).
    Written,
    /// Identical to what is stored; nothing done.
    Unchanged,
    /// The reference belongs to another source, which keeps it.
    Conflict {
        /// The source that owns the reference.
        owner: String,
    },
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A short change-detection hash of what decides an entity's stored form: its raw JSON, its
/// overlay and the location it was read from.
pub fn entity_hash(raw_json: &str, overlay: Option<&Overlay>, location: Option<&str>) -> String {
    use std::hash::{Hash, Hasher};
    let overlay_json = overlay
        .map(|o| serde_json::to_string(o).unwrap_or_default())
        .unwrap_or_default();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    [
        raw_json,
        overlay_json.as_str(),
        location.unwrap_or_default(),
    ]
    .hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// `$1, $2, …` for `n` placeholders starting after `offset`.
pub fn placeholders(offset: usize, n: usize) -> String {
    (offset + 1..=offset + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a write may replace an entity that already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Only create: an existing entity, whoever wrote it, is a conflict.
    Create,
    /// Create or replace, as long as the same source owns it.
    Upsert,
    /// Create or replace, taking the reference from whichever source owns it.
    Takeover,
}

/// Writes one processed entity from `source`; refuses a reference another source owns. Races
/// between writers are settled by the database: a concurrent create loses with a conflict.
pub async fn write_entity(
    conn: &mut AnyConnection,
    source: &str,
    source_key: &str,
    raw_json: &str,
    processed: &Processed,
    hash: &str,
    mode: WriteMode,
) -> Result<Write, sqlx::Error> {
    let existing =
        sqlx::query("SELECT uid, source, hash FROM catalog_entities WHERE entity_ref = $1")
            .bind(&processed.entity_ref)
            .fetch_optional(&mut *conn)
            .await?;
    let uid = match &existing {
        Some(row) if mode == WriteMode::Takeover && row.get::<String, _>(1) != source => {
            delete_entity(conn, &processed.entity_ref).await?;
            return Box::pin(write_entity(
                conn, source, source_key, raw_json, processed, hash, mode,
            ))
            .await;
        }
        Some(row) => {
            let owner: String = row.get(1);
            if owner != source || mode == WriteMode::Create {
                return Ok(Write::Conflict { owner });
            }
            if row.get::<String, _>(2) == hash {
                return Ok(Write::Unchanged);
            }
            row.get::<String, _>(0)
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let etag = uuid::Uuid::new_v4().simple().to_string();
    let mut entity = processed.entity.clone();
    if let Some(metadata) = entity.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("uid".into(), json!(uid));
        metadata.insert("etag".into(), json!(etag));
    }
    let errors = serde_json::to_string(&processed.errors).unwrap_or_else(|_| "[]".into());
    // A new entity is only inserted if nobody did meanwhile; a known one is only replaced while
    // its source still owns it.
    let sql = if existing.is_none() {
        "INSERT INTO catalog_entities (entity_ref, uid, source, source_key, raw, entity, errors, hash, etag, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (entity_ref) DO NOTHING"
    } else {
        "INSERT INTO catalog_entities (entity_ref, uid, source, source_key, raw, entity, errors, hash, etag, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (entity_ref) DO UPDATE SET source_key = excluded.source_key, raw = excluded.raw,
           entity = excluded.entity, errors = excluded.errors, hash = excluded.hash, etag = excluded.etag,
           updated_at = excluded.updated_at
         WHERE catalog_entities.source = excluded.source"
    };
    let done = sqlx::query(sql)
        .bind(&processed.entity_ref)
        .bind(&uid)
        .bind(source)
        .bind(source_key)
        .bind(raw_json)
        .bind(entity.to_string())
        .bind(errors)
        .bind(hash)
        .bind(etag)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        let owner = sqlx::query("SELECT source FROM catalog_entities WHERE entity_ref = $1")
            .bind(&processed.entity_ref)
            .fetch_optional(&mut *conn)
            .await?
            .map_or_else(|| "another writer".to_string(), |r| r.get(0));
        return Ok(Write::Conflict { owner });
    }
    clear_derived(conn, &processed.entity_ref).await?;
    insert_relations(conn, processed).await?;
    insert_search(
        conn,
        &processed.entity_ref,
        &search_rows(&processed.entity_ref, &entity, &processed.relations),
    )
    .await?;
    bump_generation(conn).await?;
    Ok(Write::Written)
}

/// Removes an entity with everything derived from it.
pub async fn delete_entity(
    conn: &mut AnyConnection,
    entity_ref: &str,
) -> Result<bool, sqlx::Error> {
    clear_derived(conn, entity_ref).await?;
    let done = sqlx::query("DELETE FROM catalog_entities WHERE entity_ref = $1")
        .bind(entity_ref)
        .execute(&mut *conn)
        .await?;
    bump_generation(conn).await?;
    Ok(done.rows_affected() > 0)
}

async fn clear_derived(conn: &mut AnyConnection, entity_ref: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM catalog_search WHERE origin_ref = $1")
        .bind(entity_ref)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM catalog_relations WHERE origin_ref = $1")
        .bind(entity_ref)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn insert_relations(
    conn: &mut AnyConnection,
    processed: &Processed,
) -> Result<(), sqlx::Error> {
    for chunk in processed.relations.chunks(INSERT_CHUNK) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("({})", placeholders(i * 4, 4)))
            .collect();
        let sql = format!(
            "INSERT INTO catalog_relations (origin_ref, source_ref, type, target_ref) VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for relation in chunk {
            query = query
                .bind(&processed.entity_ref)
                .bind(relation.source.canonical())
                .bind(relation.kind)
                .bind(relation.target.canonical());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_search(
    conn: &mut AnyConnection,
    origin: &str,
    rows: &[SearchRow],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("({})", placeholders(i * 5, 5)))
            .collect();
        let sql = format!(
            "INSERT INTO catalog_search (origin_ref, entity_ref, key, value, original) VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for row in chunk {
            query = query
                .bind(origin)
                .bind(&row.entity_ref)
                .bind(&row.key)
                .bind(&row.value)
                .bind(&row.original);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Reads entities by reference, with relations and processing errors stitched in; missing ones
/// are absent from the map.
pub async fn load_entities(
    conn: &mut AnyConnection,
    refs: &[String],
) -> Result<HashMap<String, Value>, sqlx::Error> {
    let mut out = HashMap::with_capacity(refs.len());
    for chunk in refs.chunks(INSERT_CHUNK) {
        let list = placeholders(0, chunk.len());
        let sql = format!(
            "SELECT entity_ref, entity, errors FROM catalog_entities WHERE entity_ref IN ({list})"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for r in chunk {
            query = query.bind(r);
        }
        add_entities(&mut out, query.fetch_all(&mut *conn).await?);
        let sql = format!(
            "SELECT source_ref, type, target_ref FROM catalog_relations WHERE source_ref IN ({list}) ORDER BY type, target_ref"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for r in chunk {
            query = query.bind(r);
        }
        add_relations(&mut out, query.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// Every entity, as [`load_entities`] reads them: what the in-memory query index holds.
pub async fn load_all_entities(
    conn: &mut AnyConnection,
) -> Result<HashMap<String, Value>, sqlx::Error> {
    let mut out = HashMap::new();
    let rows = sqlx::query("SELECT entity_ref, entity, errors FROM catalog_entities")
        .fetch_all(&mut *conn)
        .await?;
    add_entities(&mut out, rows);
    // Ordered per source as `load_entities` orders them (same collation on either database).
    let rows = sqlx::query(
        "SELECT source_ref, type, target_ref FROM catalog_relations ORDER BY source_ref, type, target_ref",
    )
    .fetch_all(&mut *conn)
    .await?;
    add_relations(&mut out, rows);
    Ok(out)
}

/// Entity rows (`entity_ref, entity, errors`) as the API shows them, relations still empty.
fn add_entities(out: &mut HashMap<String, Value>, rows: Vec<AnyRow>) {
    for row in rows {
        let entity_ref: String = row.get(0);
        let mut entity: Value =
            serde_json::from_str(&row.get::<String, _>(1)).unwrap_or(Value::Null);
        let errors: Vec<ValidationError> =
            serde_json::from_str(&row.get::<String, _>(2)).unwrap_or_default();
        attach_status(&mut entity, &errors);
        if let Some(root) = entity.as_object_mut() {
            root.insert("relations".into(), json!([]));
        }
        out.insert(entity_ref, entity);
    }
}

/// Relation rows (`source_ref, type, target_ref`) added to the entities they start from, once each.
fn add_relations(out: &mut HashMap<String, Value>, rows: Vec<AnyRow>) {
    for row in rows {
        let source: String = row.get(0);
        if let Some(relations) = out
            .get_mut(&source)
            .and_then(|e| e.get_mut("relations"))
            .and_then(Value::as_array_mut)
        {
            let kind: String = row.get(1);
            let target: String = row.get(2);
            let relation = relation_json(&kind, &target);
            if !relations.contains(&relation) {
                relations.push(relation);
            }
        }
    }
}

/// Marks the catalog's entities as changed (see [`read_generation`]). Runs after the change in
/// the same connection, so a reader that sees the new number also sees the change.
async fn bump_generation(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE catalog_generation SET value = value + 1 WHERE id = 1")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A number that changes whenever an entity, its search rows or its relations change: what an
/// in-memory copy of the catalog is checked against.
pub async fn read_generation(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT value FROM catalog_generation WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)
}

/// A relation as the catalog API shows it.
fn relation_json(kind: &str, target: &str) -> Value {
    let parsed = crate::EntityRef::parse(target, None, crate::entity_ref::DEFAULT_NAMESPACE).ok();
    let mut relation = json!({"type": kind, "targetRef": target});
    if let Some(r) = parsed {
        relation["target"] = json!({"kind": r.kind, "namespace": r.namespace, "name": r.name});
    }
    relation
}

/// Processing errors as Backstage shows them: `status.items` of level `error`.
fn attach_status(entity: &mut Value, errors: &[ValidationError]) {
    if errors.is_empty() {
        return;
    }
    let items: Vec<Value> = errors
        .iter()
        .map(|e| {
            json!({"type": "backstage.io/catalog-processing", "level": "error", "message": format!("{}: {}", e.name, e.message),
                "error": {"name": e.name, "message": e.message}})
        })
        .collect();
    if let Some(root) = entity.as_object_mut() {
        root.insert("status".into(), json!({"items": items}));
    }
}
