//! Between Rhai and the rest: API values into Rhai values, Rhai values into
//! JSON and into the output module's documents, and runtime errors into the
//! errors scripts catch.

use crate::api::{ApiError, SecretString};
use crate::output::{Doc, Table as OutTable};
use crate::runtime::Error;
use crate::script::table::{Shown, Table};
use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext, Position};

/// What a binding returns: a value, or the error the script sees.
pub type ScriptResult<T> = Result<T, Box<EvalAltResult>>;
/// The same under the name Rhai's metadata (docs, definition files) knows
/// and shows as the plain type `T`: bindings use this one.
pub type RhaiResultOf<T> = Result<T, Box<EvalAltResult>>;
use serde::Serialize;
use serde_json::Value;

/// Values nested deeper than this are refused when converted (printing or
/// serializing them recursively could overflow the stack).
pub const MAX_DEPTH: usize = 128;

/// Any serializable API value as a Rhai value (objects become maps, null `()`).
pub fn to_dynamic<T: Serialize>(value: &T) -> Dynamic {
    rhai::serde::to_dynamic(value).unwrap_or(Dynamic::UNIT)
}

/// Which side of a [`Shown`] value output takes: the text people read, or the
/// raw value machines do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Display,
    Raw,
}

/// A Rhai value as JSON, for API bodies and output. Secrets become their
/// redacted form; they never reach JSON. Too deep a value is an error.
pub fn to_json_checked(value: &Dynamic) -> Result<Value, String> {
    json_at(value, 0, Mode::Raw)
}

/// [`to_json_checked`] where depth cannot be an issue (or `null` if it is).
pub fn to_json(value: &Dynamic) -> Value {
    json_at(value, 0, Mode::Raw).unwrap_or(Value::Null)
}

fn too_deep() -> String {
    format!("the value is nested more than {MAX_DEPTH} levels deep")
}

fn json_at(value: &Dynamic, depth: usize, mode: Mode) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Some(b) = value.clone().try_cast::<bool>() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return Ok(Value::from(i));
    }
    if let Ok(f) = value.as_float() {
        return Ok(serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null));
    }
    if value.is_string() {
        return Ok(Value::String(
            value.clone().into_string().unwrap_or_default(),
        ));
    }
    if let Some(arr) = value.read_lock::<Array>() {
        return arr
            .iter()
            .map(|v| json_at(v, depth + 1, mode))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Some(map) = value.read_lock::<Map>() {
        let mut out = serde_json::Map::new();
        for (k, v) in map.iter() {
            out.insert(k.to_string(), json_at(v, depth + 1, mode)?);
        }
        return Ok(Value::Object(out));
    }
    if let Some(s) = value.read_lock::<SecretString>() {
        return Ok(Value::String(s.redacted()));
    }
    if let Some(t) = value.read_lock::<Table>() {
        return t.to_output(depth, mode).map(OutTable::into_json);
    }
    if let Some(s) = value.read_lock::<Shown>() {
        return match mode {
            Mode::Display => Ok(Value::String(s.text.clone())),
            Mode::Raw => json_at(&s.raw, depth + 1, mode),
        };
    }
    Ok(Value::String(value.to_string()))
}

/// A script's result as an output document: a `table()`, an array of maps
/// (shown as a table), or any other value.
pub fn to_doc(value: &Dynamic, mode: Mode) -> Result<Doc, String> {
    if let Some(t) = value.read_lock::<Table>() {
        return t.to_output(0, mode).map(Doc::Table);
    }
    json_at(value, 0, mode).map(Doc::value)
}

/// [`to_doc`], taking the value: a table's rows are dropped as they are
/// converted, so a large result is never held twice.
pub fn into_doc(value: Dynamic, mode: Mode) -> Result<Doc, String> {
    match value.try_cast_result::<Table>() {
        Ok(t) => t.into_output(0, mode).map(Doc::Table),
        Err(other) => json_at(&other, 0, mode).map(Doc::value),
    }
}

/// The aligned text form of a table (what `print(table)` shows).
pub fn table_text(t: &Table) -> String {
    match t.to_output(0, Mode::Display) {
        Ok(t) => t.render(),
        Err(e) => format!("<{e}>"),
    }
}

