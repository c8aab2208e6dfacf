//! Async client for the MotherDuck Admin REST API.
//!
//! Knows HTTP and the API's shapes; knows nothing of scripts. Every call checks
//! its input against [`rules`] before a request is sent.

pub mod base_url;
pub mod error;
pub mod models;
pub mod rules;

pub use error::ApiError;
pub use models::*;

use reqwest::{Method, StatusCode};
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
}

impl ClientConfig {
    pub fn new(base_url: Url, token: SecretString) -> Self {
        Self {
            base_url,
            token,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
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
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        Ok(Self {
            http,
            base: config.base_url,
            token: config.token,
            timeout: config.timeout,
            users_route: AtomicU8::new(USERS_UNKNOWN),
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

    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
        auth: Auth<'_>,
    ) -> Result<(StatusCode, bytes::Bytes), ApiError> {
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
        let resp = req.send().await.map_err(failed)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(failed)?;
        tracing::debug!(%method, %path, status = status.as_u16(), "api call");
        if status.is_success() {
            return Ok((status, bytes));
        }
        Err(error_from_body(method.as_str(), &path, status, &bytes))
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
    pub async fn create_user(&self, username: &str) -> Result<String, ApiError> {
        rules::username(username)?;
        let r: Username = self
            .call(Method::POST, &["v1", "users"], Some(&NewUser { username }))
            .await?;
        Ok(r.username)
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
    pub async fn create_token(
        &self,
        username: &str,
        new: &NewToken,
    ) -> Result<CreatedToken, ApiError> {
        rules::new_token(username, new)?;
        let segments = ["v1", "users", username, "tokens"];
        let mut body: serde_json::Map<String, Value> =
            self.call(Method::POST, &segments, Some(new)).await?;
        let path = self.url(&segments).path().to_string();
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
