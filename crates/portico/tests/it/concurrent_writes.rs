//! Concurrent writes to the real `portico serve`, on SQLite and on PostgreSQL:
//!
//! - many clients creating different managed entities at once all succeed (201), and every one
//!   is stored;
//! - many clients creating the same entity at once: exactly one is acknowledged (201), the others
//!   get 409, and the stored entity is the acknowledged one, with the uid it was answered with.

use std::time::Duration;

use serde_json::{Value, json};

use crate::serve_support::{Db, Setup, TOKEN, database_url};

const CLIENTS: usize = 16;
const WRITES_PER_CLIENT: usize = 10;

fn component(name: &str, description: &str) -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "description": description},
        "spec": {"type": "concurrency-test", "lifecycle": "production", "owner": "concurrency-team"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_all_succeed_on_sqlite() {
    concurrent_creates(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_all_succeed_on_postgres() {
    concurrent_creates(Db::Postgres).await;
}

async fn concurrent_creates(db: Db) {
    let Some(url) = database_url(db).await else {
        return;
    };
    let mut setup = Setup::new(&[], &url);
    let server = setup.start().await;
    let endpoint = format!("{}/api/catalog/managed", server.base);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (http, endpoint) = (http.clone(), endpoint.clone());
        clients.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in 0..WRITES_PER_CLIENT {
                let name = format!("conc-c{c:02}-{i:03}");
                let response = http
                    .post(&endpoint)
                    .bearer_auth(TOKEN)
                    .json(&component(&name, "concurrent create"))
                    .send()
                    .await
                    .expect("the server answers");
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                answers.push((name, status, body));
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for client in clients {
        answers.extend(client.await.expect("client task"));
    }
    let failed: Vec<&(String, u16, String)> = answers.iter().filter(|a| a.1 != 201).collect();
    assert!(
        failed.is_empty(),
        "{db:?}: {} of {} concurrent creates of distinct entities failed, e.g. POST /api/catalog/managed {} -> {} {}\nserver log:\n{}",
        failed.len(),
        answers.len(),
        failed[0].0,
        failed[0].1,
        failed[0].2,
        server.log()
    );
    let refs: Vec<String> = answers
        .iter()
        .map(|a| format!("component:default/{}", a.0))
        .collect();
    let (status, body) = server
        .post("/entities/by-refs", &json!({ "entityRefs": refs }))
        .await;
    assert_eq!(status, 200, "{db:?}: {body}");
    let missing = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| !item.is_object())
        .count();
    assert_eq!(missing, 0, "{db:?}: acknowledged creates missing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_entity_acknowledge_one_on_sqlite() {
    concurrent_creates_of_one_entity(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_entity_acknowledge_one_on_postgres() {
    concurrent_creates_of_one_entity(Db::Postgres).await;
}

async fn concurrent_creates_of_one_entity(db: Db) {
    let Some(url) = database_url(db).await else {
        return;
    };
    let mut setup = Setup::new(&[], &url);
    let server = setup.start().await;
    let endpoint = format!("{}/api/catalog/managed", server.base);
    let http = reqwest::Client::new();
    for round in 0..5 {
        let name = format!("contested-{round}");
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            let (http, endpoint, name) = (http.clone(), endpoint.clone(), name.clone());
            clients.push(tokio::spawn(async move {
                let response = http
                    .post(&endpoint)
                    .bearer_auth(TOKEN)
                    .timeout(Duration::from_secs(60))
                    .json(&component(&name, &format!("writer {c}")))
                    .send()
                    .await
                    .expect("the server answers");
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                (status, body)
            }));
        }
        let mut answers = Vec::new();
        for client in clients {
            answers.push(client.await.expect("client task"));
        }
        let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
        let created: Vec<&Value> = answers
            .iter()
            .filter(|a| a.0 == 201)
            .map(|a| &a.1)
            .collect();
        assert!(
            created.len() == 1 && statuses.iter().all(|s| *s == 201 || *s == 409),
            "{db:?}: {CLIENTS} concurrent POST /api/catalog/managed of component:default/{name} must give one 201 and 409 for the rest; got {statuses:?}\n201 bodies (description, uid): {:?}",
            created
                .iter()
                .map(|b| (
                    b["metadata"]["description"].clone(),
                    b["metadata"]["uid"].clone()
                ))
                .collect::<Vec<_>>()
        );
        let (status, stored) = server
            .get(&format!("/entities/by-name/component/default/{name}"))
            .await;
        assert_eq!(status, 200, "{db:?}: {stored}");
        assert_eq!(
            (
                &stored["metadata"]["description"],
                &stored["metadata"]["uid"]
            ),
            (
                &created[0]["metadata"]["description"],
                &created[0]["metadata"]["uid"]
            ),
            "{db:?}: the stored entity is not the acknowledged one"
        );
        let uid = stored["metadata"]["uid"].as_str().unwrap();
        let (status, by_uid) = server.get(&format!("/entities/by-uid/{uid}")).await;
        assert_eq!(status, 200, "{db:?}: by-uid of the stored uid: {by_uid}");
    }
}
