//! What script functions run against: the API client (built on first use), the
//! bridge from synchronous scripts to the async client, and the run's options.

use crate::api::{ApiError, Client, ClientConfig};
use crate::store::{AuditRecord, Store};
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
    /// Tables (arrays of maps) as CSV; other results as text.
    Csv,
}

/// Runs async API calls to completion from a script thread.
///
/// Scripts are synchronous and run on a thread that is not part of the tokio
/// runtime, so `Handle::block_on` is safe there. Every call races the run's
/// cancellation token (Ctrl-C) and an overall deadline.
#[derive(Clone)]
pub struct Bridge {
    handle: tokio::runtime::Handle,
    /// Swappable so a REPL can cancel one evaluation and go on with a fresh token.
    cancel: Arc<std::sync::RwLock<CancellationToken>>,
    deadline: Duration,
}

impl Bridge {
    pub fn new(
        handle: tokio::runtime::Handle,
        cancel: CancellationToken,
        deadline: Duration,
    ) -> Self {
        Self {
            handle,
            cancel: Arc::new(std::sync::RwLock::new(cancel)),
            deadline,
        }
    }

    fn token(&self) -> CancellationToken {
        self.cancel
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Cancels what is running now: the script stops at its next step and any
    /// request in flight is dropped.
    pub fn cancel(&self) {
        self.token().cancel();
    }

    /// A fresh token for the next evaluation (after a cancelled one).
    pub fn reset(&self) {
        *self.cancel.write().unwrap_or_else(|e| e.into_inner()) = CancellationToken::new();
    }

    pub fn is_cancelled(&self) -> bool {
        self.token().is_cancelled()
    }

    pub fn block_on<T, F>(&self, fut: F) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, ApiError>>,
    {
        let cancel = self.token();
        if cancel.is_cancelled() {
            return Err(ApiError::Cancelled);
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            // Blocking inside the runtime would panic; this is a programming error
            // in the embedding, so report it instead of taking the process down.
            return Err(ApiError::Setup(
                "internal error: a script ran on a runtime thread".into(),
            ));
        }
        let deadline = self.deadline;
        self.handle.block_on(async move {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => Err(ApiError::Cancelled),
                r = tokio::time::timeout(deadline, fut) => r.unwrap_or(Err(ApiError::Timeout {
                    method: String::new(),
                    path: String::from("(request)"),
                    after: deadline,
                })),
            }
        })
    }
}

/// The API a run talks to: its address and token, and the client once built.
pub struct ApiAccess {
    config: ClientConfig,
    client: OnceLock<Result<Arc<Client>, String>>,
}

impl ApiAccess {
    pub fn new(config: ClientConfig) -> Self {
        Self {
            config,
            client: OnceLock::new(),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The client if it was built (an API call was made).
    pub fn built(&self) -> Option<Arc<Client>> {
        self.client.get().and_then(|r| r.as_ref().ok().cloned())
    }

    /// The client, built on first use so that scripts that make no API call
    /// never pay for TLS set-up.
    pub fn client(&self) -> Result<Arc<Client>, ApiError> {
        self.client
            .get_or_init(|| Client::new(self.config.clone()).map(Arc::new))
            .clone()
            .map_err(ApiError::Setup)
    }
}

/// Options of one run, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub args: BTreeMap<String, String>,
    pub dry_run: bool,
    pub yes: bool,
    /// Standard input and error are terminals: prompts are possible.
    pub interactive: bool,
    pub output: OutputFormat,
    /// Workers for `parallel()`: its default, and the most a script may ask for.
    pub concurrency: usize,
}

/// Where the run keeps its state (inventory, journal, audit).
#[derive(Debug, Clone)]
pub enum StateLocation {
    /// `DIR/state.db` (or `DIR/state-PROFILE.db`).
    Dir {
        dir: PathBuf,
        profile: Option<String>,
    },
    /// In memory, gone with the process (the sandbox).
    Memory,
}

/// The store, opened on first use so runs that record nothing never touch disk.
pub struct StateAccess {
    location: StateLocation,
    store: OnceLock<Result<Arc<Store>, String>>,
}

impl StateAccess {
    pub fn new(location: StateLocation) -> Self {
        Self {
            location,
            store: OnceLock::new(),
        }
    }

