//! `journal::` — what mdops knows of the tokens it minted.

use crate::api::SecretString;
use crate::script::bindings::host;
use crate::script::convert::RhaiResultOf;
use crate::script::convert::{check, to_dynamic};
use rhai::plugin::*;
use rhai::{Array, Dynamic, NativeCallContext};

#[export_module]
pub mod api {
    use super::*;

    /// The journal entry of token `token_id`, or `()` if mdops (with this data dir) did
    /// not mint it: `#{username, token_id, name, token_type, expire_at, minted_at,
    /// delivered_at, verified_at, revealed_at, revoked_at, sink, run_id, in_progress}`
    /// (times are RFC 3339 strings or `()`; `in_progress`: another run that is still
    /// alive minted it).
    #[rhai_fn(return_raw, volatile)]
    pub fn get(ctx: NativeCallContext, token_id: &str) -> RhaiResultOf<Dynamic> {
        let h = host(&ctx)?;
        let entry = check(&ctx, h.journal_get(token_id))?;
        Ok(match entry {
            Some(e) => {
                let mut m = to_dynamic(&e).try_cast::<rhai::Map>().unwrap_or_default();
                m.insert("in_progress".into(), h.in_progress(&e).into());
                m.into()
            }
            None => Dynamic::UNIT,
        })
    }

    /// Records that a token mdops minted passed every check a workflow makes of
    /// it (it authenticates, the workload works with it). Rotation trusts a
    /// verified token as its group's current one, so call this last. Returns whether
    /// the journal knew the token.
    #[rhai_fn(return_raw, volatile)]
    pub fn mark_verified(ctx: NativeCallContext, secret: SecretString) -> RhaiResultOf<bool> {
        let h = host(&ctx)?;
        check(&ctx, h.mark_verified(&secret))
    }

    /// Journal entries of an account's tokens, newest first.
    #[rhai_fn(return_raw, volatile)]
    pub fn list(ctx: NativeCallContext, username: &str) -> RhaiResultOf<Array> {
        let h = host(&ctx)?;
        let entries = check(&ctx, h.journal_list(Some(username)))?;
        Ok(entries.iter().map(to_dynamic).collect())
    }
}
