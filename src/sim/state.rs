//! The emulated organization and the rules the real service applies to it.
//!
//! Handlers in `server.rs` only parse HTTP; every decision (who may do what,
//! what is valid, what a response contains) is made here.

use super::seed::{Seed, SeedToken};
use crate::api::rules::{self, Violation};
use crate::api::{ActiveDuckling, DucklingConfig, DucklingPart, InstanceSize, TokenType};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

/// An error the emulator answers with: status, JSON `{code, message, issues}`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub issues: Vec<Value>,
}

impl SimError {
    pub fn body(&self) -> Value {
        json!({"code": self.code, "message": self.message, "issues": self.issues})
    }
    pub fn unauthorized() -> Self {
        Self {
            status: 401,
            code: "UNAUTHORIZED",
            message: "Invalid Credentials".into(),
            issues: vec![],
        }
    }
    pub fn forbidden(why: &str) -> Self {
        Self {
            status: 403,
            code: "FORBIDDEN",
            message: "Unauthorized".into(),
            issues: vec![json!({"message": why})],
        }
    }
    pub fn not_found(what: String) -> Self {
        Self {
            status: 404,
            code: "NOT_FOUND",
            message: what,
            issues: vec![],
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code: "BAD_REQUEST",
            message: message.into(),
            issues: vec![],
        }
    }
    /// A failed rule, with zod-style issue `{message, path}`.
    pub fn invalid(v: Violation, prefix: &[&str]) -> Self {
        let mut path: Vec<Value> = prefix.iter().map(|p| json!(p)).collect();
        path.extend(v.field.split('.').map(|p| json!(p)));
        Self {
            status: 400,
            code: "BAD_REQUEST",
            message: v.message.clone(),
            issues: vec![json!({"message": v.message, "path": path})],
        }
    }
}

const ADMIN_ONLY: &str = "minimum role org_admin is required";

/// Who a bearer token speaks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    Admin,
    /// A user's own token (service account or member), by lower-cased username.
    User {
        key: String,
        token_type: TokenType,
    },
}

