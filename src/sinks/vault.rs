//! One field of a HashiCorp Vault KV version 2 secret. The secret's other
//! fields are kept: read (data and version), replace the field, write with
//! check-and-set against the version read, read back. Returns the field's
//! previous value, so that putting it back (a new version with the old data)
//! undoes the delivery.
//!
//! Configuration is Vault's own: `VAULT_ADDR`, `VAULT_TOKEN` (or
//! `~/.vault-token`), `VAULT_NAMESPACE`, `VAULT_CACERT`.

use super::http::{path, segment, Http};
use crate::api::SecretString;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

#[derive(Clone)]
pub struct VaultConfig {
    pub addr: url::Url,
    token: SecretString,
    pub namespace: Option<String>,
    pub cacert: Option<PathBuf>,
}

impl std::fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VaultConfig({})", self.addr)
    }
}

/// Where a secret goes in Vault.
#[derive(Debug, Clone, PartialEq)]
pub struct VaultTarget {
    pub mount: String,
    pub path: String,
    pub field: String,
    /// Write with check-and-set against the version read (the default).
    pub cas: bool,
}

impl VaultTarget {
    pub fn check(&self) -> Result<(), String> {
        segment(&self.mount, "vault mount")?;
        path(&self.path, "vault path")?;
        if self.field.is_empty() || self.field.chars().any(char::is_control) {
            return Err(format!(
                "vault field {}: must be non-empty, without control characters",
                crate::output::escape(&self.field)
            ));
        }
        Ok(())
    }

    pub fn label(&self) -> String {
        format!(
            "vault:{}/{}#{}",
            self.mount,
            self.path.trim_matches('/'),
            self.field
        )
    }
}

impl VaultConfig {
    /// From the environment (`env` reads a variable; `home` is `~`).
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<PathBuf>,
    ) -> Result<VaultConfig, String> {
        let nonempty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let raw = nonempty("VAULT_ADDR")
            .ok_or("Vault: VAULT_ADDR is not set (e.g. https://vault.example.com:8200)")?;
        let addr = super::http::base_url(&raw, "Vault", "VAULT_ADDR")?;
        let token = match nonempty("VAULT_TOKEN") {
            Some(t) => t.trim().to_string(),
            None => {
                let file = home.map(|h| h.join(".vault-token"));
                match file.as_ref().and_then(|f| std::fs::read_to_string(f).ok()) {
                    Some(t) if !t.trim().is_empty() => t.trim().to_string(),
                    _ => {
                        return Err(
                            "Vault: no token: set VAULT_TOKEN or log in so that ~/.vault-token holds one"
                                .into(),
                        )
                    }
                }
            }
        };
        if token.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(
                "Vault: the token holds a space, a control or a non-ASCII character".into(),
            );
        }
        crate::redact::register(&token);
        Ok(VaultConfig {
            addr,
            token: SecretString::new(token),
            namespace: nonempty("VAULT_NAMESPACE").map(|n| n.trim().to_string()),
            cacert: nonempty("VAULT_CACERT").map(PathBuf::from),
        })
    }

    /// Identity of a target, for telling deliveries apart.
    pub fn identity(&self, t: &VaultTarget) -> String {
        format!(
            "vault:{}{}/{}/{}#{}",
            self.addr.as_str().trim_end_matches('/'),
            self.namespace
                .as_deref()
                .map(|n| format!("@{n}"))
                .unwrap_or_default(),
            t.mount,
            t.path.trim_matches('/'),
            t.field
        )
    }

    fn url(&self, t: &VaultTarget) -> Result<String, String> {
        Ok(format!(
            "{}/v1/{}/data/{}",
            self.addr.as_str().trim_end_matches('/'),
            segment(&t.mount, "vault mount")?,
            path(&t.path, "vault path")?
        ))
    }
}

/// The secret's data and version (`0` and no data when it does not exist).
fn read(
    http: &Http,
    cfg: &VaultConfig,
    url: &str,
    cancelled: &dyn Fn() -> bool,
) -> Result<(Map<String, Value>, u64), String> {
    let a = http.send("read", true, cancelled, &|c| headers(c.get(url), cfg))?;
    match a.status {
        // Absent, or its latest version deleted or destroyed: Vault then
        // answers 404 with that version's metadata, and the next write must
        // check against it.
        404 => {
            let doc = a.json().unwrap_or_default();
            Ok((
                Map::new(),
                doc["data"]["metadata"]["version"].as_u64().unwrap_or(0),
            ))
        }
        200 => {
            let doc = a.json().map_err(|e| format!("Vault: read: {e}"))?;
            let version = doc["data"]["metadata"]["version"].as_u64().ok_or(
                "Vault: the answer has no version: is the mount a KV version 2 secrets engine? (mdops writes KV v2 only)",
            )?;
            let data = doc["data"]["data"].as_object().cloned().unwrap_or_default();
            Ok((data, version))
        }
        s => Err(refused(s, &a.message(), "read")),
    }
}

