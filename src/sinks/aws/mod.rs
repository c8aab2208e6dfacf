//! An AWS Secrets Manager secret, whole or one field of a JSON secret (the
//! other fields kept): `PutSecretValue` (or `CreateSecret`) with a
//! `ClientRequestToken` derived from the token, so a repeated request is the
//! same version, then a read back. The new version becomes `AWSCURRENT` and
//! the one before `AWSPREVIOUS`; delivering the `AWSPREVIOUS` value again (the
//! put-back after a failed verification) moves `AWSCURRENT` back to that
//! version (`UpdateSecretVersionStage`) instead of writing a new one.
//!
//! Requests are signed with SigV4 (`aws-sigv4`, the official signer) over the
//! project's HTTP client. Credentials and region come from the standard
//! chain's environment and shared-file links: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, else `AWS_PROFILE` (or
//! `default`) in `~/.aws/credentials` and `~/.aws/config`; `AWS_REGION` or
//! `AWS_DEFAULT_REGION`; `AWS_ENDPOINT_URL_SECRETS_MANAGER` or `AWS_ENDPOINT_URL`.

mod config;

pub use config::AwsConfig;

use super::http::{Answer, Http};
use crate::api::SecretString;
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct AwsTarget {
    pub secret_id: String,
    /// One field of a JSON secret, or the whole SecretString.
    pub field: Option<String>,
}

impl AwsTarget {
    pub fn check(&self) -> Result<(), String> {
        let ok = !self.secret_id.is_empty()
            && self.secret_id.len() <= 2048
            && !self.secret_id.chars().any(char::is_control);
        if !ok {
            return Err(format!(
                "AWS secret id {}: 1 to 2048 characters, no control characters",
                crate::output::escape(&self.secret_id)
            ));
        }
        if let Some(f) = &self.field {
            if f.is_empty() || f.chars().any(char::is_control) {
                return Err(format!(
                    "AWS field {}: must be non-empty, without control characters",
                    crate::output::escape(f)
                ));
            }
        }
        Ok(())
    }

    pub fn label(&self) -> String {
        match &self.field {
            Some(f) => format!("aws:{}#{f}", self.secret_id),
            None => format!("aws:{}", self.secret_id),
        }
    }
}

/// The error type of a JSON 1.1 answer (`ResourceNotFoundException`, ...).
fn error_type(a: &Answer) -> String {
    let doc = a.json().unwrap_or(Value::Null);
    doc["__type"]
        .as_str()
        .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
        .unwrap_or_default()
}

fn refused(a: &Answer, what: &str, t: &AwsTarget, cfg: &AwsConfig) -> String {
    let kind = error_type(a);
    match kind.as_str() {
        "UnrecognizedClientException" | "InvalidSignatureException" | "IncompleteSignature" | "ExpiredTokenException" => format!(
            "AWS refused the credentials from {} ({kind}) to {what} {}: set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or AWS_PROFILE",
            cfg.source,
            t.label()
        ),
        "AccessDeniedException" => format!(
            "AWS: the credentials from {} may not {what} {} (AccessDeniedException): allow secretsmanager:GetSecretValue, PutSecretValue, CreateSecret and UpdateSecretVersionStage on it",
            cfg.source,
            t.label()
        ),
        _ => format!("AWS: {what} {}: {} {}", t.label(), a.status, a.message()),
    }
}

/// The value at a version stage: `(SecretString, VersionId)`; `None` when the
/// secret (or the stage) does not exist.
fn get(
    http: &Http,
    cfg: &AwsConfig,
    t: &AwsTarget,
    stage: &str,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<(String, String)>, String> {
    let a = cfg.call(
        http,
        "GetSecretValue",
        &json!({"SecretId": t.secret_id, "VersionStage": stage}),
        cancelled,
        true,
    )?;
    if a.ok() {
        let doc = a.json().map_err(|e| format!("AWS: {e}"))?;
        let value = doc["SecretString"].as_str().ok_or_else(|| {
            format!(
                "AWS: {} holds binary data, not a string: mdops does not replace it",
                t.label()
            )
        })?;
        return Ok(Some((
            value.to_string(),
            doc["VersionId"].as_str().unwrap_or_default().to_string(),
        )));
    }
    if error_type(&a) == "ResourceNotFoundException" {
        return Ok(None);
    }
    Err(refused(&a, "read", t, cfg))
}

/// The field's (or the whole secret's) value within a SecretString.
fn part(value: &str, t: &AwsTarget) -> Result<Option<String>, String> {
    let Some(field) = &t.field else {
        return Ok(Some(value.to_string()));
    };
    let doc: Value = serde_json::from_str(value).map_err(|_| {
        format!(
            "AWS: {} does not hold a JSON object, so it has no field {field}",
            t.secret_id
        )
    })?;
    let obj = doc.as_object().ok_or_else(|| {
        format!(
            "AWS: {} does not hold a JSON object, so it has no field {field}",
            t.secret_id
        )
    })?;
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!(
            "AWS: field {field} of {} is not a string: mdops does not replace it",
            t.secret_id
        )),
    }
}

/// Reads the secret before anything is minted: the credentials work.
pub fn probe(
    http: &Http,
    cfg: &AwsConfig,
    t: &AwsTarget,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), String> {
    if let Some((value, _)) = get(http, cfg, t, "AWSCURRENT", cancelled)? {
        part(&value, t)?;
    }
    Ok(())
}

