//! Failures of one HTTP attempt: what they mean for the user (never with the API key), and whether
//! the call is worth trying again. 429 and 5xx are retried with exponential backoff (500 ms, ×2,
//! up to 25 % jitter) or after the server's `Retry-After` seconds (at most 30 s); 401/403 and
//! other 4xx are final at once.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::ModelError;

/// The first backoff delay.
const BASE_DELAY: Duration = Duration::from_millis(500);
/// The longest wait, whether backoff or `Retry-After`.
const MAX_DELAY: Duration = Duration::from_secs(30);
/// How much of an error body is read to find the provider's message.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// How much of a body that is not JSON is quoted.
const MAX_QUOTED: usize = 300;

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Worth another attempt (after `retry_after` when the server said).
    Retry {
        /// The error to report if no attempt is left.
        error: ModelError,
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Report it now.
    Final(ModelError),
}

impl From<ModelError> for Failure {
    fn from(e: ModelError) -> Self {
        Failure::Final(e)
    }
}

/// Runs `attempt` until it succeeds, fails for good, or `max_retries` retries are spent.
pub(crate) async fn with_retries<T, F, Fut>(
    max_retries: u32,
    mut attempt: F,
) -> Result<T, ModelError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut retries = 0;
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(Failure::Final(e)) => return Err(e),
            Err(Failure::Retry { error, retry_after }) => {
                if retries >= max_retries {
                    return Err(error);
                }
                let wait = delay(retries, retry_after);
                tracing::debug!(error = %error, retry = retries + 1, wait_ms = wait.as_millis() as u64, "retrying the model call");
                tokio::time::sleep(wait).await;
                retries += 1;
            }
        }
    }
}

/// The wait before retry number `retry` (0 for the first): the server's word when it gave one,
/// else 500 ms × 2^retry plus up to 25 % jitter; never more than 30 s.
pub(crate) fn delay(retry: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(after) = retry_after {
        return after.min(MAX_DELAY);
    }
    let base = BASE_DELAY.saturating_mul(1u32 << retry.min(16));
    let jitter_permille = RandomState::new().hash_one(retry) % 250;
    let jitter = base.saturating_mul(jitter_permille as u32) / 1000;
    (base + jitter).min(MAX_DELAY)
}

/// `Retry-After` in seconds (an HTTP date is ignored: backoff applies).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: f64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::from_secs_f64(secs.min(MAX_DELAY.as_secs_f64())))
}

/// What a status says: 401/403 are the key, 429 and 5xx may pass, other statuses are final.
pub(crate) fn classify(status: u16, message: String, retry_after: Option<Duration>) -> Failure {
    match status {
        401 | 403 => Failure::Final(ModelError::Unauthorized { status }),
        429 => Failure::Retry {
            error: ModelError::RateLimited,
            retry_after,
        },
        500..=599 => Failure::Retry {
            error: ModelError::Provider { status, message },
            retry_after,
        },
        _ => Failure::Final(ModelError::Provider { status, message }),
    }
}

/// The failure of a response whose status is not a success, with the provider's own message.
pub(crate) async fn status_failure(
    response: reqwest::Response,
    key: Option<&SecretString>,
) -> Failure {
    let status = response.status();
    let after = retry_after(response.headers());
    if matches!(status.as_u16(), 401 | 403) {
        // The body may quote the key; it is not read at all.
        return classify(status.as_u16(), String::new(), after);
    }
    let body = read_capped(response, MAX_ERROR_BODY).await;
    let mut message = provider_message(&body)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    if status.is_redirection() {
        message = format!(
            "{message}: redirects are not followed (they could carry the key elsewhere); set \
             assistant.model.baseUrl to the address it redirects to"
        );
    } else if status == reqwest::StatusCode::NOT_FOUND {
        message.push_str(" (check assistant.model.baseUrl and assistant.model.model)");
    }
    classify(status.as_u16(), redact(&message, key), after)
}

/// The message in an error body: `error.message` (OpenAI, Anthropic, vLLM), `error` as a
/// string (Ollama), or the start of a plain-text body.
pub(crate) fn provider_message(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let error = v.get("error");
        let text = error
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .or_else(|| error.and_then(Value::as_str))
            .or_else(|| v.get("message").and_then(Value::as_str));
        if let Some(t) = text.filter(|t| !t.trim().is_empty()) {
            return Some(t.trim().to_string());
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut quoted: String = text.chars().take(MAX_QUOTED).collect();
    if quoted.len() < text.len() {
        quoted.push('…');
    }
    Some(quoted)
}

/// Reads at most `max` bytes of a body; a broken body gives what arrived.
pub(crate) async fn read_capped(response: reqwest::Response, max: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = max - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= max {
            break;
        }
    }
    body
}

