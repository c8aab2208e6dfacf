//! Command-line definitions only; meaning is given in `settings` and the
//! commands. Knows nothing of the runtime: its one dependency is the output
//! format, a plain value type.

pub use crate::output::Format as OutputFormat;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "mdops",
    version,
    about = "Automate MotherDuck service-account administration with Rhai scripts",
    after_help = "The admin token is read from --token-file, MOTHERDUCK_ADMIN_TOKEN, MOTHERDUCK_TOKEN, \
motherduck_token or the profile, never from the command line.\n\
Exit codes: 0 ok, 1 script error, 2 usage or configuration, 3 refused by the API (401/403), \
4 partial failure (or --max-writes reached), 5 locked, 6 API unreachable or failing, \
130 interrupted (Ctrl-C), 143 terminated (SIGTERM)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone, Default)]
pub struct Global {
    /// Admin API base URL [env: MOTHERDUCK_API_BASE_URL] [default: https://api.motherduck.com]
    #[arg(long, global = true, value_name = "URL")]
    pub api_url: Option<String>,
    /// File holding the admin token (first line)
    #[arg(long, global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Profile from config.toml [env: MDOPS_PROFILE]
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Run against a built-in emulator seeded with a demo organization
    #[arg(long, global = true)]
    pub sandbox: bool,
    /// Where mdops keeps its state and config.toml [env: MDOPS_HOME]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep state on a PostgreSQL server shared by runners: postgres://USER@HOST:PORT/DB?sslmode=...
    /// (the password from PGPASSWORD or ~/.pgpass, not the command line) [env: MDOPS_STATE_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub state: Option<String>,
    /// Seconds to wait for one API request (1 to 3600)
    #[arg(long, global = true, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
    /// Retries of a failed request (429, 502-504, connection errors; POST only when safe)
    #[arg(long, global = true, value_name = "N", default_value_t = 4)]
    pub retries: u32,
    /// Most API requests per second, across all workers of a run
    #[arg(long, global = true, value_name = "N")]
    pub max_rps: Option<f64>,
    /// Workers for parallel(): the default and the most a script may ask for
    #[arg(long, global = true, value_name = "N", default_value_t = 8)]
    pub concurrency: u32,
    /// Stop a run before its N+1-th write (exit 4): a circuit breaker for cron
    #[arg(long, global = true, value_name = "N")]
    pub max_writes: Option<u64>,
    /// Seconds a command (sh, sink and check commands) may run before it is killed (1 to 86400)
    #[arg(long, global = true, value_name = "SECS", default_value_t = 120)]
    pub command_timeout: u64,
    /// Largest API response body accepted, in MB (1 to 1024)
    #[arg(long, global = true, value_name = "MB", default_value_t = 8)]
    pub max_response_mb: u64,
    /// Nothing on stderr unless something fails (no summary, progress or warnings)
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Log API calls to stderr (also MDOPS_LOG=debug)
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// Format of log lines on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a workflow script (a path, or the name of a bundled workflow)
    Run(RunArgs),
    /// Evaluate an expression or a few statements, as `run` runs a script
    Eval(EvalArgs),
    /// Interactive session: explore the organization, try functions, build workflows
    Repl(ReplArgs),
    /// Compile a script without running it; report errors with file:line:col
    Check {
        /// Script path or bundled workflow name
        script: String,
    },
    /// List the bundled workflows; show one, or copy it to start your own
    Scripts {
        #[command(subcommand)]
        action: Option<ScriptsCmd>,
    },
    /// Reference of the script-visible functions (or one function, namespace, module or workflow)
    Doc {
        /// `tokens`, `tokens::create`, `arg`, a module (`rotation`), a workflow or a script path
        name: Option<String>,
        /// Write Rhai definition files (*.d.rhai) and a Rhai.toml into DIR, for editors
        #[arg(long, value_name = "DIR", conflicts_with = "name")]
        definitions: Option<PathBuf>,
    },
    /// Serve the local MotherDuck API emulator on 127.0.0.1
    Sim(SimArgs),
    /// The inventory of service accounts kept in the data dir
    Inventory {
        #[command(subcommand)]
        action: InventoryCmd,
    },
    /// The audit log of mutating API calls
    Audit(AuditArgs),
    /// Profile, API URL, where the token comes from, where state lives; and a live check
    Whoami {
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Shell completion script on stdout (bash, zsh, fish, powershell, elvish)
    Completions { shell: clap_complete::Shell },
    /// The manual page (roff) on stdout: `mdops man | man -l -`
    Man,
    /// Where state lives: copy it between the data directory and a PostgreSQL server
    State {
        #[command(subcommand)]
        action: StateCmd,
    },
    /// The journal of tokens mdops minted: delivered, verified, revoked
    Journal {
        #[command(subcommand)]
        action: Option<JournalCmd>,
        /// Only this account
        #[arg(long)]
        account: Option<String>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
}

impl Command {
    /// The output format the command was asked for, and whether it is a dry
    /// run: a failure is reported in that format too.
    pub fn output(&self) -> (OutputFormat, bool) {
        match self {
            Command::Run(a) => (a.flags.output, a.flags.dry_run),
            Command::Eval(e) => (e.flags.output, e.flags.dry_run),
            Command::Whoami { output } => (*output, false),
            Command::Inventory {
                action: InventoryCmd::List { output } | InventoryCmd::Reconcile { output, .. },
            } => (*output, false),
            Command::Audit(a) => (a.output, false),
            Command::State {
                action: StateCmd::Migrate { output, .. },
            } => (*output, false),
            Command::Journal { action, output, .. } => (
                *output,
                matches!(action, Some(JournalCmd::Resolve { dry_run: true, .. })),
            ),
            _ => (OutputFormat::Text, false),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ScriptsCmd {
    /// Print a bundled workflow's (or module's) source
    Show { name: String },
    /// Copy a bundled workflow into DIR (default: the current directory) to edit
    Eject { name: String, dir: Option<PathBuf> },
}

#[derive(Debug, Subcommand)]
pub enum StateCmd {
    /// Copy this state (the data directory's, or --state's) into another; run it again and nothing changes
    Migrate {
        /// `postgres://USER@HOST:PORT/DB` (password from PGPASSWORD or ~/.pgpass), or `local` for the data directory
        #[arg(long, value_name = "URL")]
        to: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
}

#[derive(Debug, Subcommand)]
pub enum JournalCmd {
    /// Revoke what runs that died (SIGKILL, a crash) minted and never delivered
    Resolve {
        /// Show what would be revoked, change nothing
        #[arg(long)]
        dry_run: bool,
        /// Settle here runs recorded with another API URL or admin token too:
        /// only when they are this organization (a renamed proxy, a rotated
        /// admin token)
        #[arg(long)]
        same_org: bool,
    },
}

#[derive(Debug, Clone, Args)]
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

#[derive(Debug, Subcommand)]
pub enum InventoryCmd {
    /// List the inventory
    List {
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Add an account (or update its metadata)
    Add {
        username: String,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        purpose: Option<String>,
        /// Tag (repeatable)
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// Remove an account from the inventory (the account itself is untouched)
    Remove { username: String },
    /// Import entries from a JSON array or a CSV file (username,owner,purpose,tags)
    Import { file: std::path::PathBuf },
    /// Print the inventory as a JSON array or CSV, the shapes `import` reads back
    Export {
        #[arg(long = "output", alias = "format", value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
    },
    /// Compare the inventory with the server: accounts it lacks, entries whose account is gone
    Reconcile {
        /// Add the server's accounts that the inventory lacks
        #[arg(long)]
        adopt: bool,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this account (and its tokens)
    #[arg(long)]
    pub account: Option<String>,
    /// Only records newer than this: a duration (`7d`) or an RFC 3339 time
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many (the most recent)
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Script path or bundled workflow name
    pub script: String,
    #[command(flatten)]
    pub flags: RunFlags,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Rhai: one expression, or statements; the last expression is the result
    #[arg(value_name = "EXPR")]
    pub expr: String,
    #[command(flatten)]
    pub flags: RunFlags,
}

/// The flags `run` and `eval` share.
#[derive(Debug, Args, Clone, Default)]
pub struct RunFlags {
    /// Script argument, read with arg("KEY") (repeatable)
    #[arg(long = "arg", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub args: Vec<(String, String)>,
    /// Make reads, skip writes: print each write as a plan line
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm destructive steps (account deletion) without asking
    #[arg(long, short)]
    pub yes: bool,
    /// Output format of the result
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Seed file (JSON or TOML) describing the organization; the demo organization if absent
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Delay added to every response, in milliseconds
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub latency_ms: u64,
    /// Up to this many milliseconds more, at random
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub jitter_ms: u64,
    /// Share of requests answered 502/503/504 (0.0 to 1.0)
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub error_rate: f64,
    /// Share of requests answered 429 with Retry-After
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub throttle_rate: f64,
    /// Share of requests handled, then dropped without an answer
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Share of requests handled, then answered only after --hang-secs
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub hang_rate: f64,
    /// How long a hung answer is held
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub hang_secs: u64,
    /// Seconds in a 429's Retry-After
    #[arg(long, value_name = "SECS", default_value_t = 1)]
    pub retry_after: u64,
    /// Seed for the fault and jitter dice (same seed, same faults)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub fault_seed: u64,
    /// Inject faults only into matching requests, e.g. "POST /v1/users/*/tokens"
    #[arg(long, value_name = "METHOD PATH")]
    pub fault_scope: Option<String>,
    /// Inject at most this many faults
    #[arg(long, value_name = "N")]
    pub fault_limit: Option<usize>,
    /// Requests per second let through (a token bucket); beyond it, 429 with Retry-After
    #[arg(long, value_name = "RPS")]
    pub rate_limit: Option<f64>,
    /// Emulate the older API without GET /v1/users
    #[arg(long)]
    pub no_users_endpoint: bool,
    /// Write the admin token the emulator accepts to this file (mode 0600) instead of printing it
    #[arg(long, value_name = "PATH")]
    pub token_out: Option<PathBuf>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}
