//! What each built-in provider id means: its endpoints (with the options that move them, for
//! GitHub Enterprise, self-hosted GitLab, an Okta org …), default scopes and quirks. Any endpoint
//! can still be overridden one by one in config.

use crate::AuthError;
use crate::config::ProviderConfig;

/// How the user's profile is read after sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileSource {
    /// A JSON profile endpoint (OIDC userinfo, GitHub `/user`, Graph `/me` …).
    Json(String),
    /// Bitbucket Server's `whoami`, which answers the user name as plain text.
    PlainUsername(String),
    /// The claims of the ID token from the token response.
    IdToken,
}

/// Where a provider's endpoints come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointSource {
    /// Known up front.
    Fixed(Endpoints),
    /// An OIDC discovery document, read on first use; explicit overrides still win.
    Discovery(String),
}

/// A provider's OAuth endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// Where users are sent to consent.
    pub authorization: String,
    /// Where codes and refresh tokens are exchanged.
    pub token: String,
    /// How the profile is read.
    pub profile: Option<ProfileSource>,
    /// RFC 7009 revocation, when the provider has it.
    pub revocation: Option<String>,
    /// The ID token issuer to expect, when known.
    pub issuer: Option<String>,
}

/// How a provider writes scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeStyle {
    /// As given.
    Plain,
    /// Okta: scopes other than the OIDC standard ones get an `okta.` prefix.
    Okta,
}

/// A built-in provider type, resolved from the id or `type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    /// The provider type (`github`, `oidc` …).
    pub kind: &'static str,
    /// Where its endpoints come from.
    pub endpoints: EndpointSource,
    /// Scopes it asks for by default.
    pub default_scopes: &'static [&'static str],
    /// How it writes scopes.
    pub scope_style: ScopeStyle,
    /// Extra parameters of the authorization request.
    pub authorize_params: Vec<(&'static str, String)>,
}

/// Provider types whose sign-in comes from a fronting proxy, not from OAuth.
pub const PROXY_KINDS: &[&str] = &["proxy", "gcpIap", "cfaccess"];

/// Every provider type Portico knows, for error messages.
pub const KINDS: &[&str] = &[
    "github",
    "gitlab",
    "google",
    "microsoft",
    "okta",
    "onelogin",
    "atlassian",
    "bitbucket",
    "bitbucketServer",
    "vmwareCloudServices",
    "auth0",
    "oidc",
    "oauth2",
    "guest",
    "proxy",
    "gcpIap",
    "cfaccess",
];

fn trim(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}

fn need<'a>(
    value: &'a Option<String>,
    id: &str,
    key: &str,
    example: &str,
) -> Result<&'a str, AuthError> {
    value.as_deref().ok_or_else(|| {
        AuthError::Config(format!(
            "auth.providers.{id}.{key} is required (e.g. {example})"
        ))
    })
}

fn fixed(
    authorization: String,
    token: String,
    profile: Option<ProfileSource>,
    revocation: Option<String>,
) -> EndpointSource {
    EndpointSource::Fixed(Endpoints {
        authorization,
        token,
        profile,
        revocation,
        issuer: None,
    })
}

