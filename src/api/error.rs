//! One error type for every way an API call can fail, rendered as a sentence.

use super::rules::Violation;
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
        matches!(self.status(), Some(401 | 403))
    }
    /// Short machine-readable kind, as scripts see it in `e.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "validation",
            ApiError::Status { .. } => "api",
            ApiError::Decode { .. } => "decode",
            ApiError::Network { .. } => "network",
            ApiError::Timeout { .. } => "timeout",
            ApiError::Cancelled => "cancelled",
            ApiError::Setup(_) => "setup",
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
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
}
