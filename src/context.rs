//! The wiring every command that talks to the API shares, built once from
//! `Settings`: the async runtime, the embedded emulator for `--sandbox`, the
//! client's configuration, the bridge scripts call through, the handling of
//! Ctrl-C and SIGTERM, and the run's [`Runtime`].

use crate::api::{ClientConfig, SecretString};
use crate::failure::{exit, Failure, Kind};
use crate::runtime::{ApiAccess, Bridge, RunOptions, Runtime, StateLocation};
use crate::settings::Settings;
use crate::sim::{Behaviour, Seed, Sim};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub struct Context {
    pub settings: Settings,
    /// Dropped last (see `Drop`): the emulator and requests run on it.
    rt: Option<tokio::runtime::Runtime>,
    /// The sandbox's emulator, alive as long as the context.
    sim: Option<Sim>,
    pub client: ClientConfig,
    pub bridge: Bridge,
    /// Shared state, connected before the first request (see [`Context::connect_state`]).
    store: Option<Arc<crate::store::Store>>,
    signal: Arc<AtomicI32>,
    on_terminate: TerminateHook,
}

/// What an interactive session does when SIGTERM arrives at its prompt (it
/// cannot wait for the next line): clean up, then the process exits 143.
type TerminateHook = Arc<std::sync::Mutex<Option<Box<dyn Fn() + Send + Sync>>>>;

/// What a signal means to the command that receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSignal {
    /// A run: the first Ctrl-C or SIGTERM cancels (the run then cleans up and
    /// ends), a second one exits at once.
    Run,
    /// The REPL: Ctrl-C cancels the evaluation and the session goes on.
    Session,
}

pub fn tokio_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mdops-io")
        .enable_all()
        .build()
        .map_err(|e| Failure::script(format!("cannot start the async runtime: {e}")))
}

impl Context {
    pub fn new(settings: Settings, on_signal: OnSignal) -> Result<Context, Failure> {
        let rt = tokio_runtime()?;
        let (client, sim) = if settings.sandbox {
            let sim = rt
                .block_on(Sim::start(&Seed::demo(), Behaviour::default(), 0))
                .map_err(Failure::usage)?;
            let url = url::Url::parse(&sim.url()).expect("emulator URL parses");
            let token = SecretString::new(sim.admin_token());
            (client_config(&settings, url, token), Some(sim))
        } else {
            let token = settings.require_token().map_err(Failure::usage)?;
            (
                client_config(&settings, settings.api_url.clone(), token),
                None,
            )
        };
        // The bridge's own deadline is a backstop over the client's per-request timeout.
        let bridge = Bridge::new(
            rt.handle().clone(),
            CancellationToken::new(),
            settings
                .timeout
                .saturating_mul(2)
                .saturating_add(std::time::Duration::from_secs(5)),
        );
        let signal = Arc::new(AtomicI32::new(0));
        let on_terminate: TerminateHook = Arc::new(std::sync::Mutex::new(None));
        install_signals(&rt, &bridge, &signal, on_signal, &on_terminate);
        Ok(Context {
            settings,
            rt: Some(rt),
            sim,
            client,
            bridge,
            store: None,
            signal,
            on_terminate,
        })
    }

