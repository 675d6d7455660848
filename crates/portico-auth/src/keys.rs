//! Portico's ES256 signing keys. Every replica keeps its keys in the database (the private half
//! sealed), so any replica verifies a token any other one signed, and every key is published as
//! a JWK. Keys are replaced after a day and published until the last token they signed expired.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use portico_store::Store;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::crypto::{Cipher, random_token};
use crate::{AuthError, now_secs};

/// A key signs for this long before a new one replaces it.
const ROTATE_AFTER: i64 = 24 * 3600;
/// A key stays published this long after it stopped signing (the longest token lifetime).
const PUBLISH_AFTER_ROTATION: i64 = 24 * 3600;

/// Why a token was not accepted. The message never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or not one of ours.
    #[error("the token is malformed")]
    Malformed,
    /// The header's `typ` is not the expected one.
    #[error("the token has type {found:?}, expected {expected}")]
    WrongType {
        /// What the header said.
        found: Option<String>,
        /// What this verifier accepts.
        expected: &'static str,
    },
    /// Signed by a key nobody published, or the signature does not match.
    #[error("the token's signature is not valid")]
    BadSignature,
    /// Past its `exp`.
    #[error("the token has expired")]
    Expired,
    /// The `aud` claim names someone else.
    #[error("the token is meant for another audience")]
    WrongAudience,
    /// A required claim is missing or wrong.
    #[error("the token's claims are not valid: {0}")]
    Claims(String),
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature | K::InvalidEcdsaKey | K::InvalidKeyFormat => {
                TokenError::BadSignature
            }
            K::ExpiredSignature => TokenError::Expired,
            K::InvalidAudience => TokenError::WrongAudience,
            K::MissingRequiredClaim(c) => TokenError::Claims(format!("missing claim {c}")),
            K::InvalidIssuer => TokenError::Claims("wrong issuer".into()),
            K::ImmatureSignature => TokenError::Claims("not valid yet".into()),
            _ => TokenError::Malformed,
        }
    }
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    created_at: i64,
}

#[derive(Default)]
struct Published {
    keys: HashMap<String, DecodingKey>,
    jwks: Vec<Value>,
}

/// The keys that sign and verify Portico's own tokens.
#[derive(Clone)]
pub struct SigningKeys {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    cipher: Cipher,
    current: RwLock<Option<Arc<SigningKey>>>,
    published: RwLock<Published>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeys")
    }
}

