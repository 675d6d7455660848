//! `bench/catalog`: loads a generated catalog of N entities (default 100,000) into a real
//! `portico serve` on SQLite and on PostgreSQL, then prints ingest entities/s, p50/p99 latency of a
//! filtered `by-query` and of a `by-name` lookup over HTTP, the server's resident memory, and
//! beside each query the same question asked of the database directly by this program (the
//! floor). Run it through `bench/catalog/run.sh`, which builds the release binary and starts
//! PostgreSQL.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portico_store::sqlx::{self, Row};
use serde_json::Value;

const TOKEN: &str = "bench-token-0123456789abcdef";
const FILTER_QUERY: &str =
    "/api/catalog/entities/by-query?filter=kind=api,spec.type=mcp-server&limit=20";
const SAMPLES: usize = 500;

struct Args {
    entities: usize,
    portico: PathBuf,
    postgres_url: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        entities: 100_000,
        portico: PathBuf::from("target/release/portico"),
        postgres_url: std::env::var("PORTICO_TEST_POSTGRES_URL").ok(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--entities" => {
                args.entities = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--entities N")
            }
            "--portico" => args.portico = PathBuf::from(it.next().expect("--portico PATH")),
            "--postgres-url" => args.postgres_url = it.next(),
            "--sqlite-only" => args.postgres_url = None,
            other => panic!(
                "unknown argument {other}; use --entities N, --portico PATH, --postgres-url URL, --sqlite-only"
            ),
        }
    }
    args
}

/// Writes the catalog: a few groups, MCP server APIs (every tenth entity), OpenAPI APIs and
/// Components, 1,000 documents per file. Returns the names of the MCP servers.
fn generate(dir: &Path, n: usize) -> Vec<String> {
    std::fs::create_dir_all(dir).expect("catalog folder");
    let mut names = Vec::new();
    let mut file = None;
    for i in 0..n {
        if i % 1000 == 0 {
            file = Some(
                std::fs::File::create(dir.join(format!("part-{:04}.yaml", i / 1000)))
                    .expect("catalog file"),
            );
        }
        let out = file.as_mut().expect("open file");
        let team = format!("team-{}", i % 50);
        let doc = if i < 50 {
            format!(
                "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: {team}\nspec:\n  type: team\n  children: []\n"
            )
        } else if i % 10 == 0 {
            let name = format!("mcp-{i}");
            names.push(name.clone());
            format!(
                "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: {name}\n  title: MCP server {i}\n  description: Tools number {i}\n  annotations:\n    mcp.spotify.com/schema-version: '2025-09-29'\n  tags: [mcp, tools]\nspec:\n  type: mcp-server\n  lifecycle: production\n  owner: {team}\n  definition: |\n    name: com.example/{name}\n    description: Tools number {i}\n    version: 1.0.{i}\n    remotes:\n      - type: streamable-http\n        url: https://{name}.example.com/mcp\n"
            )
        } else if i % 10 < 4 {
            format!(
                "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: api-{i}\n  tags: [rest]\nspec:\n  type: openapi\n  lifecycle: production\n  owner: {team}\n  definition: 'openapi: 3.0.0'\n"
            )
        } else {
            format!(
                "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc-{i}\n  labels:\n    tier: t{}\n  tags: [java, service]\nspec:\n  type: service\n  lifecycle: production\n  owner: {team}\n  providesApis: [api-{}]\n",
                i % 3,
                i - i % 10 + 1
            )
        };
        write!(out, "---\n{doc}").expect("write catalog");
    }
    names
}

