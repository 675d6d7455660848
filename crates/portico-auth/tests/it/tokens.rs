//! Portico's own tokens on both databases: user tokens and plugin-to-plugin tokens are accepted
//! when right and refused for each way they can be wrong; keys made by one replica verify on
//! another.

use portico_auth::keys::{SigningKeys, TokenError};
use portico_auth::plugin_tokens::{PLUGIN_TOKEN_TYPE, PluginTokens};
use portico_auth::user_tokens::{USER_TOKEN_TYPE, UserTokens};
use portico_auth::{Cipher, Identity, now_secs};
use serde_json::json;

fn cipher() -> Cipher {
    Cipher::from_config(&[portico_auth::config::EncryptionKeyConfig {
        id: "k1".into(),
        secret: Cipher::generate_secret().unwrap(),
    }])
    .unwrap()
    .unwrap()
}

fn jane() -> Identity {
    Identity {
        user_entity_ref: "user:default/jane".into(),
        ownership_entity_refs: vec!["user:default/jane".into(), "group:default/team-a".into()],
    }
}

const ISSUER: &str = "http://127.0.0.1:7007/api/auth";

#[tokio::test]
async fn plugin_tokens_accepted_only_when_right() {
    for (store, _db) in portico_store::testing::stores().await {
        let keys = SigningKeys::new(store.clone(), cipher());
        let users = UserTokens::new(keys.clone(), ISSUER.into(), 3600);
        let plugins = PluginTokens::new(keys.clone(), users.clone());

        // Valid, on behalf of a user: the receiver sees the user and the calling plugin.
        let token = plugins.issue("mcp-actions", Some(&jane())).await.unwrap();
        let caller = plugins.verify(&token, "mcp-actions").await.unwrap();
        assert_eq!(caller.subject, "user:default/jane");
        assert_eq!(caller.ownership_refs, jane().ownership_entity_refs);
        assert_eq!(caller.via_plugin.as_deref(), Some("portico"));
        // Valid, on its own behalf.
        let token = plugins.issue("catalog", None).await.unwrap();
        let caller = plugins.verify(&token, "catalog").await.unwrap();
        assert_eq!(caller.subject, "plugin:portico");

        // Wrong audience.
        assert_eq!(
            plugins.verify(&token, "mcp-actions").await.unwrap_err(),
            TokenError::WrongAudience
        );
        // Wrong type: a user token is not a plugin token, and the other way round.
        let user_token = users.issue(&jane()).await.unwrap().token;
        assert!(matches!(
            plugins.verify(&user_token, "catalog").await.unwrap_err(),
            TokenError::WrongType { .. }
        ));
        assert!(matches!(
            users.verify(&token).await.unwrap_err(),
            TokenError::WrongType { .. }
        ));
        // Expired.
        let past = now_secs() - 7200;
        let expired = keys
            .sign(
                PLUGIN_TOKEN_TYPE,
                &json!({"sub": "portico", "aud": "catalog", "iat": past, "exp": past + 600}),
            )
            .await
            .unwrap();
        assert_eq!(
            plugins.verify(&expired, "catalog").await.unwrap_err(),
            TokenError::Expired
        );
        // Living longer than an hour.
        let now = now_secs();
        let long = keys
            .sign(
                PLUGIN_TOKEN_TYPE,
                &json!({"sub": "portico", "aud": "catalog", "iat": now, "exp": now + 7200}),
            )
            .await
            .unwrap();
        assert!(matches!(
            plugins.verify(&long, "catalog").await.unwrap_err(),
            TokenError::Claims(_)
        ));
        // Bad signature: one changed character, and a token signed by a key nobody published.
        let mut bad = token.clone().into_bytes();
        let i = bad.len() - 3;
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            plugins
                .verify(&String::from_utf8(bad).unwrap(), "catalog")
                .await
                .unwrap_err(),
            TokenError::BadSignature
        );
        let (other_store, _other_db) = portico_store::testing::stores().await.remove(0);
        let stranger = PluginTokens::new(
            SigningKeys::new(other_store, cipher()),
            UserTokens::new(
                SigningKeys::new(store.clone(), cipher()),
                ISSUER.into(),
                3600,
            ),
        );
        let foreign = stranger.issue("catalog", None).await.unwrap();
        assert_eq!(
            plugins.verify(&foreign, "catalog").await.unwrap_err(),
            TokenError::BadSignature
        );
        // Garbage.
        assert_eq!(
            plugins.verify("not.a.jwt", "catalog").await.unwrap_err(),
            TokenError::Malformed
        );
    }
}