/// A `ClientRequestToken` for putting `value` into the secret: derived from
/// what identifies the write (the token id when mdops minted it), so the same
/// write repeated is the same version.
fn request_token(t: &AwsTarget, value: &str, token_id: Option<&str>) -> String {
    use sha2::Digest as _;
    let seed = match token_id {
        Some(id) => format!(
            "mdops:{}:{}:{id}",
            t.secret_id,
            t.field.as_deref().unwrap_or("")
        ),
        None => format!("mdops:{}:{value}", t.secret_id),
    };
    let d = sha2::Sha256::digest(seed.as_bytes());
    d[..20].iter().map(|b| format!("{b:02x}")).collect()
}

/// Puts `secret` into the secret (or its field); returns the previous value.
pub fn to_aws(
    http: &Http,
    cfg: &AwsConfig,
    t: &AwsTarget,
    secret: &SecretString,
    token_id: Option<&str>,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<SecretString>, String> {
    t.check()?;
    let current = get(http, cfg, t, "AWSCURRENT", cancelled)?;
    let previous = match &current {
        Some((v, _)) => part(v, t)?,
        None => None,
    };
    if previous.as_deref() == Some(secret.expose()) {
        return Ok(previous.map(SecretString::new));
    }
    // Putting back what was there before this run's write: move AWSCURRENT
    // back to that version rather than writing the value again.
    if let Some((_, current_id)) = &current {
        if let Some((old, old_id)) = get(http, cfg, t, "AWSPREVIOUS", cancelled)? {
            if part(&old, t)?.as_deref() == Some(secret.expose()) {
                move_current(http, cfg, t, &old_id, current_id, cancelled)?;
                return read_back(http, cfg, t, secret, previous, cancelled);
            }
        }
    }
    let value = match (&t.field, &current) {
        (None, _) => secret.expose().to_string(),
        (Some(field), Some((v, _))) => {
            let mut doc: serde_json::Map<String, Value> =
                serde_json::from_str(v).unwrap_or_default();
            doc.insert(field.clone(), Value::String(secret.expose().to_string()));
            Value::Object(doc).to_string()
        }
        (Some(field), None) => json!({ field.clone(): secret.expose() }).to_string(),
    };
    let token = request_token(t, &value, token_id);
    let a = match &current {
        Some(_) => cfg.call(
            http,
            "PutSecretValue",
            &json!({"SecretId": t.secret_id, "SecretString": value, "ClientRequestToken": token}),
            cancelled,
            true,
        )?,
        None => cfg.call(
            http,
            "CreateSecret",
            &json!({"Name": t.secret_id, "SecretString": value, "ClientRequestToken": token}),
            cancelled,
            true,
        )?,
    };
    // A create repeated after its answer was lost finds the secret there.
    let created_before = current.is_none() && error_type(&a) == "ResourceExistsException";
    if !a.ok() && !created_before {
        return Err(refused(&a, "write", t, cfg));
    }
    match read_back(http, cfg, t, secret, previous, cancelled) {
        Ok(p) => Ok(p),
        // Landed but not confirmed: AWSCURRENT goes back to the version it was.
        Err(e) => Err(format!(
            "{e}; {}",
            undo(
                http,
                cfg,
                t,
                current.as_ref().map(|c| c.1.as_str()),
                cancelled
            )
        )),
    }
}

/// Moves the AWSCURRENT stage from version `from` to version `to`.
fn move_current(
    http: &Http,
    cfg: &AwsConfig,
    t: &AwsTarget,
    to: &str,
    from: &str,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), String> {
    let a = cfg.call(
        http,
        "UpdateSecretVersionStage",
        &json!({"SecretId": t.secret_id, "VersionStage": "AWSCURRENT", "MoveToVersionId": to, "RemoveFromVersionId": from}),
        cancelled,
        true,
    )?;
    if a.ok() {
        Ok(())
    } else {
        Err(refused(&a, "restore", t, cfg))
    }
}

/// Moves AWSCURRENT back to `old_version` (the version before a write that
/// could not be confirmed), and says what happened.
fn undo(
    http: &Http,
    cfg: &AwsConfig,
    t: &AwsTarget,
    old_version: Option<&str>,
    cancelled: &dyn Fn() -> bool,
) -> String {
    let Some(old) = old_version else {
        return format!(
            "{} may now hold the new token, which is revoked; it did not exist before",
            t.label()
        );
    };
    let moved = get(http, cfg, t, "AWSCURRENT", cancelled).and_then(|now| {
        let Some((_, current)) = now else {
            return Ok(());
        };
        if current == old {
            return Ok(());
        }
        move_current(http, cfg, t, old, &current, cancelled)
    });
    match moved {
        Ok(()) => format!("AWSCURRENT of {} is the version it was before", t.label()),
        Err(e) => format!(
            "{} may hold the new token, which is revoked, and AWSCURRENT could not be moved back ({e}): check it",
            t.label()
        ),
    }
}

fn read_back(
    http: &Http,
    cfg: &AwsConfig,
    t: &AwsTarget,
    secret: &SecretString,
    previous: Option<String>,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<SecretString>, String> {
    let now = get(http, cfg, t, "AWSCURRENT", cancelled)?
        .ok_or_else(|| format!("AWS: {} is gone after the write", t.label()))?;
    if part(&now.0, t)?.as_deref() != Some(secret.expose()) {
        return Err(format!(
            "AWS: {} reads back differently after the write",
            t.label()
        ));
    }
    Ok(previous.map(SecretString::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_write_is_the_same_request_token() {
        let t = AwsTarget {
            secret_id: "md/a".into(),
            field: None,
        };
        let a = request_token(&t, "v", Some("tok-1"));
        assert_eq!(a, request_token(&t, "v", Some("tok-1")));
        assert_ne!(a, request_token(&t, "v", Some("tok-2")));
        assert_eq!(a.len(), 40, "32 to 64 characters");
        assert_ne!(request_token(&t, "x", None), request_token(&t, "y", None));
    }
}
