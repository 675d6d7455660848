//! The catalog service on SQLite and PostgreSQL: locations load every valid and invalid entity
//! without one blocking another, vanished entities go, unreadable locations keep their last good
//! state, sources cannot steal each other's references, managed entities are validated on write,
//! overlays are reversible and guarded, and the MCP registry view follows the final entity.

use portico_catalog::service::{
    Actor, Catalog, CatalogError, CatalogOptions, LocationOrigin, Overlay,
};
use portico_store::testing::stores;
use serde_json::{Value, json};

const GROUP: &str = "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: platform-team}\nspec: {type: team, children: []}\n";

fn mcp_server(name: &str, lifecycle: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: {name}\n  annotations:\n    mcp.spotify.com/schema-version: '2025-09-29'\nspec:\n  type: mcp-server\n  lifecycle: {lifecycle}\n  owner: platform-team\n  definition: |\n    name: com.example/{name}\n    description: Tools\n    version: 1.0.0\n    remotes:\n      - type: streamable-http\n        url: https://{name}.example.com/mcp\n"
    )
}

fn actor(user: &str) -> Actor {
    Actor {
        user_ref: format!("user:default/{user}"),
        ownership_refs: vec![format!("user:default/{user}")],
    }
}

async fn catalogs() -> Vec<(Catalog, portico_store::testing::TestDatabase)> {
    stores()
        .await
        .into_iter()
        .map(|(store, db)| (Catalog::new(store, CatalogOptions::default()), db))
        .collect()
}

fn write(dir: &std::path::Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).unwrap();
}

