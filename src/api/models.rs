//! Typed request and response bodies, with the API's own field names.
//!
//! Unknown response fields are kept (`extra`) so that newer server fields reach
//! scripts unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::secret::SecretString;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    #[default]
    ReadWrite,
    ReadScaling,
}

impl TokenType {
    pub const NAMES: &'static str = "read_write, read_scaling";
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::ReadWrite => "read_write",
            TokenType::ReadScaling => "read_scaling",
        }
    }
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "read_write" => Some(Self::ReadWrite),
            "read_scaling" => Some(Self::ReadScaling),
            _ => None,
        }
    }
}

/// Token metadata as listed by `GET /v1/users/{username}/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Token {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_at: Option<String>,
    pub created_ts: String,
    pub read_only: bool,
    pub token_type: TokenType,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The answer to token creation: metadata plus the secret, which the API returns
/// this one time only.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    pub meta: Token,
    pub token: SecretString,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct NewToken {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<TokenType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum InstanceSize {
    Pulse,
    Standard,
    Jumbo,
    Mega,
    Giga,
}

impl InstanceSize {
    pub const ALL: [InstanceSize; 5] = [
        InstanceSize::Pulse,
        InstanceSize::Standard,
        InstanceSize::Jumbo,
        InstanceSize::Mega,
        InstanceSize::Giga,
    ];
    pub const NAMES: &'static str = "pulse, standard, jumbo, mega, giga";
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceSize::Pulse => "pulse",
            InstanceSize::Standard => "standard",
            InstanceSize::Jumbo => "jumbo",
            InstanceSize::Mega => "mega",
            InstanceSize::Giga => "giga",
        }
    }
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

/// One half of a Duckling configuration. `flock_size` exists only on read_scaling.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DucklingPart {
    pub instance_size: InstanceSize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flock_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_seconds: Option<i64>,
}

/// Both Duckling configurations of an account. GET answers it bare; PUT sends it
/// wrapped in `config` (see [`crate::api::Client::set_ducklings`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DucklingConfig {
    pub read_write: DucklingPart,
    pub read_scaling: DucklingPart,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActiveDuckling {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActiveAccount {
    pub username: String,
    pub ducklings: Vec<ActiveDuckling>,
}

/// An organization member from the newer `GET /v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    #[serde(default)]
    pub id: Option<String>,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub is_service_account: Option<bool>,
    #[serde(default)]
    pub is_deprovisioned: Option<bool>,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct EmbedRequest {
    pub username: String,
    /// Deprecated alias of `session_name`: send one or the other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_hint: Option<String>,
    /// Reuses one read-scaling session across embed requests with this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    /// The Dive version to embed (default: the current one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Databases and shares the session may use instead of the Dive's own
    /// (empty: none declared, the session user's whole workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_resources: Option<Vec<Resource>>,
    /// Initial values of the Dive's `useDiveState` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_state: Option<Map<String, Value>>,
}

/// A database or share an embedded Dive may read.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Resource {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}
