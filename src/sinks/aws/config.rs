//! Where AWS is and who mdops is to it: credentials from the environment or
//! a shared-file profile, the region, the endpoint; and SigV4 signing of the
//! Secrets Manager JSON API's calls.

use super::AwsTarget;
use crate::api::SecretString;
use crate::sinks::http::{Answer, Http};
use serde_json::Value;
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
        let endpoint =
            crate::sinks::http::base_url(&raw, "AWS", "the endpoint (AWS_ENDPOINT_URL)")?;
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
    pub(super) fn call(
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
}
