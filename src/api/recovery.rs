//! Creates without idempotency keys. The API has none, so a create whose
//! answer was lost (timeout, dropped connection, 502–504) is never replayed
//! blindly: the client looks at what happened first. One loop serves both
//! creates; each says how to look.

use super::endpoints::Username;
use super::error::ApiError;
use super::rules;
use super::transport::{decode, describe_json_error, Auth, Client};
use super::{CreatedToken, NewToken, SecretString, Token};
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::Ordering;

#[derive(Serialize)]
struct NewUser<'a> {
    username: &'a str,
}

/// What looking after an ambiguous failure found.
enum Found<T> {
    /// The create had happened: its result.
    Done(T),
    /// It had not (or its orphans were cleaned up): try again.
    Retry,
    /// Cannot tell: report the original failure.
    Unknown,
}

impl Client {
    /// Runs `create` until it succeeds, fails definitely, or retries run out;
    /// after each ambiguous failure, `look` decides what happened.
    async fn create_resolving<T, C, CF, L, LF>(
        &self,
        mut create: C,
        mut look: L,
    ) -> Result<T, ApiError>
    where
        C: FnMut() -> CF,
        CF: std::future::Future<Output = Result<T, ApiError>>,
        L: FnMut() -> LF,
        LF: std::future::Future<Output = Found<T>>,
    {
        let mut attempt = 1;
        loop {
            let err = match create().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_ambiguous() && attempt < self.retry.max_attempts => e,
                Err(e) => return Err(e),
            };
            match look().await {
                Found::Done(v) => return Ok(v),
                Found::Retry => {}
                Found::Unknown => return Err(err),
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.retry.backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// `POST /v1/users`: create a service account. After an ambiguous failure
    /// the account is looked up before anything is retried.
    pub async fn create_user(&self, username: &str) -> Result<String, ApiError> {
        rules::username(username)?;
        self.create_resolving(
            || async move {
                self.call::<Username, _>(
                    Method::POST,
                    &["v1", "users"],
                    Some(&NewUser { username }),
                )
                .await
                .map(|r| r.username)
            },
            || async move {
                match self.get_ducklings(username).await {
                    Ok(_) => {
                        tracing::info!(
                            username,
                            "the create went through before the connection failed"
                        );
                        Found::Done(username.to_string())
                    }
                    Err(n) if n.is_not_found() => Found::Retry,
                    Err(_) => Found::Unknown,
                }
            },
        )
        .await
    }

    /// `POST /v1/users/{username}/tokens`: mint a token; the secret comes back once.
    ///
    /// After an ambiguous failure, any token of this name that the account did
    /// not hold before the request (its tokens are listed once per run, before
    /// the first create) and that is not `ours` (the caller's journal of tokens
    /// it received) is an orphan whose secret nobody received: it is revoked,
    /// then a fresh token is minted. No clock is consulted, so a skewed or lying
    /// one can neither hide an orphan nor expose someone else's token.
    pub async fn create_token(
        &self,
        username: &str,
        new: &NewToken,
        ours: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<CreatedToken, ApiError> {
        rules::new_token(username, new)?;
        let segments = ["v1", "users", username, "tokens"];
        // What the account holds before the request: none of it can be the
        // request's orphan, whatever the clocks say. Listed once per run.
        let before = match self.seen_tokens(username) {
            Some(b) => b,
            None => {
                self.list_tokens(username).await?;
                self.seen_tokens(username).unwrap_or_default()
            }
        };
        self.create_resolving(
            || {
                async move {
                    let body = self
                        .call::<serde_json::Map<String, Value>, _>(Method::POST, &segments, Some(new))
                        .await?;
                    self.created(username, body, &segments).await
                }
            },
            || async {
                let listed = self.list_tokens(username).await;
                // Anything of this name that was not there before and that
                // nobody received: no clock is involved.
                let known = |id: &str| ours(id) || before.contains(&id.to_lowercase());
                let orphans: Vec<Token> = match listed {
                    Ok(tokens) => orphans_of(tokens, &new.name, chrono::DateTime::<chrono::Utc>::MIN_UTC, &known),
                    Err(_) => return Found::Unknown,
                };
                for orphan in orphans {
                    tracing::warn!(username, token_id = %crate::output::escape(&orphan.id), "revoking a token minted by a request whose answer was lost");
                    match self.delete_token(username, &orphan.id).await {
                        Ok(()) => {}
                        Err(e) if e.is_not_found() => {}
                        Err(_) => return Found::Unknown,
                    }
                }
                Found::Retry
            },
        )
        .await
    }

    /// From when (server time) a token minted by a request that began at
    /// `began` (our time) may date: the earlier of our clock and the server's
    /// (from its `Date` headers, when believable), with slack.
    pub fn orphan_window(
        &self,
        began: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        // The earlier of the two clocks' reading, with slack: a clock ahead
        // or behind (ours or the server's) cannot hide an orphan.
        let local = began - chrono::Duration::seconds(60);
        match self.server_time(began) {
            Some(t) => local.min(t - chrono::Duration::seconds(30)),
            None => local,
        }
    }

    /// `POST /v1/tokens/short-lived`: a one-day read_scaling token for the
    /// caller, `owner`: the holder of `using` (a token of theirs), or of the
    /// admin token when `using` is `None`. `context` (string keys and values)
    /// is readable in secure-view policies. An answer that was lost is resolved
    /// like any create: a new read_scaling token of `owner` that was not there
    /// before and that nobody received is revoked, and the create is tried again.
    pub async fn create_short_lived(
        &self,
        owner: &str,
        using: Option<&SecretString>,
        context: Option<&serde_json::Map<String, Value>>,
        ours: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<CreatedToken, ApiError> {
        rules::path_username(owner)?;
        if let Some(c) = context {
            rules::short_lived_context(c)?;
        }
        #[derive(Serialize)]
        struct Body<'a> {
            token_type: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            context: Option<&'a serde_json::Map<String, Value>>,
        }
        let body = Body {
            token_type: "read_scaling",
            context,
        };
        let segments = ["v1", "tokens", "short-lived"];
        let before = match self.seen_tokens(owner) {
            Some(b) => b,
            None => {
                self.list_tokens(owner).await?;
                self.seen_tokens(owner).unwrap_or_default()
            }
        };
        let body = &body;
        self.create_resolving(
            || async move {
                let auth = match using {
                    Some(t) => Auth::Other(t),
                    None => Auth::Admin,
                };
                let (status, bytes) = self
                    .send(Method::POST, &segments, &[], Some(body), auth)
                    .await?;
                let map: serde_json::Map<String, Value> =
                    decode("POST", "/v1/tokens/short-lived", status, &bytes)?;
                self.created(owner, map, &segments).await
            },
            || async {
                let known = |id: &str| ours(id) || before.contains(&id.to_lowercase());
                match self.list_tokens(owner).await {
                    Ok(tokens) => {
                        for t in tokens.iter().filter(|t| {
                            t.token_type == super::TokenType::ReadScaling && !known(&t.id)
                        }) {
                            tracing::warn!(owner, token_id = %crate::output::escape(&t.id), "revoking a short-lived token whose answer was lost");
                            match self.delete_token(owner, &t.id).await {
                                Ok(()) => {}
                                Err(e) if e.is_not_found() => {}
                                Err(_) => return Found::Unknown,
                            }
                        }
                        Found::Retry
                    }
                    Err(_) => Found::Unknown,
                }
            },
        )
        .await
    }

    /// The secret and metadata from a create's answer. An answer that minted
    /// a token but does not add up (no secret, metadata that does not decode)
    /// must not leave that token live: it is revoked when its id is known.
    async fn created(
        &self,
        username: &str,
        mut body: serde_json::Map<String, Value>,
        segments: &[&str],
    ) -> Result<CreatedToken, ApiError> {
        let path = self.url(segments)?.path().to_string();
        let secret = match body.remove("token") {
            Some(Value::String(s)) if !s.is_empty() => Some(SecretString::new(s)),
            _ => None,
        };
        if let Some(s) = &secret {
            crate::redact::register(s.expose());
        }
        let id = body.get("id").and_then(Value::as_str).map(str::to_string);
        let meta = serde_json::from_value::<Token>(Value::Object(body));
        match (secret, meta) {
            (Some(token), Ok(meta)) => Ok(CreatedToken { meta, token }),
            (secret, meta) => {
                let why = match (&secret, &meta) {
                    (None, _) => "the response has no `token` field".to_string(),
                    (_, Err(e)) => describe_json_error(e),
                    _ => unreachable!("both present is Ok above"),
                };
                let undone = match id.as_deref() {
                    Some(id) => match self.delete_token(username, id).await {
                        Ok(()) => format!(
                            "; the token it minted ({}) was revoked",
                            crate::output::escape(id)
                        ),
                        Err(e) => format!(
                            "; the token it minted ({}) could not be revoked: {e}",
                            crate::output::escape(id)
                        ),
                    },
                    None => {
                        "; if a token was minted, the run's clean-up looks for it by name".into()
                    }
                };
                Err(ApiError::Decode {
                    method: "POST".into(),
                    path,
                    status: 200,
                    detail: format!("{why}{undone}"),
                })
            }
        }
    }
}

/// Tokens named `name`, created at or after `since`, that are not `ours`: what
/// a create whose answer was lost may have minted.
pub fn orphans_of(
    tokens: Vec<Token>,
    name: &str,
    since: chrono::DateTime<chrono::Utc>,
    ours: &(dyn Fn(&str) -> bool + Sync),
) -> Vec<Token> {
    tokens
        .into_iter()
        .filter(|t| t.name.as_deref() == Some(name))
        .filter(|t| chrono::DateTime::parse_from_rfc3339(&t.created_ts).is_ok_and(|c| c >= since))
        .filter(|t| !ours(&t.id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, name: &str, created: &str) -> Token {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "created_ts": created, "token_type": "read_write", "read_only": false,
        }))
        .unwrap()
    }

    /// Only tokens of the name, from the window, that nobody received.
    #[test]
    fn orphans_are_new_same_named_and_not_ours() {
        let since = chrono::DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let tokens = vec![
            token("a", "ci", "2026-11-29T12:00:01Z"),
            token("b", "ci", "2026-11-29T11:59:00Z"),
            token("c", "other", "2026-11-29T12:00:02Z"),
            token("d", "ci", "2026-11-29T12:00:03Z"),
            token("e", "ci", "not a time"),
        ];
        let ours = |id: &str| id == "d";
        let found: Vec<String> = orphans_of(tokens, "ci", since, &ours)
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(found, ["a"]);
    }
}
