//! Running the real `portico serve` for end-to-end tests: a configuration in a temporary folder,
//! the process with its address read from its first stdout line, a guard that kills it on drop,
//! a database per backend (SQLite in the data directory, or a fresh PostgreSQL database), and a
//! small HTTP client with bounded waits.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The static token every test server accepts.
pub const TOKEN: &str = "e2e-test-token-0123456789abcdef";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// SQLite in the data directory.
    Sqlite,
    /// A fresh database on the server of `PORTICO_TEST_POSTGRES_URL`.
    Postgres,
}

/// The database URL for `db` (empty for SQLite), or `None` when PostgreSQL is explicitly skipped
/// with `PORTICO_TEST_POSTGRES=skip`. Each call makes a new PostgreSQL database.
pub async fn database_url(db: Db) -> Option<String> {
    match db {
        Db::Sqlite => Some(String::new()),
        Db::Postgres => {
            if std::env::var("PORTICO_TEST_POSTGRES").as_deref() == Ok("skip") {
                eprintln!("PostgreSQL skipped: PORTICO_TEST_POSTGRES=skip");
                return None;
            }
            let base = std::env::var("PORTICO_TEST_POSTGRES_URL").expect(
                "PORTICO_TEST_POSTGRES_URL is not set: run ./scripts/test.sh, or set PORTICO_TEST_POSTGRES=skip to test SQLite only",
            );
            let (store, name) = portico_store::testing::fresh_postgres(&base)
                .await
                .expect("a fresh PostgreSQL test database");
            store.close().await;
            let (prefix, _) = base.rsplit_once('/').expect("a database URL with a path");
            Some(format!("{prefix}/{name}"))
        }
    }
}

/// A temporary folder holding the configuration, the data directory and the server logs.
pub struct Setup {
    /// Keeps the folder alive.
    pub dir: tempfile::TempDir,
    /// `--config`.
    pub config: PathBuf,
    /// `--data-dir`.
    pub data_dir: PathBuf,
    starts: usize,
}

impl Setup {
    /// Writes an app-config for a server on a free loopback port with the static token, reading
    /// `locations` (file locations), on `database_url` (empty: SQLite in the data directory).
    pub fn new(locations: &[PathBuf], database_url: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        Self::in_dir(dir, locations, database_url)
    }

