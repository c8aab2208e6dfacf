//! The commands. Each returns an exit code or a `Failure`; the mapping to
//! process exit codes lives here and only here.

use crate::api::{ClientConfig, SecretString};
use crate::cli::{Cli, Command, RunArgs, SimArgs};
use crate::script::diagnostics::{Category, Diagnostic, Sources};
use crate::script::host::{ApiAccess, Bridge, Host, OutputFormat, RunOptions, StateLocation};
use crate::script::{self, PrintTo};
use crate::settings::{self, Settings};
use crate::sim::{Behaviour, Seed, Sim};
use rhai::{Dynamic, EvalAltResult, Scope};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub mod exit {
    pub const OK: i32 = 0;
    pub const SCRIPT: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const AUTH: i32 = 3;
    pub const PARTIAL: i32 = 4;
    pub const LOCKED: i32 = 5;
    pub const INTERRUPTED: i32 = 130;
}

/// A failure already worded for the user, with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: exit::USAGE,
            message: format!("error: {}\n", message.into()),
        }
    }
}

pub fn out(text: &str) {
    // A closed pipe (`mdops ... | head`) is not an error worth a panic.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

pub fn run(cli: Cli) -> Result<i32, Failure> {
    init_logging(cli.global.verbose, cli.global.log_format);
    let env = |k: &str| std::env::var(k).ok();
    let settings = || settings::resolve(&cli.global, &env).map_err(Failure::usage);
    match cli.command {
        Command::Run(args) => run_script(&settings()?, args),
        Command::Repl(args) => crate::repl::run(&settings()?, args),
        Command::Check { script } => check(&script),
        Command::Scripts => {
            list_scripts();
            Ok(exit::OK)
        }
        Command::Doc { name } => doc(name.as_deref()),
        Command::Sim(args) => sim(args),
        Command::Inventory { action } => crate::state_cmds::inventory(&settings()?, action),
        Command::Audit(args) => crate::state_cmds::audit(&settings()?, args),
        Command::Journal { account, output } => {
            crate::state_cmds::journal(&settings()?, account, output)
        }
    }
}

/// Logs go to stderr: warnings (retries) by default, API calls with `-v`, one
/// JSON object per line with `--log-format json`.
fn init_logging(verbose: bool, format: crate::cli::LogFormat) {
    let filter = std::env::var("MDOPS_LOG")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            if verbose {
                "mdops=debug".into()
            } else if format == crate::cli::LogFormat::Json {
                "mdops=info".into()
            } else {
                "mdops=warn".into()
            }
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match format {
        crate::cli::LogFormat::Json => builder.json().try_init(),
        crate::cli::LogFormat::Text => builder.with_target(false).try_init(),
    };
}

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
        "no script file {spec:?} and no bundled workflow of that name (see `mdops scripts`)"
    )))
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mdops-io")
        .enable_all()
        .build()
        .map_err(|e| Failure {
            code: exit::SCRIPT,
            message: format!("error: cannot start the async runtime: {e}\n"),
        })
}

/// Ctrl-C cancels what the bridge is running (scripts stop at their next step,
/// requests in flight are dropped). In a run, a second Ctrl-C exits at once; in
/// the REPL (`exit_on_second` false) every Ctrl-C only cancels the evaluation.
/// The handler is installed before this returns, so an early Ctrl-C cannot kill
/// the process half-way.
pub fn cancel_on_ctrl_c(rt: &tokio::runtime::Runtime, bridge: &Bridge, exit_on_second: bool) {
    let bridge = bridge.clone();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let installed = rt.block_on(async { signal(SignalKind::interrupt()) });
        if let Ok(mut sigint) = installed {
            rt.spawn(async move {
                let mut count = 0;
                while sigint.recv().await.is_some() {
                    count += 1;
                    if exit_on_second && count > 1 {
                        std::process::exit(exit::INTERRUPTED);
                    }
                    bridge.cancel();
                }
            });
        }
    }
    #[cfg(not(unix))]
    rt.spawn(async move {
        let mut count = 0;
        while tokio::signal::ctrl_c().await.is_ok() {
            count += 1;
            if exit_on_second && count > 1 {
                std::process::exit(exit::INTERRUPTED);
            }
            bridge.cancel();
        }
    });
}

