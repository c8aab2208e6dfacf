//! `mdops repl`: an interactive session over the same engine and bindings as
//! `mdops run`, with completion, signature hints, multi-line input and a
//! history that never keeps a secret.

mod complete;
mod history;
mod redact;
mod session;

pub use complete::{complete, hint, Known};
pub use redact::for_history;
pub use session::{is_incomplete, syntax_engine, Reply, Session};

pub use crate::cli::ReplArgs;
use crate::context::{Context, OnSignal};
use crate::failure::{exit, Failure};
use crate::runtime::Runtime;
use crate::script::diagnostics::Sources;
use crate::script::host::Host;
use crate::script::{self, PrintTo};
use crate::settings::Settings;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::{DefaultHistory, History};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Editor, Helper};
use std::borrow::Cow;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The rustyline helper: reads the shared snapshot of what the session knows.
pub struct ReplHelper {
    known: Arc<Mutex<Known>>,
    syntax: rhai::Engine,
    color: bool,
}

impl Completer for ReplHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let (start, words) = complete(&known, line, pos);
        Ok((
            start,
            words
                .into_iter()
                .map(|w| Pair {
                    display: w.clone(),
                    replacement: w,
                })
                .collect(),
        ))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
    fn hint(&self, line: &str, pos: usize, _: &rustyline::Context<'_>) -> Option<String> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        hint(&known, line, pos)
    }
}

impl Highlighter for ReplHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.color {
            Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
        } else {
            Cow::Borrowed(hint)
        }
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        if is_incomplete(&self.syntax, ctx.input()) {
            Ok(ValidationResult::Incomplete)
        } else {
            Ok(ValidationResult::Valid(None))
        }
    }
}

impl Helper for ReplHelper {}

pub fn run(settings: Settings, args: ReplArgs) -> Result<i32, Failure> {
    let mut ctx = Context::new(settings, OnSignal::Session)?;
    ctx.connect_state()?;
    let url = crate::api::base_url::shown(&ctx.client.base_url);
    let interactive = std::io::stdin().is_terminal();
    let mut options = ctx.options();
    options.dry_run = args.dry_run;
    options.yes = args.yes;
    options.interactive = interactive && std::io::stderr().is_terminal();
    let rt = ctx.runtime(options, "repl");
    {
        // SIGTERM at the prompt: the session still revokes what it left undelivered.
        let rt = rt.clone();
        ctx.on_terminate(move || {
            settle(&rt);
        });
    }
    let host = Host::new(rt.clone());
    let sources = Arc::new(Sources::default());
    let engine = script::engine(Some(host.clone()), sources.clone(), PrintTo::Stdout);
    let mut session = Session::new(engine, host, sources);
    let data_dir = ctx.settings.data_dir.clone();
    let init = data_dir.join("init.rhai");
    let init = (!args.no_init && init.is_file()).then_some(init);
    let code = if interactive {
        let target = if ctx.settings.sandbox {
            format!("the sandbox organization at {url}")
        } else {
            url
        };
        let profile = ctx
            .settings
            .profile
            .as_deref()
            .map(|p| format!(" (profile {p})"))
            .unwrap_or_default();
        let dry = if args.dry_run {
            " — dry run: writes are only planned"
        } else {
            ""
        };
        eprintln!(
            "mdops {} — connected to {target}{profile}{dry}\nType :help for help, Tab to complete, Ctrl-D to leave.",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(init) = &init {
            emit(session.load(&init.display().to_string()));
        }
        interactive_loop(&mut session, &data_dir)?
    } else {
        if let Some(init) = &init {
            emit(session.load(&init.display().to_string()));
        }
        piped(&mut session)?
    };
    let unsettled = settle(&rt);
    Ok(if unsettled && code == exit::OK {
        exit::PARTIAL
    } else {
        code
    })
}

/// The end of a session: every token minted in it and neither delivered,
/// revealed nor revoked is revoked now, and reported.
fn settle(rt: &Runtime) -> bool {
    let settled = rt.ledger.settle(rt);
    for s in &settled {
        eprintln!(
            "warning: {} was minted in this session but never delivered, revealed or released: {}",
            s.what(),
            s.outcome
        );
    }
    !settled.is_empty()
}

fn emit(reply: Reply) -> bool {
    if !reply.out.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(reply.out.as_bytes());
        let _ = out.flush();
    }
    if !reply.err.is_empty() {
        eprint!("{}", reply.err);
    }
    reply.err.is_empty()
}

/// Statements from a pipe: the same evaluation, no prompts. Exit 1 if any failed.
fn piped(session: &mut Session) -> Result<i32, Failure> {
    let syntax = syntax_engine();
    let mut buffer = String::new();
    let mut failed = false;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| Failure::usage(format!("cannot read standard input: {e}")))?;
        buffer.push_str(&line);
        buffer.push('\n');
        if is_incomplete(&syntax, &buffer) {
            continue;
        }
        let reply = session.input(&buffer);
        buffer.clear();
        let quit = reply.quit;
        failed |= !emit(reply);
        if quit {
            break;
        }
    }
    if !buffer.trim().is_empty() {
        failed |= !emit(session.input(&buffer));
    }
    Ok(if failed { exit::SCRIPT } else { exit::OK })
}

fn interactive_loop(session: &mut Session, data_dir: &Path) -> Result<i32, Failure> {
    let config = rustyline::Config::builder()
        .auto_add_history(false)
        .history_ignore_space(true)
        .max_history_size(5000)
        .map_err(|e| Failure::usage(e.to_string()))?
        .completion_type(rustyline::CompletionType::List)
        .build();
    let known = Arc::new(Mutex::new(session.known()));
    let helper = ReplHelper {
        known: known.clone(),
        syntax: syntax_engine(),
        color: std::env::var_os("NO_COLOR").is_none(),
    };
    let mut editor: Editor<ReplHelper, DefaultHistory> = Editor::with_config(config)
        .map_err(|e| Failure::usage(format!("cannot start the line editor: {e}")))?;
    editor.set_helper(Some(helper));
    let path = data_dir.join("repl_history");
    let history = match history::History::open(path.clone()) {
        Ok(h) => {
            for entry in h.load() {
                let _ = editor.history_mut().add(&entry);
            }
            Some(h)
        }
        Err(e) => {
            eprintln!(
                "warning: history is off: cannot use {}: {e}",
                path.display()
            );
            None
        }
    };
    loop {
        match editor.readline("mdops> ") {
            Ok(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                if let Some(h) = &history {
                    let stored = for_history(&line);
                    let _ = editor.history_mut().add(&stored);
                    let _ = h.append(&stored);
                }
                let reply = session.input(&line);
                let quit = reply.quit;
                emit(reply);
                *known.lock().unwrap_or_else(|e| e.into_inner()) = session.known();
                if quit {
                    break;
                }
            }
            // Ctrl-C at the prompt clears the line, as in a shell.
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(Failure::usage(format!("cannot read input: {e}"))),
        }
    }
    Ok(exit::OK)
}
