//! Sign-in, consent, the token broker and the credential source against a real OpenID Connect
//! provider (`oidc-provider`, started by the test script on loopback), configured once as a
//! custom OIDC provider and once under the `okta` id with its endpoints pointed at it. The
//! browser side is driven over HTTP, following the provider's own login and consent forms.
//!
//! The provider's counters are shared, so these tests take turns (`PEER`).

use std::hash::{Hash, Hasher};
use std::time::Duration;

use portico_auth::BrokerError;
use portico_auth::broker::LoginReason;
use portico_mcp::{CredentialError, Credentials};
use portico_server::credentials::CatalogCredentials;
use portico_store::Store;
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::live::{Server, serve};
use crate::oidc::{Browser, Peer, assert_no_secret_logged, captured_logs, peer, popup_message};

/// The provider's counters are shared: tests that use it take turns.
pub static PEER: Mutex<()> = Mutex::const_new(());

const ALICE: &str = "user:default/alice";

/// Users, a group, and MCP servers using each auth method.
const ENTITIES: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: alice}
spec:
  profile: {email: alice@example.com}
  memberOf: [team-a]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-a}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: corp-read
  annotations:
    mcp.spotify.com/auth-api-id: corp
    mcp.spotify.com/auth-scopes: '["mcp:read"]'
spec:
  type: mcp-server
  lifecycle: production
  owner: team-a
  remotes: [{type: streamable-http, url: "http://127.0.0.1:9/mcp"}]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: corp-write
  annotations:
    mcp.spotify.com/auth-api-id: corp
    mcp.spotify.com/auth-scopes: '["mcp:write"]'
spec:
  type: mcp-server
  lifecycle: experimental
  owner: team-a
  remotes: [{type: streamable-http, url: "http://127.0.0.1:9/mcp"}]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: okta-users
  annotations:
    mcp.spotify.com/auth-api-id: core.auth.okta
    mcp.spotify.com/auth-scopes: '["users.read"]'
spec:
  type: mcp-server
  lifecycle: production
  owner: team-a
  remotes: [{type: streamable-http, url: "http://127.0.0.1:9/mcp"}]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: actions
  annotations:
    mcp.spotify.com/auth-plugin-id: mcp-actions
spec:
  type: mcp-server
  lifecycle: production
  owner: team-a
  remotes: [{type: streamable-http, url: "http://127.0.0.1:9/api/mcp-actions/v1"}]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: open
spec:
  type: mcp-server
  lifecycle: production
  owner: team-a
  remotes: [{type: streamable-http, url: "http://127.0.0.1:9/mcp"}]
"#;

/// The `auth:` block configuring the test provider as a custom OIDC provider `corp`.
pub fn custom_provider() -> String {
    r#"
auth:
  providers:
    corp:
      type: oidc
      metadataUrl: ${PORTICO_TEST_OIDC_ISSUER}/.well-known/openid-configuration
      clientId: ${PORTICO_TEST_OIDC_CLIENT_ID}
      clientSecret: ${PORTICO_TEST_OIDC_CLIENT_SECRET}
      signIn:
        resolvers:
          - resolver: emailMatchingUserEntityProfileEmail
"#
    .to_string()
}

fn okta_provider() -> String {
    r#"
auth:
  providers:
    okta:
      development:
        clientId: ${PORTICO_TEST_OIDC_CLIENT_ID}
        clientSecret: ${PORTICO_TEST_OIDC_CLIENT_SECRET}
        audience: ${PORTICO_TEST_OIDC_ISSUER}
        authorizationUrl: ${PORTICO_TEST_OIDC_ISSUER}/auth
        tokenUrl: ${PORTICO_TEST_OIDC_ISSUER}/token
        userInfoUrl: ${PORTICO_TEST_OIDC_ISSUER}/me
        revocationUrl: ${PORTICO_TEST_OIDC_ISSUER}/token/revocation
        issuer: ${PORTICO_TEST_OIDC_ISSUER}
        signIn:
          resolvers:
            - resolver: usernameMatchingUserEntityName
"#
    .to_string()
}