    /// For a session: what to do (on a thread of its own) when SIGTERM arrives.
    pub fn on_terminate(&self, hook: impl Fn() + Send + Sync + 'static) {
        *self.on_terminate.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(hook));
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.bridge.handle()
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.as_ref().expect("runtime lives").block_on(f)
    }

    /// The signal that interrupted the command, if one did (2 or 15).
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// The failure kind of the signal received, if any.
    pub fn interrupted(&self) -> Option<Kind> {
        self.signal().map(|s| {
            if s == SIGTERM {
                Kind::Terminated
            } else {
                Kind::Interrupted
            }
        })
    }

    /// Where state lives: in memory for the sandbox (whose organization is too).
    pub fn state_location(&self) -> StateLocation {
        if self.settings.sandbox {
            StateLocation::Memory
        } else if let Some(url) = &self.settings.state_url {
            StateLocation::Postgres(url.clone())
        } else {
            StateLocation::Dir {
                dir: self.settings.data_dir.clone(),
                profile: self.settings.profile.clone(),
            }
        }
    }

    /// The options every command derives from the global flags.
    pub fn options(&self) -> RunOptions {
        RunOptions {
            concurrency: self.settings.concurrency,
            max_writes: self.settings.max_writes,
            quiet: self.settings.quiet,
            command_timeout: self.settings.command_timeout,
            ..RunOptions::default()
        }
    }

    /// Connects to state on a PostgreSQL server now, so that a database that
    /// cannot be reached stops the command (exit 2) before any API call.
    /// Nothing to do for local state, which opens on first use.
    pub fn connect_state(&mut self) -> Result<Option<Arc<crate::store::Store>>, Failure> {
        if let StateLocation::Postgres(url) = self.state_location() {
            if self.store.is_none() {
                let store = crate::store::Store::connect(&url).map_err(|e| Failure::usage(e.0))?;
                self.store = Some(Arc::new(store));
            }
        }
        Ok(self.store.clone())
    }

    /// The runtime of one run or session.
    pub fn runtime(&self, options: RunOptions, script: &str) -> Arc<Runtime> {
        let rt = Runtime::new(
            Some(ApiAccess::new(self.client.clone())),
            self.bridge.clone(),
            options,
            self.state_location(),
            self.settings.profile.clone(),
        )
        .with_script(script);
        if let Some(store) = &self.store {
            rt.adopt_store(store.clone());
        }
        Arc::new(rt)
    }

    pub fn is_sandbox(&self) -> bool {
        self.sim.is_some()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        drop(self.sim.take());
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(std::time::Duration::from_millis(200));
        }
    }
}

fn client_config(settings: &Settings, url: url::Url, token: SecretString) -> ClientConfig {
    let mut config = ClientConfig::new(url, token);
    config.timeout = settings.timeout;
    config.retry = settings.retry;
    config.max_rps = settings.max_rps;
    config.max_body = settings.max_body;
    config
}

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// Ctrl-C and SIGTERM cancel what the bridge is running (scripts stop at
/// their next step, requests in flight are dropped, commands are killed with
/// their process group). In a run, a second signal exits at once (after
/// killing running commands). The handlers are installed before this
/// returns, so an early signal cannot kill the process half-way.
fn install_signals(
    rt: &tokio::runtime::Runtime,
    bridge: &Bridge,
    received: &Arc<AtomicI32>,
    mode: OnSignal,
    on_terminate: &TerminateHook,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let installed = rt.block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        });
        let Ok((mut sigint, mut sigterm)) = installed else {
            return;
        };
        let bridge = bridge.clone();
        let received = received.clone();
        let hook = on_terminate.clone();
        rt.spawn(async move {
            let mut count = 0;
            loop {
                let which = tokio::select! {
                    s = sigint.recv() => s.map(|_| SIGINT),
                    s = sigterm.recv() => s.map(|_| SIGTERM),
                };
                let Some(which) = which else { break };
                count += 1;
                if mode == OnSignal::Run && count > 1 {
                    crate::process::kill_all();
                    let code = if which == SIGTERM {
                        exit::TERMINATED
                    } else {
                        exit::INTERRUPTED
                    };
                    std::process::exit(code);
                }
                if mode == OnSignal::Run || which == SIGTERM {
                    let _ = received.compare_exchange(0, which, Ordering::SeqCst, Ordering::SeqCst);
                }
                bridge.cancel();
                if mode == OnSignal::Session && which == SIGTERM {
                    let hook = hook.clone();
                    std::thread::spawn(move || {
                        if let Some(h) = hook.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                            h();
                        }
                        crate::process::kill_all();
                        std::process::exit(exit::TERMINATED);
                    });
                }
            }
        });
    }
    #[cfg(not(unix))]
    {
        let _ = on_terminate;
        let bridge = bridge.clone();
        let received = received.clone();
        rt.spawn(async move {
            let mut count = 0;
            while tokio::signal::ctrl_c().await.is_ok() {
                count += 1;
                if mode == OnSignal::Run && count > 1 {
                    std::process::exit(exit::INTERRUPTED);
                }
                if mode == OnSignal::Run {
                    received.store(SIGINT, Ordering::SeqCst);
                }
                bridge.cancel();
            }
        });
    }
}
