//! One REPL session: an engine, the variables, functions and imports that
//! persist across inputs, and the `:commands`.

use super::complete::Known;
use crate::script::diagnostics::{self, Sources};
use crate::script::host::Host;
use crate::script::{self, docs};
use rhai::{Dynamic, Engine, EvalAltResult, Scope, AST};
use std::sync::Arc;

pub struct Session {
    engine: Engine,
    scope: Scope<'static>,
    /// Functions defined so far (statements are dropped after each input).
    functions: AST,
    host: Arc<Host>,
    sources: Arc<Sources>,
    pub json: bool,
    inputs: usize,
    docs: Vec<docs::FnDoc>,
    imports: Vec<(String, String)>,
}

/// What an input produced: text for stdout, text for stderr.
#[derive(Debug, Default, PartialEq)]
pub struct Reply {
    pub out: String,
    pub err: String,
    pub quit: bool,
}

impl Reply {
    fn out(text: String) -> Reply {
        Reply {
            out: text,
            ..Default::default()
        }
    }
    fn err(text: String) -> Reply {
        Reply {
            err: text,
            ..Default::default()
        }
    }
}

/// `:help` without a name: the commands, then the namespaces and helpers as
/// the engine has them (one source, so it cannot drift).
fn help_text(docs: &[docs::FnDoc]) -> String {
    let mut out = String::from(
        "Type Rhai statements; results are shown as tables (arrays of maps) or key/value lines.\n\
         An unfinished statement (an open brace, a trailing operator) continues on the next line.\n\n\
         Commands:\n",
    );
    let width = super::complete::COMMANDS
        .iter()
        .map(|(c, a, _)| c.len() + a.len() + 1)
        .max()
        .unwrap_or(0);
    for (cmd, arg, what) in super::complete::COMMANDS.iter().filter(|c| !c.2.is_empty()) {
        let head = if arg.is_empty() {
            cmd.to_string()
        } else {
            format!("{cmd} {arg}")
        };
        out.push_str(&format!("  {head:<width$}  {what}\n"));
    }
    let mut namespaces: Vec<&str> = docs
        .iter()
        .filter_map(|f| f.qualified.split_once("::").map(|(ns, _)| ns))
        .collect();
    namespaces.dedup();
    let mut helpers: Vec<&str> = docs
        .iter()
        .filter(|f| !f.qualified.contains("::") && !f.qualified.contains('.'))
        .map(|f| f.qualified.as_str())
        .collect();
    helpers.dedup();
    out.push_str(&format!(
        "\nNamespaces (Tab completes): {}\nHelpers: {}\n\
         Ctrl-C cancels a running evaluation, API call included; Ctrl-D leaves.\n",
        namespaces
            .iter()
            .map(|n| format!("{n}::"))
            .collect::<Vec<_>>()
            .join(" "),
        helpers.join(" ")
    ));
    out
}

impl Session {
    pub fn new(engine: Engine, host: Arc<Host>, sources: Arc<Sources>) -> Session {
        let docs = docs::functions(&engine);
        Session {
            engine,
            scope: Scope::new(),
            functions: AST::empty(),
            host,
            sources,
            json: false,
            inputs: 0,
            docs,
            imports: Vec::new(),
        }
    }

    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    /// Completion data for the current state.
    pub fn known(&self) -> Known {
        let mut k = Known::new(self.docs.clone());
        for (name, _, value) in self.scope.iter() {
            let keys = value
                .read_lock::<rhai::Map>()
                .map(|m| m.keys().map(|k| k.to_string()).collect())
                .unwrap_or_default();
            k.variables.insert(name.to_string(), keys);
        }
        k.script_functions = self
            .functions
            .iter_functions()
            .map(|f| f.name.to_string())
            .collect();
        k
    }

