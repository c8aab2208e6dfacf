//! Checking a value given on the command line against its declaration.

use super::{Kind, Must, Param, PLACEHOLDERS};
use serde_json::Value;

impl Param {
    /// The type as `mdops doc` shows it.
    pub fn type_text(&self) -> String {
        match &self.kind {
            Kind::String => "string".into(),
            Kind::Enum(v) => v.join("|"),
            Kind::Int { min, max } => range(
                "int",
                min.map(|m| m.to_string()),
                max.map(|m| m.to_string()),
            ),
            Kind::Bool => "bool".into(),
            Kind::Duration { min, max } => range(
                "duration",
                min.map(crate::duration::format_arg),
                max.map(crate::duration::format_arg),
            ),
            Kind::Size => "size".into(),
            Kind::Accounts => "accounts".into(),
            Kind::Account => "account".into(),
            Kind::Path(Must::Any) => "path".into(),
            Kind::Path(Must::Exist) => "path (existing)".into(),
            Kind::Path(Must::File) => "file".into(),
            Kind::Path(Must::Dir) => "dir".into(),
            Kind::Path(Must::WritableDir) => "dir (writable)".into(),
            Kind::List(None) => "list".into(),
            Kind::List(Some(v)) => format!("list of {}", v.join("|")),
            Kind::Template => "template".into(),
            Kind::Env => "env var".into(),
        }
    }

    /// Checks a value typed on the command line and returns it typed: as
    /// [`Param::check`], and a duration needs its unit ("older_than=90"
    /// meant as days would otherwise be 90 seconds, and widen the run to
    /// every token), and minutes written as "min" when they come first.
    pub fn check_given(&self, raw: &str) -> Result<Value, String> {
        let v = raw.trim();
        if matches!(self.kind, Kind::Duration { .. })
            && !v.is_empty()
            && v.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(format!(
                "{v:?} has no unit: write {v}d for days, {v}h for hours, {v}min for minutes or {v}s for seconds"
            ));
        }
        // "6m" is six minutes; meant as six months, it would widen the run to
        // nearly every token (older_than) or make tokens that expire within
        // minutes (ttl). Where a month is in range, minutes given first are
        // written "min"; "rw_cooldown=10m" (at most a day) is plain.
        if let Kind::Duration { max, .. } = self.kind {
            let number: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
            let rest = &v[number.len()..];
            let minutes =
                rest.starts_with('m') && !rest.starts_with("min") && !rest.starts_with("mo");
            let months_in_range = max.is_none_or(|max| max >= 30 * 86_400);
            if !number.is_empty() && minutes && months_in_range {
                return Err(format!(
                    "{v:?} is ambiguous ({number} minutes or {number} months?): write {number}min{} for minutes, or days for months (as in 180d)",
                    &rest[1..]
                ));
            }
        }
        self.check(raw)
    }

    /// Checks a value (given, or a declared default: a number of seconds
    /// there is a duration) and returns it typed.
    pub fn check(&self, raw: &str) -> Result<Value, String> {
        let v = raw.trim();
        match &self.kind {
            Kind::String => Ok(Value::String(raw.to_string())),
            Kind::Enum(values) => {
                if values.iter().any(|x| x == v) {
                    Ok(Value::String(v.to_string()))
                } else {
                    Err(format!("{v:?} is not one of {}", values.join(", ")))
                }
            }
            Kind::Int { min, max } => {
                let n: i64 = v.parse().map_err(|_| format!("{v:?} is not an integer"))?;
                in_range(n, *min, *max, |x| x.to_string())?;
                Ok(Value::from(n))
            }
            Kind::Bool => match v.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "on" => Ok(Value::Bool(true)),
                "false" | "no" | "0" | "off" => Ok(Value::Bool(false)),
                _ => Err(format!("{v:?} is not true or false")),
            },
            Kind::Duration { min, max } => {
                let s = crate::duration::parse_seconds(v)
                    .map_err(|e| e.replace("invalid duration ", "not a duration: "))?;
                if s <= 0 {
                    return Err(format!("{v:?} is not a positive duration"));
                }
                in_range(s, *min, *max, crate::duration::format_arg)?;
                Ok(Value::from(s))
            }
            Kind::Size => crate::api::InstanceSize::parse(v)
                .map(|s| Value::String(s.as_str().into()))
                .ok_or_else(|| {
                    format!(
                        "{v:?} is not a Duckling size ({})",
                        crate::api::InstanceSize::NAMES
                    )
                }),
            Kind::Accounts => check_selector(v).map(|_| Value::String(v.to_string())),
            Kind::Account => crate::api::rules::path_username(v)
                .map_err(|e| e.message)
                .and_then(|_| {
                    if v.contains(['*', '?', '[', ',']) {
                        Err(format!("{v:?} is one account, not a pattern or a list"))
                    } else {
                        Ok(Value::String(v.to_string()))
                    }
                }),
            Kind::Path(must) => check_path(v, *must).map(|_| Value::String(v.to_string())),
            Kind::List(values) => {
                let items: Vec<String> = v.split(',').map(str::trim).map(String::from).collect();
                if items.iter().any(String::is_empty) {
                    return Err(format!("{v:?} has an empty item"));
                }
                if let Some(allowed) = values {
                    if let Some(bad) = items.iter().find(|i| !allowed.contains(i)) {
                        return Err(format!("{bad:?} is not one of {}", allowed.join(", ")));
                    }
                }
                Ok(Value::Array(items.into_iter().map(Value::String).collect()))
            }
            Kind::Env => crate::sinks::check_env_name(v).map(|_| Value::String(v.to_string())),
            Kind::Template => match crate::sinks::template::misspelt_placeholder(raw) {
                Some(bad) => Err(format!(
                    "{bad} is not a placeholder (they are {})",
                    PLACEHOLDERS.join(" ")
                )),
                None => Ok(Value::String(raw.to_string())),
            },
        }
    }
}

fn range(ty: &str, min: Option<String>, max: Option<String>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("{ty} {a}..{b}"),
        (Some(a), None) => format!("{ty} >= {a}"),
        (None, Some(b)) => format!("{ty} <= {b}"),
        (None, None) => ty.to_string(),
    }
}

fn in_range(
    n: i64,
    min: Option<i64>,
    max: Option<i64>,
    show: impl Fn(i64) -> String,
) -> Result<(), String> {
    if let Some(m) = min.filter(|m| n < *m) {
        return Err(format!("{} is below the minimum {}", show(n), show(m)));
    }
    if let Some(m) = max.filter(|m| n > *m) {
        return Err(format!("{} is above the maximum {}", show(n), show(m)));
    }
    Ok(())
}

/// `all`, a comma-separated list of names, or glob patterns.
pub(super) fn check_selector(v: &str) -> Result<(), String> {
    crate::runtime::select::check(v)
}

fn check_path(v: &str, must: Must) -> Result<(), String> {
    if v.is_empty() {
        return Err("it is empty".into());
    }
    let p = std::path::Path::new(v);
    match must {
        Must::Any => Ok(()),
        Must::Exist if p.exists() => Ok(()),
        Must::Exist => Err(format!("{v} does not exist")),
        Must::File if p.is_file() => Ok(()),
        Must::File => Err(format!("{v} is not a file")),
        Must::Dir if p.is_dir() => Ok(()),
        Must::Dir => Err(format!("{v} is not a directory")),
        Must::WritableDir => {
            if !p.is_dir() {
                return Err(format!("{v} is not a directory"));
            }
            crate::sinks::check_writable(&p.join(".mdops-probe"), false)
                .map_err(|_| format!("{v} is not writable"))
        }
    }
}
