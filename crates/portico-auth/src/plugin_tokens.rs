//! Plugin-to-plugin tokens, as Backstage's backends exchange them: ES256 JWTs of type
//! `vnd.backstage.plugin`, `sub` = the calling plugin, `aud` = the target plugin, living at most
//! an hour, optionally carrying the user's limited token as `obo`.

use serde::{Deserialize, Serialize};

use crate::identity::{Identity, Principal};
use crate::keys::{SigningKeys, TokenError, es256_validation};
use crate::user_tokens::UserTokens;
use crate::{AuthError, now_secs};

/// Header type of a plugin token.
pub const PLUGIN_TOKEN_TYPE: &str = "vnd.backstage.plugin";
/// The plugin id Portico's assistant calls other plugins as.
pub const PORTICO_PLUGIN_ID: &str = "portico";
/// Plugin tokens never live longer than this.
const MAX_LIFETIME: i64 = 3600;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    obo: Option<String>,
}

/// Issues plugin tokens for Portico's own calls and verifies those sent to Portico's plugins.
#[derive(Debug, Clone)]
pub struct PluginTokens {
    keys: SigningKeys,
    users: UserTokens,
}

impl PluginTokens {
    /// Tokens signed with `keys`; `users` issues and checks the `obo` tokens.
    pub fn new(keys: SigningKeys, users: UserTokens) -> Self {
        Self { keys, users }
    }

    /// A token from Portico to `target` plugin, for `on_behalf_of` when a user is behind the call.
    pub async fn issue(
        &self,
        target: &str,
        on_behalf_of: Option<&Identity>,
    ) -> Result<String, AuthError> {
        let obo = match on_behalf_of {
            Some(identity) => Some(self.users.issue_limited(identity).await?),
            None => None,
        };
        let iat = now_secs();
        let claims = Claims {
            sub: PORTICO_PLUGIN_ID.into(),
            aud: target.into(),
            iat,
            exp: iat + MAX_LIFETIME,
            obo,
        };
        self.keys.sign(PLUGIN_TOKEN_TYPE, &claims).await
    }

    /// The caller behind a token sent to plugin `own_id`: the user it acts for, or the plugin.
    pub async fn verify(&self, token: &str, own_id: &str) -> Result<Principal, TokenError> {
        let mut validation = es256_validation();
        validation.validate_aud = true;
        validation.set_audience(&[own_id]);
        validation.set_required_spec_claims(&["exp", "sub", "aud", "iat"]);
        let claims: Claims = self
            .keys
            .verify(token, PLUGIN_TOKEN_TYPE, &validation)
            .await?;
        if claims.exp - claims.iat > MAX_LIFETIME {
            return Err(TokenError::Claims("lives longer than an hour".into()));
        }
        match claims.obo {
            Some(obo) => {
                let identity = self.users.verify_limited(&obo).await?;
                Ok(Principal {
                    via_plugin: Some(claims.sub),
                    ..Principal::from_identity(identity)
                })
            }
            None => Ok(Principal {
                subject: format!("plugin:{}", claims.sub),
                ownership_refs: Vec::new(),
                via_plugin: Some(claims.sub),
            }),
        }
    }
}