fn client_config(settings: &Settings, url: url::Url, token: SecretString) -> ClientConfig {
    let mut config = ClientConfig::new(url, token);
    config.timeout = settings.timeout;
    config.retry = settings.retry;
    config.max_rps = settings.max_rps;
    config
}

/// The API a run talks to: the embedded sandbox, or the configured one.
pub fn api_for(
    settings: &Settings,
    rt: &tokio::runtime::Runtime,
) -> Result<(ApiAccess, Option<Sim>), Failure> {
    if settings.sandbox {
        let sim = rt
            .block_on(Sim::start(&Seed::demo(), Behaviour::default(), 0))
            .map_err(Failure::usage)?;
        let url = url::Url::parse(&sim.url()).expect("emulator URL parses");
        let config = client_config(settings, url, SecretString::new(sim.admin_token()));
        return Ok((ApiAccess::new(config), Some(sim)));
    }
    let token = settings.require_token().map_err(Failure::usage)?;
    let config = client_config(settings, settings.api_url.clone(), token);
    Ok((ApiAccess::new(config), None))
}

/// The bridge's own deadline is a backstop over the client's per-request timeout.
pub fn bridge_for(settings: &Settings, rt: &tokio::runtime::Runtime) -> Bridge {
    Bridge::new(
        rt.handle().clone(),
        CancellationToken::new(),
        settings.timeout * 2 + std::time::Duration::from_secs(5),
    )
}

/// The host of a run or REPL session: the API, the bridge, the options, and
/// the local state (in memory for the sandbox, whose organization is too).
pub fn host_for(
    settings: &Settings,
    api: ApiAccess,
    bridge: Bridge,
    options: RunOptions,
) -> Arc<Host> {
    let location = if settings.sandbox {
        StateLocation::Memory
    } else {
        StateLocation::Dir {
            dir: settings.data_dir.clone(),
            profile: settings.profile.clone(),
        }
    };
    Arc::new(Host::new(Some(api), bridge, options).with_state(location, settings.profile.clone()))
}

fn run_script(settings: &Settings, args: RunArgs) -> Result<i32, Failure> {
    let (name, text) = load_script(&args.script)?;
    // A dry run changes nothing and a sandbox run shares nothing: neither needs the lock.
    let _lock = if args.dry_run || settings.sandbox {
        None
    } else {
        let bundled = name.starts_with("scripts/") && !std::path::Path::new(&args.script).is_file();
        let key = crate::lock::key_for(&args.script, bundled);
        match crate::lock::acquire(&settings.data_dir, &key, &name) {
            Ok(lock) => Some(lock),
            Err(crate::lock::LockError::Held { path, holder }) => {
                return Err(Failure {
                    code: exit::LOCKED,
                    message: format!(
                        "error: another run of {name} is in progress ({holder}); its lock is {}
",
                        path.display()
                    ),
                })
            }
            Err(crate::lock::LockError::Io(e)) => return Err(Failure::usage(e)),
        }
    };
    let started = std::time::Instant::now();
    let rt = runtime()?;
    let (api, _sim) = api_for(settings, &rt)?;
    let bridge = bridge_for(settings, &rt);
    cancel_on_ctrl_c(&rt, &bridge, true);
    let options = RunOptions {
        args: args.args.into_iter().collect(),
        dry_run: args.dry_run,
        yes: args.yes,
        interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        output: args.output,
        concurrency: settings.concurrency,
    };
    let json = options.output == OutputFormat::Json;
    let host = host_for(settings, api, bridge, options);
    let sources = Arc::new(Sources::default());
    let print_to = if json {
        PrintTo::Stderr
    } else {
        PrintTo::Stdout
    };
    let engine = script::engine(Some(host.clone()), sources.clone(), print_to);
    let ast = match script::compile(&engine, &name, &text, &sources)
        .and_then(|ast| script::lint::check(&engine, &ast, &name).map(|_| ast))
    {
        Ok(ast) => ast,
        Err(d) => return Err(fail(&d, &sources, json)),
    };
    let mut functions = ast.clone_functions_only();
    functions.set_source(name.as_str());
    host.set_program(crate::script::host::Program {
        ast: Arc::new(functions),
        imports: script::top_level_imports(&ast),
        sources: sources.clone(),
        print_to,
    });
    let result = engine.eval_ast_with_scope::<Dynamic>(&mut Scope::new(), &ast);
    summary(&host, &name, started);
    let plan = host.take_plan();
    let (value, code) = match result {
        Ok(v) => (v, host.exit_code.load(std::sync::atomic::Ordering::Relaxed)),
        Err(e) => match *e {
            EvalAltResult::ErrorTerminated(ref v, _) if exit_code(v).is_some() => {
                (Dynamic::UNIT, exit_code(v).unwrap_or(exit::OK))
            }
            other => {
                let candidates = script::known_names(&engine, Some(&ast));
                let d = crate::script::diagnostics::from_eval(&other, &name, &sources, &candidates);
                return Err(fail(&d, &sources, json));
            }
        },
    };
    if json {
        let result = script::convert::to_json(&value);
        let doc = if args.dry_run {
            serde_json::json!({"dry_run": true, "plan": plan, "result": result})
        } else {
            result
        };
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).expect("JSON serializes")
        ));
    } else if args.output == OutputFormat::Csv {
        out(&script::table::render_csv(&value));
    } else {
        out(&script::table::render_text(&value));
    }
    Ok(code)
}

