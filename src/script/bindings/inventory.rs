//! `inventory::` — the service accounts this organization keeps track of.

use crate::script::bindings::host;
use crate::script::convert::RhaiResultOf;
use crate::script::convert::{check, invalid, to_dynamic};
use crate::store::{InventoryEntry, Source};
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};

/// An entry as a script map: its fields, with extra metadata alongside them.
pub fn entry_map(e: &InventoryEntry) -> Map {
    let mut m = Map::new();
    m.insert("username".into(), e.username.clone().into());
    m.insert(
        "owner".into(),
        e.owner.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT),
    );
    m.insert(
        "purpose".into(),
        e.purpose
            .clone()
            .map(Dynamic::from)
            .unwrap_or(Dynamic::UNIT),
    );
    m.insert(
        "tags".into(),
        Dynamic::from_array(e.tags.iter().cloned().map(Dynamic::from).collect()),
    );
    m.insert("source".into(), e.source.as_str().into());
    m.insert("first_seen".into(), e.first_seen.clone().into());
    m.insert("last_seen".into(), e.last_seen.clone().into());
    for (k, v) in &e.extra {
        m.entry(k.as_str().into()).or_insert_with(|| to_dynamic(v));
    }
    m
}

/// Reads `#{owner, purpose, tags, ...}` into an entry; other keys are kept as extra metadata.
fn entry_from(ctx: &NativeCallContext, username: &str, meta: &Map) -> RhaiResultOf<InventoryEntry> {
    let mut e = InventoryEntry::new(username);
    let text = |key: &str, v: &Dynamic| -> RhaiResultOf<Option<String>> {
        if v.is_unit() {
            return Ok(None);
        }
        v.clone()
            .into_string()
            .map(Some)
            .map_err(|t| invalid(ctx, key, format!("{key} must be a string, not {t}")))
    };
    for (k, v) in meta {
        match k.as_str() {
            "owner" => e.owner = text("owner", v)?,
            "purpose" => e.purpose = text("purpose", v)?,
            "tags" => {
                e.tags = if let Some(a) = v.read_lock::<rhai::Array>() {
                    a.iter().map(|t| t.to_string()).collect()
                } else if v.is_string() {
                    v.to_string()
                        .split(',')
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty())
                        .collect()
                } else {
                    return Err(invalid(ctx, "tags", "tags must be an array of strings"));
                }
            }
            "username" | "source" | "first_seen" | "last_seen" => {
                return Err(invalid(
                    ctx,
                    k,
                    format!("{k} is kept by mdops and cannot be set"),
                ))
            }
            other => {
                e.extra
                    .insert(other.to_string(), crate::script::convert::to_json(v));
            }
        }
    }
    Ok(e)
}

#[export_module]
pub mod api {
    use super::*;

    /// Every inventory entry, sorted by username: maps with `username, owner,
    /// purpose, tags, source` (created, added, imported, adopted), `first_seen`,
    /// `last_seen`, and any extra metadata.
    #[rhai_fn(return_raw, volatile)]
    pub fn list(ctx: NativeCallContext) -> RhaiResultOf<Array> {
        let h = host(&ctx)?;
        let entries = check(&ctx, h.inventory_list())?;
        Ok(entries
            .iter()
            .map(|e| Dynamic::from_map(entry_map(e)))
            .collect())
    }

    /// The inventory entry of `username` (case-insensitive), or `()`.
    #[rhai_fn(return_raw, volatile)]
    pub fn get(ctx: NativeCallContext, username: &str) -> RhaiResultOf<Dynamic> {
        let h = host(&ctx)?;
        let entry = check(&ctx, h.inventory_get(username))?;
        Ok(entry
            .map(|e| Dynamic::from_map(entry_map(&e)))
            .unwrap_or(Dynamic::UNIT))
    }

