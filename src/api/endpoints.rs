//! The typed operations of the Admin API (creates are in `recovery`).

use super::error::ApiError;
use super::rules;
use super::transport::{decode, Auth, Client, USERS_NO, USERS_YES};
use super::{ActiveAccount, DucklingConfig, EmbedRequest, SecretString, Token, User};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

#[derive(Deserialize)]
struct TokenList {
    tokens: Vec<Token>,
}

#[derive(Deserialize)]
struct AccountList {
    accounts: Vec<ActiveAccount>,
}

#[derive(Deserialize)]
struct UserPage {
    users: Vec<User>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Username {
    pub(super) username: String,
}

#[derive(Deserialize)]
struct Session {
    session: String,
}

#[derive(Serialize)]
struct PutConfig<'a> {
    config: &'a DucklingConfig,
}

impl Client {
    /// `DELETE /v1/users/{username}`: delete an account and all of its data.
    pub async fn delete_user(&self, username: &str) -> Result<String, ApiError> {
        rules::path_username(username)?;
        let r: Username = self
            .call::<_, ()>(Method::DELETE, &["v1", "users", username], None)
            .await?;
        Ok(r.username)
    }

    /// `GET /v1/users/{username}/tokens`: token metadata (never secrets), each
    /// id once even if the server repeats it.
    pub async fn list_tokens(&self, username: &str) -> Result<Vec<Token>, ApiError> {
        rules::path_username(username)?;
        let r: TokenList = self
            .call::<_, ()>(Method::GET, &["v1", "users", username, "tokens"], None)
            .await?;
        let mut seen = std::collections::HashSet::new();
        let tokens: Vec<Token> = r
            .tokens
            .into_iter()
            .filter(|t| seen.insert(t.id.to_lowercase()))
            .collect();
        self.listed(username, &tokens);
        Ok(tokens)
    }

    /// `DELETE /v1/users/{username}/tokens/{token_id}`: revoke a token by id.
    pub async fn delete_token(&self, username: &str, token_id: &str) -> Result<(), ApiError> {
        rules::path_username(username)?;
        rules::token_id(token_id)?;
        let segments = ["v1", "users", username, "tokens", token_id];
        // The body is `{}` by the spec; an empty body is tolerated too.
        self.send::<()>(Method::DELETE, &segments, &[], None, Auth::Admin)
            .await?;
        Ok(())
    }

    /// `GET /v1/users/{username}/instances`.
    pub async fn get_ducklings(&self, username: &str) -> Result<DucklingConfig, ApiError> {
        rules::path_username(username)?;
        self.call::<_, ()>(Method::GET, &["v1", "users", username, "instances"], None)
            .await
    }

    /// `PUT /v1/users/{username}/instances`: full replacement, body wrapped in `config`.
    pub async fn set_ducklings(
        &self,
        username: &str,
        config: &DucklingConfig,
    ) -> Result<DucklingConfig, ApiError> {
        rules::path_username(username)?;
        rules::duckling_config(config)?;
        self.call(
            Method::PUT,
            &["v1", "users", username, "instances"],
            Some(&PutConfig { config }),
        )
        .await
    }

    /// `GET /v1/active_accounts`: accounts with running Ducklings, each once.
    pub async fn active_accounts(&self) -> Result<Vec<ActiveAccount>, ApiError> {
        let r: AccountList = self
            .call::<_, ()>(Method::GET, &["v1", "active_accounts"], None)
            .await?;
        let mut seen = std::collections::HashSet::new();
        Ok(r.accounts
            .into_iter()
            .filter(|a| seen.insert(a.username.to_lowercase()))
            .collect())
    }

    /// `POST /v1/dives/{dive_id}/embed-session`: an opaque session string (a secret).
    pub async fn embed_session(
        &self,
        dive_id: &str,
        req: &EmbedRequest,
    ) -> Result<SecretString, ApiError> {
        rules::dive_id(dive_id)?;
        rules::embed_request(req)?;
        let r: Session = self
            .call(
                Method::POST,
                &["v1", "dives", dive_id, "embed-session"],
                Some(req),
            )
            .await?;
        let session = SecretString::new(r.session);
        crate::redact::register(session.expose());
        Ok(session)
    }

    /// `GET /v1/users`, all pages, de-duplicated by id. `None` when this server
    /// has no such route (older API): the answer is remembered.
    pub async fn list_users(&self) -> Result<Option<Vec<User>>, ApiError> {
        self.list_users_where(&[]).await
    }

    /// `GET /v1/users` with the API's filters (`is_service_account`,
    /// `is_deprovisioned`), all pages.
    pub async fn list_users_where(
        &self,
        filters: &[(&'static str, bool)],
    ) -> Result<Option<Vec<User>>, ApiError> {
        if self.users_route.load(Ordering::Relaxed) == USERS_NO {
            return Ok(None);
        }
        let mut users: Vec<User> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut page_token: Option<String> = None;
        // Bounded: a server that keeps handing out page tokens cannot loop us forever.
        for _ in 0..10_000 {
            let mut query = vec![("limit", "1000".to_string())];
            query.extend(filters.iter().map(|(k, v)| (*k, v.to_string())));
            if let Some(t) = &page_token {
                query.push(("page_token", t.clone()));
            }
            let segments = ["v1", "users"];
            let result = self
                .send::<()>(Method::GET, &segments, &query, None, Auth::Admin)
                .await;
            let (status, bytes) = match result {
                Err(ApiError::Status {
                    status: 404,
                    code: None,
                    ..
                }) => {
                    self.users_route.store(USERS_NO, Ordering::Relaxed);
                    return Ok(None);
                }
                other => other?,
            };
            self.users_route.store(USERS_YES, Ordering::Relaxed);
            let page: UserPage = decode("GET", "/v1/users", status, &bytes)?;
            for u in page.users {
                let key = u.id.clone().unwrap_or_else(|| u.username.to_lowercase());
                if seen.insert(key) {
                    users.push(u);
                }
            }
            match page.next_page_token {
                Some(t) if !t.is_empty() && Some(&t) != page_token.as_ref() => page_token = Some(t),
                _ => break,
            }
        }
        Ok(Some(users))
    }

    /// Whether `secret` authenticates as `username`: the token lists its own
    /// account's tokens (allowed for every user's own account).
    pub async fn verify_token(
        &self,
        username: &str,
        secret: &SecretString,
    ) -> Result<bool, ApiError> {
        rules::path_username(username)?;
        let segments = ["v1", "users", username, "tokens"];
        match self
            .send::<()>(Method::GET, &segments, &[], None, Auth::Other(secret))
            .await
        {
            Ok(_) => Ok(true),
            Err(ApiError::Status {
                status: 401 | 403, ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
