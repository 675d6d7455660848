-- Per-entity lookups (sorting, full text, filters probed per entity) read the value from the index
-- itself; facets read original values without touching the table.
DROP INDEX catalog_search_entity;
CREATE INDEX catalog_search_entity ON catalog_search (entity_ref, key, value);
CREATE INDEX catalog_search_facets ON catalog_search (key, original, entity_ref);
