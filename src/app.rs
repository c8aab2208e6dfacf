//! The command dispatcher: logging, settings, then the command. Only `main`
//! uses it; exit codes come from `failure`.

use crate::cli::{Cli, Command};
use crate::failure::Failure;
use crate::settings;

pub fn run(cli: Cli) -> Result<i32, Failure> {
    init_logging(cli.global.verbose, cli.global.quiet, cli.global.log_format);
    let env = |k: &str| std::env::var(k).ok();
    let settings = || settings::resolve(&cli.global, &env).map_err(Failure::usage);
    let (format, dry_run) = cli.command.output();
    let done = dispatch(cli.command, settings);
    // Asked for JSON, a failure is a JSON document too (its text still goes to stderr).
    if let (Err(f), crate::output::Format::Json) = (&done, format) {
        crate::output::out(&f.envelope(dry_run).render());
    }
    done
}

fn dispatch(
    command: Command,
    settings: impl Fn() -> Result<settings::Settings, Failure>,
) -> Result<i32, Failure> {
    match command {
        Command::Run(args) => crate::commands::run::run(settings()?, args),
        Command::Eval(e) => crate::commands::run::eval(settings()?, e.expr, e.flags),
        Command::Repl(args) => crate::repl::run(settings()?, args),
        Command::Whoami { output } => crate::commands::whoami::whoami(settings()?, output),
        Command::Completions { shell } => crate::commands::doc::completions(shell),
        Command::Man => crate::commands::doc::man(),
        Command::Check { script } => crate::commands::check::check(&script),
        Command::Scripts { action } => match action {
            None => crate::commands::doc::list_scripts(),
            Some(crate::cli::ScriptsCmd::Show { name }) => crate::commands::doc::show_script(&name),
            Some(crate::cli::ScriptsCmd::Eject { name, dir }) => {
                crate::commands::doc::eject_script(&name, dir.as_deref())
            }
        },
        Command::Doc {
            definitions: Some(dir),
            ..
        } => crate::commands::doc::definitions(&dir),
        Command::Doc { name, .. } => crate::commands::doc::doc(name.as_deref()),
        Command::Sim(args) => crate::commands::sim::sim(args),
        Command::Inventory { action } => crate::commands::state::inventory(&settings()?, action),
        Command::Audit(args) => crate::commands::state::audit(&settings()?, args),
        Command::State {
            action: crate::cli::StateCmd::Migrate { to, output },
        } => crate::commands::state::migrate(&settings()?, &to, output),
        Command::Journal {
            action,
            account,
            output,
        } => crate::commands::state::journal(&settings()?, action, account, output),
    }
}

/// Logs go to stderr: warnings (retries) by default, API calls with `-v`,
/// errors only with `-q`, one JSON object per line with `--log-format json`.
fn init_logging(verbose: bool, quiet: bool, format: crate::cli::LogFormat) {
    let filter = std::env::var("MDOPS_LOG")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            if verbose {
                "mdops=debug".into()
            } else if quiet {
                "mdops=error".into()
            } else if format == crate::cli::LogFormat::Json {
                "mdops=info".into()
            } else {
                "mdops=warn".into()
            }
        });
    // The AWS signer traces whole requests (bodies hold secrets): never shown.
    let filter = format!("{filter},aws_sigv4=off");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match format {
        crate::cli::LogFormat::Json => builder.json().try_init(),
        crate::cli::LogFormat::Text => builder.with_target(false).try_init(),
    };
}
