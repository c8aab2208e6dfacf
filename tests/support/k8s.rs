//! A Kubernetes API server for Secrets, written from the API reference
//! (`/api/v1/namespaces/<ns>/secrets[/<name>]`): GET, POST (create), and PATCH
//! with `application/merge-patch+json` (a JSON merge patch of the Secret; a
//! `metadata.resourceVersion` in the patch must match, else 409 Conflict).
//! Every request needs `Authorization: Bearer <TOKEN>`, and is logged.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const TOKEN: &str = "k8s-test-bearer-token-0123456789";

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub body: String,
}

#[derive(Default)]
pub struct Inner {
    /// (namespace, name) → the Secret.
    pub secrets: HashMap<(String, String), Value>,
    pub seen: Vec<Seen>,
    version: u64,
    /// The service account may only read Secrets (as access reviews say).
    pub read_only: bool,
}

pub struct K8s {
    pub url: String,
    pub inner: Arc<Mutex<Inner>>,
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    (
        code,
        Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message, "code": code.as_u16()})),
    )
        .into_response()
}

impl K8s {
    pub fn start() -> K8s {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/api/v1/namespaces/{ns}/secrets", post(create))
            .route(
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                post(review),
            )
            .route(
                "/api/v1/namespaces/{ns}/secrets/{name}",
                get(read).patch(patch),
            )
            .with_state(inner.clone());
        K8s {
            url: super::serve(app),
            inner,
        }
    }

    /// Creates or replaces a Secret with these (plain text) values.
    pub fn put(&self, ns: &str, name: &str, values: &[(&str, &str)]) {
        use base64::Engine as _;
        let mut inner = self.inner.lock().unwrap();
        inner.version += 1;
        let data: serde_json::Map<String, Value> = values
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                )
            })
            .collect();
        let secret = json!({"metadata": {"name": name, "namespace": ns, "resourceVersion": inner.version.to_string()}, "data": data});
        inner.secrets.insert((ns.into(), name.into()), secret);
    }

    /// A Secret's values, decoded.
    pub fn get(&self, ns: &str, name: &str) -> Option<HashMap<String, String>> {
        use base64::Engine as _;
        let inner = self.inner.lock().unwrap();
        let s = inner.secrets.get(&(ns.into(), name.into()))?;
        Some(
            s["data"]
                .as_object()?
                .iter()
                .map(|(k, v)| {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.as_str().unwrap())
                        .unwrap();
                    (k.clone(), String::from_utf8(bytes).unwrap())
                })
                .collect(),
        )
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }
}

type Shared = Arc<Mutex<Inner>>;

fn log(inner: &mut Inner, method: &str, path: String, headers: &HeaderMap, body: &[u8]) -> bool {
    inner.seen.push(Seen {
        method: method.into(),
        path,
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        body: String::from_utf8_lossy(body).into(),
    });
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

async fn read(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut inner = s.lock().unwrap();
    if !log(&mut inner, "GET", format!("{ns}/{name}"), &headers, b"") {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    match inner.secrets.get(&(ns, name.clone())) {
        Some(secret) => Json(secret.clone()).into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("secrets \"{name}\" not found"),
        ),
    }
}

async fn create(
    State(s): State<Shared>,
    Path(ns): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = s.lock().unwrap();
    if !log(&mut inner, "POST", ns.clone(), &headers, &body) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    let mut secret: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(name) = secret["metadata"]["name"].as_str().map(String::from) else {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "metadata.name: Required value",
        );
    };
    if inner.secrets.contains_key(&(ns.clone(), name.clone())) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            &format!("secrets \"{name}\" already exists"),
        );
    }
    inner.version += 1;
    secret["metadata"]["resourceVersion"] = json!(inner.version.to_string());
    inner.secrets.insert((ns, name), secret.clone());
    (StatusCode::CREATED, Json(secret)).into_response()
}

/// A SelfSubjectAccessReview: allowed unless the account may only read.
async fn review(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut inner = s.lock().unwrap();
    if !log(
        &mut inner,
        "POST",
        "selfsubjectaccessreviews".into(),
        &headers,
        &body,
    ) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    let mut doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let verb = doc["spec"]["resourceAttributes"]["verb"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let allowed = !inner.read_only || matches!(verb.as_str(), "get" | "list" | "watch");
    doc["status"] = json!({"allowed": allowed});
    (StatusCode::CREATED, Json(doc)).into_response()
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    if let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    } else {
        *target = patch.clone();
    }
}

async fn patch(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = s.lock().unwrap();
    if !log(&mut inner, "PATCH", format!("{ns}/{name}"), &headers, &body) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok())
        != Some("application/merge-patch+json")
    {
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format",
        );
    }
    let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    inner.version += 1;
    let version = inner.version.to_string();
    let Some(secret) = inner.secrets.get_mut(&(ns, name.clone())) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("secrets \"{name}\" not found"),
        );
    };
    if let Some(want) = patch["metadata"]["resourceVersion"].as_str() {
        if secret["metadata"]["resourceVersion"].as_str() != Some(want) {
            return status(StatusCode::CONFLICT, "Conflict", "the object has been modified; please apply your changes to the latest version and try again");
        }
    }
    merge(secret, &patch);
    secret["metadata"]["resourceVersion"] = json!(version);
    Json(secret.clone()).into_response()
}
