//! A GitHub REST server for Actions secrets, written from GitHub's API
//! documentation: the repository's (or an environment's) public key, `PUT` of
//! a secret sealed to it (decrypted here with the key pair, so a test can
//! check the value that arrived), and a secret's metadata (`updated_at`; the
//! value is never shown). Every request needs `Authorization: Bearer <TOKEN>`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const TOKEN: &str = "ghp_testtoken0123456789abcdefghijklmnop";
const KEY_ID: &str = "3380204578043523366";

pub struct Inner {
    key: crypto_box::SecretKey,
    /// (owner/repo, environment or "", name) → (value, updated_at).
    pub secrets: HashMap<(String, String, String), (String, String)>,
    pub seen: Vec<(String, String)>,
    clock: i64,
    /// Answer the next PUT with GitHub's secondary rate limit (403, Retry-After: 1).
    pub throttle_next_put: bool,
}

pub struct Github {
    pub url: String,
    pub inner: Arc<Mutex<Inner>>,
}

impl Github {
    pub fn start() -> Github {
        let inner = Arc::new(Mutex::new(Inner {
            key: crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng),
            secrets: HashMap::new(),
            seen: Vec::new(),
            clock: 1_700_000_000,
            throttle_next_put: false,
        }));
        let app = Router::new()
            .route(
                "/repos/{owner}/{repo}/actions/secrets/public-key",
                get(key_repo),
            )
            .route(
                "/repos/{owner}/{repo}/actions/secrets/{name}",
                get(meta_repo).put(put_repo),
            )
            .route(
                "/repos/{owner}/{repo}/environments/{env}/secrets/public-key",
                get(key_env),
            )
            .route(
                "/repos/{owner}/{repo}/environments/{env}/secrets/{name}",
                get(meta_env).put(put_env),
            )
            .with_state(inner.clone());
        Github {
            url: super::serve(app),
            inner,
        }
    }

    /// The decrypted value of a secret (`env` "" for the repository's own).
    pub fn value(&self, repo: &str, env: &str, name: &str) -> Option<String> {
        let inner = self.inner.lock().unwrap();
        inner
            .secrets
            .get(&(repo.into(), env.into(), name.into()))
            .map(|v| v.0.clone())
    }

    pub fn seen(&self) -> Vec<(String, String)> {
        self.inner.lock().unwrap().seen.clone()
    }
}

type Shared = Arc<Mutex<Inner>>;

fn authorized(inner: &mut Inner, method: &str, path: String, headers: &HeaderMap) -> bool {
    inner.seen.push((method.into(), path));
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
        && headers.get("accept").and_then(|v| v.to_str().ok())
            == Some("application/vnd.github+json")
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"message": "Bad credentials", "status": "401"})),
    )
        .into_response()
}

fn key(s: Shared, path: String, headers: HeaderMap) -> Response {
    let mut inner = s.lock().unwrap();
    if !authorized(&mut inner, "GET", path, &headers) {
        return unauthorized();
    }
    let public = inner.key.public_key();
    Json(json!({"key_id": KEY_ID, "key": base64::engine::general_purpose::STANDARD.encode(public.as_bytes())})).into_response()
}

fn meta(s: Shared, id: (String, String, String), headers: HeaderMap) -> Response {
    let mut inner = s.lock().unwrap();
    if !authorized(
        &mut inner,
        "GET",
        format!("{}/{}/{}", id.0, id.1, id.2),
        &headers,
    ) {
        return unauthorized();
    }
    match inner.secrets.get(&id) {
        Some((_, at)) => {
            Json(json!({"name": id.2, "created_at": at, "updated_at": at})).into_response()
        }
        None => (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response(),
    }
}

fn put(s: Shared, id: (String, String, String), headers: HeaderMap, body: Bytes) -> Response {
    let mut inner = s.lock().unwrap();
    if !authorized(
        &mut inner,
        "PUT",
        format!("{}/{}/{}", id.0, id.1, id.2),
        &headers,
    ) {
        return unauthorized();
    }
    if std::mem::take(&mut inner.throttle_next_put) {
        return (
            StatusCode::FORBIDDEN,
            [("retry-after", "1")],
            Json(json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."})),
        )
            .into_response();
    }
    let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if doc["key_id"] != KEY_ID {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "bad key_id"})),
        )
            .into_response();
    }
    let Some(sealed) = doc["encrypted_value"]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
    else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "bad encrypted_value"})),
        )
            .into_response();
    };
    let Ok(plain) = inner.key.unseal(&sealed) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "cannot decrypt"})),
        )
            .into_response();
    };
    // Each write a second later than the last: updated_at always moves.
    inner.clock += 1;
    let at = chrono::DateTime::from_timestamp(inner.clock, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let created = inner
        .secrets
        .insert(id, (String::from_utf8(plain).unwrap(), at))
        .is_none();
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    }
    .into_response()
}

async fn key_repo(
    State(s): State<Shared>,
    Path((o, r)): Path<(String, String)>,
    h: HeaderMap,
) -> Response {
    key(s, format!("{o}/{r}/public-key"), h)
}
async fn key_env(
    State(s): State<Shared>,
    Path((o, r, e)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Response {
    key(s, format!("{o}/{r}@{e}/public-key"), h)
}
async fn meta_repo(
    State(s): State<Shared>,
    Path((o, r, n)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Response {
    meta(s, (format!("{o}/{r}"), String::new(), n), h)
}
async fn meta_env(
    State(s): State<Shared>,
    Path((o, r, e, n)): Path<(String, String, String, String)>,
    h: HeaderMap,
) -> Response {
    meta(s, (format!("{o}/{r}"), e, n), h)
}
async fn put_repo(
    State(s): State<Shared>,
    Path((o, r, n)): Path<(String, String, String)>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    put(s, (format!("{o}/{r}"), String::new(), n), h, b)
}
async fn put_env(
    State(s): State<Shared>,
    Path((o, r, e, n)): Path<(String, String, String, String)>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    put(s, (format!("{o}/{r}"), e, n), h, b)
}
