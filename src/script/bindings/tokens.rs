//! `tokens::` — list, mint, revoke and verify access tokens.

use crate::script::bindings::{host, mutate, state};
use crate::script::convert::{invalid, script_error, seconds_of, throw, RhaiResult};
use rhai::plugin::*;
use rhai::{Array, NativeCallContext};

use crate::api::{CreatedToken, NewToken, SecretString, Token, TokenType};
use chrono::{DateTime, Utc};
use rhai::{Dynamic, Map};

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

/// What a dry run returns for a token it did not mint.
fn placeholder(new: &NewToken, now: DateTime<Utc>) -> CreatedToken {
    let ts = |d: DateTime<Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    CreatedToken {
        meta: Token {
            id: format!("dry-run-{}", uuid::Uuid::new_v4()),
            name: Some(new.name.clone()),
            expire_at: new.ttl.map(|s| ts(now + chrono::Duration::seconds(s))),
            created_ts: ts(now),
            read_only: false,
            token_type: new.token_type.unwrap_or_default(),
            extra: Default::default(),
        },
        token: SecretString::new(format!("dry-run-{}", uuid::Uuid::new_v4())),
    }
}

#[export_module]
pub mod api {
    use super::*;

    /// Metadata of an account's live tokens (never the secrets): maps with
    /// `id, name, expire_at, created_ts, read_only, token_type` plus derived
    /// `expired` (bool), `expires_in` (seconds, or `()` if it never expires) and `age` (seconds).
    #[rhai_fn(return_raw, volatile)]
    pub fn list(ctx: NativeCallContext, username: &str) -> RhaiResult<Array> {
        let h = host(&ctx)?;
        let tokens = h
            .call(|c| async move { c.list_tokens(username).await })
            .map_err(|e| throw(&ctx, e))?;
        let now = Utc::now();
        Ok(tokens
            .iter()
            .map(|t| Dynamic::from_map(token_map(t, now)))
            .collect())
    }

