//! One key of a Kubernetes Secret: a JSON merge patch of `data.<key>` (the
//! other keys kept) that carries the `resourceVersion` read, so a change made
//! meanwhile is a conflict, not a lost update; then a read back. A Secret that
//! does not exist is created. Returns the key's previous value, so patching
//! it back undoes the delivery.
//!
//! In a cluster the configuration is the pod's own (its service-account
//! token and CA, `KUBERNETES_SERVICE_HOST`/`PORT`); elsewhere
//! `MDOPS_K8S_SERVER`, `MDOPS_K8S_TOKEN_FILE` and `MDOPS_K8S_CA_FILE`.

mod config;

pub use config::K8sConfig;

use super::http::Http;
use crate::api::SecretString;
use base64::Engine as _;
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct K8sTarget {
    pub namespace: String,
    pub name: String,
    pub key: String,
}

/// A DNS-1123 subdomain (Secret names) or label (namespaces): lowercase
/// letters, digits, `-` and `.`, starting and ending alphanumeric.
fn dns_name(s: &str, what: &str, max: usize) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Kubernetes {what} {}: use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit (at most {max})",
            crate::output::escape(s)
        ))
    }
}

impl K8sTarget {
    pub fn check(&self) -> Result<(), String> {
        dns_name(&self.namespace, "namespace", 63)?;
        if self.namespace.contains('.') {
            return Err(format!(
                "Kubernetes namespace {}: no '.' allowed",
                self.namespace
            ));
        }
        dns_name(&self.name, "secret name", 253)?;
        let key_ok = !self.key.is_empty()
            && self.key.len() <= 253
            && self.key != "."
            && self.key != ".."
            && self
                .key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        if !key_ok {
            return Err(format!(
                "Kubernetes secret key {}: use letters, digits, '-', '_' and '.'",
                crate::output::escape(&self.key)
            ));
        }
        Ok(())
    }

    pub fn label(&self) -> String {
        format!("k8s:{}/{}#{}", self.namespace, self.name, self.key)
    }
}

fn refused(status: u16, message: &str, what: &str, t: &K8sTarget) -> String {
    match status {
        401 => format!(
            "Kubernetes refused the token (401) to {what} {}: check the service account's token (or MDOPS_K8S_TOKEN_FILE): {message}",
            t.label()
        ),
        403 => format!(
            "Kubernetes forbids the service account to {what} {} (403): grant it get, create and patch on secrets in namespace {} (a Role and RoleBinding): {message}",
            t.label(),
            t.namespace
        ),
        _ => format!("Kubernetes: {what} {}: {status} {message}", t.label()),
    }
}

/// The Secret (`None` when it does not exist).
fn read(
    http: &Http,
    cfg: &K8sConfig,
    t: &K8sTarget,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<Value>, String> {
    let url = cfg.secret_url(t)?;
    let a = http.send("read", true, cancelled, &|c| cfg.auth(c.get(&url)))?;
    match a.status {
        200 => a
            .json()
            .map(Some)
            .map_err(|e| format!("Kubernetes: read: {e}")),
        404 => Ok(None),
        s => Err(refused(s, &a.message(), "read", t)),
    }
}

fn value_of(secret: &Value, key: &str) -> Result<Option<String>, String> {
    match secret["data"].get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(b64)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| format!("Kubernetes: key {key} is not base64"))?;
            String::from_utf8(bytes).map(Some).map_err(|_| {
                format!("Kubernetes: key {key} does not hold text: mdops does not replace it")
            })
        }
        Some(_) => Err(format!("Kubernetes: key {key} is not a string")),
    }
}

/// Reads the Secret before anything is minted: the credentials work.
pub fn probe(
    http: &Http,
    cfg: &K8sConfig,
    t: &K8sTarget,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), String> {
    let exists = match read(http, cfg, t, cancelled)? {
        Some(s) => {
            value_of(&s, &t.key)?;
            true
        }
        None => false,
    };
    may(
        http,
        cfg,
        t,
        if exists { "patch" } else { "create" },
        cancelled,
    )
}

/// Whether the service account may `verb` the Secret (a
/// SelfSubjectAccessReview, which every authenticated identity may ask): one
/// that may only read would have every run mint a token and revoke it again.
/// When the cluster cannot tell, the write itself will.
fn may(
    http: &Http,
    cfg: &K8sConfig,
    t: &K8sTarget,
    verb: &str,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), String> {
    let url = format!(
        "{}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        cfg.server.as_str().trim_end_matches('/')
    );
    let mut attributes = json!({"namespace": t.namespace, "verb": verb, "resource": "secrets"});
    if verb != "create" {
        attributes["name"] = json!(t.name);
    }
    let body = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    });
    let a = http.send("check access to", true, cancelled, &|c| {
        cfg.auth(c.post(&url)).json(&body)
    })?;
    if !a.ok() {
        return Ok(());
    }
    let doc = a.json().unwrap_or_default();
    if doc["status"]["allowed"].as_bool() == Some(false) {
        return Err(format!(
            "Kubernetes: the service account may not {verb} {}: grant it get, create and patch on secrets in namespace {} (a Role and RoleBinding)",
            t.label(),
            t.namespace
        ));
    }
    Ok(())
}

