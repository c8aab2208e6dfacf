//! HTTP front of the emulator: routes, bearer auth, latency, the request log.

use super::state::{Org, Principal, SimError};
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
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub status: u16,
}

#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Added before every answer.
    pub latency: Duration,
}

pub struct Shared {
    pub org: Mutex<Org>,
    pub log: Mutex<Vec<Logged>>,
    pub behaviour: Behaviour,
}

impl Shared {
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
        .route("/v1/active_accounts", get(active_accounts))
        .route("/v1/dives/{dive_id}/embed-session", post(embed_session));
    users
        .fallback(unrouted)
        .method_not_allowed_fallback(unrouted)
        .layer(middleware::from_fn_with_state(shared.clone(), observe))
        .with_state(shared)
}

/// Latency first, then the request log entry once the status is known.
async fn observe(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if !s.behaviour.latency.is_zero() {
        tokio::time::sleep(s.behaviour.latency).await;
    }
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    s.log().push(Logged {
        method,
        path,
        status: resp.status().as_u16(),
    });
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
