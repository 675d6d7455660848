//! Portico user tokens, as Backstage issues them: ES256 JWTs of type `vnd.backstage.user`
//! carrying the user entity ref (`sub`) and ownership refs (`ent`); and the limited form
//! (`vnd.backstage.limited-user`) that plugin tokens carry as `obo`.

use serde::{Deserialize, Serialize};

use crate::identity::Identity;
use crate::keys::{SigningKeys, TokenError, es256_validation};
use crate::{AuthError, now_secs};

/// Header type of a full user token.
pub const USER_TOKEN_TYPE: &str = "vnd.backstage.user";
/// Header type of a limited user token.
pub const LIMITED_USER_TOKEN_TYPE: &str = "vnd.backstage.limited-user";
/// The audience Backstage puts in user tokens.
const AUDIENCE: &str = "backstage";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    ent: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    iat: i64,
    exp: i64,
}

/// A token just issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in_seconds: u64,
}

/// Issues and verifies user tokens.
#[derive(Debug, Clone)]
pub struct UserTokens {
    keys: SigningKeys,
    issuer: String,
    lifetime: u64,
}

impl UserTokens {
    /// Tokens signed by `keys`, issued by `issuer` (`{baseUrl}/api/auth`), living `lifetime` s.
    pub fn new(keys: SigningKeys, issuer: String, lifetime: u64) -> Self {
        Self {
            keys,
            issuer,
            lifetime,
        }
    }

    /// A full user token for `identity`.
    pub async fn issue(&self, identity: &Identity) -> Result<IssuedToken, AuthError> {
        let token = self
            .sign(USER_TOKEN_TYPE, identity, Some(AUDIENCE.into()))
            .await?;
        Ok(IssuedToken {
            token,
            expires_in_seconds: self.lifetime,
        })
    }

    /// A limited token for `identity`, for a plugin acting on the user's behalf.
    pub async fn issue_limited(&self, identity: &Identity) -> Result<String, AuthError> {
        self.sign(LIMITED_USER_TOKEN_TYPE, identity, None).await
    }

    /// The identity in a full user token.
    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        self.check(token, USER_TOKEN_TYPE).await
    }

    /// The identity in a limited user token.
    pub async fn verify_limited(&self, token: &str) -> Result<Identity, TokenError> {
        self.check(token, LIMITED_USER_TOKEN_TYPE).await
    }

    async fn sign(
        &self,
        typ: &str,
        identity: &Identity,
        aud: Option<String>,
    ) -> Result<String, AuthError> {
        let iat = now_secs();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: identity.user_entity_ref.clone(),
            ent: identity.ownership_entity_refs.clone(),
            aud,
            iat,
            exp: iat + self.lifetime as i64,
        };
        self.keys.sign(typ, &claims).await
    }

    async fn check(&self, token: &str, typ: &'static str) -> Result<Identity, TokenError> {
        let mut validation = es256_validation();
        validation.set_issuer(&[&self.issuer]);
        let claims: Claims = self.keys.verify(token, typ, &validation).await?;
        if !claims.sub.starts_with("user:") {
            return Err(TokenError::Claims("sub is not a user entity ref".into()));
        }
        Ok(Identity {
            user_entity_ref: claims.sub,
            ownership_entity_refs: claims.ent,
        })
    }
}
