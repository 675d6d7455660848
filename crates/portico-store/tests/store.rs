//! The store opens and migrates on every backend, and migrations are idempotent.

use portico_store::sqlx::{self, Row};
use portico_store::testing::stores;

#[tokio::test]
async fn migrations_apply_on_every_backend_and_tables_work() {
    for (store, db) in stores().await {
        sqlx::query("INSERT INTO catalog_overlays (entity_ref, overlay, updated_by, updated_at) VALUES ($1, $2, $3, $4)")
            .bind("api:default/x")
            .bind("{}")
            .bind("user:default/jane")
            .bind(1_i64)
            .execute(store.pool())
            .await
            .unwrap_or_else(|e| panic!("{:?}: {e}", db.backend()));
        let row = sqlx::query(
            "SELECT updated_by, updated_at FROM catalog_overlays WHERE entity_ref = $1",
        )
        .bind("api:default/x")
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(row.get::<String, _>(0), "user:default/jane");
        assert_eq!(row.get::<i64, _>(1), 1);
        assert_eq!(store.backend(), db.backend());
    }
}

#[tokio::test]
async fn reopening_an_sqlite_file_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let store = portico_store::Store::open_sqlite(&path).await.unwrap();
    sqlx::query("INSERT INTO catalog_overlays (entity_ref, overlay, updated_by, updated_at) VALUES ($1, '{}', 'u', 0)")
        .bind("a")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let store = portico_store::Store::open_sqlite(&path).await.unwrap();
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM catalog_overlays")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[test]
fn unsupported_urls_are_refused_with_a_hint() {
    let err = "mysql://x".parse::<portico_store::Backend>().unwrap_err();
    assert!(err.to_string().contains("use sqlite://PATH or postgres://"));
}