/// Replaces the key wherever it appears.
pub(crate) fn redact(text: &str, key: Option<&SecretString>) -> String {
    match key.map(ExposeSecret::expose_secret) {
        Some(k) if !k.is_empty() => text.replace(k, "[redacted]"),
        _ => text.to_string(),
    }
}

/// The provider's base URL as it may be shown: no user info, query or fragment.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    shown: String,
    timeout: Duration,
}

impl Endpoint {
    /// The base URL to show, and the silence that counts as a timeout.
    pub(crate) fn new(base: &reqwest::Url, timeout: Duration) -> Self {
        let mut shown = base.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.set_query(None);
        shown.set_fragment(None);
        Self {
            shown: shown.as_str().trim_end_matches('/').to_string(),
            timeout,
        }
    }

    /// A transport error (connect, TLS, timeout, broken body) as the user sees it.
    pub(crate) fn transport_error(&self, e: &reqwest::Error) -> ModelError {
        let message = if e.is_timeout() {
            format!(
                "it sent nothing for {} s (assistant.model.timeoutSeconds)",
                self.timeout.as_secs()
            )
        } else {
            let what = if e.is_connect() {
                "cannot connect"
            } else if e.is_body() || e.is_decode() {
                "the connection broke while the answer was streaming"
            } else {
                "the request failed"
            };
            // The innermost cause says it best ("Connection refused", a certificate problem).
            let mut cause = std::error::Error::source(e);
            while let Some(next) = cause.and_then(|c| c.source()) {
                cause = Some(next);
            }
            match cause {
                Some(c) => format!("{what} ({c})"),
                None => what.to_string(),
            }
        };
        ModelError::Unreachable {
            url: self.shown.clone(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_half_a_second_with_bounded_jitter() {
        for retry in 0..4 {
            let base = BASE_DELAY * (1 << retry);
            for _ in 0..50 {
                let d = delay(retry, None);
                assert!(d >= base && d < base + base / 4, "retry {retry}: {d:?}");
            }
        }
        assert_eq!(delay(20, None), MAX_DELAY);
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        assert_eq!(delay(3, Some(Duration::ZERO)), Duration::ZERO);
        assert_eq!(
            delay(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(delay(0, Some(Duration::from_secs(600))), MAX_DELAY);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "3600".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_DELAY));
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            classify(401, String::new(), None),
            Failure::Final(ModelError::Unauthorized { status: 401 })
        ));
        assert!(matches!(
            classify(429, String::new(), None),
            Failure::Retry {
                error: ModelError::RateLimited,
                ..
            }
        ));
        assert!(matches!(
            classify(529, "Overloaded".into(), None),
            Failure::Retry {
                error: ModelError::Provider { status: 529, .. },
                ..
            }
        ));
        assert!(matches!(
            classify(400, "bad".into(), None),
            Failure::Final(ModelError::Provider { status: 400, .. })
        ));
    }

    #[test]
    fn provider_messages_are_found_in_every_shape() {
        let openai =
            br#"{"error":{"message":"Invalid 'messages'","type":"invalid_request_error"}}"#;
        assert_eq!(
            provider_message(openai).as_deref(),
            Some("Invalid 'messages'")
        );
        let ollama = br#"{"error":"model \"llama9\" not found"}"#;
        assert_eq!(
            provider_message(ollama).as_deref(),
            Some("model \"llama9\" not found")
        );
        assert_eq!(
            provider_message(b"  Bad Gateway \n").as_deref(),
            Some("Bad Gateway")
        );
        assert_eq!(provider_message(b""), None);
        let long = "x".repeat(1000);
        assert_eq!(
            provider_message(long.as_bytes()).map(|m| m.chars().count()),
            Some(MAX_QUOTED + 1)
        );
    }

    #[test]
    fn the_key_is_redacted() {
        let key = SecretString::from("sk-secret");
        assert_eq!(
            redact("Incorrect API key provided: sk-secret.", Some(&key)),
            "Incorrect API key provided: [redacted]."
        );
    }

    #[test]
    fn the_shown_url_has_no_user_info_or_query() {
        let url = reqwest::Url::parse("https://user:pw@llm.example/v1/?key=abc#x").unwrap();
        let e = Endpoint::new(&url, Duration::from_secs(1));
        assert_eq!(e.shown, "https://llm.example/v1");
    }
}
