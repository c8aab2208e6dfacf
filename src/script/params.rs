//! Declared parameters: a script says once what it takes,
//!
//! ```rhai
//! let p = params(#{
//!     accounts:   #{type: "accounts", required: true, doc: "which accounts: a,b, tenant_* or all"},
//!     older_than: #{type: "duration", default_value: "90d", doc: "rotate tokens at least this old"},
//! });
//! ```
//!
//! and before anything runs, mdops checks the `--arg`s against it: an
//! unknown one (with the closest declared name), a missing required one, a
//! value of the wrong type or out of range are each a usage error (exit 2),
//! all reported at once. `params()` then returns the typed values, and `mdops
//! doc SCRIPT` prints the declarations. The declaration must be a constant
//! map at the top level, so it can be read without running the script.

use crate::script::diagnostics::{Category, Diagnostic};
use rhai::{Dynamic, Engine, Expr, Map, Position, Stmt, AST};
use serde_json::Value;
use std::collections::BTreeMap;

/// The name of the declaring function.
pub const FN: &str = "params";

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    String,
    Enum(Vec<String>),
    Int { min: Option<i64>, max: Option<i64> },
    Bool,
    Duration { min: Option<i64>, max: Option<i64> },
    Size,
    Accounts,
    Account,
    Path(Must),
    List(Option<Vec<String>>),
    Template,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Must {
    Any,
    Exist,
    File,
    Dir,
    WritableDir,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub kind: Kind,
    pub required: bool,
    /// The default as written (it is checked like a given value).
    pub default: Option<String>,
    pub doc: String,
}

/// A script's declared parameters, in declaration order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Params(pub Vec<Param>);

const SPEC_KEYS: &[&str] = &[
    "type",
    "doc",
    "required",
    "default_value",
    "default",
    "values",
    "min",
    "max",
    "must",
];
const TYPES: &str =
    "string, enum, int, bool, duration, size, accounts, account, path, list, template";
/// Placeholders a `template` may use.
pub const PLACEHOLDERS: &[&str] = &["{account}", "{ACCOUNT}", "{name}", "{NAME}"];

fn decl_error(src: &str, pos: Position, message: String) -> Diagnostic {
    Diagnostic {
        message: format!("invalid parameter declaration: {message}"),
        at: Some((src.to_string(), pos)),
        notes: vec![],
        help: Some("declare parameters once, at the top level: let p = params(#{name: #{type: \"string\", doc: \"...\"}, ...});".into()),
        category: Category::Script,
    }
}

/// The declaration in a script, if it has one. Parses without optimizing so
/// the declaration keeps its order and positions.
pub fn extract(text: &str, src: &str) -> Result<Option<Params>, Diagnostic> {
    let mut engine = Engine::new_raw();
    engine.set_optimization_level(rhai::OptimizationLevel::None);
    engine.set_max_expr_depths(
        crate::script::MAX_EXPR_DEPTH,
        crate::script::MAX_FN_EXPR_DEPTH,
    );
    let ast = engine
        .compile(crate::script::strip_shebang(text).as_ref())
        .map_err(|e| crate::script::diagnostics::from_parse(&e, src))?;
    from_ast(&ast, src)
}

fn call_of(stmt: &Stmt) -> Option<(&rhai::FnCallExpr, Position)> {
    match stmt {
        Stmt::FnCall(call, pos) => Some((call, *pos)),
        Stmt::Var(x, ..) => match &x.1 {
            Expr::FnCall(call, pos) => Some((call, *pos)),
            _ => None,
        },
        Stmt::Expr(e) => match e.as_ref() {
            Expr::FnCall(call, pos) => Some((call, *pos)),
            _ => None,
        },
        _ => None,
    }
}

