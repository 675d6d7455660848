//! The real `@backstage/catalog-client` against the real `portico serve`, on SQLite and on
//! PostgreSQL: `tests/catalog-client/client-test.mjs` registers its own entities next to
//! `examples/catalog` and checks every call a Backstage plugin makes (filters, refs, cursor
//! pages, facets, validation). Each of its steps must pass.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve_support::{Db, Setup, TOKEN, database_url, repo_root, wait_for};

/// The steps client-test.mjs runs; a step that silently goes missing fails the test too.
const STEPS: &[&str] = &[
    "register-generated-entities",
    "getEntities-mcp-servers",
    "getEntities-filter-is-case-insensitive",
    "getEntityByRef",
    "getEntityByRef-missing-is-undefined",
    "getEntitiesByRefs-order-and-missing",
    "queryEntities-cursor-pages-asc",
    "queryEntities-cursor-pages-desc",
    "queryEntities-prevCursor",
    "getEntityFacets-kind-and-tags",
    "getEntityFacets-with-filter",
    "validateEntity-valid",
    "validateEntity-invalid",
    "getEntities-filter-relations-ownedBy",
    "getEntities-filter-annotation-with-slash",
    "getEntities-filter-exists-and-or",
    "group-ownerOf-relations",
];

const EXAMPLES: &[&str] = &[
    "api:default/example-mcp",
    "api:default/github-mcp",
    "api:default/mcp-actions",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backstage_catalog_client_on_sqlite() {
    run(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backstage_catalog_client_on_postgres() {
    run(Db::Postgres).await;
}

async fn run(db: Db) {
    let client_dir = repo_root().join("tests/catalog-client");
    assert!(
        client_dir
            .join("node_modules/@backstage/catalog-client")
            .is_dir(),
        "tests/catalog-client/node_modules is missing: run `npm ci --prefix tests/catalog-client` (./scripts/test.sh does it)"
    );
    let Some(url) = database_url(db).await else {
        return;
    };
    let mut setup = Setup::new(&[repo_root().join("examples/catalog")], &url);
    let server = setup.start().await;

    // The examples arrive with the first background refresh.
    wait_for(
        "the examples/catalog entities",
        Duration::from_secs(60),
        || async {
            let (status, body) = server
                .post("/entities/by-refs", &json!({ "entityRefs": EXAMPLES }))
                .await;
            let items = body["items"].as_array()?;
            (status == 200 && items.iter().all(Value::is_object)).then_some(())
        },
    )
    .await;

    let (code, stdout, stderr) = run_node(
        Command::new("node")
            .arg(client_dir.join("client-test.mjs"))
            .arg(&server.base)
            .arg(TOKEN)
            .current_dir(repo_root()),
        Duration::from_secs(300),
    );

    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let step: Value = serde_json::from_str(line).unwrap_or_else(|e| {
            panic!(
                "client-test.mjs printed a line that is not JSON ({e}): {line}\nstderr:\n{stderr}"
            )
        });
        let name = step["step"].as_str().unwrap_or_default().to_string();
        if step["ok"] != json!(true) {
            failures.push(line.to_string());
        }
        seen.insert(name);
    }
    let missing: Vec<&&str> = STEPS.iter().filter(|s| !seen.contains(**s)).collect();
    assert!(
        failures.is_empty() && missing.is_empty() && code == Some(0),
        "{db:?}: the Backstage catalog client failed\nfailed steps:\n{}\nmissing steps: {missing:?}\nexit code: {code:?}\nstderr:\n{stderr}\nserver log:\n{}",
        failures.join("\n"),
        server.log()
    );
}

/// Runs a command to the end, with a time limit; returns exit code, stdout and stderr.
fn run_node(command: &mut Command, limit: Duration) -> (Option<i32>, String, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (is Node.js installed?)");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for node") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "client-test.mjs did not finish within {limit:?}; output so far is lost with it"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.code(),
        out_reader.join().unwrap(),
        err_reader.join().unwrap(),
    )
}
