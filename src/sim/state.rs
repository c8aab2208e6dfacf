//! The emulated organization and the rules the real service applies to it.
//!
//! Handlers in `server.rs` only parse HTTP; every decision (who may do what,
//! what is valid, what a response contains) is made here.

use super::auth::{require_admin, Principal};
use super::errors::{field_str, missing, parse_config, wrong_type, SimError};
use super::seed::{Seed, SeedToken};
use crate::api::rules::{self, Violation};
use crate::api::{ActiveDuckling, DucklingConfig, DucklingPart, InstanceSize, TokenType};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone)]
pub struct SimToken {
    pub id: String,
    pub name: String,
    pub secret: String,
    pub token_type: TokenType,
    pub read_only: bool,
    pub created: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
    pub description: Option<String>,
    /// A short-lived token's context (keys lowercased).
    pub context: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone)]
pub struct SimUser {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub service_account: bool,
    pub deprovisioned: bool,
    pub admin: bool,
    pub roles: Vec<String>,
    pub config: DucklingConfig,
    pub active: Vec<ActiveDuckling>,
    pub tokens: Vec<SimToken>,
}

/// The whole organization. Users are keyed by lower-cased username because the
/// service treats usernames case-insensitively.
#[derive(Debug, Clone)]
pub struct Org {
    pub users: BTreeMap<String, SimUser>,
    /// Creation order, for stable listing.
    pub order: Vec<String>,
    pub admin_token: String,
    pub dives: Vec<String>,
    pub users_endpoint: bool,
    /// Added to the wall clock, so tests can let time pass.
    pub clock_offset: Duration,
    /// Secrets of tokens revoked so far (tests check they no longer work).
    pub revoked: HashMap<String, String>,
}

pub fn default_config() -> DucklingConfig {
    DucklingConfig {
        read_write: DucklingPart {
            instance_size: InstanceSize::Standard,
            flock_size: None,
            cooldown_seconds: Some(60),
        },
        read_scaling: DucklingPart {
            instance_size: InstanceSize::Standard,
            flock_size: Some(4),
            cooldown_seconds: Some(60),
        },
    }
}

pub fn random_secret() -> String {
    // Shaped like the service's JWTs so that redaction heuristics meet real-looking values.
    let mut rng = rand::rng();
    format!(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}.{}",
        Alphanumeric.sample_string(&mut rng, 48),
        Alphanumeric.sample_string(&mut rng, 43)
    )
}

pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn seed_seconds(field: &str, value: &Option<String>) -> Result<i64, String> {
    match value {
        None => Ok(0),
        Some(v) => crate::duration::parse_seconds(v).map_err(|e| format!("{field}: {e}")),
    }
}

