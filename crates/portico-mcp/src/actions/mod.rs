//! Portal Actions: a registry of actions that domain crates register (catalog, auth …), run with
//! the caller's identity and validated against their schemas, and the MCP server that exposes
//! them as tools (`/api/mcp-actions/v1`), whole or as named subsets.

pub mod endpoint;
pub mod filter;
pub mod registry;
pub mod server;

pub use endpoint::{ActionsEndpoint, mcp_service};
pub use filter::{ActionFilter, ActionRule, SubsetConfig};
pub use registry::{
    Action, ActionError, ActionFuture, ActionSpec, ActionsRegistry, Attributes, Caller, FnAction,
    RegistryError, tool_name,
};
pub use server::ActionsServer;