/// The code a script asked for with `exit(code)`.
fn exit_code(v: &Dynamic) -> Option<i32> {
    let m = v.read_lock::<rhai::Map>()?;
    m.get(script::bindings::helpers::EXIT_CODE_KEY)?
        .as_int()
        .ok()
        .map(|c| c as i32)
}

/// After bulk work (`parallel()`), one line on stderr: items, requests,
/// retries, time. A structured event with `--log-format json`.
fn summary(host: &Host, name: &str, started: std::time::Instant) {
    use std::sync::atomic::Ordering;
    let ok = host.items_ok.load(Ordering::Relaxed);
    let failed = host.items_failed.load(Ordering::Relaxed);
    if ok + failed == 0 {
        return;
    }
    let (requests, retries) = host.api_stats();
    let secs = started.elapsed().as_secs_f64();
    if tracing::enabled!(tracing::Level::INFO) {
        tracing::info!(
            script = name,
            items_ok = ok,
            items_failed = failed,
            requests,
            retries,
            seconds = secs,
            "run finished"
        );
    } else {
        eprintln!("{name}: {ok} items ok, {failed} failed; {requests} requests, {retries} retries; {secs:.1}s");
    }
}

fn fail(d: &Diagnostic, sources: &Sources, json: bool) -> Failure {
    let code = match d.category {
        Category::Script => exit::SCRIPT,
        Category::Auth => exit::AUTH,
        Category::Interrupted => exit::INTERRUPTED,
    };
    if json {
        let location = d.at.as_ref().filter(|(_, p)| !p.is_none()).map(
            |(src, p)| serde_json::json!({"file": src, "line": p.line(), "column": p.position()}),
        );
        let doc = serde_json::json!({"error": {"message": d.message, "location": location, "exit_code": code}});
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).expect("JSON serializes")
        ));
    }
    Failure {
        code,
        message: d.render(sources),
    }
}

fn check(spec: &str) -> Result<i32, Failure> {
    let (name, text) = load_script(spec)?;
    let sources = Arc::new(Sources::default());
    let engine = script::engine(None, sources.clone(), PrintTo::Stderr);
    let ast =
        script::compile(&engine, &name, &text, &sources).map_err(|d| fail(&d, &sources, false))?;
    script::lint::check(&engine, &ast, &name).map_err(|d| fail(&d, &sources, false))?;
    out(&format!("{name}: ok\n"));
    Ok(exit::OK)
}

