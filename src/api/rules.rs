//! The Admin API's validation rules, in one place.
//!
//! The client checks them before sending anything (so a bad call fails without a
//! request and names the field), and the emulator enforces the very same rules,
//! so the two can never drift apart.

use super::models::{DucklingConfig, DucklingPart, InstanceSize, NewToken};
use serde_json::Value;

/// A rule that a value broke: which field, and a sentence saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

pub const TTL_MIN: i64 = 300;
pub const TTL_MAX: i64 = 31_536_000;
pub const FLOCK_MAX: i64 = 64;
pub const COOLDOWN_MIN: i64 = 60;
pub const COOLDOWN_MAX: i64 = 86_400;
pub const NAME_MAX: usize = 255;
/// Token names the service keeps for its own clients (exact, case-sensitive).
pub const RESERVED_TOKEN_NAMES: [&str; 2] = ["MotherDuck Extension", "MotherDuck Flights"];

/// Service-account usernames: an ASCII letter, then letters, digits or `_`, 3–255 long.
/// This is the strictest of the documented rules (`^[A-Za-z][A-Za-z0-9_]{2,254}$`).
pub fn username(value: &str) -> Result<(), Violation> {
    let bad = |why: &str| {
        Err(Violation::new(
            "username",
            format!("username {value:?} {why}"),
        ))
    };
    let len = value.chars().count();
    if len < 3 {
        return bad("is too short: it needs 3 to 255 characters");
    }
    if len > NAME_MAX {
        return bad("is too long: it needs 3 to 255 characters");
    }
    if !value.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return bad("must start with a letter (A-Z or a-z)");
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return bad(&format!(
            "contains {c:?}: only letters, digits and _ are allowed"
        ));
    }
    Ok(())
}

/// A username used in a path (any existing user, humans included): at most
/// 255 characters, and a path segment that cannot change the route.
pub fn path_username(value: &str) -> Result<(), Violation> {
    if value.is_empty() {
        return Err(Violation::new("username", "username must not be empty"));
    }
    if let Err(why) = super::transport::check_segment(value) {
        return Err(Violation::new(
            "username",
            format!(
                "username {} cannot be used: {why}",
                crate::output::escape(&format!("{value:?}"))
            ),
        ));
    }
    if value.chars().count() > NAME_MAX {
        return Err(Violation::new(
            "username",
            "username is longer than 255 characters",
        ));
    }
    Ok(())
}

pub fn token_name(value: &str) -> Result<(), Violation> {
    let len = value.chars().count();
    if len == 0 {
        return Err(Violation::new("name", "token name must not be empty"));
    }
    if len > NAME_MAX {
        return Err(Violation::new(
            "name",
            format!("token name is {len} characters long; the maximum is 255"),
        ));
    }
    if RESERVED_TOKEN_NAMES.contains(&value) {
        return Err(Violation::new(
            "name",
            format!("token name {value:?} is reserved by MotherDuck"),
        ));
    }
    Ok(())
}

pub fn ttl(seconds: i64) -> Result<(), Violation> {
    if !(TTL_MIN..=TTL_MAX).contains(&seconds) {
        return Err(Violation::new(
            "ttl",
            format!(
                "ttl is {seconds} seconds; it must be between {TTL_MIN} (5 minutes) and {TTL_MAX} (365 days)"
            ),
        ));
    }
    Ok(())
}

pub fn token_id(value: &str) -> Result<(), Violation> {
    if value.is_empty() {
        return Err(Violation::new("token_id", "token id must not be empty"));
    }
    super::transport::check_segment(value).map_err(|why| {
        Violation::new(
            "token_id",
            format!(
                "token id {} cannot be used: {why}",
                crate::output::escape(&format!("{value:?}"))
            ),
        )
    })
}

pub fn dive_id(value: &str) -> Result<(), Violation> {
    uuid::Uuid::parse_str(value)
        .map(|_| ())
        .map_err(|_| Violation::new("dive_id", format!("dive id {value:?} is not a UUID")))
}

pub fn session_hint(value: &str) -> Result<(), Violation> {
    if value.is_empty() {
        return Err(Violation::new(
            "session_hint",
            "session_hint must not be empty",
        ));
    }
    Ok(())
}

