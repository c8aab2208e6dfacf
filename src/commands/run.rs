//! `mdops run SCRIPT`: check the script and its arguments, take the run
//! lock, resolve what dead runs left behind, run, clean up, and end with the
//! exit code that says what happened.

use super::summary::Summary;
use crate::cli::{RunArgs, RunFlags};
use crate::context::{Context, OnSignal};
use crate::failure::{exit, Failure, Kind};
use crate::output::{self, Format};
use crate::runtime::Runtime;
use crate::script::bindings::exit::MESSAGE_KEY;
use crate::script::convert::{into_doc, Mode, EXIT_CODE_KEY, STOP_KEY};
use crate::script::diagnostics::{Diagnostic, Sources};
use crate::script::host::{Host, Program};
use crate::script::{self, PrintTo};
use crate::settings::Settings;
use rhai::{Dynamic, EvalAltResult, Map, Scope};
use std::io::IsTerminal;
use std::sync::Arc;

/// A script to run: its display name (used in error positions) and text.
pub fn load_script(spec: &str) -> Result<(String, String), Failure> {
    let path = std::path::Path::new(spec);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("cannot read script {spec}: {e}")))?;
        return Ok((spec.to_string(), text));
    }
    if let Some(text) = crate::catalog::script(spec) {
        let name = spec.strip_suffix(".rhai").unwrap_or(spec);
        return Ok((format!("scripts/{name}.rhai"), text.to_string()));
    }
    Err(Failure::usage(format!(
        "no script file {:?} and no bundled workflow of that name (see `mdops scripts`)",
        output::escape(spec)
    )))
}

/// How a script run ended, before the exit code is decided. Plain data: no
/// script value leaves the script's thread (dropping a deeply nested one
/// recurses, and only that thread has the stack for it).
enum Ending {
    /// The result, ready to print (or why it cannot be shown).
    Value(Result<output::Doc, String>),
    Failed(Diagnostic),
    /// `exit(code[, message])`, or the pool stopping the run (401/403).
    Exit(i32, Option<String>),
    /// The runtime stopped it (`--max-writes`).
    Stopped(String),
    /// Ctrl-C or SIGTERM.
    Interrupted(Diagnostic),
}

pub fn run(settings: Settings, args: RunArgs) -> Result<i32, Failure> {
    let (name, text) = load_script(&args.script)?;
    run_text(settings, &args.script, args.flags, name, text, true)
}

/// `mdops eval EXPR`: the expression (or a few statements) as a script named
/// `<eval>`, with the flags, globals, output and exit codes of `run`. It
/// takes no lock: it is not a workflow that cron could start twice.
pub fn eval(settings: Settings, expr: String, flags: RunFlags) -> Result<i32, Failure> {
    if expr.trim().is_empty() {
        return Err(Failure::usage(
            "nothing to evaluate: give an expression, e.g. mdops eval 'accounts::list()'",
        ));
    }
    run_text(settings, "<eval>", flags, "<eval>".to_string(), expr, false)
}