/// The preset for an OAuth provider of type `kind` configured under `id`.
pub fn preset(id: &str, kind: &str, c: &ProviderConfig) -> Result<Preset, AuthError> {
    let mut preset = Preset {
        kind: "oauth2",
        endpoints: EndpointSource::Fixed(Endpoints::default()),
        default_scopes: &[],
        scope_style: ScopeStyle::Plain,
        authorize_params: Vec::new(),
    };
    match kind {
        "github" => {
            let web = c
                .enterprise_instance_url
                .as_deref()
                .map_or("https://github.com".to_string(), trim);
            let api = match &c.enterprise_instance_url {
                Some(_) => format!("{web}/api/v3"),
                None => "https://api.github.com".into(),
            };
            preset.kind = "github";
            preset.endpoints = fixed(
                format!("{web}/login/oauth/authorize"),
                format!("{web}/login/oauth/access_token"),
                Some(ProfileSource::Json(format!("{api}/user"))),
                None,
            );
            preset.default_scopes = &["read:user"];
        }
        "gitlab" => {
            let base = c
                .audience
                .as_deref()
                .map_or("https://gitlab.com".to_string(), trim);
            preset.kind = "gitlab";
            preset.endpoints = fixed(
                format!("{base}/oauth/authorize"),
                format!("{base}/oauth/token"),
                Some(ProfileSource::Json(format!("{base}/api/v4/user"))),
                Some(format!("{base}/oauth/revoke")),
            );
            preset.default_scopes = &["read_user"];
        }
        "google" => {
            preset.kind = "google";
            preset.endpoints = fixed(
                "https://accounts.google.com/o/oauth2/v2/auth".into(),
                "https://oauth2.googleapis.com/token".into(),
                Some(ProfileSource::Json(
                    "https://openidconnect.googleapis.com/v1/userinfo".into(),
                )),
                Some("https://oauth2.googleapis.com/revoke".into()),
            );
            preset.default_scopes = &["openid", "email", "profile"];
            preset.authorize_params = vec![
                ("access_type", "offline".into()),
                ("include_granted_scopes", "true".into()),
                ("prompt", "consent".into()),
            ];
        }
        "microsoft" => {
            let tenant = c.tenant_id.as_deref().unwrap_or("common");
            let base = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0");
            preset.kind = "microsoft";
            preset.endpoints = fixed(
                format!("{base}/authorize"),
                format!("{base}/token"),
                Some(ProfileSource::Json(
                    "https://graph.microsoft.com/v1.0/me".into(),
                )),
                None,
            );
            preset.default_scopes = &["openid", "offline_access", "profile", "email", "User.Read"];
        }
        "okta" => {
            let org = trim(need(
                &c.audience,
                id,
                "audience",
                "https://dev-123.okta.com",
            )?);
            let server = c.auth_server_id.as_deref().unwrap_or("default");
            let base = format!("{org}/oauth2/{server}");
            preset.kind = "okta";
            preset.endpoints = EndpointSource::Fixed(Endpoints {
                authorization: format!("{base}/v1/authorize"),
                token: format!("{base}/v1/token"),
                profile: Some(ProfileSource::Json(format!("{base}/v1/userinfo"))),
                revocation: Some(format!("{base}/v1/revoke")),
                issuer: Some(base),
            });
            preset.default_scopes = &["openid", "email", "profile", "offline_access"];
            preset.scope_style = ScopeStyle::Okta;
        }
        "onelogin" => {
            let issuer = trim(need(
                &c.issuer,
                id,
                "issuer",
                "https://acme.onelogin.com/oidc/2",
            )?);
            preset.kind = "onelogin";
            preset.endpoints = EndpointSource::Fixed(Endpoints {
                authorization: format!("{issuer}/auth"),
                token: format!("{issuer}/token"),
                profile: Some(ProfileSource::Json(format!("{issuer}/me"))),
                revocation: Some(format!("{issuer}/token/revocation")),
                issuer: Some(issuer),
            });
            preset.default_scopes = &["openid", "email", "profile", "offline_access"];
        }
        "atlassian" => {
            preset.kind = "atlassian";
            preset.endpoints = fixed(
                "https://auth.atlassian.com/authorize".into(),
                "https://auth.atlassian.com/oauth/token".into(),
                Some(ProfileSource::Json("https://api.atlassian.com/me".into())),
                None,
            );
            preset.authorize_params = vec![
                ("audience", "api.atlassian.com".into()),
                ("prompt", "consent".into()),
            ];
        }
        "bitbucket" => {
            preset.kind = "bitbucket";
            preset.endpoints = fixed(
                "https://bitbucket.org/site/oauth2/authorize".into(),
                "https://bitbucket.org/site/oauth2/access_token".into(),
                Some(ProfileSource::Json(
                    "https://api.bitbucket.org/2.0/user".into(),
                )),
                None,
            );
            preset.default_scopes = &["team"];
        }
        "bitbucketServer" => {
            let host = trim(need(
                &c.host,
                id,
                "host",
                "https://bitbucket.acme.internal",
            )?);
            preset.kind = "bitbucketServer";
            preset.endpoints = fixed(
                format!("{host}/rest/oauth2/latest/authorize"),
                format!("{host}/rest/oauth2/latest/token"),
                Some(ProfileSource::PlainUsername(format!(
                    "{host}/plugins/servlet/applinks/whoami"
                ))),
                None,
            );
            preset.default_scopes = &["PROJECT_ADMIN"];
        }
        "vmwareCloudServices" => {
            let base = "https://console.cloud.vmware.com/csp/gateway";
            preset.kind = "vmwareCloudServices";
            preset.endpoints = EndpointSource::Fixed(Endpoints {
                authorization: format!("{base}/discovery"),
                token: format!("{base}/am/api/auth/authorize"),
                profile: Some(ProfileSource::IdToken),
                revocation: None,
                issuer: Some("https://gaz.csp-vidm-prod.com".into()),
            });
            preset.default_scopes = &["openid"];
        }
        "auth0" => {
            let domain = need(&c.domain, id, "domain", "acme.eu.auth0.com")?;
            let base = if domain.starts_with("http") {
                trim(domain)
            } else {
                format!("https://{}", trim(domain))
            };
            preset.kind = "auth0";
            preset.endpoints = EndpointSource::Fixed(Endpoints {
                authorization: format!("{base}/authorize"),
                token: format!("{base}/oauth/token"),
                profile: Some(ProfileSource::Json(format!("{base}/userinfo"))),
                revocation: Some(format!("{base}/oauth/revoke")),
                issuer: Some(format!("{base}/")),
            });
            preset.default_scopes = &["openid", "email", "profile", "offline_access"];
            if let Some(audience) = &c.audience {
                preset.authorize_params = vec![("audience", audience.clone())];
            }
        }
        "oidc" => {
            preset.kind = "oidc";
            preset.endpoints = EndpointSource::Discovery(
                need(
                    &c.metadata_url,
                    id,
                    "metadataUrl",
                    "https://idp.example.com/.well-known/openid-configuration",
                )?
                .to_string(),
            );
            preset.default_scopes = &["openid", "email", "profile", "offline_access"];
        }
        "oauth2" => {
            preset.endpoints = fixed(
                need(
                    &c.authorization_url,
                    id,
                    "authorizationUrl",
                    "https://idp/authorize",
                )?
                .to_string(),
                need(&c.token_url, id, "tokenUrl", "https://idp/token")?.to_string(),
                c.user_info_url.clone().map(ProfileSource::Json),
                None,
            );
        }
        other => {
            return Err(AuthError::Config(format!(
                "auth.providers.{id}: unknown provider type \"{other}\"; set `type` to one of {}",
                KINDS.join(", ")
            )));
        }
    }
    apply_overrides(&mut preset.endpoints, c);
    Ok(preset)
}

