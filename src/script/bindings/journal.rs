//! `journal::` — what mdops knows of the tokens it minted.

use crate::script::bindings::host;
use crate::script::convert::ScriptResult;
use crate::script::convert::{check, to_dynamic};
use rhai::plugin::*;
use rhai::{Array, Dynamic, NativeCallContext};

#[export_module]
pub mod api {
    use super::*;

    /// The journal entry of token `token_id`, or `()` if mdops did not mint it:
    /// `#{username, token_id, name, token_type, expire_at, minted_at, delivered_at,
    /// verified_at, revealed_at, revoked_at, sink, run_id}` (times are RFC 3339 strings or `()`).
    #[rhai_fn(return_raw, volatile)]
    pub fn get(ctx: NativeCallContext, token_id: &str) -> ScriptResult<Dynamic> {
        let h = host(&ctx)?;
        let entry = check(&ctx, h.journal_get(token_id))?;
        Ok(entry.map(|e| to_dynamic(&e)).unwrap_or(Dynamic::UNIT))
    }

    /// Journal entries of an account's tokens, newest first.
    #[rhai_fn(return_raw, volatile)]
    pub fn list(ctx: NativeCallContext, username: &str) -> ScriptResult<Array> {
        let h = host(&ctx)?;
        let entries = check(&ctx, h.journal_list(Some(username)))?;
        Ok(entries.iter().map(to_dynamic).collect())
    }
}
