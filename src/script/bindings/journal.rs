//! `journal::` — what mdops knows of the tokens it minted.

use rhai::plugin::*;

use crate::script::bindings::{host, state};
use crate::script::convert::{script_error, to_dynamic, RhaiResult};
use rhai::Dynamic;

#[export_module]
pub mod api {
    use super::*;
    use rhai::{Array, NativeCallContext};

    /// The journal entry of token `token_id`, or `()` if mdops did not mint it:
    /// `#{username, token_id, name, token_type, expire_at, minted_at, delivered_at,
    /// verified_at, revoked_at, sink}` (times are RFC 3339 strings or `()`).
    #[rhai_fn(return_raw, volatile)]
    pub fn get(ctx: NativeCallContext, token_id: &str) -> RhaiResult<Dynamic> {
        let h = host(&ctx)?;
        let store = state(&ctx, &h)?;
        let entry = store
            .journal_get(token_id)
            .map_err(|e| script_error(&ctx, "state", e.0))?;
        Ok(entry.map(|e| to_dynamic(&e)).unwrap_or(Dynamic::UNIT))
    }

    /// Journal entries of an account's tokens, newest first.
    #[rhai_fn(return_raw, volatile)]
    pub fn list(ctx: NativeCallContext, username: &str) -> RhaiResult<Array> {
        let h = host(&ctx)?;
        let store = state(&ctx, &h)?;
        let entries = store
            .journal_list(Some(username))
            .map_err(|e| script_error(&ctx, "state", e.0))?;
        Ok(entries.iter().map(to_dynamic).collect())
    }
}
