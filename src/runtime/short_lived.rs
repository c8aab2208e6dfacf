//! Short-lived tokens (`POST /v1/tokens/short-lived`): minted for the caller
//! rather than for an account named in the path, but under the same rules as
//! any other mint: admitted by the write pipeline, journaled as an attempt
//! before the request, held by the ledger until delivered, revealed or
//! revoked.

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
        self.admit()?;
        if let Some(mut overlay) = self.overlay() {
            let now = Utc::now();
            let ts =
                |d: chrono::DateTime<Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
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
            drop(overlay);
            self.plan("create short-lived token", owner, Some(detail));
            return Ok(CreatedToken {
                meta,
                token: SecretString::new(format!("dry-run-secret-{}", uuid::Uuid::new_v4())),
            });
        }
        let store = self.store()?;
        let attempt = self
            .ledger
            .begin_attempt(self, &store, owner, "short-lived")?;
        let ours = |id: &str| !matches!(store.journal_get(id), Ok(None));
        let result =
            self.call(|c| async move { c.create_short_lived(owner, using, context, &ours).await });
        let created = match result {
            Ok(c) => c,
            Err(e) => {
                if matches!(e.status(), Some(400..=499)) {
                    self.ledger.attempt_failed(&store, attempt);
                }
                self.audit("create short-lived token", owner, Err(&e), Some(detail));
                return Err(e.into());
            }
        };
        crate::redact::register(created.token.expose());
        let target = format!("{owner}/{}", created.meta.id);
        let record = self.audit_record("create short-lived token", &target, Ok(()), Some(detail));
        if let Err(e) = self
            .ledger
            .minted(self, &store, attempt, owner, &created, &record)
        {
            let id = created.meta.id.clone();
            let undo = self.call(|c| {
                let id = &id;
                async move { c.delete_token(owner, id).await }
            });
            if undo.is_ok() {
                self.ledger.released(&id);
            }
            return Err(Error::State(format!(
                "short-lived token {id} of {owner} was minted but the journal could not record it ({e}); {}",
                if undo.is_ok() { "it was revoked again" } else { "revoke it by hand" }
            )));
        }
        Ok(created)
    }
}
