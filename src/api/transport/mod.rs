//! The HTTP side: one client per run, URLs built from checked segments, one
//! request with the run's policy (pacing, retries with backoff), and bodies
//! read with a size limit while they stream.

use super::error::{error_from_body, ApiError};
use super::resilience::{parse_retry_after, Gate, RetryPolicy, Stats};
use super::{ClientConfig, SecretString};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::time::Duration;
use url::Url;

/// Whether `GET /v1/users` exists on this server: not probed yet, yes, or no.
pub(super) const USERS_UNKNOWN: u8 = 0;
pub(super) const USERS_YES: u8 = 1;
pub(super) const USERS_NO: u8 = 2;

pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
    timeout: Duration,
    max_body: usize,
    pub(super) users_route: AtomicU8,
    pub(super) retry: RetryPolicy,
    gate: Gate,
    pub(super) stats: Stats,
    /// The server's clock minus ours, in milliseconds, from the `Date` header
    /// of its latest answer: orphans of a lost create are looked for in the
    /// server's time, so a skewed local clock cannot hide one.
    clock_offset_ms: AtomicI64,
    clock_known: AtomicBool,
    /// Token ids each account was seen to hold, by lower-cased username: a
    /// token that was there before a create began is not that create's orphan.
    listed: std::sync::Mutex<std::collections::HashMap<String, std::collections::HashSet<String>>>,
}

/// Throttled answers one request may get before it gives up.
const MAX_THROTTLES: u32 = 30;
/// A `Retry-After` this long pauses every request of the run, not just one.
const LONG_RETRY_AFTER: Duration = Duration::from_secs(20);

/// Up to `max`, at random: requests told to wait alike do not come back alike.
fn jitter(max: Duration) -> Duration {
    use rand::Rng;
    Duration::from_micros(rand::rng().random_range(0..=max.as_micros() as u64))
}

/// Whose credentials a request carries.
pub(super) enum Auth<'a> {
    Admin,
    Other(&'a SecretString),
}

