//! Tokens in the emulated organization: listed without their secrets,
//! minted with a secret shown once, revoked by id, expiring by TTL.

use super::auth::{require_admin, require_self_or_admin, Principal};
use super::errors::{field_str, missing, wrong_type, SimError};
use super::state::{random_secret, ts, Org, SimToken};
use crate::api::rules::{self, Violation};
use crate::api::TokenType;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

impl Org {
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
            description: description.map(str::to_string),
            context: None,
        };
        let mut out = token_json(&token);
        out["token"] = json!(token.secret);
        user.tokens.push(token);
        Ok(out)
    }

    /// `POST /v1/tokens/short-lived`: a one-day read_scaling token for the
    /// caller, never outliving the token that asked for it.
    pub fn create_short_lived(
        &mut self,
        bearer: Option<&str>,
        body: &Value,
    ) -> Result<Value, SimError> {
        let (owner, parent_expires) = self.caller(bearer)?;
        match field_str(body, "token_type")? {
            None => return Err(missing("token_type")),
            Some("read_scaling") => {}
            Some(t) => {
                return Err(SimError::invalid(
                    Violation::new(
                        "token_type",
                        format!("token_type {t:?}: short-lived tokens are read_scaling only"),
                    ),
                    &[],
                ))
            }
        }
        let context = match body.get("context") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => {
                let mut out = Map::new();
                for (k, v) in m {
                    let Value::String(v) = v else {
                        return Err(wrong_type(&format!("context.{k}"), "string"));
                    };
                    out.insert(k.to_lowercase(), Value::String(v.clone()));
                }
                Some(out)
            }
            Some(_) => return Err(wrong_type("context", "object")),
        };
        let now = self.now();
        let day = now + Duration::days(1);
        let expires = parent_expires.map_or(day, |p| p.min(day));
        let token = SimToken {
            id: uuid::Uuid::new_v4().to_string(),
            name: "short-lived".into(),
            secret: random_secret(),
            token_type: TokenType::ReadScaling,
            read_only: true,
            created: now,
            expires: Some(expires),
            description: None,
            context,
        };
        let mut out = token_json(&token);
        out["token"] = json!(token.secret);
        self.user_mut(&owner)?.tokens.push(token);
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
    if let Some(d) = &t.description {
        m.insert("description".into(), json!(d));
    }
    Value::Object(m)
}

impl Org {
    /// Whose token `bearer` is, for calls that act as the caller: the user
    /// holding it, or for the organization's admin token its first admin
    /// member. With the token's own expiry.
    pub(super) fn caller(
        &self,
        bearer: Option<&str>,
    ) -> Result<(String, Option<DateTime<Utc>>), SimError> {
        let bearer = bearer
            .filter(|b| !b.is_empty())
            .ok_or_else(SimError::unauthorized)?;
        if bearer == self.admin_token {
            return self
                .order
                .iter()
                .find(|k| {
                    self.users
                        .get(*k)
                        .is_some_and(|u| u.admin && !u.service_account)
                })
                .map(|k| (k.clone(), None))
                .ok_or_else(|| SimError::forbidden("the admin token belongs to no member"));
        }
        let now = self.now();
        for (key, user) in &self.users {
            if let Some(t) = user.tokens.iter().find(|t| t.secret == bearer) {
                if t.expires.is_some_and(|e| e <= now) {
                    return Err(SimError::unauthorized());
                }
                return Ok((key.clone(), t.expires));
            }
        }
        Err(SimError::unauthorized())
    }
}
