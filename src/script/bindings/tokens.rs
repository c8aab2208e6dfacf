//! `tokens::` — list, mint, revoke and verify access tokens.

use crate::api::{CreatedToken, NewToken, SecretString, Token, TokenType};
use crate::script::bindings::host;
use crate::script::convert::RhaiResultOf;
use crate::script::convert::{check, invalid, seconds_of};
use chrono::{DateTime, Utc};
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};

/// Token metadata as a map, with derived `expired`, `expires_in` and `age`.
pub fn token_map(t: &Token, now: DateTime<Utc>) -> Map {
    let mut m: Map = crate::script::convert::to_dynamic(t)
        .try_cast::<Map>()
        .unwrap_or_default();
    let parse = |s: &Option<String>| {
        s.as_deref()
            .filter(|s| !s.is_empty())
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
    };
    let expires = parse(&t.expire_at);
    let created = parse(&Some(t.created_ts.clone()));
    let expires_in = expires.map(|e| (e - now).num_seconds());
    m.insert("expired".into(), expires_in.is_some_and(|s| s <= 0).into());
    m.insert(
        "expires_in".into(),
        expires_in.map(Dynamic::from).unwrap_or(Dynamic::UNIT),
    );
    m.insert(
        "age".into(),
        created
            .map(|c| Dynamic::from((now - c).num_seconds()))
            .unwrap_or(Dynamic::UNIT),
    );
    m
}

pub fn created_map(t: &CreatedToken, now: DateTime<Utc>) -> Map {
    let mut m = token_map(&t.meta, now);
    m.insert("token".into(), Dynamic::from(t.token.clone()));
    m
}

/// `#{name, ttl, token_type, description}` as a token request.
fn new_token(ctx: &NativeCallContext, options: &Map) -> RhaiResultOf<NewToken> {
    let mut new = NewToken::default();
    for (key, value) in options.iter() {
        match key.as_str() {
            "name" => {
                new.name = value
                    .clone()
                    .into_string()
                    .map_err(|t| invalid(ctx, "name", format!("name must be a string, not {t}")))?
            }
            "ttl" if value.is_unit() => {}
            "ttl" => {
                new.ttl =
                    Some(seconds_of(value).map_err(|e| invalid(ctx, "ttl", format!("ttl: {e}")))?)
            }
            "token_type" if value.is_unit() => {}
            "token_type" => {
                let t = value.clone().into_string().unwrap_or_default();
                new.token_type = Some(TokenType::parse(&t).ok_or_else(|| {
                    invalid(
                        ctx,
                        "token_type",
                        format!("token_type {t:?} is not one of {}", TokenType::NAMES),
                    )
                })?)
            }
            "description" if value.is_unit() => {}
            "description" => {
                new.description = Some(value.clone().into_string().map_err(|t| {
                    invalid(
                        ctx,
                        "description",
                        format!("description must be a string, not {t}"),
                    )
                })?)
            }
            other => {
                return Err(invalid(
                    ctx,
                    other,
                    format!(
                        "unknown option {other:?} (expected name, ttl, token_type, description)"
                    ),
                ))
            }
        }
    }
    if !options.contains_key("name") {
        return Err(invalid(ctx, "name", "the `name` option is required"));
    }
    Ok(new)
}

fn mint(ctx: &NativeCallContext, username: &str, new: NewToken) -> RhaiResultOf<Map> {
    let h = host(ctx)?;
    // Taken before the request, so a fresh token's `expires_in` is its whole ttl.
    let now = Utc::now();
    let created = check(ctx, h.mint_token(username, &new))?;
    Ok(created_map(&created, now))
}

#[export_module]
pub mod api {
    use super::*;
    use crate::runtime::reads::Verification;

    /// Metadata of an account's live tokens (never the secrets): maps with
    /// `id, name, expire_at, created_ts, read_only, token_type` plus derived
    /// `expired` (bool), `expires_in` (seconds, or `()` if it never expires) and `age` (seconds).
    #[rhai_fn(return_raw, volatile)]
    pub fn list(ctx: NativeCallContext, username: &str) -> RhaiResultOf<Array> {
        let h = host(&ctx)?;
        let tokens = check(&ctx, h.list_tokens(username))?;
        let now = Utc::now();
        Ok(tokens
            .iter()
            .map(|t| Dynamic::from_map(token_map(t, now)))
            .collect())
    }

    /// Mints a read/write token named `name` that never expires. Returns the token's
    /// map; its `token` field is a `Secret` (shown redacted; `.reveal()` gives the value).
    /// The API returns the secret only this once: deliver it with a `secrets::` sink,
    /// `reveal()` it, or revoke it before the run ends, or the run revokes it.
    #[rhai_fn(name = "create", return_raw, volatile)]
    pub fn create_named(ctx: NativeCallContext, username: &str, name: &str) -> RhaiResultOf<Map> {
        mint(
            &ctx,
            username,
            NewToken {
                name: name.to_string(),
                ..Default::default()
            },
        )
    }

