//! Script-visible functions, one file per namespace. Each function's doc
//! comment is what `mdops doc` and the REPL's help show.

pub mod accounts;
pub mod dives;
pub mod ducklings;
pub mod helpers;
pub mod inventory;
pub mod journal;
pub mod secret;
pub mod secrets;
pub mod tokens;

use crate::api::{ApiError, Client};
use crate::script::convert::{script_error, throw};
use crate::script::host::Host;
use crate::store::Store;
use rhai::{Dynamic, EvalAltResult, NativeCallContext};
use std::future::Future;
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

/// The local store, or a thrown `#{kind: "state"}` error.
pub fn state(ctx: &NativeCallContext, h: &Host) -> Result<Arc<Store>, Box<EvalAltResult>> {
    h.store()
        .map_err(|e| script_error(ctx, "state", format!("the local state is unavailable: {e}")))
}

/// A mutating API call: the local state must work first (so that the call can
/// be audited, and a minted secret journaled), then the call, then its audit record.
pub fn mutate<'a, T, F, Fut>(
    ctx: &NativeCallContext,
    h: &'a Host,
    operation: &str,
    target: &str,
    detail: Option<String>,
    f: F,
) -> Result<T, Box<EvalAltResult>>
where
    F: FnOnce(Arc<Client>) -> Fut,
    Fut: Future<Output = Result<T, ApiError>> + 'a,
{
    state(ctx, h)?;
    let result = h.call(f);
    match &result {
        Err(ApiError::Validation { .. }) | Err(ApiError::Cancelled) => {}
        Ok(_) => h.audit(operation, target, Ok(()), detail),
        Err(e) => h.audit(operation, target, Err(e), detail),
    }
    result.map_err(|e| throw(ctx, e))
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