fn list_scripts() {
    let width = crate::catalog::SCRIPTS
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for (name, body) in crate::catalog::SCRIPTS {
        text.push_str(&format!(
            "{name:<width$}  {}\n",
            crate::catalog::summary(body)
        ));
    }
    out(&text);
}

fn doc(name: Option<&str>) -> Result<i32, Failure> {
    let sources = Arc::new(Sources::default());
    let engine = script::engine(None, sources, PrintTo::Stderr);
    let all = script::docs::functions(&engine);
    let render = |f: &script::docs::FnDoc| {
        let body: String = f.doc.lines().map(|l| format!("    {l}\n")).collect();
        format!("{}\n{body}\n", f.signature)
    };
    let Some(name) = name else {
        out(&all.iter().map(render).collect::<String>());
        return Ok(exit::OK);
    };
    let name = name.trim_end_matches("::");
    let matches: Vec<&script::docs::FnDoc> = all
        .iter()
        .filter(|f| f.qualified == name || f.qualified.starts_with(&format!("{name}::")))
        .collect();
    if !matches.is_empty() {
        out(&matches.into_iter().map(render).collect::<String>());
        return Ok(exit::OK);
    }
    if let Some(text) = crate::catalog::script(name) {
        out(&format!("{}\n", crate::catalog::header(text)));
        return Ok(exit::OK);
    }
    if let Some(text) = script::resolver::stdlib(name) {
        out(&format!("{}\n", crate::catalog::header(text)));
        return Ok(exit::OK);
    }
    let names: Vec<String> = all.iter().map(|f| f.qualified.clone()).collect();
    let hint = crate::script::diagnostics::suggest(name, &names)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    Err(Failure::usage(format!(
        "no function, namespace or workflow named {name:?}{hint}"
    )))
}

fn sim(args: SimArgs) -> Result<i32, Failure> {
    let mut seed = match &args.seed {
        Some(path) => Seed::load(path).map_err(Failure::usage)?,
        None => Seed::demo(),
    };
    if args.no_users_endpoint {
        seed.users_endpoint = Some(false);
    }
    for (flag, rate) in [
        ("--error-rate", args.error_rate),
        ("--throttle-rate", args.throttle_rate),
        ("--drop-rate", args.drop_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(Failure::usage(format!(
                "{flag} must be between 0 and 1, not {rate}"
            )));
        }
    }
    if args.error_rate + args.throttle_rate + args.drop_rate > 1.0 {
        return Err(Failure::usage("the fault rates add up to more than 1"));
    }
    let behaviour = Behaviour {
        latency: std::time::Duration::from_millis(args.latency_ms),
        jitter: std::time::Duration::from_millis(args.jitter_ms),
        faults: crate::sim::Faults {
            error_rate: args.error_rate,
            throttle_rate: args.throttle_rate,
            drop_rate: args.drop_rate,
            retry_after: args.retry_after,
            seed: args.fault_seed,
            scope: args.fault_scope.clone(),
            limit: args.fault_limit,
        },
    };
    let rt = runtime()?;
    let sim = rt
        .block_on(Sim::start(&seed, behaviour, args.port))
        .map_err(Failure::usage)?;
    let url = sim.url();
    let token_line = match &args.token_out {
        Some(path) => {
            crate::fsutil::write_private(path, format!("{}\n", sim.admin_token()).as_bytes())
                .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
            format!(
                "export MOTHERDUCK_ADMIN_TOKEN=\"$(cat {})\"",
                path.display()
            )
        }
        // The emulator's own token: it opens nothing but this process.
        None => format!("export MOTHERDUCK_ADMIN_TOKEN={}", sim.admin_token()),
    };
    out(&format!(
        "MotherDuck API emulator listening on {url}\n  export MOTHERDUCK_API_BASE_URL={url}\n  {token_line}\nPress Ctrl-C to stop.\n"
    ));
    rt.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    drop(sim);
    Ok(exit::OK)
}
