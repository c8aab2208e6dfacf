//! The reference of script-visible functions, read from the engine's metadata
//! (each binding's doc comment), for `mdops doc` and REPL help.

use rhai::Engine;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq)]
pub struct FnDoc {
    /// `tokens::list`, or a bare name for global helpers.
    pub qualified: String,
    /// `tokens::list(username: string) -> array`
    pub signature: String,
    pub doc: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    modules: std::collections::BTreeMap<String, ModuleMeta>,
    #[serde(default)]
    functions: Vec<FnMeta>,
}

#[derive(Deserialize)]
struct ModuleMeta {
    #[serde(default)]
    functions: Vec<FnMeta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FnMeta {
    name: String,
    #[serde(default)]
    params: Vec<Param>,
    #[serde(default)]
    return_type: String,
    #[serde(default)]
    doc_comments: Vec<String>,
}

#[derive(Deserialize)]
struct Param {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    typ: Option<String>,
}

fn friendly(ty: &str) -> String {
    let t = ty
        .trim()
        .trim_start_matches("&mut ")
        .trim_start_matches('&');
    match t {
        "str" | "ImmutableString" | "String" => "string".into(),
        "i64" | "INT" => "int".into(),
        "f64" | "FLOAT" => "float".into(),
        "bool" => "bool".into(),
        "Map" | "rhai::Map" => "map".into(),
        "Array" | "rhai::Array" => "array".into(),
        "Dynamic" | "rhai::Dynamic" => "any".into(),
        "FnPtr" | "rhai::FnPtr" => "fn".into(),
        "SecretString" | "crate::api::SecretString" => "Secret".into(),
        "()" => "()".into(),
        t if t.starts_with("Range<") || t.starts_with("std::ops::Range<") => "range".into(),
        t if t.contains("RangeInclusive<") => "range".into(),
        other => other.rsplit("::").next().unwrap_or(other).to_string(),
    }
}

fn render(qualified: &str, f: &FnMeta) -> FnDoc {
    let params: Vec<String> = f
        .params
        .iter()
        .map(|p| match (&p.name, &p.typ) {
            (Some(n), Some(t)) => format!("{n}: {}", friendly(t)),
            (Some(n), None) => n.clone(),
            (None, Some(t)) => friendly(t),
            (None, None) => "_".into(),
        })
        .collect();
    let ret = friendly_ret(&f.return_type);
    // A property getter reads as the property: `Shown.raw -> any`.
    if let Some(prop) = f.name.strip_prefix("get$") {
        let on = f
            .params
            .first()
            .and_then(|p| p.typ.as_deref())
            .map(friendly)
            .unwrap_or_default();
        return FnDoc {
            qualified: format!("{on}.{prop}"),
            signature: format!("{on}.{prop} -> {ret}"),
            doc: doc_text(f),
        };
    }
    let mut signature = format!("{qualified}({})", params.join(", "));
    if !f.return_type.is_empty() && ret != "()" {
        signature.push_str(&format!(" -> {ret}"));
    }
    FnDoc {
        qualified: qualified.to_string(),
        signature,
        doc: doc_text(f),
    }
}

fn doc_text(f: &FnMeta) -> String {
    f.doc_comments
        .iter()
        .flat_map(|c| c.lines())
        .map(|l| {
            l.trim()
                .trim_start_matches("///")
                .trim_start_matches("/**")
                .trim_end_matches("*/")
        })
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

fn friendly_ret(ty: &str) -> String {
    // `ScriptResult<Map>` / `Result<Array, Box<EvalAltResult>>` → the inner type.
    let t = ty.trim();
    let inner = t
        .strip_prefix("ScriptResult<")
        .or_else(|| t.strip_prefix("Result<"))
        .map(|r| {
            let r = r.strip_suffix('>').unwrap_or(r);
            r.split(", Box<").next().unwrap_or(r)
        })
        .unwrap_or(t);
    friendly(inner)
}

/// Every function name a script can call: this project's and Rhai's own
/// (from the engine's metadata; operators and internal names left out).
/// Read straight from the engine (every script is linted with it at start-up:
/// rendering the metadata as JSON and reading it back cost more than the
/// rest of a small run's start-up).
pub fn callable_names(engine: &Engine) -> Vec<String> {
    let plain =
        |n: &str| n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') && !n.contains('$');
    let mut names: Vec<String> = engine.collect_fn_metadata(
        None,
        |f| {
            let name = f.metadata.name.as_str();
            plain(name).then(|| match f.namespace.as_str() {
                "" => name.to_string(),
                ns => format!("{ns}::{name}"),
            })
        },
        true,
    );
    names.extend(
        [
            "print",
            "debug",
            "type_of",
            "is_def_fn",
            "is_def_var",
            "eval",
            "Fn",
            "call",
            "curry",
            "is_shared",
        ]
        .map(String::from),
    );
    names.sort();
    names.dedup();
    names
}

/// How many arguments each namespaced function takes (one entry per overload).
pub fn arities(engine: &Engine) -> std::collections::HashMap<String, Vec<usize>> {
    let mut out: std::collections::HashMap<String, Vec<usize>> = Default::default();
    let found = engine.collect_fn_metadata(
        None,
        |f| {
            (!f.namespace.is_empty()).then(|| {
                (
                    format!("{}::{}", f.namespace, f.metadata.name),
                    f.metadata.num_params,
                )
            })
        },
        false,
    );
    for (name, n) in found {
        out.entry(name).or_default().push(n);
    }
    out
}

/// Every function this project registers (not Rhai's standard library), sorted
/// by namespace then name. Functions without a doc comment (operators,
/// `to_string` overloads) are left out.
pub fn functions(engine: &Engine) -> Vec<FnDoc> {
    documented(engine, false)
}

/// Rhai's own standard functions that carry documentation (`split`, `trim`,
/// `parse_json`, ...), for `mdops doc NAME` when NAME is not one of ours.
pub fn builtins(engine: &Engine) -> Vec<FnDoc> {
    let ours: std::collections::HashSet<String> =
        functions(engine).into_iter().map(|f| f.signature).collect();
    documented(engine, true)
        .into_iter()
        .filter(|f| !ours.contains(&f.signature))
        .filter(|f| {
            f.qualified.starts_with(|c: char| c.is_ascii_alphabetic()) && !f.qualified.contains('$')
        })
        .collect()
}

fn documented(engine: &Engine, standard: bool) -> Vec<FnDoc> {
    let json = engine
        .gen_fn_metadata_to_json(standard)
        .expect("metadata serializes");
    let meta: Meta = serde_json::from_str(&json).expect("metadata has the documented shape");
    let mut out: Vec<FnDoc> = Vec::new();
    for (ns, m) in &meta.modules {
        for f in &m.functions {
            if !f.doc_comments.is_empty() {
                out.push(render(&format!("{ns}::{}", f.name), f));
            }
        }
    }
    for f in &meta.functions {
        if !f.doc_comments.is_empty() && !f.name.starts_with("to_") {
            out.push(render(&f.name, f));
        }
    }
    out.sort_by(|a, b| {
        let key = |d: &FnDoc| {
            (
                !d.qualified.contains("::"),
                d.qualified.clone(),
                d.signature.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    out.dedup_by(|a, b| a.signature == b.signature);
    out
}

/// The public functions of a script module (a bundled `stdlib/` module): each
/// signature with its `///` doc comment, in the order they are written.
pub fn module_functions(name: &str, text: &str) -> Result<Vec<FnDoc>, String> {
    let mut engine = Engine::new_raw();
    engine.set_max_expr_depths(
        crate::script::MAX_EXPR_DEPTH,
        crate::script::MAX_FN_EXPR_DEPTH,
    );
    let ast = engine
        .compile(text)
        .map_err(|e| format!("{name} does not compile: {e}"))?;
    let mut out: Vec<(usize, FnDoc)> = ast
        .iter_functions()
        .filter(|f| f.access != rhai::FnAccess::Private && !f.name.contains('$'))
        .map(|f| {
            let doc = f
                .comments
                .iter()
                .flat_map(|c| c.lines())
                .map(|l| l.trim().trim_start_matches("///"))
                .map(|l| l.strip_prefix(' ').unwrap_or(l))
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .to_string();
            let at = text.find(&format!("fn {}(", f.name)).unwrap_or(usize::MAX);
            (
                at,
                FnDoc {
                    qualified: format!("{name}::{}", f.name),
                    signature: format!("{name}::{}({})", f.name, f.params.join(", ")),
                    doc,
                },
            )
        })
        .collect();
    out.sort_by_key(|(at, _)| *at);
    Ok(out.into_iter().map(|(_, d)| d).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every script-visible function of this project has a doc comment: it is
    /// what `mdops doc`, `:help` and completion show. (Undocumented ones
    /// would silently vanish from all three.)
    #[test]
    fn every_binding_has_a_doc_comment() {
        let sources = std::sync::Arc::new(crate::script::diagnostics::Sources::default());
        let engine = crate::script::engine(None, sources, crate::script::PrintTo::Stderr);
        let json = engine.gen_fn_metadata_to_json(false).unwrap();
        let meta: Meta = serde_json::from_str(&json).unwrap();
        let mut missing = Vec::new();
        for (ns, m) in &meta.modules {
            missing.extend(
                m.functions
                    .iter()
                    .filter(|f| f.doc_comments.is_empty())
                    .map(|f| format!("{ns}::{}", f.name)),
            );
        }
        // Rhai's own registrations on custom types (the Table's to_string) are not ours.
        let theirs = ["to_string", "to_debug", "len"];
        missing.extend(
            meta.functions
                .iter()
                .filter(|f| f.doc_comments.is_empty() && !theirs.contains(&f.name.as_str()))
                .map(|f| f.name.clone()),
        );
        assert!(missing.is_empty(), "undocumented: {missing:?}");
        assert!(functions(&engine).len() > 50);
    }
}