/// Rows of a Rhai table as the output module's table.
impl Table {
    pub fn to_output(&self, depth: usize, mode: Mode) -> Result<OutTable, String> {
        let rows = self
            .rows
            .iter()
            .map(|r| json_at(r, depth + 1, mode))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OutTable::new(rows, self.columns.clone()))
    }

    /// [`Table::to_output`], dropping each row once it is converted.
    pub fn into_output(self, depth: usize, mode: Mode) -> Result<OutTable, String> {
        let rows = self
            .rows
            .into_iter()
            .map(|r| json_at(&r, depth + 1, mode))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OutTable::new(rows, self.columns))
    }
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
        | ApiError::TooLarge { method, path, .. }
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

/// The key under which a termination value carries the exit code `exit(code)` asked for.
pub const EXIT_CODE_KEY: &str = "mdops_exit_code";
/// The key under which a termination value says the runtime stopped the run.
pub const STOP_KEY: &str = "mdops_stop";

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

/// A runtime failure as the script sees it: API errors as error maps, other
/// failures as `#{kind, message}` maps, a stop of the run as a termination
/// that no `catch` intercepts.
pub fn fail(ctx: &NativeCallContext, e: Error) -> Box<EvalAltResult> {
    match e {
        Error::Api(api) => throw(ctx, *api),
        Error::State(m) => script_error(ctx, "state", m),
        Error::Confirmation(m) => script_error(ctx, "confirmation", m),
        Error::Sink(m) => script_error(ctx, "sink", m),
        Error::Usage(m) => script_error(ctx, "usage", m),
        Error::Stop(stop) => {
            let mut m = Map::new();
            m.insert(STOP_KEY.into(), stop.to_string().into());
            Box::new(EvalAltResult::ErrorTerminated(
                m.into(),
                ctx.call_position(),
            ))
        }
    }
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
        if f.fract() == 0.0 && f.abs() < 1e15 {
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

/// `Ok` for runtime results in bindings: `rt_result(&ctx, h.list_tokens(u))?`.
pub fn check<T>(ctx: &NativeCallContext, r: Result<T, Error>) -> ScriptResult<T> {
    r.map_err(|e| fail(ctx, e))
}

/// Makes `v` share nothing with another thread. A closure's captured variables
/// are shared values behind one lock; workers reading them at once contend for
/// it, and Rhai gives up after a few tries ("Data race detected"), failing
/// items at random under load. So each worker gets its own copy: every shared
/// value becomes a new one of the worker's own, the same copy wherever the
/// original appears (a recursive closure captures itself: `memo`, by the
/// address of the original's value, ends the loop). What a worker changes in a
/// captured variable stays in that worker.
pub fn unshare(v: &mut Dynamic, memo: &mut std::collections::HashMap<usize, Dynamic>) {
    if v.is_shared() {
        let Some((addr, mut inner)) = v
            .read_lock::<Dynamic>()
            .map(|g| (&*g as *const Dynamic as usize, (*g).clone()))
        else {
            return;
        };
        if let Some(copy) = memo.get(&addr) {
            *v = copy.clone();
            return;
        }
        let mut cell = Dynamic::UNIT.into_shared();
        memo.insert(addr, cell.clone());
        unshare(&mut inner, memo);
        if let Some(mut slot) = cell.write_lock::<Dynamic>() {
            *slot = inner;
        }
        *v = cell;
        return;
    }
    if let Some(mut a) = v.write_lock::<Array>() {
        a.iter_mut().for_each(|x| unshare(x, memo));
        return;
    }
    if let Some(mut m) = v.write_lock::<Map>() {
        m.values_mut().for_each(|x| unshare(x, memo));
        return;
    }
    if let Some(mut f) = v.write_lock::<FnPtr>() {
        let curry: Vec<Dynamic> = f
            .iter_curry()
            .map(|c| {
                let mut c = c.clone();
                unshare(&mut c, memo);
                c
            })
            .collect();
        f.set_curry(curry);
    }
}