    /// [`Setup::new`] in an existing folder (which may already hold generated catalog files).
    pub fn in_dir(dir: tempfile::TempDir, locations: &[PathBuf], database_url: &str) -> Self {
        let locations: Vec<Value> = locations
            .iter()
            .map(|p| json!({"type": "file", "target": p.display().to_string()}))
            .collect();
        // JSON is YAML: no quoting rules to get wrong.
        let config = json!({
            "backend": {
                "baseUrl": "http://127.0.0.1:0",
                "listen": {"host": "127.0.0.1", "port": 0},
                "database": {"url": database_url},
                "auth": {"externalAccess": [
                    {"type": "static", "options": {"token": TOKEN, "subject": "e2e-tests"}}
                ]}
            },
            "catalog": {"locations": locations, "refreshIntervalSeconds": 3600},
            // Replicas sharing PostgreSQL seal tokens with a configured key.
            "auth": {"tokenEncryption": {"keys": [
                {"id": "e2e", "secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
            ]}}
        });
        let config_path = dir.path().join("app-config.yaml");
        std::fs::write(&config_path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
        let data_dir = dir.path().join("data");
        Self {
            config: config_path,
            data_dir,
            dir,
            starts: 0,
        }
    }

    /// Starts `portico serve` on this setup and waits until it listens and is ready.
    pub async fn start(&mut self) -> Server {
        self.starts += 1;
        let log = self.dir.path().join(format!("serve-{}.log", self.starts));
        let server = Server::spawn(&self.config, &self.data_dir, &log);
        server.wait_ready().await;
        server
    }
}

/// A running `portico serve`, killed (SIGKILL) when dropped.
pub struct Server {
    child: Option<Child>,
    /// `http://ADDR`.
    pub base: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl Server {
    fn spawn(config: &Path, data_dir: &Path, log: &Path) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_portico"));
        command
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .current_dir(config.parent().unwrap())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(log).expect("log file")))
            .env("PORTICO_LOG", "info")
            .env("NO_COLOR", "1");
        // Every PORTICO_<PATH> variable is a configuration override: keep the caller's out.
        for (name, _) in std::env::vars() {
            if name.starts_with("PORTICO_") && name != "PORTICO_LOG" {
                command.env_remove(name);
            }
        }
        let mut child = command.spawn().expect("portico serve starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let mut server = Server {
            child: Some(child),
            base: String::new(),
            log: log.to_path_buf(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        };
        let first = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => panic!(
                "portico serve printed no first line within 60 s (exit: {:?}); its log:\n{}",
                server.try_exit(),
                server.log()
            ),
        };
        let address = first
            .strip_prefix("Portico is listening on http://")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first stdout line {first:?}; log:\n{}",
                    server.log()
                )
            });
        server.base = format!("http://{address}");
        server
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The server's stderr so far (its log), for failure messages.
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let url = format!("{}/readyz", self.base);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = self.http.get(&url).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{url} not ready within 60 s; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, and reap the process.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    /// Sends SIGTERM (the process keeps running until it has shut down).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit on its own and returns its status.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_exit() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "portico serve did not exit within {limit:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET /api/catalog{path}` with the token: status and JSON body (`Null` when empty).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// `POST /api/catalog{path}` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let url = format!("{}/api/catalog{path}", self.base);
        let mut request = self.http.request(method.clone(), &url).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url} failed: {e}; log:\n{}", self.log()));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    /// `totalItems` of `GET /entities/by-query?{query}&limit=1` (the query's `filter`s).
    pub async fn count(&self, filters: &str) -> u64 {
        let (status, body) = self
            .get(&format!("/entities/by-query?limit=1&{filters}"))
            .await;
        assert_eq!(status, 200, "by-query with {filters}: {body}");
        body["totalItems"]
            .as_u64()
            .unwrap_or_else(|| panic!("by-query with {filters} gave no totalItems: {body}"))
    }

    /// Every entity matching `filters`, paged through `by-query` with a cursor, `limit` at a
    /// time; checks that `totalItems` is the same on every page. Returns the items in order.
    pub async fn all_pages(&self, filters: &str, limit: usize) -> (Vec<Value>, u64) {
        let mut items = Vec::new();
        let mut total = None;
        let mut path =
            format!("/entities/by-query?limit={limit}&orderField=metadata.name,asc&{filters}");
        for page in 0.. {
            assert!(page < 10_000, "by-query cursor never ends");
            let (status, body) = self.get(&path).await;
            assert_eq!(status, 200, "GET {path}: {body}");
            let page_items = body["items"].as_array().expect("items").clone();
            assert!(
                page_items.len() <= limit,
                "page {page} larger than the limit"
            );
            let page_total = body["totalItems"].as_u64().expect("totalItems");
            assert_eq!(
                *total.get_or_insert(page_total),
                page_total,
                "totalItems changed on page {page}"
            );
            items.extend(page_items);
            match body["pageInfo"]["nextCursor"].as_str() {
                Some(cursor) => {
                    path = format!(
                        "/entities/by-query?limit={limit}&cursor={}",
                        urlencode(cursor)
                    );
                }
                None => break,
            }
        }
        (items, total.unwrap_or(0))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Percent-encodes a query parameter value.
pub fn urlencode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical reference of an entity in an API answer.
pub fn entity_ref(entity: &Value) -> String {
    format!(
        "{}:{}/{}",
        entity["kind"].as_str().unwrap_or_default(),
        entity["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default"),
        entity["metadata"]["name"].as_str().unwrap_or_default()
    )
    .to_lowercase()
}

/// Polls `probe` until it gives `Some`, for at most `limit`; panics with `what` otherwise.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