    /// Adds `username` with metadata `#{owner, purpose, tags, ...}`, or updates its
    /// entry: keys given replace, keys not given stay, and an extra key given as
    /// `()` is removed. Returns the entry.
    #[rhai_fn(return_raw, volatile)]
    pub fn add(ctx: NativeCallContext, username: &str, meta: Map) -> RhaiResultOf<Map> {
        let h = host(&ctx)?;
        let mut entry = entry_from(&ctx, username, &meta)?;
        entry.source = Source::Added;
        Ok(entry_map(&check(
            &ctx,
            h.inventory_put(entry, "add to inventory"),
        )?))
    }

    /// Adds `username` to the inventory with no metadata (or refreshes its entry).
    #[rhai_fn(name = "add", return_raw, volatile)]
    pub fn add_bare(ctx: NativeCallContext, username: &str) -> RhaiResultOf<Map> {
        add(ctx, username, Map::new())
    }

    /// Adds an account found on the server to the inventory (source `adopted`).
    #[rhai_fn(return_raw, volatile)]
    pub fn adopt(ctx: NativeCallContext, username: &str) -> RhaiResultOf<Map> {
        let h = host(&ctx)?;
        let mut entry = InventoryEntry::new(username);
        entry.source = Source::Adopted;
        Ok(entry_map(&check(
            &ctx,
            h.inventory_put(entry, "adopt into inventory"),
        )?))
    }

    /// Compares the inventory with the server: rows `#{account, state}` with state `ok`,
    /// `untracked` (on the server, not in the inventory), `adopted`, `gone` (in the
    /// inventory, not on the server) or `removed (gone)`. Options `#{adopt, forget_gone,
    /// accounts}`: `adopt` adds untracked accounts, `forget_gone` removes gone entries,
    /// `accounts` (a list or patterns) limits it. `mdops inventory reconcile` shows the same.
    #[rhai_fn(return_raw, volatile)]
    pub fn reconcile(ctx: NativeCallContext, options: Map) -> RhaiResultOf<Array> {
        let h = host(&ctx)?;
        let flag = |k: &str| -> RhaiResultOf<bool> {
            match options.get(k) {
                None => Ok(false),
                Some(v) if v.is_unit() => Ok(false),
                Some(v) => v
                    .as_bool()
                    .map_err(|_| invalid(&ctx, k, format!("{k} must be true or false"))),
            }
        };
        for k in options.keys() {
            if !["adopt", "forget_gone", "accounts"].contains(&k.as_str()) {
                return Err(invalid(
                    &ctx,
                    k,
                    format!("unknown option {k:?} (expected adopt, forget_gone, accounts)"),
                ));
            }
        }
        let (adopt, forget) = (flag("adopt")?, flag("forget_gone")?);
        // The selection every workflow uses: names and patterns, case-blind,
        // a pattern that matches nothing said out loud.
        let chosen: Option<Vec<String>> = match options.get("accounts").filter(|v| !v.is_unit()) {
            None => None,
            Some(v) if v.to_string().trim().eq_ignore_ascii_case("all") => None,
            Some(v) => Some(check(
                &ctx,
                h.select_accounts(&v.to_string(), crate::runtime::select::Purpose::Read),
            )?),
        };
        let wanted = |name: &str| {
            chosen
                .as_ref()
                .is_none_or(|c| c.iter().any(|n| n.eq_ignore_ascii_case(name)))
        };
        let found = check(&ctx, h.reconcile(adopt, forget, &wanted))?;
        Ok(found
            .rows
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("account".into(), r.account.clone().into());
                m.insert("state".into(), r.state.into());
                Dynamic::from_map(m)
            })
            .collect())
    }

    /// Removes `username` from the inventory (the account itself is untouched).
    /// Returns whether it was there.
    #[rhai_fn(return_raw, volatile)]
    pub fn remove(ctx: NativeCallContext, username: &str) -> RhaiResultOf<bool> {
        let h = host(&ctx)?;
        check(&ctx, h.inventory_remove(username))
    }
}