#[derive(Debug, Clone)]
pub struct SimToken {
    pub id: String,
    pub name: String,
    pub secret: String,
    pub token_type: TokenType,
    pub read_only: bool,
    pub created: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct SimUser {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub service_account: bool,
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

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn seed_seconds(field: &str, value: &Option<String>) -> Result<i64, String> {
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
                admin: m.roles.iter().any(|r| r == "admin"),
                roles: m.roles.clone(),
                config: default_config(),
                active: vec![],
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

    fn user(&self, username: &str) -> Result<&SimUser, SimError> {
        self.users
            .get(&username.to_lowercase())
            .ok_or_else(|| SimError::not_found(format!("User {username} not found")))
    }

    fn user_mut(&mut self, username: &str) -> Result<&mut SimUser, SimError> {
        self.users
            .get_mut(&username.to_lowercase())
            .ok_or_else(|| SimError::not_found(format!("User {username} not found")))
    }

    fn path_user(username: &str) -> Result<(), SimError> {
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

    pub fn list_tokens(&self, who: &Principal, username: &str) -> Result<Value, SimError> {
        Self::path_user(username)?;
        require_self_or_admin(who, username, true)?;
        let now = self.now();
        let user = self.user(username)?;
        let tokens: Vec<Value> = user
            .tokens
            .iter()
            .filter(|t| t.expires.is_none_or(|e| e > now))
            .map(token_json)
            .collect();
        Ok(json!({ "tokens": tokens }))
    }

    pub fn create_token(
        &mut self,
        who: &Principal,
        username: &str,
        body: &Value,
    ) -> Result<Value, SimError> {
        Self::path_user(username)?;
        require_self_or_admin(who, username, false)?;
        let name = field_str(body, "name")?.ok_or_else(|| missing("name"))?;
        rules::token_name(name).map_err(|v| SimError::invalid(v, &[]))?;
        let ttl = match body.get("ttl") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => {
                let secs = n.as_f64().unwrap_or(f64::NAN);
                if secs.fract() != 0.0 {
                    return Err(SimError::invalid(
                        Violation::new("ttl", "ttl must be a whole number of seconds"),
                        &[],
                    ));
                }
                let secs = secs as i64;
                rules::ttl(secs).map_err(|v| SimError::invalid(v, &[]))?;
                Some(secs)
            }
            Some(_) => return Err(wrong_type("ttl", "number")),
        };
        let token_type = match field_str(body, "token_type")? {
            None => TokenType::ReadWrite,
            Some(t) => TokenType::parse(t).ok_or_else(|| {
                SimError::invalid(
                    Violation::new(
                        "token_type",
                        format!("token_type {t:?} is not one of {}", TokenType::NAMES),
                    ),
                    &[],
                )
            })?,
        };
        let description = field_str(body, "description")?;
        if let Some(d) = description {
            if d.is_empty() || d.chars().count() > 1000 {
                return Err(SimError::invalid(
                    Violation::new("description", "description must be 1 to 1000 characters"),
                    &[],
                ));
            }
        }
        let now = self.now();
        let user = self.user_mut(username)?;
        if !user.service_account && *who == Principal::Admin {
            return Err(SimError::forbidden(
                "admins can create tokens only for service accounts and themselves",
            ));
        }
        let token = SimToken {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            secret: random_secret(),
            token_type,
            read_only: false,
            created: now,
            expires: ttl.map(|s| now + Duration::seconds(s)),
        };
        let mut out = token_json(&token);
        out["token"] = json!(token.secret);
        user.tokens.push(token);
        Ok(out)
    }

    pub fn delete_token(
        &mut self,
        who: &Principal,
        username: &str,
        token_id: &str,
    ) -> Result<Value, SimError> {
        require_admin(who)?;
        Self::path_user(username)?;
        let user = self.user_mut(username)?;
        let pos = user
            .tokens
            .iter()
            .position(|t| t.id.eq_ignore_ascii_case(token_id))
            .ok_or_else(|| SimError::not_found(format!("Token {token_id} not found")))?;
        let token = user.tokens.remove(pos);
        self.revoked.insert(token.secret, token.id);
        Ok(json!({}))
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
        if let Some(h) = field_str(body, "session_hint")? {
            rules::session_hint(h).map_err(|v| SimError::invalid(v, &[]))?;
        }
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
        let matching: Vec<&SimUser> = self
            .order
            .iter()
            .filter_map(|k| self.users.get(k))
            .filter(|u| service.is_none_or(|s| u.service_account == s))
            .filter(|_| deprovisioned != Some(true))
            .collect();
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
                    "is_deprovisioned": false,
                    "roles": u.roles,
                })
            })
            .collect();
        let next = start + page.len();
        let next_token = (next < matching.len()).then(|| format!("p{next}"));
        Ok(json!({"users": page, "total_count": matching.len(), "next_page_token": next_token}))
    }
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
    })
}

fn require_admin(who: &Principal) -> Result<(), SimError> {
    match who {
        Principal::Admin => Ok(()),
        Principal::User { .. } => Err(SimError::forbidden(ADMIN_ONLY)),
    }
}

/// A user may list (any token type) and create (read/write token) their own tokens.
fn require_self_or_admin(who: &Principal, username: &str, read: bool) -> Result<(), SimError> {
    match who {
        Principal::Admin => Ok(()),
        Principal::User { key, token_type }
            if *key == username.to_lowercase() && (read || *token_type == TokenType::ReadWrite) =>
        {
            Ok(())
        }
        Principal::User { .. } => Err(SimError::forbidden(ADMIN_ONLY)),
    }
}

fn token_json(t: &SimToken) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(t.id));
    m.insert("name".into(), json!(t.name));
    if let Some(e) = t.expires {
        m.insert("expire_at".into(), json!(ts(e)));
    }
    m.insert("created_ts".into(), json!(ts(t.created)));
    m.insert("read_only".into(), json!(t.read_only));
    m.insert("token_type".into(), json!(t.token_type.as_str()));
    Value::Object(m)
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

fn missing(field: &str) -> SimError {
    SimError::invalid(Violation::new(field, format!("{field} is required")), &[])
}

fn wrong_type(field: &str, ty: &str) -> SimError {
    SimError::invalid(
        Violation::new(field, format!("{field} must be a {ty}")),
        &[],
    )
}

fn field_str<'a>(body: &'a Value, field: &str) -> Result<Option<&'a str>, SimError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(field, "string")),
    }
}

fn parse_config(v: &Value) -> Result<DucklingConfig, SimError> {
    rules::parse_config(v).map_err(|v| SimError::invalid(v, &["config"]))
}
