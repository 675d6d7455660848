-- A number that every change to the catalog's entities, search rows or relations moves on (in
-- the same transaction, after the change), so a process holding the catalog in memory can tell
-- with one read whether its copy is still current.

CREATE TABLE catalog_generation (
    id INTEGER PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO catalog_generation (id, value) VALUES (1, 0);