fn errors_of(entity: &Value) -> Vec<String> {
    entity["status"]["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["error"]["message"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_location_loads_valid_and_invalid_entities_and_records_broken_documents() {
    for (catalog, db) in catalogs().await {
        let dir = tempfile::tempdir().unwrap();
        let broken = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: a\n";
        let invalid = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: svc, tags: [Bad Tag]}\nspec: {type: service, lifecycle: production, owner: platform-team}\n";
        write(
            dir.path(),
            "all.yaml",
            &format!(
                "{GROUP}---\n{broken}---\n{invalid}---\n{}",
                mcp_server("tools", "production")
            ),
        );
        let (location, created) = catalog
            .add_location("file", dir.path().to_str().unwrap(), LocationOrigin::Api)
            .await
            .unwrap();
        assert!(created);
        let report = catalog.refresh_location(&location.id).await.unwrap();
        assert_eq!(
            report.written,
            3,
            "{:?}: {:?}",
            db.backend(),
            report.problems
        );
        assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
        assert_eq!(report.problems[0].line, Some(5));
        assert!(
            report.problems[1]
                .message
                .contains("\"tags.0\" is not valid")
        );

        let svc = catalog
            .entity_by_ref("component:default/svc")
            .await
            .unwrap()
            .expect("invalid entity is stored");
        assert_eq!(errors_of(&svc).len(), 1);
        let tools = catalog
            .entity_by_ref("API:Default/Tools")
            .await
            .unwrap()
            .expect("found case-insensitively");
        assert!(errors_of(&tools).is_empty());
        assert_eq!(tools["metadata"]["namespace"], "default");
        assert!(tools["metadata"]["uid"].is_string());
        let relations: Vec<&str> = tools["relations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["targetRef"].as_str().unwrap())
            .collect();
        assert_eq!(relations, ["group:default/platform-team"]);
        let group = catalog
            .entity_by_ref("group:default/platform-team")
            .await
            .unwrap()
            .unwrap();
        let owner_of: Vec<&str> = group["relations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["type"] == "ownerOf")
            .map(|r| r["targetRef"].as_str().unwrap())
            .collect();
        assert_eq!(owner_of, ["api:default/tools", "component:default/svc"]);

        let stored = catalog.location(&location.id).await.unwrap().unwrap();
        assert_eq!(stored.problems.len(), 2);

        // A second refresh of the same files writes nothing.
        let again = catalog.refresh_location(&location.id).await.unwrap();
        assert_eq!((again.written, again.unchanged), (0, 3));
    }
}

#[tokio::test]
async fn vanished_entities_go_and_an_unreadable_location_keeps_its_last_good_state() {
    for (catalog, db) in catalogs().await {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.yaml",
            &format!("{GROUP}---\n{}", mcp_server("one", "production")),
        );
        write(dir.path(), "b.yaml", &mcp_server("two", "production"));
        let (location, _) = catalog
            .add_location("file", dir.path().to_str().unwrap(), LocationOrigin::Api)
            .await
            .unwrap();
        catalog.refresh_location(&location.id).await.unwrap();
        assert_eq!(catalog.mcp_servers().await.unwrap().len(), 2);

        std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
        let report = catalog.refresh_location(&location.id).await.unwrap();
        assert_eq!(report.removed, 1, "{:?}", db.backend());
        assert!(
            catalog
                .entity_by_ref("api:default/two")
                .await
                .unwrap()
                .is_none()
        );

        // A file that turns into broken YAML keeps what it gave before.
        write(dir.path(), "a.yaml", "apiVersion: [\n");
        let report = catalog.refresh_location(&location.id).await.unwrap();
        assert_eq!(report.removed, 0);
        assert!(
            catalog
                .entity_by_ref("api:default/one")
                .await
                .unwrap()
                .is_some()
        );

        // A location that cannot be read at all keeps everything and says why.
        drop(dir);
        let report = catalog.refresh_location(&location.id).await.unwrap();
        assert_eq!(report.removed, 0);
        assert!(
            report.problems[0].message.contains("cannot read"),
            "{:?}",
            report.problems
        );
        assert!(
            catalog
                .entity_by_ref("api:default/one")
                .await
                .unwrap()
                .is_some()
        );

        catalog.remove_location(&location.id).await.unwrap();
        assert!(
            catalog
                .entity_by_ref("api:default/one")
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            catalog.remove_location(&location.id).await,
            Err(CatalogError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn the_first_source_keeps_a_reference_and_the_second_gets_a_conflict() {
    for (catalog, _db) in catalogs().await {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        write(first.path(), "x.yaml", &mcp_server("shared", "production"));
        write(
            second.path(),
            "x.yaml",
            &mcp_server("shared", "experimental"),
        );
        let (a, _) = catalog
            .add_location("file", first.path().to_str().unwrap(), LocationOrigin::Api)
            .await
            .unwrap();
        let (b, _) = catalog
            .add_location("file", second.path().to_str().unwrap(), LocationOrigin::Api)
            .await
            .unwrap();
        catalog.refresh_location(&a.id).await.unwrap();
        let report = catalog.refresh_location(&b.id).await.unwrap();
        assert!(
            report.problems[0]
                .message
                .contains("is already provided by location:"),
            "{:?}",
            report.problems
        );
        let entity = catalog
            .entity_by_ref("api:default/shared")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(entity["spec"]["lifecycle"], "production");

        let managed = serde_json::from_str::<Value>(
            &portico_catalog::yaml::parse_single(&mcp_server("shared", "production"))
                .unwrap()
                .unwrap()
                .to_string(),
        )
        .unwrap();
        assert!(matches!(
            catalog.create_managed(managed).await,
            Err(CatalogError::Conflict(_))
        ));
        assert!(matches!(
            catalog.delete_managed("api:default/shared").await,
            Err(CatalogError::Conflict(_))
        ));
    }
}

fn component(name: &str, owner: &str) -> Value {
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": name},
        "spec": {"type": "service", "lifecycle": "production", "owner": owner}})
}

#[tokio::test]
async fn managed_entities_are_validated_on_write() {
    for (catalog, _db) in catalogs().await {
        let stored = catalog
            .create_managed(component("svc", "user:jane"))
            .await
            .unwrap();
        assert_eq!(stored["metadata"]["name"], "svc");
        assert!(matches!(
            catalog.create_managed(component("svc", "user:jane")).await,
            Err(CatalogError::Conflict(_))
        ));
        match catalog
            .create_managed(component("bad name", "user:jane"))
            .await
        {
            Err(CatalogError::Invalid { errors, .. }) => {
                assert!(errors[0].message.contains("\"metadata.name\" is not valid"))
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        let mut changed = component("svc", "user:jane");
        changed["spec"]["lifecycle"] = json!("deprecated");
        let updated = catalog
            .update_managed("component:default/svc", changed)
            .await
            .unwrap();
        assert_eq!(updated["spec"]["lifecycle"], "deprecated");
        assert!(matches!(
            catalog
                .update_managed("component:default/nope", component("nope", "x"))
                .await,
            Err(CatalogError::NotFound(_))
        ));
        catalog
            .delete_managed("component:default/svc")
            .await
            .unwrap();
        assert!(
            catalog
                .entity_by_ref("component:default/svc")
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn overlays_decorate_reversibly_and_drive_availability() {
    for (catalog, _db) in catalogs().await {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "s.yaml",
            &mcp_server("beta-tools", "experimental"),
        );
        let (location, _) = catalog
            .add_location("file", dir.path().to_str().unwrap(), LocationOrigin::Api)
            .await
            .unwrap();
        catalog.refresh_location(&location.id).await.unwrap();
        let servers = catalog.mcp_servers().await.unwrap();
        assert!(!servers[0].server.available);

        // The owner group's member may write; a stranger may not.
        let member = Actor {
            user_ref: "user:default/jane".into(),
            ownership_refs: vec!["group:default/platform-team".into()],
        };
        let overlay = Overlay {
            lifecycle: Some("production".into()),
            tags: vec!["reviewed".into()],
            ..Overlay::default()
        };
        assert!(matches!(
            catalog
                .put_overlay("api:default/beta-tools", overlay.clone(), &actor("mallory"))
                .await,
            Err(CatalogError::NotAllowed(_))
        ));
        let entity = catalog
            .put_overlay("api:default/beta-tools", overlay.clone(), &member)
            .await
            .unwrap();
        assert_eq!(entity["spec"]["lifecycle"], "production");
        assert_eq!(entity["metadata"]["tags"], json!(["reviewed"]));
        assert!(catalog.mcp_servers().await.unwrap()[0].server.available);

        // The overlay survives a refresh of its source.
        write(
            dir.path(),
            "s.yaml",
            &mcp_server("beta-tools", "experimental")
                .replace("description: Tools", "description: Better tools"),
        );
        catalog.refresh_location(&location.id).await.unwrap();
        let entity = catalog
            .entity_by_ref("api:default/beta-tools")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(entity["spec"]["lifecycle"], "production");
        assert!(
            entity["spec"]["definition"]
                .as_str()
                .unwrap()
                .contains("Better tools")
        );

        // An overlay that would make the entity invalid is refused.
        let bad = Overlay {
            tags: vec!["Not A Tag".into()],
            ..Overlay::default()
        };
        assert!(matches!(
            catalog
                .put_overlay("api:default/beta-tools", bad, &member)
                .await,
            Err(CatalogError::Invalid { .. })
        ));

        let entity = catalog
            .delete_overlay("api:default/beta-tools", &member)
            .await
            .unwrap();
        assert_eq!(entity["spec"]["lifecycle"], "experimental");
        assert!(entity["metadata"].get("tags").is_none());
        assert!(!catalog.mcp_servers().await.unwrap()[0].server.available);
        assert!(
            catalog
                .overlay("api:default/beta-tools")
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn admins_may_write_any_overlay_and_unowned_entities_are_open() {
    for (store, _db) in stores().await {
        let catalog = Catalog::new(
            store,
            CatalogOptions {
                admins: vec!["group:default/admins".into()],
                ..CatalogOptions::default()
            },
        );
        catalog
            .create_managed(component("svc", "group:default/team-a"))
            .await
            .unwrap();
        let admin = Actor {
            user_ref: "user:default/root".into(),
            ownership_refs: vec!["group:default/admins".into()],
        };
        let overlay = Overlay {
            owner: Some("group:default/team-b".into()),
            ..Overlay::default()
        };
        let entity = catalog
            .put_overlay("component:default/svc", overlay, &admin)
            .await
            .unwrap();
        assert_eq!(entity["spec"]["owner"], "group:default/team-b");
        let loc = catalog.create_managed(json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Location", "metadata": {"name": "l"}, "spec": {"type": "url", "target": "https://example.com/x.yaml"}})).await.unwrap();
        assert_eq!(loc["kind"], "Location");
        let overlay = Overlay {
            labels: [("team".to_string(), "x".to_string())].into(),
            ..Overlay::default()
        };
        catalog
            .put_overlay("location:default/l", overlay, &actor("anyone"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn entities_whose_reference_would_be_ambiguous_are_not_stored() {
    for (catalog, _db) in catalogs().await {
        let dir = tempfile::tempdir().unwrap();
        let odd = "apiVersion: backstage.io/v1alpha1\nkind: 'a:b'\nmetadata: {name: c}\n---\napiVersion: backstage.io/v1alpha1\nkind: a\nmetadata: {name: c, namespace: 'b:x'}\n";
        write(dir.path(), "odd.yaml", odd);
        let (location, _) = catalog
            .add_location("file", dir.path().to_str().unwrap(), LocationOrigin::Api)
            .await
            .unwrap();
        let report = catalog.refresh_location(&location.id).await.unwrap();
        assert_eq!(report.written, 0);
        assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    }
}

/// Serves `body` with `status` to every request on a loopback port, for `url` locations.
async fn serve_once_per_request(status: u16, body: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: text/yaml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
            });
        }
    });
    format!("http://{address}/catalog/all.yaml")
}

#[tokio::test]
async fn url_locations_are_fetched_and_a_failing_fetch_keeps_the_last_good_entities() {
    for (catalog, _db) in catalogs().await {
        let good = serve_once_per_request(
            200,
            format!("{GROUP}---\n{}", mcp_server("remote-tools", "production")),
        )
        .await;
        let (location, _) = catalog
            .add_location("url", &good, LocationOrigin::Api)
            .await
            .unwrap();
        let report = catalog.refresh_location(&location.id).await.unwrap();
        assert_eq!(report.written, 2, "{:?}", report.problems);
        let entity = catalog
            .entity_by_ref("api:default/remote-tools")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            entity["metadata"]["annotations"]["backstage.io/managed-by-location"],
            format!("url:{good}")
        );

        let broken = serve_once_per_request(500, "oops".into()).await;
        let (failing, _) = catalog
            .add_location("url", &broken, LocationOrigin::Api)
            .await
            .unwrap();
        let report = catalog.refresh_location(&failing.id).await.unwrap();
        assert!(
            report.problems[0].message.contains("answered 500"),
            "{:?}",
            report.problems
        );
        assert!(matches!(
            catalog
                .add_location("url", "not a url", LocationOrigin::Api)
                .await,
            Err(CatalogError::Input(_))
        ));
        assert!(
            catalog
                .entity_by_ref("api:default/remote-tools")
                .await
                .unwrap()
                .is_some()
        );
    }
}
