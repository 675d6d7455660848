//! HTTP tests of the server on both databases: the router driven directly, and (for auth flows
//! that a real provider redirects back into) on a loopback socket.

mod actions;
mod assistant;
mod auth_local;
mod auth_oidc;
mod catalog_api;
mod embedded_model;
mod live;
mod model_grammars;
mod oidc;
mod scripted_model;
mod support;
mod ui;