/// Puts `secret` in key `t.key`; returns the key's previous value.
pub fn to_k8s(
    http: &Http,
    cfg: &K8sConfig,
    t: &K8sTarget,
    secret: &SecretString,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<SecretString>, String> {
    t.check()?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(secret.expose());
    // A server that echoes a request would show the secret in this form.
    crate::redact::register(&encoded);
    let current = read(http, cfg, t, cancelled)?;
    let previous = match &current {
        Some(s) => value_of(s, &t.key)?.map(SecretString::new),
        None => None,
    };
    let answer = match &current {
        Some(s) => {
            let version = s["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let patch = json!({
                "metadata": {"resourceVersion": version},
                "data": {t.key.clone(): encoded},
            });
            let url = cfg.secret_url(t)?;
            http.send("patch", true, cancelled, &|c| {
                cfg.auth(c.patch(&url))
                    .header("Content-Type", "application/merge-patch+json")
                    .body(patch.to_string())
            })?
        }
        None => {
            let body = json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": t.name, "namespace": t.namespace},
                "type": "Opaque",
                "data": {t.key.clone(): encoded},
            });
            let url = cfg.secrets_url(t)?;
            http.send("create", true, cancelled, &|c| {
                cfg.auth(c.post(&url)).json(&body)
            })?
        }
    };
    // 409: changed meanwhile (or a retried write that had landed): the read-back decides.
    if !answer.ok() && answer.status != 409 {
        return Err(refused(answer.status, &answer.message(), "write", t));
    }
    let confirmed = read(http, cfg, t, cancelled).and_then(|now| {
        let now =
            now.ok_or_else(|| format!("Kubernetes: {} is gone after the write", t.label()))?;
        if value_of(&now, &t.key)?.as_deref() != Some(secret.expose()) {
            return Err(if answer.ok() {
                format!("Kubernetes: {} reads back differently after the write", t.label())
            } else {
                format!(
                    "Kubernetes: {} changed while mdops wrote it (409 conflict): nothing written; try again",
                    t.label()
                )
            });
        }
        if let Some(before) = &current {
            let kept = before["data"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| *k != &t.key)
                        .all(|(k, v)| &now["data"][k] == v)
                })
                .unwrap_or(true);
            if !kept {
                return Err(format!(
                    "Kubernetes: {}: another key changed while mdops wrote it",
                    t.label()
                ));
            }
        }
        Ok(())
    });
    match confirmed {
        Ok(()) => Ok(previous),
        // Landed but not confirmed: never leave the key holding a token that
        // is about to be revoked without trying to put the old one back.
        Err(e) if answer.ok() => {
            let outcome = match &previous {
                None => format!(
                    "{} may now hold the new token, which is revoked; it held none before",
                    t.label()
                ),
                Some(p) => match restore(http, cfg, t, p, secret, cancelled) {
                    Ok(()) => format!("the previous value of {} was put back", t.label()),
                    Err(r) => format!(
                        "{} may hold the new token, which is revoked, and the previous value could not be put back ({r}): check it",
                        t.label()
                    ),
                },
            };
            Err(format!("{e}; {outcome}"))
        }
        Err(e) => Err(e),
    }
}

/// Patches the key back to `previous` if it still holds `secret`.
fn restore(
    http: &Http,
    cfg: &K8sConfig,
    t: &K8sTarget,
    previous: &SecretString,
    secret: &SecretString,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), String> {
    let Some(now) = read(http, cfg, t, cancelled)? else {
        return Ok(());
    };
    if value_of(&now, &t.key)?.as_deref() != Some(secret.expose()) {
        return Ok(());
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(previous.expose());
    crate::redact::register(&encoded);
    let patch = json!({
        "metadata": {"resourceVersion": now["metadata"]["resourceVersion"]},
        "data": {t.key.clone(): encoded},
    });
    let url = cfg.secret_url(t)?;
    let a = http.send("patch", true, cancelled, &|c| {
        cfg.auth(c.patch(&url))
            .header("Content-Type", "application/merge-patch+json")
            .body(patch.to_string())
    })?;
    if a.ok() {
        Ok(())
    } else {
        Err(refused(a.status, &a.message(), "write", t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        let t = K8sTarget {
            namespace: "apps".into(),
            name: "tenant-a-motherduck".into(),
            key: "MOTHERDUCK_TOKEN".into(),
        };
        t.check().unwrap();
        for (ns, name, key) in [
            ("Apps", "x", "k"),
            ("a.b", "x", "k"),
            ("apps", "tenant_a", "k"),
            ("apps", "../x", "k"),
            ("apps", "x", "a/b"),
            ("apps", "x", ".."),
        ] {
            let bad = K8sTarget {
                namespace: ns.into(),
                name: name.into(),
                key: key.into(),
            };
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
