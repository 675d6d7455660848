//! Auth that needs no outside provider: guest sign-in (on only when configured, loopback only
//! unless explicitly allowed), plugin tokens addressed per plugin, and the flow's input errors.

use axum::http::{Method, StatusCode};
use portico_catalog::service::{Catalog, CatalogOptions};
use portico_server::serve::{AuthSetup, auth_service};
use portico_server::{AppState, app};
use serde_json::{Value, json};

use crate::support::call;

fn setup(
    catalog: &Catalog,
    providers: Value,
    loopback: bool,
) -> Result<portico_auth::Auth, String> {
    let config: portico_auth::AuthConfig =
        serde_json::from_value(json!({"environment": "development", "backstageTokenExpiration": {"hours": 1}, "providers": providers}))
            .unwrap();
    auth_service(AuthSetup {
        config,
        base_url: "http://127.0.0.1:7007".into(),
        static_tokens: Vec::new(),
        cipher: crate::live::test_cipher(),
        catalog: catalog.clone(),
        listens_on_loopback: loopback,
        refresh_ahead_seconds: 60,
    })
    .map_err(|e| e.to_string())
}

async fn guest_refresh(router: &axum::Router, xhr: bool) -> (StatusCode, Value, Vec<String>) {
    use tower::ServiceExt;
    let mut request = axum::http::Request::get("/api/auth/guest/refresh");
    if xhr {
        request = request.header("x-requested-with", "XMLHttpRequest");
    }
    let response = router
        .clone()
        .oneshot(request.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let cookies = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        cookies,
    )
}

#[tokio::test]
async fn guest_sign_in_only_where_configured() {
    for (store, _db) in portico_store::testing::stores().await {
        let catalog = Catalog::new(store, CatalogOptions::default());
        let router = |auth| app(AppState::new(catalog.clone(), auth).unwrap());
        // On: a token for user:development/guest that opens the API, and a session cookie.
        let on = router(setup(&catalog, json!({"guest": {}}), true).unwrap());
        let (status, _, _) = guest_refresh(&on, false).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, body, cookies) = guest_refresh(&on, true).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let identity = &body["backstageIdentity"]["identity"];
        assert_eq!(identity["userEntityRef"], "user:development/guest");
        assert!(
            cookies
                .iter()
                .any(|c| c.starts_with("portico-session=") && c.contains("HttpOnly"))
        );
        let token = body["backstageIdentity"]["token"].as_str().unwrap();
        let (status, _) = call(&on, Method::GET, "/api/catalog/entities", None, Some(token)).await;
        assert_eq!(status, StatusCode::OK);
        // Off unless configured.
        let off = router(setup(&catalog, json!({}), true).unwrap());
        let (status, body, _) = guest_refresh(&off, true).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("auth.providers.guest")
        );
        // A guest beyond loopback needs an explicit, loud opt-in.
        let err = setup(&catalog, json!({"guest": {}}), false).unwrap_err();
        assert!(err.contains("dangerouslyAllowOutsideDevelopment"), "{err}");
        let allowed = setup(
            &catalog,
            json!({"guest": {"dangerouslyAllowOutsideDevelopment": true, "userEntityRef": "user:default/visitor"}}),
            false,
        )
        .unwrap();
        let (_, body, _) = guest_refresh(&router(allowed), true).await;
        assert_eq!(
            body["backstageIdentity"]["identity"]["userEntityRef"],
            "user:default/visitor"
        );
    }
}

#[tokio::test]
async fn plugin_tokens_open_only_the_plugin_they_address() {
    for (store, _db) in portico_store::testing::stores().await {
        let catalog = Catalog::new(store, CatalogOptions::default());
        let auth = setup(&catalog, json!({}), true).unwrap();
        let router = app(AppState::new(catalog.clone(), auth.clone()).unwrap());
        let for_catalog = auth.plugin_tokens().issue("catalog", None).await.unwrap();
        let for_actions = auth
            .plugin_tokens()
            .issue("mcp-actions", None)
            .await
            .unwrap();
        let (status, _) = call(
            &router,
            Method::GET,
            "/api/catalog/entities",
            None,
            Some(&for_catalog),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = call(
            &router,
            Method::GET,
            "/api/catalog/entities",
            None,
            Some(&for_actions),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["name"], "AuthenticationError");
        // Every plugin publishes the keys.
        let (status, jwks) = call(
            &router,
            Method::GET,
            "/api/mcp-actions/.backstage/auth/v1/jwks.json",
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(jwks["keys"][0]["kty"], "EC");
        // The flow's mistakes are clear.
        let (status, body) = call(&router, Method::GET, "/api/auth/nope/start", None, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no OAuth provider \"nope\"")
        );
        let (status, _) = call(&router, Method::POST, "/api/auth/nope/logout", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}
