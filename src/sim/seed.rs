//! The seed file: an organization described in JSON or TOML.
//!
//! See the README ("Seed files") for the format; `demo.toml` beside this file is
//! the sandbox organization and a complete example.

use crate::api::{ActiveDuckling, DucklingConfig, TokenType};
use serde::Deserialize;
use std::path::Path;

pub const DEMO: &str = include_str!("demo.toml");

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// The admin token the emulator accepts; random when absent.
    #[serde(default)]
    pub admin_token: Option<String>,
    /// Serve the newer `GET /v1/users` (default true). False emulates the older
    /// API, whose unknown route answers a plain-text 404.
    #[serde(default)]
    pub users_endpoint: Option<bool>,
    /// Dive ids that embed sessions may be created for.
    #[serde(default)]
    pub dives: Vec<String>,
    /// Human members of the organization.
    #[serde(default)]
    pub members: Vec<SeedMember>,
    /// Service accounts.
    #[serde(default)]
    pub accounts: Vec<SeedAccount>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedMember {
    pub username: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// A member who left: still listed, with `is_deprovisioned: true`.
    #[serde(default)]
    pub deprovisioned: bool,
    /// Running Ducklings: `GET /v1/active_accounts` lists people too.
    #[serde(default)]
    pub active: Vec<ActiveDuckling>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedAccount {
    pub username: String,
    /// Its tokens may do admin work too (default false).
    #[serde(default)]
    pub admin: bool,
    /// Duckling configuration; the default for new accounts when absent.
    #[serde(default)]
    pub ducklings: Option<DucklingConfig>,
    /// Running Ducklings, as `GET /v1/active_accounts` reports them.
    #[serde(default)]
    pub active: Vec<ActiveDuckling>,
    #[serde(default)]
    pub tokens: Vec<SeedToken>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedToken {
    pub name: String,
    #[serde(default)]
    pub id: Option<String>,
    /// The secret; random when absent. Tests fix it to authenticate with it.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub token_type: Option<TokenType>,
    /// How long ago it was created (`"200d"`); default now.
    #[serde(default)]
    pub age: Option<String>,
    /// Lifetime from creation (`"90d"`); absent means it never expires. A ttl
    /// shorter than the age gives a token that has already expired.
    #[serde(default)]
    pub ttl: Option<String>,
    #[serde(default)]
    pub read_only: Option<bool>,
}

impl Seed {
    pub fn demo() -> Seed {
        parse(DEMO, "toml").expect("the bundled demo seed is valid")
    }

    pub fn load(path: &Path) -> Result<Seed, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read seed file {}: {e}", path.display()))?;
        let kind = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => "json",
            Some("toml") => "toml",
            _ if text.trim_start().starts_with('{') => "json",
            _ => "toml",
        };
        parse(&text, kind).map_err(|e| format!("invalid seed file {}: {e}", path.display()))
    }
}

pub fn parse(text: &str, kind: &str) -> Result<Seed, String> {
    match kind {
        "json" => serde_json::from_str(text).map_err(|e| e.to_string()),
        _ => toml::from_str(text).map_err(|e| e.to_string()),
    }
}
