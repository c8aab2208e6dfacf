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

use super::http::{Answer, Http};
use crate::api::SecretString;
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Clone)]
pub struct AwsConfig {
    pub endpoint: url::Url,
    pub region: String,
    access_key: String,
    secret_key: SecretString,
    session_token: Option<SecretString>,
    /// Where the credentials came from, for messages.
    pub source: String,
}

impl std::fmt::Debug for AwsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AwsConfig({}, {})", self.endpoint, self.region)
    }
}

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

/// `[section]` → key → value, of an AWS shared file.
fn ini(text: &str) -> std::collections::HashMap<String, std::collections::HashMap<String, String>> {
    let mut out: std::collections::HashMap<String, std::collections::HashMap<String, String>> =
        Default::default();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_string();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

impl AwsConfig {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<AwsConfig, String> {
        let nonempty = |k: &str| {
            env(k)
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.trim().to_string())
        };
        let home = nonempty("HOME").map(PathBuf::from);
        let profile = nonempty("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let read = |var: &str, default: &str| {
            nonempty(var)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
                .and_then(|p| std::fs::read_to_string(p).ok())
                .map(|t| ini(&t))
                .unwrap_or_default()
        };
        let credentials = read("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let config = read("AWS_CONFIG_FILE", "config");
        let config_section = if profile == "default" {
            "default".to_string()
        } else {
            format!("profile {profile}")
        };
        let from_files = |key: &str| {
            credentials
                .get(&profile)
                .and_then(|s| s.get(key))
                .or_else(|| config.get(&config_section).and_then(|s| s.get(key)))
                .cloned()
        };
        let (access_key, secret_key, session_token, source) =
            match (nonempty("AWS_ACCESS_KEY_ID"), nonempty("AWS_SECRET_ACCESS_KEY")) {
                (Some(a), Some(s)) => (a, s, nonempty("AWS_SESSION_TOKEN"), "the environment".to_string()),
                _ => match (from_files("aws_access_key_id"), from_files("aws_secret_access_key")) {
                    (Some(a), Some(s)) => (a, s, from_files("aws_session_token"), format!("profile {profile}")),
                    _ => {
                        return Err(format!(
                            "AWS: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE to a profile of ~/.aws/credentials (profile {profile} has none)"
                        ))
                    }
                },
            };
        let region = nonempty("AWS_REGION")
            .or_else(|| nonempty("AWS_DEFAULT_REGION"))
            .or_else(|| {
                config
                    .get(&config_section)
                    .and_then(|s| s.get("region"))
                    .cloned()
            })
            .ok_or("AWS: no region: set AWS_REGION (or region in ~/.aws/config)")?;
        if !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "AWS: region {} is not a region name",
                crate::output::escape(&region)
            ));
        }
        let raw = nonempty("AWS_ENDPOINT_URL_SECRETS_MANAGER")
            .or_else(|| nonempty("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://secretsmanager.{region}.amazonaws.com"));
        let endpoint = super::http::base_url(&raw, "AWS", "the endpoint (AWS_ENDPOINT_URL)")?;
        crate::redact::register(&secret_key);
        if let Some(t) = &session_token {
            crate::redact::register(t);
        }
        Ok(AwsConfig {
            endpoint,
            region,
            access_key,
            secret_key: SecretString::new(secret_key),
            session_token: session_token.map(SecretString::new),
            source,
        })
    }

    pub fn identity(&self, t: &AwsTarget) -> String {
        format!(
            "aws:{}@{}/{}",
            self.endpoint.as_str().trim_end_matches('/'),
            self.region,
            t.label().trim_start_matches("aws:")
        )
    }

    /// One signed call of the Secrets Manager JSON API.
    fn call(
        &self,
        http: &Http,
        op: &str,
        body: &Value,
        cancelled: &dyn Fn() -> bool,
        retry: bool,
    ) -> Result<Answer, String> {
        let payload = body.to_string();
        let url = self.endpoint.as_str().to_string();
        let host = match self.endpoint.port() {
            Some(p) => format!("{}:{p}", self.endpoint.host_str().unwrap_or_default()),
            None => self.endpoint.host_str().unwrap_or_default().to_string(),
        };
        let target = format!("secretsmanager.{op}");
        http.send(op, retry, cancelled, &|c| {
            let headers = [
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", target.as_str()),
                ("host", host.as_str()),
            ];
            let mut builder = c.post(&url).body(payload.clone());
            for (k, v) in headers {
                if k != "host" {
                    builder = builder.header(k, v);
                }
            }
            match self.signature(&url, &headers, payload.as_bytes()) {
                Ok(signed) => {
                    for (k, v) in signed {
                        builder = builder.header(k, v);
                    }
                    builder
                }
                // An unsigned request is refused by the server; the error says why.
                Err(e) => builder.header("x-mdops-signing-error", e),
            }
        })
    }

    fn signature(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, String> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let identity = aws_credential_types::Credentials::new(
            &self.access_key,
            self.secret_key.expose(),
            self.session_token.as_ref().map(|t| t.expose().to_string()),
            None,
            "mdops",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("secretsmanager")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("cannot sign: {e}"))?
            .into();
        let request = SignableRequest::new(
            "POST",
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| format!("cannot sign: {e}"))?;
        let (instructions, _) = sign(request, &params)
            .map_err(|e| format!("cannot sign: {e}"))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
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
                let a = cfg.call(
                    http,
                    "UpdateSecretVersionStage",
                    &json!({"SecretId": t.secret_id, "VersionStage": "AWSCURRENT", "MoveToVersionId": old_id, "RemoveFromVersionId": current_id}),
                    cancelled,
                    true,
                )?;
                if !a.ok() {
                    return Err(refused(&a, "restore", t, cfg));
                }
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
        let a = cfg.call(
            http,
            "UpdateSecretVersionStage",
            &json!({"SecretId": t.secret_id, "VersionStage": "AWSCURRENT", "MoveToVersionId": old, "RemoveFromVersionId": current}),
            cancelled,
            true,
        )?;
        if a.ok() {
            Ok(())
        } else {
            Err(refused(&a, "restore", t, cfg))
        }
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
    fn credentials_come_from_the_environment_then_the_profile_files() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".aws")).unwrap();
        std::fs::write(
            home.path().join(".aws/credentials"),
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = def\n[ops]\naws_access_key_id=AKIDOPS\naws_secret_access_key=ops-secret\naws_session_token=tok\n",
        )
        .unwrap();
        std::fs::write(
            home.path().join(".aws/config"),
            "[profile ops]\nregion = eu-west-1\n",
        )
        .unwrap();
        let h = home.path().to_str().unwrap().to_string();
        let env = |vars: Vec<(&'static str, String)>| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        };
        let c = AwsConfig::from_env(&env(vec![
            ("HOME", h.clone()),
            ("AWS_PROFILE", "ops".into()),
        ]))
        .unwrap();
        assert_eq!(
            (c.access_key.as_str(), c.region.as_str(), c.source.as_str()),
            ("AKIDOPS", "eu-west-1", "profile ops")
        );
        assert_eq!(
            c.endpoint.as_str(),
            "https://secretsmanager.eu-west-1.amazonaws.com/"
        );
        assert!(!format!("{c:?}").contains("ops-secret"));
        let e = AwsConfig::from_env(&env(vec![("HOME", h.clone())])).unwrap_err();
        assert!(e.contains("no region"), "{e}");
        let c = AwsConfig::from_env(&env(vec![
            ("HOME", h.clone()),
            ("AWS_ACCESS_KEY_ID", "AKIDENV".into()),
            ("AWS_SECRET_ACCESS_KEY", "envsecret".into()),
            ("AWS_REGION", "us-east-2".into()),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566".into()),
        ]))
        .unwrap();
        assert_eq!(
            (c.access_key.as_str(), c.source.as_str()),
            ("AKIDENV", "the environment")
        );
        let e = AwsConfig::from_env(&env(vec![
            ("AWS_ACCESS_KEY_ID", "A".into()),
            ("AWS_SECRET_ACCESS_KEY", "s".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", "http://sm.example.com".into()),
        ]))
        .unwrap_err();
        assert!(e.contains("must be https"), "{e}");
    }

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