/// The largest JSON encodings the API accepts for an embed session's
/// `required_resources` and `initial_state`.
pub const RESOURCES_MAX_BYTES: usize = 8192;
pub const INITIAL_STATE_MAX_BYTES: usize = 65536;

/// An embed-session request: the username, at most one of `session_hint`
/// and `session_name` (neither empty), a version of at least 1, resources
/// with a URL each and the size limits of the API.
pub fn embed_request(req: &super::EmbedRequest) -> Result<(), Violation> {
    path_username(&req.username)?;
    if let Some(h) = &req.session_hint {
        session_hint(h)?;
    }
    if let Some(n) = &req.session_name {
        if n.is_empty() {
            return Err(Violation::new(
                "session_name",
                "session_name must not be empty",
            ));
        }
        if req.session_hint.is_some() {
            return Err(Violation::new(
                "session_name",
                "give session_name or session_hint (its old name), not both",
            ));
        }
    }
    if let Some(v) = req.version {
        if v < 1 {
            return Err(Violation::new(
                "version",
                format!("version must be 1 or more, not {v}"),
            ));
        }
    }
    if let Some(resources) = &req.required_resources {
        for (i, r) in resources.iter().enumerate() {
            if r.url.is_empty() {
                return Err(Violation::new(
                    format!("required_resources[{i}].url"),
                    "each resource needs a url",
                ));
            }
        }
        let len = serde_json::to_string(resources)
            .map(|t| t.len())
            .unwrap_or(0);
        if len > RESOURCES_MAX_BYTES {
            return Err(Violation::new(
                "required_resources",
                format!("required_resources is {len} bytes as JSON; at most {RESOURCES_MAX_BYTES}"),
            ));
        }
    }
    if let Some(state) = &req.initial_state {
        let len = serde_json::to_string(state).map(|t| t.len()).unwrap_or(0);
        if len > INITIAL_STATE_MAX_BYTES {
            return Err(Violation::new(
                "initial_state",
                format!("initial_state is {len} bytes as JSON; at most {INITIAL_STATE_MAX_BYTES}"),
            ));
        }
    }
    Ok(())
}

/// A short-lived token's context: string keys (not empty) and string values.
pub fn short_lived_context(
    context: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), Violation> {
    for (k, v) in context {
        if k.is_empty() {
            return Err(Violation::new("context", "context keys must not be empty"));
        }
        if !v.is_string() {
            return Err(Violation::new(
                format!("context.{k}"),
                format!("context values are strings; {k} is not"),
            ));
        }
    }
    Ok(())
}

fn part(field: &str, part: &DucklingPart, scaling: bool) -> Result<(), Violation> {
    if let Some(c) = part.cooldown_seconds {
        if part.instance_size == InstanceSize::Pulse {
            return Err(Violation::new(
                format!("{field}.cooldown_seconds"),
                "cooldown_seconds cannot be set for Pulse instances",
            ));
        }
        if !(COOLDOWN_MIN..=COOLDOWN_MAX).contains(&c) {
            return Err(Violation::new(
                format!("{field}.cooldown_seconds"),
                format!(
                    "cooldown_seconds is {c}; it must be between {COOLDOWN_MIN} and {COOLDOWN_MAX}"
                ),
            ));
        }
    }
    match (scaling, part.flock_size) {
        (true, None) => {
            return Err(Violation::new(
                format!("{field}.flock_size"),
                "flock_size is required for read_scaling",
            ))
        }
        (true, Some(f)) if !(0..=FLOCK_MAX).contains(&f) => {
            return Err(Violation::new(
                format!("{field}.flock_size"),
                format!("flock_size is {f}; it must be between 0 and {FLOCK_MAX}"),
            ))
        }
        (false, Some(_)) => {
            return Err(Violation::new(
                format!("{field}.flock_size"),
                "flock_size applies only to read_scaling",
            ))
        }
        _ => {}
    }
    Ok(())
}

/// Both parts are required on PUT; sizes were already checked when parsed.
pub fn duckling_config(config: &DucklingConfig) -> Result<(), Violation> {
    part("read_write", &config.read_write, false)?;
    part("read_scaling", &config.read_scaling, true)
}

