//! Async client for the MotherDuck Admin REST API.
//!
//! Knows HTTP and the API's shapes; knows nothing of scripts. Every call checks
//! its input against [`rules`] before a request is sent.

pub mod base_url;
pub mod error;
pub mod models;
pub mod resilience;
pub mod rules;

pub use error::ApiError;
pub use models::*;

use reqwest::{Method, StatusCode};
use resilience::{parse_retry_after, Gate, RetryPolicy, Stats};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use url::Url;

pub const DEFAULT_BASE_URL: &str = "https://api.motherduck.com";

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: Url,
    pub token: SecretString,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Requests per second across the whole run; `None` is unlimited.
    pub max_rps: Option<f64>,
}

impl ClientConfig {
    pub fn new(base_url: Url, token: SecretString) -> Self {
        Self {
            base_url,
            token,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_rps: None,
        }
    }
}

/// Whether `GET /v1/users` exists on this server: not probed yet, yes, or no.
const USERS_UNKNOWN: u8 = 0;
const USERS_YES: u8 = 1;
const USERS_NO: u8 = 2;

pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
    timeout: Duration,
    users_route: AtomicU8,
    retry: RetryPolicy,
    gate: Gate,
    stats: Stats,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    issues: Vec<Issue>,
}

#[derive(Deserialize)]
struct Issue {
    message: String,
    #[serde(default)]
    path: Vec<Value>,
}