fn run_text(
    settings: Settings,
    spec: &str,
    args: RunFlags,
    name: String,
    text: String,
    lock: bool,
) -> Result<i32, Failure> {
    let sources = Arc::new(Sources::default());
    sources.add(&name, &text);
    let json = args.output == Format::Json;
    // Declared parameters are checked before anything is locked, opened or sent.
    let declared = script::params::extract(&text, &name).map_err(|d| fail(&d, &sources))?;
    let params = match &declared {
        Some(p) => Some(p.bind(&args.args).map_err(|problems| {
            let body = problems.join("\n  ");
            let help = format!("`mdops doc {spec}` lists its parameters");
            let mut f = Failure::rendered(
                Kind::Usage,
                format!("error: invalid arguments for {name}:\n  {body}\n  = help: {help}\n"),
            );
            f.plain = Some(format!(
                "invalid arguments for {name}: {}",
                problems.join("; ")
            ));
            f
        })?),
        None => None,
    };
    // A dry run changes nothing and a sandbox run shares nothing: neither needs the lock.
    let lock = lock && !args.dry_run && !settings.sandbox;
    let lock_key = {
        let bundled = name.starts_with("scripts/") && !std::path::Path::new(spec).is_file();
        if settings.state_url.is_some() && !bundled {
            // Runners on other machines hold the script at other paths: on a
            // shared server, a script is known by its name and content.
            crate::lock::key_for_content(spec, &text)
        } else {
            crate::lock::key_for(spec, bundled)
        }
    };
    // With shared state the lock is the database's (taken below, once connected).
    let _lock = if !lock || settings.state_url.is_some() {
        None
    } else {
        let key = &lock_key;
        match crate::lock::acquire(&settings.data_dir, key, &name) {
            Ok(lock) => Some(lock),
            Err(crate::lock::LockError::Held { path, holder }) => {
                return Err(Failure::new(
                    Kind::Locked,
                    format!(
                        "another run of {name} is in progress ({holder}); its lock is {}",
                        path.display()
                    ),
                ))
            }
            Err(crate::lock::LockError::Io(e)) => return Err(Failure::usage(e)),
        }
    };
    let started = std::time::Instant::now();
    let data_dir = settings.data_dir.clone();
    let profile = settings.profile.clone();
    let mut ctx = Context::new(settings, OnSignal::Run)?;
    if let Some(store) = ctx.connect_state()? {
        if lock {
            if let Err(holder) = store.lock_script(&lock_key, &name)? {
                return Err(Failure::new(
                    Kind::Locked,
                    format!(
                        "another run of {name} is in progress ({holder}); its lock is in the state database {}",
                        store.place
                    ),
                ));
            }
        }
    }
    let mut options = ctx.options();
    options.args = args.args.iter().cloned().collect();
    options.dry_run = args.dry_run;
    options.yes = args.yes;
    options.interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    options.output = args.output;
    let quiet = options.quiet;
    let rt = ctx.runtime(options, &name);
    if let Some(values) = params {
        rt.set_params(values);
    }
    let host = Host::new(rt.clone());
    let print_to = if json {
        PrintTo::Stderr
    } else {
        PrintTo::Stdout
    };
    let engine = script::engine(Some(host.clone()), sources.clone(), print_to);
    let ast = script::compile(&engine, &name, &text, &sources)
        .and_then(|ast| script::lint::check(&engine, &ast, &name).map(|_| ast))
        .map_err(|d| fail(&d, &sources))?;
    let mut functions = ast.clone_functions_only();
    functions.set_source(name.as_str());
    host.set_program(Program {
        ast: Arc::new(functions),
        imports: script::top_level_imports(&ast),
        sources: sources.clone(),
        print_to,
        engines: Default::default(),
    });
    let has_state = !ctx.is_sandbox()
        && (ctx.settings.state_url.is_some()
            || crate::store::db_path(&data_dir, profile.as_deref()).exists());
    // A dry run changes nothing, so it leaves dead runs as they are.
    if has_state && !args.dry_run {
        crate::runtime::cleanup::settle_dead_runs(&rt);
    }
    let mode = if args.output == Format::Text {
        Mode::Display
    } else {
        Mode::Raw
    };
    let mut ending = eval_deep(&engine, &ast, &name, &sources, mode);
    if let (Ending::Interrupted(d), Some(kind)) = (&mut ending, ctx.interrupted()) {
        d.message = match kind {
            Kind::Terminated => "terminated (SIGTERM): stopped, then cleaned up".into(),
            _ => "interrupted (Ctrl-C): stopped, then cleaned up".into(),
        };
    }
    let settled = rt.ledger.settle(&rt);
    let mut code = match &ending {
        Ending::Value(_) => success_code(&rt),
        Ending::Failed(d) => d.category.code(),
        Ending::Exit(c, _) => *c,
        Ending::Stopped(_) => exit::PARTIAL,
        Ending::Interrupted(d) => d.category.code(),
    };
    if let Some(kind) = ctx.interrupted() {
        code = kind.code();
    }
    let unsettled = settled.iter().any(|s| s.token_id.is_some() || !s.revoked);
    if unsettled && code == exit::OK {
        code = exit::PARTIAL;
    }
    // What the run printed: the result, then what went wrong, then the summary.
    let mut errors = String::new();
    let mut envelope = output::Envelope {
        dry_run: args.dry_run,
        ..Default::default()
    };
    let mut error_at: Option<(String, usize, usize)> = None;
    let mut error_message: Option<String> = None;
    if json {
        // Taken out, not copied: the result may be ten thousand rows.
        if let Ending::Value(Ok(doc)) = &mut ending {
            let doc = std::mem::replace(doc, output::Doc::Value(serde_json::Value::Null));
            envelope.result = crate::redact::clean_json(doc.into_json());
        }
    }
    match &ending {
        Ending::Value(Ok(doc)) => {
            if !json {
                output::out(&crate::redact::clean_output(&doc.render(rt.options.output)));
            }
        }
        Ending::Value(Err(e)) => {
            code = exit::SCRIPT;
            error_message = Some(format!("cannot show the result: {e}"));
            errors.push_str(&format!("error: cannot show the result: {e}\n"));
        }
        Ending::Failed(d) | Ending::Interrupted(d) => {
            error_message = Some(d.message.clone());
            error_at = location_of(d);
            errors.push_str(&d.render(&sources));
        }
        Ending::Exit(_, message) => {
            if let Some(m) = message {
                error_message = Some(m.clone());
                errors.push_str(&format!("error: {}\n", output::escape(m)));
            }
        }
        // The summary line says why; what was done before is worth a list.
        Ending::Stopped(why) => {
            error_message = Some(why.clone());
            let done = rt.writes_done();
            if !done.is_empty() {
                errors.push_str("writes made before the stop (see `mdops audit`):\n");
                for w in done {
                    errors.push_str(&format!("  {w}\n"));
                }
            }
        }
    }
    let failed = code != exit::OK;
    if !quiet || failed {
        for w in rt.take_warnings() {
            eprintln!("{w}");
        }
    }
    for s in &settled {
        errors.push_str(&format!(
            "warning: {} was minted in this run but never delivered, revealed or released: {}\n",
            s.what(),
            s.outcome
        ));
    }
    eprint!("{errors}");
    let counts = Summary::of(&rt, started, &settled);
    if !quiet || failed {
        counts.print(&name, stopped(&ending, ctx.interrupted()));
    }
    if json {
        envelope.ok = !failed;
        envelope.plan = rt.take_plan();
        envelope.summary = counts.to_json(stopped(&ending, ctx.interrupted()));
        if failed {
            let message = error_message.unwrap_or_else(|| counts.failure_text());
            envelope.error = output::error_value(
                &crate::redact::clean(&message),
                code,
                crate::failure::kind_name(code),
                error_at.as_ref().map(|(f, l, c)| (f.as_str(), *l, *c)),
            );
        }
        output::out(&envelope.render());
    }
    Ok(code)
}

