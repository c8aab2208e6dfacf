//! One error type for every way an API call can fail, rendered as a sentence,
//! and the reading of error bodies. Text from the server is never trusted: it
//! is cut short, cleaned of every secret the process knows, and its control
//! characters are escaped.

use super::rules::Violation;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ApiError {
    /// Refused before sending: the value breaks one of the API's rules.
    #[error("invalid {field}: {message}")]
    Validation { field: String, message: String },
    /// The server answered with an error status.
    #[error("{}", render_status(.method, .path, *.status, .code.as_deref(), .message, .issues))]
    Status {
        method: String,
        path: String,
        status: u16,
        code: Option<String>,
        message: String,
        issues: Vec<String>,
    },
    /// The server answered 2xx, but not with the JSON the API documents.
    #[error("{method} {path}: the server sent a response that is not valid API JSON ({detail})")]
    Decode {
        method: String,
        path: String,
        status: u16,
        detail: String,
    },
    /// No answer: connection refused, DNS failure, reset.
    #[error("{method} {path}: cannot reach {host}: {detail}")]
    Network {
        method: String,
        path: String,
        host: String,
        detail: String,
        /// The request may have reached the server (the connection broke
        /// after it was sent), so a create may have happened.
        sent: bool,
    },
    /// The answer was longer than the body limit; it was cut off unread.
    #[error("{method} {path}: the response is larger than {} MB and was refused (see --max-response-mb)", .limit / (1 << 20))]
    TooLarge {
        method: String,
        path: String,
        limit: usize,
    },
    /// Not the API's doing: no API configured, no HTTP client.
    #[error("{0}")]
    Setup(String),
    #[error("{method} {path}: no answer within {}s", .after.as_secs_f64())]
    Timeout {
        method: String,
        path: String,
        after: Duration,
    },
    #[error("interrupted")]
    Cancelled,
}

