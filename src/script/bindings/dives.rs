//! `dives::` — embed sessions for Dives.

use crate::api::{EmbedRequest, SecretString};
use crate::script::bindings::host;
use crate::script::convert::check;
use crate::script::convert::RhaiResultOf;
use rhai::plugin::*;
use rhai::NativeCallContext;

#[export_module]
pub mod api {
    use super::*;

    /// Creates an embed session for Dive `dive_id` (a UUID) that runs as service
    /// account `username`. Returns a `Secret`: the session carries a read-only token
    /// valid for 24 hours, so hand it to the browser and never log it.
    #[rhai_fn(return_raw, volatile)]
    pub fn embed_session(
        ctx: NativeCallContext,
        dive_id: &str,
        username: &str,
    ) -> RhaiResultOf<SecretString> {
        session(&ctx, dive_id, username, None)
    }

    /// Like `embed_session(dive_id, username)`, reusing one read-scaling session
    /// across embed requests that share `hint`.
    #[rhai_fn(name = "embed_session", return_raw, volatile)]
    pub fn embed_session_hint(
        ctx: NativeCallContext,
        dive_id: &str,
        username: &str,
        hint: &str,
    ) -> RhaiResultOf<SecretString> {
        session(&ctx, dive_id, username, Some(hint.to_string()))
    }
}

fn session(
    ctx: &NativeCallContext,
    dive_id: &str,
    username: &str,
    session_hint: Option<String>,
) -> RhaiResultOf<SecretString> {
    let h = host(ctx)?;
    let req = EmbedRequest {
        username: username.to_string(),
        session_hint,
    };
    check(ctx, h.embed_session(dive_id, &req))
}
