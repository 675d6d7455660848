//! The catalog API answers with Backstage's shapes and error bodies, requires credentials, and
//! exposes managed entities, overlays, locations and the MCP registry view.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{api, apps, call};

fn api_entity(name: &str, lifecycle: &str) -> serde_json::Value {
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": "API",
        "metadata": {"name": name, "annotations": {"mcp.spotify.com/schema-version": "2025-09-29"}},
        "spec": {"type": "mcp-server", "lifecycle": lifecycle, "owner": "group:default/team-a",
            "definition": format!("{{name: com.example/{name}, description: Tools, version: 1.0.0, remotes: [{{type: streamable-http, url: 'https://{name}.example.com/mcp'}}]}}")}})
}

#[tokio::test]
async fn every_api_call_needs_credentials_but_operations_endpoints_do_not() {
    for (app, _db) in apps(&[]).await {
        let (status, body) = call(&app, Method::GET, "/api/catalog/locations", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["name"], "AuthenticationError");
        assert_eq!(
            body["request"],
            json!({"method": "GET", "url": "/api/catalog/locations"})
        );
        assert_eq!(body["response"]["statusCode"], 401);
        let (status, _) = call(
            &app,
            Method::GET,
            "/api/catalog/locations",
            None,
            Some("wrong-token-value"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        for path in ["/healthz", "/readyz", "/metrics"] {
            assert_eq!(
                call(&app, Method::GET, path, None, None).await.0,
                StatusCode::OK,
                "{path}"
            );
        }
    }
}

#[tokio::test]
async fn missing_entities_get_backstage_not_found_bodies() {
    for (app, _db) in apps(&[]).await {
        let (status, body) = api(
            &app,
            Method::GET,
            "/api/catalog/entities/by-name/api/default/nope",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["name"], "NotFoundError");
        assert_eq!(
            body["error"]["message"],
            "No entity named 'nope' found, with kind 'api' in namespace 'default'"
        );
        assert_eq!(
            api(&app, Method::GET, "/api/catalog/entities/by-uid/nope", None)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn validate_entity_answers_200_or_400_with_errors() {
    for (app, _db) in apps(&[]).await {
        let body = json!({"location": "url:https://example.com/x.yaml", "entity": api_entity("tools", "production")});
        let (status, _) = api(
            &app,
            Method::POST,
            "/api/catalog/validate-entity",
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let mut bad = api_entity("tools", "production");
        bad["metadata"]["name"] = json!("-bad");
        let (status, body) = api(
            &app,
            Method::POST,
            "/api/catalog/validate-entity",
            Some(json!({"location": "x", "entity": bad})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["errors"][0]["name"], "InputError");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("\"metadata.name\" is not valid")
        );
        let (status, body) = api(
            &app,
            Method::POST,
            "/api/catalog/validate-entity",
            Some(json!({"nope": 1})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["name"], "InputError");
    }
}

#[tokio::test]
async fn managed_entities_overlays_and_the_registry_view() {
    for (app, _db) in apps(&["external:ci"]).await {
        let (status, created) = api(
            &app,
            Method::POST,
            "/api/catalog/managed",
            Some(api_entity("tools", "experimental")),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let uid = created["metadata"]["uid"].as_str().unwrap().to_string();
        let (status, _) = api(
            &app,
            Method::POST,
            "/api/catalog/managed",
            Some(api_entity("tools", "experimental")),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let mut invalid = api_entity("other", "production");
        invalid["spec"]["definition"] = json!("{name: x}");
        let (status, body) = api(&app, Method::POST, "/api/catalog/managed", Some(invalid)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["errors"].as_array().unwrap().len() >= 2, "{body}");

        let (_, servers) = api(&app, Method::GET, "/api/catalog/mcp-servers", None).await;
        assert_eq!(servers["items"][0]["available"], false);
        assert!(
            servers["items"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("experimental")
        );

        let (status, entity) = api(
            &app,
            Method::PUT,
            "/api/catalog/overlays/api/default/tools",
            Some(json!({"lifecycle": "production"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{entity}");
        assert_eq!(entity["spec"]["lifecycle"], "production");
        let (_, servers) = api(&app, Method::GET, "/api/catalog/mcp-servers", None).await;
        assert_eq!(servers["items"][0]["available"], true);
        assert_eq!(servers["items"][0]["transport"]["type"], "streamable-http");
        let (status, overlay) = api(
            &app,
            Method::GET,
            "/api/catalog/overlays/api/default/tools",
            None,
        )
        .await;
        assert_eq!(
            (status, overlay),
            (StatusCode::OK, json!({"lifecycle": "production"}))
        );
        let (status, _) = api(
            &app,
            Method::PUT,
            "/api/catalog/overlays/api/default/tools",
            Some(json!({"colour": "red"})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        let (status, entity) = api(
            &app,
            Method::DELETE,
            "/api/catalog/overlays/api/default/tools",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(entity["spec"]["lifecycle"], "experimental");

        let (status, by_uid) = api(
            &app,
            Method::GET,
            &format!("/api/catalog/entities/by-uid/{uid}"),
            None,
        )
        .await;
        assert_eq!(
            (status, by_uid["metadata"]["name"].as_str()),
            (StatusCode::OK, Some("tools"))
        );
        let (_, refs) = api(
            &app,
            Method::POST,
            "/api/catalog/entities/by-refs",
            Some(json!({"entityRefs": ["api:default/nope", "API:default/Tools"]})),
        )
        .await;
        assert_eq!(refs["items"][0], serde_json::Value::Null);
        assert_eq!(refs["items"][1]["metadata"]["name"], "tools");

        assert_eq!(
            api(
                &app,
                Method::DELETE,
                "/api/catalog/managed/api/default/tools",
                None
            )
            .await
            .0,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            api(
                &app,
                Method::GET,
                "/api/catalog/entities/by-name/api/default/tools",
                None
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn overlays_of_owned_entities_need_the_owner_or_an_admin() {
    for (app, _db) in apps(&[]).await {
        api(
            &app,
            Method::POST,
            "/api/catalog/managed",
            Some(api_entity("tools", "experimental")),
        )
        .await;
        let (status, body) = api(
            &app,
            Method::PUT,
            "/api/catalog/overlays/api/default/tools",
            Some(json!({"lifecycle": "production"})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"]["name"], "NotAllowedError");
    }
}

#[tokio::test]
async fn locations_are_registered_listed_and_removed() {
    for (app, _db) in apps(&[]).await {
        let dir = tempfile::tempdir().unwrap();
        let yaml = serde_json::to_string(&api_entity("tools", "production")).unwrap();
        std::fs::write(dir.path().join("tools.yaml"), yaml).unwrap();
        let target = dir.path().to_str().unwrap();
        let (status, body) = api(
            &app,
            Method::POST,
            "/api/catalog/locations",
            Some(json!({"type": "file", "target": target})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["entities"][0]["metadata"]["name"], "tools");
        let id = body["location"]["id"].as_str().unwrap().to_string();
        let (status, _) = api(
            &app,
            Method::POST,
            "/api/catalog/locations",
            Some(json!({"type": "file", "target": target})),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, _) = api(
            &app,
            Method::POST,
            "/api/catalog/locations",
            Some(json!({"type": "ftp", "target": "x"})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        let (_, list) = api(&app, Method::GET, "/api/catalog/locations", None).await;
        assert_eq!(
            list,
            json!([{"data": {"id": id, "type": "file", "target": target}}])
        );
        let (_, one) = api(
            &app,
            Method::GET,
            &format!("/api/catalog/locations/{id}"),
            None,
        )
        .await;
        assert_eq!(one["target"], target);
        let (status, _) = api(
            &app,
            Method::POST,
            "/api/catalog/refresh",
            Some(json!({"entityRef": "api:default/tools"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            api(
                &app,
                Method::DELETE,
                &format!("/api/catalog/locations/{id}"),
                None
            )
            .await
            .0,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            api(
                &app,
                Method::GET,
                &format!("/api/catalog/locations/{id}"),
                None
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            api(
                &app,
                Method::GET,
                "/api/catalog/entities/by-name/api/default/tools",
                None
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
    }
}