impl From<Violation> for ApiError {
    fn from(v: Violation) -> Self {
        ApiError::Validation {
            field: v.field,
            message: v.message,
        }
    }
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            ApiError::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }
    /// A JSON `NOT_FOUND`: the entity is missing (a plain-text 404 means the route is).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404) && self.code() == Some("NOT_FOUND")
    }
    /// A failure after which a POST may or may not have taken effect.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            ApiError::Timeout { .. } => true,
            ApiError::Network { sent, .. } => *sent,
            ApiError::Status { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }

    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            ApiError::Status {
                status: 401 | 403,
                ..
            }
        )
    }

    /// The API could not be reached, or kept failing after retries:
    /// connection failures, timeouts, 5xx (and 429 once retries ran out).
    pub fn is_unavailable(&self) -> bool {
        match self {
            ApiError::Network { .. } | ApiError::Timeout { .. } => true,
            ApiError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
    /// Short machine-readable kind, as scripts see it in `e.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "validation",
            ApiError::Status { .. } => "api",
            ApiError::Decode { .. } => "decode",
            ApiError::Network { .. } => "network",
            ApiError::Timeout { .. } => "timeout",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::Cancelled => "cancelled",
            ApiError::Setup(_) => "setup",
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        301 | 302 | 303 | 307 | 308 => "Redirect",
        400 => "Bad Request",
        401 => "Invalid Credentials",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

fn hint(status: u16, code: Option<&str>) -> Option<&'static str> {
    match (status, code) {
        (300..=399, _) => Some("mdops does not follow redirects: check --api-url"),
        (401, _) => Some("the admin token was refused: check that it is current and belongs to this organization"),
        (403, _) => Some("the token is valid but lacks permission: admin operations need a read/write token of an organization Admin"),
        (404, None) => Some("the API has no such route: check --api-url"),
        (429, _) => Some("the API is rate limiting requests"),
        (500..=599, _) => Some("the API failed on its side; try again later"),
        _ => None,
    }
}

fn render_status(
    method: &str,
    path: &str,
    status: u16,
    code: Option<&str>,
    message: &str,
    issues: &[String],
) -> String {
    let mut out = format!("{method} {path} failed with {status} {}", reason(status));
    if let Some(code) = code {
        out.push_str(&format!(" ({code})"));
    }
    if !message.is_empty() && message != reason(status) {
        out.push_str(&format!(": {message}"));
    }
    let extra: Vec<&String> = issues.iter().filter(|i| i.as_str() != message).collect();
    if !extra.is_empty() {
        let joined: Vec<&str> = extra.iter().map(|s| s.as_str()).collect();
        out.push_str(&format!(" [{}]", joined.join("; ")));
    }
    if let Some(h) = hint(status, code) {
        out.push_str(&format!(" — {h}"));
    }
    out
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

/// Server-provided text made safe to show: every known secret redacted, then
/// at most `limit` characters, control characters escaped.
fn server_text(text: &str, limit: usize) -> String {
    // Cleaned whole, then cut: cutting first could split a secret so that the
    // part left no longer matches and leaks.
    let clean = crate::redact::clean(text.trim());
    let cut: String = clean.chars().take(limit).collect();
    crate::output::escape(&cut).into_owned()
}

/// An error status with what its body says (JSON `{code, message, issues}`,
/// or the start of a plain-text body).
pub fn error_from_body(method: &str, path: &str, status: StatusCode, bytes: &[u8]) -> ApiError {
    let (code, message, issues) = match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(b) => (
            b.code.map(|c| server_text(&c, 64)),
            server_text(&b.message.unwrap_or_default(), 500),
            b.issues
                .iter()
                .take(20)
                .map(|i| server_text(&i.render(), 300))
                .collect(),
        ),
        Err(_) => (
            None,
            server_text(&String::from_utf8_lossy(bytes), 200),
            Vec::new(),
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_sentence() {
        let e = ApiError::Status {
            method: "POST".into(),
            path: "/v1/users".into(),
            status: 400,
            code: Some("BAD_REQUEST".into()),
            message: "Input validation failed".into(),
            issues: vec!["username: already exists".into()],
        };
        assert_eq!(
            e.to_string(),
            "POST /v1/users failed with 400 Bad Request (BAD_REQUEST): Input validation failed [username: already exists]"
        );
    }

    #[test]
    fn server_text_is_bounded_redacted_and_escaped() {
        crate::redact::register("admin-token-echoed-by-a-server");
        let body = br#"{"code":"UNAUTHORIZED","message":"bad header: Bearer admin-token-echoed-by-a-server\u001b[2J","issues":[]}"#;
        let e = error_from_body("GET", "/v1/x", StatusCode::UNAUTHORIZED, body);
        let text = e.to_string();
        assert!(!text.contains("admin-token-echoed"), "{text}");
        assert!(text.contains("<secret "), "{text}");
        assert!(text.contains("\\u{1b}[2J"), "{text}");
        let long = "x".repeat(10_000);
        let e = error_from_body("GET", "/v1/x", StatusCode::BAD_GATEWAY, long.as_bytes());
        assert!(e.to_string().len() < 400);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "property-secret-value-8c41d2-0f9e7a6b5c4d3e2f1a0b9c8d7e6f5a4b";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        /// Whatever a server answers (any status, any bytes, the secret
        /// anywhere in them), reading it never panics and never repeats the secret.
        #[test]
        fn any_error_body_is_read_without_leaking(status in 100u16..600, before in proptest::collection::vec(any::<u8>(), 0..400), after in any::<String>(), json in any::<bool>(), cut in any::<bool>()) {
            crate::redact::register(SECRET);
            // The whole secret, or the server's own echo of it cut short, anywhere.
            let shown = if cut { &SECRET[..SECRET.len() - 7] } else { SECRET };
            let body: Vec<u8> = if json {
                serde_json::json!({"code": "X", "message": format!("{after}{shown}"), "issues": [{"message": shown, "path": [after.clone()]}]}).to_string().into_bytes()
            } else {
                [before.as_slice(), shown.as_bytes(), after.as_bytes()].concat()
            };
            let status = StatusCode::from_u16(status).unwrap();
            let e = error_from_body("GET", "/v1/x", status, &body);
            let text = e.to_string();
            for w in 0..=SECRET.len() - 12 {
                prop_assert!(!text.contains(&SECRET[w..w + 12]), "a part of the secret leaked: {}", text);
            }
            prop_assert!(!text.chars().any(|c| c.is_control()), "{:?}", text);
            let _ = crate::api::transport::decode::<crate::api::Token>("GET", "/v1/x", status, &body);
        }
    }
}
