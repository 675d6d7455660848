//! The client's one error type, classified by what the caller should do. Messages never carry
//! a credential: every message built from a peer's or library's text is redacted first.

use std::time::Duration;

use crate::credentials::CredentialError;
use crate::policy::PolicyError;

/// What the caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    /// Try again later; the server or network misbehaved.
    Retry,
    /// Sign in again or fix the credential.
    SignIn,
    /// Fix the request (tool name, arguments) or the server's configuration.
    Fix,
    /// Nothing: the caller cancelled.
    None,
}

/// An MCP client error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum McpError {
    /// The remote URL, an address or a redirect was refused by the policy.
    #[error("refused: {0}")]
    Refused(#[from] PolicyError),
    /// The credential could not be used.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// The server wants (other) credentials: HTTP 401 or 403.
    #[error("the server requires authorization{}", challenge.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    AuthRequired {
        /// The `WWW-Authenticate` challenge, when the server sent one.
        challenge: Option<String>,
    },
    /// Could not connect, or the connection broke.
    #[error("could not reach the server: {0}")]
    Connect(String),
    /// No answer or progress within the idle timeout.
    #[error("the server sent no answer and no progress for {0:?} (idle timeout)")]
    IdleTimeout(Duration),
    /// The call went past the total time cap.
    #[error("the call took longer than {0:?} (total time cap)")]
    CallTimeout(Duration),
    /// A response or event was larger than allowed.
    #[error("the server's answer was too large: {0}")]
    TooLarge(String),
    /// The server broke the protocol (malformed JSON, wrong shapes, bad status).
    #[error("the server broke the MCP protocol: {0}")]
    Protocol(String),
    /// The server failed or is overloaded (HTTP 5xx or 429).
    #[error("the server failed: HTTP status {status}{}", retry_after.as_ref().map(|r| format!(", retry after {r}")).unwrap_or_default())]
    Unavailable {
        /// The HTTP status.
        status: u16,
        /// Its `Retry-After`, when sent.
        retry_after: Option<String>,
    },
    /// The server answered with a JSON-RPC error.
    #[error("the server answered with error {code}: {message}")]
    Server {
        /// JSON-RPC error code.
        code: i32,
        /// Its message.
        message: String,
    },
    /// The session ended (server closed it or the transport died).
    #[error("the session with the server ended: {0}")]
    Closed(String),
    /// The caller cancelled.
    #[error("cancelled")]
    Cancelled,
    /// No tool by that name (or not one this caller may use).
    #[error("unknown tool {0}")]
    UnknownTool(String),
}

impl McpError {
    /// What the caller should do about it.
    pub fn action(&self) -> ErrorAction {
        match self {
            McpError::Refused(_) | McpError::UnknownTool(_) | McpError::Server { .. } => {
                ErrorAction::Fix
            }
            McpError::Credential(CredentialError::SignInRequired { .. })
            | McpError::AuthRequired { .. } => ErrorAction::SignIn,
            McpError::Credential(_) => ErrorAction::Fix,
            McpError::Cancelled => ErrorAction::None,
            _ => ErrorAction::Retry,
        }
    }

    /// Whether the session that produced this error is unusable and should be dropped.
    pub(crate) fn breaks_session(&self) -> bool {
        matches!(
            self,
            McpError::Closed(_)
                | McpError::Connect(_)
                | McpError::Protocol(_)
                | McpError::TooLarge(_)
        )
    }
}
