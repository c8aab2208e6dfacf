//! Script-visible functions, one file per namespace. Each function's doc
//! comment is what `mdops doc` and the REPL's help show.

pub mod accounts;
pub mod dives;
pub mod ducklings;
pub mod helpers;
pub mod secret;
pub mod tokens;

use crate::script::host::Host;
use rhai::{Dynamic, EvalAltResult, NativeCallContext};
use std::sync::Arc;

/// The run's host, carried in the engine's default tag.
pub fn host(ctx: &NativeCallContext) -> Result<Arc<Host>, Box<EvalAltResult>> {
    ctx.tag()
        .and_then(|t| t.clone().try_cast::<Arc<Host>>())
        .ok_or_else(|| {
            Box::new(EvalAltResult::ErrorRuntime(
                Dynamic::from("internal error: this engine has no host"),
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
    ]
}
