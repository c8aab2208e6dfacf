//! Reading a script's `params(#{...})` declaration without running it.

use super::{Kind, Must, Param, Params, FN};
use crate::script::diagnostics::{Category, Diagnostic};
use rhai::{Dynamic, Engine, Expr, Map, Position, Stmt, AST};

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
    "string, enum, int, bool, duration, size, accounts, account, path, list, template, env";

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
    // Anywhere else (in a function, a branch, an expression) it would be a
    // second declaration nobody reads: refused.
    let top: Vec<Position> = ast
        .statements()
        .iter()
        .filter_map(call_of)
        .filter(|(c, _)| c.name.as_str() == FN && c.namespace.is_empty())
        .map(|(_, p)| p)
        .collect();
    let mut nested = None;
    ast.walk(&mut |path| {
        let call = match path.last() {
            Some(rhai::ASTNode::Expr(Expr::FnCall(c, pos))) => Some((c, *pos)),
            Some(rhai::ASTNode::Stmt(Stmt::FnCall(c, pos))) => Some((c, *pos)),
            _ => None,
        };
        if let Some((c, pos)) = call {
            if c.name.as_str() == FN && c.namespace.is_empty() && !top.contains(&pos) {
                nested.get_or_insert(pos);
            }
        }
        true
    });
    if let Some(pos) = nested {
        return Err(decl_error(
            src,
            pos,
            "params() is called once, at the top level of the script (not in a function or a block)".into(),
        ));
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
    let plain = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !plain {
        return Err(format!(
            "the parameter name {:?} cannot be given as --arg NAME=VALUE: use ASCII letters, digits and _",
            crate::output::escape(name)
        ));
    }
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
    if let Some(v) = &values {
        if v.is_empty() || v.iter().any(|x| x.trim().is_empty()) {
            return Err(format!("{name}: values must be non-empty names"));
        }
    }
    let range = |min: Option<i64>, max: Option<i64>| match (min, max) {
        (Some(a), Some(b)) if a > b => {
            Err(format!("{name}: min is above max: no value could be given"))
        }
        _ => Ok((min, max)),
    };
    let kind = match ty.as_str() {
        "string" => match values {
            Some(v) => Kind::Enum(v),
            None => Kind::String,
        },
        "enum" => Kind::Enum(values.ok_or_else(|| format!("{name}: an enum needs values: [...]"))?),
        "int" => {
            let (min, max) = range(bound("min", false)?, bound("max", false)?)?;
            Kind::Int { min, max }
        }
        "bool" => Kind::Bool,
        "duration" => {
            let (min, max) = range(bound("min", true)?, bound("max", true)?)?;
            Kind::Duration { min, max }
        }
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
        "env" => Kind::Env,
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
