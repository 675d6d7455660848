//! Test support: a fresh store on every backend, so each store test runs on SQLite and on
//! PostgreSQL.
//!
//! PostgreSQL comes from `PORTICO_TEST_POSTGRES_URL` (the test script starts a server and sets
//! it); each call creates a new database on that server. Without the variable the tests fail
//! rather than silently skip PostgreSQL, unless `PORTICO_TEST_POSTGRES=skip` says so explicitly.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Executor;

use crate::{Backend, Store, StoreError};

/// A fresh store on each backend, each paired with a guard that removes it when dropped.
pub async fn stores() -> Vec<(Store, TestDatabase)> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open_sqlite(&dir.path().join("portico.db"))
        .await
        .expect("SQLite opens");
    out.push((store, TestDatabase::Sqlite(dir)));
    if std::env::var("PORTICO_TEST_POSTGRES").as_deref() == Ok("skip") {
        return out;
    }
    let base = std::env::var("PORTICO_TEST_POSTGRES_URL").expect(
        "PORTICO_TEST_POSTGRES_URL is not set: run ./scripts/test.sh, or set PORTICO_TEST_POSTGRES=skip to test SQLite only",
    );
    let (store, name) = fresh_postgres(&base)
        .await
        .expect("PostgreSQL test database");
    out.push((store, TestDatabase::Postgres(name)));
    out
}

/// Keeps a test database alive for the length of a test.
#[derive(Debug)]
pub enum TestDatabase {
    /// The folder holding the SQLite file.
    Sqlite(tempfile::TempDir),
    /// The name of the PostgreSQL database.
    Postgres(String),
}

impl TestDatabase {
    /// The backend of this database.
    pub fn backend(&self) -> Backend {
        match self {
            TestDatabase::Sqlite(_) => Backend::Sqlite,
            TestDatabase::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Creates a new, migrated database on the PostgreSQL server at `base_url`.
pub async fn fresh_postgres(base_url: &str) -> Result<(Store, String), StoreError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    sqlx::any::install_default_drivers();
    let name = format!(
        "portico_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let admin = sqlx::AnyPool::connect(base_url)
        .await
        .map_err(StoreError::Connect)?;
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await?;
    admin.close().await;
    let (prefix, _) = base_url.rsplit_once('/').unwrap_or((base_url, ""));
    let store = Store::open(&format!("{prefix}/{name}")).await?;
    Ok((store, name))
}
