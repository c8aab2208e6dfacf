//! A GitHub Actions secret of a repository (or of one of its environments):
//! the repository's public key fetched, the value sealed to it (libsodium's
//! sealed box), `PUT`. GitHub never shows a secret's value again, so the
//! read-back is that the secret's `updated_at` did not go back (it counts
//! whole seconds), and there is no previous
//! value to put back: a rotation keeps the old token live until its verify
//! command has passed, and says so when it fails.
//!
//! Configuration: `GITHUB_TOKEN` (a token that may write Actions secrets),
//! `GITHUB_API_URL` (GitHub Enterprise; default `https://api.github.com`).

use super::http::{segment, Http};
use crate::api::SecretString;
use base64::Engine as _;
use serde_json::json;

#[derive(Clone)]
pub struct GithubConfig {
    pub api: url::Url,
    token: SecretString,
}

impl std::fmt::Debug for GithubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GithubConfig({})", self.api)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GithubTarget {
    /// `owner/name`.
    pub repo: String,
    pub name: String,
    pub environment: Option<String>,
}

impl GithubTarget {
    pub fn check(&self) -> Result<(), String> {
        let parts: Vec<&str> = self.repo.split('/').collect();
        let part_ok = |p: &str| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if parts.len() != 2 || !parts.iter().all(|p| part_ok(p)) {
            return Err(format!(
                "GitHub repository {}: write it as OWNER/NAME",
                crate::output::escape(&self.repo)
            ));
        }
        let name_ok = !self.name.is_empty()
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !self.name.starts_with(|c: char| c.is_ascii_digit())
            && !self.name.to_ascii_uppercase().starts_with("GITHUB_");
        if !name_ok {
            return Err(format!(
                "GitHub secret name {}: letters, digits and _, not starting with a digit or GITHUB_",
                crate::output::escape(&self.name)
            ));
        }
        if let Some(e) = &self.environment {
            if e.is_empty() || e.chars().any(char::is_control) || e.len() > 255 {
                return Err(format!(
                    "GitHub environment {}: not a valid name",
                    crate::output::escape(e)
                ));
            }
        }
        Ok(())
    }

    pub fn label(&self) -> String {
        match &self.environment {
            Some(e) => format!("github:{}@{e}#{}", self.repo, self.name),
            None => format!("github:{}#{}", self.repo, self.name),
        }
    }
}

impl GithubConfig {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<GithubConfig, String> {
        let nonempty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let token = nonempty("GITHUB_TOKEN")
            .ok_or("GitHub: GITHUB_TOKEN is not set (a token that may write the repository's Actions secrets)")?;
        let token = token.trim().to_string();
        if token.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(
                "GitHub: GITHUB_TOKEN holds a space, a control or a non-ASCII character".into(),
            );
        }
        crate::redact::register(&token);
        let raw = nonempty("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
        let api = super::http::base_url(&raw, "GitHub", "GITHUB_API_URL")?;
        Ok(GithubConfig {
            api,
            token: SecretString::new(token),
        })
    }

    /// GitHub compares repository and secret names case-blind: so does this.
    pub fn identity(&self, t: &GithubTarget) -> String {
        format!(
            "github:{}/{}",
            self.api.as_str().trim_end_matches('/'),
            t.label().trim_start_matches("github:").to_lowercase()
        )
    }

    fn base(&self, t: &GithubTarget) -> Result<String, String> {
        let (owner, repo) = t
            .repo
            .split_once('/')
            .ok_or("GitHub: repository is OWNER/NAME")?;
        let mut url = format!(
            "{}/repos/{}/{}",
            self.api.as_str().trim_end_matches('/'),
            segment(owner, "owner")?,
            segment(repo, "repository")?
        );
        match &t.environment {
            Some(e) => url.push_str(&format!(
                "/environments/{}/secrets",
                segment(e, "environment")?
            )),
            None => url.push_str("/actions/secrets"),
        }
        Ok(url)
    }

    fn auth(&self, b: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        b.bearer_auth(self.token.expose())
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
    }
}

