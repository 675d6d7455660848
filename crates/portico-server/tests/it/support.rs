//! A test application over a fresh store, with one static token.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use portico_catalog::service::{Catalog, CatalogOptions};
use portico_server::{AppState, app};
use serde_json::Value;
use tower::ServiceExt;

/// The token every test request sends.
pub const TOKEN: &str = "test-token-0123456789";

/// An app per backend, with `admins` allowed to write any overlay.
pub async fn apps(admins: &[&str]) -> Vec<(Router, portico_store::testing::TestDatabase)> {
    portico_store::testing::stores()
        .await
        .into_iter()
        .map(|(store, db)| {
            let options = CatalogOptions {
                admins: admins.iter().map(|a| a.to_string()).collect(),
                ..CatalogOptions::default()
            };
            let catalog = Catalog::new(store, options);
            let state = AppState::new(catalog.clone(), test_auth(&catalog)).unwrap();
            (app(state), db)
        })
        .collect()
}

/// The auth service of a test app: the static test token, a fresh sealing key, no providers.
pub fn test_auth(catalog: &Catalog) -> portico_auth::Auth {
    let key = portico_auth::config::EncryptionKeyConfig {
        id: "test".into(),
        secret: portico_auth::Cipher::generate_secret().unwrap(),
    };
    portico_server::serve::auth_service(portico_server::serve::AuthSetup {
        config: portico_auth::AuthConfig::default(),
        base_url: "http://127.0.0.1:7007".into(),
        static_tokens: vec![(TOKEN.into(), "ci".into())],
        cipher: portico_auth::Cipher::from_config(&[key]).unwrap().unwrap(),
        catalog: catalog.clone(),
        listens_on_loopback: true,
        refresh_ahead_seconds: 60,
    })
    .unwrap()
}

/// Sends a request (with the token unless `token` is `None`) and returns status and JSON body.
pub async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(json) => {
            request = request.header("content-type", "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, json)
}

/// `call` with the test token.
pub async fn api(
    app: &Router,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    call(app, method, uri, body, Some(TOKEN)).await
}
