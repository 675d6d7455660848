//! Users' provider grants at rest: one row per (user, provider), tokens sealed with the row's
//! identity as associated data, a version that moves on every write so a refresher can tell
//! whether someone else refreshed first.

use portico_store::sqlx::AnyConnection;
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::Cipher;
use crate::{AuthError, now_secs};

/// A stored grant, opened.
#[derive(Clone)]
pub struct Grant {
    /// The access token.
    pub access_token: SecretString,
    /// The refresh token, when the provider issued one.
    pub refresh_token: Option<SecretString>,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// When the access token expires (Unix seconds), when known.
    pub expires_at: Option<i64>,
    /// Moves on every write.
    pub version: i64,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A grant to store.
pub struct NewGrant<'a> {
    /// The access token.
    pub access_token: &'a SecretString,
    /// The refresh token.
    pub refresh_token: Option<&'a SecretString>,
    /// Scopes granted.
    pub scopes: &'a [String],
    /// When the access token expires.
    pub expires_at: Option<i64>,
}

type Row = (String, String, Option<String>, String, Option<i64>, i64);

/// Reads and writes sealed grants.
#[derive(Debug, Clone)]
pub struct Vault {
    cipher: Cipher,
}

fn context(user: &str, provider: &str, field: &str) -> String {
    format!("grant|{user}|{provider}|{field}")
}

impl Vault {
    /// A vault sealing with `cipher`.
    pub fn new(cipher: Cipher) -> Self {
        Self { cipher }
    }

    /// The grant `user` has at `provider`, if any.
    pub async fn get(
        &self,
        conn: &mut AnyConnection,
        user: &str,
        provider: &str,
    ) -> Result<Option<Grant>, AuthError> {
        let row: Option<Row> = portico_store::sqlx::query_as(
            "SELECT key_id, access_token, refresh_token, scope, expires_at, version
             FROM auth_grants WHERE user_ref = $1 AND provider = $2",
        )
        .bind(user)
        .bind(provider)
        .fetch_optional(conn)
        .await?;
        let Some((key_id, access, refresh, scope, expires_at, version)) = row else {
            return Ok(None);
        };
        let open = |field: &str, sealed: &str| {
            self.cipher
                .open_string(&key_id, &context(user, provider, field), sealed)
                .map(SecretString::from)
        };
        Ok(Some(Grant {
            access_token: open("access", &access)?,
            refresh_token: refresh.as_deref().map(|r| open("refresh", r)).transpose()?,
            scopes: scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            expires_at,
            version,
        }))
    }

    /// Stores `grant` for `user` at `provider`, replacing any earlier one; returns the new version.
    pub async fn put(
        &self,
        conn: &mut AnyConnection,
        user: &str,
        provider: &str,
        grant: NewGrant<'_>,
    ) -> Result<i64, AuthError> {
        let seal = |field: &str, secret: &SecretString| {
            self.cipher.seal(
                &context(user, provider, field),
                secret.expose_secret().as_bytes(),
            )
        };
        let access = seal("access", grant.access_token)?;
        let refresh = grant
            .refresh_token
            .map(|r| seal("refresh", r))
            .transpose()?;
        let current: Option<(i64,)> = portico_store::sqlx::query_as(
            "SELECT version FROM auth_grants WHERE user_ref = $1 AND provider = $2",
        )
        .bind(user)
        .bind(provider)
        .fetch_optional(&mut *conn)
        .await?;
        let version = current.map_or(1, |(v,)| v + 1);
        portico_store::sqlx::query(
            "INSERT INTO auth_grants (user_ref, provider, key_id, access_token, refresh_token, scope, expires_at, version, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (user_ref, provider) DO UPDATE SET
               key_id = excluded.key_id, access_token = excluded.access_token,
               refresh_token = excluded.refresh_token, scope = excluded.scope,
               expires_at = excluded.expires_at, version = excluded.version,
               updated_at = excluded.updated_at",
        )
        .bind(user)
        .bind(provider)
        .bind(self.cipher.current_key_id())
        .bind(access)
        .bind(refresh)
        .bind(grant.scopes.join(" "))
        .bind(grant.expires_at)
        .bind(version)
        .bind(now_secs())
        .execute(conn)
        .await?;
        Ok(version)
    }

    /// Removes the grant; `true` when there was one.
    pub async fn delete(
        &self,
        conn: &mut AnyConnection,
        user: &str,
        provider: &str,
    ) -> Result<bool, AuthError> {
        let done = portico_store::sqlx::query(
            "DELETE FROM auth_grants WHERE user_ref = $1 AND provider = $2",
        )
        .bind(user)
        .bind(provider)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