/// A path segment that may be sent: not empty, not `.` or `..`, no control
/// character (URL parsers drop TAB, CR and LF, so `"..\t"` would become
/// `..`), no slash or backslash (a proxy that decodes `%2F` would split it).
pub fn check_segment(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("it is empty".into());
    }
    if value == "." || value == ".." {
        return Err(format!("{value:?} is not a name"));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!("it contains the control character {:?}", c));
    }
    if value.contains(['/', '\\']) {
        return Err("it contains a slash".into());
    }
    Ok(())
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, String> {
        super::install_crypto_provider();
        crate::redact::register(config.token.expose());
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(concat!("mdops/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            // The Admin API does not redirect; following one could turn a
            // token revocation into an account deletion.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            base: config.base_url,
            token: config.token,
            timeout: config.timeout,
            max_body: config.max_body,
            users_route: AtomicU8::new(USERS_UNKNOWN),
            retry: config.retry,
            gate: Gate::new(config.max_rps),
            stats: Stats::default(),
            clock_offset_ms: AtomicI64::new(0),
            clock_known: AtomicBool::new(false),
            listed: Default::default(),
        })
    }

    /// Remembers the tokens a listing showed.
    pub(super) fn listed(&self, username: &str, tokens: &[super::Token]) {
        let mut listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
        listed
            .entry(username.to_lowercase())
            .or_default()
            .extend(tokens.iter().map(|t| t.id.to_lowercase()));
    }

    /// The token ids this account was seen to hold, if it was ever listed.
    pub(super) fn seen_tokens(&self, username: &str) -> Option<std::collections::HashSet<String>> {
        self.listed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&username.to_lowercase())
            .cloned()
    }

    /// A moment of our clock in the server's time, as far as its `Date`
    /// headers tell (`None` before any answer carried one).
    /// A `Date` more than a day off ours is not believed (a broken or hostile
    /// server must not widen or close the orphan search at will).
    pub fn server_time(
        &self,
        local: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let offset = self.clock_offset_ms.load(Ordering::Relaxed);
        (self.clock_known.load(Ordering::Relaxed) && offset.abs() <= 86_400_000)
            .then(|| local + chrono::Duration::milliseconds(offset))
    }

    fn note_server_date(&self, headers: &reqwest::header::HeaderMap) {
        let Some(date) = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        else {
            return;
        };
        // The header has whole seconds: the middle of that second is the best guess.
        let server = date.with_timezone(&chrono::Utc) + chrono::Duration::milliseconds(500);
        let offset = (server - chrono::Utc::now()).num_milliseconds();
        self.clock_offset_ms.store(offset, Ordering::Relaxed);
        self.clock_known.store(true, Ordering::Relaxed);
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Requests, retries and 429s so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The URL of `segments` under the base URL; each segment is checked, then
    /// percent-encoded, so `?` or `#` in a name stays inside it.
    pub fn url(&self, segments: &[&str]) -> Result<Url, ApiError> {
        for s in segments {
            check_segment(s).map_err(|why| ApiError::Validation {
                field: "path".into(),
                message: format!(
                    "refusing to send a request with the path segment {}: {why}",
                    crate::output::escape(&format!("{s:?}"))
                ),
            })?;
        }
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|_| ApiError::Setup("the API URL cannot have a path".into()))?;
            path.pop_if_empty();
            path.extend(segments);
        }
        Ok(url)
    }

    /// One request with the run's policy: admission through the shared gate,
    /// then retries with backoff for failures that are safe to retry. A POST
    /// is retried only when it cannot have taken effect (429, refused
    /// connection); other failures of a POST are returned for the caller to
    /// resolve (see [`Client::create_token`]).
    pub(super) async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&B>,
        auth: Auth<'_>,
    ) -> Result<(StatusCode, bytes::Bytes), ApiError> {
        let url = self.url(segments)?;
        let idempotent = method != Method::POST;
        let mut attempt = 1;
        // Throttles are the server asking to slow down, not failures: they do
        // not use up the attempts, but a server that never stops is given up on.
        let mut throttles = 0;
        loop {
            self.gate.admit().await;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let (result, retry_after) = self
                .attempt(method.clone(), url.clone(), query, body, &auth)
                .await;
            let throttled = retry_after.is_some();
            match &result {
                _ if throttled => self.gate.throttled(),
                Ok(_) | Err(ApiError::Status { .. }) => self.gate.answered(),
                Err(_) => {}
            }
            let retryable = match &result {
                Ok(_) => false,
                _ if throttled => throttles < MAX_THROTTLES,
                Err(ApiError::Network { sent: false, .. }) => true,
                Err(e) => idempotent && e.is_ambiguous(),
            };
            if !retryable || (!throttled && attempt >= self.retry.max_attempts) {
                return result;
            }
            let wait = match retry_after {
                Some(after) => {
                    let after = after.min(self.retry.max_delay);
                    throttles += 1;
                    self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                    // A long wait is the server's, for everyone; a short one is
                    // this request's (the shared rate already came down).
                    if after >= LONG_RETRY_AFTER {
                        self.gate.pause(after);
                    }
                    after + jitter(after / 10)
                }
                None => {
                    let w = self.retry.backoff(attempt);
                    attempt += 1;
                    w
                }
            };
            if let Err(e) = &result {
                if throttled {
                    tracing::debug!(%method, error = %e, throttles, wait_ms = wait.as_millis() as u64, "throttled");
                } else {
                    tracing::warn!(%method, error = %e, attempt, wait_ms = wait.as_millis() as u64, "retrying");
                }
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: Url,
        query: &[(&str, String)],
        body: Option<&B>,
        auth: &Auth<'_>,
    ) -> (
        Result<(StatusCode, bytes::Bytes), ApiError>,
        Option<Duration>,
    ) {
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
        let started = std::time::Instant::now();
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return (Err(failed(e)), None),
        };
        let status = resp.status();
        self.note_server_date(resp.headers());
        // A throttle: 429, or 503 that says when to come back.
        let header = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let retry_after = match status {
            StatusCode::TOO_MANY_REQUESTS => Some(header.unwrap_or(Duration::from_secs(1))),
            StatusCode::SERVICE_UNAVAILABLE => header,
            _ => None,
        };
        let bytes = match self.read_body(resp, &method, &path).await {
            Ok(b) => b,
            Err(e) => return (Err(e), None),
        };
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::debug!(%method, %path, status = status.as_u16(), elapsed_ms, "api call");
        if status.is_success() {
            return (Ok((status, bytes)), None);
        }
        (
            Err(error_from_body(method.as_str(), &path, status, &bytes)),
            retry_after,
        )
    }

    /// The body, refused as soon as it grows past the limit (an endless
    /// answer must not grow the process without bound).
    async fn read_body(
        &self,
        mut resp: reqwest::Response,
        method: &Method,
        path: &str,
    ) -> Result<bytes::Bytes, ApiError> {
        let too_large = || ApiError::TooLarge {
            method: method.to_string(),
            path: path.to_string(),
            limit: self.max_body,
        };
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(too_large());
        }
        let mut buf = bytes::BytesMut::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if buf.len() + chunk.len() > self.max_body {
                        return Err(too_large());
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(buf.freeze()),
                Err(e) => return Err(self.transport_error(method, path, e)),
            }
        }
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
            detail: crate::redact::cleaned(&root_cause(&e)),
            // A refused connection never carried the request; anything else may have.
            sent: !e.is_connect(),
        }
    }

    /// A request whose 2xx body is decoded as `T`.
    pub(super) async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let (status, bytes) = self
            .send(method.clone(), segments, &[], body, Auth::Admin)
            .await?;
        let path = self.url(segments)?.path().to_string();
        decode(method.as_str(), &path, status, &bytes)
    }
}

pub(super) fn decode<T: DeserializeOwned>(
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
pub(super) fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => format!(
            "the body ends early, at line {} column {}",
            e.line(),
            e.column()
        ),
        Category::Syntax if e.to_string().contains("recursion limit") => format!(
            "JSON nested too deeply, at line {} column {}",
            e.line(),
            e.column()
        ),
        Category::Syntax => format!("malformed JSON at line {} column {}", e.line(), e.column()),
        Category::Data => "JSON of an unexpected shape (a missing field or a wrong type)".into(),
        Category::Io => "the body could not be read".into(),
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

#[cfg(test)]
mod tests;
