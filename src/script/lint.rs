//! Checks made before a script runs: a call to a function that does not exist
//! in one of mdops' namespaces (`tokens::lst`) is reported at compile time, so
//! a typo cannot surface halfway through a run after writes were made.

use crate::script::diagnostics::{suggest, Category, Diagnostic};
use rhai::{ASTNode, Engine, Expr, Stmt, AST};
use std::collections::HashSet;

pub fn check(engine: &Engine, ast: &AST, src: &str) -> Result<(), Diagnostic> {
    let known: Vec<String> = crate::script::docs::callable_names(engine);
    let namespaces: HashSet<&str> = crate::script::bindings::modules()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut found: Option<Diagnostic> = None;
    ast.walk(&mut |path: &[ASTNode]| {
        let call = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, pos))) => Some((call, pos)),
            Some(ASTNode::Stmt(Stmt::FnCall(call, pos))) => Some((call, pos)),
            _ => None,
        };
        if let Some((call, pos)) = call {
            if !call.namespace.is_empty() {
                let ns = call.namespace.to_string();
                let qualified = format!("{ns}::{}", call.name);
                if namespaces.contains(ns.as_str()) && !known.contains(&qualified) {
                    found = Some(Diagnostic {
                        message: format!("unknown function: {qualified}"),
                        at: Some((src.to_string(), *pos)),
                        notes: vec![],
                        help: suggest(&qualified, &known).map(|s| format!("did you mean `{s}`?")),
                        category: Category::Script,
                    });
                    return false;
                }
            }
        }
        true
    });
    found.map_or(Ok(()), Err)
}
