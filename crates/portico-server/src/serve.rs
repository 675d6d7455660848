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

use portico_auth::{Auth, AuthError, AuthOptions, Cipher};
use portico_store::Backend;

use crate::app::{AppState, app};
use crate::config::{Config, ExternalAccess};
use crate::directory::CatalogDirectory;

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The loaded configuration.
    pub config: Config,
    /// Where the SQLite file and the generated API token live.
    pub data_dir: PathBuf,
    /// Locations to read when the configuration names none (the examples, for a first run).
    pub default_locations: Vec<(String, String)>,
    /// Turn on guest sign-in when the configuration has no providers (no config file given).
    pub guest_by_default: bool,
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
    /// The application could not be set up.
    #[error(transparent)]
    State(#[from] crate::app::StateError),
    /// Auth is misconfigured or its keys cannot be used.
    #[error("auth: {0}")]
    Auth(#[from] AuthError),
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
    /// Whether guest sign-in is on.
    pub guest: bool,
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
            query_index: config.catalog.query_index,
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
    if let Err(e) = catalog
        .provide_builtin(crate::actions::builtin_entity(&config.backend.base_url))
        .await
    {
        tracing::warn!(error = %e, "the built-in Portal Actions server could not be put in the catalog");
    }
    catalog.sync_config_locations(&locations).await?;
    let warming = catalog.clone();
    tokio::spawn(async move {
        if let Err(error) = warming.warm_query_index().await {
            tracing::warn!(%error, "the in-memory catalog index could not be loaded; queries go to the database");
        }
    });

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
    let mut auth_config = config.auth.clone();
    if options.guest_by_default && auth_config.providers.is_empty() {
        auth_config
            .providers
            .insert("guest".into(), serde_json::json!({}));
    }
    let cipher = token_cipher(config, &options.data_dir, store.backend())?;
    let auth = auth_service(AuthSetup {
        config: auth_config,
        base_url: config.backend.base_url.clone(),
        static_tokens: tokens,
        cipher,
        catalog: catalog.clone(),
        listens_on_loopback: is_loopback(&config.backend.listen.host),
        refresh_ahead_seconds: 60,
    })?;
    let assistant =
        crate::assistant::with_installed_model(config.assistant.clone(), &options.data_dir);
    let mut state = AppState::with_assistant(catalog.clone(), auth, assistant)?;
    state.metrics = metrics;
    state.action_servers = std::sync::Arc::new(config.mcp_actions.servers.clone());

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
        guest: state.auth.providers().guest().is_some(),
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let refresher = tokio::spawn(refresh_loop(
        catalog,
        Duration::from_secs(config.catalog.refresh_interval_seconds.max(1)),
        stop_rx,
    ));
    // Small answers (SSE events, JSON-RPC replies) go out at once instead of waiting on Nagle.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
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
    write_private(&path, &token)?;
    Ok((token, path))
}

/// What the auth service is built from.
pub struct AuthSetup {
    /// `auth.*`.
    pub config: portico_auth::AuthConfig,
    /// `backend.baseUrl`.
    pub base_url: String,
    /// Static tokens: (token, subject).
    pub static_tokens: Vec<(String, String)>,
    /// Seals tokens at rest.
    pub cipher: Cipher,
    /// Users for sign-in, servers for scopes.
    pub catalog: Catalog,
    /// Whether Portico listens on loopback only.
    pub listens_on_loopback: bool,
    /// Refresh provider tokens this many seconds before they expire.
    pub refresh_ahead_seconds: i64,
}

/// Builds the auth service over the catalog.
pub fn auth_service(setup: AuthSetup) -> Result<Auth, AuthError> {
    let directory = Arc::new(CatalogDirectory::new(setup.catalog.clone()));
    Auth::new(AuthOptions {
        config: setup.config,
        base_url: setup.base_url,
        static_tokens: setup.static_tokens,
        cipher: setup.cipher,
        store: setup.catalog.store().clone(),
        directory: directory.clone(),
        scopes: directory,
        refresh_ahead_seconds: setup.refresh_ahead_seconds,
        listens_on_loopback: setup.listens_on_loopback,
    })
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The keys that seal tokens at rest: from `auth.tokenEncryption.keys`, or, for a single SQLite
/// process, a key generated once into the data directory. Replicas sharing PostgreSQL must share
/// configured keys, so a generated one is refused there.
fn token_cipher(config: &Config, data_dir: &Path, backend: Backend) -> Result<Cipher, ServeError> {
    if let Some(cipher) = Cipher::from_config(&config.auth.token_encryption.keys)? {
        return Ok(cipher);
    }
    if backend == Backend::Postgres {
        return Err(ServeError::Auth(AuthError::Config(
            "with PostgreSQL, every replica must seal tokens with the same keys: set auth.tokenEncryption.keys (e.g. [{id: k1, secret: ${PORTICO_TOKEN_KEY}}] with a value from `openssl rand -base64 32`)".into(),
        )));
    }
    let path = data_dir.join("token-encryption.key");
    let secret = match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
        _ => {
            let secret = Cipher::generate_secret()?;
            write_private(&path, &secret)?;
            secret
        }
    };
    let key = portico_auth::config::EncryptionKeyConfig {
        id: "local".into(),
        secret,
    };
    Cipher::from_config(&[key])?.ok_or_else(|| {
        ServeError::Auth(AuthError::Config(
            "the generated token key is unusable".into(),
        ))
    })
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> Result<(), ServeError> {
    let wrap = |source| ServeError::DataDir {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(path, contents).map_err(wrap)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(wrap)?;
    }
    Ok(())
}
