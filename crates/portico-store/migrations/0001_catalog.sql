-- The catalog: where entities come from, the entities as stored, the relations and search rows
-- derived from them, and the overlays that decorate them. Written once for SQLite and PostgreSQL.

CREATE TABLE catalog_locations (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    target TEXT NOT NULL,
    origin TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    refreshed_at BIGINT,
    problems TEXT NOT NULL DEFAULT '[]',
    lease_owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    UNIQUE (type, target)
);

CREATE TABLE catalog_entities (
    entity_ref TEXT PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    source_key TEXT NOT NULL,
    raw TEXT NOT NULL,
    entity TEXT NOT NULL,
    errors TEXT NOT NULL,
    hash TEXT NOT NULL,
    etag TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX catalog_entities_source ON catalog_entities (source, source_key);

CREATE TABLE catalog_relations (
    origin_ref TEXT NOT NULL,
    source_ref TEXT NOT NULL,
    type TEXT NOT NULL,
    target_ref TEXT NOT NULL
);
CREATE INDEX catalog_relations_origin ON catalog_relations (origin_ref);
CREATE INDEX catalog_relations_source ON catalog_relations (source_ref);

CREATE TABLE catalog_search (
    origin_ref TEXT NOT NULL,
    entity_ref TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT,
    original TEXT
);
CREATE INDEX catalog_search_key_value ON catalog_search (key, value, entity_ref);
CREATE INDEX catalog_search_origin ON catalog_search (origin_ref);
CREATE INDEX catalog_search_entity ON catalog_search (entity_ref, key);

CREATE TABLE catalog_overlays (
    entity_ref TEXT PRIMARY KEY,
    overlay TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