fn from_ast(ast: &AST, src: &str) -> Result<Option<Params>, Diagnostic> {
    let mut found: Option<Params> = None;
    for stmt in ast.statements() {
        let Some((call, pos)) = call_of(stmt) else {
            continue;
        };
        if call.name.as_str() != FN || !call.namespace.is_empty() {
            continue;
        }
        if found.is_some() {
            return Err(decl_error(src, pos, "params() is called twice".into()));
        }
        let [arg] = call.args.as_slice() else {
            return Err(decl_error(src, pos, "params() takes one map".into()));
        };
        let Expr::Map(entries, mpos) = arg else {
            return Err(decl_error(
                src,
                arg.position(),
                "params() takes a map literal #{...}".into(),
            ));
        };
        let mut list = Vec::new();
        for (ident, spec) in entries.0.iter() {
            let value = spec.get_literal_value(None).ok_or_else(|| {
                decl_error(
                    src,
                    spec.position(),
                    format!("the declaration of {} must be a constant map", ident.name),
                )
            })?;
            let map = value.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| {
                decl_error(
                    src,
                    spec.position(),
                    format!(
                        "the declaration of {} must be a map #{{type, doc, ...}}",
                        ident.name
                    ),
                )
            })?;
            let param = parse_param(ident.name.as_str(), &map)
                .map_err(|e| decl_error(src, ident.pos, e))?;
            list.push(param);
        }
        let _ = mpos;
        found = Some(Params(list));
    }
    Ok(found)
}

fn text_of(v: &Dynamic) -> Option<String> {
    if v.is_string() {
        v.clone().into_string().ok()
    } else if v.is_int() {
        v.as_int().ok().map(|i| i.to_string())
    } else if v.is_bool() {
        v.as_bool().ok().map(|b| b.to_string())
    } else {
        None
    }
}

fn strings(v: &Dynamic, what: &str) -> Result<Vec<String>, String> {
    let arr = v
        .read_lock::<rhai::Array>()
        .ok_or_else(|| format!("{what} must be an array of strings"))?;
    arr.iter()
        .map(|x| {
            x.clone()
                .into_string()
                .map_err(|_| format!("{what} must be an array of strings"))
        })
        .collect()
}

fn parse_param(name: &str, spec: &Map) -> Result<Param, String> {
    for k in spec.keys() {
        if !SPEC_KEYS.contains(&k.as_str()) {
            return Err(format!(
                "{name}: unknown key {k:?} (expected {})",
                SPEC_KEYS.join(", ")
            ));
        }
    }
    let get = |k: &str| spec.get(k).filter(|v| !v.is_unit());
    let ty = get("type")
        .and_then(|v| v.clone().into_string().ok())
        .ok_or_else(|| format!("{name}: give its type (one of {TYPES})"))?;
    let doc = get("doc")
        .and_then(|v| v.clone().into_string().ok())
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| format!("{name}: give it a one-line doc"))?;
    let required = match get("required") {
        None => false,
        Some(v) => v
            .as_bool()
            .map_err(|_| format!("{name}: required must be true or false"))?,
    };
    let bound = |k: &str, dur: bool| -> Result<Option<i64>, String> {
        match get(k) {
            None => Ok(None),
            Some(v) if v.is_int() => Ok(v.as_int().ok()),
            Some(v) if dur && v.is_string() => crate::duration::parse_seconds(&v.to_string())
                .map(Some)
                .map_err(|e| format!("{name}: {k}: {e}")),
            Some(_) => Err(format!(
                "{name}: {k} must be {}",
                if dur { "a duration" } else { "an integer" }
            )),
        }
    };
    let values = get("values")
        .map(|v| strings(v, &format!("{name}: values")))
        .transpose()?;
    let kind = match ty.as_str() {
        "string" => match values {
            Some(v) => Kind::Enum(v),
            None => Kind::String,
        },
        "enum" => Kind::Enum(values.ok_or_else(|| format!("{name}: an enum needs values: [...]"))?),
        "int" => Kind::Int {
            min: bound("min", false)?,
            max: bound("max", false)?,
        },
        "bool" => Kind::Bool,
        "duration" => Kind::Duration {
            min: bound("min", true)?,
            max: bound("max", true)?,
        },
        "size" => Kind::Size,
        "accounts" => Kind::Accounts,
        "account" => Kind::Account,
        "path" => Kind::Path(match get("must").map(|v| v.to_string()).as_deref() {
            None => Must::Any,
            Some("exist") => Must::Exist,
            Some("file") => Must::File,
            Some("dir") => Must::Dir,
            Some("writable_dir") => Must::WritableDir,
            Some(other) => {
                return Err(format!(
                    "{name}: must {other:?} is not one of exist, file, dir, writable_dir"
                ))
            }
        }),
        "list" => Kind::List(values),
        "template" => Kind::Template,
        other => return Err(format!("{name}: unknown type {other:?} (one of {TYPES})")),
    };
    let default = match get("default_value").or_else(|| get("default")) {
        None => None,
        Some(v) => Some(text_of(v).ok_or_else(|| {
            format!("{name}: the default must be written as a string, a number or a bool")
        })?),
    };
    if required && default.is_some() {
        return Err(format!("{name}: a required parameter has no default"));
    }
    let param = Param {
        name: name.to_string(),
        kind,
        required,
        default,
        doc,
    };
    if let Some(d) = &param.default {
        param
            .check(d)
            .map_err(|e| format!("{name}: its default {d:?} is not valid: {e}"))?;
    }
    Ok(param)
}

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
                min.map(crate::duration::format_seconds),
                max.map(crate::duration::format_seconds),
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
        }
    }

    /// Checks a value as given on the command line and returns it typed.
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
                in_range(s, *min, *max, crate::duration::format_seconds)?;
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
                let items: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                if let Some(allowed) = values {
                    if let Some(bad) = items.iter().find(|i| !allowed.contains(i)) {
                        return Err(format!("{bad:?} is not one of {}", allowed.join(", ")));
                    }
                }
                Ok(Value::Array(items.into_iter().map(Value::String).collect()))
            }
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
fn check_selector(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err("it is empty: name accounts (a,b), a pattern (tenant_*) or all".into());
    }
    if v == "all" {
        return Ok(());
    }
    for part in v.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(format!("{v:?} has an empty item"));
        }
        if part.eq_ignore_ascii_case("all") {
            return Err("all cannot be combined with other accounts".into());
        }
        if let Some(c) = part.chars().find(|c| {
            !(c.is_alphanumeric()
                || matches!(c, '_' | '*' | '?' | '[' | ']' | '!' | '-' | '.' | '@'))
        }) {
            return Err(format!(
                "{part:?} contains {c:?}, which no account name or pattern has"
            ));
        }
        if part.contains('[') {
            crate::script::glob::check(part)?;
        }
    }
    Ok(())
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

