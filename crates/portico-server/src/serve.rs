//! `portico serve`: opens the store (migrations before any traffic), registers the configured
//! locations, refreshes them in the background, and serves the API until asked to stop, then
//! finishes in-flight work before closing the database.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use portico_catalog::service::{Catalog, CatalogOptions};
use portico_catalog::{RemotePolicy, ValidateOptions};
use portico_store::Store;
use tokio::sync::watch;

use crate::app::{AppState, app};
use crate::auth::StaticTokens;
use crate::config::{Config, ExternalAccess};

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The loaded configuration.
    pub config: Config,
    /// Where the SQLite file and the generated API token live.
    pub data_dir: PathBuf,
    /// Locations to read when the configuration names none (the examples, for a first run).
    pub default_locations: Vec<(String, String)>,
}

/// Why `serve` could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory cannot be used.
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database cannot be opened or migrated.
    #[error(transparent)]
    Store(#[from] portico_store::StoreError),
    /// The catalog failed while starting.
    #[error("catalog start-up failed: {0}")]
    Catalog(#[from] portico_catalog::service::CatalogError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// host:port.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// What a started server tells its caller.
#[derive(Debug, Clone)]
pub struct Started {
    /// The address actually bound.
    pub address: std::net::SocketAddr,
    /// A generated API token, when the configuration has none.
    pub generated_token: Option<(String, PathBuf)>,
}

/// Runs the server until `shutdown` completes. `on_started` is called once it listens.
pub async fn serve(
    options: ServeOptions,
    metrics: Option<Arc<metrics_exporter_prometheus::PrometheusHandle>>,
    on_started: impl FnOnce(&Started),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let config = &options.config;
    std::fs::create_dir_all(&options.data_dir).map_err(|source| ServeError::DataDir {
        path: options.data_dir.clone(),
        source,
    })?;
    let store = match config.backend.database.url.as_str() {
        "" => Store::open_sqlite(&options.data_dir.join("portico.db")).await?,
        url => Store::open(url).await?,
    };
    let catalog = Catalog::new(
        store.clone(),
        CatalogOptions {
            validate: ValidateOptions {
                remote_policy: RemotePolicy {
                    registry_rules: config.mcp.registry_rules,
                },
            },
            admins: config.catalog.admins.clone(),
        },
    );
    let locations: Vec<(String, String)> = if config.catalog.locations.is_empty() {
        options.default_locations.clone()
    } else {
        config
            .catalog
            .locations
            .iter()
            .map(|l| (l.kind.clone(), l.target.clone()))
            .collect()
    };
    catalog.sync_config_locations(&locations).await?;

    let mut tokens: Vec<(String, String)> = config
        .backend
        .auth
        .external_access
        .iter()
        .map(|ExternalAccess::Static { options }| (options.token.clone(), options.subject.clone()))
        .collect();
    let generated_token = if tokens.is_empty() {
        let (token, path) = local_token(&options.data_dir)?;
        tokens.push((token.clone(), "local-admin".into()));
        Some((token, path))
    } else {
        None
    };
    let state = AppState {
        catalog: catalog.clone(),
        auth: Arc::new(StaticTokens::new(tokens)),
        metrics,
    };

    let address = format!(
        "{}:{}",
        config.backend.listen.host, config.backend.listen.port
    );
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|source| ServeError::Bind {
            address: address.clone(),
            source,
        })?;
    on_started(&Started {
        address: listener.local_addr()?,
        generated_token,
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let refresher = tokio::spawn(refresh_loop(
        catalog,
        Duration::from_secs(config.catalog.refresh_interval_seconds.max(1)),
        stop_rx,
    ));
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    let _ = stop_tx.send(true);
    let _ = refresher.await;
    store.close().await;
    Ok(())
}

/// Refreshes every location now and then every `interval`, until told to stop. A refresh in
/// progress finishes its current batch before the loop exits, so no write is cut in half.
async fn refresh_loop(catalog: Catalog, interval: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            result = catalog.refresh_all() => match result {
                Ok(reports) => {
                    if reports.iter().any(|(_, r)| r.written > 0 || r.removed > 0)
                        && let Err(e) = catalog.store().optimize().await
                    {
                        tracing::warn!(error = %e, "updating planner statistics failed");
                    }
                    for (location, report) in reports {
                        tracing::info!(location = %location.target, written = report.written, unchanged = report.unchanged,
                            removed = report.removed, problems = report.problems.len(), "location refreshed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "refresh failed"),
            },
            _ = stop.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The API token for a setup with no configured tokens: made once, kept in the data directory
/// (readable by its owner only) so it survives restarts.
fn local_token(data_dir: &Path) -> Result<(String, PathBuf), ServeError> {
    let path = data_dir.join("api-token");
    let wrap = |source| ServeError::DataDir {
        path: path.clone(),
        source,
    };
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let token = existing.trim().to_string();
        if token.len() >= 32 {
            return Ok((token, path));
        }
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    std::fs::write(&path, &token).map_err(wrap)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(wrap)?;
    }
    Ok((token, path))
}
