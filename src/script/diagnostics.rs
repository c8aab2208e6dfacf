//! Errors as people read them: what went wrong, `file:line:col`, the source
//! line with a caret, the call chain, and a suggestion where one helps.

use rhai::{Dynamic, EvalAltResult, Map, ParseError, Position};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A module and the text it was compiled from.
type Compiled = (Arc<str>, rhai::Shared<rhai::Module>);

/// Source texts by source name, so errors can quote the offending line of the
/// main script or of any module it imported.
#[derive(Default)]
pub struct Sources {
    texts: Mutex<HashMap<String, Arc<str>>>,
    /// Import path as written (`"lib/util"`) → source name it resolved to.
    aliases: Mutex<HashMap<String, String>>,
    /// Closure (`anon$…`) → the source it was written in: a closure defined in
    /// a script and called from a module carries no source of its own.
    closures: Mutex<HashMap<String, String>>,
    /// Imported modules, compiled once per program and shared by every
    /// engine of it (the `parallel()` workers): by source name, with the text
    /// they were compiled from, so an edited file is compiled again.
    modules: Mutex<HashMap<String, Compiled>>,
}

impl Sources {
    pub fn add(&self, name: &str, text: &str) {
        self.texts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), Arc::from(text));
    }
    pub fn alias(&self, import: &str, name: &str) {
        self.aliases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(import.to_string(), name.to_string());
    }
    /// Remembers which source the closures of `ast` were written in.
    pub fn closures_of(&self, ast: &rhai::AST, name: &str) {
        let mut c = self.closures.lock().unwrap_or_else(|e| e.into_inner());
        for f in ast.iter_functions() {
            if f.name.starts_with("anon$") {
                c.entry(f.name.to_string())
                    .or_insert_with(|| name.to_string());
            }
        }
    }
    /// The module compiled from `text` under `name`, if it was.
    pub fn module(&self, name: &str, text: &str) -> Option<rhai::Shared<rhai::Module>> {
        let modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        let (compiled_from, module) = modules.get(name)?;
        (**compiled_from == *text).then(|| module.clone())
    }
    /// Forgets every compiled module: the next import compiles it (and what
    /// it imports) again from its file (the REPL's `:clear`).
    pub fn forget_modules(&self) {
        self.modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
    pub fn keep_module(&self, name: &str, text: &str, module: rhai::Shared<rhai::Module>) {
        self.modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), (Arc::from(text), module));
    }
    fn closure(&self, anon: &str) -> Option<String> {
        self.closures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(anon)
            .cloned()
    }
    fn resolve(&self, import: &str) -> String {
        self.aliases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(import)
            .cloned()
            .unwrap_or_else(|| import.to_string())
    }
    fn line(&self, name: &str, line: usize) -> Option<String> {
        let texts = self.texts.lock().unwrap_or_else(|e| e.into_inner());
        texts
            .get(name)?
            .lines()
            .nth(line.checked_sub(1)?)
            .map(str::to_string)
    }
}

/// How a failure maps onto the exit codes cron depends on.
pub type Category = crate::failure::Kind;

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub message: String,
    pub at: Option<(String, Position)>,
    pub notes: Vec<String>,
    pub help: Option<String>,
    pub category: Category,
}

fn loc(src: &str, pos: Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{src}:{l}:{c}"),
        (Some(l), None) => format!("{src}:{l}"),
        _ => src.to_string(),
    }
}

