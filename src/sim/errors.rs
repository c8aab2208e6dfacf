//! How the emulator says no: the API's error body `{code, message, issues}`
//! with its statuses, and the request-body checks that produce them.

use crate::api::rules::{self, Violation};
use crate::api::DucklingConfig;
use serde_json::{json, Value};

/// An error the emulator answers with: status, JSON `{code, message, issues}`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub issues: Vec<Value>,
}

impl SimError {
    pub fn body(&self) -> Value {
        json!({"code": self.code, "message": self.message, "issues": self.issues})
    }
    pub fn unauthorized() -> Self {
        Self {
            status: 401,
            code: "UNAUTHORIZED",
            message: "Invalid Credentials".into(),
            issues: vec![],
        }
    }
    pub fn forbidden(why: &str) -> Self {
        Self {
            status: 403,
            code: "FORBIDDEN",
            message: "Unauthorized".into(),
            issues: vec![json!({"message": why})],
        }
    }
    pub fn not_found(what: String) -> Self {
        Self {
            status: 404,
            code: "NOT_FOUND",
            message: what,
            issues: vec![],
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code: "BAD_REQUEST",
            message: message.into(),
            issues: vec![],
        }
    }
    /// A failed rule, with zod-style issue `{message, path}`.
    pub fn invalid(v: Violation, prefix: &[&str]) -> Self {
        let mut path: Vec<Value> = prefix.iter().map(|p| json!(p)).collect();
        path.extend(v.field.split('.').map(|p| json!(p)));
        Self {
            status: 400,
            code: "BAD_REQUEST",
            message: v.message.clone(),
            issues: vec![json!({"message": v.message, "path": path})],
        }
    }
}

pub fn missing(field: &str) -> SimError {
    SimError::invalid(Violation::new(field, format!("{field} is required")), &[])
}

pub fn wrong_type(field: &str, ty: &str) -> SimError {
    SimError::invalid(
        Violation::new(field, format!("{field} must be a {ty}")),
        &[],
    )
}

pub fn field_str<'a>(body: &'a Value, field: &str) -> Result<Option<&'a str>, SimError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(field, "string")),
    }
}

pub fn parse_config(v: &Value) -> Result<DucklingConfig, SimError> {
    rules::parse_config(v).map_err(|v| SimError::invalid(v, &["config"]))
}
