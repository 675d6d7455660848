//! The catalog's query engine on SQLite and PostgreSQL: Backstage filter semantics (AND within a
//! parameter, OR across parameters and across values of one key, existence, case-insensitivity,
//! arrays, relations, annotation keys), field projection, the legacy list with offset/limit and
//! `after`, `by-query` keyset pages in both directions with a stable total, ordering with
//! missing values last, full-text search, facets, and the errors bad input gets.

use portico_catalog::service::filter::{EntityFilter, Fields};
use portico_catalog::service::memory::QueryIndex;
use portico_catalog::service::query::{
    EntitiesRequest, OrderField, QueryPage, QueryRequest, SortOrder,
};
use portico_catalog::service::{Catalog, CatalogError, CatalogOptions};
use portico_store::sqlx;
use portico_store::testing::{TestDatabase, stores};
use serde_json::{Value, json};

/// A fresh catalog on each database, once answering queries from the database and once from
/// the in-memory index (pinned, so that every query takes it).
async fn catalogs() -> Vec<(Catalog, TestDatabase)> {
    let mut out = Vec::new();
    for query_index in [QueryIndex::Database, QueryIndex::MemoryOnly] {
        for (store, db) in stores().await {
            let options = CatalogOptions {
                query_index,
                ..CatalogOptions::default()
            };
            out.push((Catalog::new(store, options), db));
        }
    }
    out
}

fn group(name: &str) -> Value {
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": name},
        "spec": {"type": "team", "children": []}})
}

fn user(name: &str, groups: &[&str]) -> Value {
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": {"name": name},
        "spec": {"memberOf": groups}})
}

fn mcp_api(name: &str, owner: &str, metadata: Value) -> Value {
    let definition = format!(
        "name: com.example/{n}\ndescription: Tools\nversion: 1.0.0\nremotes:\n  - type: streamable-http\n    url: https://{n}.example.com/mcp\n",
        n = name.to_lowercase()
    );
    let mut entity = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "API",
        "metadata": {"name": name, "annotations": {"mcp.spotify.com/schema-version": "2025-09-29"}},
        "spec": {"type": "mcp-server", "lifecycle": "production", "owner": owner, "definition": definition}});
    merge(&mut entity["metadata"], metadata);
    entity
}

fn openapi(name: &str, owner: &str, metadata: Value) -> Value {
    let mut entity = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "API", "metadata": {"name": name},
        "spec": {"type": "openapi", "lifecycle": "experimental", "owner": owner, "definition": "openapi: 3.0.0"}});
    merge(&mut entity["metadata"], metadata);
    entity
}

fn component(name: &str, owner: &str, metadata: Value) -> Value {
    let mut entity = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": name},
        "spec": {"type": "service", "lifecycle": "production", "owner": owner}});
    merge(&mut entity["metadata"], metadata);
    entity
}

fn merge(target: &mut Value, extra: Value) {
    if let (Some(target), Value::Object(extra)) = (target.as_object_mut(), extra) {
        for (k, v) in extra {
            match (target.get_mut(&k), v) {
                (Some(Value::Object(t)), Value::Object(v)) => t.extend(v),
                (_, v) => {
                    target.insert(k, v);
                }
            }
        }
    }
}

async fn add(catalog: &Catalog, entities: Vec<Value>) {
    for entity in entities {
        let name = entity["metadata"]["name"].clone();
        if let Err(e) = catalog.create_managed(entity).await {
            panic!("creating {name}: {e}");
        }
    }
}

/// A small catalog: two teams, a user, MCP servers, an OpenAPI API and components.
async fn seed(catalog: &Catalog) {
    add(
        catalog,
        vec![
            group("team-a"),
            group("team-b"),
            user("jane", &["team-a"]),
            mcp_api(
                "payments-mcp",
                "team-a",
                json!({"title": "Payments Tools", "tags": ["finance", "java"]}),
            ),
            mcp_api("search-mcp", "team-b", json!({"tags": ["search"]})),
            mcp_api(
                "Ledger-MCP",
                "team-a",
                json!({"title": "Ledger", "tags": ["finance"]}),
            ),
            mcp_api("ghost-mcp", "group:default/ghost", json!({})),
            openapi(
                "orders-api",
                "team-a",
                json!({"annotations": {"backstage.io/techdocs-ref": "dir:."}}),
            ),
            component(
                "web-shop",
                "team-b",
                json!({"tags": ["java", "web"], "title": "Web Shop"}),
            ),
            component(
                "billing",
                "team-a",
                json!({"tags": ["python"], "annotations": {"example.com/Flag": "On"}}),
            ),
        ],
    )
    .await;
}

fn entity_ref(entity: &Value) -> String {
    format!(
        "{}:{}/{}",
        entity["kind"].as_str().unwrap(),
        entity["metadata"]["namespace"].as_str().unwrap(),
        entity["metadata"]["name"].as_str().unwrap()
    )
    .to_lowercase()
}

