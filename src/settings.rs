//! Flags, environment and `config.toml` profiles turned into one validated
//! `Settings` before anything runs. Precedence: flag, environment, profile, default.

use crate::api::{base_url, SecretString, DEFAULT_BASE_URL};
use crate::cli::Global;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use url::Url;

/// The environment variables that may hold the state database's or a secret
/// store's credentials: children of mdops never see them, and their values
/// are redacted from anything mdops prints.
pub const STATE_VARS: [&str; 6] = [
    "MDOPS_STATE_URL",
    "PGPASSWORD",
    "VAULT_TOKEN",
    "GITHUB_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// The environment variables that may hold the admin token, in lookup order.
pub const TOKEN_VARS: [&str; 3] = [
    "MOTHERDUCK_ADMIN_TOKEN",
    "MOTHERDUCK_TOKEN",
    "motherduck_token",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub default_profile: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub api_url: Option<String>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// State on a PostgreSQL server (`postgres://...`) instead of the data directory.
    #[serde(default)]
    pub state_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub api_url: Url,
    pub token: Option<SecretString>,
    /// Where the token came from (never the token): for banners and errors.
    pub token_source: Option<String>,
    pub profile: Option<String>,
    pub data_dir: PathBuf,
    /// State on a PostgreSQL server, when one is configured.
    pub state_url: Option<crate::store::StateUrl>,
    /// Where the state URL came from (`--state`, `$MDOPS_STATE_URL`, a profile).
    pub state_source: Option<String>,
    pub config_path: PathBuf,
    pub sandbox: bool,
    pub timeout: std::time::Duration,
    pub retry: crate::api::resilience::RetryPolicy,
    pub max_rps: Option<f64>,
    pub concurrency: usize,
    pub max_writes: Option<u64>,
    pub command_timeout: std::time::Duration,
    /// Bytes an API response body may hold.
    pub max_body: usize,
    pub quiet: bool,
}

impl Settings {
    /// The admin token, or the configuration error that explains how to give one.
    pub fn require_token(&self) -> Result<SecretString, String> {
        self.token.clone().ok_or_else(|| {
            "no admin token: set MOTHERDUCK_ADMIN_TOKEN, pass --token-file PATH, or add token_file to a profile \
             (or try --sandbox to run against the built-in demo organization)"
                .to_string()
        })
    }
}

/// What is wrong with a token, without quoting it: it must be one line of
/// visible ASCII (a header cannot carry anything else).
fn check_token(token: &str) -> Result<(), String> {
    if let Some((i, c)) = token
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_graphic())
    {
        let what = if c == '\n' || c == '\r' {
            "a line break".to_string()
        } else if c.is_whitespace() {
            "a space".to_string()
        } else if c.is_control() {
            "a control character".to_string()
        } else {
            "a non-ASCII character".to_string()
        };
        return Err(format!("the token holds {what} (at character {})", i + 1));
    }
    Ok(())
}

fn read_token_file(path: &Path) -> Result<SecretString, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read token file {}: {}", path.display(), e.kind()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("token file {} is not text", path.display()))?;
    // Editors on some systems start a file with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let token = match lines.as_slice() {
        [] => return Err(format!("token file {} is empty", path.display())),
        [one] => *one,
        _ => {
            return Err(format!(
                "token file {} holds more than one line; it must hold only the token",
                path.display()
            ))
        }
    };
    check_token(token).map_err(|e| format!("token file {}: {e}", path.display()))?;
    Ok(SecretString::new(token))
}

/// A TOML error as a position and a message, without the source line it
/// quotes (that line may hold a credential) or quoted string values.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let mut message = String::new();
    let mut in_quotes = false;
    for c in e.message().chars() {
        if c == '"' {
            in_quotes = !in_quotes;
            message.push(c);
            if !in_quotes {
                continue;
            }
            message.push('…');
        } else if !in_quotes {
            message.push(c);
        }
    }
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
            format!("line {line}, column {col}: {}", message.trim())
        }
        None => message.trim().to_string(),
    }
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("com", "mdops", "mdops")
}