impl Issue {
    fn render(&self) -> String {
        if self.path.is_empty() {
            return self.message.clone();
        }
        let path: Vec<String> = self
            .path
            .iter()
            .map(|p| match p {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        format!("{}: {}", path.join("."), self.message)
    }
}

#[derive(Deserialize)]
struct TokenList {
    tokens: Vec<Token>,
}

#[derive(Deserialize)]
struct AccountList {
    accounts: Vec<ActiveAccount>,
}

#[derive(Deserialize)]
struct UserPage {
    users: Vec<User>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Username {
    username: String,
}

#[derive(Deserialize)]
struct Session {
    session: String,
}

#[derive(Serialize)]
struct NewUser<'a> {
    username: &'a str,
}

#[derive(Serialize)]
struct PutConfig<'a> {
    config: &'a DucklingConfig,
}

/// Whose credentials a request carries.
enum Auth<'a> {
    Admin,
    Other(&'a SecretString),
}

pub fn install_crypto_provider() {
    // Several crates may race to install one; the first wins and that is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, String> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(concat!("mdops/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            base: config.base_url,
            token: config.token,
            timeout: config.timeout,
            users_route: AtomicU8::new(USERS_UNKNOWN),
            retry: config.retry,
            gate: Gate::new(config.max_rps),
            stats: Stats::default(),
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .expect("base URL was checked to be http(s)");
            path.pop_if_empty();
            // `extend` percent-encodes each segment, so `/` or `?` in a name stays inside it.
            path.extend(segments);
        }
        url
    }

    /// Requests, retries and 429s so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// One request with the run's policy: admission through the shared gate,
    /// then retries with backoff for failures that are safe to retry. A POST
    /// is retried only when it cannot have taken effect (429, refused
    /// connection); other failures of a POST are returned for the caller to
    /// resolve (see [`Client::create_token`]).
    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
        auth: Auth<'_>,
    ) -> Result<(StatusCode, bytes::Bytes), ApiError> {
        let idempotent = method != Method::POST;
        let mut attempt = 1;
        loop {
            self.gate.admit().await;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let (result, retry_after) = self
                .attempt(method.clone(), segments, query, body, &auth)
                .await;
            let retryable = match &result {
                Ok(_) => false,
                Err(ApiError::Status { status: 429, .. }) => true,
                Err(ApiError::Network { sent: false, .. }) => true,
                Err(e) => idempotent && e.is_ambiguous(),
            };
            if !retryable || attempt >= self.retry.max_attempts {
                return result;
            }
            let mut wait = self.retry.backoff(attempt);
            if let Some(after) = retry_after {
                let after = after.min(self.retry.max_delay);
                self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                // Everyone backs off, not just this request.
                self.gate.pause(after);
                wait = wait.max(after);
            }
            if let Err(e) = &result {
                tracing::warn!(%method, error = %e, attempt, wait_ms = wait.as_millis() as u64, "retrying");
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn attempt<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
        auth: &Auth<'_>,
    ) -> (
        Result<(StatusCode, bytes::Bytes), ApiError>,
        Option<Duration>,
    ) {
        let url = self.url(segments);
        let path = url.path().to_string();
        let token = match auth {
            Auth::Admin => &self.token,
            Auth::Other(t) => t,
        };
        let mut req = self
            .http
            .request(method.clone(), url)
            .bearer_auth(token.expose())
            .header("Accept", "application/json");
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let failed = |e: reqwest::Error| self.transport_error(&method, &path, e);
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return (Err(failed(e)), None),
        };
        let status = resp.status();
        let retry_after = (status == StatusCode::TOO_MANY_REQUESTS)
            .then(|| resp.headers().get(reqwest::header::RETRY_AFTER))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after)
            .or((status == StatusCode::TOO_MANY_REQUESTS).then_some(Duration::from_secs(1)));
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return (Err(failed(e)), None),
        };
        tracing::debug!(%method, %path, status = status.as_u16(), "api call");
        if status.is_success() {
            return (Ok((status, bytes)), None);
        }
        (
            Err(error_from_body(method.as_str(), &path, status, &bytes)),
            retry_after,
        )
    }

    fn transport_error(&self, method: &Method, path: &str, e: reqwest::Error) -> ApiError {
        if e.is_timeout() {
            return ApiError::Timeout {
                method: method.to_string(),
                path: path.to_string(),
                after: self.timeout,
            };
        }
        let host = self
            .base
            .host_str()
            .map(|h| match self.base.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
            .unwrap_or_default();
        ApiError::Network {
            method: method.to_string(),
            path: path.to_string(),
            host,
            detail: root_cause(&e),
            // A refused connection never carried the request; anything else may have.
            sent: !e.is_connect(),
        }
    }

    async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let (status, bytes) = self
            .send(method.clone(), segments, &[], body, Auth::Admin)
            .await?;
        let path = self.url(segments).path().to_string();
        decode(method.as_str(), &path, status, &bytes)
    }

    /// `POST /v1/users`: create a service account.
    ///
    /// The API has no idempotency keys. If the request fails in a way that
    /// leaves it unknown whether the account was made (timeout, dropped
    /// connection, 502–504), the account is looked up before anything is retried.
    pub async fn create_user(&self, username: &str) -> Result<String, ApiError> {
        rules::username(username)?;
        let mut attempt = 1;
        loop {
            let err = match self
                .call::<Username, _>(Method::POST, &["v1", "users"], Some(&NewUser { username }))
                .await
            {
                Ok(r) => return Ok(r.username),
                Err(e) if e.is_ambiguous() && attempt < self.retry.max_attempts => e,
                Err(e) => return Err(e),
            };
            match self.get_ducklings(username).await {
                Ok(_) => {
                    tracing::info!(
                        username,
                        "the create went through before the connection failed"
                    );
                    return Ok(username.to_string());
                }
                Err(n) if n.is_not_found() => {}
                // Cannot tell what happened: report the original failure.
                Err(_) => return Err(err),
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.retry.backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// `DELETE /v1/users/{username}`: delete an account and all of its data.
    pub async fn delete_user(&self, username: &str) -> Result<String, ApiError> {
        rules::path_username(username)?;
        let r: Username = self
            .call::<_, ()>(Method::DELETE, &["v1", "users", username], None)
            .await?;
        Ok(r.username)
    }

    /// `GET /v1/users/{username}/tokens`: token metadata (never secrets).
    pub async fn list_tokens(&self, username: &str) -> Result<Vec<Token>, ApiError> {
        rules::path_username(username)?;
        let r: TokenList = self
            .call::<_, ()>(Method::GET, &["v1", "users", username, "tokens"], None)
            .await?;
        Ok(r.tokens)
    }

    /// `POST /v1/users/{username}/tokens`: mint a token; the secret comes back once.
    ///
    /// If the request fails in a way that leaves it unknown whether a token was
    /// minted, any token of this name created since the request began is an
    /// orphan whose secret nobody received: it is revoked, then a fresh token
    /// is minted. So a retry never leaves a duplicate behind.
    pub async fn create_token(
        &self,
        username: &str,
        new: &NewToken,
    ) -> Result<CreatedToken, ApiError> {
        rules::new_token(username, new)?;
        let segments = ["v1", "users", username, "tokens"];
        let mut attempt = 1;
        loop {
            // Clocks differ a little between us and the server: look back a minute.
            let began = chrono::Utc::now() - chrono::Duration::seconds(60);
            let err = match self
                .call::<serde_json::Map<String, Value>, _>(Method::POST, &segments, Some(new))
                .await
            {
                Ok(body) => return self.created(body, &segments),
                Err(e) if e.is_ambiguous() && attempt < self.retry.max_attempts => e,
                Err(e) => return Err(e),
            };
            let orphans: Vec<Token> = match self.list_tokens(username).await {
                Ok(tokens) => tokens
                    .into_iter()
                    .filter(|t| t.name.as_deref() == Some(new.name.as_str()))
                    .filter(|t| {
                        chrono::DateTime::parse_from_rfc3339(&t.created_ts)
                            .map(|c| c >= began)
                            .unwrap_or(false)
                    })
                    .collect(),
                Err(_) => return Err(err),
            };
            for orphan in orphans {
                tracing::warn!(username, token_id = %orphan.id, "revoking a token minted by a request whose answer was lost");
                match self.delete_token(username, &orphan.id).await {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(_) => return Err(err),
                }
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.retry.backoff(attempt)).await;
            attempt += 1;
        }
    }

    fn created(
        &self,
        mut body: serde_json::Map<String, Value>,
        segments: &[&str],
    ) -> Result<CreatedToken, ApiError> {
        let path = self.url(segments).path().to_string();
        let secret = match body.remove("token") {
            Some(Value::String(s)) if !s.is_empty() => SecretString::new(s),
            _ => {
                return Err(ApiError::Decode {
                    method: "POST".into(),
                    path,
                    status: 200,
                    detail: "the response has no `token` field".into(),
                })
            }
        };
        let meta: Token =
            serde_json::from_value(Value::Object(body)).map_err(|e| ApiError::Decode {
                method: "POST".into(),
                path,
                status: 200,
                detail: describe_json_error(&e),
            })?;
        Ok(CreatedToken {
            meta,
            token: secret,
        })
    }

    /// `DELETE /v1/users/{username}/tokens/{token_id}`: revoke a token by id.
    pub async fn delete_token(&self, username: &str, token_id: &str) -> Result<(), ApiError> {
        rules::path_username(username)?;
        rules::token_id(token_id)?;
        let segments = ["v1", "users", username, "tokens", token_id];
        // The body is `{}` by the spec; an empty body is tolerated too.
        self.send::<()>(Method::DELETE, &segments, &[], None, Auth::Admin)
            .await?;
        Ok(())
    }

    /// `GET /v1/users/{username}/instances`.
    pub async fn get_ducklings(&self, username: &str) -> Result<DucklingConfig, ApiError> {
        rules::path_username(username)?;
        self.call::<_, ()>(Method::GET, &["v1", "users", username, "instances"], None)
            .await
    }

    /// `PUT /v1/users/{username}/instances`: full replacement, body wrapped in `config`.
    pub async fn set_ducklings(
        &self,
        username: &str,
        config: &DucklingConfig,
    ) -> Result<DucklingConfig, ApiError> {
        rules::path_username(username)?;
        rules::duckling_config(config)?;
        self.call(
            Method::PUT,
            &["v1", "users", username, "instances"],
            Some(&PutConfig { config }),
        )
        .await
    }

    /// `GET /v1/active_accounts`: accounts with running Ducklings.
    pub async fn active_accounts(&self) -> Result<Vec<ActiveAccount>, ApiError> {
        let r: AccountList = self
            .call::<_, ()>(Method::GET, &["v1", "active_accounts"], None)
            .await?;
        Ok(r.accounts)
    }

    /// `POST /v1/dives/{dive_id}/embed-session`: an opaque session string (a secret).
    pub async fn embed_session(
        &self,
        dive_id: &str,
        req: &EmbedRequest,
    ) -> Result<SecretString, ApiError> {
        rules::dive_id(dive_id)?;
        rules::path_username(&req.username)?;
        if let Some(h) = &req.session_hint {
            rules::session_hint(h)?;
        }
        let r: Session = self
            .call(
                Method::POST,
                &["v1", "dives", dive_id, "embed-session"],
                Some(req),
            )
            .await?;
        Ok(SecretString::new(r.session))
    }

    /// `GET /v1/users`, all pages, de-duplicated by id. `None` when this server
    /// has no such route (older API): the answer is remembered.
    pub async fn list_users(&self) -> Result<Option<Vec<User>>, ApiError> {
        if self.users_route.load(Ordering::Relaxed) == USERS_NO {
            return Ok(None);
        }
        let mut users: Vec<User> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut page_token: Option<String> = None;
        // Bounded: a server that keeps handing out page tokens cannot loop us forever.
        for _ in 0..10_000 {
            let mut query = vec![("limit", "1000".to_string())];
            if let Some(t) = &page_token {
                query.push(("page_token", t.clone()));
            }
            let segments = ["v1", "users"];
            let result = self
                .send::<()>(Method::GET, &segments, &query, None, Auth::Admin)
                .await;
            let (status, bytes) = match result {
                Err(ApiError::Status {
                    status: 404,
                    code: None,
                    ..
                }) => {
                    self.users_route.store(USERS_NO, Ordering::Relaxed);
                    return Ok(None);
                }
                other => other?,
            };
            self.users_route.store(USERS_YES, Ordering::Relaxed);
            let page: UserPage = decode("GET", "/v1/users", status, &bytes)?;
            for u in page.users {
                let key = u.id.clone().unwrap_or_else(|| u.username.to_lowercase());
                if seen.insert(key) {
                    users.push(u);
                }
            }
            match page.next_page_token {
                Some(t) if !t.is_empty() && Some(&t) != page_token.as_ref() => page_token = Some(t),
                _ => break,
            }
        }
        Ok(Some(users))
    }

    /// Whether `secret` authenticates as `username`: the token lists its own
    /// account's tokens (allowed for every user's own account).
    pub async fn verify_token(
        &self,
        username: &str,
        secret: &SecretString,
    ) -> Result<bool, ApiError> {
        rules::path_username(username)?;
        let segments = ["v1", "users", username, "tokens"];
        match self
            .send::<()>(Method::GET, &segments, &[], None, Auth::Other(secret))
            .await
        {
            Ok(_) => Ok(true),
            Err(ApiError::Status {
                status: 401 | 403, ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn decode<T: DeserializeOwned>(
    method: &str,
    path: &str,
    status: StatusCode,
    bytes: &[u8],
) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::Decode {
        method: method.to_string(),
        path: path.to_string(),
        status: status.as_u16(),
        detail: describe_json_error(&e),
    })
}

/// Describes a JSON failure without quoting the body: it may hold a secret.
fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => format!(
            "the body ends early, at line {} column {}",
            e.line(),
            e.column()
        ),
        Category::Syntax => format!("malformed JSON at line {} column {}", e.line(), e.column()),
        Category::Data => "JSON of an unexpected shape (a missing field or a wrong type)".into(),
        Category::Io => "the body could not be read".into(),
    }
}

fn error_from_body(method: &str, path: &str, status: StatusCode, bytes: &[u8]) -> ApiError {
    let (code, message, issues) = match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(b) => (
            b.code,
            b.message.unwrap_or_default(),
            b.issues.iter().map(Issue::render).collect(),
        ),
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            let text: String = text.trim().chars().take(200).collect();
            (None, text, Vec::new())
        }
    };
    ApiError::Status {
        method: method.to_string(),
        path: path.to_string(),
        status: status.as_u16(),
        code,
        message,
        issues,
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let text = cur.to_string();
    if text.contains("Connection refused") {
        "connection refused".into()
    } else {
        text
    }
}
