//! A Vault KV version 2 server for the tests, written from Vault's HTTP API
//! documentation (`/v1/<mount>/data/<path>`): a read answers the latest
//! version's data and metadata, a write adds a version and honours
//! check-and-set (`options.cas`: 0 means "only if absent", N "only if the
//! latest version is N"), and every request needs `X-Vault-Token`. Each
//! request is logged: method, path, namespace header, the cas it carried.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const TOKEN: &str = "hvs.test-vault-token-0123456789";

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub namespace: Option<String>,
    pub cas: Option<u64>,
    pub body: String,
}

#[derive(Default)]
pub struct Inner {
    /// (mount, path) → versions, oldest first.
    pub secrets: HashMap<(String, String), Vec<Map<String, Value>>>,
    pub seen: Vec<Seen>,
    /// Answer writes with 500 (a store that is down).
    pub fail_writes: bool,
    /// Reads after a write answer the version before it (a lagging standby).
    pub stale_reads: bool,
    /// Behave as a KV version 1 mount: writes answer 204 without a version,
    /// reads have no metadata.
    pub kv1: bool,
    /// The latest version is deleted: reads answer 404 with its metadata.
    pub deleted: bool,
    /// Store writes, then keep the answer back for a minute (an answer lost
    /// in flight).
    pub hang_writes: bool,
    /// The token's policy grants only read (as `sys/capabilities-self` says).
    pub read_only: bool,
}

pub struct Vault {
    pub url: String,
    pub inner: Arc<Mutex<Inner>>,
}

impl Vault {
    pub fn start() -> Vault {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/v1/{mount}/data/{*path}", get(read).post(write))
            .route(
                "/v1/sys/capabilities-self",
                axum::routing::post(capabilities),
            )
            .with_state(inner.clone());
        Vault {
            url: super::serve(app),
            inner,
        }
    }

    /// Sets the latest data of a secret (a new version).
    pub fn put(&self, mount: &str, path: &str, data: Value) {
        self.inner
            .lock()
            .unwrap()
            .secrets
            .entry((mount.into(), path.into()))
            .or_default()
            .push(data.as_object().unwrap().clone());
    }

    /// The latest data of a secret, and how many versions it has.
    pub fn get(&self, mount: &str, path: &str) -> Option<(Map<String, Value>, usize)> {
        let inner = self.inner.lock().unwrap();
        let versions = inner.secrets.get(&(mount.into(), path.into()))?;
        Some((versions.last()?.clone(), versions.len()))
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }
}

type Shared = Arc<Mutex<Inner>>;

fn errors(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({"errors": [text]}))).into_response()
}

fn log(
    inner: &mut Inner,
    method: &str,
    mount: &str,
    path: &str,
    headers: &HeaderMap,
    cas: Option<u64>,
    body: &str,
) {
    inner.seen.push(Seen {
        method: method.into(),
        path: format!("{mount}/{path}"),
        namespace: headers
            .get("x-vault-namespace")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        cas,
        body: body.into(),
    });
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("x-vault-token").and_then(|v| v.to_str().ok()) == Some(TOKEN)
}

async fn read(
    State(s): State<Shared>,
    Path((mount, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut inner = s.lock().unwrap();
    log(&mut inner, "GET", &mount, &path, &headers, None, "");
    if !authorized(&headers) {
        return errors(StatusCode::FORBIDDEN, "permission denied");
    }
    let stale = inner.stale_reads;
    let deleted = inner.deleted;
    if inner.kv1 {
        return match inner.secrets.get(&(mount, path)) {
            Some(v) if !v.is_empty() => Json(json!({"data": v.last().unwrap()})).into_response(),
            _ => (StatusCode::NOT_FOUND, Json(json!({"errors": []}))).into_response(),
        };
    }
    match inner.secrets.get(&(mount, path)) {
        Some(v) if deleted && !v.is_empty() => (
            StatusCode::NOT_FOUND,
            Json(json!({"data": {"data": null, "metadata": {"version": v.len(), "deletion_time": "2026-01-01T00:00:00Z", "destroyed": false}}})),
        )
            .into_response(),
        Some(v) if stale && v.len() > 1 => Json(json!({
            "data": {"data": v[v.len() - 2], "metadata": {"version": v.len() - 1}}
        }))
        .into_response(),
        Some(v) if !v.is_empty() => Json(json!({
            "data": {"data": v.last().unwrap(), "metadata": {"version": v.len(), "deletion_time": "", "destroyed": false}}
        }))
        .into_response(),
        _ => (StatusCode::NOT_FOUND, Json(json!({"errors": []}))).into_response(),
    }
}

async fn write(
    State(s): State<Shared>,
    Path((mount, path)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (answer, hang) = store(&s, mount, path, &headers, &body);
    if hang {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
    answer
}

/// `sys/capabilities-self`: the token's capabilities on each path asked,
/// keyed by path (and, for one path, also as `capabilities`).
async fn capabilities(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers) {
        return errors(StatusCode::FORBIDDEN, "permission denied");
    }
    let caps = if s.lock().unwrap().read_only {
        json!(["read", "list"])
    } else {
        json!(["create", "read", "update"])
    };
    let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut out = serde_json::Map::new();
    for p in doc["paths"].as_array().cloned().unwrap_or_default() {
        out.insert(p.as_str().unwrap_or_default().to_string(), caps.clone());
    }
    out.insert("capabilities".into(), caps);
    Json(Value::Object(out)).into_response()
}

fn store(
    s: &Shared,
    mount: String,
    path: String,
    headers: &HeaderMap,
    body: &Bytes,
) -> (Response, bool) {
    let text = String::from_utf8_lossy(body).to_string();
    let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let cas = doc["options"]["cas"].as_u64();
    let mut inner = s.lock().unwrap();
    log(&mut inner, "POST", &mount, &path, headers, cas, &text);
    if !authorized(headers) {
        return (errors(StatusCode::FORBIDDEN, "permission denied"), false);
    }
    if inner.fail_writes {
        return (
            errors(StatusCode::INTERNAL_SERVER_ERROR, "storage unavailable"),
            false,
        );
    }
    let Some(data) = doc["data"].as_object().cloned() else {
        return (errors(StatusCode::BAD_REQUEST, "no data provided"), false);
    };
    if inner.kv1 {
        inner.secrets.entry((mount, path)).or_default().push(data);
        return (StatusCode::NO_CONTENT.into_response(), false);
    }
    let versions = inner.secrets.entry((mount, path)).or_default();
    if let Some(cas) = cas {
        if cas != versions.len() as u64 {
            return (
                errors(
                    StatusCode::BAD_REQUEST,
                    "check-and-set parameter did not match the current version",
                ),
                false,
            );
        }
    }
    versions.push(data);
    let version = versions.len();
    inner.deleted = false;
    (
        Json(json!({"data": {"version": version, "deletion_time": "", "destroyed": false}}))
            .into_response(),
        inner.hang_writes,
    )
}