/// Resolves settings. `env` reads a variable (injected so tests need no global state).
pub fn resolve(global: &Global, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, String> {
    let nonempty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let home = global
        .data_dir
        .clone()
        .or_else(|| nonempty("MDOPS_HOME").map(PathBuf::from));
    let data_dir = match &home {
        Some(h) => h.clone(),
        None => project_dirs()
            .map(|d| d.data_dir().to_path_buf())
            .ok_or("cannot find a home directory: set MDOPS_HOME or pass --data-dir")?,
    };
    let config_path = match &home {
        Some(h) => h.join("config.toml"),
        None => project_dirs()
            .map(|d| d.config_dir().join("config.toml"))
            .unwrap_or_else(|| data_dir.join("config.toml")),
    };
    let config: ConfigFile = match std::fs::read_to_string(&config_path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            format!(
                "invalid config file {}: {}",
                config_path.display(),
                toml_error(&text, &e)
            )
        })?,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            ConfigFile::default()
        }
        Err(e) => {
            return Err(format!(
                "cannot read config file {}: {e}",
                config_path.display()
            ))
        }
    };
    let profile_name = global
        .profile
        .clone()
        .or_else(|| nonempty("MDOPS_PROFILE"))
        .or(config.default_profile.clone());
    let profile = match &profile_name {
        None => Profile::default(),
        Some(name) => config.profiles.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
            format!(
                "no profile {name:?} in {} (known: {})",
                config_path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )
        })?,
    };
    let (raw_url, url_source) = if let Some(u) = &global.api_url {
        (u.clone(), "--api-url".to_string())
    } else if let Some(u) = nonempty("MOTHERDUCK_API_BASE_URL") {
        (u, "$MOTHERDUCK_API_BASE_URL".to_string())
    } else if let Some(u) = &profile.api_url {
        (
            u.clone(),
            format!("profile {}", profile_name.clone().unwrap_or_default()),
        )
    } else {
        (DEFAULT_BASE_URL.to_string(), "the default".to_string())
    };
    let api_url =
        base_url::parse(&raw_url).map_err(|e| format!("{e} (the URL comes from {url_source})"))?;

    let (token, token_source) = if let Some(path) = &global.token_file {
        (
            Some(read_token_file(path)?),
            Some(format!("--token-file {}", path.display())),
        )
    } else if let Some((var, value)) = TOKEN_VARS.iter().find_map(|v| nonempty(v).map(|x| (*v, x)))
    {
        let value = value.trim().trim_start_matches('\u{feff}');
        check_token(value).map_err(|e| format!("${var}: {e}"))?;
        (Some(SecretString::new(value)), Some(format!("${var}")))
    } else if let Some(path) = &profile.token_file {
        let path = expand_home(path);
        (
            Some(read_token_file(&path)?),
            Some(format!(
                "profile {}",
                profile_name.clone().unwrap_or_default()
            )),
        )
    } else {
        (None, None)
    };
    let state = if let Some(u) = &global.state {
        Some((u.clone(), "--state".to_string()))
    } else if let Some(u) = nonempty("MDOPS_STATE_URL") {
        Some((u, "$MDOPS_STATE_URL".to_string()))
    } else {
        profile.state_url.clone().map(|u| {
            (
                u,
                format!("profile {}", profile_name.clone().unwrap_or_default()),
            )
        })
    };
    let (state_url, state_source) = match state {
        Some((raw, source)) => {
            if source == "--state"
                && url::Url::parse(raw.trim())
                    .map(|u| {
                        u.password().is_some() || u.query_pairs().any(|(k, _)| k == "password")
                    })
                    .unwrap_or(false)
            {
                return Err("--state must not carry a password: the process list would show it; \
                     use PGPASSWORD, ~/.pgpass, or put the URL in MDOPS_STATE_URL or a profile's state_url"
                    .to_string());
            }
            let mut url = crate::store::StateUrl::parse(&raw, env)
                .map_err(|e| format!("{} (from {source})", e.0))?;
            url.scope = profile_name.clone().unwrap_or_else(|| "default".into());
            (Some(url), Some(source))
        }
        None => (None, None),
    };
    for var in STATE_VARS.iter().filter(|v| **v != "MDOPS_STATE_URL") {
        if let Some(v) = nonempty(var) {
            crate::redact::register(&v);
        }
    }
    // Known to the redactor from now on: before the first request, a script
    // that prints the token file, or a command that echoes it, must not show it.
    if let Some(t) = &token {
        crate::redact::register(t.expose());
    }
    if !(1..=3600).contains(&global.timeout) {
        return Err(format!(
            "--timeout must be 1 to 3600 seconds, not {}",
            global.timeout
        ));
    }
    if let Some(r) = global.max_rps {
        if !(0.01..=100_000.0).contains(&r) {
            return Err(format!(
                "--max-rps must be between 0.01 and 100000, not {r}"
            ));
        }
    }
    if !(1..=86_400).contains(&global.command_timeout) {
        return Err(format!(
            "--command-timeout must be 1 to 86400 seconds, not {}",
            global.command_timeout
        ));
    }
    if !(1..=1024).contains(&global.max_response_mb) {
        return Err(format!(
            "--max-response-mb must be 1 to 1024, not {}",
            global.max_response_mb
        ));
    }
    if !(1..=256).contains(&global.concurrency) {
        return Err(format!(
            "--concurrency must be 1 to 256, not {}",
            global.concurrency
        ));
    }
    if global.retries > 20 {
        return Err(format!("--retries must be 0 to 20, not {}", global.retries));
    }
    Ok(Settings {
        api_url,
        token,
        token_source,
        profile: profile_name,
        data_dir,
        state_url,
        state_source,
        config_path,
        sandbox: global.sandbox,
        timeout: std::time::Duration::from_secs(global.timeout),
        retry: crate::api::resilience::RetryPolicy {
            max_attempts: global.retries + 1,
            ..Default::default()
        },
        max_rps: global.max_rps,
        concurrency: global.concurrency as usize,
        max_writes: global.max_writes,
        command_timeout: std::time::Duration::from_secs(global.command_timeout),
        max_body: (global.max_response_mb as usize) << 20,
        quiet: global.quiet,
    })
}

