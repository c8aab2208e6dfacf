//! `ducklings::` — read and size an account's compute.

use crate::api::{rules, ApiError, DucklingConfig};
use crate::script::bindings::host;
use crate::script::convert::RhaiResultOf;
use crate::script::convert::{check, throw, to_json};
use rhai::plugin::*;
use rhai::{Dynamic, Map, NativeCallContext};

pub fn config_map(c: &DucklingConfig) -> Map {
    crate::script::convert::to_dynamic(c)
        .try_cast::<Map>()
        .unwrap_or_default()
}

fn parse(ctx: &NativeCallContext, m: Map) -> RhaiResultOf<DucklingConfig> {
    rules::parse_config(&to_json(&Dynamic::from_map(m))).map_err(|v| throw(ctx, v.into()))
}

#[export_module]
pub mod api {
    use super::*;

    /// The account's Duckling configuration:
    /// `#{read_write: #{instance_size, cooldown_seconds}, read_scaling: #{instance_size, flock_size, cooldown_seconds}}`.
    #[rhai_fn(return_raw, volatile)]
    pub fn get(ctx: NativeCallContext, username: &str) -> RhaiResultOf<Map> {
        let h = host(&ctx)?;
        Ok(config_map(&check(&ctx, h.get_ducklings(username))?))
    }

    /// Replaces the whole configuration (both `read_write` and `read_scaling` are required)
    /// and returns it as stored. Sizes: pulse, standard, jumbo, mega, giga; `flock_size` 0–64;
    /// `cooldown_seconds` 60–86400 and never with pulse.
    #[rhai_fn(return_raw, volatile)]
    pub fn set(ctx: NativeCallContext, username: &str, config: Map) -> RhaiResultOf<Map> {
        let h = host(&ctx)?;
        let parsed = parse(&ctx, config)?;
        Ok(config_map(&check(
            &ctx,
            h.set_ducklings(username, &parsed, None),
        )?))
    }

    /// Read-merge-write: reads the configuration, applies `patch` (for example
    /// `#{read_scaling: #{flock_size: 2}}`), writes it back only if it changes, and
    /// returns it as stored. Cooldowns the patch does not touch are kept; a part that
    /// becomes pulse drops its cooldown; a key set to `()` is removed.
    #[rhai_fn(return_raw, volatile)]
    pub fn update(ctx: NativeCallContext, username: &str, patch: Map) -> RhaiResultOf<Map> {
        let h = host(&ctx)?;
        let current = check(&ctx, h.get_ducklings(username))?;
        let merged = crate::api::merge_ducklings(&current, &to_json(&Dynamic::from_map(patch)))
            .map_err(|(field, message)| throw(&ctx, ApiError::Validation { field, message }))?;
        let parsed = rules::parse_config(&merged).map_err(|v| throw(&ctx, v.into()))?;
        if parsed == current {
            return Ok(config_map(&current));
        }
        Ok(config_map(&check(
            &ctx,
            h.set_ducklings(username, &parsed, Some(&current)),
        )?))
    }

    /// What changes between two configurations, as text:
    /// `read_scaling.flock_size: 4 → 2`, or `no change`.
    #[rhai_fn(name = "diff", return_raw)]
    pub fn diff_maps(ctx: NativeCallContext, before: Map, after: Map) -> RhaiResultOf<String> {
        let b = parse(&ctx, before)?;
        let a = parse(&ctx, after)?;
        Ok(crate::api::diff_ducklings(&b, &a))
    }
}
