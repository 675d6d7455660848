//! Sign-in resolvers: turn a provider's profile into a Portico user, by matching User entities in
//! the catalog (by email or name, Backstage's resolvers) or by a configured ref pattern.

use std::future::Future;
use std::pin::Pin;

use crate::config::{ResolverConfig, SignInConfig};
use crate::identity::Identity;
use crate::providers::Profile;

/// Boxed future of a directory lookup.
pub type LookupFuture<'a> = Pin<Box<dyn Future<Output = Option<Identity>> + Send + 'a>>;

/// Where users are looked up: the catalog's User entities.
pub trait UserDirectory: Send + Sync {
    /// The user whose `spec.profile.email` is `email` (case-insensitive).
    fn by_email<'a>(&'a self, email: &'a str) -> LookupFuture<'a>;
    /// The user with this ref; also gives their ownership refs (user and groups).
    fn by_ref<'a>(&'a self, user_ref: &'a str) -> LookupFuture<'a>;
}

/// Why nobody was signed in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    /// No resolver found a user for the profile.
    #[error(
        "no user in the catalog matches this sign-in ({0}); ask an administrator to add a User entity for you"
    )]
    NoMatch(String),
    /// A resolver is misconfigured.
    #[error("sign-in resolver misconfigured: {0}")]
    Config(String),
}

/// Names of the resolvers Portico knows.
pub const RESOLVERS: &[&str] = &[
    "emailMatchingUserEntityProfileEmail",
    "emailLocalPartMatchingUserEntityName",
    "usernameMatchingUserEntityName",
    "userEntityRefPattern",
];

/// Checks resolver names and patterns at start-up.
pub fn check(provider: &str, sign_in: &SignInConfig) -> Result<(), String> {
    if sign_in.resolvers.is_empty() {
        return Err(format!(
            "auth.providers.{provider}.signIn.resolvers is empty: name at least one of {}",
            RESOLVERS.join(", ")
        ));
    }
    for r in &sign_in.resolvers {
        if !RESOLVERS.contains(&r.resolver.as_str()) {
            return Err(format!(
                "auth.providers.{provider}.signIn: unknown resolver \"{}\"; use one of {}",
                r.resolver,
                RESOLVERS.join(", ")
            ));
        }
        if r.resolver == "userEntityRefPattern" && r.pattern.is_none() {
            return Err(format!(
                "auth.providers.{provider}.signIn: userEntityRefPattern needs a pattern, e.g. 'user:default/{{username}}'"
            ));
        }
    }
    Ok(())
}

/// The first resolver that finds a user wins.
pub async fn resolve(
    sign_in: &SignInConfig,
    profile: &Profile,
    directory: &dyn UserDirectory,
) -> Result<Identity, SignInError> {
    for r in &sign_in.resolvers {
        if let Some(identity) = resolve_one(r, profile, directory).await? {
            return Ok(identity);
        }
    }
    Err(SignInError::NoMatch(describe(profile)))
}

async fn resolve_one(
    r: &ResolverConfig,
    profile: &Profile,
    directory: &dyn UserDirectory,
) -> Result<Option<Identity>, SignInError> {
    let email = profile.email.as_deref();
    let local_part = email.and_then(|e| e.split('@').next());
    let candidate = match r.resolver.as_str() {
        "emailMatchingUserEntityProfileEmail" => {
            let Some(email) = email else { return Ok(None) };
            if let Some(found) = directory.by_email(email).await {
                return Ok(Some(found));
            }
            None
        }
        "emailLocalPartMatchingUserEntityName" => local_part.map(|n| format!("user:default/{n}")),
        "usernameMatchingUserEntityName" => profile
            .username
            .as_deref()
            .map(|n| format!("user:default/{n}")),
        "userEntityRefPattern" => {
            let pattern = r.pattern.as_deref().ok_or_else(|| {
                SignInError::Config("userEntityRefPattern needs a pattern".into())
            })?;
            fill(pattern, profile)
        }
        other => return Err(SignInError::Config(format!("unknown resolver {other}"))),
    };
    let Some(user_ref) = candidate.map(|c| c.to_lowercase()) else {
        return Ok(None);
    };
    if !valid_user_ref(&user_ref) {
        return Ok(None);
    }
    if let Some(found) = directory.by_ref(&user_ref).await {
        return Ok(Some(found));
    }
    // A pattern names the user on its own; the other resolvers need the catalog unless told not to.
    if r.resolver == "userEntityRefPattern" || r.dangerously_allow_sign_in_without_user_in_catalog {
        return Ok(Some(Identity::user(user_ref)));
    }
    Ok(None)
}

