//! The token broker: `token(user, provider, scopes)` gives a valid access token or says the user
//! must sign in (with the URL that starts it). Tokens are refreshed ahead of expiry by exactly
//! one caller per (user, provider): a process-local lock queues callers in this process, and on
//! PostgreSQL an advisory lock held across the refresh queues every other replica. A refresher
//! that finds the grant's version moved while it waited uses the new token instead of
//! refreshing again, so a rotating refresh token is never spent twice.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use portico_store::{Backend, Store, WriteTx};
use secrecy::SecretString;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use url::Url;

use crate::providers::oauth::{self, TokenRequestError, Tokens};
use crate::providers::{OAuthProvider, Providers};
use crate::vault::{Grant, NewGrant, Vault};
use crate::{AuthError, now_secs};

/// Why the user has to go through the provider's consent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginReason {
    /// No grant is stored.
    NoGrant,
    /// The grant lacks scopes a server needs.
    MissingScopes(Vec<String>),
    /// The provider no longer honours the grant (revoked, expired refresh token).
    Revoked,
    /// The access token expired and there is no refresh token.
    Expired,
}

impl std::fmt::Display for LoginReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginReason::NoGrant => f.write_str("not connected yet"),
            LoginReason::MissingScopes(s) => write!(f, "needs more access: {}", s.join(" ")),
            LoginReason::Revoked => f.write_str("access was revoked or has expired"),
            LoginReason::Expired => f.write_str("the token expired and cannot be refreshed"),
        }
    }
}

/// What the broker could not do.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The user must sign in to the provider (again); `login_url` starts it.
    #[error("sign in to {provider} required ({reason}): {login_url}")]
    LoginRequired {
        /// The provider id.
        provider: String,
        /// The URL that starts the provider's consent with every scope needed.
        login_url: String,
        /// Why.
        reason: LoginReason,
    },
    /// No OAuth provider is configured under this id.
    #[error("no OAuth provider \"{0}\" is configured under auth.providers")]
    UnknownProvider(String),
    /// The provider failed in a way signing in again will not fix.
    #[error("{0}")]
    Provider(String),
    /// Storage or sealing failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// Boxed future returned by [`ScopeSource`].
pub type ScopesFuture<'a> = Pin<Box<dyn Future<Output = Vec<String>> + Send + 'a>>;

/// Scopes a user's servers need from a provider, so one consent covers all of them.
pub trait ScopeSource: Send + Sync {
    /// Every scope the servers `user` uses need from `provider`; with no user yet (a sign-in),
    /// the scopes of every server that uses the provider.
    fn scopes_for<'a>(&'a self, user: Option<&'a str>, provider: &'a str) -> ScopesFuture<'a>;
}

/// No server scopes beyond what the caller asks for.
#[derive(Debug, Default)]
pub struct NoServerScopes;

impl ScopeSource for NoServerScopes {
    fn scopes_for<'a>(&'a self, _: Option<&'a str>, _: &'a str) -> ScopesFuture<'a> {
        Box::pin(async { Vec::new() })
    }
}

type LockMap = Mutex<HashMap<(String, String), Arc<AsyncMutex<()>>>>;

/// Gives out users' provider tokens, refreshing them once and safely.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    vault: Vault,
    providers: Arc<Providers>,
    http: reqwest::Client,
    auth_base: String,
    refresh_ahead: i64,
    scopes: Arc<dyn ScopeSource>,
    locks: LockMap,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("refresh_ahead", &self.inner.refresh_ahead)
            .finish_non_exhaustive()
    }
}

/// How the broker is set up.
pub struct BrokerOptions {
    /// Where grants live.
    pub store: Store,
    /// Seals them.
    pub vault: Vault,
    /// The providers.
    pub providers: Arc<Providers>,
    /// For provider calls.
    pub http: reqwest::Client,
    /// `{baseUrl}/api/auth`, for login URLs.
    pub auth_base: String,
    /// Refresh this many seconds before expiry.
    pub refresh_ahead_seconds: i64,
    /// The scopes of the user's servers.
    pub scopes: Arc<dyn ScopeSource>,
}

/// Holds the right to refresh one grant.
struct RefreshLock {
    _local: OwnedMutexGuard<()>,
    tx: Option<WriteTx>,
}