fn refs(items: &[Value]) -> Vec<String> {
    items.iter().map(entity_ref).collect()
}

/// The references the legacy list gives for `filter` parameters.
async fn list(catalog: &Catalog, filter: &[&str]) -> Vec<String> {
    let req = EntitiesRequest {
        filter: EntityFilter::parse(filter).unwrap(),
        ..Default::default()
    };
    refs(&catalog.entities(&req).await.unwrap())
}

fn sorted(items: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    out.sort();
    out
}

fn query(pairs: &[(&str, &str)]) -> QueryRequest {
    QueryRequest::from_query(pairs.iter().copied()).unwrap()
}

async fn page(catalog: &Catalog, pairs: &[(&str, &str)]) -> QueryPage {
    catalog.query_entities(&query(pairs)).await.unwrap()
}

async fn follow(catalog: &Catalog, cursor: &str, limit: &str) -> QueryPage {
    page(catalog, &[("cursor", cursor), ("limit", limit)]).await
}

/// Every page from the first, following `nextCursor`.
async fn all_pages(catalog: &Catalog, first: &[(&str, &str)], limit: &str) -> Vec<QueryPage> {
    let mut pairs = first.to_vec();
    pairs.push(("limit", limit));
    let mut pages = vec![page(catalog, &pairs).await];
    while let Some(next) = pages.last().unwrap().page_info.next_cursor.clone() {
        pages.push(follow(catalog, &next, limit).await);
        assert!(pages.len() < 100, "pagination does not end");
    }
    pages
}