fn fill(pattern: &str, p: &Profile) -> Option<String> {
    let mut out = pattern.to_string();
    for (key, value) in [
        ("{email}", p.email.as_deref()),
        (
            "{emailLocalPart}",
            p.email.as_deref().and_then(|e| e.split('@').next()),
        ),
        ("{username}", p.username.as_deref()),
    ] {
        if out.contains(key) {
            out = out.replace(key, value?);
        }
    }
    Some(out)
}

fn valid_user_ref(r: &str) -> bool {
    let Some(rest) = r.strip_prefix("user:") else {
        return false;
    };
    let (ns, name) = rest.split_once('/').unwrap_or(("default", rest));
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    ok(ns) && ok(name)
}

fn describe(p: &Profile) -> String {
    match (&p.email, &p.username) {
        (Some(e), Some(u)) => format!("email {e}, user name {u}"),
        (Some(e), None) => format!("email {e}"),
        (None, Some(u)) => format!("user name {u}"),
        (None, None) => "the profile has neither email nor user name".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir;
    impl UserDirectory for Dir {
        fn by_email<'a>(&'a self, email: &'a str) -> LookupFuture<'a> {
            Box::pin(async move {
                (email.eq_ignore_ascii_case("jane@acme.io")).then(|| Identity {
                    user_entity_ref: "user:default/jane.doe".into(),
                    ownership_entity_refs: vec![
                        "user:default/jane.doe".into(),
                        "group:default/team-a".into(),
                    ],
                })
            })
        }
        fn by_ref<'a>(&'a self, r: &'a str) -> LookupFuture<'a> {
            Box::pin(async move { (r == "user:default/bob").then(|| Identity::user(r)) })
        }
    }

    fn sign_in(resolvers: &[(&str, Option<&str>)]) -> SignInConfig {
        SignInConfig {
            resolvers: resolvers
                .iter()
                .map(|(r, p)| ResolverConfig {
                    resolver: r.to_string(),
                    pattern: p.map(str::to_string),
                    dangerously_allow_sign_in_without_user_in_catalog: false,
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn resolvers_in_order_and_their_failures() {
        let jane = Profile {
            email: Some("Jane@acme.io".into()),
            username: Some("jd".into()),
            ..Profile::default()
        };
        let bob = Profile {
            email: Some("bob@other.io".into()),
            username: Some("Bob".into()),
            ..Profile::default()
        };
        let both = sign_in(&[
            ("emailMatchingUserEntityProfileEmail", None),
            ("usernameMatchingUserEntityName", None),
        ]);
        let got = resolve(&both, &jane, &Dir).await.unwrap();
        assert_eq!(got.ownership_entity_refs.len(), 2);
        assert_eq!(
            resolve(&both, &bob, &Dir).await.unwrap().user_entity_ref,
            "user:default/bob"
        );
        let only_email = sign_in(&[("emailLocalPartMatchingUserEntityName", None)]);
        let err = resolve(&only_email, &jane, &Dir).await.unwrap_err();
        assert!(err.to_string().contains("email Jane@acme.io"), "{err}");
        let pattern = sign_in(&[("userEntityRefPattern", Some("user:guests/{username}"))]);
        assert_eq!(
            resolve(&pattern, &jane, &Dir)
                .await
                .unwrap()
                .user_entity_ref,
            "user:guests/jd"
        );
        assert!(
            check("x", &sign_in(&[("nope", None)]))
                .unwrap_err()
                .contains("unknown resolver")
        );
        assert!(check("x", &sign_in(&[("userEntityRefPattern", None)])).is_err());
    }
}
