//! The runtime of one run or REPL session, independent of Rhai: what the
//! script may do (options), the API and the local state it does it with, and
//! the invariants the product promises, enforced here once for every binding:
//!
//! - every mutating call goes through one pipeline ([`writes`]): cancellation
//!   and `--max-writes` first, then a dry-run plan or the state check, the
//!   call, and its audit record;
//! - a token create is journaled as an attempt before it is sent, and every
//!   secret minted must end delivered, revealed or released, or the run
//!   revokes it ([`ledger`]);
//! - a dry run keeps an overlay of its planned writes so later reads see them
//!   ([`overlay`]).

mod audit;
pub mod bridge;
pub mod cleanup;
pub mod deliver;
pub mod error;
pub mod ledger;
pub mod mint;
pub mod overlay;
pub mod reads;
pub mod reconcile;
pub mod select;
pub mod short_lived;
mod stores;
pub mod writes;

pub use bridge::Bridge;
pub use error::{Error, Stop};

use crate::api::{ApiError, Client, ClientConfig};
use crate::output::Format;
use crate::store::Store;
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

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
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub args: BTreeMap<String, String>,
    pub dry_run: bool,
    pub yes: bool,
    /// Standard input and error are terminals: prompts are possible.
    pub interactive: bool,
    pub output: Format,
    /// Workers for `parallel()`: its default, and the most a script may ask for.
    pub concurrency: usize,
    /// Stop before the write after this many (`--max-writes`).
    pub max_writes: Option<u64>,
    /// Nothing on stderr unless the run fails (`--quiet`).
    pub quiet: bool,
    /// How long a command (`sh`, sink and check commands) may run.
    pub command_timeout: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            args: BTreeMap::new(),
            dry_run: false,
            yes: false,
            interactive: false,
            output: Format::Text,
            concurrency: 8,
            max_writes: None,
            quiet: false,
            command_timeout: crate::process::DEFAULT_TIMEOUT,
        }
    }
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
    /// On a PostgreSQL server shared by runners.
    Postgres(crate::store::StateUrl),
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

    pub fn location(&self) -> &StateLocation {
        &self.location
    }

    /// Uses a store opened beforehand (a run connects before its first request).
    pub fn adopt(&self, store: Arc<Store>) {
        let _ = self.store.set(Ok(store));
    }

    pub fn store(&self) -> Result<Arc<Store>, String> {
        self.store
            .get_or_init(|| {
                let opened = match &self.location {
                    StateLocation::Dir { dir, profile } => Store::open(dir, profile.as_deref()),
                    StateLocation::Memory => Store::in_memory(),
                    StateLocation::Postgres(url) => Store::connect(url),
                };
                opened.map(Arc::new).map_err(|e| e.0)
            })
            .clone()
    }
}

/// Counters of a run, for its summary line and exit code.
#[derive(Debug, Default)]
pub struct RunStats {
    pub items_ok: AtomicU64,
    pub items_failed: AtomicU64,
    /// Failed items whose failure was the API being unreachable or failing.
    pub items_unavailable: AtomicU64,
    /// Mutating API calls admitted (planned ones too, in a dry run).
    pub writes: AtomicU64,
}