fn headers(b: reqwest::RequestBuilder, cfg: &VaultConfig) -> reqwest::RequestBuilder {
    let b = b.header("X-Vault-Token", cfg.token.expose());
    match &cfg.namespace {
        Some(ns) => b.header("X-Vault-Namespace", ns),
        None => b,
    }
}

fn refused(status: u16, message: &str, what: &str) -> String {
    match status {
        401 | 403 => format!(
            "Vault refused the token ({status}) to {what} the secret: set VAULT_TOKEN (or ~/.vault-token) to a token whose policy allows it: {message}"
        ),
        _ => format!("Vault: {what}: {status} {message}"),
    }
}

/// Reads the place (before anything is minted): the token is accepted and
/// may read it; the field, if there, is a string.
pub fn probe(
    http: &Http,
    cfg: &VaultConfig,
    t: &VaultTarget,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), String> {
    let (data, _) = read(http, cfg, &cfg.url(t)?, cancelled)?;
    if let Some(v) = data.get(&t.field) {
        if !(v.is_string() || v.is_null()) {
            return Err(format!(
                "Vault: field {} of {} is not a string: mdops does not replace it",
                t.field,
                t.label()
            ));
        }
    }
    may_write(http, cfg, t, cancelled)
}

/// Whether the token may write the secret (`sys/capabilities-self`, which
/// Vault's default policy allows): a token that may only read would have
/// every run mint a token and revoke it again. When Vault cannot tell, the
/// write itself will.
fn may_write(
    http: &Http,
    cfg: &VaultConfig,
    t: &VaultTarget,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), String> {
    let path = format!("{}/data/{}", t.mount, t.path.trim_matches('/'));
    let url = format!(
        "{}/v1/sys/capabilities-self",
        cfg.addr.as_str().trim_end_matches('/')
    );
    let body = json!({"paths": [path]});
    let a = http.send("check the capabilities of", true, cancelled, &|c| {
        headers(c.post(&url), cfg).json(&body)
    })?;
    if !a.ok() {
        return Ok(());
    }
    let doc = a.json().unwrap_or_default();
    let caps: Vec<&str> = doc[&path]
        .as_array()
        .or_else(|| doc["capabilities"].as_array())
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if caps.is_empty() {
        return Ok(());
    }
    if caps.contains(&"root") || caps.contains(&"update") || caps.contains(&"create") {
        return Ok(());
    }
    Err(format!(
        "Vault: the token may not write {} (its capabilities on {path}: {}): give its policy create and update on it",
        t.label(),
        caps.join(", ")
    ))
}

