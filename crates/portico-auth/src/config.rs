//! `auth.*` configuration, typed: token lifetime, token encryption keys and the providers under
//! `auth.providers.<id>`, in Backstage's shapes (a provider's options may sit under an
//! environment name such as `development`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::AuthError;

/// Everything under `auth`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthConfig {
    /// Which environment block of a provider's options applies (Backstage's `auth.environment`).
    pub environment: String,
    /// Lifetime of Portico user tokens: 600 to 86400 seconds.
    pub backstage_token_expiration: HumanDuration,
    /// Sign-in and token providers, by id.
    #[serde(default)]
    pub providers: BTreeMap<String, Value>,
    /// Keys that seal third-party tokens at rest.
    #[serde(default)]
    pub token_encryption: TokenEncryption,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            environment: "development".into(),
            backstage_token_expiration: HumanDuration { seconds: 3600 },
            providers: BTreeMap::new(),
            token_encryption: TokenEncryption::default(),
        }
    }
}

/// `auth.tokenEncryption`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEncryption {
    /// AES-256 keys; the first seals new rows, all of them open old ones.
    #[serde(default)]
    pub keys: Vec<EncryptionKeyConfig>,
}

/// One token encryption key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionKeyConfig {
    /// Stored beside every row it sealed, so rotation knows which key opens it.
    pub id: String,
    /// 32 random bytes, base64 (`openssl rand -base64 32`).
    pub secret: String,
}

impl std::fmt::Debug for EncryptionKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionKeyConfig")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// A duration written as Backstage writes them: `{hours: 1}`, `{minutes: 30, seconds: 10}`, or a
/// plain number of seconds. It serializes as seconds, so a configured object replaces the default
/// whole instead of being merged into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration {
    /// The whole duration in seconds.
    pub seconds: u64,
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.seconds)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Parts {
            #[serde(default)]
            hours: u64,
            #[serde(default)]
            minutes: u64,
            #[serde(default)]
            seconds: u64,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Seconds(u64),
            Parts(Parts),
        }
        let seconds = match Written::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a duration such as {hours: 1} or {minutes: 30}")
        })? {
            Written::Seconds(s) => s,
            Written::Parts(p) => p.hours * 3600 + p.minutes * 60 + p.seconds,
        };
        Ok(HumanDuration { seconds })
    }
}

/// One provider's options, after the environment block is picked. Which options apply depends
/// on the provider's type; [`crate::providers`] says which.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProviderConfig {
    /// `oidc`, `oauth2`, `auth0`, `proxy` or a built-in id; defaults to the provider's own id.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// OAuth client id.
    pub client_id: Option<String>,
    /// OAuth client secret.
    pub client_secret: Option<String>,
    /// `client_secret_basic` (default) or `client_secret_post`.
    pub token_endpoint_auth_method: Option<String>,
    /// Scopes asked for on every sign-in, beyond the provider's defaults.
    #[serde(default)]
    pub additional_scopes: Vec<String>,
    /// Where the provider sends users back; defaults to `{baseUrl}/api/auth/{id}/handler/frame`.
    pub callback_url: Option<String>,
    /// OIDC discovery document (`…/.well-known/openid-configuration`).
    pub metadata_url: Option<String>,
    /// Authorization endpoint override.
    pub authorization_url: Option<String>,
    /// Token endpoint override.
    pub token_url: Option<String>,
    /// Profile (userinfo) endpoint override.
    pub user_info_url: Option<String>,
    /// Revocation endpoint override (RFC 7009).
    pub revocation_url: Option<String>,
    /// GitHub Enterprise: the instance URL.
    pub enterprise_instance_url: Option<String>,
    /// GitLab instance URL, Okta org URL, or the proxy token's expected audience.
    pub audience: Option<String>,
    /// Auth0 domain.
    pub domain: Option<String>,
    /// Microsoft Entra tenant (default `common`).
    pub tenant_id: Option<String>,
    /// Okta authorization server (default `default`).
    pub auth_server_id: Option<String>,
    /// OneLogin or proxy-token issuer.
    pub issuer: Option<String>,
    /// Bitbucket Server host URL.
    pub host: Option<String>,
    /// Cloudflare Access team name.
    pub team_name: Option<String>,
    /// Proxy sign-in: the request header that carries the JWT.
    pub header: Option<String>,
    /// Proxy sign-in: where the JWT's signing keys are published.
    pub jwks_url: Option<String>,
    /// Guest: the user it signs in as (default `user:development/guest`).
    pub user_entity_ref: Option<String>,
    /// Guest: allow it when Portico listens beyond loopback.
    #[serde(default)]
    pub dangerously_allow_outside_development: bool,
    /// How a signed-in profile becomes a user; without it the provider only connects accounts.
    pub sign_in: Option<SignInConfig>,
}