/// A running `portico serve`, killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(portico: &Path, work: &Path, catalog: &Path, database_url: &str) -> Server {
    let config = work.join("app-config.yaml");
    std::fs::write(
        &config,
        format!(
            "backend:\n  listen: {{port: 0}}\n  database: {{url: '{database_url}'}}\n  auth:\n    externalAccess:\n      - type: static\n        options: {{token: {TOKEN}, subject: bench}}\ncatalog:\n  refreshIntervalSeconds: 86400\n  locations:\n    - type: file\n      target: '{}'\n",
            catalog.display()
        ),
    )
    .expect("config");
    let mut child = Command::new(portico)
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(work.join("data"))
        .env("PORTICO_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start portico (build it with cargo build --release -p portico)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let address = line
        .trim()
        .rsplit("http://")
        .next()
        .expect("listening line")
        .to_string();
    Server {
        child,
        base: format!("http://{address}"),
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

struct Figures {
    backend: &'static str,
    ingest_per_s: f64,
    filtered: (Duration, Duration),
    filtered_floor: (Duration, Duration),
    by_name: (Duration, Duration),
    by_name_floor: (Duration, Duration),
    rss_mib: f64,
}

async fn get(http: &reqwest::Client, url: &str) -> Value {
    let response = http
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.expect("JSON body")
}

async fn timed<F: AsyncFnMut(usize)>(mut f: F) -> (Duration, Duration) {
    for i in 0..50 {
        f(i).await;
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let started = Instant::now();
        f(i).await;
        samples.push(started.elapsed());
    }
    (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99),
    )
}

async fn measure(
    backend: &'static str,
    args: &Args,
    catalog: &Path,
    names: &[String],
    database_url: String,
) -> Figures {
    let work = tempdir(backend);
    let http = reqwest::Client::new();
    let started = Instant::now();
    let server = start(&args.portico, &work, catalog, &database_url);
    let count_url = format!("{}/api/catalog/entities/by-query?limit=1", server.base);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Ok(response) = http.get(&count_url).bearer_auth(TOKEN).send().await
            && let Ok(body) = response.json::<Value>().await
            && body["totalItems"].as_u64() == Some(args.entities as u64)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "ingest did not finish in 30 minutes"
        );
    }
    let ingest_per_s = args.entities as f64 / started.elapsed().as_secs_f64();
    // The server refreshes its planner statistics right after the load; let it finish.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let filtered_url = format!("{}{FILTER_QUERY}", server.base);
    let expected_total = names.len() as u64;
    let body = get(&http, &filtered_url).await;
    assert_eq!(
        body["totalItems"].as_u64(),
        Some(expected_total),
        "the filter finds every MCP server"
    );
    let filtered = timed(async |_| {
        get(&http, &filtered_url).await;
    })
    .await;
    let by_name = timed(async |i| {
        get(
            &http,
            &format!(
                "{}/api/catalog/entities/by-name/api/default/{}",
                server.base,
                names[i * 7919 % names.len()]
            ),
        )
        .await;
    })
    .await;

    let store_url = if database_url.is_empty() {
        portico_store::sqlite_url(&work.join("data/portico.db"))
    } else {
        database_url.clone()
    };
    portico_store::sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&store_url)
        .await
        .expect("open the database directly");
    // The floor: what a DBA would write by hand for this question on this schema: the
    // `spec.type` rows of API references straight off the covering index, the 20 first joined to
    // their entities, and the count off the same index range.
    let filtered_floor = timed(async |_| {
        let rows = sqlx::query(
            "SELECT e.entity FROM catalog_search d JOIN catalog_entities e ON e.entity_ref = d.entity_ref
             WHERE d.key = 'spec.type' AND d.value = 'mcp-server' AND d.entity_ref >= 'api:' AND d.entity_ref < 'api;'
             ORDER BY d.entity_ref LIMIT 20",
        )
        .fetch_all(&pool)
        .await
        .expect("floor query");
        let total: i64 = sqlx::query(
            "SELECT COUNT(*) FROM catalog_search
             WHERE key = 'spec.type' AND value = 'mcp-server' AND entity_ref >= 'api:' AND entity_ref < 'api;'",
        )
        .fetch_one(&pool)
        .await
        .expect("floor count")
        .get(0);
        assert_eq!((rows.len(), total as u64), (20, expected_total));
        for row in rows {
            let _: Value = serde_json::from_str(&row.get::<String, _>(0)).expect("entity JSON");
        }
    })
    .await;
    let by_name_floor = timed(async |i| {
        let row = sqlx::query("SELECT entity FROM catalog_entities WHERE entity_ref = $1")
            .bind(format!("api:default/{}", names[i * 7919 % names.len()]))
            .fetch_one(&pool)
            .await
            .expect("floor lookup");
        let _: Value = serde_json::from_str(&row.get::<String, _>(0)).expect("entity JSON");
    })
    .await;
    pool.close().await;
    let rss_mib = rss_kib(server.child.id()) as f64 / 1024.0;
    drop(server);
    let _ = std::fs::remove_dir_all(&work);
    Figures {
        backend,
        ingest_per_s,
        filtered,
        filtered_floor,
        by_name,
        by_name_floor,
        rss_mib,
    }
}

fn tempdir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "portico-bench-catalog-{label}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("work folder");
    dir
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let catalog = tempdir("catalog");
    let names = generate(&catalog, args.entities);
    println!(
        "bench/catalog: {} entities ({} MCP servers), queries sequential over loopback HTTP, {SAMPLES} samples after 50 warm-up",
        args.entities,
        names.len()
    );
    let mut figures = vec![measure("SQLite", &args, &catalog, &names, String::new()).await];
    match &args.postgres_url {
        Some(base) => {
            let (store, name) = portico_store::testing::fresh_postgres(base)
                .await
                .expect("fresh PostgreSQL database");
            store.close().await;
            let url = format!(
                "{}/{name}",
                base.rsplit_once('/').map_or(base.as_str(), |(p, _)| p)
            );
            figures.push(measure("PostgreSQL", &args, &catalog, &names, url).await);
        }
        None => println!("(PostgreSQL skipped: no --postgres-url or PORTICO_TEST_POSTGRES_URL)"),
    }
    println!();
    println!(
        "{:<11} {:>12}  {:>24} {:>24} {:>8}  {:>24} {:>24}  {:>9}",
        "backend",
        "ingest/s",
        "filtered p50 / p99",
        "floor p50 / p99",
        "ratio",
        "by-name p50 / p99",
        "floor p50 / p99",
        "RSS"
    );
    for f in &figures {
        println!(
            "{:<11} {:>12.0}  {:>24} {:>24} {:>7.2}x  {:>24} {:>24}  {:>6.1} MiB",
            f.backend,
            f.ingest_per_s,
            format!("{} / {}", ms(f.filtered.0), ms(f.filtered.1)),
            format!("{} / {}", ms(f.filtered_floor.0), ms(f.filtered_floor.1)),
            f.filtered.0.as_secs_f64() / f.filtered_floor.0.as_secs_f64(),
            format!("{} / {}", ms(f.by_name.0), ms(f.by_name.1)),
            format!("{} / {}", ms(f.by_name_floor.0), ms(f.by_name_floor.1)),
            f.rss_mib
        );
    }
    println!("goal: filtered p50 <= 2 ms on SQLite and within 2x of the floor");
    let _ = std::fs::remove_dir_all(&catalog);
}