fn refused(status: u16, message: &str, what: &str, t: &GithubTarget) -> String {
    match status {
        401 => format!("GitHub refused GITHUB_TOKEN (401) to {what} {}: {message}", t.label()),
        403 | 404 => format!(
            "GitHub: GITHUB_TOKEN may not {what} {} ({status}): it needs write access to the repository's Actions secrets (fine-grained: \"Secrets\" read and write): {message}",
            t.label()
        ),
        _ => format!("GitHub: {what} {}: {status} {message}", t.label()),
    }
}

/// When the secret was last updated (`None`: it does not exist).
fn updated_at(
    http: &Http,
    cfg: &GithubConfig,
    t: &GithubTarget,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<String>, String> {
    let url = format!("{}/{}", cfg.base(t)?, segment(&t.name, "secret name")?);
    let a = http.send("read", true, cancelled, &|c| cfg.auth(c.get(&url)))?;
    match a.status {
        200 => Ok(a.json().map_err(|e| format!("GitHub: {e}"))?["updated_at"]
            .as_str()
            .map(String::from)),
        404 => Ok(None),
        s => Err(refused(s, &a.message(), "read", t)),
    }
}

/// The repository's (or environment's) sealing key: `(key_id, key)`.
fn public_key(
    http: &Http,
    cfg: &GithubConfig,
    t: &GithubTarget,
    cancelled: &dyn Fn() -> bool,
) -> Result<(String, crypto_box::PublicKey), String> {
    let url = format!("{}/public-key", cfg.base(t)?);
    let a = http.send("read the public key of", true, cancelled, &|c| {
        cfg.auth(c.get(&url))
    })?;
    if a.status != 200 {
        return Err(refused(a.status, &a.message(), "read the public key of", t));
    }
    let doc = a.json().map_err(|e| format!("GitHub: public key: {e}"))?;
    let id = doc["key_id"]
        .as_str()
        .ok_or("GitHub: the public key has no key_id")?
        .to_string();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(
            doc["key"]
                .as_str()
                .ok_or("GitHub: the public key has no key")?,
        )
        .map_err(|_| "GitHub: the public key is not base64")?;
    let key = crypto_box::PublicKey::from_slice(&raw)
        .map_err(|_| "GitHub: the public key is not 32 bytes")?;
    Ok((id, key))
}

/// Checks before anything is minted: the token may read the sealing key.
pub fn probe(
    http: &Http,
    cfg: &GithubConfig,
    t: &GithubTarget,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), String> {
    public_key(http, cfg, t, cancelled).map(|_| ())
}

/// Seals and stores `secret`; checks that the secret's `updated_at` did not go back.
/// There is never a previous value to give back.
pub fn to_github(
    http: &Http,
    cfg: &GithubConfig,
    t: &GithubTarget,
    secret: &SecretString,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<SecretString>, String> {
    t.check()?;
    let before = updated_at(http, cfg, t, cancelled)?;
    let (key_id, key) = public_key(http, cfg, t, cancelled)?;
    let sealed = key
        .seal(&mut crypto_box::aead::OsRng, secret.expose().as_bytes())
        .map_err(|_| "GitHub: cannot seal the secret".to_string())?;
    let body = json!({
        "encrypted_value": base64::engine::general_purpose::STANDARD.encode(sealed),
        "key_id": key_id,
    });
    let url = format!("{}/{}", cfg.base(t)?, segment(&t.name, "secret name")?);
    // A PUT of the same sealed value is idempotent: safe to repeat.
    let a = http.send("write", true, cancelled, &|c| {
        cfg.auth(c.put(&url)).json(&body)
    })?;
    if !matches!(a.status, 201 | 204) {
        return Err(refused(a.status, &a.message(), "write", t));
    }
    // The PUT was accepted: whatever goes wrong from here, the secret may
    // hold the new token, and GitHub cannot give the old one back.
    let landed = |e: String| {
        format!(
            "{e}; the PUT was accepted, so {} may hold the new token, which is revoked: GitHub cannot give the old one back (the old token is still live: store it again by hand)",
            t.label()
        )
    };
    let after = updated_at(http, cfg, t, cancelled).map_err(landed)?;
    match (&before, &after) {
        (_, None) => Err(landed(format!(
            "GitHub: {} does not exist after the write",
            t.label()
        ))),
        (Some(b), Some(a)) if a < b => Err(landed(format!(
            "GitHub: {} was not updated (updated_at went back to {a})",
            t.label()
        ))),
        _ => Ok(None),
    }
}
