//! Token creation: one pipeline for every kind of token a run mints (a
//! token of a named account, a short-lived one). Admitted by the write
//! pipeline; the attempt is journaled before the request is sent and the
//! token once it answers, so no secret can be lost without a trace; the
//! minted token joins the run's ledger until it is delivered, revealed or
//! released. A token the journal cannot record is taken back at once, and
//! that revoke is audited like any other.

use super::overlay::{placeholder, Overlay};
use super::writes::Op;
use super::{Error, Runtime};
use crate::api::{rules, ApiError, Client, CreatedToken, NewToken};
use std::future::Future;
use std::sync::Arc;

/// Whether a token id is one the journal knows (someone received its
/// secret): the client never takes such a token for an orphan of a retry.
pub type Ours = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// A token create as the plan, the journal and the audit log name it.
pub struct Mint<'a> {
    /// `create token`, `create short-lived token`.
    pub action: &'static str,
    /// The account the token is for.
    pub owner: &'a str,
    /// The name its attempt is journaled under.
    pub name: &'a str,
    pub detail: String,
}

impl Runtime {
    /// Mints a token of `username`'s.
    pub fn mint_token(&self, username: &str, new: &NewToken) -> Result<CreatedToken, Error> {
        rules::new_token(username, new)?;
        self.mint(
            Mint {
                action: "create token",
                owner: username,
                name: &new.name,
                detail: describe_new_token(new),
            },
            |o| {
                let p = placeholder(new);
                o.add_token(username, p.meta.clone());
                p
            },
            |c, ours| async move { c.create_token(username, new, &*ours).await },
        )
    }

    /// The pipeline (see the module). `dry` answers in a dry run; `send`
    /// makes the request, told which token ids are already the journal's.
    pub(super) fn mint<'a, F, Fut>(
        &'a self,
        m: Mint<'_>,
        dry: impl FnOnce(&mut Overlay) -> CreatedToken,
        send: F,
    ) -> Result<CreatedToken, Error>
    where
        F: FnOnce(Arc<Client>, Ours) -> Fut,
        Fut: Future<Output = Result<CreatedToken, ApiError>> + 'a,
    {
        self.admit()?;
        if let Some(mut overlay) = self.overlay() {
            let placeholder = dry(&mut overlay);
            drop(overlay);
            self.plan(m.action, m.owner, Some(m.detail));
            return Ok(placeholder);
        }
        let store = self.store()?;
        let attempt = self.ledger.begin_attempt(self, &store, m.owner, m.name)?;
        // A token the journal knows was received by someone: never an orphan.
        // If the journal cannot tell, it is not taken for one either.
        let journal = store.clone();
        let ours: Ours = Box::new(move |id| !matches!(journal.journal_get(id), Ok(None)));
        let created = match self.call(|c| send(c, ours)) {
            Ok(created) => created,
            Err(e) => {
                // A refusal (4xx) means nothing was minted; anything else leaves
                // the attempt open for the clean-up to look for an orphan.
                if matches!(e.status(), Some(400..=499)) {
                    self.ledger.attempt_failed(&store, attempt);
                }
                self.audit_call(&Op::new(m.action, m.owner, Some(m.detail)), Err(&e));
                return Err(e.into());
            }
        };
        crate::redact::register(created.token.expose());
        let target = format!("{}/{}", m.owner, created.meta.id);
        let record = self.audit_record(m.action, &target, Ok(()), Some(m.detail));
        let Err(e) = self
            .ledger
            .minted(self, &store, attempt, m.owner, &created, &record)
        else {
            return Ok(created);
        };
        // A secret nobody can find again is worse than no token: take it back.
        let id = created.meta.id.clone();
        let undo = self.call(|c| {
            let id = &id;
            async move { c.delete_token(m.owner, id).await }
        });
        self.audit(
            "revoke token",
            &target,
            undo.as_ref().map(|_| ()),
            Some("not journaled".into()),
        );
        let outcome = match undo {
            Ok(()) => {
                self.ledger.released(&id);
                "it was revoked again".to_string()
            }
            Err(r) => format!(
                "revoking it failed too ({r}): revoke token {id} of {} by hand",
                m.owner
            ),
        };
        let kind = m.action.trim_start_matches("create ");
        Err(Error::State(format!(
            "{kind} {id} for {} was minted but the journal could not record it ({e}); {outcome}",
            m.owner
        )))
    }
}

/// `read_write token "app.g2", ttl 90d`.
fn describe_new_token(new: &NewToken) -> String {
    format!(
        "{} token {:?}, {}",
        new.token_type.unwrap_or_default().as_str(),
        new.name,
        new.ttl
            .map(|t| format!("ttl {}", crate::duration::format_arg(t)))
            .unwrap_or_else(|| "no expiry".into())
    )
}
