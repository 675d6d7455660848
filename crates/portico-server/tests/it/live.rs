//! A Portico server on a real loopback socket, wired as `portico serve` wires it, for tests
//! whose peers must reach it over HTTP (an OAuth provider redirecting back, MCP clients).

use std::sync::OnceLock;

use portico_auth::Auth;
use portico_catalog::service::{Catalog, CatalogOptions};
use portico_server::config::{Config, ConfigSources, ExternalAccess};
use portico_server::{AppState, app};
use portico_store::Store;

/// A Portico server on a real loopback socket.
pub struct Server {
    /// `http://127.0.0.1:PORT`, where this instance listens.
    pub base: String,
    /// Its auth service.
    pub auth: Auth,
    /// Its catalog.
    pub catalog: Catalog,
    _dir: tempfile::TempDir,
}

/// The sealing key every test server (and child process) shares.
pub fn test_cipher_secret() -> String {
    static SECRET: OnceLock<String> = OnceLock::new();
    SECRET
        .get_or_init(|| {
            std::env::var("PORTICO_TEST_TOKEN_KEY")
                .unwrap_or_else(|_| portico_auth::Cipher::generate_secret().unwrap())
        })
        .clone()
}

/// The cipher over [`test_cipher_secret`].
pub fn test_cipher() -> portico_auth::Cipher {
    portico_auth::Cipher::from_config(&[portico_auth::config::EncryptionKeyConfig {
        id: "test".into(),
        secret: test_cipher_secret(),
    }])
    .unwrap()
    .unwrap()
}

/// Starts Portico over `store` with `config_yaml` (an app-config; `${PORTICO_TEST_OIDC_…}` from
/// the environment) and `entities` (catalog YAML, none when empty) loaded, plus the built-in
/// actions server entity, as `portico serve` does.
pub async fn serve(store: Store, config_yaml: &str, entities: &str) -> Server {
    serve_behind(store, config_yaml, entities, None).await
}

/// [`serve`] as a replica behind a load balancer at `base_url` (Portico's `backend.baseUrl`,
/// which every replica shares), when given.
pub async fn serve_behind(
    store: Store,
    config_yaml: &str,
    entities: &str,
    base_url: Option<&str>,
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("app-config.yaml");
    // `${PORTICO_TEST_…}` from this process; other PORTICO_ variables would read as overrides.
    let mut yaml = config_yaml.to_string();
    for (name, value) in std::env::vars().filter(|(k, _)| k.starts_with("PORTICO_TEST_OIDC_")) {
        yaml = yaml.replace(&format!("${{{name}}}"), &value);
    }
    std::fs::write(&config_path, yaml).unwrap();
    let config = Config::load(&ConfigSources {
        files: vec![config_path],
        env: Vec::new(),
    })
    .unwrap();
    let catalog_dir = dir.path().join("catalog");
    std::fs::create_dir(&catalog_dir).unwrap();
    std::fs::write(catalog_dir.join("entities.yaml"), entities).unwrap();
    let options = CatalogOptions {
        admins: config.catalog.admins.clone(),
        ..CatalogOptions::default()
    };
    let catalog = Catalog::new(store, options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own = format!("http://{}", listener.local_addr().unwrap());
    let base = base_url.map_or(own.clone(), str::to_string);
    catalog
        .provide_builtin(portico_server::actions::builtin_entity(&base))
        .await
        .unwrap();
    if !entities.is_empty() {
        catalog
            .sync_config_locations(&[("file".into(), catalog_dir.display().to_string())])
            .await
            .unwrap();
        for (_, report) in catalog.refresh_all().await.unwrap() {
            assert!(report.problems.is_empty(), "{:?}", report.problems);
        }
    }
    let auth = portico_server::serve::auth_service(portico_server::serve::AuthSetup {
        config: config.auth,
        base_url: base.clone(),
        static_tokens: config
            .backend
            .auth
            .external_access
            .iter()
            .map(|ExternalAccess::Static { options }| {
                (options.token.clone(), options.subject.clone())
            })
            .collect(),
        cipher: test_cipher(),
        catalog: catalog.clone(),
        listens_on_loopback: true,
        refresh_ahead_seconds: 60,
    })
    .unwrap();
    let mut state =
        AppState::with_assistant(catalog.clone(), auth.clone(), config.assistant.clone()).unwrap();
    state.action_servers = std::sync::Arc::new(config.mcp_actions.servers);
    let router = app(state);
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Server {
        base: own,
        auth,
        catalog,
        _dir: dir,
    }
}
