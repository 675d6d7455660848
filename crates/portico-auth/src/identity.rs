//! Who a caller is, once authenticated: a user with the refs that count as them for ownership,
//! or a service (a static token, another plugin), possibly acting for a user.

use serde::{Deserialize, Serialize};

/// A signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The user entity ref, e.g. `user:default/jane`.
    pub user_entity_ref: String,
    /// Refs that count as this user for ownership (the user and their groups).
    pub ownership_entity_refs: Vec<String>,
}

impl Identity {
    /// A user owning only what names them directly.
    pub fn user(user_entity_ref: impl Into<String>) -> Self {
        let user_entity_ref = user_entity_ref.into();
        Self {
            ownership_entity_refs: vec![user_entity_ref.clone()],
            user_entity_ref,
        }
    }
}

/// An authenticated API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `user:default/jane` for users (also when a plugin acts for them), `external:<subject>`
    /// for static tokens, `plugin:<id>` for a plugin acting on its own.
    pub subject: String,
    /// References that count as this caller for ownership.
    pub ownership_refs: Vec<String>,
    /// The plugin that presented the token, when it was a plugin-to-plugin token.
    pub via_plugin: Option<String>,
}

impl Principal {
    /// A user calling directly.
    pub fn from_identity(identity: Identity) -> Self {
        Self {
            subject: identity.user_entity_ref,
            ownership_refs: identity.ownership_entity_refs,
            via_plugin: None,
        }
    }

    /// Whether this caller is a user (directly or through a plugin).
    pub fn is_user(&self) -> bool {
        self.subject.starts_with("user:")
    }
}