#[tokio::test]
async fn user_tokens_carry_the_identity_and_verify_on_every_replica() {
    for (store, _db) in portico_store::testing::stores().await {
        let cipher = cipher();
        let replica_a = UserTokens::new(
            SigningKeys::new(store.clone(), cipher.clone()),
            ISSUER.into(),
            900,
        );
        let replica_b = UserTokens::new(
            SigningKeys::new(store.clone(), cipher.clone()),
            ISSUER.into(),
            900,
        );
        let issued = replica_a.issue(&jane()).await.unwrap();
        assert_eq!(issued.expires_in_seconds, 900);
        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!(header.typ.as_deref(), Some(USER_TOKEN_TYPE));
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
        let claims: serde_json::Value = jsonwebtoken::dangerous::insecure_decode(&issued.token)
            .unwrap()
            .claims;
        assert_eq!(claims["sub"], "user:default/jane");
        assert_eq!(claims["ent"], json!(jane().ownership_entity_refs));
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            900
        );
        // The other replica knows the key from the database.
        assert_eq!(replica_b.verify(&issued.token).await.unwrap(), jane());
        // A different issuer is refused.
        let elsewhere = UserTokens::new(
            SigningKeys::new(store.clone(), cipher.clone()),
            "https://other.example.com/api/auth".into(),
            900,
        );
        assert!(elsewhere.verify(&issued.token).await.is_err());
        // A limited token is not a full one.
        let limited = replica_a.issue_limited(&jane()).await.unwrap();
        assert!(replica_b.verify(&limited).await.is_err());
        assert_eq!(replica_b.verify_limited(&limited).await.unwrap(), jane());
        // The published JWKS holds the public half only.
        let jwks = SigningKeys::new(store.clone(), cipher.clone())
            .jwks()
            .await
            .unwrap();
        let key = &jwks["keys"][0];
        assert_eq!(
            (key["kty"].as_str(), key["crv"].as_str()),
            (Some("EC"), Some("P-256"))
        );
        assert!(key.get("d").is_none());
    }
}

#[tokio::test]
async fn signing_keys_are_sealed_at_rest() {
    for (store, _db) in portico_store::testing::stores().await {
        let keys = SigningKeys::new(store.clone(), cipher());
        keys.sign(
            USER_TOKEN_TYPE,
            &json!({"sub": "user:default/x", "exp": now_secs() + 60}),
        )
        .await
        .unwrap();
        let (private,): (String,) =
            portico_store::sqlx::query_as("SELECT private_key FROM auth_signing_keys")
                .fetch_one(store.pool())
                .await
                .unwrap();
        // Sealed, the stored bytes do not parse as a PKCS#8 key.
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&private)
            .unwrap();
        for offset in [0, 12] {
            assert!(
                aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &bytes[offset..]
                )
                .is_err()
            );
        }
        // A replica without the key makes its own instead of failing.
        let other = SigningKeys::new(store.clone(), cipher());
        other
            .sign(
                USER_TOKEN_TYPE,
                &json!({"sub": "user:default/x", "exp": now_secs() + 60}),
            )
            .await
            .unwrap();
        let (count,): (i64,) =
            portico_store::sqlx::query_as("SELECT COUNT(*) FROM auth_signing_keys")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(count, 2);
    }
}
