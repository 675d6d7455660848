//! Portico's identity and credentials: who is calling (sign-in, user tokens, plugin tokens,
//! static tokens) and what Portico may send on a user's behalf (OAuth grants kept sealed in the
//! vault and handed out, refreshed once, by the broker).

pub mod broker;
pub mod config;
pub mod crypto;
pub mod flow;
pub mod identity;
pub mod keys;
pub mod plugin_tokens;
pub mod providers;
pub mod proxy;
pub mod service;
pub mod signin;
pub mod static_tokens;
pub mod user_tokens;
pub mod vault;

pub use broker::{Broker, BrokerError, LoginReason, ScopeSource};
pub use config::AuthConfig;
pub use crypto::Cipher;
pub use identity::{Identity, Principal};
pub use service::{Auth, AuthOptions};
pub use signin::UserDirectory;

/// Errors of the auth crate.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A configuration mistake; the message names the key to fix.
    #[error("{0}")]
    Config(String),
    /// A cryptographic operation failed (never carries secret material).
    #[error("crypto: {0}")]
    Crypto(&'static str),
    /// A value was sealed with a key that is not configured.
    #[error(
        "a stored secret was sealed with key \"{0}\", which is not in auth.tokenEncryption.keys"
    )]
    UnknownKey(String),
    /// A provider failed.
    #[error("{0}")]
    Provider(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] portico_store::sqlx::Error),
}

impl From<portico_store::StoreError> for AuthError {
    fn from(e: portico_store::StoreError) -> Self {
        AuthError::Provider(e.to_string())
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