    /// Mints a token with options `#{name, ttl, token_type, description}`: `ttl` in
    /// seconds or a duration such as `"90d"` (300 s to 365 days; omit for no expiry),
    /// `token_type` `"read_write"` (default) or `"read_scaling"`. Like `create(username, name)`,
    /// the secret must be delivered, revealed or revoked before the run ends.
    #[rhai_fn(name = "create", return_raw, volatile)]
    pub fn create_with(ctx: NativeCallContext, username: &str, options: Map) -> RhaiResultOf<Map> {
        let new = new_token(&ctx, &options)?;
        mint(&ctx, username, new)
    }

    /// Mints a short-lived token (`POST /v1/tokens/short-lived`): one day at most,
    /// read_scaling, for the *caller*. Options `#{username, token, context}`: with
    /// `token` (a `Secret` of the account `username`, such as its own read/write
    /// token) it is minted as that account; without, as the admin token's holder,
    /// whose username `username` must then be. `context` (string keys and values;
    /// keys are lowercased by the API) is readable in secure-view policies with
    /// `session_context(key)`, e.g. `#{tenant: "acme"}`. Returns the token's map with
    /// `token` a `Secret`; like any mint it must be delivered, revealed or revoked
    /// before the run ends.
    #[rhai_fn(return_raw, volatile)]
    pub fn short_lived(ctx: NativeCallContext, options: Map) -> RhaiResultOf<Map> {
        for k in options.keys() {
            if !["username", "token", "context"].contains(&k.as_str()) {
                return Err(invalid(
                    &ctx,
                    k,
                    format!("unknown option {k:?} (they are username, token, context)"),
                ));
            }
        }
        let username = options
            .get("username")
            .filter(|v| !v.is_unit())
            .map(|v| v.to_string())
            .ok_or_else(|| {
                invalid(
                    &ctx,
                    "username",
                    "give the username of the account the token is for: #{username: ...}",
                )
            })?;
        let using: Option<SecretString> = options.get("token").filter(|v| !v.is_unit()).map(|v| {
            v.clone()
                .try_cast::<SecretString>()
                .unwrap_or_else(|| SecretString::new(v.to_string()))
        });
        let context = match options.get("context").filter(|v| !v.is_unit()) {
            None => None,
            Some(v) => match crate::script::convert::to_json_checked(v) {
                Ok(serde_json::Value::Object(m)) => Some(m),
                _ => return Err(invalid(&ctx, "context", "context must be a map of strings")),
            },
        };
        let h = host(&ctx)?;
        let created = check(
            &ctx,
            h.mint_short_lived(&username, using.as_ref(), context.as_ref()),
        )?;
        Ok(created_map(&created, Utc::now()))
    }

    /// Revokes a token by its `id` (not its secret). Revoking a token that is
    /// already gone fails with a 404 (`e.status == 404`).
    #[rhai_fn(return_raw, volatile)]
    pub fn revoke(ctx: NativeCallContext, username: &str, token_id: &str) -> RhaiResultOf<()> {
        let h = host(&ctx)?;
        check(&ctx, h.revoke_token(username, token_id))
    }

    /// Whether `secret` (a `Secret` or a string) authenticates as `username`. It
    /// records nothing: `journal::mark_verified(secret)` does, once every check passed.
    #[rhai_fn(name = "verify", return_raw, volatile)]
    pub fn verify_secret(
        ctx: NativeCallContext,
        username: &str,
        secret: SecretString,
    ) -> RhaiResultOf<bool> {
        let h = host(&ctx)?;
        check(&ctx, h.verify_token(username, &secret))
    }

    /// Whether the token string `secret` authenticates as `username`.
    #[rhai_fn(name = "verify", return_raw, volatile)]
    pub fn verify_string(
        ctx: NativeCallContext,
        username: &str,
        secret: &str,
    ) -> RhaiResultOf<bool> {
        verify_secret(ctx, username, SecretString::new(secret))
    }

    /// Starts checking that `secret` authenticates as `username` and returns at
    /// once; `.wait()` on what it returns gives what `tokens::verify` would. A
    /// workflow checks a new token while it delivers it:
    /// `let auth = tokens::start_verify(account, n.token);` ... deliver ...
    /// `if !auth.wait() { ... }`. A check never waited for is cancelled when
    /// the last variable holding it goes.
    #[rhai_fn(name = "start_verify", return_raw, volatile)]
    pub fn start_verify_secret(
        ctx: NativeCallContext,
        username: &str,
        secret: SecretString,
    ) -> RhaiResultOf<Verification> {
        let h = host(&ctx)?;
        check(&ctx, h.start_verify(username, &secret))
    }

    /// `start_verify` for the token string `secret`.
    #[rhai_fn(name = "start_verify", return_raw, volatile)]
    pub fn start_verify_string(
        ctx: NativeCallContext,
        username: &str,
        secret: &str,
    ) -> RhaiResultOf<Verification> {
        start_verify_secret(ctx, username, SecretString::new(secret))
    }

    /// Whether the token a `tokens::start_verify` checks authenticates, waiting
    /// for the server's answer if it has not come yet. The same answer each time.
    #[rhai_fn(global, return_raw, volatile)]
    pub fn wait(ctx: NativeCallContext, pending: &mut Verification) -> RhaiResultOf<bool> {
        let h = host(&ctx)?;
        check(&ctx, pending.wait(&h))
    }
}
