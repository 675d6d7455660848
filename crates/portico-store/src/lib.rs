//! Portico's storage: one SQL pool over SQLite (the embedded default) or PostgreSQL (for many
//! replicas), with one set of migrations that runs on both, applied before any traffic.
//!
//! SQL here and in the crates above it is written once for both databases: `$1` placeholders,
//! `TEXT`/`BIGINT` columns, no `RETURNING`-only or vendor-specific features.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

#[cfg(feature = "testing")]
pub mod testing;

pub use sqlx;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (one process; the embedded default).
    Sqlite,
    /// A PostgreSQL server (any number of Portico replicas).
    Postgres,
}

/// Errors of opening or using the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names a database Portico does not support.
    #[error("unsupported database URL \"{0}\": use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// The database could not be reached or opened.
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// A migration failed; the database is left as the last successful migration made it.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The migrations, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A connection pool plus the backend it talks to.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite admits one writer at a time and cannot wait for a lock it must upgrade mid-
    /// transaction, so Portico queues its SQLite writers here instead of failing them.
    writer: Arc<Mutex<()>>,
    /// Write transactions this process committed (see [`Store::local_commits`]).
    commits: Arc<AtomicU64>,
}

/// A write transaction; on SQLite it also holds the writer slot until it ends.
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    _slot: Option<OwnedMutexGuard<()>>,
    commits: Arc<AtomicU64>,
}

impl WriteTx {
    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await?;
        self.commits.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl Store {
    /// Opens the database at `url` (`sqlite://…` or `postgres://…`) and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let backend = Backend::from_str(url)?;
        let options = match backend {
            // One writer at a time is SQLite's rule; WAL lets readers carry on meanwhile.
            Backend::Sqlite => AnyPoolOptions::new().max_connections(8).after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;")
                        .await?;
                    Ok(())
                })
            }),
            // Search rows are skewed (`kind=api` matches a third of the catalog, `spec.type=…` a
            // few rows): a generic plan cached for `key = $1 AND value = $2` can be slower than
            // a fresh one by orders of magnitude, so plan every execution for its values.
            Backend::Postgres => AnyPoolOptions::new().max_connections(16).after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET plan_cache_mode = force_custom_plan").await?;
                    Ok(())
                })
            }),
        };
        let pool = options
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(StoreError::Connect)?;
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            pool,
            backend,
            writer: Arc::new(Mutex::new(())),
            commits: Arc::default(),
        })
    }

    /// Opens (creating if needed) an SQLite database file.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        Self::open(&sqlite_url(path)).await
    }

    /// The pool, for queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a transaction that writes. Every write goes through here, so that SQLite writers
    /// queue instead of failing with "database is locked".
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let slot = match self.backend {
            Backend::Sqlite => Some(self.writer.clone().lock_owned().await),
            Backend::Postgres => None,
        };
        Ok(WriteTx {
            tx: self.pool.begin().await?,
            _slot: slot,
            commits: Arc::clone(&self.commits),
        })
    }

    /// How many write transactions this process has committed through [`Store::begin_write`];
    /// moves on (after the commit) with every one. On SQLite, where one process owns the
    /// database, an unchanged count means nothing was written since it was last read, which
    /// spares a query to find out.
    pub fn local_commits(&self) -> u64 {
        self.commits.load(Ordering::Acquire)
    }

    /// Refreshes the query planner's statistics after bulk changes. SQLite gathers none on its
    /// own, and PostgreSQL's autovacuum lags behind a bulk load; without them both can pick a
    /// plan that is slower by orders of magnitude.
    pub async fn optimize(&self) -> Result<(), sqlx::Error> {
        let sql = match self.backend {
            Backend::Sqlite => "PRAGMA optimize=0x10002",
            Backend::Postgres => "ANALYZE catalog_entities, catalog_search, catalog_relations",
        };
        sqlx::query(sql).execute(&self.pool).await?;
        Ok(())
    }

    /// The database behind the pool.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Waits for in-flight queries and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The `sqlite://` URL of a database file, created when missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

impl FromStr for Backend {
    type Err = StoreError;

    fn from_str(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(url.to_string()))
        }
    }
}
