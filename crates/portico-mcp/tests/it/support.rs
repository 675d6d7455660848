//! Shared helpers: peers from the environment, connectors with short limits, log capture.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portico_mcp::{Connector, Limits, UrlPolicy};

/// The URL or token a peer variable holds. Without it the test fails (the test script starts the
/// peers), unless `PORTICO_TEST_MCP=skip` says explicitly to leave the real-server tests out.
pub fn peer(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("PORTICO_TEST_MCP").as_deref() == Ok("skip") => {
            eprintln!("skipped: {var} is not set and PORTICO_TEST_MCP=skip");
            None
        }
        _ => panic!(
            "{var} is not set: run ./scripts/test.sh (start_mcp_peers in scripts/lib/mcp-peers.sh starts the real MCP servers), or set PORTICO_TEST_MCP=skip"
        ),
    }
}

/// A connector for loopback with the given idle timeout and otherwise default limits.
pub fn connector(idle: Duration) -> Connector {
    connector_with(Limits {
        idle_timeout: idle,
        ..Limits::default()
    })
}

/// A connector for loopback with these limits.
pub fn connector_with(limits: Limits) -> Connector {
    Connector::new(UrlPolicy::loopback_allowed(), limits).expect("connector")
}

/// Captures every log line (all levels) written while the guard lives, on this thread; use
/// with a current-thread runtime so every spawned task logs here too.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing logs at TRACE level for this thread.
pub fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, guard)
}