impl Broker {
    /// A broker over `options`.
    pub fn new(options: BrokerOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: options.store,
                vault: options.vault,
                providers: options.providers,
                http: options.http,
                auth_base: options.auth_base,
                refresh_ahead: options.refresh_ahead_seconds,
                scopes: options.scopes,
                locks: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The vault the broker keeps grants in.
    pub fn vault(&self) -> &Vault {
        &self.inner.vault
    }

    /// A valid access token for `user` at `provider` covering `scopes`, or why not.
    pub async fn token(
        &self,
        user: &str,
        provider_id: &str,
        scopes: &[String],
    ) -> Result<SecretString, BrokerError> {
        let provider = self.provider(provider_id)?;
        let grant = self.read_grant(user, provider_id).await?;
        let Some(grant) = grant else {
            return Err(self
                .login(user, &provider, scopes, &[], LoginReason::NoGrant)
                .await);
        };
        let missing: Vec<String> = scopes
            .iter()
            .map(|s| provider.scope_style.apply(s))
            .filter(|s| !grant.scopes.contains(s))
            .collect();
        if !missing.is_empty() {
            return Err(self
                .login(
                    user,
                    &provider,
                    scopes,
                    &grant.scopes,
                    LoginReason::MissingScopes(missing),
                )
                .await);
        }
        if !self.expiring(&grant) {
            return Ok(grant.access_token);
        }
        self.refresh(user, &provider, grant, scopes).await
    }

    fn provider(&self, id: &str) -> Result<Arc<OAuthProvider>, BrokerError> {
        self.inner
            .providers
            .oauth(id)
            .cloned()
            .ok_or_else(|| BrokerError::UnknownProvider(id.to_string()))
    }

    /// The stored grant, read outside any refresh lock.
    async fn read_grant(&self, user: &str, provider: &str) -> Result<Option<Grant>, AuthError> {
        let mut conn = self.inner.store.pool().acquire().await?;
        self.inner.vault.get(&mut conn, user, provider).await
    }

    fn expiring(&self, grant: &Grant) -> bool {
        grant
            .expires_at
            .is_some_and(|at| at - now_secs() <= self.inner.refresh_ahead)
    }

    async fn refresh(
        &self,
        user: &str,
        provider: &Arc<OAuthProvider>,
        seen: Grant,
        scopes: &[String],
    ) -> Result<SecretString, BrokerError> {
        let mut lock = self.lock(user, &provider.id).await?;
        // Someone may have refreshed (or removed) the grant while we waited for the lock.
        let current = match lock.tx.as_mut() {
            Some(tx) => self.inner.vault.get(tx, user, &provider.id).await?,
            None => self.read_grant(user, &provider.id).await?,
        };
        let Some(current) = current else {
            return Err(self
                .login(user, provider, scopes, &[], LoginReason::Revoked)
                .await);
        };
        if current.version != seen.version {
            return Ok(current.access_token);
        }
        let Some(refresh_token) = current.refresh_token.clone() else {
            if current.expires_at.is_some_and(|at| at > now_secs()) {
                return Ok(current.access_token);
            }
            return Err(self
                .login(
                    user,
                    provider,
                    scopes,
                    &current.scopes,
                    LoginReason::Expired,
                )
                .await);
        };
        let endpoints = provider.endpoints(&self.inner.http).await?;
        let result = oauth::refresh(&self.inner.http, provider, &endpoints, &refresh_token).await;
        match result {
            Ok(tokens) => {
                let access = tokens.access_token.clone();
                let new_grant = grant_from(&tokens, Some(&refresh_token), &current.scopes);
                self.write(lock, user, &provider.id, new_grant).await?;
                tracing::debug!(user, provider = %provider.id, "refreshed a provider token");
                Ok(access)
            }
            Err(TokenRequestError::InvalidGrant(detail)) => {
                tracing::info!(user, provider = %provider.id, detail, "grant no longer valid; cleared");
                self.delete_locked(lock, user, &provider.id).await?;
                Err(self
                    .login(
                        user,
                        provider,
                        scopes,
                        &current.scopes,
                        LoginReason::Revoked,
                    )
                    .await)
            }
            Err(TokenRequestError::Other(message)) => {
                // The current token may still be usable for a while: better than failing.
                if current.expires_at.is_some_and(|at| at > now_secs() + 5) {
                    tracing::warn!(provider = %provider.id, %message, "refresh failed; using the current token until it expires");
                    return Ok(current.access_token);
                }
                Err(BrokerError::Provider(message))
            }
        }
    }

    async fn lock(&self, user: &str, provider: &str) -> Result<RefreshLock, AuthError> {
        let local = {
            let mut locks = self
                .inner
                .locks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            locks.retain(|_, l| Arc::strong_count(l) > 1 || l.try_lock().is_err());
            locks
                .entry((user.to_string(), provider.to_string()))
                .or_default()
                .clone()
        };
        let local = local.lock_owned().await;
        let tx = match self.inner.store.backend() {
            Backend::Postgres => {
                let mut tx = self.inner.store.begin_write().await?;
                portico_store::sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(lock_key(user, provider))
                    .execute(&mut *tx)
                    .await?;
                Some(tx)
            }
            // One process owns an SQLite file; the local lock is enough.
            Backend::Sqlite => None,
        };
        Ok(RefreshLock { _local: local, tx })
    }

    async fn write(
        &self,
        lock: RefreshLock,
        user: &str,
        provider: &str,
        grant: NewGrant<'_>,
    ) -> Result<i64, AuthError> {
        let mut tx = match lock.tx {
            Some(tx) => tx,
            None => self.inner.store.begin_write().await?,
        };
        let version = self.inner.vault.put(&mut tx, user, provider, grant).await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn delete_locked(
        &self,
        lock: RefreshLock,
        user: &str,
        provider: &str,
    ) -> Result<(), AuthError> {
        let mut tx = match lock.tx {
            Some(tx) => tx,
            None => self.inner.store.begin_write().await?,
        };
        self.inner.vault.delete(&mut tx, user, provider).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores the tokens of a completed consent for `user`.
    pub async fn store_grant(
        &self,
        user: &str,
        provider: &str,
        tokens: &Tokens,
        asked: &[String],
    ) -> Result<(), AuthError> {
        let grant = grant_from(tokens, None, asked);
        let mut tx = self.inner.store.begin_write().await?;
        self.inner.vault.put(&mut tx, user, provider, grant).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Scopes currently granted to `user` at `provider`.
    pub async fn granted_scopes(
        &self,
        user: &str,
        provider: &str,
    ) -> Result<Vec<String>, AuthError> {
        Ok(self
            .read_grant(user, provider)
            .await?
            .map(|g| g.scopes)
            .unwrap_or_default())
    }

    /// Forgets `user`'s grant at `provider`, revoking it at the provider where supported.
    /// Returns whether the provider confirmed a revocation.
    pub async fn logout(&self, user: &str, provider_id: &str) -> Result<bool, BrokerError> {
        let provider = self.provider(provider_id)?;
        let lock = self.lock(user, provider_id).await?;
        let grant = self.read_grant(user, provider_id).await?;
        self.delete_locked(lock, user, provider_id).await?;
        let Some(grant) = grant else {
            return Ok(false);
        };
        let endpoints = provider.endpoints(&self.inner.http).await?;
        let (token, hint) = match &grant.refresh_token {
            Some(r) => (r, "refresh_token"),
            None => (&grant.access_token, "access_token"),
        };
        match oauth::revoke(&self.inner.http, &provider, &endpoints, token, hint).await {
            Ok(revoked) => Ok(revoked),
            Err(e) => {
                tracing::warn!(provider = provider_id, error = %e, "revocation failed; the grant is forgotten here anyway");
                Ok(false)
            }
        }
    }

    /// Every scope a consent at `provider` should ask for, for `user`: the provider's defaults,
    /// what is already granted (consent is incremental), the user's servers' and `extra`.
    pub async fn consent_scopes(
        &self,
        user: Option<&str>,
        provider: &OAuthProvider,
        granted: &[String],
        extra: &[String],
    ) -> Vec<String> {
        let servers = self.inner.scopes.scopes_for(user, &provider.id).await;
        merge_scopes(
            provider,
            [
                provider.default_scopes.as_slice(),
                granted,
                servers.as_slice(),
                extra,
            ],
        )
    }

    async fn login(
        &self,
        user: &str,
        provider: &OAuthProvider,
        needed: &[String],
        granted: &[String],
        reason: LoginReason,
    ) -> BrokerError {
        let scopes = self
            .consent_scopes(Some(user), provider, granted, needed)
            .await;
        BrokerError::LoginRequired {
            provider: provider.id.clone(),
            login_url: login_url(&self.inner.auth_base, &provider.id, &scopes),
            reason,
        }
    }
}

/// Scope lists merged in order, without repeats, written as the provider expects.
pub fn merge_scopes<'a>(
    provider: &OAuthProvider,
    lists: impl IntoIterator<Item = &'a [String]>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in lists.into_iter().flatten() {
        let s = provider.scope_style.apply(s);
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The URL that starts consent at `provider` for `scopes`.
pub fn login_url(auth_base: &str, provider: &str, scopes: &[String]) -> String {
    let mut url = Url::parse(&format!("{auth_base}/{provider}/start"))
        .unwrap_or_else(|_| Url::parse("http://invalid/").expect("static URL"));
    url.query_pairs_mut()
        .append_pair("scope", &scopes.join(" "))
        .append_pair("flow", "popup");
    url.to_string()
}

fn grant_from<'a>(
    tokens: &'a Tokens,
    previous_refresh: Option<&'a SecretString>,
    asked: &'a [String],
) -> NewGrant<'a> {
    NewGrant {
        access_token: &tokens.access_token,
        // Providers that do not rotate keep the refresh token valid and send none back.
        refresh_token: tokens.refresh_token.as_ref().or(previous_refresh),
        scopes: tokens.scope.as_deref().unwrap_or(asked),
        expires_at: tokens.expires_in.map(|s| now_secs() + s),
    }
}

/// The advisory lock key of a (user, provider) pair.
fn lock_key(user: &str, provider: &str) -> i64 {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("portico-grant\0{user}\0{provider}").as_bytes(),
    );
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest.as_ref()[..8]);
    i64::from_be_bytes(bytes)
}
