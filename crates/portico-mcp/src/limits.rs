//! Limits on every connection and call, all configurable.

use std::time::Duration;

/// Time and size limits for one server's client.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time to open a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Time a call may go without any answer or progress notification.
    pub idle_timeout: Duration,
    /// Total time a call may take, progress or not.
    pub call_timeout: Duration,
    /// Largest JSON response body accepted.
    pub max_response_bytes: usize,
    /// Largest single SSE event accepted.
    pub max_event_bytes: usize,
    /// Calls in flight at once per server session; more wait their turn.
    pub max_concurrent_calls: usize,
    /// Most `tools/list` pages read before giving up.
    pub max_list_pages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            call_timeout: Duration::from_secs(30 * 60),
            max_response_bytes: 16 * 1024 * 1024,
            max_event_bytes: 16 * 1024 * 1024,
            max_concurrent_calls: 16,
            max_list_pages: 100,
        }
    }
}
