//! Sealing secrets at rest: AES-256-GCM with a random nonce per value, the row's identity as
//! associated data (so a sealed token cannot be moved to another user's row), and a key id kept
//! beside each row so keys can rotate.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::AuthError;
use crate::config::EncryptionKeyConfig;

/// The keys that seal and open secrets; the first one seals.
#[derive(Clone)]
pub struct Cipher {
    current: String,
    keys: Arc<HashMap<String, RandomizedNonceKey>>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("current", &self.current)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Cipher {
    /// Builds the cipher from `auth.tokenEncryption.keys`; `Ok(None)` when none are configured.
    pub fn from_config(keys: &[EncryptionKeyConfig]) -> Result<Option<Self>, AuthError> {
        let Some(first) = keys.first() else {
            return Ok(None);
        };
        let mut map = HashMap::new();
        for key in keys {
            if key.id.is_empty() || key.id.len() > 64 {
                return Err(AuthError::Config(
                    "auth.tokenEncryption.keys: every key needs an id of 1 to 64 characters".into(),
                ));
            }
            let bytes = decode_key(&key.secret).ok_or_else(|| {
                AuthError::Config(format!(
                    "auth.tokenEncryption.keys: key \"{}\" must be 32 random bytes in base64 (make one with `openssl rand -base64 32`)",
                    key.id
                ))
            })?;
            let sealing = RandomizedNonceKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| AuthError::Crypto("cannot load an AES-256-GCM key"))?;
            if map.insert(key.id.clone(), sealing).is_some() {
                return Err(AuthError::Config(format!(
                    "auth.tokenEncryption.keys: the id \"{}\" is used twice",
                    key.id
                )));
            }
        }
        Ok(Some(Self {
            current: first.id.clone(),
            keys: Arc::new(map),
        }))
    }

    /// A new random key, base64, for a generated key file.
    pub fn generate_secret() -> Result<String, AuthError> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| AuthError::Crypto("no randomness"))?;
        Ok(STANDARD.encode(bytes))
    }

    /// The id of the key that seals new values.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Seals `plaintext`, bound to `context`; returns base64url `nonce || ciphertext || tag`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<String, AuthError> {
        let key = &self.keys[&self.current];
        let mut buf = plaintext.to_vec();
        let nonce = key
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| AuthError::Crypto("sealing failed"))?;
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&buf);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a value sealed by [`Cipher::seal`] under `key_id` with the same `context`.
    pub fn open(&self, key_id: &str, context: &str, sealed: &str) -> Result<Vec<u8>, AuthError> {
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| AuthError::UnknownKey(key_id.to_string()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| AuthError::Crypto("a sealed value is not base64"))?;
        if bytes.len() < NONCE_LEN {
            return Err(AuthError::Crypto("a sealed value is truncated"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| AuthError::Crypto("a sealed value has a bad nonce"))?;
        let mut buf = ciphertext.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| {
                AuthError::Crypto("a sealed value does not open: wrong key, or tampered")
            })?;
        Ok(plain.to_vec())
    }

    /// Opens a sealed UTF-8 string.
    pub fn open_string(
        &self,
        key_id: &str,
        context: &str,
        sealed: &str,
    ) -> Result<String, AuthError> {
        String::from_utf8(self.open(key_id, context, sealed)?)
            .map_err(|_| AuthError::Crypto("a sealed value is not text"))
    }
}

fn decode_key(secret: &str) -> Option<[u8; 32]> {
    let s = secret.trim();
    let bytes = STANDARD
        .decode(s)
        .or_else(|_| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')))
        .ok()?;
    bytes.try_into().ok()
}

/// `n` random bytes as base64url, for nonces, PKCE verifiers and ids.
pub fn random_token(n: usize) -> Result<String, AuthError> {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| AuthError::Crypto("no randomness"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of `data` as base64url (PKCE S256 challenges).
pub fn sha256_b64url(data: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Compares secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> EncryptionKeyConfig {
        EncryptionKeyConfig {
            id: id.into(),
            secret: Cipher::generate_secret().unwrap(),
        }
    }

    #[test]
    fn seals_open_only_with_their_key_and_context() {
        let (k1, k2) = (key("k1"), key("k2"));
        let old = Cipher::from_config(std::slice::from_ref(&k1))
            .unwrap()
            .unwrap();
        let sealed = old.seal("user:default/jane|github", b"gho_secret").unwrap();
        assert!(!sealed.contains("gho_secret"));
        // Rotation: k2 seals new values, k1 still opens old ones.
        let rotated = Cipher::from_config(&[k2, k1]).unwrap().unwrap();
        assert_eq!(rotated.current_key_id(), "k2");
        assert_eq!(
            rotated
                .open_string("k1", "user:default/jane|github", &sealed)
                .unwrap(),
            "gho_secret"
        );
        assert!(
            rotated
                .open("k1", "user:default/john|github", &sealed)
                .is_err()
        );
        assert!(matches!(
            rotated.open("k9", "x", &sealed),
            Err(AuthError::UnknownKey(_))
        ));
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(
            rotated
                .open("k1", "user:default/jane|github", &tampered)
                .is_err()
        );
    }

    #[test]
    fn bad_keys_are_refused_with_a_hint() {
        let err = Cipher::from_config(&[EncryptionKeyConfig {
            id: "k".into(),
            secret: "short".into(),
        }])
        .unwrap_err()
        .to_string();
        assert!(err.contains("openssl rand -base64 32"), "{err}");
        assert!(format!("{:?}", key("k")).contains("[redacted]"));
    }
}