#[tokio::test]
async fn filters_follow_backstage_semantics() {
    for (catalog, db) in catalogs().await {
        let backend = db.backend();
        seed(&catalog).await;
        let apis = sorted(&[
            "api:default/ghost-mcp",
            "api:default/ledger-mcp",
            "api:default/orders-api",
            "api:default/payments-mcp",
            "api:default/search-mcp",
        ]);
        // Default: everything, ordered by reference.
        let everything = list(&catalog, &[]).await;
        assert_eq!(everything.len(), 10, "{backend:?}");
        assert_eq!(
            everything,
            sorted(&everything.iter().map(String::as_str).collect::<Vec<_>>())
        );

        // Case-insensitive keys and values.
        assert_eq!(list(&catalog, &["kind=api"]).await, apis, "{backend:?}");
        assert_eq!(list(&catalog, &["KIND=Api"]).await, apis, "{backend:?}");
        // AND within a parameter; kind next to another condition.
        let mcp = sorted(&[
            "api:default/ghost-mcp",
            "api:default/ledger-mcp",
            "api:default/payments-mcp",
            "api:default/search-mcp",
        ]);
        assert_eq!(
            list(&catalog, &["kind=API,spec.type=MCP-Server"]).await,
            mcp,
            "{backend:?}"
        );
        assert_eq!(
            list(&catalog, &[" kind = api , spec.type = mcp-server "]).await,
            mcp,
            "{backend:?}"
        );
        assert_eq!(
            list(
                &catalog,
                &["kind=api,spec.type=mcp-server,metadata.name=LEDGER-mcp"]
            )
            .await,
            ["api:default/ledger-mcp"],
            "{backend:?}"
        );
        // Same key twice in one parameter: either value.
        assert_eq!(
            list(&catalog, &["kind=group,kind=user"]).await,
            [
                "group:default/team-a",
                "group:default/team-b",
                "user:default/jane"
            ],
            "{backend:?}"
        );
        assert_eq!(
            list(&catalog, &["spec.type=openapi,spec.type=service,kind=api"]).await,
            ["api:default/orders-api"],
            "{backend:?}"
        );
        // Separate parameters: either one.
        assert_eq!(
            list(
                &catalog,
                &["kind=user", "kind=component,metadata.name=billing"]
            )
            .await,
            ["component:default/billing", "user:default/jane"],
            "{backend:?}"
        );
        // Overlapping alternatives give each entity once.
        assert_eq!(
            list(&catalog, &["kind=group", "spec.type=team"]).await,
            ["group:default/team-a", "group:default/team-b"]
        );
        // A bare key: the key exists.
        assert_eq!(
            list(&catalog, &["metadata.title"]).await,
            [
                "api:default/ledger-mcp",
                "api:default/payments-mcp",
                "component:default/web-shop"
            ],
            "{backend:?}"
        );
        assert_eq!(
            list(&catalog, &["kind=api,metadata.title"]).await,
            ["api:default/ledger-mcp", "api:default/payments-mcp"]
        );
        // Dotted keys reach into arrays, also as `path.item`.
        assert_eq!(
            list(&catalog, &["metadata.tags=JAVA"]).await,
            ["api:default/payments-mcp", "component:default/web-shop"],
            "{backend:?}"
        );
        assert_eq!(
            list(&catalog, &["metadata.tags.java"]).await,
            ["api:default/payments-mcp", "component:default/web-shop"]
        );
        assert_eq!(
            list(&catalog, &["metadata.tags=finance,metadata.tags=java"]).await,
            [
                "api:default/ledger-mcp",
                "api:default/payments-mcp",
                "component:default/web-shop"
            ]
        );
        assert_eq!(
            list(&catalog, &["metadata.tags=finance,metadata.tags.java"]).await,
            ["api:default/payments-mcp"]
        );
        assert_eq!(
            list(&catalog, &["metadata.tags=finance", "metadata.tags=web"])
                .await
                .len(),
            3
        );
        assert_eq!(
            list(&catalog, &["metadata.tags=finance,kind=component"]).await,
            Vec::<String>::new()
        );
        assert_eq!(
            list(&catalog, &["spec.memberOf=group:default/team-a"]).await,
            Vec::<String>::new(),
            "memberOf is written short"
        );
        assert_eq!(
            list(&catalog, &["spec.memberof=team-a"]).await,
            ["user:default/jane"]
        );
        // Relations, both directions; a relation to an entity that is not in the catalog names nothing.
        assert_eq!(
            list(&catalog, &["relations.ownedBy=group:default/team-a"]).await,
            [
                "api:default/ledger-mcp",
                "api:default/orders-api",
                "api:default/payments-mcp",
                "component:default/billing"
            ],
            "{backend:?}"
        );
        assert_eq!(
            list(
                &catalog,
                &["relations.ownedBy=group:default/team-a,kind=component"]
            )
            .await,
            ["component:default/billing"],
            "{backend:?}"
        );
        assert_eq!(
            list(&catalog, &["relations.ownerOf=api:default/ledger-mcp"]).await,
            ["group:default/team-a"]
        );
        assert_eq!(
            list(&catalog, &["relations.ownerOf=api:default/ghost-mcp"]).await,
            Vec::<String>::new(),
            "{backend:?}"
        );
        assert_eq!(
            list(&catalog, &["relations.ownerof"]).await,
            ["group:default/team-a", "group:default/team-b"],
            "{backend:?}"
        );
        assert_eq!(
            list(&catalog, &["relations.ownerOf,kind=group"]).await,
            ["group:default/team-a", "group:default/team-b"]
        );
        assert_eq!(
            list(&catalog, &["relations.hasMember=user:default/jane"]).await,
            ["group:default/team-a"]
        );
        // Annotation keys with `/` (and dots) are written as they are; keys and values ignore case.
        assert_eq!(
            list(
                &catalog,
                &["metadata.annotations.backstage.io/techdocs-ref=DIR:."]
            )
            .await,
            ["api:default/orders-api"],
            "{backend:?}"
        );
        assert_eq!(
            list(&catalog, &["metadata.annotations.example.com/flag=on"]).await,
            ["component:default/billing"]
        );
        assert_eq!(
            list(
                &catalog,
                &["kind=api,metadata.annotations.mcp.spotify.com/schema-version=2025-09-29"]
            )
            .await,
            mcp
        );
        // Nothing matches.
        assert_eq!(
            list(&catalog, &["kind=api,metadata.name=nope"]).await,
            Vec::<String>::new()
        );
        assert_eq!(list(&catalog, &["kind=system"]).await, Vec::<String>::new());
        assert_eq!(list(&catalog, &["no.such.key"]).await, Vec::<String>::new());
        // A kind that is not a plain word still works (answered from the search rows).
        assert_eq!(
            list(&catalog, &["kind=a-p-i,spec.type=mcp-server"]).await,
            Vec::<String>::new()
        );
    }
}

#[tokio::test]
async fn kinds_that_are_ambiguous_prefixes_are_not_confused() {
    for (catalog, db) in catalogs().await {
        seed(&catalog).await;
        // An invalid entity whose kind contains `:` has a reference that starts like an API's.
        // Such an entity can only come in through a location; write its rows directly.
        let pool = catalog.store().pool();
        let weird = "api:x:default/odd";
        sqlx::query(
            "INSERT INTO catalog_entities (entity_ref, uid, source, source_key, raw, entity, errors, hash, etag, updated_at)
             VALUES ($1, 'odd-uid', 'test', '', '{}', $2, '[]', 'h', 'e', 0)",
        )
        .bind(weird)
        .bind(json!({"apiVersion": "v1", "kind": "API:x", "metadata": {"name": "odd", "namespace": "default"}, "spec": {"type": "mcp-server"}}).to_string())
        .execute(pool)
        .await
        .unwrap();
        for (key, value, original) in [
            ("kind", "api:x", "API:x"),
            ("spec.type", "mcp-server", "mcp-server"),
        ] {
            sqlx::query("INSERT INTO catalog_search (origin_ref, entity_ref, key, value, original) VALUES ($1, $1, $2, $3, $4)")
                .bind(weird)
                .bind(key)
                .bind(value)
                .bind(original)
                .execute(pool)
                .await
                .unwrap();
        }
        // As every writer does, so that an in-memory copy notices.
        sqlx::query("UPDATE catalog_generation SET value = value + 1 WHERE id = 1")
            .execute(pool)
            .await
            .unwrap();
        let found = list(&catalog, &["kind=api,spec.type=mcp-server"]).await;
        assert!(
            !found.contains(&weird.to_string()),
            "{:?}: {found:?}",
            db.backend()
        );
        assert_eq!(found.len(), 4, "{:?}", db.backend());
        assert_eq!(
            list(&catalog, &["kind=api:x,spec.type=mcp-server"]).await,
            [weird]
        );
        let total = page(&catalog, &[("filter", "kind=api,spec.type=mcp-server")])
            .await
            .total_items;
        assert_eq!(total, 4, "{:?}", db.backend());
    }
}

