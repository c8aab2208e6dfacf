//! Duckling configurations as operators change them: a patch merged into the
//! current configuration (the API only replaces whole), and a readable diff.

use super::DucklingConfig;
use serde_json::Value;

/// Applies a patch `{read_write: {...}, read_scaling: {...}}` to a config:
/// keys set in the patch replace, `null` removes, a part that becomes `pulse`
/// loses its cooldown (the API refuses one there), and other cooldowns stay.
/// An error names the offending part: `(field, message)`.
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
