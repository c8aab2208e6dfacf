//! Short-lived tokens (`POST /v1/tokens/short-lived`): minted for the caller
//! rather than for an account named in the path, through the same pipeline
//! as any other mint (see [`super::mint`]).

use super::{Error, Runtime};
use crate::api::{CreatedToken, SecretString, Token, TokenType};
use chrono::Utc;

impl Runtime {
    /// A one-day read_scaling token for `owner`, minted with `using` (a token of
    /// `owner`'s) or with the admin token (then `owner` is its holder).
    pub fn mint_short_lived(
        &self,
        owner: &str,
        using: Option<&SecretString>,
        context: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<CreatedToken, Error> {
        crate::api::rules::path_username(owner)?;
        if let Some(c) = context {
            crate::api::rules::short_lived_context(c)?;
        }
        let detail = format!(
            "short-lived read_scaling token{}",
            context
                .filter(|c| !c.is_empty())
                .map(|c| format!(", context {}", serde_json::Value::Object(c.clone())))
                .unwrap_or_default()
        );
        self.mint(
            super::mint::Mint {
                action: "create short-lived token",
                owner,
                name: "short-lived",
                detail,
            },
            |overlay| {
                let now = Utc::now();
                let ts = |d: chrono::DateTime<Utc>| {
                    d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                };
                let meta = Token {
                    id: format!("dry-run-{}", uuid::Uuid::new_v4()),
                    name: Some("short-lived".into()),
                    expire_at: Some(ts(now + chrono::Duration::days(1))),
                    created_ts: ts(now),
                    read_only: true,
                    token_type: TokenType::ReadScaling,
                    extra: Default::default(),
                };
                overlay.add_token(owner, meta.clone());
                CreatedToken {
                    meta,
                    token: SecretString::new(format!("dry-run-secret-{}", uuid::Uuid::new_v4())),
                }
            },
            |c, ours| async move { c.create_short_lived(owner, using, context, &*ours).await },
        )
    }
}
