//! `accounts::` — create, delete and find service accounts.

use crate::runtime::select::Purpose;
use crate::script::bindings::host;
use crate::script::convert::RhaiResultOf;
use crate::script::convert::{check, invalid, to_dynamic};
use crate::script::table::map_of;
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};

#[export_module]
pub mod api {
    use super::*;

    /// Creates a service account and returns `#{username}`; it is added to the inventory.
    /// The username must start with a letter and use only letters, digits and `_` (3–255).
    /// Fails with a 400 if the name is taken (names are case-insensitive).
    #[rhai_fn(return_raw, volatile)]
    pub fn create(ctx: NativeCallContext, username: &str) -> RhaiResultOf<Map> {
        let h = host(&ctx)?;
        let name = check(&ctx, h.create_account(username))?;
        Ok(map_of(&[("username", name.into())]))
    }

    /// Deletes an account and ALL of its data. This cannot be undone.
    /// Needs `--yes`, or a terminal where the operator types the username to confirm;
    /// otherwise it fails and deletes nothing. Returns `#{username}`.
    #[rhai_fn(return_raw, volatile)]
    pub fn delete(ctx: NativeCallContext, username: &str) -> RhaiResultOf<Map> {
        let h = host(&ctx)?;
        let name = check(&ctx, h.delete_account(username))?;
        Ok(map_of(&[("username", name.into())]))
    }

    /// Whether an account with this username exists (case-insensitive).
    #[rhai_fn(return_raw, volatile)]
    pub fn exists(ctx: NativeCallContext, username: &str) -> RhaiResultOf<bool> {
        let h = host(&ctx)?;
        check(&ctx, h.account_exists(username))
    }

    /// Usernames of the organization's service accounts, sorted: the inventory
    /// (`inventory::list()`) and the live service accounts of the server's
    /// user list (`GET /v1/users`). Where the API has no user list, accounts
    /// with running Ducklings instead (which may name people: said so).
    #[rhai_fn(return_raw, volatile)]
    pub fn list(ctx: NativeCallContext) -> RhaiResultOf<Array> {
        let h = host(&ctx)?;
        let names = check(&ctx, h.account_names())?;
        Ok(names.into_iter().map(Dynamic::from).collect())
    }

    /// The accounts a selector names, each once (compared without case), for a
    /// workflow to act on: `"all"` (every known account, as `accounts::list()`,
    /// but those being offboarded (quarantined in the inventory), and where the
    /// API has no user list the inventory's alone, since running Ducklings name
    /// people too), or a comma-separated list of names and glob patterns
    /// (`"etl_pipeline,tenant_*"`, `"tenant_0[0-2]*"`), patterns choosing as
    /// `all` does. A pattern needs a fixed character (write `all` for every
    /// account); one that matches no account is a warning, and a selection
    /// left empty is a usage error (exit 2). Names are kept as given, even
    /// unknown ones.
    #[rhai_fn(return_raw, volatile)]
    pub fn select(ctx: NativeCallContext, spec: &str) -> RhaiResultOf<Array> {
        select_with(ctx, spec, Map::new())
    }

    /// `accounts::select(spec)` with options: `#{read: true}` selects for a
    /// report, among every account there is to see (those being offboarded
    /// too, and where the API has no user list every running Duckling).
    #[rhai_fn(name = "select", return_raw, volatile)]
    pub fn select_with(ctx: NativeCallContext, spec: &str, options: Map) -> RhaiResultOf<Array> {
        let mut purpose = Purpose::Act;
        for (k, v) in options {
            match (k.as_str(), v.as_bool()) {
                ("read", Ok(true)) => purpose = Purpose::Read,
                ("read", Ok(false)) => {}
                ("read", Err(_)) => {
                    return Err(invalid(&ctx, "read", "read must be true or false"))
                }
                (other, _) => {
                    return Err(invalid(
                        &ctx,
                        other,
                        format!("unknown option {other:?} (expected read)"),
                    ))
                }
            }
        }
        let h = host(&ctx)?;
        let names = check(&ctx, h.select_accounts(spec, purpose))?;
        Ok(names.into_iter().map(Dynamic::from).collect())
    }

    /// The service accounts the server knows of, without the inventory:
    /// `#{accounts: [usernames], complete: bool}`. `complete` is false when the
    /// API has no user list (`GET /v1/users`); then only accounts with running
    /// Ducklings are known.
    #[rhai_fn(return_raw, volatile)]
    pub fn on_server(ctx: NativeCallContext) -> RhaiResultOf<Map> {
        let h = host(&ctx)?;
        let s = check(&ctx, h.service_accounts())?;
        Ok(map_of(&[
            (
                "accounts",
                Dynamic::from_array(s.server.into_values().map(Dynamic::from).collect()),
            ),
            ("complete", s.complete.into()),
        ]))
    }

    /// Accounts with running Ducklings: array of `#{username, ducklings: [#{id, type, status}]}`.
    #[rhai_fn(return_raw, volatile)]
    pub fn active(ctx: NativeCallContext) -> RhaiResultOf<Array> {
        let h = host(&ctx)?;
        let accounts = check(&ctx, h.active_accounts())?;
        Ok(accounts.iter().map(to_dynamic).collect())
    }

    /// Every member of the organization from `GET /v1/users` (humans and service
    /// accounts) as maps with the API's fields, or `()` when the API has no user list.
    #[rhai_fn(return_raw, volatile)]
    pub fn users(ctx: NativeCallContext) -> RhaiResultOf<Dynamic> {
        users_where(&ctx, &[])
    }

    /// `users()` filtered by the server: `#{service_accounts: bool, deprovisioned: bool}`
    /// (`#{service_accounts: true, deprovisioned: false}`: the live service accounts).
    #[rhai_fn(name = "users", return_raw, volatile)]
    pub fn users_filtered(ctx: NativeCallContext, filters: Map) -> RhaiResultOf<Dynamic> {
        let mut query = Vec::new();
        for (k, v) in &filters {
            let param = match k.as_str() {
                "service_accounts" => "is_service_account",
                "deprovisioned" => "is_deprovisioned",
                other => {
                    return Err(invalid(
                        &ctx,
                        "filters",
                        format!(
                            "unknown filter {other:?} (they are service_accounts, deprovisioned)"
                        ),
                    ))
                }
            };
            let on = v
                .as_bool()
                .map_err(|_| invalid(&ctx, "filters", format!("{k} must be true or false")))?;
            query.push((param, on));
        }
        users_where(&ctx, &query)
    }
}

fn users_where(ctx: &NativeCallContext, filters: &[(&'static str, bool)]) -> RhaiResultOf<Dynamic> {
    let h = host(ctx)?;
    Ok(match check(ctx, h.users(filters))? {
        Some(u) => Dynamic::from_array(u.iter().map(to_dynamic).collect()),
        None => Dynamic::UNIT,
    })
}
