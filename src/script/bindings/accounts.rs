//! `accounts::` — create, delete and find service accounts.

use crate::script::bindings::{host, mutate};
use crate::script::convert::{script_error, throw, to_dynamic, RhaiResult};
use crate::script::prompt;
use crate::script::table::map_of;
use crate::store::{InventoryEntry, Source};
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};
use std::collections::BTreeMap;

#[export_module]
pub mod api {
    use super::*;

    /// Creates a service account and returns `#{username}`.
    /// The username must start with a letter and use only letters, digits and `_` (3–255).
    /// Fails with a 400 if the name is taken (names are case-insensitive).
    #[rhai_fn(return_raw, volatile)]
    pub fn create(ctx: NativeCallContext, username: &str) -> RhaiResult<Map> {
        let h = host(&ctx)?;
        crate::api::rules::username(username).map_err(|v| throw(&ctx, v.into()))?;
        if h.options.dry_run {
            h.plan("create account", username, None);
            return Ok(map_of(&[("username", username.into())]));
        }
        let name = mutate(&ctx, &h, "create account", username, None, |c| async move {
            c.create_user(username).await
        })?;
        let mut entry = InventoryEntry::new(&name);
        entry.source = Source::Created;
        if let Err(e) = h
            .store()
            .and_then(|s| s.inventory_upsert(&entry).map_err(|e| e.0))
        {
            h.warn(&format!(
                "account {name} was created but not added to the inventory: {e}"
            ));
        }
        Ok(map_of(&[("username", name.into())]))
    }

    /// Deletes an account and ALL of its data. This cannot be undone.
    /// Needs `--yes`, or a terminal where the operator types the username to confirm;
    /// otherwise it fails and deletes nothing. Returns `#{username}`.
    #[rhai_fn(return_raw, volatile)]
    pub fn delete(ctx: NativeCallContext, username: &str) -> RhaiResult<Map> {
        let h = host(&ctx)?;
        crate::api::rules::path_username(username).map_err(|v| throw(&ctx, v.into()))?;
        if h.options.dry_run {
            h.plan(
                "delete account",
                username,
                Some("irreversible: deletes its data".into()),
            );
            return Ok(map_of(&[("username", username.into())]));
        }
        if !h.options.yes {
            let confirmed = h.options.interactive
                && prompt::type_to_confirm(
                    &format!(
                        "Delete account {username} and all of its data? This cannot be undone."
                    ),
                    username,
                );
            if !confirmed {
                return Err(script_error(
                    &ctx,
                    "confirmation",
                    format!(
                        "deleting account {username} needs confirmation: pass --yes, or run in a terminal and type the username (nothing was deleted)"
                    ),
                ));
            }
        }
        let name = mutate(&ctx, &h, "delete account", username, None, |c| async move {
            c.delete_user(username).await
        })?;
        if let Err(e) = h
            .store()
            .and_then(|s| s.inventory_remove(&name).map_err(|e| e.0))
        {
            h.warn(&format!(
                "account {name} was deleted but is still in the inventory: {e}"
            ));
        }
        Ok(map_of(&[("username", name.into())]))
    }

    /// Whether an account with this username exists (case-insensitive).
    #[rhai_fn(return_raw, volatile)]
    pub fn exists(ctx: NativeCallContext, username: &str) -> RhaiResult<bool> {
        let h = host(&ctx)?;
        match h.call(|c| async move { c.get_ducklings(username).await }) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(throw(&ctx, e)),
        }
    }

    /// Usernames of the organization's service accounts, sorted: the inventory
    /// (`inventory::list()`), the server's user list where the API offers one
    /// (`GET /v1/users`), and accounts with running Ducklings.
    #[rhai_fn(return_raw, volatile)]
    pub fn list(ctx: NativeCallContext) -> RhaiResult<Array> {
        let h = host(&ctx)?;
        let (users, active) = h
            .call(|c| async move {
                // Independent reads: ask both at once.
                let (users, active) = tokio::join!(c.list_users(), c.active_accounts());
                Ok((users?, active?))
            })
            .map_err(|e| throw(&ctx, e))?;
        // Keyed by lower case: the service treats usernames case-insensitively.
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for u in users.unwrap_or_default() {
            if u.is_service_account == Some(true) && u.is_deprovisioned != Some(true) {
                names.entry(u.username.to_lowercase()).or_insert(u.username);
            }
        }
        for a in active {
            names.entry(a.username.to_lowercase()).or_insert(a.username);
        }
        match h.store().and_then(|s| {
            let seen: Vec<String> = names.values().cloned().collect();
            s.inventory_touch(&seen).map_err(|e| e.0)?;
            s.inventory_list().map_err(|e| e.0)
        }) {
            Ok(entries) => {
                for e in entries {
                    names.entry(e.username.to_lowercase()).or_insert(e.username);
                }
            }
            Err(e) => h.warn(&format!(
                "the inventory is unavailable, listing server accounts only: {e}"
            )),
        }
        Ok(names.into_values().map(Dynamic::from).collect())
    }

    /// Accounts with running Ducklings: array of `#{username, ducklings: [#{id, type, status}]}`.
    #[rhai_fn(return_raw, volatile)]
    pub fn active(ctx: NativeCallContext) -> RhaiResult<Array> {
        let h = host(&ctx)?;
        let accounts = h
            .call(|c| async move { c.active_accounts().await })
            .map_err(|e| throw(&ctx, e))?;
        Ok(accounts.iter().map(to_dynamic).collect())
    }

    /// Every member of the organization from `GET /v1/users` (humans and service
    /// accounts) as maps with the API's fields, or `()` when the API has no user list.
    #[rhai_fn(return_raw, volatile)]
    pub fn users(ctx: NativeCallContext) -> RhaiResult<Dynamic> {
        let h = host(&ctx)?;
        let users = h
            .call(|c| async move { c.list_users().await })
            .map_err(|e| throw(&ctx, e))?;
        Ok(match users {
            Some(u) => Dynamic::from_array(u.iter().map(to_dynamic).collect()),
            None => Dynamic::UNIT,
        })
    }
}
