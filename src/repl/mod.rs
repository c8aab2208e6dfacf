//! `mdops repl`: an interactive session over the same engine and bindings as
//! `mdops run`, with completion, signature hints, multi-line input and a
//! history that never keeps a secret.

mod complete;
mod redact;
mod session;

pub use complete::{complete, hint, Known};
pub use redact::for_history;
pub use session::{is_incomplete, syntax_engine, Reply, Session};

use crate::app::{api_for, bridge_for, cancel_on_ctrl_c, exit, host_for, runtime, Failure};
use crate::script::diagnostics::Sources;
use crate::script::host::{OutputFormat, RunOptions};
use crate::script::{self, PrintTo};
use crate::settings::Settings;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::{DefaultHistory, History};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor, Helper};
use std::borrow::Cow;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, clap::Args)]
pub struct ReplArgs {
    /// Make reads, skip writes (each write is printed as a plan line)
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm destructive steps without asking
    #[arg(long, short)]
    pub yes: bool,
    /// Do not run $MDOPS_HOME/init.rhai at start
    #[arg(long)]
    pub no_init: bool,
}

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
        _: &Context<'_>,
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
    fn hint(&self, line: &str, pos: usize, _: &Context<'_>) -> Option<String> {
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

pub fn run(settings: &Settings, args: ReplArgs) -> Result<i32, Failure> {
    let rt = runtime()?;
    let (api, _sim) = api_for(settings, &rt)?;
    let url = api.config().base_url.to_string();
    let bridge = bridge_for(settings, &rt);
    cancel_on_ctrl_c(&rt, &bridge, false);
    let interactive = std::io::stdin().is_terminal();
    let options = RunOptions {
        dry_run: args.dry_run,
        yes: args.yes,
        interactive: interactive && std::io::stderr().is_terminal(),
        output: OutputFormat::Text,
        concurrency: settings.concurrency,
        ..Default::default()
    };
    let host = host_for(settings, api, bridge, options);
    let sources = Arc::new(Sources::default());
    let engine = script::engine(Some(host.clone()), sources.clone(), PrintTo::Stdout);
    let mut session = Session::new(engine, host, sources);
    let init = settings.data_dir.join("init.rhai");
    let init = (!args.no_init && init.is_file()).then_some(init);
    if interactive {
        let target = if settings.sandbox {
            format!("the sandbox organization at {url}")
        } else {
            url
        };
        let profile = settings
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
        interactive_loop(&mut session, &settings.data_dir)
    } else {
        if let Some(init) = &init {
            emit(session.load(&init.display().to_string()));
        }
        piped(&mut session)
    }
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

fn history_path(data_dir: &Path) -> PathBuf {
    data_dir.join("repl_history")
}

/// Creates the history file with mode 0600 before anything is written to it.
fn prepare_history(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(dir)?;
    }
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
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
    let history = history_path(data_dir);
    let history_ok = match prepare_history(&history) {
        Ok(()) => {
            let _ = editor.load_history(&history);
            true
        }
        Err(e) => {
            eprintln!(
                "warning: history is off: cannot use {}: {e}",
                history.display()
            );
            false
        }
    };
    loop {
        match editor.readline("mdops> ") {
            Ok(line) => {
                if line.trim().is_empty() {
                    continue;
                }
                if history_ok {
                    let stored = for_history(&line, &session.host().seen_secrets());
                    let _ = editor.history_mut().add(&stored);
                    let _ = editor.save_history(&history);
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