fn expand_home(path: &Path) -> PathBuf {
    match path.strip_prefix("~") {
        Ok(rest) => directories::BaseDirs::new()
            .map(|b| b.home_dir().join(rest))
            .unwrap_or_else(|| path.to_path_buf()),
        Err(_) => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with_env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn home() -> (tempfile::TempDir, Global) {
        let dir = tempfile::tempdir().unwrap();
        let g = Global {
            data_dir: Some(dir.path().to_path_buf()),
            timeout: 30,
            retries: 4,
            concurrency: 8,
            command_timeout: 120,
            max_response_mb: 8,
            ..Default::default()
        };
        (dir, g)
    }

    #[test]
    fn token_precedence_skips_empty_values() {
        let (_d, g) = home();
        let s = resolve(
            &g,
            &with_env(&[
                ("MOTHERDUCK_ADMIN_TOKEN", " "),
                ("MOTHERDUCK_TOKEN", "tok2"),
                ("motherduck_token", "tok3"),
            ]),
        )
        .unwrap();
        assert_eq!(s.token.unwrap().expose(), "tok2");
        assert_eq!(s.token_source.as_deref(), Some("$MOTHERDUCK_TOKEN"));
    }

    #[test]
    fn profiles_and_errors() {
        let (d, mut g) = home();
        std::fs::write(d.path().join("tok"), "secret-from-file\n").unwrap();
        std::fs::write(
            d.path().join("config.toml"),
            format!(
                "default_profile = \"prod\"\n[profiles.prod]\napi_url = \"https://proxy.example.com\"\ntoken_file = \"{}\"\n",
                d.path().join("tok").display()
            ),
        )
        .unwrap();
        let s = resolve(&g, &with_env(&[])).unwrap();
        assert_eq!(s.api_url.as_str(), "https://proxy.example.com/");
        assert_eq!(s.token.unwrap().expose(), "secret-from-file");
        g.profile = Some("nope".into());
        assert!(resolve(&g, &with_env(&[]))
            .unwrap_err()
            .contains("no profile \"nope\""));
        g.profile = None;
        g.api_url = Some("http://example.com".into());
        assert!(resolve(&g, &with_env(&[]))
            .unwrap_err()
            .contains("only for loopback"));
    }
}