/// Writes `secret` into `t.field`, keeping the other fields; returns the
/// field's previous value.
pub fn to_vault(
    http: &Http,
    cfg: &VaultConfig,
    t: &VaultTarget,
    secret: &SecretString,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<SecretString>, String> {
    t.check()?;
    let url = cfg.url(t)?;
    let (mut data, version) = read(http, cfg, &url, cancelled)?;
    let previous = match data.get(&t.field) {
        Some(Value::String(s)) => Some(SecretString::new(s.clone())),
        Some(Value::Null) | None => None,
        Some(other) => {
            return Err(format!(
                "Vault: field {} of {} holds {}, not a string: mdops does not replace it",
                t.field,
                t.label(),
                match other {
                    Value::Object(_) => "an object",
                    Value::Array(_) => "a list",
                    _ => "a number or a boolean",
                }
            ))
        }
    };
    let before = data.clone();
    data.insert(t.field.clone(), Value::String(secret.expose().to_string()));
    let mut body = json!({"data": data});
    if t.cas {
        body["options"] = json!({"cas": version});
    }
    // A write whose answer was lost is repeated with the same check-and-set
    // version: it fails if the first one landed, and the read-back decides.
    let a = http.send("write", true, cancelled, &|c| {
        headers(c.post(&url), cfg).json(&body)
    })?;
    // The version this write made (a KV v2 answer carries it).
    let written = a.json().ok().and_then(|d| d["data"]["version"].as_u64());
    if a.ok() {
        // A KV v1 mount would take this POST too, as another secret named
        // `data/...`: only a KV v2 answer carries the new version.
        if written.is_none() {
            return Err(format!(
                "Vault: the write answer has no version: mount {} is not a KV version 2 secrets engine (mdops writes KV v2 only); \
                 a secret named data/{} may now exist in it",
                t.mount,
                t.path.trim_matches('/')
            ));
        }
    } else {
        let cas_mismatch = a.status == 400 && a.message().contains("check-and-set");
        if !cas_mismatch {
            return Err(refused(a.status, &a.message(), "write"));
        }
    }
    // Read back: the field holds the secret, the other fields are as they were.
    let confirmed = read(http, cfg, &url, cancelled).and_then(|(now, _)| {
        if now.get(&t.field).and_then(Value::as_str) != Some(secret.expose()) {
            return Err(if a.ok() {
                format!("Vault: {} reads back differently after the write", t.label())
            } else {
                format!(
                    "Vault: {} changed while mdops wrote it (check-and-set failed): nothing written; try again",
                    t.label()
                )
            });
        }
        let kept = before
            .iter()
            .filter(|(k, _)| *k != &t.field)
            .all(|(k, v)| now.get(k) == Some(v));
        if !kept {
            return Err(format!("Vault: {}: another field changed while mdops wrote it", t.label()));
        }
        Ok(())
    });
    match confirmed {
        Ok(()) => Ok(previous),
        // The write landed but could not be confirmed: the field must not be
        // left holding a token that is about to be revoked.
        Err(e) if a.ok() => Err(format!(
            "{e}; {}",
            put_back(http, cfg, t, &url, &before, written, cancelled)
        )),
        Err(e) => Err(e),
    }
}

/// After a write that landed but could not be confirmed: the field's
/// the data as it was before is written back as a new version, checked
/// against the version this write made (so nobody's later change is undone,
/// and a lagging read cannot mislead it), and the outcome is said.
fn put_back(
    http: &Http,
    cfg: &VaultConfig,
    t: &VaultTarget,
    url: &str,
    before: &Map<String, Value>,
    written: Option<u64>,
    cancelled: &dyn Fn() -> bool,
) -> String {
    let restored = match written {
        None => Err("the write's version is unknown".to_string()),
        Some(version) => {
            let body = json!({"data": before, "options": {"cas": version}});
            http.send("write", true, cancelled, &|c| {
                headers(c.post(url), cfg).json(&body)
            })
            .and_then(|a| {
                if a.ok() {
                    Ok(())
                } else {
                    Err(refused(a.status, &a.message(), "write"))
                }
            })
        }
    };
    match restored {
        Ok(()) => format!("{} was put back as it was", t.label()),
        Err(e) => format!(
            "{} may hold the new token, which is revoked, and could not be put back ({e}): check it",
            t.label()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn configuration_is_checked() {
        let e = VaultConfig::from_env(&env(&[]), None).unwrap_err();
        assert!(e.contains("VAULT_ADDR is not set"), "{e}");
        let e = VaultConfig::from_env(
            &env(&[
                ("VAULT_ADDR", "http://vault.example.com:8200"),
                ("VAULT_TOKEN", "t"),
            ]),
            None,
        )
        .unwrap_err();
        assert!(e.contains("must be https"), "{e}");
        let e = VaultConfig::from_env(&env(&[("VAULT_ADDR", "https://v.example.com")]), None)
            .unwrap_err();
        assert!(e.contains("set VAULT_TOKEN"), "{e}");
        let c = VaultConfig::from_env(
            &env(&[
                ("VAULT_ADDR", "http://127.0.0.1:8200"),
                ("VAULT_TOKEN", "hvs.x"),
                ("VAULT_NAMESPACE", "team"),
            ]),
            None,
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hvs.x"));
        let t = VaultTarget {
            mount: "secret".into(),
            path: "md/tenant a".into(),
            field: "token".into(),
            cas: true,
        };
        assert_eq!(
            c.url(&t).unwrap(),
            "http://127.0.0.1:8200/v1/secret/data/md/tenant%20a"
        );
        let bad = VaultTarget {
            path: "md/../sys".into(),
            ..t.clone()
        };
        assert!(bad.check().unwrap_err().contains("`..`"));
        let bad = VaultTarget {
            path: "md/x\ty".into(),
            ..t
        };
        assert!(bad.check().unwrap_err().contains("control character"));
    }
}
