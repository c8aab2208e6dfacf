//! HTTP front of the emulator: routes, bearer auth, latency, the request log.

use super::auth::Principal;
use super::errors::SimError;
use super::faults::{burst_of, Fault};
pub use super::faults::{Behaviour, Faults};
use super::state::Org;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// One request as the emulator saw it (for tests: was the API hit, and how).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Logged {
    pub method: String,
    /// The path as sent (percent-encoding kept).
    pub path: String,
    pub status: u16,
    pub query: Option<String>,
    /// The request body, for requests that have one.
    pub body: Option<String>,
    /// Who sent it (`mdops/x.y.z`, or a test's own client).
    pub agent: Option<String>,
}

impl Shared {
    /// `None` when the rate limit lets this request through; otherwise how
    /// long until it would (the `Retry-After`).
    fn over_rate(&self) -> Option<Duration> {
        let rps = self.behaviour.rate_limit.filter(|r| *r > 0.0)?;
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        b.0 = (b.0 + rps * now.duration_since(b.1).as_secs_f64()).min(burst_of(rps));
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            return None;
        }
        Some(Duration::from_secs_f64((1.0 - b.0) / rps))
    }
}

/// Marks a response whose connection must be dropped instead of answered.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

pub struct Shared {
    pub org: Mutex<Org>,
    pub log: Mutex<Vec<Logged>>,
    /// Requests as they arrive (status 0), before any latency or handling:
    /// tests wait on it for "a request is in flight".
    pub arrived: Mutex<Vec<Logged>>,
    pub behaviour: Behaviour,
    rng: Mutex<rand::rngs::StdRng>,
    injected: std::sync::atomic::AtomicUsize,
    /// The rate limit's bucket: tokens, and when it was last filled.
    bucket: Mutex<(f64, std::time::Instant)>,
    /// Ends each request's latency on time (started with the first one).
    timer: std::sync::OnceLock<super::timer::Timer>,
}

impl Shared {
    pub fn new(org: Org, behaviour: Behaviour) -> Shared {
        use rand::SeedableRng;
        Shared {
            org: Mutex::new(org),
            log: Mutex::new(Vec::new()),
            arrived: Mutex::new(Vec::new()),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(behaviour.faults.seed)),
            bucket: Mutex::new((
                behaviour.rate_limit.map_or(0.0, burst_of),
                std::time::Instant::now(),
            )),
            timer: std::sync::OnceLock::new(),
            behaviour,
            injected: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Faults injected so far.
    pub fn injected(&self) -> usize {
        self.injected.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn roll(&self, method: &str, path: &str) -> (Duration, Fault) {
        use rand::Rng;
        let b = &self.behaviour;
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let jitter = if b.jitter.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_micros(rng.random_range(0..=b.jitter.as_micros() as u64))
        };
        let f = &b.faults;
        if !f.any() || !f.in_scope(method, path) {
            return (jitter, Fault::None);
        }
        let r: f64 = rng.random();
        let fault = if r < f.drop_rate {
            Fault::Drop
        } else if r < f.drop_rate + f.error_rate {
            Fault::Error([502, 503, 504][rng.random_range(0..3)])
        } else if r < f.drop_rate + f.error_rate + f.throttle_rate {
            Fault::Throttle
        } else if r < f.drop_rate + f.error_rate + f.throttle_rate + f.hang_rate {
            Fault::Hang
        } else {
            Fault::None
        };
        if fault != Fault::None {
            let n = self
                .injected
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if f.limit.is_some_and(|l| n >= l) {
                self.injected
                    .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                return (jitter, Fault::None);
            }
        }
        (jitter, fault)
    }

    pub fn org(&self) -> MutexGuard<'_, Org> {
        // A panic in one handler must not take the emulator down with it.
        self.org.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn log(&self) -> MutexGuard<'_, Vec<Logged>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type AppState = Arc<Shared>;

pub fn router(shared: AppState) -> Router {
    let users = Router::new()
        .route("/v1/users", get(list_users).post(create_user))
        .route("/v1/users/{username}", delete(delete_user))
        .route(
            "/v1/users/{username}/instances",
            get(get_config).put(put_config),
        )
        .route(
            "/v1/users/{username}/tokens",
            get(list_tokens).post(create_token),
        )
        .route(
            "/v1/users/{username}/tokens/{token_id}",
            delete(delete_token),
        )
        .route("/v1/tokens/short-lived", post(create_short_lived))
        .route("/v1/active_accounts", get(active_accounts))
        .route("/v1/dives/{dive_id}/embed-session", post(embed_session));
    users
        .fallback(unrouted)
        .method_not_allowed_fallback(unrouted)
        .layer(middleware::from_fn_with_state(shared.clone(), observe))
        .with_state(shared)
}

/// Latency and injected faults first, then the request log entry once the
/// status is known (a dropped answer is logged with status 0).
async fn observe(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let arrived = std::time::Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // The body is read here (and handed on) so that tests can check what was sent.
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 4 << 20)
        .await
        .unwrap_or_default();
    let body_text = (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned());
    let req = Request::from_parts(parts, axum::body::Body::from(bytes));
    let entry = |status: u16| Logged {
        method: method.clone(),
        path: path.clone(),
        status,
        query: query.clone(),
        body: body_text.clone(),
        agent: agent.clone(),
    };
    s.arrived
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(entry(0));
    if let Some(wait) = s.over_rate() {
        // Whole seconds, as the header carries them, rounded up.
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        let resp = (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            Json(serde_json::json!({"code": "TOO_MANY_REQUESTS", "message": "Too Many Requests", "issues": []})),
        )
            .into_response();
        s.log().push(entry(429));
        return resp;
    }
    let (jitter, fault) = s.roll(&method, &path);
    // The answer comes `latency` after the request arrived.
    let delay = s.behaviour.latency + jitter;
    if !delay.is_zero() {
        s.timer
            .get_or_init(super::timer::Timer::new)
            .sleep_until(arrived + delay)
            .await;
    }
    let resp = match fault {
        Fault::Error(status) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            (code, Json(serde_json::json!({"code": "INTERNAL_SERVER_ERROR", "message": "Injected failure", "issues": []})))
                .into_response()
        }
        Fault::Throttle => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, s.behaviour.faults.retry_after.to_string())],
            Json(serde_json::json!({"code": "TOO_MANY_REQUESTS", "message": "Too Many Requests", "issues": []})),
        )
            .into_response(),
        Fault::Drop => {
            let mut resp = next.run(req).await;
            resp.extensions_mut().insert(DropConnection);
            resp
        }
        Fault::Hang => {
            let resp = next.run(req).await;
            s.log().push(entry(resp.status().as_u16()));
            tokio::time::sleep(s.behaviour.faults.hang).await;
            return resp;
        }
        Fault::None => next.run(req).await,
    };
    let status = if resp.extensions().get::<DropConnection>().is_some() {
        0
    } else {
        resp.status().as_u16()
    };
    s.log().push(entry(status));
    let mut resp = resp;
    // The organization's clock (tests may move it), as a real server's `Date`.
    let now = s.org().now();
    if let Ok(v) =
        header::HeaderValue::from_str(&now.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
    {
        resp.headers_mut().insert(header::DATE, v);
    }
    resp
}