impl RunStats {
    pub fn item(&self, ok: bool, unavailable: bool) {
        if ok {
            self.items_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.items_failed.fetch_add(1, Ordering::Relaxed);
            if unavailable {
                self.items_unavailable.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

pub struct Runtime {
    pub options: RunOptions,
    api: Option<ApiAccess>,
    pub bridge: Bridge,
    state: StateAccess,
    /// The profile in use, for the audit log.
    pub profile: Option<String>,
    /// Which script this is, for the journal of runs and lock messages.
    pub script: String,
    pub stats: RunStats,
    plan: Mutex<Vec<Value>>,
    /// The exit code the script asked for with `set_exit_code`.
    exit_code: Mutex<Option<i32>>,
    stop: Mutex<Option<Stop>>,
    warnings: Mutex<Vec<String>>,
    /// Warnings already given, for `warn_once`.
    warned: Mutex<std::collections::HashSet<String>>,
    /// The writes this run made, as `operation target`, in order.
    done: Mutex<Vec<String>>,
    pub ledger: ledger::Ledger,
    overlay: Option<Mutex<overlay::Overlay>>,
    /// Validated values of the script's declared parameters.
    params: Mutex<Option<Value>>,
    /// Secret stores' clients, made on first use.
    stores: stores::Stores,
}

impl Runtime {
    pub fn new(
        api: Option<ApiAccess>,
        bridge: Bridge,
        options: RunOptions,
        state: StateLocation,
        profile: Option<String>,
    ) -> Runtime {
        let overlay = options
            .dry_run
            .then(|| Mutex::new(overlay::Overlay::default()));
        Runtime {
            options,
            api,
            bridge,
            state: StateAccess::new(state),
            profile,
            script: String::new(),
            stats: RunStats::default(),
            plan: Mutex::new(Vec::new()),
            exit_code: Mutex::new(None),
            stop: Mutex::new(None),
            warnings: Mutex::new(Vec::new()),
            warned: Mutex::new(std::collections::HashSet::new()),
            done: Mutex::new(Vec::new()),
            ledger: ledger::Ledger::new(),
            overlay,
            params: Mutex::new(None),
            stores: stores::Stores::default(),
        }
    }

    pub fn with_script(mut self, script: &str) -> Runtime {
        self.script = script.to_string();
        self
    }

    pub fn store(&self) -> Result<Arc<Store>, Error> {
        self.state.store().map_err(Error::state)
    }

    /// Which organization this runtime works on (its API's base URL, the
    /// fingerprint of its admin token in `store`'s journal): kept with the
    /// run, so that only a run on the same one settles what a dead one left.
    pub fn org(&self, store: &Store) -> crate::store::Org {
        crate::store::Org {
            api: self
                .api
                .as_ref()
                .map(|a| crate::api::base_url::identity(&a.config().base_url)),
            admin: self
                .api
                .as_ref()
                .map(|a| store.fingerprint(&a.config().token)),
        }
    }

    pub fn state_location(&self) -> &StateLocation {
        self.state.location()
    }

    /// Uses a store opened beforehand.
    pub fn adopt_store(&self, store: Arc<Store>) {
        self.state.adopt(store)
    }

    pub fn api(&self) -> Option<&ApiAccess> {
        self.api.as_ref()
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

    /// Runs one API call on the client, from the script thread.
    pub fn call<'a, T, F, Fut>(&'a self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, ApiError>> + 'a,
    {
        let client = self.client()?;
        self.bridge.block_on(f(client))
    }

    pub fn client(&self) -> Result<Arc<Client>, ApiError> {
        self.api
            .as_ref()
            .ok_or_else(|| ApiError::Setup("no API is configured for this command".into()))?
            .client()
    }

    /// A warning on stderr, or kept until the end with `--quiet` (shown only
    /// if the run fails).
    pub fn warn(&self, message: &str) {
        let line = format!("warning: {}", crate::output::escape(message));
        if self.options.quiet {
            self.warnings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line);
        } else {
            eprintln!("{line}");
        }
    }

    /// A warning given at most once in a run (about a file, say, not about
    /// each of the forty deliveries to it).
    pub fn warn_once(&self, message: &str) {
        let first = self
            .warned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(message.to_string());
        if first {
            self.warn(message);
        }
    }

    /// Warnings held back by `--quiet`.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Records (and prints) a write that a dry run skipped. Plan lines go to
    /// stdout in text output and to stderr when stdout carries CSV or JSON.
    pub fn plan(&self, action: &str, target: &str, detail: Option<String>) {
        let target_shown = crate::output::escape(target);
        let line = match &detail {
            Some(d) => format!(
                "[dry-run] {action} {target_shown}: {}",
                crate::output::escape(d)
            ),
            None => format!("[dry-run] {action} {target_shown}"),
        };
        match self.options.output {
            Format::Text => println!("{line}"),
            Format::Csv | Format::Json if !self.options.quiet => eprintln!("{line}"),
            _ => {}
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

    /// The writes this run made so far, as `operation target`.
    pub fn writes_done(&self) -> Vec<String> {
        self.done.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn take_plan(&self) -> Vec<Value> {
        std::mem::take(&mut *self.plan.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn set_exit_code(&self, code: i32) {
        *self.exit_code.lock().unwrap_or_else(|e| e.into_inner()) = Some(code);
    }

    pub fn exit_code(&self) -> Option<i32> {
        *self.exit_code.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stop_reason(&self) -> Option<Stop> {
        *self.stop.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_stop(&self, stop: Stop) {
        self.stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(stop);
    }

    pub fn set_params(&self, values: Value) {
        *self.params.lock().unwrap_or_else(|e| e.into_inner()) = Some(values);
    }

    /// The validated values of the script's declared parameters, if it declares any.
    pub fn params(&self) -> Option<Value> {
        self.params
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn overlay(&self) -> Option<std::sync::MutexGuard<'_, overlay::Overlay>> {
        self.overlay
            .as_ref()
            .map(|o| o.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