#[tokio::test]
async fn fields_keep_only_the_chosen_paths() {
    for (catalog, _db) in catalogs().await {
        seed(&catalog).await;
        let req = EntitiesRequest {
            filter: EntityFilter::parse(&["kind=component,metadata.name=billing"]).unwrap(),
            fields: Fields::parse(&[
                "kind,metadata.name",
                "metadata.annotations.example.com/Flag,spec.nothing",
            ])
            .unwrap(),
            ..Default::default()
        };
        let items = catalog.entities(&req).await.unwrap();
        assert_eq!(
            items,
            [
                json!({"kind": "Component", "metadata": {"name": "billing", "annotations": {"example.com/Flag": "On"}}})
            ]
        );
        // A path to an object keeps the subtree; relations are there to pick.
        let page = page(
            &catalog,
            &[
                ("filter", "metadata.name=ledger-mcp"),
                ("fields", "spec,relations"),
                ("fields", "metadata.title"),
            ],
        )
        .await;
        assert_eq!(page.items.len(), 1);
        let item = &page.items[0];
        assert_eq!(item.as_object().unwrap().len(), 3, "{item}");
        assert_eq!(item["metadata"], json!({"title": "Ledger"}));
        assert_eq!(item["spec"]["type"], "mcp-server");
        assert!(
            item["relations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["type"] == "ownedBy" && r["targetRef"] == "group:default/team-a")
        );
        // Without fields the whole entity comes back.
        let full = catalog
            .entity_by_ref("api:default/ledger-mcp")
            .await
            .unwrap()
            .unwrap();
        let whole = page_items(&catalog, &[("filter", "metadata.name=ledger-mcp")]).await;
        assert_eq!(whole, [full]);
    }
}

async fn page_items(catalog: &Catalog, pairs: &[(&str, &str)]) -> Vec<Value> {
    page(catalog, pairs).await.items
}

/// 23 MCP servers, some with a title, plus other entities the filter must leave out.
async fn seed_many(catalog: &Catalog) -> Vec<String> {
    add(catalog, vec![group("team-a"), group("team-b")]).await;
    let mut names = Vec::new();
    for i in 0..23 {
        let name = format!("srv-{:02}", (i * 7) % 23);
        // Every third one has a title; titles repeat (ties break on the reference) and differ
        // in case (sorting ignores it).
        let mut metadata = json!({"tags": [if i % 2 == 0 { "even" } else { "odd" }]});
        if i % 3 == 0 {
            metadata["title"] = json!(["Beta", "alpha", "Gamma"][(i / 3) % 3]);
        }
        let owner = if i % 2 == 0 { "team-a" } else { "team-b" };
        add(catalog, vec![mcp_api(&name, owner, metadata)]).await;
        names.push(format!("api:default/{name}"));
    }
    add(
        catalog,
        vec![
            openapi("aaa-api", "team-a", json!({})),
            component("srv-zz", "team-a", json!({})),
        ],
    )
    .await;
    names.sort();
    names
}

#[tokio::test]
async fn by_query_pages_are_stable_in_both_directions() {
    for (catalog, db) in catalogs().await {
        let backend = db.backend();
        let expected = seed_many(&catalog).await;
        let filter = [("filter", "kind=api,spec.type=mcp-server")];
        let pages = all_pages(&catalog, &filter, "5").await;
        assert_eq!(pages.len(), 5, "{backend:?}");
        let seen: Vec<String> = pages.iter().flat_map(|p| refs(&p.items)).collect();
        assert_eq!(
            seen, expected,
            "{backend:?}: all items once, in reference order"
        );
        assert!(pages.iter().all(|p| p.total_items == 23), "{backend:?}");
        assert!(pages[..4].iter().all(|p| p.items.len() == 5));
        assert!(pages[0].page_info.prev_cursor.is_none());
        assert!(pages[1..].iter().all(|p| p.page_info.prev_cursor.is_some()));
        assert!(pages[4].page_info.next_cursor.is_none());

        // Back from page 3 gives page 2, back again gives page 1, which has nothing before it.
        let back = follow(
            &catalog,
            pages[2].page_info.prev_cursor.as_ref().unwrap(),
            "5",
        )
        .await;
        assert_eq!(refs(&back.items), refs(&pages[1].items), "{backend:?}");
        assert_eq!(back.total_items, 23);
        let back2 = follow(&catalog, back.page_info.prev_cursor.as_ref().unwrap(), "5").await;
        assert_eq!(refs(&back2.items), refs(&pages[0].items), "{backend:?}");
        assert!(back2.page_info.prev_cursor.is_none(), "{backend:?}");
        // And forward again from a page reached backwards.
        let again = follow(&catalog, back2.page_info.next_cursor.as_ref().unwrap(), "5").await;
        assert_eq!(refs(&again.items), refs(&pages[1].items), "{backend:?}");
        let last_back = follow(
            &catalog,
            pages[4].page_info.prev_cursor.as_ref().unwrap(),
            "5",
        )
        .await;
        assert_eq!(refs(&last_back.items), refs(&pages[3].items));

        // The cursor alone decides: other query parameters next to it are ignored.
        let with_noise = page(
            &catalog,
            &[
                ("cursor", pages[1].page_info.next_cursor.as_ref().unwrap()),
                ("limit", "5"),
                ("filter", "kind=group"),
                ("orderField", "metadata.name,desc"),
            ],
        )
        .await;
        assert_eq!(refs(&with_noise.items), refs(&pages[2].items));

        // The limit may change between pages; the default is 20.
        let first = page(&catalog, &filter).await;
        assert_eq!(first.items.len(), 20);
        let rest = follow(
            &catalog,
            first.page_info.next_cursor.as_ref().unwrap(),
            "50",
        )
        .await;
        assert_eq!(refs(&rest.items), expected[20..].to_vec());
        // limit=0 only counts.
        let none = page(
            &catalog,
            &[("filter", "kind=api,spec.type=mcp-server"), ("limit", "0")],
        )
        .await;
        assert!(
            none.items.is_empty() && none.total_items == 23 && none.page_info.next_cursor.is_none()
        );
        // An offset on the first page skips items and gives a way back.
        let skipped = page(
            &catalog,
            &[
                ("filter", "kind=api,spec.type=mcp-server"),
                ("limit", "5"),
                ("offset", "3"),
            ],
        )
        .await;
        assert_eq!(refs(&skipped.items), expected[3..8].to_vec());
        let before = follow(
            &catalog,
            skipped.page_info.prev_cursor.as_ref().unwrap(),
            "5",
        )
        .await;
        assert_eq!(refs(&before.items), expected[..3].to_vec());

        // Unfiltered: every entity, the same way.
        let everything = all_pages(&catalog, &[], "7").await;
        let seen: Vec<String> = everything.iter().flat_map(|p| refs(&p.items)).collect();
        assert_eq!(seen.len(), 27);
        assert!(everything.iter().all(|p| p.total_items == 27));
        let mut unique = seen.clone();
        unique.dedup();
        assert_eq!(unique, seen);
        // Alternatives and several values: same guarantees.
        let either = all_pages(
            &catalog,
            &[
                ("filter", "metadata.tags=even"),
                ("filter", "kind=group,kind=component"),
            ],
            "4",
        )
        .await;
        let seen: Vec<String> = either.iter().flat_map(|p| refs(&p.items)).collect();
        assert_eq!(seen.len(), 12 + 3, "{backend:?}: {seen:?}");
        assert!(either.iter().all(|p| p.total_items == 15));
        assert_eq!(
            seen,
            sorted(&seen.iter().map(String::as_str).collect::<Vec<_>>())
        );
    }
}

/// Sort key of an item the way the engine sorts: lowercased value, missing last.
fn title_of(item: &Value) -> Option<String> {
    item["metadata"]["title"].as_str().map(str::to_lowercase)
}

#[tokio::test]
async fn ordering_puts_missing_values_last_in_both_directions() {
    for (catalog, db) in catalogs().await {
        let backend = db.backend();
        seed_many(&catalog).await;
        for direction in ["asc", "desc"] {
            let order = format!("metadata.title,{direction}");
            let first = [
                ("filter", "kind=api,spec.type=mcp-server"),
                ("orderField", order.as_str()),
            ];
            let pages = all_pages(&catalog, &first, "4").await;
            let items: Vec<Value> = pages.iter().flat_map(|p| p.items.clone()).collect();
            assert_eq!(items.len(), 23, "{backend:?}");
            let mut expected = items.clone();
            expected.sort_by(|a, b| {
                let (ta, tb) = (title_of(a), title_of(b));
                let by_title = match (&ta, &tb) {
                    (Some(x), Some(y)) if direction == "asc" => x.cmp(y),
                    (Some(x), Some(y)) => y.cmp(x),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                };
                // Ties break on the reference, in the direction of the sort.
                let (ra, rb) = (entity_ref(a), entity_ref(b));
                by_title.then_with(|| {
                    if direction == "asc" {
                        ra.cmp(&rb)
                    } else {
                        rb.cmp(&ra)
                    }
                })
            });
            assert_eq!(refs(&items), refs(&expected), "{backend:?} {direction}");
            assert!(title_of(&items[0]).is_some() && title_of(&items[22]).is_none());
            // Back from every page gives the page before it.
            for i in 1..pages.len() {
                let back = follow(
                    &catalog,
                    pages[i].page_info.prev_cursor.as_ref().unwrap(),
                    "4",
                )
                .await;
                assert_eq!(
                    refs(&back.items),
                    refs(&pages[i - 1].items),
                    "{backend:?} {direction} page {i}"
                );
            }
        }
        // Several sort keys: tags descending, then name ascending.
        let pages = all_pages(
            &catalog,
            &[
                ("filter", "kind=api,spec.type=mcp-server"),
                ("orderField", "metadata.tags,desc"),
                ("orderField", "metadata.name"),
            ],
            "6",
        )
        .await;
        let items: Vec<Value> = pages.iter().flat_map(|p| p.items.clone()).collect();
        let tags: Vec<&str> = items
            .iter()
            .map(|i| i["metadata"]["tags"][0].as_str().unwrap())
            .collect();
        assert_eq!(tags.iter().filter(|t| **t == "odd").count(), 11);
        assert!(
            tags[..11].iter().all(|t| *t == "odd"),
            "{backend:?}: {tags:?}"
        );
        let names: Vec<String> = refs(&items);
        assert!(
            names[..11].windows(2).all(|w| w[0] < w[1])
                && names[11..].windows(2).all(|w| w[0] < w[1])
        );
        let back = follow(
            &catalog,
            pages[2].page_info.prev_cursor.as_ref().unwrap(),
            "6",
        )
        .await;
        assert_eq!(refs(&back.items), refs(&pages[1].items));

        // The legacy list sorts the same way and pages with offset, limit and `after`.
        let req = EntitiesRequest {
            filter: EntityFilter::parse(&["kind=api,spec.type=mcp-server"]).unwrap(),
            order: vec![OrderField::parse_legacy("desc:metadata.name").unwrap()],
            limit: Some(10),
            ..Default::default()
        };
        let first = catalog.entities_page(&req).await.unwrap();
        let mut names = refs(&first.items);
        let mut expected_desc = names.clone();
        expected_desc.sort_by(|a, b| b.cmp(a));
        assert_eq!(names, expected_desc);
        let mut after = first.next_after.clone();
        while let Some(cursor) = after {
            let next = catalog
                .entities_page(&EntitiesRequest {
                    after: Some(cursor),
                    ..req.clone()
                })
                .await
                .unwrap();
            names.extend(refs(&next.items));
            after = next.next_after;
        }
        assert_eq!(names.len(), 23, "{backend:?}");
        assert!(
            names.windows(2).all(|w| w[0] > w[1]),
            "{backend:?}: {names:?}"
        );
        let offset = catalog
            .entities(&EntitiesRequest {
                offset: Some(20),
                limit: None,
                ..req.clone()
            })
            .await
            .unwrap();
        assert_eq!(refs(&offset), names[20..].to_vec());
        let order = vec![OrderField::new("metadata.title", SortOrder::Asc)];
        let titled = catalog
            .entities(&EntitiesRequest {
                order,
                limit: None,
                ..req.clone()
            })
            .await
            .unwrap();
        assert!(title_of(&titled[0]).is_some() && title_of(&titled[22]).is_none());
    }
}

#[tokio::test]
async fn full_text_search_finds_substrings() {
    for (catalog, db) in catalogs().await {
        let backend = db.backend();
        seed(&catalog).await;
        // Default fields: metadata.name and metadata.title.
        let found = page(&catalog, &[("fullTextFilterTerm", " PAY ")]).await;
        assert_eq!(
            refs(&found.items),
            ["api:default/payments-mcp"],
            "{backend:?}"
        );
        assert_eq!(found.total_items, 1);
        let found = page(&catalog, &[("fullTextFilterTerm", "shop")]).await;
        assert_eq!(
            refs(&found.items),
            ["component:default/web-shop"],
            "{backend:?}"
        );
        // Named fields, with a filter.
        let found = page(
            &catalog,
            &[
                ("filter", "kind=api"),
                ("fullTextFilterTerm", "MCP"),
                ("fullTextFilterFields", "spec.type"),
            ],
        )
        .await;
        assert_eq!(found.total_items, 4, "{backend:?}");
        let found = page(
            &catalog,
            &[
                ("fullTextFilterTerm", "ledg"),
                ("fullTextFilterFields", "spec.type,metadata.title"),
            ],
        )
        .await;
        assert_eq!(refs(&found.items), ["api:default/ledger-mcp"]);
        // The order fields are the default fields when given.
        let found = page(
            &catalog,
            &[("fullTextFilterTerm", "team"), ("orderField", "spec.type")],
        )
        .await;
        assert_eq!(
            refs(&found.items),
            ["group:default/team-a", "group:default/team-b"],
            "{backend:?}"
        );
        // LIKE wildcards in the term are plain characters.
        assert_eq!(
            page(&catalog, &[("fullTextFilterTerm", "%")])
                .await
                .total_items,
            0,
            "{backend:?}"
        );
        assert_eq!(
            page(&catalog, &[("fullTextFilterTerm", "_")])
                .await
                .total_items,
            0,
            "{backend:?}"
        );
        // A blank term filters nothing.
        assert_eq!(
            page(&catalog, &[("fullTextFilterTerm", "  ")])
                .await
                .total_items,
            10
        );
        // Paging keeps the term.
        let pages = all_pages(&catalog, &[("fullTextFilterTerm", "mcp")], "2").await;
        let seen: Vec<String> = pages.iter().flat_map(|p| refs(&p.items)).collect();
        assert_eq!(seen.len(), 4, "{backend:?}: {seen:?}");
        assert!(pages.iter().all(|p| p.total_items == 4));
    }
}

#[tokio::test]
async fn facets_count_entities_per_original_value() {
    for (catalog, db) in catalogs().await {
        let backend = db.backend();
        seed(&catalog).await;
        let facets: Vec<String> = [
            "kind",
            "metadata.tags",
            "relations.ownedBy",
            "spec.type",
            "metadata.nothing",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let all = catalog.facets(&facets, &EntityFilter::all()).await.unwrap();
        let json = serde_json::to_value(&all).unwrap();
        assert_eq!(
            json["facets"]["kind"],
            json!([{"value": "API", "count": 5}, {"value": "Component", "count": 2}, {"value": "Group", "count": 2}, {"value": "User", "count": 1}]),
            "{backend:?}"
        );
        assert_eq!(
            json["facets"]["metadata.tags"],
            json!([{"value": "finance", "count": 2}, {"value": "java", "count": 2}, {"value": "python", "count": 1},
                {"value": "search", "count": 1}, {"value": "web", "count": 1}]),
            "{backend:?}"
        );
        assert_eq!(
            json["facets"]["relations.ownedBy"],
            json!([{"value": "group:default/team-a", "count": 4}, {"value": "group:default/team-b", "count": 2},
                {"value": "group:default/ghost", "count": 1}]),
            "{backend:?}"
        );
        assert_eq!(json["facets"]["metadata.nothing"], json!([]));
        // With a filter, only the matching entities count; reverse relations of entities not in
        // the catalog do not.
        let filter = EntityFilter::parse(&["kind=api,spec.type=mcp-server"]).unwrap();
        let some = catalog
            .facets(&["metadata.tags".into(), "spec.type".into()], &filter)
            .await
            .unwrap();
        let json = serde_json::to_value(&some).unwrap();
        assert_eq!(
            json["facets"]["metadata.tags"],
            json!([{"value": "finance", "count": 2}, {"value": "java", "count": 1}, {"value": "search", "count": 1}]),
            "{backend:?}"
        );
        assert_eq!(
            json["facets"]["spec.type"],
            json!([{"value": "mcp-server", "count": 4}])
        );
        let owners = catalog
            .facets(&["relations.ownerOf".into()], &EntityFilter::all())
            .await
            .unwrap();
        let counts: Vec<(String, u64)> = owners.facets["relations.ownerOf"]
            .iter()
            .map(|f| (f.value.clone(), f.count))
            .collect();
        assert!(
            counts.iter().all(|(v, _)| v != "api:default/ghost-mcp"),
            "{backend:?}: {counts:?}"
        );
        assert_eq!(counts.len(), 6, "{backend:?}: {counts:?}");
        // Nothing matches: empty lists.
        let none = catalog
            .facets(
                &["kind".into()],
                &EntityFilter::parse(&["kind=system"]).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            serde_json::to_value(&none).unwrap(),
            json!({"facets": {"kind": []}})
        );
    }
}

#[tokio::test]
async fn empty_results_and_response_shape() {
    for (catalog, db) in catalogs().await {
        // An empty catalog.
        let empty = page(&catalog, &[]).await;
        assert_eq!(
            serde_json::to_value(&empty).unwrap(),
            json!({"items": [], "totalItems": 0, "pageInfo": {}})
        );
        seed(&catalog).await;
        let none = page(&catalog, &[("filter", "kind=api,metadata.name=nope")]).await;
        assert_eq!(
            serde_json::to_value(&none).unwrap(),
            json!({"items": [], "totalItems": 0, "pageInfo": {}}),
            "{:?}",
            db.backend()
        );
        assert!(
            catalog
                .entities(&EntitiesRequest {
                    filter: EntityFilter::parse(&["kind=system"]).unwrap(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .is_empty()
        );
        let two = page(&catalog, &[("filter", "kind=group"), ("limit", "1")]).await;
        let json = serde_json::to_value(&two).unwrap();
        assert_eq!(json["totalItems"], 2);
        assert!(
            json["pageInfo"]["nextCursor"].is_string()
                && json["pageInfo"].get("prevCursor").is_none()
        );
    }
}

#[tokio::test]
async fn bad_input_is_an_input_error() {
    fn input<T: std::fmt::Debug>(result: Result<T, CatalogError>) -> String {
        match result {
            Err(CatalogError::Input(message)) => message,
            other => panic!("expected an input error, got {other:?}"),
        }
    }
    assert!(input(EntityFilter::parse(&["kind=api,=x"])).contains("'=x' is not a valid statement"));
    assert!(
        input(Fields::parse(&["metadata.tags[0]"])).contains("array type fields are not supported")
    );
    assert!(input(QueryRequest::from_query([("limit", "ten")])).contains("limit"));
    assert!(input(QueryRequest::from_query([("limit", "-1")])).contains("limit"));
    assert!(input(QueryRequest::from_query([("offset", "1.5")])).contains("offset"));
    assert!(input(QueryRequest::from_query([("limit", "1"), ("limit", "2")])).contains("limit"));
    assert!(
        input(QueryRequest::from_query([(
            "orderField",
            "metadata.name,sideways"
        )]))
        .contains("asc or desc")
    );
    assert!(
        input(EntitiesRequest::from_query([("order", "metadata.name")]))
            .contains("<asc or desc>:<field name>")
    );
    assert!(
        input(EntitiesRequest::from_query([("filter", "=")])).contains("not a valid statement")
    );

    for (catalog, _db) in catalogs().await {
        for cursor in [
            "not base64!",
            "e30",
            "eyJiIjp7InIiOiJ4In0sIm4iOjEsIm8iOlt7ImYiOiJhIiwibyI6ImFzYyJ9XX0",
        ] {
            let result = catalog
                .query_entities(&QueryRequest {
                    cursor: Some(cursor.into()),
                    ..Default::default()
                })
                .await;
            assert!(input(result).contains("Malformed cursor"), "{cursor}");
        }
        let result = catalog
            .entities(&EntitiesRequest {
                after: Some("%%%".into()),
                ..Default::default()
            })
            .await;
        assert!(input(result).contains("Malformed after cursor"));
    }
}

#[tokio::test]
async fn requests_parse_from_query_strings() {
    let req = QueryRequest::from_query([
        ("filter", "kind=api"),
        ("filter", "kind=component,spec.type=service"),
        ("fields", "metadata.name,kind"),
        ("orderField", "metadata.name,desc"),
        ("fullTextFilterTerm", "pay"),
        ("fullTextFilterFields", "metadata.name, metadata.title"),
        ("limit", "7"),
        ("unknown", "x"),
    ])
    .unwrap();
    assert_eq!(
        req.filter,
        EntityFilter::parse(&["kind=api", "kind=component,spec.type=service"]).unwrap()
    );
    assert_eq!(req.fields.paths(), ["metadata.name", "kind"]);
    assert_eq!(
        req.order_fields,
        [OrderField::new("metadata.name", SortOrder::Desc)]
    );
    assert_eq!(req.full_text_term.as_deref(), Some("pay"));
    assert_eq!(req.full_text_fields, ["metadata.name", "metadata.title"]);
    assert_eq!(req.limit, Some(7));
    let req = EntitiesRequest::from_query([
        ("order", "asc:metadata.name"),
        ("offset", "2"),
        ("limit", "3"),
        ("after", "abc"),
    ])
    .unwrap();
    assert_eq!(
        req.order,
        [OrderField::new("metadata.name", SortOrder::Asc)]
    );
    assert_eq!(
        (req.offset, req.limit, req.after.as_deref()),
        (Some(2), Some(3), Some("abc"))
    );
    // Backstage's own `after` cursor (standard base64 of {limit, offset}) is understood.
    for (catalog, _db) in catalogs().await {
        seed(&catalog).await;
        let after = "eyJsaW1pdCI6Mywib2Zmc2V0Ijo2fQ=="; // {"limit":3,"offset":6}
        let page = catalog
            .entities_page(&EntitiesRequest {
                after: Some(after.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let all = list(&catalog, &[]).await;
        assert_eq!(refs(&page.items), all[6..9].to_vec());
        assert!(page.next_after.is_some());
    }
}
