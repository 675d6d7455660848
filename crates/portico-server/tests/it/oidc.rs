//! Support for the auth tests against the real OpenID Connect provider (`oidc-provider`, started
//! by `scripts/lib/oidc-provider.sh`): the provider's coordinates, a browser that follows its
//! login and consent forms, and the capture of every log line to check that no secret leaks.

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

/// The provider the test script started, or `None` when told to skip.
pub struct Peer {
    /// `http://127.0.0.1:PORT`.
    pub issuer: String,
    /// The confidential client.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// Every secret the provider issued.
    pub secrets_file: String,
}

/// The running provider; panics with how to start it unless `PORTICO_TEST_OIDC=skip`.
pub fn peer() -> Option<Peer> {
    if std::env::var("PORTICO_TEST_OIDC").as_deref() == Ok("skip") {
        return None;
    }
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run ./scripts/test.sh (it starts oidc-provider), or set PORTICO_TEST_OIDC=skip")
        })
    };
    Some(Peer {
        issuer: var("PORTICO_TEST_OIDC_ISSUER"),
        client_id: var("PORTICO_TEST_OIDC_CLIENT_ID"),
        client_secret: var("PORTICO_TEST_OIDC_CLIENT_SECRET"),
        secrets_file: var("PORTICO_TEST_OIDC_SECRETS_FILE"),
    })
}

impl Peer {
    /// The provider's request counters.
    pub async fn stats(&self) -> Value {
        reqwest::get(format!("{}/__test/stats", self.issuer))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Refresh-token grants the provider has answered so far.
    pub async fn refreshes(&self) -> u64 {
        self.stats().await["token"]["refresh_token"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Revokes every grant of `login` at the provider, as a user would in its settings.
    pub async fn revoke_grants(&self, login: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}/__test/revoke-grants?sub={login}", self.issuer))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// Every secret it issued so far (codes, tokens, the client secret).
    pub fn secrets(&self) -> Vec<String> {
        std::fs::read_to_string(&self.secrets_file)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.len() >= 8)
            .map(str::to_string)
            .collect()
    }
}

/// A browser: keeps cookies, follows redirects itself, fills the provider's login (as `login`)
/// and consent forms.
pub struct Browser {
    /// The HTTP client with its cookie jar.
    pub client: reqwest::Client,
    login: String,
}

/// Where a walk through the flow ended.
#[derive(Debug)]
pub struct Page {
    /// The last URL.
    pub url: String,
    /// Its status (0 when the walk stopped before requesting it).
    pub status: u16,
    /// Its body.
    pub body: String,
}

fn form_action(html: &str, page: &str) -> String {
    let start = html.find("action=\"").expect("a form") + 8;
    let end = html[start..].find('"').unwrap() + start;
    url::Url::parse(page)
        .unwrap()
        .join(&html[start..end].replace("&amp;", "&"))
        .unwrap()
        .to_string()
}

impl Browser {
    /// A fresh browser that signs in at the provider as `login`.
    pub fn new(login: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            login: login.to_string(),
        }
    }

    /// Follows redirects and forms from `url` until a page that is neither, or (when `stop` is
    /// given) until a redirect to a URL starting with `stop`, which is not requested.
    pub async fn walk(&self, url: &str, stop: Option<&str>) -> Page {
        let mut url = url.to_string();
        for _ in 0..25 {
            if stop.is_some_and(|s| url.starts_with(s)) {
                return Page {
                    url,
                    status: 0,
                    body: String::new(),
                };
            }
            let response = self.client.get(&url).send().await.unwrap();
            let status = response.status();
            if status.is_redirection() {
                let location = response.headers()["location"].to_str().unwrap();
                url = url::Url::parse(&url)
                    .unwrap()
                    .join(location)
                    .unwrap()
                    .to_string();
                continue;
            }
            let body = response.text().await.unwrap();
            let form = if body.contains("name=\"prompt\" value=\"login\"") {
                vec![
                    ("prompt", "login".to_string()),
                    ("login", self.login.clone()),
                    ("password", "any".to_string()),
                ]
            } else if body.contains("name=\"prompt\" value=\"consent\"") {
                vec![("prompt", "consent".to_string())]
            } else {
                return Page {
                    url,
                    status: status.as_u16(),
                    body,
                };
            };
            let action = form_action(&body, &url);
            let response = self.client.post(&action).form(&form).send().await.unwrap();
            assert!(
                response.status().is_redirection(),
                "the provider's form answered {}",
                response.status()
            );
            let location = response.headers()["location"].to_str().unwrap();
            url = url::Url::parse(&action)
                .unwrap()
                .join(location)
                .unwrap()
                .to_string();
        }
        panic!("the flow did not end within 25 steps");
    }
}

/// The message the popup page posts to its opener.
pub fn popup_message(html: &str) -> Value {
    let start = html.find("var message = ").expect("a popup page") + 14;
    let end = html[start..].find(";\n").unwrap() + start;
    serde_json::from_str(&html[start..end]).unwrap()
}

/// Everything logged by this test binary (every level), to check that no secret leaks.
pub fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let buffer = buffer.clone();
            move || LogWriter(buffer.clone())
        };
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(writer)
            .try_init();
        buffer
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Asserts that none of `secrets` appears in what was logged, and writes the log where the test
/// script scans it again.
pub fn assert_no_secret_logged(secrets: &[String]) {
    let logs = captured_logs();
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(
        text.len() > 100,
        "the log capture must have recorded something"
    );
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "a secret issued by the provider appears in the logs"
        );
    }
    if let Ok(dir) = std::env::var("PORTICO_TEST_LOG_DIR") {
        let _ = std::fs::write(
            std::path::Path::new(&dir)
                .join(format!("portico-server-it-{}.log", std::process::id())),
            text,
        );
    }
}