impl SigningKeys {
    /// Keys kept in `store`, private halves sealed with `cipher`.
    pub fn new(store: Store, cipher: Cipher) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                cipher,
                current: RwLock::new(None),
                published: RwLock::new(Published::default()),
            }),
        }
    }

    /// Signs `claims` with the current key under header type `typ`.
    pub async fn sign(&self, typ: &str, claims: &impl Serialize) -> Result<String, AuthError> {
        let key = self.current().await?;
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(typ.to_string());
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|_| AuthError::Crypto("signing a token failed"))
    }

    /// Verifies a token Portico signed: header type, signature, expiry, then `validation`'s
    /// audience and required claims.
    pub async fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: &'static str,
        validation: &Validation,
    ) -> Result<T, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.typ.as_deref() != Some(typ) {
            return Err(TokenError::WrongType {
                found: header.typ,
                expected: typ,
            });
        }
        if header.alg != Algorithm::ES256 {
            return Err(TokenError::BadSignature);
        }
        let kid = header.kid.ok_or(TokenError::BadSignature)?;
        let key = match self.decoding_key(&kid).await {
            Some(k) => k,
            None => {
                // Maybe another replica made a new key since we last looked.
                self.reload_published().await.map_err(|e| {
                    tracing::warn!(error = %e, "cannot read the published signing keys");
                    TokenError::BadSignature
                })?;
                self.decoding_key(&kid)
                    .await
                    .ok_or(TokenError::BadSignature)?
            }
        };
        let data = jsonwebtoken::decode::<T>(token, &key, validation)?;
        Ok(data.claims)
    }

    /// Every published public key, as a JWK set (`{"keys": [...]}`).
    pub async fn jwks(&self) -> Result<Value, AuthError> {
        self.current().await?;
        self.reload_published().await?;
        Ok(json!({ "keys": self.inner.published.read().await.jwks }))
    }

    async fn decoding_key(&self, kid: &str) -> Option<DecodingKey> {
        self.inner.published.read().await.keys.get(kid).cloned()
    }

    async fn current(&self) -> Result<Arc<SigningKey>, AuthError> {
        let now = now_secs();
        if let Some(key) = self.inner.current.read().await.as_ref()
            && now - key.created_at < ROTATE_AFTER
        {
            return Ok(key.clone());
        }
        let mut slot = self.inner.current.write().await;
        if let Some(key) = slot.as_ref()
            && now - key.created_at < ROTATE_AFTER
        {
            return Ok(key.clone());
        }
        let key = Arc::new(match self.newest_usable_key(now).await? {
            Some(key) => key,
            None => self.create_key(now).await?,
        });
        *slot = Some(key.clone());
        drop(slot);
        self.reload_published().await?;
        Ok(key)
    }

    /// The newest stored key still young enough to sign, if this replica can open it.
    async fn newest_usable_key(&self, now: i64) -> Result<Option<SigningKey>, AuthError> {
        let row: Option<(String, String, String, i64)> = portico_store::sqlx::query_as(
            "SELECT kid, key_id, private_key, created_at FROM auth_signing_keys
             WHERE created_at > $1 ORDER BY created_at DESC LIMIT 1",
        )
        .bind(now - ROTATE_AFTER)
        .fetch_optional(self.inner.store.pool())
        .await?;
        let Some((kid, key_id, sealed, created_at)) = row else {
            return Ok(None);
        };
        match self
            .inner
            .cipher
            .open(&key_id, &format!("signing-key|{kid}"), &sealed)
        {
            Ok(der) => Ok(Some(SigningKey {
                kid,
                encoding: EncodingKey::from_ec_der(&der),
                created_at,
            })),
            // A key sealed with a key this replica lacks: make our own instead.
            Err(_) => Ok(None),
        }
    }

    async fn create_key(&self, now: i64) -> Result<SigningKey, AuthError> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| AuthError::Crypto("cannot generate a signing key"))?;
        let pkcs8 = pair
            .to_pkcs8v1()
            .map_err(|_| AuthError::Crypto("cannot encode a signing key"))?;
        let point = pair.public_key().as_ref();
        let (x, y) = (&point[1..33], &point[33..65]);
        let kid = random_token(12)?;
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        });
        let der = pkcs8.as_ref();
        let sealed = self.inner.cipher.seal(&format!("signing-key|{kid}"), der)?;
        let mut tx = self.inner.store.begin_write().await?;
        portico_store::sqlx::query(
            "INSERT INTO auth_signing_keys (kid, key_id, private_key, public_jwk, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&kid)
        .bind(self.inner.cipher.current_key_id())
        .bind(sealed)
        .bind(jwk.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(kid = %kid, "created a new token signing key");
        Ok(SigningKey {
            kid,
            encoding: EncodingKey::from_ec_der(der),
            created_at: now,
        })
    }

    async fn reload_published(&self) -> Result<(), AuthError> {
        let rows: Vec<(String, String)> = portico_store::sqlx::query_as(
            "SELECT kid, public_jwk FROM auth_signing_keys WHERE created_at > $1 ORDER BY created_at DESC",
        )
        .bind(now_secs() - ROTATE_AFTER - PUBLISH_AFTER_ROTATION)
        .fetch_all(self.inner.store.pool())
        .await?;
        let mut published = Published::default();
        for (kid, jwk) in rows {
            let Ok(jwk) = serde_json::from_str::<Value>(&jwk) else {
                continue;
            };
            let (Some(x), Some(y)) = (jwk["x"].as_str(), jwk["y"].as_str()) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_ec_components(x, y) {
                published.keys.insert(kid, key);
                published.jwks.push(jwk);
            }
        }
        *self.inner.published.write().await = published;
        Ok(())
    }
}

/// A validation for ES256 tokens requiring `exp` and `sub`, with no audience check.
pub fn es256_validation() -> Validation {
    let mut v = Validation::new(Algorithm::ES256);
    v.set_required_spec_claims(&["exp", "sub"]);
    v.validate_aud = false;
    v.leeway = 30;
    v
}