    /// Runs one complete input (a statement block or a `:command`).
    pub fn input(&mut self, text: &str) -> Reply {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Reply::default();
        }
        if let Some(cmd) = trimmed.strip_prefix(':') {
            return self.command(cmd);
        }
        self.inputs += 1;
        let name = format!("<repl:{}>", self.inputs);
        self.eval_source(&name, text)
    }

    fn eval_source(&mut self, name: &str, text: &str) -> Reply {
        self.sources.add(name, text);
        let mut ast = match self.engine.compile_with_scope(&self.scope, text) {
            Ok(ast) => ast,
            Err(e) => return Reply::err(diagnostics::from_parse(&e, name).render(&self.sources)),
        };
        ast.set_source(name);
        if let Err(d) = script::lint::check_with(&self.engine, &ast, name, false) {
            return Reply::err(d.render(&self.sources));
        }
        let mut run = self.functions.clone();
        run += ast.clone();
        self.host.set_program(crate::script::host::Program {
            ast: Arc::new(run.clone_functions_only()),
            imports: self
                .imports
                .iter()
                .cloned()
                .chain(script::top_level_imports(&ast))
                .collect(),
            sources: self.sources.clone(),
            print_to: script::PrintTo::Stdout,
            engines: Default::default(),
        });
        // Evaluated, shown and dropped on a thread with room for deep values.
        let (engine, scope, json) = (&self.engine, &mut self.scope, self.json);
        let (functions, sources) = (&self.functions, &self.sources);
        let result = std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("mdops-repl-eval".into())
                .stack_size(script::SCRIPT_STACK)
                .spawn_scoped(s, || {
                    match engine.eval_ast_with_scope::<Dynamic>(scope, &run) {
                        Ok(v) => Ok(show(&v, json)),
                        Err(e) => Err(describe(engine, functions, sources, &e, name)),
                    }
                })
                .map(|t| t.join())
        });
        let result = match result {
            Ok(Ok(r)) => r,
            _ => Err("error: internal error: the evaluation thread failed\n".to_string()),
        };
        // Functions defined by this input stay, whatever became of its statements.
        self.functions += ast.clone_functions_only();
        self.keep_imports(&ast);
        self.host.bridge.reset();
        // Dry-run plan lines were printed as they happened; do not let them pile up.
        self.host.take_plan();
        match result {
            Ok(Ok(text)) => Reply::out(text),
            Ok(Err(e)) => Reply::err(format!("error: cannot show the result: {e}\n")),
            Err(text) => Reply::err(text),
        }
    }

    /// Top-level `import "x" as y;` must outlive the input that made it: the
    /// module becomes a static module of the engine under its alias.
    fn keep_imports(&mut self, ast: &AST) {
        let imports = script::top_level_imports(ast);
        self.imports.extend(imports.iter().cloned());
        script::register_imports(&mut self.engine, &imports, &self.sources, ast.source());
    }

    fn command(&mut self, cmd: &str) -> Reply {
        let (name, rest) = cmd.split_once(char::is_whitespace).unwrap_or((cmd, ""));
        let rest = rest.trim();
        match name {
            "q" | "quit" | "exit" => Reply {
                quit: true,
                ..Default::default()
            },
            "h" | "help" if rest.is_empty() => Reply::out(help_text(&self.docs)),
            "h" | "help" => self.help(rest),
            "vars" => Reply::out(self.vars()),
            "json" => {
                self.json = !self.json;
                Reply::out(format!(
                    "JSON output {}\n",
                    if self.json { "on" } else { "off" }
                ))
            }
            "clear" => {
                self.scope.clear();
                self.functions = AST::empty();
                self.imports.clear();
                self.sources.forget_modules();
                self.engine = script::engine(
                    Some(self.host.clone()),
                    self.sources.clone(),
                    script::PrintTo::Stdout,
                );
                self.docs = docs::functions(&self.engine);
                Reply::out("cleared variables, functions and imports\n".into())
            }
            "load" if rest.is_empty() => Reply::err("error: :load needs a file name\n".into()),
            "load" => self.load(rest),
            other => {
                let known: Vec<String> = super::complete::COMMANDS
                    .iter()
                    .map(|(c, _, _)| c.to_string())
                    .collect();
                let hint = diagnostics::suggest(&format!(":{other}"), &known)
                    .map(|s| format!(" (did you mean {s}?)"))
                    .unwrap_or_default();
                Reply::err(format!(
                    "error: unknown command :{other}{hint}; :help lists them\n"
                ))
            }
        }
    }

    /// Runs a file in the session, as if typed (its functions and variables stay).
    pub fn load(&mut self, path: &str) -> Reply {
        match std::fs::read_to_string(path) {
            Ok(text) => self.eval_source(path, &text),
            Err(e) => Reply::err(format!("error: cannot read {path}: {e}\n")),
        }
    }

    fn help(&self, name: &str) -> Reply {
        let name = name.trim_end_matches('(').trim_end_matches("::");
        let matches: Vec<&docs::FnDoc> = self
            .docs
            .iter()
            .filter(|f| f.qualified == name || f.qualified.starts_with(&format!("{name}::")))
            .collect();
        if matches.is_empty() {
            let names: Vec<String> = self.docs.iter().map(|f| f.qualified.clone()).collect();
            let hint = diagnostics::suggest(name, &names)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Reply::err(format!(
                "error: no function or namespace named {name:?}{hint}\n"
            ));
        }
        Reply::out(
            matches
                .iter()
                .map(|f| {
                    let body: String = f.doc.lines().map(|l| format!("    {l}\n")).collect();
                    format!("{}\n{body}", f.signature)
                })
                .collect::<Vec<_>>()
                .join("\n"),
        )
    }

    fn vars(&self) -> String {
        let mut rows: Vec<(String, String, String)> = self
            .scope
            .iter()
            .map(|(name, _, v)| {
                let mut shown = crate::output::cell(&crate::script::convert::to_json(&v));
                if shown.chars().count() > 60 {
                    shown = shown.chars().take(57).collect::<String>() + "...";
                }
                (
                    name.to_string(),
                    v.type_name().rsplit("::").next().unwrap_or("").to_string(),
                    shown,
                )
            })
            .collect();
        if rows.is_empty() {
            return "(no variables)\n".into();
        }
        rows.sort();
        let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(n, t, v)| format!("{n:<w0$}  {t:<w1$}  {v}\n"))
            .collect()
    }
}