/// Everything `POST /v1/users/{username}/tokens` checks.
pub fn new_token(username: &str, new: &NewToken) -> Result<(), Violation> {
    path_username(username)?;
    token_name(&new.name)?;
    if let Some(t) = new.ttl {
        ttl(t)?;
    }
    if let Some(d) = &new.description {
        let len = d.chars().count();
        if !(1..=1000).contains(&len) {
            return Err(Violation::new(
                "description",
                format!("description is {len} characters long; it must be 1 to 1000"),
            ));
        }
    }
    Ok(())
}

fn parse_part(v: Option<&Value>, field: &str, scaling: bool) -> Result<DucklingPart, Violation> {
    let obj = match v {
        Some(Value::Object(o)) => o,
        Some(Value::Null) | None => {
            return Err(Violation::new(field, format!("{field} is required")))
        }
        Some(_) => return Err(Violation::new(field, format!("{field} must be an object"))),
    };
    for key in obj.keys() {
        let known = matches!(key.as_str(), "instance_size" | "cooldown_seconds")
            || (scaling && key == "flock_size");
        if !known {
            let allowed = if scaling {
                "instance_size, flock_size, cooldown_seconds"
            } else {
                "instance_size, cooldown_seconds"
            };
            return Err(Violation::new(
                format!("{field}.{key}"),
                format!("unknown field {key:?} in {field} (allowed: {allowed})"),
            ));
        }
    }
    let size_field = format!("{field}.instance_size");
    let size = match obj.get("instance_size") {
        Some(Value::String(s)) => InstanceSize::parse(s).ok_or_else(|| {
            Violation::new(
                &size_field,
                format!("instance_size {s:?} is not one of {}", InstanceSize::NAMES),
            )
        })?,
        None | Some(Value::Null) => {
            return Err(Violation::new(&size_field, "instance_size is required"))
        }
        Some(_) => {
            return Err(Violation::new(
                &size_field,
                "instance_size must be a string",
            ))
        }
    };
    let int = |key: &str| -> Result<Option<i64>, Violation> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 => Ok(Some(f as i64)),
                _ => Err(Violation::new(
                    format!("{field}.{key}"),
                    format!("{key} must be a whole number"),
                )),
            },
            Some(_) => Err(Violation::new(
                format!("{field}.{key}"),
                format!("{key} must be a number"),
            )),
        }
    };
    Ok(DucklingPart {
        instance_size: size,
        flock_size: if scaling { int("flock_size")? } else { None },
        cooldown_seconds: int("cooldown_seconds")?,
    })
}

/// Reads a Duckling configuration `{read_write, read_scaling}` from JSON, naming
/// the field that is wrong, then checks the value rules.
pub fn parse_config(v: &Value) -> Result<DucklingConfig, Violation> {
    if !v.is_object() {
        return Err(Violation::new(
            "config",
            "a Duckling config must be an object with read_write and read_scaling",
        ));
    }
    let config = DucklingConfig {
        read_write: parse_part(v.get("read_write"), "read_write", false)?,
        read_scaling: parse_part(v.get("read_scaling"), "read_scaling", true)?,
    };
    duckling_config(&config)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(username("analytics_app").is_ok());
        assert!(username("abc").is_ok());
        assert_eq!(
            username("ab").unwrap_err().message,
            "username \"ab\" is too short: it needs 3 to 255 characters"
        );
        assert!(username("1abc").is_err());
        assert_eq!(
            username("my-service").unwrap_err().message,
            "username \"my-service\" contains '-': only letters, digits and _ are allowed"
        );
        assert!(username(&"a".repeat(255)).is_ok());
        assert!(username(&"a".repeat(256)).is_err());
        assert!(username("émile").is_err());
    }

    #[test]
    fn ttls_and_names() {
        assert!(ttl(299).is_err());
        assert!(ttl(300).is_ok());
        assert!(ttl(31_536_000).is_ok());
        assert!(ttl(31_536_001).is_err());
        assert!(token_name("").is_err());
        assert!(token_name("MotherDuck Flights").is_err());
        assert!(token_name("motherduck flights").is_ok());
        assert!(token_name(&"x".repeat(256)).is_err());
    }
}