impl Diagnostic {
    pub fn render(&self, sources: &Sources) -> String {
        // Messages may carry text from the server or a script's own values:
        // never a terminal escape (line breaks kept).
        let text = |t: &str| crate::output::escape_text(t).into_owned();
        let mut out = format!("error: {}\n", text(&self.message));
        if let Some((src, pos)) = &self.at {
            if !pos.is_none() {
                out.push_str(&format!("  --> {}\n", loc(src, *pos)));
                if let (Some(l), Some(text)) =
                    (pos.line(), pos.line().and_then(|l| sources.line(src, l)))
                {
                    let num = l.to_string();
                    let pad = " ".repeat(num.len());
                    let col = pos.position().unwrap_or(1).max(1);
                    // The line as written, but never a terminal escape from it
                    // (tabs kept, so the caret lines up under the code).
                    let show = |t: &str| -> String {
                        t.split('\t')
                            .map(|part| crate::output::escape(part).into_owned())
                            .collect::<Vec<_>>()
                            .join("\t")
                    };
                    let shown = show(&text);
                    let before: String = text.chars().take(col - 1).collect();
                    let lead: String = show(&before)
                        .chars()
                        .map(|c| if c == '\t' { '\t' } else { ' ' })
                        .collect();
                    out.push_str(&format!(" {pad} |\n {num} | {shown}\n {pad} | {lead}^\n"));
                }
            }
        }
        for n in &self.notes {
            out.push_str(&format!("  = note: {}\n", text(n)));
        }
        if let Some(h) = &self.help {
            out.push_str(&format!("  = help: {}\n", text(h)));
        }
        out
    }
}

