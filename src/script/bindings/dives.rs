//! `dives::` — embed sessions for Dives.

use crate::api::{EmbedRequest, SecretString};
use crate::script::bindings::host;
use crate::script::convert::RhaiResultOf;
use crate::script::convert::{check, invalid};
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
        let req = EmbedRequest {
            username: username.to_string(),
            ..Default::default()
        };
        session(&ctx, dive_id, req)
    }

    /// Like `embed_session(dive_id, username)`, reusing one read-scaling session
    /// across embed requests that share `name` (sent as `session_name`).
    #[rhai_fn(name = "embed_session", return_raw, volatile)]
    pub fn embed_session_named(
        ctx: NativeCallContext,
        dive_id: &str,
        username: &str,
        name: &str,
    ) -> RhaiResultOf<SecretString> {
        let req = EmbedRequest {
            username: username.to_string(),
            session_name: Some(name.to_string()),
            ..Default::default()
        };
        session(&ctx, dive_id, req)
    }

    /// `embed_session(dive_id, username)` with options `#{session_name, version,
    /// required_resources, initial_state}`: reuse a named read-scaling session,
    /// embed a given Dive version (1 or more), replace the Dive's databases and
    /// shares with `[#{url, alias}]` (at most 8 KB as JSON; `[]` for none), and
    /// seed its `useDiveState` keys with a map (at most 64 KB as JSON).
    #[rhai_fn(name = "embed_session", return_raw, volatile)]
    pub fn embed_session_with(
        ctx: NativeCallContext,
        dive_id: &str,
        username: &str,
        options: rhai::Map,
    ) -> RhaiResultOf<SecretString> {
        const KEYS: [&str; 5] = [
            "session_name",
            "session_hint",
            "version",
            "required_resources",
            "initial_state",
        ];
        if let Some(k) = options.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(invalid(
                &ctx,
                "options",
                format!("unknown option {k:?} (they are {})", KEYS.join(", ")),
            ));
        }
        let mut body = crate::script::convert::to_json_checked(&options.into())
            .map_err(|e| invalid(&ctx, "options", e))?;
        body["username"] = serde_json::Value::String(username.to_string());
        let req: EmbedRequest = serde_json::from_value(body)
            .map_err(|e| invalid(&ctx, "options", format!("invalid options: {e}")))?;
        session(&ctx, dive_id, req)
    }
}

fn session(
    ctx: &NativeCallContext,
    dive_id: &str,
    req: EmbedRequest,
) -> RhaiResultOf<SecretString> {
    let h = host(ctx)?;
    check(ctx, h.embed_session(dive_id, &req))
}