/// The code of a script that ran to its end: what it asked for, or 4 when
/// items of `parallel()` failed (6 when all of them failed because the API
/// could not be reached and none succeeded).
fn success_code(rt: &Runtime) -> i32 {
    use std::sync::atomic::Ordering;
    if let Some(c) = rt.exit_code() {
        return c;
    }
    let ok = rt.stats.items_ok.load(Ordering::Relaxed);
    let failed = rt.stats.items_failed.load(Ordering::Relaxed);
    let unavailable = rt.stats.items_unavailable.load(Ordering::Relaxed);
    if failed == 0 {
        exit::OK
    } else if ok == 0 && unavailable == failed {
        exit::UNAVAILABLE
    } else {
        exit::PARTIAL
    }
}

/// Runs the script on a thread with room for deep recursion (Rhai recurses
/// over deeply nested values when it prints, clones or drops them), and turns
/// how it ended into plain data there.
fn eval_deep(
    engine: &rhai::Engine,
    ast: &rhai::AST,
    name: &str,
    sources: &Sources,
    mode: Mode,
) -> Ending {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("mdops-script".into())
            .stack_size(script::SCRIPT_STACK)
            .spawn_scoped(s, || {
                match engine.eval_ast_with_scope::<Dynamic>(&mut Scope::new(), ast) {
                    Ok(v) => Ending::Value(into_doc(v, mode)),
                    Err(e) => ending_of(*e, engine, ast, name, sources),
                }
            })
            .map_err(|e| e.to_string())
            .and_then(|t| {
                t.join()
                    .map_err(|_| "the script thread panicked".to_string())
            })
            .unwrap_or_else(|e| {
                Ending::Failed(Diagnostic {
                    message: format!("internal error: {e}"),
                    at: None,
                    notes: vec![],
                    help: None,
                    category: Kind::Script,
                })
            })
    })
}

fn ending_of(
    e: EvalAltResult,
    engine: &rhai::Engine,
    ast: &rhai::AST,
    name: &str,
    sources: &Sources,
) -> Ending {
    let innermost = {
        let mut cur = &e;
        while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) = cur
        {
            cur = inner;
        }
        cur
    };
    if let EvalAltResult::ErrorTerminated(v, _) = innermost {
        if let Some(m) = v.read_lock::<Map>() {
            if let Some(code) = m.get(EXIT_CODE_KEY).and_then(|c| c.as_int().ok()) {
                let message = m.get(MESSAGE_KEY).map(|s| s.to_string());
                return Ending::Exit(code as i32, message);
            }
            if let Some(why) = m.get(STOP_KEY) {
                return Ending::Stopped(why.to_string());
            }
        }
    }
    let candidates = script::known_names(engine, Some(ast));
    let d = crate::script::diagnostics::from_eval(&e, name, sources, &candidates);
    if d.category == Kind::Interrupted {
        Ending::Interrupted(d)
    } else {
        Ending::Failed(d)
    }
}

/// Where in the script a diagnostic points: file, line, column.
fn location_of(d: &Diagnostic) -> Option<(String, usize, usize)> {
    d.at.as_ref().filter(|(_, p)| !p.is_none()).map(|(src, p)| {
        (
            src.to_string(),
            p.line().unwrap_or(0),
            p.position().unwrap_or(0),
        )
    })
}

pub fn fail(d: &Diagnostic, sources: &Sources) -> Failure {
    Failure {
        code: d.category.code(),
        message: d.render(sources),
        location: location_of(d),
        plain: Some(d.message.clone()),
    }
}

/// Why the run stopped early, if it did: `--max-writes`, or a signal.
fn stopped(ending: &Ending, signal: Option<Kind>) -> Option<String> {
    match (ending, signal) {
        (Ending::Stopped(why), _) => Some(why.clone()),
        // A signal, wherever it found the run (a command, a sink, an API call).
        (_, Some(Kind::Terminated)) => Some("terminated".into()),
        (_, Some(_)) | (Ending::Interrupted(_), None) => Some("interrupted".into()),
        _ => None,
    }
}
