//! Script-visible functions, one file per namespace (and one per group of
//! global helpers). Each is thin: Rhai values in, a call to the run's
//! [`Runtime`](crate::runtime::Runtime), Rhai values out. The rules (dry run,
//! `--max-writes`, journal, audit, no orphan secret) live in the runtime.
//! Each function's doc comment is what `mdops doc` and the REPL's help show.

pub mod accounts;
pub mod args;
pub mod dives;
pub mod ducklings;
pub mod exit;
pub mod files;
pub mod inventory;
pub mod journal;
pub mod pool;
pub mod process;
pub mod secret;
pub mod secrets;
mod targets;
pub mod text;
pub mod time;
pub mod tokens;

use crate::script::host::Host;
use rhai::{Dynamic, EvalAltResult, NativeCallContext};
use std::sync::Arc;

/// The run's host, carried in the engine's default tag.
pub fn host(ctx: &NativeCallContext) -> Result<Arc<Host>, Box<EvalAltResult>> {
    ctx.tag()
        .and_then(|t| t.read_lock::<std::sync::Weak<Host>>()?.upgrade())
        .ok_or_else(|| {
            Box::new(EvalAltResult::ErrorRuntime(
                Dynamic::from("this function needs a run (it cannot be called here)"),
                ctx.call_position(),
            ))
        })
}

/// The namespaces scripts see, with their modules.
pub fn modules() -> Vec<(&'static str, rhai::Module)> {
    vec![
        ("accounts", rhai::exported_module!(accounts::api)),
        ("tokens", rhai::exported_module!(tokens::api)),
        ("ducklings", rhai::exported_module!(ducklings::api)),
        ("dives", rhai::exported_module!(dives::api)),
        ("inventory", rhai::exported_module!(inventory::api)),
        ("secrets", rhai::exported_module!(secrets::api)),
        ("journal", rhai::exported_module!(journal::api)),
    ]
}

/// The global helpers (no namespace), with their modules.
pub fn globals() -> Vec<rhai::Module> {
    vec![
        rhai::exported_module!(secret::api),
        rhai::exported_module!(args::api),
        rhai::exported_module!(time::api),
        rhai::exported_module!(exit::api),
        rhai::exported_module!(process::api),
        rhai::exported_module!(files::api),
        rhai::exported_module!(text::api),
        rhai::exported_module!(pool::api),
    ]
}