/// Explicit endpoint options win over a preset's (and over discovery, at use).
fn apply_overrides(endpoints: &mut EndpointSource, c: &ProviderConfig) {
    if let EndpointSource::Fixed(e) = endpoints {
        override_endpoints(e, c);
    }
}

/// Applies a provider's explicit endpoint options to `e`.
pub fn override_endpoints(e: &mut Endpoints, c: &ProviderConfig) {
    if let Some(u) = &c.authorization_url {
        e.authorization = u.clone();
    }
    if let Some(u) = &c.token_url {
        e.token = u.clone();
    }
    if let Some(u) = &c.user_info_url {
        e.profile = Some(ProfileSource::Json(u.clone()));
    }
    if let Some(u) = &c.revocation_url {
        e.revocation = Some(u.clone());
    }
    if let Some(u) = &c.issuer {
        e.issuer = Some(u.clone());
    }
}

/// OIDC scopes Okta accepts without its `okta.` prefix.
const OKTA_STANDARD: &[&str] = &[
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
    "groups",
    "device_sso",
];

impl ScopeStyle {
    /// A scope as this provider expects it.
    pub fn apply(self, scope: &str) -> String {
        match self {
            ScopeStyle::Okta if !OKTA_STANDARD.contains(&scope) && !scope.starts_with("okta.") => {
                format!("okta.{scope}")
            }
            _ => scope.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_options_move_the_endpoints() {
        let ghe = ProviderConfig {
            enterprise_instance_url: Some("https://ghe.acme.io/".into()),
            ..Default::default()
        };
        let p = preset("github", "github", &ghe).unwrap();
        let EndpointSource::Fixed(e) = p.endpoints else {
            panic!()
        };
        assert_eq!(e.authorization, "https://ghe.acme.io/login/oauth/authorize");
        assert_eq!(
            e.profile,
            Some(ProfileSource::Json(
                "https://ghe.acme.io/api/v3/user".into()
            ))
        );
        let okta = ProviderConfig {
            audience: Some("https://dev-1.okta.com".into()),
            token_url: Some("http://127.0.0.1:9/token".into()),
            ..Default::default()
        };
        let p = preset("okta", "okta", &okta).unwrap();
        let EndpointSource::Fixed(e) = p.endpoints else {
            panic!()
        };
        assert_eq!(
            e.authorization,
            "https://dev-1.okta.com/oauth2/default/v1/authorize"
        );
        assert_eq!(e.token, "http://127.0.0.1:9/token");
        assert_eq!(p.scope_style.apply("users.read"), "okta.users.read");
        assert_eq!(p.scope_style.apply("openid"), "openid");
        let err = preset("okta", "okta", &ProviderConfig::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("auth.providers.okta.audience is required"),
            "{err}"
        );
        let err = preset("x", "nope", &ProviderConfig::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown provider type \"nope\""), "{err}");
    }
}
