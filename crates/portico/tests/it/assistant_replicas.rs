//! Two `portico serve` processes on one PostgreSQL database, behind one base URL: a run starts on
//! the first and waits for an approval; the first process dies; the approval reaches the second,
//! which drives the run to its end; a client reading events from the second sees every event of
//! the run, in order, from both processes.

use std::time::Duration;

use serde_json::{Value, json};

use crate::chat::{GET_ENTITY, Reply, scripted_model};
use crate::serve_support::{Db, Server, Setup, TOKEN, database_url};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A setup on `database` listening on `port`, whose `backend.baseUrl` is `base`.
fn setup(database: &str, port: u16, base: &str, model: &str) -> Setup {
    let setup = Setup::new(&[], database);
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&setup.config).unwrap()).unwrap();
    config["backend"]["baseUrl"] = json!(base);
    config["backend"]["listen"]["port"] = json!(port);
    config["assistant"] = json!({
        "model": {"provider": "openai", "baseUrl": model, "model": "scripted"},
        "toolApproval": "always"
    });
    std::fs::write(
        &setup.config,
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
    setup
}

/// POSTs `body` to `path` (under `/api`) of `server` with the static token.
async fn post(server: &Server, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api{path}", server.base))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Reads a run's events from `server` after `after` until `stop` matches or the run ends.
async fn events(server: &Server, run: &str, after: i64, stop: &str) -> Vec<(i64, Value)> {
    let mut response = reqwest::Client::new()
        .get(format!("{}/api/assistant/runs/{run}/events", server.base))
        .bearer_auth(TOKEN)
        .header("last-event-id", after.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut buffer = String::new();
    let mut out = Vec::new();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(60), response.chunk())
            .await
            .expect("events within a minute")
            .unwrap();
        let Some(chunk) = chunk else { return out };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let id = block
                .lines()
                .find_map(|l| l.strip_prefix("id:"))
                .and_then(|v| v.trim().parse().ok());
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(str::trim);
            let (Some(id), Some(Ok(event))) = (id, data.map(serde_json::from_str::<Value>)) else {
                continue;
            };
            let kind = event["type"].as_str().unwrap_or_default().to_string();
            out.push((id, event));
            if kind == stop || kind == "run.completed" || kind == "run.failed" {
                return out;
            }
        }
    }
}

#[tokio::test]
async fn a_run_started_on_one_process_finishes_on_another() {
    let Some(database) = database_url(Db::Postgres).await else {
        return;
    };
    let model = scripted_model(vec![
        Reply::Tool(GET_ENTITY, json!({"name": "mcp-actions"})),
        Reply::Text("Finished by the second process."),
    ])
    .await;
    let (one_port, two_port) = (free_port(), free_port());
    // Both sit behind one address; it is the second's, which outlives the first here.
    let base = format!("http://127.0.0.1:{two_port}");
    let mut two_setup = setup(&database, two_port, &base, &model);
    let two = two_setup.start().await;
    let mut one_setup = setup(&database, one_port, &base, &model);
    let mut one = one_setup.start().await;

    let (status, conversation) = post(
        &one,
        "/assistant/conversations",
        json!({"title": "replicas"}),
    )
    .await;
    assert_eq!(status, 201, "{conversation}");
    let id = conversation["id"].as_str().unwrap();
    let (status, run) = post(
        &one,
        &format!("/assistant/conversations/{id}/messages"),
        json!({"text": "What is mcp-actions?"}),
    )
    .await;
    assert_eq!(status, 202, "{run}");
    let run = run["id"].as_str().unwrap().to_string();
    let first = events(&one, &run, 0, "approval.required").await;
    let question = first.last().unwrap().1.clone();
    assert_eq!(question["type"], "approval.required", "{first:?}");

    one.kill9();
    let call_id = question["callId"].as_str().unwrap();
    let (status, body) = post(
        &two,
        &format!("/assistant/runs/{run}/approvals/{call_id}"),
        json!({"approve": true}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let rest = events(&two, &run, first.last().unwrap().0, "").await;
    let kinds: Vec<&str> = rest
        .iter()
        .map(|(_, e)| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"tool.started"), "{rest:?}");
    assert!(kinds.contains(&"tool.completed"));
    assert_eq!(kinds.last(), Some(&"run.completed"));
    let answer = rest
        .iter()
        .find(|(_, e)| e["type"] == "message.completed")
        .unwrap();
    assert_eq!(answer.1["text"], "Finished by the second process.");
    let ids: Vec<i64> = first.iter().chain(rest.iter()).map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as i64).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
}
