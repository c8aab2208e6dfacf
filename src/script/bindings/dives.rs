//! `dives::` — embed sessions for Dives.

use crate::api::{EmbedRequest, SecretString};
use crate::script::bindings::{host, mutate};
use crate::script::convert::{throw, RhaiResult};
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
    ) -> RhaiResult<SecretString> {
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
    ) -> RhaiResult<SecretString> {
        session(&ctx, dive_id, username, Some(hint.to_string()))
    }
}

pub fn session(
    ctx: &NativeCallContext,
    dive_id: &str,
    username: &str,
    session_hint: Option<String>,
) -> RhaiResult<SecretString> {
    let h = host(ctx)?;
    let req = EmbedRequest {
        username: username.to_string(),
        session_hint,
    };
    crate::api::rules::dive_id(dive_id)
        .and_then(|_| crate::api::rules::path_username(username))
        .and_then(|_| {
            req.session_hint
                .as_deref()
                .map_or(Ok(()), crate::api::rules::session_hint)
        })
        .map_err(|v| throw(ctx, v.into()))?;
    if h.options.dry_run {
        h.plan(
            "create embed session",
            &format!("dive {dive_id} as {username}"),
            None,
        );
        return Ok(SecretString::new(format!(
            "dry-run-{}",
            uuid::Uuid::new_v4()
        )));
    }
    mutate(
        ctx,
        &h,
        "create embed session",
        username,
        Some(format!("dive {dive_id}")),
        |c| {
            let req = &req;
            async move { c.embed_session(dive_id, req).await }
        },
    )
}