/// An evaluation error as the REPL shows it.
fn describe(
    engine: &Engine,
    functions: &AST,
    sources: &Sources,
    e: &EvalAltResult,
    name: &str,
) -> String {
    if let EvalAltResult::ErrorTerminated(v, _) = e {
        if let Some(m) = v.read_lock::<rhai::Map>() {
            if let Some(code) = m.get(script::convert::EXIT_CODE_KEY) {
                return format!(
                    "(the script asked to exit with code {code}; the session goes on)\n"
                );
            }
        }
    }
    let candidates = script::known_names(engine, Some(functions));
    diagnostics::from_eval(e, name, sources, &candidates).render(sources)
}

/// A result as the REPL shows it (strings quoted, so "" and () differ).
fn show(v: &Dynamic, json: bool) -> Result<String, String> {
    if v.is_unit() {
        return Ok(String::new());
    }
    if v.is_string() && !json {
        return Ok(format!(
            "{:?}\n",
            v.clone().into_string().unwrap_or_default()
        ));
    }
    let mode = if json {
        crate::script::convert::Mode::Raw
    } else {
        crate::script::convert::Mode::Display
    };
    let doc = crate::script::convert::to_doc(v, mode)?;
    let text = if json {
        crate::output::json(&doc.to_json())
    } else {
        doc.to_text()
    };
    Ok(crate::redact::clean_output(&text).into_owned())
}

/// Whether `text` is an unfinished statement that should continue on the next
/// line (rather than a syntax error to report).
pub fn is_incomplete(engine: &Engine, text: &str) -> bool {
    if text.trim_start().starts_with(':') {
        return false;
    }
    match engine.compile(text) {
        Ok(_) => false,
        Err(e) => {
            use rhai::ParseErrorType as P;
            if matches!(*e.0, P::UnexpectedEOF) {
                return true;
            }
            // Backtick strings may span lines: an open one continues.
            if matches!(*e.0, P::BadInput(rhai::LexError::UnterminatedString))
                && text.matches('`').count() % 2 == 1
            {
                return true;
            }
            // An error reported where the input ends means more input could mend it.
            let lines = text.lines().count().max(1);
            let last = text.lines().last().unwrap_or("");
            let ends_with_newline = text.ends_with('\n');
            match (e.1.line(), e.1.position()) {
                (Some(l), _) if l > lines => true,
                (Some(l), Some(c)) if l == lines && !ends_with_newline => c > last.chars().count(),
                (None, _) => true,
                _ => false,
            }
        }
    }
}

/// The engine the validator uses: syntax only, no variables checked (the session's
/// scope lives elsewhere).
pub fn syntax_engine() -> Engine {
    let mut e = Engine::new_raw();
    e.set_max_expr_depths(script::MAX_EXPR_DEPTH, script::MAX_FN_EXPR_DEPTH);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_versus_wrong() {
        let e = syntax_engine();
        for text in [
            "fn f(x) {",
            "let x = [1, 2,",
            "let y = 1 +",
            "if true {\n print(1);",
            "#{a: 1,",
            "f(1,",
            "let s = `abc",
        ] {
            assert!(is_incomplete(&e, text), "{text:?} should continue");
        }
        for text in [
            "let x = 1;",
            "let = 5;",
            "fn f() { }",
            "1 + ) 2",
            ":help",
            "let x = [1, 2;",
        ] {
            assert!(
                !is_incomplete(&e, text),
                "{text:?} is complete (or plainly wrong)"
            );
        }
    }
}
