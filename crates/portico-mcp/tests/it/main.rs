//! portico-mcp integration tests, one binary: real MCP servers started by
//! `scripts/lib/mcp-peers.sh` (skipped with a notice when their variables are unset), the pool,
//! and hostile servers written here.

mod fake;
mod hostile;
mod pool;
mod real_servers;
mod support;
