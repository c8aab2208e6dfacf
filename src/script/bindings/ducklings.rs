//! `ducklings::` — read and size an account's compute.

use crate::api::{rules, ApiError};
use crate::script::bindings::{host, mutate};
use crate::script::convert::{throw, to_json, RhaiResult};
use rhai::plugin::*;
use rhai::{Dynamic, Map, NativeCallContext};

use crate::api::DucklingConfig;
use serde_json::Value;

/// Applies a patch `#{read_write: #{...}, read_scaling: #{...}}` to a config:
/// keys set in the patch replace, `()` removes, a part that becomes `pulse`
/// loses its cooldown (the API refuses one there), and other cooldowns stay.
pub fn merge(current: &DucklingConfig, patch: &Value) -> Result<Value, (String, String)> {
    let mut out = serde_json::to_value(current).expect("config serializes");
    let patch = patch
        .as_object()
        .ok_or_else(|| ("patch".to_string(), "the patch must be a map".to_string()))?;
    for (part, changes) in patch {
        if part != "read_write" && part != "read_scaling" {
            return Err((
                part.clone(),
                format!("unknown part {part:?} (expected read_write or read_scaling)"),
            ));
        }
        let changes = changes
            .as_object()
            .ok_or_else(|| (part.clone(), format!("{part} in the patch must be a map")))?;
        let target = out[part.as_str()]
            .as_object_mut()
            .expect("part is an object");
        for (k, v) in changes {
            if v.is_null() {
                target.remove(k);
            } else {
                target.insert(k.clone(), v.clone());
            }
        }
        if target.get("instance_size").and_then(Value::as_str) == Some("pulse") {
            target.remove("cooldown_seconds");
        }
    }
    Ok(out)
}

pub fn config_map(c: &DucklingConfig) -> Map {
    crate::script::convert::to_dynamic(c)
        .try_cast::<Map>()
        .unwrap_or_default()
}

