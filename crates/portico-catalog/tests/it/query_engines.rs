//! The in-memory query index against the SQL engine, on SQLite and PostgreSQL: over a generated
//! catalog (missing values, arrays, relations, mixed case), every combination of filter, sort,
//! full-text term and page size gives the same pages, totals and cursors from both, walking
//! forward to the end and back again; and a catalog that keeps the copy in memory (the default)
//! never answers from an outdated one, whoever wrote.

use portico_catalog::service::filter::EntityFilter;
use portico_catalog::service::memory::QueryIndex;
use portico_catalog::service::query::{
    EntitiesRequest, OrderField, QueryPage, QueryRequest, SortOrder,
};
use portico_catalog::service::{Catalog, CatalogOptions};
use portico_store::Store;
use portico_store::testing::stores;
use serde_json::{Value, json};

fn catalog(store: &Store, query_index: QueryIndex) -> Catalog {
    let options = CatalogOptions {
        query_index,
        ..CatalogOptions::default()
    };
    Catalog::new(store.clone(), options)
}

/// A deterministic stream of numbers (no dependency, same catalog on every run).
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % sides
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.roll(from.len() as u64) as usize]
    }
}

/// Components, APIs and groups with values that collide, go missing, repeat and differ in case.
fn generated_catalog(n: usize) -> Vec<Value> {
    let mut dice = Dice(7);
    let mut out = vec![
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "team-a"}, "spec": {"type": "team", "children": []}}),
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "team-b"}, "spec": {"type": "team", "children": []}}),
    ];
    let words = [
        "alpha", "Beta", "gamma", "delta", "shop", "Shopping", "ledger",
    ];
    let lifecycles = ["production", "experimental", "Production", "deprecated"];
    let tags = ["java", "python", "web", "finance", "Go"];
    for i in 0..n {
        let kind = dice.pick(&["Component", "Component", "API"]);
        let name = format!("{}-{}", dice.pick(&words), i);
        let mut metadata = json!({"name": name});
        if dice.roll(3) > 0 {
            metadata["title"] = json!(format!("{} {}", dice.pick(&words), dice.roll(5)));
        }
        let tag_count = dice.roll(4) as usize;
        if tag_count > 0 {
            let chosen: Vec<&str> = (0..tag_count).map(|_| dice.pick(&tags)).collect();
            let mut unique = chosen.clone();
            unique.dedup();
            metadata["tags"] = json!(unique.iter().map(|t| t.to_lowercase()).collect::<Vec<_>>());
        }
        let mut spec = json!({"type": dice.pick(&["service", "website", "openapi"]),
            "lifecycle": dice.pick(&lifecycles), "owner": dice.pick(&["team-a", "team-b", "group:default/nobody"])});
        if kind == "API" {
            spec["definition"] = json!("openapi: 3.0.0");
        }
        out.push(json!({"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec}));
    }
    out
}

async fn add(catalog: &Catalog, entities: Vec<Value>) {
    for entity in entities {
        let name = entity["metadata"]["name"].clone();
        if let Err(e) = catalog.create_managed(entity).await {
            panic!("creating {name}: {e}");
        }
    }
}

const FILTERS: &[&[&str]] = &[
    &[],
    &["kind=component"],
    &["kind=component,spec.lifecycle=production"],
    &["spec.lifecycle=experimental,spec.lifecycle=deprecated"],
    &["metadata.tags=java"],
    &["kind=api", "metadata.tags=go"],
    &["metadata.title"],
    &["relations.ownedby=group:default/team-a"],
    &["spec.owner=group:default/nobody,kind=component"],
    &["kind=nothing"],
];

const ORDERS: &[&[&str]] = &[
    &[],
    &["metadata.name,asc"],
    &["metadata.title,desc"],
    &["metadata.tags,asc"],
    &["spec.lifecycle,asc", "metadata.title,desc"],
];

fn request(filter: &[&str], order: &[&str], term: Option<&str>, limit: &str) -> QueryRequest {
    let mut pairs: Vec<(&str, &str)> = filter.iter().map(|f| ("filter", *f)).collect();
    pairs.extend(order.iter().map(|o| ("orderField", *o)));
    if let Some(term) = term {
        pairs.push(("fullTextFilterTerm", term));
    }
    pairs.push(("limit", limit));
    QueryRequest::from_query(pairs).unwrap()
}

fn cursor(cursor: &str, limit: &str) -> QueryRequest {
    QueryRequest::from_query([("cursor", cursor), ("limit", limit)]).unwrap()
}

async fn both(sql: &Catalog, memory: &Catalog, req: &QueryRequest, what: &str) -> QueryPage {
    let expected = sql.query_entities(req).await.unwrap();
    let got = memory.query_entities(req).await.unwrap();
    assert_eq!(got, expected, "{what}");
    expected
}

#[tokio::test]
async fn memory_and_database_give_the_same_pages() {
    for (store, db) in stores().await {
        let sql = catalog(&store, QueryIndex::Database);
        let memory = catalog(&store, QueryIndex::MemoryOnly);
        add(&sql, generated_catalog(70)).await;
        let mut compared = 0;
        for filter in FILTERS {
            for order in ORDERS {
                for term in [None, Some("sho"), Some("A")] {
                    for limit in ["1", "4", "50"] {
                        let what = format!(
                            "{:?}: filter {filter:?}, order {order:?}, term {term:?}, limit {limit}",
                            db.backend()
                        );
                        let first = request(filter, order, term, limit);
                        let mut page = both(&sql, &memory, &first, &what).await;
                        let mut pages = 1;
                        while let Some(next) = page.page_info.next_cursor.clone() {
                            page = both(&sql, &memory, &cursor(&next, limit), &what).await;
                            pages += 1;
                            assert!(pages < 200, "{what}: pagination does not end");
                        }
                        while let Some(prev) = page.page_info.prev_cursor.clone() {
                            page = both(&sql, &memory, &cursor(&prev, limit), &what).await;
                            pages += 1;
                            assert!(pages < 400, "{what}: pagination does not end");
                        }
                        compared += pages;
                    }
                }
                // The legacy list, with an offset and sort keys.
                let legacy = EntitiesRequest {
                    filter: EntityFilter::parse(filter).unwrap(),
                    order: order
                        .iter()
                        .map(|o| {
                            let (field, dir) = o.split_once(',').unwrap();
                            let dir = if dir == "asc" {
                                SortOrder::Asc
                            } else {
                                SortOrder::Desc
                            };
                            OrderField::new(field, dir)
                        })
                        .collect(),
                    offset: Some(3),
                    limit: Some(5),
                    ..Default::default()
                };
                assert_eq!(
                    memory.entities_page(&legacy).await.unwrap(),
                    sql.entities_page(&legacy).await.unwrap(),
                    "{:?}: legacy list, filter {filter:?}, order {order:?}",
                    db.backend()
                );
            }
        }
        assert!(compared > 1000, "only {compared} pages compared");
    }
}

#[tokio::test]
async fn the_in_memory_copy_is_never_outdated() {
    for (store, db) in stores().await {
        // The default: memory while current, the database while a copy is rebuilt.
        let reader = catalog(&store, QueryIndex::Memory);
        // Another process on the same database, with a copy of its own.
        let replica = catalog(&store, QueryIndex::Memory);
        add(&reader, generated_catalog(20)).await;
        reader.warm_query_index().await.unwrap();
        let names = |page: QueryPage| -> Vec<String> {
            page.items
                .iter()
                .map(|e| e["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        let by_name = request(&["kind=component"], &["metadata.name,asc"], None, "500");
        let before = names(reader.query_entities(&by_name).await.unwrap());
        for (i, writer) in [&reader, &replica, &reader, &replica]
            .into_iter()
            .enumerate()
        {
            let name = format!("aaa-new-{i}");
            add(
                writer,
                vec![json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                    "metadata": {"name": name}, "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}})],
            )
            .await;
            // Straight after the write (the database answers), and again once the background
            // rebuild (after a quarter second without writes) had time to finish.
            for _ in 0..2 {
                let now = names(reader.query_entities(&by_name).await.unwrap());
                assert_eq!(now.len(), before.len() + i + 1, "{:?}", db.backend());
                assert!(now.contains(&name), "{:?}: {name} missing", db.backend());
                tokio::time::sleep(std::time::Duration::from_millis(600)).await;
            }
        }
        replica
            .delete_managed("component:default/aaa-new-0")
            .await
            .unwrap();
        let now = names(reader.query_entities(&by_name).await.unwrap());
        assert!(
            !now.contains(&"aaa-new-0".to_string()),
            "{:?}",
            db.backend()
        );
    }
}
