//! Conversions between API values and Rhai values, and API errors as Rhai errors.

use crate::api::{ApiError, SecretString};
use crate::script::table::Table;
use rhai::{Array, Dynamic, EvalAltResult, Map, NativeCallContext, Position};
use serde::Serialize;
use serde_json::Value;

pub type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// Any serializable API value as a Rhai value (objects become maps, null `()`).
pub fn to_dynamic<T: Serialize>(value: &T) -> Dynamic {
    rhai::serde::to_dynamic(value).unwrap_or(Dynamic::UNIT)
}

/// A Rhai value as JSON, for API bodies and `--output json`. Secrets become
/// their redacted form; they never reach JSON output.
pub fn to_json(value: &Dynamic) -> Value {
    if value.is_unit() {
        return Value::Null;
    }
    if let Some(b) = value.clone().try_cast::<bool>() {
        return Value::Bool(b);
    }
    if let Ok(i) = value.as_int() {
        return Value::from(i);
    }
    if let Ok(f) = value.as_float() {
        return serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null);
    }
    if value.is_string() {
        return Value::String(value.clone().into_string().unwrap_or_default());
    }
    if value.is_array() {
        let arr = value.read_lock::<Array>().expect("array");
        return Value::Array(arr.iter().map(to_json).collect());
    }
    if value.is_map() {
        let map = value.read_lock::<Map>().expect("map");
        return Value::Object(
            map.iter()
                .map(|(k, v)| (k.to_string(), to_json(v)))
                .collect(),
        );
    }
    if let Some(s) = value.read_lock::<SecretString>() {
        return Value::String(s.redacted());
    }
    if let Some(t) = value.read_lock::<Table>() {
        return t.to_json();
    }
    Value::String(value.to_string())
}

/// The error map scripts catch: `#{kind, status, code, message, issues, field,
/// method, path, summary}`. `summary` is the whole human sentence.
pub fn error_map(e: &ApiError) -> Map {
    let mut m = Map::new();
    m.insert("kind".into(), e.kind().into());
    m.insert(
        "status".into(),
        e.status()
            .map(|s| Dynamic::from(s as i64))
            .unwrap_or(Dynamic::UNIT),
    );
    m.insert(
        "code".into(),
        e.code()
            .map(|c| Dynamic::from(c.to_string()))
            .unwrap_or(Dynamic::UNIT),
    );
    let (message, issues, field, method, path): (
        String,
        Vec<String>,
        Option<&str>,
        Option<&str>,
        Option<&str>,
    ) = match e {
        ApiError::Validation { field, message } => {
            (message.clone(), vec![], Some(field), None, None)
        }
        ApiError::Status {
            message,
            issues,
            method,
            path,
            ..
        } => (
            message.clone(),
            issues.clone(),
            None,
            Some(method),
            Some(path),
        ),
        ApiError::Decode { method, path, .. }
        | ApiError::Network { method, path, .. }
        | ApiError::Timeout { method, path, .. } => {
            (e.to_string(), vec![], None, Some(method), Some(path))
        }
        ApiError::Cancelled | ApiError::Setup(_) => (e.to_string(), vec![], None, None, None),
    };
    m.insert("message".into(), message.into());
    m.insert(
        "issues".into(),
        Dynamic::from_array(issues.into_iter().map(Dynamic::from).collect()),
    );
    let opt = |v: Option<&str>| {
        v.filter(|s| !s.is_empty())
            .map(|s| Dynamic::from(s.to_string()))
            .unwrap_or(Dynamic::UNIT)
    };
    m.insert("field".into(), opt(field));
    m.insert("method".into(), opt(method));
    m.insert("path".into(), opt(path));
    m.insert("summary".into(), e.to_string().into());
    m
}

/// An API error thrown at the script position that made the call. Cancellation
/// terminates the script outright: `try`/`catch` cannot swallow Ctrl-C.
pub fn throw_at(pos: Position, e: ApiError) -> Box<EvalAltResult> {
    match e {
        ApiError::Cancelled => Box::new(EvalAltResult::ErrorTerminated(Dynamic::UNIT, pos)),
        other => Box::new(EvalAltResult::ErrorRuntime(error_map(&other).into(), pos)),
    }
}

pub fn throw(ctx: &NativeCallContext, e: ApiError) -> Box<EvalAltResult> {
    throw_at(ctx.call_position(), e)
}

/// A failure that is not the API's: `#{kind, message, summary}` with the
/// other fields of an API error map left `()`, so scripts can catch both alike.
pub fn script_error(
    ctx: &NativeCallContext,
    kind: &str,
    message: impl Into<String>,
) -> Box<EvalAltResult> {
    let message = message.into();
    let mut m = Map::new();
    for key in ["status", "code", "field", "method", "path"] {
        m.insert(key.into(), Dynamic::UNIT);
    }
    m.insert("kind".into(), kind.into());
    m.insert("issues".into(), Dynamic::from_array(vec![]));
    m.insert("message".into(), message.clone().into());
    m.insert("summary".into(), message.into());
    Box::new(EvalAltResult::ErrorRuntime(m.into(), ctx.call_position()))
}

/// A script-side mistake in an argument (wrong type, unknown option), thrown
/// with the same shape as an API validation error.
pub fn invalid(
    ctx: &NativeCallContext,
    field: &str,
    message: impl Into<String>,
) -> Box<EvalAltResult> {
    throw(
        ctx,
        ApiError::Validation {
            field: field.to_string(),
            message: message.into(),
        },
    )
}

/// An integer from a Rhai value that may be an int, a whole float or a duration string.
pub fn seconds_of(value: &Dynamic) -> Result<i64, String> {
    if let Ok(i) = value.as_int() {
        return Ok(i);
    }
    if let Ok(f) = value.as_float() {
        if f.fract() == 0.0 {
            return Ok(f as i64);
        }
        return Err(format!("{f} is not a whole number of seconds"));
    }
    if value.is_string() {
        return crate::duration::parse_seconds(&value.clone().into_string().unwrap_or_default());
    }
    Err(format!(
        "expected seconds or a duration string such as \"90d\", got {}",
        value.type_name()
    ))
}