/// `read_write.instance_size: standard → jumbo; ...`, or `no change`.
pub fn diff(before: &DucklingConfig, after: &DucklingConfig) -> String {
    let b = serde_json::to_value(before).expect("serializes");
    let a = serde_json::to_value(after).expect("serializes");
    let mut changes = Vec::new();
    for part in ["read_write", "read_scaling"] {
        for key in ["instance_size", "flock_size", "cooldown_seconds"] {
            let show = |v: &Value| match v.get(part).and_then(|p| p.get(key)) {
                None | Some(Value::Null) => "-".to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            let (x, y) = (show(&b), show(&a));
            if x != y {
                changes.push(format!("{part}.{key}: {x} → {y}"));
            }
        }
    }
    if changes.is_empty() {
        "no change".into()
    } else {
        changes.join("; ")
    }
}

#[export_module]
pub mod api {
    use super::*;

    /// The account's Duckling configuration:
    /// `#{read_write: #{instance_size, cooldown_seconds}, read_scaling: #{instance_size, flock_size, cooldown_seconds}}`.
    #[rhai_fn(return_raw, volatile)]
    pub fn get(ctx: NativeCallContext, username: &str) -> RhaiResult<Map> {
        let h = host(&ctx)?;
        let config = h
            .call(|c| async move { c.get_ducklings(username).await })
            .map_err(|e| throw(&ctx, e))?;
        Ok(config_map(&config))
    }

    /// Replaces the whole configuration (both `read_write` and `read_scaling` are required)
    /// and returns it as stored. Sizes: pulse, standard, jumbo, mega, giga; `flock_size` 0–64;
    /// `cooldown_seconds` 60–86400 and never with pulse.
    #[rhai_fn(return_raw, volatile)]
    pub fn set(ctx: NativeCallContext, username: &str, config: Map) -> RhaiResult<Map> {
        let json = to_json(&Dynamic::from_map(config));
        let parsed = rules::parse_config(&json).map_err(|v| throw(&ctx, v.into()))?;
        write(&ctx, username, parsed)
    }

    /// Read-merge-write: reads the configuration, applies `patch` (for example
    /// `#{read_scaling: #{flock_size: 2}}`), writes it back and returns it as stored.
    /// Cooldowns the patch does not touch are kept; a part that becomes pulse drops its cooldown;
    /// a key set to `()` is removed.
    #[rhai_fn(return_raw, volatile)]
    pub fn update(ctx: NativeCallContext, username: &str, patch: Map) -> RhaiResult<Map> {
        let h = host(&ctx)?;
        let current = h
            .call(|c| async move { c.get_ducklings(username).await })
            .map_err(|e| throw(&ctx, e))?;
        let merged = merge(&current, &to_json(&Dynamic::from_map(patch)))
            .map_err(|(field, message)| throw(&ctx, ApiError::Validation { field, message }))?;
        let parsed = rules::parse_config(&merged).map_err(|v| throw(&ctx, v.into()))?;
        if parsed == current {
            return Ok(config_map(&current));
        }
        write_after(&ctx, username, Some(&current), parsed)
    }

    /// What changes between two configurations, as text:
    /// `read_scaling.flock_size: 4 → 2`, or `no change`.
    #[rhai_fn(name = "diff", return_raw)]
    pub fn diff_maps(ctx: NativeCallContext, before: Map, after: Map) -> RhaiResult<String> {
        let b = rules::parse_config(&to_json(&Dynamic::from_map(before)))
            .map_err(|v| throw(&ctx, v.into()))?;
        let a = rules::parse_config(&to_json(&Dynamic::from_map(after)))
            .map_err(|v| throw(&ctx, v.into()))?;
        Ok(diff(&b, &a))
    }
}

pub fn write(ctx: &NativeCallContext, username: &str, config: DucklingConfig) -> RhaiResult<Map> {
    write_after(ctx, username, None, config)
}

pub fn write_after(
    ctx: &NativeCallContext,
    username: &str,
    before: Option<&DucklingConfig>,
    config: DucklingConfig,
) -> RhaiResult<Map> {
    let h = host(ctx)?;
    rules::path_username(username).map_err(|v| throw(ctx, v.into()))?;
    if h.options.dry_run {
        let before = match before {
            Some(b) => Some(b.clone()),
            None => h
                .call(|c| async move { c.get_ducklings(username).await })
                .ok(),
        };
        let detail = match before {
            Some(b) => diff(&b, &config),
            None => serde_json::to_string(&config).unwrap_or_default(),
        };
        h.plan("set ducklings", username, Some(detail));
        return Ok(config_map(&config));
    }
    let detail = match before {
        Some(b) => diff(b, &config),
        None => serde_json::to_string(&config).unwrap_or_default(),
    };
    let stored = mutate(ctx, &h, "set ducklings", username, Some(detail), |c| {
        let config = &config;
        async move { c.set_ducklings(username, config).await }
    })?;
    Ok(config_map(&stored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DucklingPart, InstanceSize};
    use serde_json::json;

    fn cfg() -> DucklingConfig {
        DucklingConfig {
            read_write: DucklingPart {
                instance_size: InstanceSize::Jumbo,
                flock_size: None,
                cooldown_seconds: Some(300),
            },
            read_scaling: DucklingPart {
                instance_size: InstanceSize::Standard,
                flock_size: Some(4),
                cooldown_seconds: Some(120),
            },
        }
    }

    #[test]
    fn merge_keeps_cooldowns_and_drops_them_for_pulse() {
        let merged = merge(
            &cfg(),
            &json!({"read_scaling": {"instance_size": "pulse", "flock_size": 1}}),
        )
        .unwrap();
        assert_eq!(
            merged,
            json!({"read_write": {"instance_size": "jumbo", "cooldown_seconds": 300},
                   "read_scaling": {"instance_size": "pulse", "flock_size": 1}})
        );
        let merged = merge(&cfg(), &json!({"read_write": {"instance_size": "mega"}})).unwrap();
        assert_eq!(merged["read_write"]["cooldown_seconds"], json!(300));
        assert!(merge(&cfg(), &json!({"read_wirte": {}})).is_err());
    }

    #[test]
    fn diff_lists_changes() {
        let mut after = cfg();
        after.read_scaling.flock_size = Some(2);
        assert_eq!(diff(&cfg(), &after), "read_scaling.flock_size: 4 → 2");
        assert_eq!(diff(&cfg(), &cfg()), "no change");
    }
}