impl Params {
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.0.iter().find(|p| p.name == name)
    }

    /// Checks every `--arg` against the declarations: the typed values (a
    /// JSON object with every declared name, `null` when absent), or every
    /// problem found, one sentence each.
    pub fn bind(&self, args: &[(String, String)]) -> Result<Value, Vec<String>> {
        let mut problems = Vec::new();
        let mut given: BTreeMap<&str, &str> = BTreeMap::new();
        let names: Vec<String> = self.0.iter().map(|p| p.name.clone()).collect();
        for (k, v) in args {
            if given.insert(k.as_str(), v.as_str()).is_some() {
                problems.push(format!("argument {k} is given twice"));
            }
            if self.get(k).is_none() {
                let hint = crate::script::diagnostics::suggest(k, &names)
                    .map(|s| format!("; did you mean {s}?"))
                    .unwrap_or_else(|| {
                        if names.is_empty() {
                            "; this script takes no arguments".into()
                        } else {
                            format!(" (it takes {})", names.join(", "))
                        }
                    });
                problems.push(format!(
                    "unknown argument {}{hint}",
                    crate::output::escape(k)
                ));
            }
        }
        let mut out = serde_json::Map::new();
        for p in &self.0 {
            let value = match (given.get(p.name.as_str()), &p.default) {
                (Some(raw), _) => match p.check(raw) {
                    Ok(v) => v,
                    Err(e) => {
                        problems.push(format!(
                            "argument {}={}: {}",
                            p.name,
                            crate::output::escape(&format!("{raw:?}")),
                            crate::output::escape(&e)
                        ));
                        Value::Null
                    }
                },
                (None, Some(d)) => p.check(d).unwrap_or(Value::Null),
                (None, None) if p.required => {
                    problems.push(format!(
                        "missing argument {}: pass --arg {}=... ({}: {})",
                        p.name,
                        p.name,
                        p.type_text(),
                        p.doc
                    ));
                    Value::Null
                }
                (None, None) => Value::Null,
            };
            out.insert(p.name.clone(), value);
        }
        if problems.is_empty() {
            Ok(Value::Object(out))
        } else {
            Err(problems)
        }
    }

    /// The `Parameters:` block of `mdops doc SCRIPT`.
    pub fn render(&self) -> String {
        if self.0.is_empty() {
            return "Parameters: none.\n".into();
        }
        let cols: Vec<(String, String, &str)> = self
            .0
            .iter()
            .map(|p| {
                let ty = match (&p.default, p.required) {
                    (_, true) => format!("{}, required", p.type_text()),
                    (Some(d), _) => format!("{} = {d}", p.type_text()),
                    (None, _) => p.type_text(),
                };
                (p.name.clone(), ty, p.doc.as_str())
            })
            .collect();
        let w0 = cols.iter().map(|c| c.0.len()).max().unwrap_or(0);
        let w1 = cols.iter().map(|c| c.1.chars().count()).max().unwrap_or(0);
        let mut out = String::from("Parameters (--arg NAME=VALUE):\n");
        for (n, t, d) in cols {
            let pad = w1 - t.chars().count();
            out.push_str(&format!("  {n:<w0$}  {t}{}  {d}\n", " ".repeat(pad)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECL: &str = r#"
        let p = params(#{
            accounts:   #{type: "accounts", required: true, doc: "which accounts"},
            older_than: #{type: "duration", default_value: "90d", min: "1h", doc: "age"},
            flock:      #{type: "int", min: 0, max: 64, doc: "pool"},
            sink:       #{type: "enum", values: ["file", "env-file"], "default": "file", doc: "where"},
        });
        p
    "#;

    fn args(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn declarations_keep_their_order() {
        let p = extract(DECL, "t.rhai").unwrap().unwrap();
        let names: Vec<&str> = p.0.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["accounts", "older_than", "flock", "sink"]);
        assert!(
            p.render().contains("older_than  duration >= 1h = 90d"),
            "{}",
            p.render()
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let p = extract(DECL, "t.rhai").unwrap().unwrap();
        let problems = p
            .bind(&args(&[
                ("acounts", "tenant_acme"),
                ("older_than", "-1d"),
                ("flock", "100"),
            ]))
            .unwrap_err();
        assert_eq!(
            problems,
            [
                "unknown argument acounts; did you mean accounts?",
                "missing argument accounts: pass --arg accounts=... (accounts: which accounts)",
                "argument older_than=\"-1d\": \"-1d\" is not a positive duration",
                "argument flock=\"100\": 100 is above the maximum 64",
            ]
        );
        let ok = p
            .bind(&args(&[("accounts", "all"), ("flock", "2")]))
            .unwrap();
        assert_eq!(ok["older_than"], 90 * 86400);
        assert_eq!(ok["sink"], "file");
        assert_eq!(ok["flock"], 2);
    }

    #[test]
    fn bad_declarations_point_at_the_parameter() {
        let e = extract("params(#{x: #{type: \"nope\", doc: \"d\"}});", "t.rhai").unwrap_err();
        assert!(e.message.contains("unknown type \"nope\""), "{}", e.message);
        let e = extract(
            "let d = 5; params(#{x: #{type: \"int\", default_value: d, doc: \"d\"}});",
            "t.rhai",
        )
        .unwrap_err();
        assert!(
            e.message.contains("must be a constant map"),
            "{}",
            e.message
        );
        assert!(extract("let x = 1;", "t.rhai").unwrap().is_none());
    }

    #[test]
    fn selectors_and_templates() {
        assert!(check_selector("tenant_0[0-2]*").is_ok());
        assert!(check_selector("a,,b").is_err());
        assert!(check_selector("a;rm").is_err());
        let t = Param {
            name: "t".into(),
            kind: Kind::Template,
            required: false,
            default: None,
            doc: "d".into(),
        };
        assert!(t.check("{account}/{name}.token").is_ok());
        assert!(t.check("{acount}.token").unwrap_err().contains("{acount}"));
        assert!(t.check("awk '{print}' ${HOME}").is_ok());
    }
}
