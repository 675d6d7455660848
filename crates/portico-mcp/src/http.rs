//! The HTTP client every transport uses: the policy resolver (checked after DNS), no proxy
//! from the environment, same-origin 307/308 redirects only, and the connect timeout. Also
//! turns transport and library errors into [`McpError`] without URLs or credentials.

use std::error::Error as StdError;
use std::sync::Arc;

use rmcp::transport::streamable_http_client::{
    AuthRequiredError, HttpStatusError, InsufficientScopeError, StreamableHttpError,
};

use crate::error::McpError;
use crate::limits::Limits;
use crate::policy::{PolicyError, PolicyResolver, UrlPolicy, origin_of};

const MAX_REDIRECTS: usize = 5;

/// Builds the reqwest client for one policy and set of limits.
pub(crate) fn client(policy: Arc<UrlPolicy>, limits: &Limits) -> Result<reqwest::Client, McpError> {
    reqwest::Client::builder()
        .dns_resolver(PolicyResolver::new(policy))
        .no_proxy()
        .redirect(redirect_policy())
        .connect_timeout(limits.connect_timeout)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| McpError::Connect(e.without_url().to_string()))
}

/// Follows only 307/308 within the same origin (they keep method and body); refuses a redirect
/// to another origin with a clear error; hands other 3xx back to the transport as they are.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let from = attempt
            .previous()
            .first()
            .map(origin_of)
            .unwrap_or_default();
        let to = origin_of(attempt.url());
        if from != to {
            return attempt.error(PolicyError::CrossOriginRedirect { from, to });
        }
        let keeps_body = matches!(
            attempt.status(),
            reqwest::StatusCode::TEMPORARY_REDIRECT | reqwest::StatusCode::PERMANENT_REDIRECT
        );
        if !keeps_body {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

/// Maps a reqwest error: a policy refusal in its chain wins; never includes the URL.
pub(crate) fn from_reqwest(e: &reqwest::Error) -> McpError {
    if let Some(p) = find::<PolicyError>(e) {
        return McpError::Refused(p.clone());
    }
    if e.is_timeout() {
        return McpError::Connect("timed out".into());
    }
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "<remote>");
    }
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    McpError::Connect(text)
}

fn find<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(t) = c.downcast_ref::<T>() {
            return Some(t);
        }
        cur = c.source();
    }
    None
}

/// Classifies any error from a transport by walking its source chain.
pub(crate) fn classify(e: &(dyn StdError + 'static)) -> McpError {
    if let Some(p) = find::<PolicyError>(e) {
        return McpError::Refused(p.clone());
    }
    if let Some(a) = find::<AuthRequiredError>(e) {
        return McpError::AuthRequired {
            challenge: Some(a.www_authenticate_header.clone()),
        };
    }
    if let Some(a) = find::<InsufficientScopeError>(e) {
        return McpError::AuthRequired {
            challenge: Some(a.www_authenticate_header.clone()),
        };
    }
    if let Some(h) = find::<HttpStatusError>(e) {
        return McpError::Unavailable {
            status: h.status,
            retry_after: h.retry_after.clone(),
        };
    }
    if let Some(s) = find::<crate::sse::SseTransportError>(e) {
        return s.to_mcp();
    }
    if let Some(s) = find::<StreamableHttpError<reqwest::Error>>(e) {
        return match s {
            StreamableHttpError::Client(r) => from_reqwest(r),
            StreamableHttpError::ResponseBodyTooLarge { .. } => McpError::TooLarge(s.to_string()),
            StreamableHttpError::Sse(inner) if inner.to_string().contains("maximum size") => {
                McpError::TooLarge(inner.to_string())
            }
            StreamableHttpError::AuthRequired(a) => McpError::AuthRequired {
                challenge: Some(a.www_authenticate_header.clone()),
            },
            StreamableHttpError::InsufficientScope(a) => McpError::AuthRequired {
                challenge: Some(a.www_authenticate_header.clone()),
            },
            StreamableHttpError::HttpStatus(h) => McpError::Unavailable {
                status: h.status,
                retry_after: h.retry_after.clone(),
            },
            other => McpError::Protocol(other.to_string()),
        };
    }
    if let Some(r) = find::<reqwest::Error>(e) {
        return from_reqwest(r);
    }
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if text.contains("maximum size") || text.contains("too large") {
        McpError::TooLarge(text)
    } else {
        McpError::Protocol(text)
    }
}