impl Org {
    pub fn from_seed(seed: &Seed) -> Result<Org, String> {
        let mut org = Org {
            users: BTreeMap::new(),
            order: Vec::new(),
            admin_token: seed
                .admin_token
                .clone()
                .unwrap_or_else(|| format!("sim_admin_{}", random_secret())),
            dives: seed.dives.iter().map(|d| d.to_lowercase()).collect(),
            users_endpoint: seed.users_endpoint.unwrap_or(true),
            clock_offset: Duration::zero(),
            revoked: HashMap::new(),
        };
        for d in &seed.dives {
            rules::dive_id(d).map_err(|v| v.message)?;
        }
        for m in &seed.members {
            rules::path_username(&m.username).map_err(|v| v.message)?;
            org.insert(SimUser {
                id: uuid::Uuid::new_v4().to_string(),
                username: m.username.clone(),
                email: m.email.clone(),
                service_account: false,
                deprovisioned: m.deprovisioned,
                admin: m.roles.iter().any(|r| r == "admin"),
                roles: m.roles.clone(),
                config: default_config(),
                active: m.active.clone(),
                tokens: vec![],
            })?;
        }
        let now = org.now();
        for a in &seed.accounts {
            rules::username(&a.username).map_err(|v| v.message)?;
            let config = a.ducklings.clone().unwrap_or_else(default_config);
            rules::duckling_config(&config)
                .map_err(|v| format!("account {}: {}: {}", a.username, v.field, v.message))?;
            let tokens = a
                .tokens
                .iter()
                .map(|t| seed_token(t, now))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("account {}: {e}", a.username))?;
            org.insert(SimUser {
                id: uuid::Uuid::new_v4().to_string(),
                username: a.username.clone(),
                email: None,
                service_account: true,
                deprovisioned: false,
                admin: a.admin,
                roles: vec![],
                config,
                active: a.active.clone(),
                tokens,
            })?;
        }
        Ok(org)
    }

    fn insert(&mut self, user: SimUser) -> Result<(), String> {
        let key = user.username.to_lowercase();
        if self.users.contains_key(&key) {
            return Err(format!("username {} appears twice", user.username));
        }
        self.order.push(key.clone());
        self.users.insert(key, user);
        Ok(())
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    /// Looks a bearer token up: the admin token, or a live token of some user.
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<Principal, SimError> {
        let bearer = bearer
            .filter(|b| !b.is_empty())
            .ok_or_else(SimError::unauthorized)?;
        if bearer == self.admin_token {
            return Ok(Principal::Admin);
        }
        let now = self.now();
        for (key, user) in &self.users {
            if let Some(t) = user.tokens.iter().find(|t| t.secret == bearer) {
                if t.expires.is_some_and(|e| e <= now) {
                    return Err(SimError::unauthorized());
                }
                if user.admin && t.token_type == TokenType::ReadWrite {
                    return Ok(Principal::Admin);
                }
                return Ok(Principal::User {
                    key: key.clone(),
                    token_type: t.token_type,
                });
            }
        }
        Err(SimError::unauthorized())
    }

    pub(super) fn user(&self, username: &str) -> Result<&SimUser, SimError> {
        self.users
            .get(&username.to_lowercase())
            .ok_or_else(|| SimError::not_found(format!("User {username} not found")))
    }

    pub(super) fn user_mut(&mut self, username: &str) -> Result<&mut SimUser, SimError> {
        self.users
            .get_mut(&username.to_lowercase())
            .ok_or_else(|| SimError::not_found(format!("User {username} not found")))
    }

    pub(super) fn path_user(username: &str) -> Result<(), SimError> {
        rules::path_username(username).map_err(|v| SimError::invalid(v, &[]))
    }

    pub fn create_user(&mut self, who: &Principal, body: &Value) -> Result<Value, SimError> {
        require_admin(who)?;
        let username = field_str(body, "username")?.ok_or_else(|| missing("username"))?;
        rules::username(username).map_err(|v| SimError::invalid(v, &[]))?;
        if self.users.contains_key(&username.to_lowercase()) {
            return Err(SimError::bad_request(format!(
                "User with username {username} already exists"
            )));
        }
        self.insert(SimUser {
            id: uuid::Uuid::new_v4().to_string(),
            username: username.to_string(),
            email: None,
            service_account: true,
            deprovisioned: false,
            admin: false,
            roles: vec![],
            config: default_config(),
            active: vec![],
            tokens: vec![],
        })
        .map_err(SimError::bad_request)?;
        Ok(json!({ "username": username }))
    }

    pub fn delete_user(&mut self, who: &Principal, username: &str) -> Result<Value, SimError> {
        require_admin(who)?;
        Self::path_user(username)?;
        let key = username.to_lowercase();
        let user = self
            .users
            .remove(&key)
            .ok_or_else(|| SimError::not_found(format!("User {username} not found")))?;
        self.order.retain(|k| k != &key);
        for t in user.tokens {
            self.revoked.insert(t.secret, t.id);
        }
        Ok(json!({ "username": user.username }))
    }

    pub fn get_config(&self, who: &Principal, username: &str) -> Result<Value, SimError> {
        require_admin(who)?;
        Self::path_user(username)?;
        Ok(config_json(&self.user(username)?.config))
    }

    pub fn put_config(
        &mut self,
        who: &Principal,
        username: &str,
        body: &Value,
    ) -> Result<Value, SimError> {
        require_admin(who)?;
        Self::path_user(username)?;
        let config = body
            .get("config")
            .filter(|c| !c.is_null())
            .ok_or_else(|| missing("config"))?;
        let config = parse_config(config)?;
        let config = with_default_cooldowns(config);
        let user = self.user_mut(username)?;
        user.config = config;
        Ok(config_json(&user.config))
    }

    pub fn active_accounts(&self, who: &Principal) -> Result<Value, SimError> {
        require_admin(who)?;
        let accounts: Vec<Value> = self
            .order
            .iter()
            .filter_map(|k| self.users.get(k))
            .filter(|u| !u.active.is_empty())
            .map(|u| json!({"username": u.username, "ducklings": u.active}))
            .collect();
        Ok(json!({ "accounts": accounts }))
    }

    pub fn embed_session(
        &self,
        who: &Principal,
        dive_id: &str,
        body: &Value,
    ) -> Result<Value, SimError> {
        require_admin(who)?;
        rules::dive_id(dive_id).map_err(|v| SimError::invalid(v, &[]))?;
        let username = field_str(body, "username")?.ok_or_else(|| missing("username"))?;
        Self::path_user(username)?;
        let req: crate::api::EmbedRequest = serde_json::from_value(body.clone())
            .map_err(|e| SimError::bad_request(format!("invalid embed request: {e}")))?;
        rules::embed_request(&req).map_err(|v| SimError::invalid(v, &[]))?;
        if !self.dives.contains(&dive_id.to_lowercase()) {
            return Err(SimError::not_found(format!("Dive {dive_id} not found")));
        }
        let user = self.user(username)?;
        if !user.service_account {
            return Err(SimError::bad_request(
                "embed sessions can only run as a service account",
            ));
        }
        Ok(json!({ "session": format!("mdembed_{}", random_secret()) }))
    }

    pub fn list_users(
        &self,
        who: &Principal,
        query: &HashMap<String, String>,
    ) -> Result<Value, SimError> {
        require_admin(who)?;
        let flag = |k: &str| -> Result<Option<bool>, SimError> {
            match query.get(k).map(String::as_str) {
                None => Ok(None),
                Some("true") => Ok(Some(true)),
                Some("false") => Ok(Some(false)),
                Some(_) => Err(wrong_type(k, "boolean")),
            }
        };
        let service = flag("is_service_account")?;
        let deprovisioned = flag("is_deprovisioned")?;
        let limit: usize = match query.get("limit") {
            None => 100,
            Some(l) => l
                .parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    SimError::invalid(
                        Violation::new("limit", "limit must be an integer from 1 to 1000"),
                        &[],
                    )
                })?,
        };
        let start: usize = match query.get("page_token") {
            None => 0,
            Some(t) => t
                .strip_prefix("p")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| SimError::bad_request("invalid page_token"))?,
        };
        // The API orders the list by username.
        let mut matching: Vec<&SimUser> = self
            .order
            .iter()
            .filter_map(|k| self.users.get(k))
            .filter(|u| service.is_none_or(|s| u.service_account == s))
            .filter(|u| deprovisioned.is_none_or(|d| u.deprovisioned == d))
            .collect();
        matching.sort_by_key(|u| u.username.to_lowercase());
        let page: Vec<Value> = matching
            .iter()
            .skip(start)
            .take(limit)
            .map(|u| {
                json!({
                    "id": u.id,
                    "username": u.username,
                    "email": u.email.clone().unwrap_or_default(),
                    "first_name": null,
                    "last_name": null,
                    "is_service_account": u.service_account,
                    "is_deprovisioned": u.deprovisioned,
                    "roles": u.roles,
                })
            })
            .collect();
        let next = start + page.len();
        let next_token = (next < matching.len()).then(|| format!("p{next}"));
        Ok(json!({"users": page, "total_count": matching.len(), "next_page_token": next_token}))
    }
}

fn config_json(c: &DucklingConfig) -> Value {
    serde_json::to_value(c).expect("config serializes")
}

fn with_default_cooldowns(mut c: DucklingConfig) -> DucklingConfig {
    for part in [&mut c.read_write, &mut c.read_scaling] {
        if part.instance_size != InstanceSize::Pulse && part.cooldown_seconds.is_none() {
            part.cooldown_seconds = Some(60);
        }
    }
    c
}

fn seed_token(t: &SeedToken, now: DateTime<Utc>) -> Result<SimToken, String> {
    rules::token_name(&t.name).map_err(|v| v.message)?;
    let age = seed_seconds("age", &t.age)?;
    let created = now - Duration::seconds(age);
    let expires = match &t.ttl {
        None => None,
        Some(_) => Some(created + Duration::seconds(seed_seconds("ttl", &t.ttl)?)),
    };
    Ok(SimToken {
        id: t
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        name: t.name.clone(),
        secret: t.secret.clone().unwrap_or_else(random_secret),
        token_type: t.token_type.unwrap_or_default(),
        read_only: t.read_only.unwrap_or(false),
        created,
        expires,
        description: None,
        context: None,
    })
}
