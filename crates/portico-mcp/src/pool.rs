//! A pool of sessions keyed by (user, server, credential identity, remote): reuses sessions,
//! evicts idle ones, caches `tools/list` until `notifications/tools/list_changed` or a TTL,
//! and exposes each tool under a model-safe name that it maps back on call.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{OnceCell, mpsc};
use tokio_util::sync::CancellationToken;

use crate::client::{Connector, Progress, Remote, Session, ToolInfo, ToolOutcome};
use crate::credentials::Credentials;
use crate::error::McpError;
use crate::names::model_safe_name;

/// A server the caller may use: its entity ref and selected remote.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerSpec {
    /// The entity ref (`api:default/github`).
    pub id: String,
    /// The remote from the catalog.
    pub remote: Remote,
}

/// A tool as exposed to a model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExposedTool {
    /// The model-safe name.
    pub name: String,
    /// The server's entity ref.
    pub server: String,
    /// The tool as the server describes it.
    pub tool: ToolInfo,
}

/// The tools of several servers, and the servers that failed (with why).
#[derive(Debug, Default)]
pub struct ToolListing {
    /// Tools that can be offered to the model.
    pub tools: Vec<ExposedTool>,
    /// Servers whose tools could not be listed: entity ref and error.
    pub failures: Vec<(String, McpError)>,
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Sessions unused this long are closed.
    pub session_idle_ttl: Duration,
    /// A cached tool list is refreshed after this long even without `list_changed`.
    pub tools_ttl: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            session_idle_ttl: Duration::from_secs(5 * 60),
            tools_ttl: Duration::from_secs(10 * 60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    user: String,
    server: String,
    credential: String,
    remote: Remote,
}

struct CachedTools {
    generation: u64,
    at: Instant,
    tools: Arc<Vec<ToolInfo>>,
}

#[derive(Default)]
struct Entry {
    session: OnceCell<Arc<Session>>,
    last_used: Mutex<Option<Instant>>,
    in_flight: AtomicUsize,
    tools: Mutex<Option<CachedTools>>,
}

impl Entry {
    fn touch(&self) {
        if let Ok(mut t) = self.last_used.lock() {
            *t = Some(Instant::now());
        }
    }
}

/// Marks a call in flight on an entry until dropped.
struct InFlight(Arc<Entry>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A boxed future for the object-safe [`McpTools`] trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The seam the rest of Portico uses: list a user's tools across servers, call one by its
/// model-safe name. Every call takes a cancellation token.
pub trait McpTools: Send + Sync {
    /// Tools of `servers` for `user`, under model-safe names. A server that fails is reported
    /// beside the tools that worked.
    fn tools<'a>(
        &'a self,
        user: &'a str,
        servers: &'a [ServerSpec],
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, ToolListing>;

    /// Calls the tool listed as `name` for `user` (by the latest listing of its server).
    fn call<'a>(
        &'a self,
        user: &'a str,
        name: &'a str,
        arguments: Option<serde_json::Map<String, Value>>,
        progress: Option<mpsc::UnboundedSender<Progress>>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ToolOutcome, McpError>>;
}

/// The session pool.
pub struct Pool {
    connector: Connector,
    credentials: Arc<dyn Credentials>,
    config: PoolConfig,
    entries: Mutex<HashMap<Key, Arc<Entry>>>,
    names: Mutex<HashMap<(String, String), (ServerSpec, String)>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

fn poisoned() -> McpError {
    McpError::Closed("the pool's state is broken".into())
}

impl Pool {
    /// A pool over `connector`, taking credentials from `credentials`.
    pub fn new(
        connector: Connector,
        credentials: Arc<dyn Credentials>,
        config: PoolConfig,
    ) -> Self {
        Self {
            connector,
            credentials,
            config,
            entries: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
        }
    }

    /// Number of open (or opening) sessions.
    pub fn session_count(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    /// Closes sessions unused for longer than the idle TTL; returns how many.
    pub async fn evict_idle(&self) -> usize {
        let ttl = self.config.session_idle_ttl;
        let evicted: Vec<Arc<Entry>> = match self.entries.lock() {
            Ok(mut entries) => {
                let stale: Vec<Key> = entries
                    .iter()
                    .filter(|(_, e)| {
                        e.in_flight.load(Ordering::Relaxed) == 0
                            && e.last_used
                                .lock()
                                .ok()
                                .and_then(|t| *t)
                                .is_some_and(|t| t.elapsed() >= ttl)
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                stale.iter().filter_map(|k| entries.remove(k)).collect()
            }
            Err(_) => Vec::new(),
        };
        // Close in the background: a slow DELETE must not hold up the caller.
        for e in &evicted {
            if let Some(s) = e.session.get().cloned() {
                tokio::spawn(async move { s.close().await });
            }
        }
        evicted.len()
    }

    /// Closes every session.
    pub async fn close_all(&self) {
        let all: Vec<Arc<Entry>> = match self.entries.lock() {
            Ok(mut e) => e.drain().map(|(_, v)| v).collect(),
            Err(_) => Vec::new(),
        };
        for e in all {
            if let Some(s) = e.session.get() {
                s.close().await;
            }
        }
    }

    async fn entry(
        &self,
        user: &str,
        server: &ServerSpec,
        cancel: &CancellationToken,
    ) -> Result<(Arc<Entry>, Arc<Session>), McpError> {
        let credential = self.credentials.credential(user, &server.id).await?;
        let key = Key {
            user: user.to_string(),
            server: server.id.clone(),
            credential: credential
                .as_ref()
                .map(|c| c.identity())
                .unwrap_or_default(),
            remote: server.remote.clone(),
        };
        let entry = {
            let mut entries = self.entries.lock().map_err(|_| poisoned())?;
            entries.entry(key.clone()).or_default().clone()
        };
        entry.touch();
        let session = entry
            .session
            .get_or_try_init(|| async {
                self.connector
                    .connect(&server.remote, credential, cancel)
                    .await
                    .map(Arc::new)
            })
            .await
            .cloned();
        match session {
            Ok(s) if !s.is_closed() => Ok((entry, s)),
            Ok(_) => {
                self.forget(&key, &entry);
                Err(McpError::Closed("the session ended; try again".into()))
            }
            Err(e) => {
                self.forget(&key, &entry);
                Err(e)
            }
        }
    }

    fn forget(&self, key: &Key, entry: &Arc<Entry>) {
        if let Ok(mut entries) = self.entries.lock()
            && entries.get(key).is_some_and(|e| Arc::ptr_eq(e, entry))
        {
            entries.remove(key);
        }
    }

    fn forget_entry(&self, entry: &Arc<Entry>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, e| !Arc::ptr_eq(e, entry));
        }
    }

    async fn server_tools(
        &self,
        user: &str,
        server: &ServerSpec,
        cancel: &CancellationToken,
    ) -> Result<Arc<Vec<ToolInfo>>, McpError> {
        let (entry, session) = self.entry(user, server, cancel).await?;
        let generation = session.tools_generation();
        if let Ok(cache) = entry.tools.lock()
            && let Some(c) = cache.as_ref()
            && c.generation == generation
            && c.at.elapsed() < self.config.tools_ttl
        {
            return Ok(c.tools.clone());
        }
        entry.in_flight.fetch_add(1, Ordering::Relaxed);
        let _guard = InFlight(entry.clone());
        let tools = match session.list_tools(cancel).await {
            Ok(t) => Arc::new(t),
            Err(e) => {
                if e.breaks_session() || session.is_closed() {
                    self.forget_entry(&entry);
                }
                return Err(e);
            }
        };
        if let Ok(mut cache) = entry.tools.lock() {
            *cache = Some(CachedTools {
                generation,
                at: Instant::now(),
                tools: tools.clone(),
            });
        }
        Ok(tools)
    }

    /// Lists the tools of `servers` (see [`McpTools::tools`]).
    pub async fn list(
        &self,
        user: &str,
        servers: &[ServerSpec],
        cancel: &CancellationToken,
    ) -> ToolListing {
        self.evict_idle().await;
        let results =
            futures::future::join_all(servers.iter().map(|s| self.server_tools(user, s, cancel)))
                .await;
        let mut out = Vec::new();
        let mut failures = Vec::new();
        let Ok(mut names) = self.names.lock() else {
            return ToolListing {
                tools: out,
                failures: vec![(String::new(), poisoned())],
            };
        };
        // The names of these servers now come from this listing only: a tool a server no
        // longer lists (or a server that failed) cannot be called by an old name.
        names.retain(|(u, _), (s, _)| u != user || !servers.iter().any(|l| l.id == s.id));
        for (server, result) in servers.iter().zip(results) {
            let tools = match result {
                Ok(t) => t,
                Err(e) => {
                    failures.push((server.id.clone(), e));
                    continue;
                }
            };
            for tool in tools.iter() {
                let name = model_safe_name(&server.id, &tool.name);
                let key = (user.to_string(), name.clone());
                match names.get(&key) {
                    Some((s, t)) if s.id != server.id || *t != tool.name => {
                        tracing::warn!(%name, server = %server.id, "tool name collision; tool left out");
                        continue;
                    }
                    _ => {
                        names.insert(key, (server.clone(), tool.name.clone()));
                    }
                }
                out.push(ExposedTool {
                    name,
                    server: server.id.clone(),
                    tool: tool.clone(),
                });
            }
        }
        ToolListing {
            tools: out,
            failures,
        }
    }

    /// Calls a tool by its model-safe name (see [`McpTools::call`]).
    pub async fn call_tool(
        &self,
        user: &str,
        name: &str,
        arguments: Option<serde_json::Map<String, Value>>,
        progress: Option<mpsc::UnboundedSender<Progress>>,
        cancel: &CancellationToken,
    ) -> Result<ToolOutcome, McpError> {
        let target = self
            .names
            .lock()
            .map_err(|_| poisoned())?
            .get(&(user.to_string(), name.to_string()))
            .cloned();
        let Some((server, tool)) = target else {
            return Err(McpError::UnknownTool(name.to_string()));
        };
        let (entry, session) = self.entry(user, &server, cancel).await?;
        entry.in_flight.fetch_add(1, Ordering::Relaxed);
        let _guard = InFlight(entry.clone());
        let result = session.call_tool(&tool, arguments, progress, cancel).await;
        if let Err(e) = &result
            && (e.breaks_session() || session.is_closed())
        {
            self.forget_entry(&entry);
        }
        result
    }
}

impl McpTools for Pool {
    fn tools<'a>(
        &'a self,
        user: &'a str,
        servers: &'a [ServerSpec],
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, ToolListing> {
        Box::pin(self.list(user, servers, cancel))
    }

    fn call<'a>(
        &'a self,
        user: &'a str,
        name: &'a str,
        arguments: Option<serde_json::Map<String, Value>>,
        progress: Option<mpsc::UnboundedSender<Progress>>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ToolOutcome, McpError>> {
        Box::pin(self.call_tool(user, name, arguments, progress, cancel))
    }
}
