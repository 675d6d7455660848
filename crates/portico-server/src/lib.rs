//! Portico's server: configuration, API authentication, the HTTP application and `serve`.

pub mod actions;
pub mod app;
pub mod assistant;
pub mod auth;
pub mod config;
pub mod credentials;
pub mod directory;
pub mod error;
pub mod routes;
pub mod serve;

pub use app::{AppState, app};
pub use config::{Config, ConfigSources};