pub fn from_parse(err: &ParseError, src: &str) -> Diagnostic {
    let (message, help) = match err.0.as_ref() {
        rhai::ParseErrorType::ModuleUndefined(name) => (
            format!("unknown namespace `{name}`"),
            Some(format!(
                "the namespaces are {}; a module is imported first: import \"NAME\" as NAME;",
                crate::script::bindings::modules()
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ),
        other => (format!("syntax error: {other}"), None),
    };
    Diagnostic {
        message,
        at: Some((src.to_string(), err.1)),
        notes: vec![],
        help,
        category: Category::Script,
    }
}

/// The value a caught error has in scripts: the API error map, the thrown value,
/// or the message.
pub fn error_value(err: &EvalAltResult) -> Dynamic {
    let mut cur = err;
    while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
    | EvalAltResult::ErrorInModule(_, inner, _) = cur
    {
        cur = inner;
    }
    match cur {
        EvalAltResult::ErrorRuntime(v, _) => v.clone(),
        other => Dynamic::from(without_position(other)),
    }
}

/// An error's message without Rhai's ` (line L, position P)` suffix: the
/// position is shown separately.
fn without_position(e: &EvalAltResult) -> String {
    let text = e.to_string();
    let suffix = format!(" ({})", e.position());
    text.strip_suffix(&suffix)
        .map(str::to_string)
        .unwrap_or(text)
}

/// `candidates` are the names a misspelt function may have meant.
pub fn from_eval(
    err: &EvalAltResult,
    main_src: &str,
    sources: &Sources,
    candidates: &[String],
) -> Diagnostic {
    let mut src = main_src.to_string();
    let mut cur = err;
    let mut notes = Vec::new();
    loop {
        match cur {
            EvalAltResult::ErrorInFunctionCall(name, fsrc, inner, pos) => {
                let what = if name.starts_with("anon$") {
                    "in a closure called".to_string()
                } else {
                    format!("in function `{name}`, called")
                };
                notes.push(format!("{what} at {}", loc(&src, *pos)));
                // A closure reports the source it was called from; where it was
                // written is what the reader needs.
                if let Some(origin) = sources.closure(name) {
                    src = origin;
                } else if !fsrc.is_empty() {
                    src = fsrc.clone();
                }
                cur = inner;
            }
            EvalAltResult::ErrorInModule(path, inner, pos) => {
                notes.push(format!(
                    "in module \"{path}\", imported at {}",
                    loc(&src, *pos)
                ));
                src = sources.resolve(path);
                cur = inner;
            }
            _ => break,
        }
    }
    notes.reverse();
    let pos = cur.position();
    let mut help = None;
    let mut category = Category::Script;
    let message = match cur {
        EvalAltResult::ErrorRuntime(value, _) => match value.read_lock::<Map>() {
            Some(m) if m.contains_key("summary") => {
                let status = m.get("status").and_then(|s| s.as_int().ok());
                let kind = m.get("kind").map(|k| k.to_string()).unwrap_or_default();
                category = match (kind.as_str(), status) {
                    (_, Some(401 | 403)) => Category::Auth,
                    ("usage", _) => Category::Usage,
                    ("network" | "timeout", _) => Category::Unavailable,
                    ("api", Some(s)) if s >= 500 || s == 429 => Category::Unavailable,
                    _ => Category::Script,
                };
                m["summary"].to_string()
            }
            _ if value.is_string() => {
                format!(
                    "uncaught exception: {}",
                    crate::output::escape(&value.to_string())
                )
            }
            _ => format!(
                "uncaught exception: {}",
                crate::script::convert::to_json(value)
            ),
        },
        EvalAltResult::ErrorFunctionNotFound(sig, _) => {
            let name = sig.split(" (").next().unwrap_or(sig).trim();
            help = suggest(name, candidates).map(|s| format!("did you mean `{s}`?"));
            format!("unknown function: {}", pretty_signature(sig))
        }
        EvalAltResult::ErrorVariableNotFound(name, _) => format!("unknown variable `{name}`"),
        EvalAltResult::ErrorModuleNotFound(name, _) => {
            help = Some(
                "bundled modules are listed by `mdops doc`; other paths are relative to the script"
                    .into(),
            );
            format!("cannot find module \"{name}\"")
        }
        EvalAltResult::ErrorParsing(p, _) => format!("syntax error: {p}"),
        EvalAltResult::ErrorTerminated(..) => {
            category = Category::Interrupted;
            "interrupted".to_string()
        }
        other => without_position(other),
    };
    Diagnostic {
        message,
        at: Some((src, pos)),
        notes,
        help,
        category,
    }
}

/// `tokens::lst (&str | ImmutableString | String)` → `tokens::lst(string)`.
fn pretty_signature(sig: &str) -> String {
    let Some((name, args)) = sig.split_once(" (") else {
        return sig.to_string();
    };
    let args = args.trim_end_matches(')');
    let args: Vec<&str> = args
        .split(", ")
        .filter(|a| !a.is_empty())
        .map(|a| {
            if a.contains("ImmutableString") || a.contains("&str") {
                "string"
            } else if a == "i64" {
                "int"
            } else if a == "f64" {
                "float"
            } else if a.ends_with("Map") {
                "map"
            } else if a.ends_with("Array") {
                "array"
            } else {
                a
            }
        })
        .collect();
    format!("{name}({})", args.join(", "))
}

/// The closest known name, if one is close enough to be a likely typo.
pub fn suggest(name: &str, candidates: &[String]) -> Option<String> {
    let (ns, short) = match name.rsplit_once("::") {
        Some((ns, s)) => (Some(ns), s),
        None => (None, name),
    };
    candidates
        .iter()
        .filter(|c| c.as_str() != name)
        .map(|c| {
            let (cns, cshort) = match c.rsplit_once("::") {
                Some((n, s)) => (Some(n), s),
                None => (None, c.as_str()),
            };
            // Same namespace, close name; or the right name in the wrong namespace.
            let d = match (ns, cns) {
                (a, b) if a == b => strsim::damerau_levenshtein(short, cshort),
                _ if short == cshort => 1,
                _ => strsim::damerau_levenshtein(name, c) + 1,
            };
            (d, c)
        })
        // A one- or two-letter name is close to too much to suggest anything.
        .filter(|(d, _)| *d <= (short.chars().count() / 3).max(2) && *d < short.chars().count())
        .min_by_key(|(d, c)| (*d, c.len()))
        .map(|(_, c)| c.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let c: Vec<String> = [
            "tokens::list",
            "tokens::create",
            "tokens::revoke",
            "accounts::list",
            "print",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(suggest("tokens::lst", &c).as_deref(), Some("tokens::list"));
        assert_eq!(
            suggest("tokens::revok", &c).as_deref(),
            Some("tokens::revoke")
        );
        assert_eq!(suggest("token::list", &c).as_deref(), Some("tokens::list"));
        assert_eq!(suggest("prnt", &c).as_deref(), Some("print"));
        assert_eq!(suggest("frobnicate", &c), None);
    }

    #[test]
    fn signatures() {
        assert_eq!(
            pretty_signature("tokens::lst (&str | ImmutableString | String)"),
            "tokens::lst(string)"
        );
        assert_eq!(pretty_signature("foo ()"), "foo()");
    }
}