    /// Mints a read/write token named `name` that never expires. Returns the token's
    /// map; its `token` field is a `Secret` (shown redacted; `.reveal()` gives the value).
    /// The API returns the secret only this once: deliver it before the script ends.
    #[rhai_fn(name = "create", return_raw, volatile)]
    pub fn create_named(ctx: NativeCallContext, username: &str, name: &str) -> RhaiResult<Map> {
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
    /// `token_type` `"read_write"` (default) or `"read_scaling"`.
    #[rhai_fn(name = "create", return_raw, volatile)]
    pub fn create_with(ctx: NativeCallContext, username: &str, options: Map) -> RhaiResult<Map> {
        let mut new = NewToken::default();
        for (key, value) in options.iter() {
            match key.as_str() {
                "name" => {
                    new.name = value.clone().into_string().map_err(|t| {
                        invalid(&ctx, "name", format!("name must be a string, not {t}"))
                    })?
                }
                "ttl" if value.is_unit() => {}
                "ttl" => {
                    new.ttl = Some(
                        seconds_of(value).map_err(|e| invalid(&ctx, "ttl", format!("ttl: {e}")))?,
                    )
                }
                "token_type" if value.is_unit() => {}
                "token_type" => {
                    let t = value.clone().into_string().unwrap_or_default();
                    new.token_type = Some(TokenType::parse(&t).ok_or_else(|| {
                        invalid(
                            &ctx,
                            "token_type",
                            format!("token_type {t:?} is not one of {}", TokenType::NAMES),
                        )
                    })?)
                }
                "description" if value.is_unit() => {}
                "description" => new.description = Some(value.to_string()),
                other => {
                    return Err(invalid(
                        &ctx,
                        other,
                        format!(
                        "unknown option {other:?} (expected name, ttl, token_type, description)"
                    ),
                    ))
                }
            }
        }
        if !options.contains_key("name") {
            return Err(invalid(&ctx, "name", "the `name` option is required"));
        }
        mint(&ctx, username, new)
    }

    /// Revokes a token by its `id` (not its secret). Revoking a token that is
    /// already gone fails with a 404 (`e.status == 404`).
    #[rhai_fn(return_raw, volatile)]
    pub fn revoke(ctx: NativeCallContext, username: &str, token_id: &str) -> RhaiResult<()> {
        let h = host(&ctx)?;
        crate::api::rules::path_username(username)
            .and_then(|_| crate::api::rules::token_id(token_id))
            .map_err(|v| throw(&ctx, v.into()))?;
        if h.options.dry_run {
            h.plan("revoke token", &format!("{username}/{token_id}"), None);
            return Ok(());
        }
        let target = format!("{username}/{token_id}");
        mutate(&ctx, &h, "revoke token", &target, None, |c| async move {
            c.delete_token(username, token_id).await
        })?;
        if let Err(e) = h
            .store()
            .and_then(|s| s.journal_revoked(token_id).map_err(|e| e.0))
        {
            h.warn(&format!(
                "token {target} was revoked but the journal could not record it: {e}"
            ));
        }
        Ok(())
    }

    /// Whether `secret` (a `Secret` or a string) authenticates as `username`.
    #[rhai_fn(name = "verify", return_raw, volatile)]
    pub fn verify_secret(
        ctx: NativeCallContext,
        username: &str,
        secret: SecretString,
    ) -> RhaiResult<bool> {
        let h = host(&ctx)?;
        if h.options.dry_run && secret.expose().starts_with("dry-run-") {
            return Ok(true);
        }
        let ok = h
            .call(|c| {
                let secret = &secret;
                async move { c.verify_token(username, secret).await }
            })
            .map_err(|e| throw(&ctx, e))?;
        if ok {
            if let Ok(store) = h.store() {
                let _ = store.journal_verified(&store.fingerprint(&secret));
            }
        }
        Ok(ok)
    }

    /// Whether the token string `secret` authenticates as `username`.
    #[rhai_fn(name = "verify", return_raw, volatile)]
    pub fn verify_string(ctx: NativeCallContext, username: &str, secret: &str) -> RhaiResult<bool> {
        verify_secret(ctx, username, SecretString::new(secret))
    }
}

pub fn mint(ctx: &NativeCallContext, username: &str, new: NewToken) -> RhaiResult<Map> {
    let h = host(ctx)?;
    crate::api::rules::new_token(username, &new).map_err(|v| throw(ctx, v.into()))?;
    let now = Utc::now();
    if h.options.dry_run {
        let detail = match new.ttl {
            Some(t) => format!(
                "{} token {:?}, ttl {}",
                new.token_type.unwrap_or_default().as_str(),
                new.name,
                crate::duration::format_seconds(t)
            ),
            None => format!(
                "{} token {:?}, no expiry",
                new.token_type.unwrap_or_default().as_str(),
                new.name
            ),
        };
        h.plan("create token", username, Some(detail));
        return Ok(created_map(&placeholder(&new, now), now));
    }
    let store = state(ctx, &h)?;
    let detail = format!(
        "{} token {:?}, {}",
        new.token_type.unwrap_or_default().as_str(),
        new.name,
        new.ttl
            .map(|t| format!("ttl {}", crate::duration::format_seconds(t)))
            .unwrap_or_else(|| "no expiry".into())
    );
    let result = h.call(|c| {
        let new = &new;
        async move { c.create_token(username, new).await }
    });
    let created = match result {
        Ok(c) => c,
        Err(e) => {
            if !matches!(e, crate::api::ApiError::Cancelled) {
                h.audit("create token", username, Err(&e), Some(detail));
            }
            return Err(throw(ctx, e));
        }
    };
    h.remember_secret(&created.token);
    let id = created.meta.id.clone();
    h.audit(
        "create token",
        &format!("{username}/{id}"),
        Ok(()),
        Some(detail),
    );
    let fingerprint = store.fingerprint(&created.token);
    if let Err(e) = store.journal_minted(username, &created.meta, &fingerprint) {
        // A secret nobody can find again is worse than no token: take it back.
        let undo = h.call(|c| {
            let id = &id;
            async move { c.delete_token(username, id).await }
        });
        h.audit(
            "revoke token",
            &format!("{username}/{id}"),
            undo.as_ref().map(|_| ()),
            Some("not journaled".into()),
        );
        let outcome = match undo {
            Ok(()) => "it was revoked again".to_string(),
            Err(r) => {
                format!("revoking it failed too ({r}): revoke token {id} of {username} by hand")
            }
        };
        return Err(script_error(
            ctx,
            "state",
            format!("token {id} for {username} was minted but the journal could not record it ({}); {outcome}", e.0),
        ));
    }
    Ok(created_map(&created, now))
}