/// `signIn` of a provider.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInConfig {
    /// Tried in order; the first that finds a user wins.
    pub resolvers: Vec<ResolverConfig>,
}

/// One sign-in resolver.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResolverConfig {
    /// `emailMatchingUserEntityProfileEmail`, `emailLocalPartMatchingUserEntityName`,
    /// `usernameMatchingUserEntityName` or `userEntityRefPattern`.
    pub resolver: String,
    /// For `userEntityRefPattern`: e.g. `user:default/{username}`; `{email}`,
    /// `{emailLocalPart}` and `{username}` are filled from the profile.
    pub pattern: Option<String>,
    /// Sign in even when no User entity matches (the ref is still derived from the profile).
    #[serde(default)]
    pub dangerously_allow_sign_in_without_user_in_catalog: bool,
}

impl AuthConfig {
    /// The options of each configured provider, the environment block picked, type-checked.
    pub fn provider_configs(&self) -> Result<Vec<(String, ProviderConfig)>, AuthError> {
        let mut out = Vec::new();
        for (id, value) in &self.providers {
            let value = match value {
                Value::Null => continue,
                Value::Object(map) => match map.get(&self.environment) {
                    Some(block @ Value::Object(_)) => block.clone(),
                    _ => value.clone(),
                },
                _ => {
                    return Err(AuthError::Config(format!(
                        "auth.providers.{id} must be a map of options"
                    )));
                }
            };
            let config: ProviderConfig = serde_json::from_value(value)
                .map_err(|e| AuthError::Config(format!("auth.providers.{id}: {e}")))?;
            out.push((id.clone(), config));
        }
        Ok(out)
    }

    /// Checks what serde cannot: the token lifetime range and the encryption keys.
    pub fn check(&self) -> Result<(), AuthError> {
        let s = self.backstage_token_expiration.seconds;
        if !(600..=86400).contains(&s) {
            return Err(AuthError::Config(format!(
                "auth.backstageTokenExpiration is {s} seconds; it must be between 600 (10 minutes) and 86400 (24 hours)"
            )));
        }
        crate::crypto::Cipher::from_config(&self.token_encryption.keys)?;
        self.provider_configs()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_blocks_and_flat_options_both_read() {
        let config: AuthConfig = serde_json::from_value(serde_json::json!({
            "environment": "production",
            "backstageTokenExpiration": {"minutes": 30},
            "providers": {
                "github": {"production": {"clientId": "a", "clientSecret": "b"}},
                "corp": {"type": "oidc", "metadataUrl": "https://idp/.well-known/openid-configuration"},
                "off": null
            }
        }))
        .unwrap();
        assert_eq!(config.backstage_token_expiration.seconds, 1800);
        let providers = config.provider_configs().unwrap();
        assert_eq!(providers.len(), 2);
        assert_eq!(providers[1].0, "github");
        assert_eq!(providers[1].1.client_id.as_deref(), Some("a"));
        assert_eq!(providers[0].1.kind.as_deref(), Some("oidc"));
    }

    #[test]
    fn mistakes_say_what_to_fix() {
        let config: AuthConfig = serde_json::from_value(serde_json::json!({
            "environment": "development",
            "backstageTokenExpiration": {"seconds": 30},
            "providers": {"github": {"clientID": "a"}}
        }))
        .unwrap();
        let err = config.check().unwrap_err().to_string();
        assert!(err.contains("between 600"), "{err}");
        let err = config.provider_configs().unwrap_err().to_string();
        assert!(
            err.contains("auth.providers.github") && err.contains("clientID"),
            "{err}"
        );
    }
}
