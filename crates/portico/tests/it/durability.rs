//! Crashes and shutdowns of the real `portico serve`, on SQLite and on PostgreSQL:
//!
//! - SIGKILL while a large location is being ingested, then a restart on the same data: the
//!   catalog ends up complete and consistent (exact counts, no duplicates, every relation in
//!   both directions, the search rows agreeing with the entities);
//! - SIGTERM while many writes are in flight: the process exits 0 and every write it
//!   acknowledged (201) is there after a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve_support::{Db, Server, Setup, TOKEN, database_url, entity_ref, wait_for};

const GROUPS: usize = 10;
const COMPONENTS: usize = 3000;
const PER_FILE: usize = 100;
const COMPONENT_FILTER: &str = "filter=kind=component,spec.type=durability-test";
const GROUP_FILTER: &str = "filter=kind=group,spec.type=durability-test";

fn group_name(g: usize) -> String {
    format!("dur-team-{g:02}")
}

fn component_name(i: usize) -> String {
    format!("dur-svc-{i:05}")
}

fn owner_of(i: usize) -> usize {
    i % GROUPS
}

/// Writes the generated location: `components-NN.yaml` files of `PER_FILE` Components each,
/// then `groups.yaml` (read last: files are read in name order).
fn write_catalog(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for file in 0..COMPONENTS / PER_FILE {
        let mut text = String::new();
        for i in file * PER_FILE..(file + 1) * PER_FILE {
            write!(
                text,
                "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  description: Generated component {i} for the crash test\n  tags: [durability, batch-{batch}, {parity}]\n  labels:\n    portico.example.com/shard: s{shard}\n  annotations:\n    portico.example.com/index: '{i}'\n    backstage.io/source-location: 'url:https://git.example.com/svc/{name}'\nspec:\n  type: durability-test\n  lifecycle: production\n  owner: {owner}\n  system: dur-system-{system}\n",
                name = component_name(i),
                batch = i / 500,
                parity = if i % 2 == 0 { "even" } else { "odd" },
                shard = i % 7,
                owner = group_name(owner_of(i)),
                system = i % 3,
            )
            .unwrap();
        }
        std::fs::write(dir.join(format!("components-{file:02}.yaml")), text).unwrap();
    }
    let mut text = String::new();
    for g in 0..GROUPS {
        write!(
            text,
            "---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: {}\nspec:\n  type: durability-test\n  children: []\n",
            group_name(g)
        )
        .unwrap();
    }
    std::fs::write(dir.join("groups.yaml"), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_ingestion_then_restart_is_consistent_on_sqlite() {
    sigkill_during_ingestion(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_ingestion_then_restart_is_consistent_on_postgres() {
    sigkill_during_ingestion(Db::Postgres).await;
}

/// How often a fresh attempt is made when ingestion finished between two looks.
const ATTEMPTS: usize = 3;

async fn sigkill_during_ingestion(db: Db) {
    for attempt in 1..=ATTEMPTS {
        let Some(url) = database_url(db).await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let catalog = dir.path().join("catalog");
        write_catalog(&catalog);
        let mut setup = Setup::in_dir(dir, &[catalog], &url);
        let mut server = setup.start().await;

        // Kill as soon as some, but not all, of the location is visible.
        let deadline = Instant::now() + Duration::from_secs(120);
        let visible_at_kill = loop {
            let visible = server.count(COMPONENT_FILTER).await;
            if visible > 0 && (visible as usize) < COMPONENTS {
                server.kill9();
                break Some(visible);
            }
            if visible as usize == COMPONENTS {
                break None;
            }
            assert!(
                Instant::now() < deadline,
                "{db:?}: ingestion did not begin within 120 s; log:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let Some(visible_at_kill) = visible_at_kill else {
            eprintln!(
                "{db:?}: attempt {attempt}: ingestion finished between two looks; trying again on a fresh database"
            );
            continue;
        };
        eprintln!("{db:?}: SIGKILL with {visible_at_kill} of {COMPONENTS} components visible");

        let server = setup.start().await;
        wait_for(
            "every generated entity after the restart",
            Duration::from_secs(300),
            || async {
                let components = server.count(COMPONENT_FILTER).await;
                let groups = server.count(GROUP_FILTER).await;
                (components as usize == COMPONENTS && groups as usize == GROUPS).then_some(())
            },
        )
        .await;
        check_consistency(db, &server).await;
        return;
    }
    panic!(
        "{db:?}: in {ATTEMPTS} attempts ingestion of {COMPONENTS} entities always finished between two looks, so the kill never landed during it"
    );
}

async fn check_consistency(db: Db, server: &Server) {
    // Exact counts.
    assert_eq!(
        server.count(COMPONENT_FILTER).await as usize,
        COMPONENTS,
        "{db:?}"
    );
    assert_eq!(server.count(GROUP_FILTER).await as usize, GROUPS, "{db:?}");

    // Every component once, across cursor pages.
    let (items, total) = server.all_pages(COMPONENT_FILTER, 250).await;
    assert_eq!(total as usize, COMPONENTS, "{db:?}: totalItems");
    let refs: Vec<String> = items.iter().map(entity_ref).collect();
    let unique: BTreeSet<&String> = refs.iter().collect();
    assert_eq!(unique.len(), refs.len(), "{db:?}: duplicates across pages");
    let expected: BTreeSet<String> = (0..COMPONENTS)
        .map(|i| format!("component:default/{}", component_name(i)))
        .collect();
    assert_eq!(
        unique.into_iter().cloned().collect::<BTreeSet<_>>(),
        expected,
        "{db:?}: the pages are not exactly the generated components"
    );

    // Each component's relations include its owner (once) and its system.
    let mut owned: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for item in &items {
        let me = entity_ref(item);
        let owner = format!(
            "group:default/{}",
            item["spec"]["owner"].as_str().expect("spec.owner")
        );
        let relations = item["relations"]
            .as_array()
            .unwrap_or_else(|| panic!("{me}: no relations"));
        let owned_by: Vec<&Value> = relations
            .iter()
            .filter(|r| r["type"] == "ownedBy")
            .map(|r| &r["targetRef"])
            .collect();
        assert_eq!(owned_by, [&json!(owner)], "{db:?}: {me} ownedBy relations");
        assert!(
            relations.iter().any(|r| r["type"] == "partOf"),
            "{db:?}: {me} has no partOf relation: {relations:?}"
        );
        owned.entry(owner).or_default().insert(me);
    }

    // Each group owns exactly its components, by its relations and by the relation filter.
    for g in 0..GROUPS {
        let group_ref = format!("group:default/{}", group_name(g));
        let (status, group) = server
            .get(&format!(
                "/entities/by-name/group/default/{}",
                group_name(g)
            ))
            .await;
        assert_eq!(status, 200, "{db:?}: {group_ref}: {group}");
        let owner_of: BTreeSet<String> = group["relations"]
            .as_array()
            .expect("relations")
            .iter()
            .filter(|r| r["type"] == "ownerOf")
            .map(|r| r["targetRef"].as_str().unwrap().to_string())
            .collect();
        let expected = owned.get(&group_ref).cloned().unwrap_or_default();
        assert_eq!(
            expected.len(),
            COMPONENTS / GROUPS,
            "{db:?}: {group_ref} owns the wrong number of components"
        );
        assert_eq!(owner_of, expected, "{db:?}: {group_ref} ownerOf relations");
        let by_filter = server
            .count(&format!(
                "filter=kind=component,relations.ownedBy={group_ref}"
            ))
            .await;
        assert_eq!(
            by_filter as usize,
            expected.len(),
            "{db:?}: the relations.ownedBy filter disagrees with {group_ref}'s ownerOf"
        );
    }

    // The search rows agree with the entities: one facet count per tag, no leftovers.
    let (status, facets) = server
        .get(&format!(
            "/entity-facets?facet=metadata.tags&{COMPONENT_FILTER}"
        ))
        .await;
    assert_eq!(status, 200, "{db:?}: {facets}");
    let counts: BTreeMap<String, u64> = facets["facets"]["metadata.tags"]
        .as_array()
        .expect("metadata.tags facet")
        .iter()
        .map(|f| {
            (
                f["value"].as_str().unwrap().to_string(),
                f["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts.get("durability"),
        Some(&(COMPONENTS as u64)),
        "{db:?}: {counts:?}"
    );
    assert_eq!(
        counts.get("even"),
        Some(&(COMPONENTS as u64 / 2)),
        "{db:?}: {counts:?}"
    );
    assert_eq!(
        counts.get("odd"),
        Some(&(COMPONENTS as u64 / 2)),
        "{db:?}: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_keeps_every_acknowledged_write_on_sqlite() {
    sigterm_during_writes(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_keeps_every_acknowledged_write_on_postgres() {
    sigterm_during_writes(Db::Postgres).await;
}

const WRITERS: usize = 16;
const WRITES_PER_WRITER: usize = 200;

/// What the writers saw.
#[derive(Default)]
struct Outcomes {
    /// Names the server answered 201 for.
    acknowledged: Vec<String>,
    /// Of those, the ones sent before SIGTERM and answered after it.
    acknowledged_across_sigterm: usize,
    /// Other HTTP answers: (name, status, body).
    other_status: Vec<(String, u16, String)>,
    /// Requests that got no answer (connection refused or closed).
    no_answer: usize,
}

fn managed_component(name: &str) -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "tags": ["shutdown-test"]},
        "spec": {"type": "shutdown-test", "lifecycle": "production", "owner": "shutdown-team"}
    })
}

async fn sigterm_during_writes(db: Db) {
    let Some(url) = database_url(db).await else {
        return;
    };
    let mut setup = Setup::new(&[], &url);
    let mut server = setup.start().await;
    let endpoint = format!("{}/api/catalog/managed", server.base);

    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let acked = Arc::new(AtomicUsize::new(0));
    let terminated = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (http, endpoint) = (http.clone(), endpoint.clone());
        let (outcomes, acked, terminated) = (outcomes.clone(), acked.clone(), terminated.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..WRITES_PER_WRITER {
                let name = format!("term-w{w:02}-{i:04}");
                let sent_before_sigterm = !terminated.load(Ordering::SeqCst);
                let answer = http
                    .post(&endpoint)
                    .bearer_auth(TOKEN)
                    .json(&managed_component(&name))
                    .send()
                    .await;
                let answer = match answer {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        Ok((status, response.text().await.unwrap_or_default()))
                    }
                    Err(e) => Err(e),
                };
                let mut outcomes = outcomes.lock().unwrap();
                match answer {
                    Ok((201, _)) => {
                        if sent_before_sigterm && terminated.load(Ordering::SeqCst) {
                            outcomes.acknowledged_across_sigterm += 1;
                        }
                        outcomes.acknowledged.push(name);
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok((status, body)) => outcomes.other_status.push((name, status, body)),
                    Err(_) => {
                        outcomes.no_answer += 1;
                        // The server is going away: this writer is done.
                        return;
                    }
                }
            }
        }));
    }

    // Let writes flow, then ask the server to stop while they are in flight.
    wait_for(
        "the first acknowledged writes",
        Duration::from_secs(60),
        || async { (acked.load(Ordering::SeqCst) >= 50).then_some(()) },
    )
    .await;
    terminated.store(true, Ordering::SeqCst);
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(60)).await;
    let log = server.log();
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(120), writer)
            .await
            .expect("writers finish once the server is gone")
            .expect("writer task");
    }
    assert_eq!(
        status.code(),
        Some(0),
        "{db:?}: portico serve must exit 0 after SIGTERM; log:\n{log}"
    );
    drop(server);

    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    eprintln!(
        "{db:?}: {} writes acknowledged ({} of them sent before SIGTERM and answered after it), {} unanswered, {} other answers",
        outcomes.acknowledged.len(),
        outcomes.acknowledged_across_sigterm,
        outcomes.no_answer,
        outcomes.other_status.len()
    );
    // Answers other than 201 are not acknowledgements; concurrent_writes.rs holds writes to
    // always succeed, this test only that none that succeeded is lost.
    if let Some((name, status, body)) = outcomes.other_status.first() {
        eprintln!("{db:?}: e.g. {name}: {status} {body}");
    }

    // After a restart every acknowledged write is there, whole.
    let server = setup.start().await;
    let refs: Vec<String> = outcomes
        .acknowledged
        .iter()
        .map(|n| format!("component:default/{n}"))
        .collect();
    let (status, body) = server
        .post("/entities/by-refs", &json!({ "entityRefs": refs }))
        .await;
    assert_eq!(status, 200, "{db:?}: {body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), refs.len());
    let lost: Vec<&String> = refs
        .iter()
        .zip(items)
        .filter(|(_, item)| !item.is_object())
        .map(|(r, _)| r)
        .collect();
    assert!(
        lost.is_empty(),
        "{db:?}: {} acknowledged writes are missing after the restart, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    for item in items {
        let owned_by = item["relations"]
            .as_array()
            .map(|rs| {
                rs.iter().any(|r| {
                    r["type"] == "ownedBy" && r["targetRef"] == "group:default/shutdown-team"
                })
            })
            .unwrap_or(false);
        assert!(
            owned_by,
            "{db:?}: {} lost its ownedBy relation",
            entity_ref(item)
        );
    }
    let stored = server
        .count("filter=kind=component,spec.type=shutdown-test")
        .await as usize;
    let unacknowledged = outcomes.no_answer + outcomes.other_status.len();
    assert!(
        stored >= refs.len() && stored <= refs.len() + unacknowledged,
        "{db:?}: {stored} stored, {} acknowledged, {unacknowledged} not acknowledged",
        refs.len(),
    );
}