    pub fn store(&self) -> Result<Arc<Store>, String> {
        self.store
            .get_or_init(|| {
                let opened = match &self.location {
                    StateLocation::Dir { dir, profile } => Store::open(dir, profile.as_deref()),
                    StateLocation::Memory => Store::in_memory(),
                };
                opened.map(Arc::new).map_err(|e| e.0)
            })
            .clone()
    }
}

pub struct Host {
    pub api: Option<ApiAccess>,
    pub bridge: Bridge,
    pub options: RunOptions,
    pub state: StateAccess,
    /// The profile in use, for the audit log.
    pub profile: Option<String>,
    plan: Mutex<Vec<Value>>,
    /// Secrets this session received, so a REPL can keep them out of its history.
    seen: Mutex<Vec<crate::api::SecretString>>,
    /// What worker engines of `parallel()` need: the script and where output goes.
    program: Mutex<Option<Program>>,
    /// Items done by `parallel()`: ok and failed, for the run's summary.
    pub items_ok: std::sync::atomic::AtomicU64,
    pub items_failed: std::sync::atomic::AtomicU64,
    /// The exit code a script asked for with `set_exit_code` (0 when none).
    pub exit_code: std::sync::atomic::AtomicI32,
}

/// The script being run, as worker engines need it: its functions, and the
/// modules it imported at top level (alias, path), which workers import too.
#[derive(Clone)]
pub struct Program {
    pub ast: Arc<rhai::AST>,
    pub imports: Vec<(String, String)>,
    pub sources: Arc<crate::script::diagnostics::Sources>,
    pub print_to: crate::script::PrintTo,
}

impl Host {
    pub fn new(api: Option<ApiAccess>, bridge: Bridge, options: RunOptions) -> Self {
        Self {
            api,
            bridge,
            options,
            state: StateAccess::new(StateLocation::Memory),
            profile: None,
            plan: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            program: Mutex::new(None),
            items_ok: Default::default(),
            items_failed: Default::default(),
            exit_code: Default::default(),
        }
    }

    pub fn with_state(mut self, location: StateLocation, profile: Option<String>) -> Self {
        self.state = StateAccess::new(location);
        self.profile = profile;
        self
    }

    pub fn store(&self) -> Result<Arc<Store>, String> {
        self.state.store()
    }

    /// Records a mutating API call in the audit log. The call already happened,
    /// so a failure to record is reported on stderr rather than undoing it.
    pub fn audit(
        &self,
        operation: &str,
        target: &str,
        result: Result<(), &ApiError>,
        detail: Option<String>,
    ) {
        let record = AuditRecord {
            at: String::new(),
            profile: self.profile.clone(),
            api: self.api.as_ref().map(|a| {
                let u = &a.config().base_url;
                match u.port() {
                    Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
                    None => u.host_str().unwrap_or_default().to_string(),
                }
            }),
            operation: operation.to_string(),
            target: target.to_string(),
            outcome: if result.is_ok() { "ok" } else { "error" }.to_string(),
            status: result.err().and_then(ApiError::status),
            detail,
        };
        if let Err(e) = self.store().and_then(|s| s.audit(&record).map_err(|e| e.0)) {
            self.warn(&format!(
                "could not record `{operation} {target}` in the audit log: {e}"
            ));
        }
    }

    pub fn set_program(&self, program: Program) {
        *self.program.lock().unwrap_or_else(|e| e.into_inner()) = Some(program);
    }

    pub fn program(&self) -> Option<Program> {
        self.program
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Requests and retries so far (zero when no API call was made).
    pub fn api_stats(&self) -> (u64, u64) {
        self.api
            .as_ref()
            .and_then(|a| a.built())
            .map(|c| {
                let (requests, retries, _) = c.stats().snapshot();
                (requests, retries)
            })
            .unwrap_or((0, 0))
    }

    pub fn remember_secret(&self, secret: &crate::api::SecretString) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(secret.clone());
    }

    pub fn seen_secrets(&self) -> Vec<crate::api::SecretString> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn warn(&self, message: &str) {
        eprintln!("warning: {message}");
    }

    /// Runs one API call on the client, from the script thread.
    pub fn call<'a, T, F, Fut>(&'a self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, ApiError>> + 'a,
    {
        let api = self
            .api
            .as_ref()
            .ok_or_else(|| ApiError::Setup("no API is configured for this command".into()))?;
        let client = api.client()?;
        self.bridge.block_on(f(client))
    }

    /// Records (and in text mode prints) a write that a dry run skipped.
    pub fn plan(&self, action: &str, target: &str, detail: Option<String>) {
        let line = match &detail {
            Some(d) => format!("[dry-run] {action} {target}: {d}"),
            None => format!("[dry-run] {action} {target}"),
        };
        if self.options.output != OutputFormat::Json {
            println!("{line}");
        }
        let mut entry = serde_json::json!({"action": action, "target": target});
        if let Some(d) = detail {
            entry["detail"] = Value::String(d);
        }
        self.plan
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry);
    }

    pub fn take_plan(&self) -> Vec<Value> {
        std::mem::take(&mut *self.plan.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
