//! The Rhai side: engine factory, host (what bindings run against),
//! bindings, declared parameters, diagnostics, lint, module resolution, and
//! the conversion of script values into output and errors.

pub mod bindings;
pub mod convert;
pub mod diagnostics;
pub mod docs;
pub mod host;
pub mod lint;
pub mod params;
pub mod resolver;
pub mod table;

use crate::api::SecretString;
use diagnostics::{Diagnostic, Sources};
use host::Host;
use rhai::{Dynamic, Engine, AST};
use std::sync::Arc;
use table::Table;

/// Engine limits, set explicitly so that debug and release builds behave alike
/// (Rhai's defaults differ between them).
pub const MAX_CALL_LEVELS: usize = 64;
pub const MAX_EXPR_DEPTH: usize = 128;
pub const MAX_FN_EXPR_DEPTH: usize = 64;
/// Stack for every thread that runs script code (the run, `parallel()`
/// workers, REPL inputs): Rhai recurses over nested values when it clones or
/// drops them, and a script can build values far deeper than a default stack
/// holds. Only the pages touched are committed.
pub const SCRIPT_STACK: usize = 256 << 20;

/// Where `print` goes: stdout normally; stderr when stdout carries one JSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrintTo {
    Stdout,
    Stderr,
}

/// The script-visible modules: global ones, and namespaces by name.
type Bindings = (
    Vec<rhai::Shared<rhai::Module>>,
    Vec<(&'static str, rhai::Shared<rhai::Module>)>,
);

/// An engine with every script-visible function. `host` is `None` for
/// compile-only uses (`check`, `doc`); API functions then fail if called.
pub fn engine(host: Option<Arc<Host>>, sources: Arc<Sources>, print_to: PrintTo) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FN_EXPR_DEPTH)
        .set_max_operations(0)
        .set_max_modules(256)
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(false);
    engine
        .register_type_with_name::<SecretString>("Secret")
        .register_type_with_name::<crate::runtime::reads::Verification>("Verification")
        .register_type_with_name::<Table>("Table")
        .register_fn("to_string", |t: &mut Table| convert::table_text(t))
        .register_fn("to_debug", |t: &mut Table| convert::table_text(t))
        .register_fn("len", |t: &mut Table| t.rows.len() as rhai::INT)
        .register_type_with_name::<table::Shown>("Shown")
        .register_fn("to_string", |s: &mut table::Shown| s.text.clone())
        .register_fn("to_debug", |s: &mut table::Shown| format!("{:?}", s.text));
    // Built once per process and shared: every engine (each `parallel()`
    // worker has one) holds the same modules rather than its own copy.
    static BINDINGS: std::sync::OnceLock<Bindings> = std::sync::OnceLock::new();
    let (globals, modules) = BINDINGS.get_or_init(|| {
        (
            bindings::globals().into_iter().map(Into::into).collect(),
            bindings::modules()
                .into_iter()
                .map(|(name, m)| (name, m.into()))
                .collect(),
        )
    });
    for module in globals {
        engine.register_global_module(module.clone());
    }
    for (name, module) in modules {
        engine.register_static_module(*name, module.clone());
    }
    engine.set_module_resolver(resolver::Resolver::new(sources));
    // What a script prints never shows a known secret it did not reveal, nor
    // a terminal control sequence (text from the server can carry one).
    let shown = |s: &str| crate::output::escape_text(&crate::redact::clean_output(s)).into_owned();
    match print_to {
        PrintTo::Stdout => engine.on_print(move |s| println!("{}", shown(s))),
        PrintTo::Stderr => engine.on_print(move |s| eprintln!("{}", shown(s))),
    };
    engine.on_debug(move |s, src, pos| {
        let s = shown(s);
        match (src, pos.line()) {
            (Some(src), Some(l)) => eprintln!("[debug {src}:{l}] {s}"),
            _ => eprintln!("[debug] {s}"),
        }
    });
    if let Some(host) = host {
        let bridge = host.bridge.clone();
        // Ctrl-C stops the script at its next step; API calls in flight are
        // cancelled by the bridge itself.
        // Checked every 256 operations: often enough to stop within
        // microseconds, rarely enough to cost nothing across 32 workers.
        engine.on_progress(move |ops| {
            (ops % 256 == 0 && bridge.is_cancelled()).then_some(Dynamic::UNIT)
        });
        // Weak: the program keeps worker engines between `parallel()` calls,
        // and the host keeps the program.
        engine.set_default_tag(Dynamic::from(Arc::downgrade(&host)));
    }
    engine
}

/// Compiles a script, keeping its name for error positions and relative imports.
pub fn compile(
    engine: &Engine,
    name: &str,
    text: &str,
    sources: &Sources,
) -> Result<AST, Diagnostic> {
    sources.add(name, text);
    let text = strip_shebang(text);
    let mut ast = engine
        .compile(text.as_ref())
        .map_err(|e| diagnostics::from_parse(&e, name))?;
    ast.set_source(name);
    sources.closures_of(&ast, name);
    Ok(ast)
}

/// `#!/usr/bin/env mdops run` lines are allowed so scripts can be executable.
/// The line is blanked, not removed, so positions stay right.
pub fn strip_shebang(text: &str) -> std::borrow::Cow<'_, str> {
    match text.strip_prefix("#!") {
        Some(rest) => match rest.find('\n') {
            Some(i) => std::borrow::Cow::Owned(rest[i..].to_string()),
            None => std::borrow::Cow::Owned(String::new()),
        },
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// The modules an AST imports at top level with a constant path: (alias, path).
pub fn top_level_imports(ast: &AST) -> Vec<(String, String)> {
    ast.statements()
        .iter()
        .filter_map(|stmt| match stmt {
            rhai::Stmt::Import(x, _) => match &x.0 {
                rhai::Expr::StringConstant(p, _) if !x.1.name.is_empty() => {
                    Some((x.1.name.to_string(), p.to_string()))
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Makes `alias::f()` work in `engine` outside any `import` statement (worker
/// engines of `parallel()`, later REPL inputs).
pub fn register_imports(
    engine: &mut Engine,
    imports: &[(String, String)],
    sources: &Arc<Sources>,
    importer: Option<&str>,
) {
    let resolver = resolver::Resolver::new(sources.clone());
    for (alias, path) in imports {
        if let Ok(m) =
            rhai::ModuleResolver::resolve(&resolver, engine, importer, path, rhai::Position::NONE)
        {
            engine.register_static_module(alias.as_str(), m);
        }
    }
}

/// Names a misspelt call may have meant: every function the engine knows
/// (Rhai's own included, from its metadata) plus the script's own.
pub fn known_names(engine: &Engine, ast: Option<&AST>) -> Vec<String> {
    let mut names = docs::callable_names(engine);
    if let Some(ast) = ast {
        names.extend(ast.iter_functions().map(|f| f.name.to_string()));
    }
    names.sort();
    names.dedup();
    names
}
