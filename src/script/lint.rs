//! Checks made before a script runs, so that a typo cannot surface halfway
//! through a run after writes were made: calls to functions that do not
//! exist (`tokens::lst`, `frobnicate`) or with the wrong number of arguments
//! (`tokens::create("a")`), in mdops' namespaces and in the bundled modules
//! a script imports. Every finding is reported, each at file:line:col.

use crate::script::diagnostics::{suggest, Category, Diagnostic};
use rhai::{ASTNode, Engine, Expr, Position, Stmt, AST};
use std::collections::{HashMap, HashSet};

/// The first problem, with a note counting the others (`mdops check` lists
/// them all). `whole`: the AST is a whole script, so a plain function it
/// calls must be defined in it or built in (not so for one REPL input).
pub fn check(engine: &Engine, ast: &AST, src: &str) -> Result<(), Diagnostic> {
    check_with(engine, ast, src, true)
}

pub fn check_with(engine: &Engine, ast: &AST, src: &str, whole: bool) -> Result<(), Diagnostic> {
    let mut all = findings(engine, ast, src, whole);
    if all.is_empty() {
        return Ok(());
    }
    let mut first = all.remove(0);
    if !all.is_empty() {
        first.notes.push(format!(
            "and {} more problem(s): `mdops check` lists them all",
            all.len()
        ));
    }
    Err(first)
}

/// Every problem found, in source order.
pub fn findings(engine: &Engine, ast: &AST, src: &str, whole: bool) -> Vec<Diagnostic> {
    let known: Vec<String> = crate::script::docs::callable_names(engine);
    let known_set: HashSet<&str> = known.iter().map(String::as_str).collect();
    let arities = crate::script::docs::arities(engine);
    let namespaces: HashSet<&str> = crate::script::bindings::modules()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let modules = imported_modules(ast);
    let defined = defined_names(ast);
    let mut out: Vec<(Position, Diagnostic)> = Vec::new();
    let mut report = |pos: Position, message: String, help: Option<String>| {
        out.push((
            pos,
            Diagnostic {
                message,
                at: Some((src.to_string(), pos)),
                notes: vec![],
                help,
                category: Category::Script,
            },
        ));
    };
    ast.walk(&mut |path: &[ASTNode]| {
        let (call, pos) = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, pos))) => (call, *pos),
            Some(ASTNode::Stmt(Stmt::FnCall(call, pos))) => (call, *pos),
            _ => return true,
        };
        let name = call.name.as_str();
        let argc = call.args.len();
        if !call.namespace.is_empty() {
            let ns = call.namespace.to_string();
            let qualified = format!("{ns}::{name}");
            let overloads: Option<Vec<usize>> = if namespaces.contains(ns.as_str()) {
                Some(arities.get(&qualified).cloned().unwrap_or_default())
            } else {
                modules
                    .get(&ns)
                    .map(|m| m.get(name).cloned().unwrap_or_default())
            };
            let Some(overloads) = overloads else {
                return true;
            };
            if overloads.is_empty() {
                let mut candidates: Vec<String> = known.clone();
                if let Some(m) = modules.get(&ns) {
                    candidates.extend(m.keys().map(|f| format!("{ns}::{f}")));
                }
                report(
                    pos,
                    format!("unknown function: {qualified}"),
                    suggest(&qualified, &candidates).map(|s| format!("did you mean `{s}`?")),
                );
            } else if !overloads.contains(&argc) {
                report(
                    pos,
                    format!(
                        "{qualified} takes {} argument{}, not {argc}",
                        counts(&overloads),
                        if overloads == [1] { "" } else { "s" }
                    ),
                    Some(format!("`mdops doc {qualified}` shows how to call it")),
                );
            }
        } else if whole
            && name.starts_with(|c: char| c.is_alphabetic() || c == '_')
            && !known_set.contains(name)
            && !defined.contains(name)
        {
            let mut candidates = known.clone();
            candidates.extend(defined.iter().cloned());
            report(
                pos,
                format!("unknown function: {name}"),
                suggest(name, &candidates).map(|s| format!("did you mean `{s}`?")),
            );
        }
        true
    });
    out.sort_by_key(|(p, _)| (p.line().unwrap_or(0), p.position().unwrap_or(0)));
    out.into_iter().map(|(_, d)| d).collect()
}

/// `1`, `1 or 2`, `2, 3 or 4`.
fn counts(n: &[usize]) -> String {
    let mut n = n.to_vec();
    n.sort_unstable();
    n.dedup();
    match n.as_slice() {
        [] => "no".into(),
        [one] => one.to_string(),
        [rest @ .., last] => format!(
            "{} or {last}",
            rest.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Bundled modules the script imports: alias → function → argument counts.
fn imported_modules(ast: &AST) -> HashMap<String, HashMap<String, Vec<usize>>> {
    let mut out = HashMap::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Stmt(Stmt::Import(x, _))) = path.last() {
            let (expr, alias) = x.as_ref();
            if let Expr::StringConstant(module, _) = expr {
                if let Some(text) = crate::script::resolver::stdlib(module) {
                    let mut fns: HashMap<String, Vec<usize>> = HashMap::new();
                    if let Ok(ast) = compile_module(text) {
                        for f in ast.iter_functions() {
                            if f.access != rhai::FnAccess::Private {
                                fns.entry(f.name.to_string())
                                    .or_default()
                                    .push(f.params.len());
                            }
                        }
                    }
                    out.insert(alias.name.to_string(), fns);
                }
            }
        }
        true
    });
    out
}

fn compile_module(text: &str) -> Result<AST, rhai::ParseError> {
    let mut engine = Engine::new_raw();
    engine.set_max_expr_depths(
        crate::script::MAX_EXPR_DEPTH,
        crate::script::MAX_FN_EXPR_DEPTH,
    );
    engine.compile(text)
}

/// Functions the script defines: what a plain call may name besides the
/// built-in ones (Rhai calls a function pointer with `f.call(x)`, not `f(x)`).
fn defined_names(ast: &AST) -> HashSet<String> {
    ast.iter_functions().map(|f| f.name.to_string()).collect()
}