/// What the real service answers for a route it does not have: plain text.
async fn unrouted() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Not Found",
    )
        .into_response()
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

type Answer = Result<Json<Value>, SimError>;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn who(s: &Shared, headers: &HeaderMap) -> Result<Principal, SimError> {
    s.org().authenticate(bearer(headers))
}

fn json_body(body: &Bytes) -> Result<Value, SimError> {
    if body.is_empty() {
        return Err(SimError::bad_request("a JSON request body is required"));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| SimError::bad_request(format!("the request body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(SimError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(v)
}

async fn list_users(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !s.org().users_endpoint {
        return unrouted().await;
    }
    let r = who(&s, &headers).and_then(|p| s.org().list_users(&p, &q));
    r.map(Json).into_response()
}

async fn create_user(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Answer {
    let p = who(&s, &headers)?;
    let body = json_body(&body)?;
    s.org().create_user(&p, &body).map(Json)
}

async fn delete_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Answer {
    let p = who(&s, &headers)?;
    s.org().delete_user(&p, &username).map(Json)
}

async fn get_config(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Answer {
    let p = who(&s, &headers)?;
    s.org().get_config(&p, &username).map(Json)
}

async fn put_config(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
    body: Bytes,
) -> Answer {
    let p = who(&s, &headers)?;
    let body = json_body(&body)?;
    s.org().put_config(&p, &username, &body).map(Json)
}

async fn list_tokens(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Answer {
    let p = who(&s, &headers)?;
    s.org().list_tokens(&p, &username).map(Json)
}

async fn create_token(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(username): Path<String>,
    body: Bytes,
) -> Answer {
    let p = who(&s, &headers)?;
    let body = json_body(&body)?;
    s.org().create_token(&p, &username, &body).map(Json)
}

async fn create_short_lived(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Answer {
    let body = json_body(&body)?;
    s.org()
        .create_short_lived(bearer(&headers), &body)
        .map(Json)
}

async fn delete_token(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((username, token_id)): Path<(String, String)>,
) -> Answer {
    let p = who(&s, &headers)?;
    s.org().delete_token(&p, &username, &token_id).map(Json)
}

async fn active_accounts(State(s): State<AppState>, headers: HeaderMap) -> Answer {
    let p = who(&s, &headers)?;
    s.org().active_accounts(&p).map(Json)
}

async fn embed_session(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(dive_id): Path<String>,
    body: Bytes,
) -> Answer {
    let p = who(&s, &headers)?;
    let body = json_body(&body)?;
    s.org().embed_session(&p, &dive_id, &body).map(Json)
}