/// Signs `login` in at `provider` through the popup flow; returns the posted message.
async fn sign_in(server: &Server, browser: &Browser, provider: &str, scope: &str) -> Value {
    let start = format!(
        "{}/api/auth/{provider}/start?scope={scope}&env=development&flow=popup",
        server.base
    );
    let page = browser.walk(&start, None).await;
    assert!(
        page.url.starts_with(&format!(
            "{}/api/auth/{provider}/handler/frame",
            server.base
        )),
        "{page:?}"
    );
    assert_eq!(page.status, 200, "{}", page.body);
    popup_message(&page.body)
}

async fn api_get(server: &Server, path: &str, token: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn grant(server: &Server, user: &str, provider: &str) -> Option<portico_auth::vault::Grant> {
    let mut conn = server.catalog.store().pool().acquire().await.unwrap();
    server
        .auth
        .broker()
        .vault()
        .get(&mut conn, user, provider)
        .await
        .unwrap()
}

/// Makes the stored access token expire in 30 seconds, inside the broker's refresh window.
async fn expire_soon(server: &Server, user: &str, provider: &str) {
    let soon = portico_auth::now_secs() + 30;
    portico_store::sqlx::query(
        "UPDATE auth_grants SET expires_at = $1 WHERE user_ref = $2 AND provider = $3",
    )
    .bind(soon)
    .bind(user)
    .bind(provider)
    .execute(server.catalog.store().pool())
    .await
    .unwrap();
}

async fn each_store(mut test: impl AsyncFnMut(Store, &Peer)) {
    let Some(peer) = peer() else { return };
    captured_logs();
    let _turn = PEER.lock().await;
    for (store, _db) in portico_store::testing::stores().await {
        test(store, &peer).await;
    }
    assert_no_secret_logged(&peer.secrets());
}

#[tokio::test]
async fn sign_in_consent_step_up_and_logout_with_a_custom_oidc_provider() {
    each_store(async |store, peer| {
        let server = serve(store, &custom_provider(), ENTITIES).await;
        let browser = Browser::new("alice");
        let message = sign_in(&server, &browser, "corp", "mcp:read").await;
        let response = &message["response"];
        assert_eq!(message["type"], "authorization_response", "{message}");
        let identity = &response["backstageIdentity"]["identity"];
        assert_eq!(identity["userEntityRef"], ALICE);
        assert!(
            identity["ownershipEntityRefs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == "group:default/team-a"),
            "{identity}"
        );
        assert_eq!(response["profile"]["email"], "alice@example.com");
        let scope = response["providerInfo"]["scope"].as_str().unwrap();
        assert!(
            scope.contains("mcp:read") && scope.contains("openid"),
            "{scope}"
        );
        assert!(response["providerInfo"].get("accessToken").is_none());

        // The Portico token opens the API; the JWKS verifies it.
        let token = response["backstageIdentity"]["token"].as_str().unwrap();
        assert_eq!(api_get(&server, "/api/catalog/entities", token).await, 200);
        assert_eq!(api_get(&server, "/api/catalog/entities", "nope").await, 401);
        let jwks: Value = reqwest::get(format!("{}/api/auth/.well-known/jwks.json", server.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(jwks["keys"][0]["kty"], "EC");
        assert_eq!(jwks["keys"][0]["alg"], "ES256");

        // refresh: needs X-Requested-With, gives a new token for the same user.
        let refresh = format!("{}/api/auth/corp/refresh", server.base);
        let r = browser.client.get(&refresh).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let r = browser
            .client
            .get(&refresh)
            .header("x-requested-with", "XMLHttpRequest")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let session: Value = r.json().await.unwrap();
        assert_eq!(
            session["backstageIdentity"]["identity"]["userEntityRef"],
            ALICE
        );
        let fresh = session["backstageIdentity"]["token"].as_str().unwrap();
        assert_eq!(api_get(&server, "/api/catalog/entities", fresh).await, 200);

        // Tokens at rest are sealed.
        let access = server
            .auth
            .broker()
            .token(ALICE, "corp", &[])
            .await
            .unwrap();
        let raw: Vec<(String, Option<String>)> =
            portico_store::sqlx::query_as("SELECT access_token, refresh_token FROM auth_grants")
                .fetch_all(server.catalog.store().pool())
                .await
                .unwrap();
        assert_eq!(raw.len(), 1);
        assert!(!raw[0].0.contains(access.expose_secret()));

        // The credential source: by each server's annotations.
        let credentials = CatalogCredentials::new(server.catalog.clone(), server.auth.clone());
        let none = credentials
            .credential(ALICE, "api:default/open")
            .await
            .unwrap();
        assert!(none.is_none());
        let oauth = credentials
            .credential(ALICE, "api:default/corp-read")
            .await
            .unwrap();
        assert_eq!(oauth.unwrap().header_name(), "authorization");
        let plugin = credentials
            .credential(ALICE, "api:default/actions")
            .await
            .unwrap();
        assert_eq!(plugin.unwrap().header_name(), "authorization");

        // A server needing a scope the grant lacks asks for consent to both.
        let Err(CredentialError::SignInRequired {
            provider,
            login_url,
            ..
        }) = credentials
            .credential(ALICE, "api:default/corp-write")
            .await
        else {
            panic!("a missing scope must ask for sign-in");
        };
        assert_eq!(provider, "corp");
        let url = url::Url::parse(&login_url).unwrap();
        let asked: String = url
            .query_pairs()
            .find(|(k, _)| k == "scope")
            .unwrap()
            .1
            .into_owned();
        assert!(
            asked.contains("mcp:write") && asked.contains("mcp:read"),
            "{asked}"
        );
        let page = browser.walk(&login_url, None).await;
        let message = popup_message(&page.body);
        let scope = message["response"]["providerInfo"]["scope"]
            .as_str()
            .unwrap();
        assert!(
            scope.contains("mcp:write") && scope.contains("mcp:read"),
            "{scope}"
        );
        assert!(
            credentials
                .credential(ALICE, "api:default/corp-write")
                .await
                .unwrap()
                .is_some()
        );

        // Logout revokes at the provider and forgets the grant.
        let revocations = peer.stats().await["revocations"].as_u64().unwrap();
        let r = browser
            .client
            .post(format!("{}/api/auth/corp/logout", server.base))
            .header("x-requested-with", "XMLHttpRequest")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            peer.stats().await["revocations"].as_u64().unwrap(),
            revocations + 1
        );
        assert!(grant(&server, ALICE, "corp").await.is_none());
        let err = server
            .auth
            .broker()
            .token(ALICE, "corp", &[])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                BrokerError::LoginRequired {
                    reason: LoginReason::NoGrant,
                    ..
                }
            ),
            "{err}"
        );
        // Signed out: refresh no longer works.
        let r = browser
            .client
            .get(&refresh)
            .header("x-requested-with", "XMLHttpRequest")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    })
    .await;
}

#[tokio::test]
async fn refresh_rotates_a_revoked_grant_asks_for_login_and_fifty_callers_refresh_once() {
    each_store(async |store, peer| {
        let server = serve(store, &custom_provider(), ENTITIES).await;
        let browser = Browser::new("alice");
        sign_in(&server, &browser, "corp", "mcp:read").await;
        let broker = server.auth.broker();

        // Rotation: one refresh, new access and refresh tokens, version moved.
        let before = grant(&server, ALICE, "corp").await.unwrap();
        let refreshes = peer.refreshes().await;
        assert!(broker.token(ALICE, "corp", &[]).await.is_ok());
        assert_eq!(
            peer.refreshes().await,
            refreshes,
            "a fresh token is not refreshed"
        );
        expire_soon(&server, ALICE, "corp").await;
        let access = broker.token(ALICE, "corp", &[]).await.unwrap();
        assert_eq!(peer.refreshes().await, refreshes + 1);
        let after = grant(&server, ALICE, "corp").await.unwrap();
        assert_eq!(after.version, before.version + 1);
        assert_ne!(access.expose_secret(), before.access_token.expose_secret());
        assert_ne!(
            after.refresh_token.as_ref().unwrap().expose_secret(),
            before.refresh_token.as_ref().unwrap().expose_secret()
        );

        // Fifty concurrent callers around expiry: exactly one refresh at the provider, and
        // everyone gets the token it produced.
        expire_soon(&server, ALICE, "corp").await;
        let refreshes = peer.refreshes().await;
        let calls = (0..50).map(|_| broker.token(ALICE, "corp", &[]));
        let tokens: Vec<String> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|t| t.unwrap().expose_secret().to_string())
            .collect();
        assert_eq!(peer.refreshes().await, refreshes + 1, "exactly one refresh");
        assert!(tokens.iter().all(|t| t == &tokens[0]));
        let current = grant(&server, ALICE, "corp").await.unwrap();
        assert_eq!(current.access_token.expose_secret(), tokens[0]);

        // The user revokes access at the provider: the next refresh fails with invalid_grant,
        // the grant is cleared and the broker asks for login with the URL to start it.
        peer.revoke_grants("alice").await;
        expire_soon(&server, ALICE, "corp").await;
        let err = broker
            .token(ALICE, "corp", &["mcp:read".to_string()])
            .await
            .unwrap_err();
        let BrokerError::LoginRequired {
            provider,
            login_url,
            reason,
        } = err
        else {
            panic!("expected login required, got {err}");
        };
        assert_eq!((provider.as_str(), reason), ("corp", LoginReason::Revoked));
        assert!(
            login_url.starts_with(&format!("{}/api/auth/corp/start?scope=", server.base)),
            "{login_url}"
        );
        assert!(grant(&server, ALICE, "corp").await.is_none());
        // Signing in again through that URL restores it.
        let page = browser.walk(&login_url, None).await;
        assert_eq!(popup_message(&page.body)["type"], "authorization_response");
        assert!(broker.token(ALICE, "corp", &[]).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn the_okta_id_with_its_endpoints_overridden() {
    each_store(async |store, peer| {
        let server = serve(store, &okta_provider(), ENTITIES).await;
        let browser = Browser::new("alice");
        let message = sign_in(&server, &browser, "okta", "").await;
        let response = &message["response"];
        assert_eq!(
            response["backstageIdentity"]["identity"]["userEntityRef"], ALICE,
            "{message}"
        );
        // Okta's scope style: the server's `users.read` was asked for as `okta.users.read`,
        // next to Okta's default scopes.
        let scope = response["providerInfo"]["scope"].as_str().unwrap();
        assert!(
            scope.contains("okta.users.read") && scope.contains("email"),
            "{scope}"
        );
        let credentials = CatalogCredentials::new(server.catalog.clone(), server.auth.clone());
        assert!(
            credentials
                .credential(ALICE, "api:default/okta-users")
                .await
                .unwrap()
                .is_some()
        );
        let revocations = peer.stats().await["revocations"].as_u64().unwrap();
        assert!(server.auth.broker().logout(ALICE, "okta").await.unwrap());
        assert_eq!(
            peer.stats().await["revocations"].as_u64().unwrap(),
            revocations + 1
        );
    })
    .await;
}

#[tokio::test]
async fn proxy_sign_in_from_a_verified_header() {
    let Some(peer) = peer() else { return };
    captured_logs();
    let _turn = PEER.lock().await;
    // An ID token from the provider stands in for what IAP or Cloudflare put in the header.
    let id_token = id_token_for(&peer, "alice").await;
    let config = r#"
auth:
  providers:
    gateway:
      type: proxy
      header: x-test-assertion
      jwksUrl: ${PORTICO_TEST_OIDC_ISSUER}/jwks
      issuer: ${PORTICO_TEST_OIDC_ISSUER}
      audience: ${PORTICO_TEST_OIDC_CLIENT_ID}
      signIn:
        resolvers: [{resolver: emailMatchingUserEntityProfileEmail}]
"#;
    for (store, _db) in portico_store::testing::stores().await {
        let server = serve(store, config, ENTITIES).await;
        let refresh = format!("{}/api/auth/gateway/refresh", server.base);
        let call = |header: Option<String>| {
            let mut r = reqwest::Client::new()
                .get(&refresh)
                .header("x-requested-with", "XMLHttpRequest");
            if let Some(h) = header {
                r = r.header("x-test-assertion", h);
            }
            r.send()
        };
        let r = call(Some(id_token.clone())).await.unwrap();
        let status = r.status();
        let session: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{session}");
        assert_eq!(
            session["backstageIdentity"]["identity"]["userEntityRef"],
            ALICE
        );
        let mut tampered = id_token.clone().into_bytes();
        let i = tampered.len() - 5;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        let r = call(Some(String::from_utf8(tampered).unwrap()))
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(call(None).await.unwrap().status(), 401);
    }
    assert_no_secret_logged(&peer.secrets());
}

/// Runs the authorization-code flow against the provider directly and returns the ID token.
async fn id_token_for(peer: &Peer, login: &str) -> String {
    let browser = Browser::new(login);
    let verifier = "a-test-verifier-that-is-long-enough-for-pkce-0123456789";
    let challenge = {
        use base64::Engine;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
    };
    let redirect = "http://127.0.0.1:9/cb";
    let mut url = url::Url::parse(&format!("{}/auth", peer.issuer)).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &peer.client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid email profile")
        .append_pair("state", "s")
        .append_pair("nonce", "n")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let page = browser.walk(url.as_str(), Some(redirect)).await;
    let code = url::Url::parse(&page.url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: Value = reqwest::Client::new()
        .post(format!("{}/token", peer.issuer))
        .basic_auth(&peer.client_id, Some(&peer.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["id_token"].as_str().unwrap().to_string()
}

fn digest(s: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Two Portico processes share one PostgreSQL database; 25 callers in each ask for the same
/// user's token around expiry at the same moment. The provider sees exactly one refresh.
#[tokio::test]
async fn two_processes_on_postgres_refresh_once() {
    let Some(peer) = peer() else { return };
    if std::env::var("PORTICO_TEST_POSTGRES").as_deref() == Ok("skip") {
        return;
    }
    captured_logs();
    let _turn = PEER.lock().await;
    let base = std::env::var("PORTICO_TEST_POSTGRES_URL").expect("PORTICO_TEST_POSTGRES_URL");
    let (store, name) = portico_store::testing::fresh_postgres(&base).await.unwrap();
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&format!("/{name}"));
    let server = serve(store, &custom_provider(), ENTITIES).await;
    sign_in(&server, &Browser::new("alice"), "corp", "mcp:read").await;
    expire_soon(&server, ALICE, "corp").await;
    let refreshes = peer.refreshes().await;
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 3000;
    let children: Vec<_> = (0..2)
        .map(|_| {
            tokio::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "auth_oidc::race_child",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("PORTICO_RACE_DATABASE_URL", url.as_str())
                .env("PORTICO_RACE_AT_MS", at.to_string())
                .env("PORTICO_TEST_TOKEN_KEY", crate::live::test_cipher_secret())
                .kill_on_drop(true)
                .output()
        })
        .collect();
    let mut results = Vec::new();
    for child in children {
        let output = tokio::time::timeout(Duration::from_secs(120), child)
            .await
            .expect("the child process finished")
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.find("RACE-RESULT ").map(|i| l[i..].to_string()))
            .unwrap_or_else(|| panic!("no result line in {stdout}"));
        results.push(line);
    }
    assert_eq!(
        peer.refreshes().await,
        refreshes + 1,
        "exactly one refresh across both processes: {results:?}"
    );
    assert_eq!(results[0], results[1], "both processes got the same token");
    assert!(results[0].contains(" ok=25 distinct=1 "), "{results:?}");
    let current = grant(&server, ALICE, "corp").await.unwrap();
    assert!(results[0].ends_with(&format!(
        "token={}",
        digest(current.access_token.expose_secret())
    )));
    assert_no_secret_logged(&peer.secrets());
}

/// The child side of [`two_processes_on_postgres_refresh_once`]; does nothing when run alone.
#[tokio::test]
async fn race_child() {
    let Ok(url) = std::env::var("PORTICO_RACE_DATABASE_URL") else {
        return;
    };
    let at: u128 = std::env::var("PORTICO_RACE_AT_MS")
        .unwrap()
        .parse()
        .unwrap();
    let store = Store::open(&url).await.unwrap();
    let server = serve(store, &custom_provider(), "").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    tokio::time::sleep(Duration::from_millis(at.saturating_sub(now) as u64)).await;
    let broker = server.auth.broker();
    let results =
        futures::future::join_all((0..25).map(|_| broker.token(ALICE, "corp", &[]))).await;
    let tokens: Vec<String> = results
        .into_iter()
        .map(|r| r.unwrap().expose_secret().to_string())
        .collect();
    let mut distinct = tokens.clone();
    distinct.sort();
    distinct.dedup();
    println!(
        "RACE-RESULT ok={} distinct={} token={}",
        tokens.len(),
        distinct.len(),
        digest(&tokens[0])
    );
}

/// Every built-in provider id, configured with its own options and its endpoints pointed at the
/// local provider (the real github.com, accounts.google.com … cannot be reached from tests):
/// each one's default scopes and extra parameters reach the authorization request, and the
/// whole sign-in completes. The Okta id is covered above; this runs on SQLite.
#[tokio::test]
async fn every_built_in_provider_id_signs_in_through_its_own_configuration() {
    let Some(peer) = peer() else { return };
    captured_logs();
    let _turn = PEER.lock().await;
    let cases: &[(&str, &str, &[&str])] = &[
        ("github", "enterpriseInstanceUrl: ${I}", &["read:user"]),
        ("gitlab", "audience: ${I}", &["read_user"]),
        (
            "google",
            "",
            &["openid", "access_type=offline", "prompt=consent"],
        ),
        (
            "microsoft",
            "tenantId: acme",
            &["User.Read", "offline_access"],
        ),
        ("onelogin", "issuer: ${I}", &["openid", "offline_access"]),
        ("atlassian", "", &["audience=api.atlassian.com"]),
        ("bitbucket", "", &["team"]),
        ("bitbucketServer", "host: ${I}", &["PROJECT_ADMIN"]),
        // Their presets expect the real issuers' ID tokens; point that check at the local one.
        ("vmwareCloudServices", "issuer: ${I}", &["openid"]),
        (
            "auth0",
            "domain: ${I}\n      issuer: ${I}",
            &["openid", "offline_access"],
        ),
    ];
    for (id, options, expected) in cases {
        let yaml = format!(
            r#"
auth:
  providers:
    {id}:
      clientId: ${{PORTICO_TEST_OIDC_CLIENT_ID}}
      clientSecret: ${{PORTICO_TEST_OIDC_CLIENT_SECRET}}
      {options}
      authorizationUrl: ${{I}}/auth
      tokenUrl: ${{I}}/token
      userInfoUrl: ${{I}}/me
      revocationUrl: ${{I}}/token/revocation
      additionalScopes: [openid, profile, email]
      signIn:
        resolvers: [{{resolver: usernameMatchingUserEntityName}}]
"#
        )
        .replace("${I}", "${PORTICO_TEST_OIDC_ISSUER}");
        let (store, _db) = portico_store::testing::stores().await.remove(0);
        let server = serve(store, &yaml, ENTITIES).await;
        let browser = Browser::new("alice");
        let start = browser
            .client
            .get(format!("{}/api/auth/{id}/start", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), 302, "{id}");
        let location = start.headers()["location"].to_str().unwrap().to_string();
        let authorize = url::Url::parse(&location).unwrap();
        let query: Vec<String> = authorize
            .query_pairs()
            .flat_map(|(k, v)| {
                let mut items = vec![format!("{k}={v}")];
                if k == "scope" {
                    items.extend(v.split(' ').map(str::to_string));
                }
                items
            })
            .collect();
        for e in *expected {
            assert!(
                query.iter().any(|q| q == e),
                "{id}: {e} missing from {location}"
            );
        }
        assert!(
            query.iter().any(|q| q == "code_challenge_method=S256"),
            "{id}"
        );
        let page = browser.walk(&location, None).await;
        let message = popup_message(&page.body);
        assert_eq!(
            message["response"]["backstageIdentity"]["identity"]["userEntityRef"], ALICE,
            "{id}: {message}"
        );
        assert!(
            server.auth.broker().token(ALICE, id, &[]).await.is_ok(),
            "{id}"
        );
    }
    assert_no_secret_logged(&peer.secrets());
}
