//! Portico's MCP client: rmcp's streamable HTTP transport and Portico's own legacy HTTP+SSE
//! transport, credentials sent only to the selected remote's origin, limits on every call, the
//! remote URL policy (checked after DNS), and a pool of sessions with model-safe tool names.
//! Also the other direction: the Portal Actions registry and the MCP server that exposes it.

pub mod actions;
pub mod client;
pub mod credentials;
pub mod error;
mod http;
pub mod limits;
pub mod names;
pub mod policy;
pub mod pool;
mod recording;
mod sse;

pub use client::{Connector, Progress, Remote, Session, ToolInfo, ToolOutcome, TransportKind};
pub use credentials::{Credential, CredentialError, CredentialFuture, Credentials, NoCredentials};
pub use error::{ErrorAction, McpError};
pub use limits::Limits;
pub use policy::{IpRange, PolicyError, UrlPolicy};
pub use pool::{ExposedTool, McpTools, Pool, PoolConfig, ServerSpec, ToolListing};
pub use tokio_util::sync::CancellationToken;
