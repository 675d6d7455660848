//! The web UI is served from the binary at `/` with a strict Content-Security-Policy; pages of
//! the UI fall back to `index.html`; every API and operations route still wins, and unknown API
//! paths stay API 404s. The sign-in page's provider listing is open and shows no secret.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use portico_catalog::service::{Catalog, CatalogOptions};
use portico_server::serve::{AuthSetup, auth_service};
use portico_server::{AppState, app};
use serde_json::json;

use crate::support::{apps, call};

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app
        .clone()
        .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&bytes).into())
}

#[tokio::test]
async fn the_ui_is_served_with_its_content_types_and_policy() {
    let (app, _db) = apps(&[]).await.remove(0);
    for (uri, content_type, needle) in [
        (
            "/",
            "text/html; charset=utf-8",
            "<script type=\"module\" src=\"/js/main.js\">",
        ),
        ("/app.css", "text/css; charset=utf-8", ":root"),
        (
            "/js/api.js",
            "text/javascript; charset=utf-8",
            "export async function api",
        ),
        ("/favicon.svg", "image/svg+xml", "<svg"),
        // The UI's own pages load directly.
        (
            "/catalog",
            "text/html; charset=utf-8",
            "<title>Portico</title>",
        ),
    ] {
        let (status, headers, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(headers["content-type"], content_type, "{uri}");
        assert!(body.contains(needle), "{uri}: {body:.200}");
        assert_eq!(headers["cache-control"], "no-cache");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
        assert!(!csp.contains("http") && !csp.contains("unsafe") && !csp.contains('*'));
    }
    let (status, _, _) = get(&app, "/js/missing.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn api_and_operations_routes_win_over_the_ui() {
    let (app, _db) = apps(&[]).await.remove(0);
    let (status, headers, body) = get(&app, "/healthz").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    assert!(headers.get("content-security-policy").is_none());
    // Unknown API paths, at any depth, are API errors, not the UI's page.
    for uri in [
        "/api/nope",
        "/api/catalog/nope",
        "/api/someplugin/deep/path",
    ] {
        let (status, body) = call(&app, Method::GET, uri, None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(body["error"]["name"], "NotFoundError", "{uri}: {body}");
    }
    // API routes still need a token.
    let (status, _) = call(&app, Method::GET, "/api/catalog/entities", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Writes to UI paths are refused.
    let (status, _) = call(&app, Method::POST, "/catalog", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn the_provider_listing_is_open_and_names_ids_only() {
    let (plain, _db) = apps(&[]).await.remove(0);
    let (status, body) = call(&plain, Method::GET, "/api/auth/providers", None, None).await;
    assert_eq!(status, StatusCode::OK);
    // The test app configures no provider.
    assert_eq!(body, serde_json::json!({"items": []}));

    let (store, _db) = portico_store::testing::stores().await.remove(0);
    let catalog = Catalog::new(store, CatalogOptions::default());
    let providers = json!({
        "guest": {},
        "corp": {"type": "oidc", "metadataUrl": "http://127.0.0.1:9/.well-known/openid-configuration",
                 "clientId": "portico", "clientSecret": "s3cret-value",
                 "signIn": {"resolvers": [{"resolver": "emailMatchingUserEntityProfileEmail"}]}},
        "github": {"clientId": "gh", "clientSecret": "s3cret-value"},
    });
    let config: portico_auth::AuthConfig =
        serde_json::from_value(json!({"environment": "development", "backstageTokenExpiration": {"hours": 1}, "providers": providers}))
            .unwrap();
    let auth = auth_service(AuthSetup {
        config,
        base_url: "http://127.0.0.1:7007".into(),
        static_tokens: Vec::new(),
        cipher: crate::live::test_cipher(),
        catalog: catalog.clone(),
        listens_on_loopback: true,
        refresh_ahead_seconds: 60,
    })
    .unwrap();
    let router = app(AppState::new(catalog, auth).unwrap());
    let (status, body) = call(&router, Method::GET, "/api/auth/providers", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"items": [
            {"id": "corp", "kind": "oauth", "signIn": true},
            {"id": "github", "kind": "oauth", "signIn": false},
            {"id": "guest", "kind": "guest", "signIn": true},
        ]})
    );
    assert!(!body.to_string().contains("s3cret"));
}
