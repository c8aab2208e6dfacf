//! The one write pipeline. Every mutating API call of a run goes through
//! [`Runtime::admit`] (stop on Ctrl-C, SIGTERM or `--max-writes`), then either
//! the dry-run overlay and a plan line, or: the local state must work, the
//! call, its audit record. Token creation adds the journal around the call
//! (see [`super::ledger`]); local inventory writes share the dry-run half.

use super::overlay::{new_account_ducklings, Known};
use super::{Error, Runtime, Stop};
use crate::api::{rules, ApiError, Client, DucklingConfig, EmbedRequest, SecretString};
use crate::store::{AuditRecord, InventoryEntry};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A mutating call as the plan and the audit log name it.
pub struct Op {
    pub action: &'static str,
    pub target: String,
    pub detail: Option<String>,
}

impl Op {
    pub fn new(action: &'static str, target: impl Into<String>, detail: Option<String>) -> Op {
        Op {
            action,
            target: target.into(),
            detail,
        }
    }
}

impl Runtime {
    /// May one more write happen? Not after Ctrl-C or SIGTERM, and not past
    /// `--max-writes` (which then stops the whole run).
    pub fn admit(&self) -> Result<(), Error> {
        if self.bridge.is_cancelled() {
            return Err(ApiError::Cancelled.into());
        }
        if let Some(stop) = self.stop_reason() {
            return Err(Error::Stop(stop));
        }
        let n = self.stats.writes.fetch_add(1, Ordering::SeqCst);
        if let Some(max) = self.options.max_writes {
            if n >= max {
                self.stats.writes.fetch_sub(1, Ordering::SeqCst);
                self.set_stop(Stop::MaxWrites(max));
                return Err(Error::Stop(Stop::MaxWrites(max)));
            }
        }
        Ok(())
    }

    /// The whole pipeline for a call with nothing to journal.
    fn perform<T, F, Fut>(
        &self,
        op: Op,
        dry: impl FnOnce(&mut super::overlay::Overlay) -> T,
        send: F,
    ) -> Result<T, Error>
    where
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        self.perform_journaled(op, dry, send, |_, _, _| false)
    }

    /// The whole pipeline for a call whose answer the journal notes too.
    /// `journal` sees the answer of a call the server answered, with its
    /// audit record: it may store the record itself with its own note, in
    /// one commit (and says so), or leave the record to be stored alone.
    fn perform_journaled<T, F, Fut>(
        &self,
        op: Op,
        dry: impl FnOnce(&mut super::overlay::Overlay) -> T,
        send: F,
        journal: impl FnOnce(&crate::store::Store, &Result<T, ApiError>, &AuditRecord) -> bool,
    ) -> Result<T, Error>
    where
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        self.admit()?;
        if let Some(mut overlay) = self.overlay() {
            let value = dry(&mut overlay);
            drop(overlay);
            self.plan(op.action, &op.target, op.detail);
            return Ok(value);
        }
        // Its record must be writable before the call is sent.
        let store = self.store()?;
        store.ready().map_err(Error::state)?;
        let result = self.call(send);
        if matches!(
            result,
            Err(ApiError::Validation { .. } | ApiError::Cancelled)
        ) {
            self.audit_call(&op, result.as_ref().map(|_| ()));
        } else {
            let record = self.audit_record(
                op.action,
                &op.target,
                result.as_ref().map(|_| ()),
                op.detail.clone(),
            );
            if !journal(&store, &result, &record) {
                self.store_audit(&record);
            }
        }
        result.map_err(Error::from)
    }

    /// The audit record of a call that was sent (a refused or never-sent one
    /// has none): `ok`, `error`, or `interrupted` when Ctrl-C cut it short.
    pub fn audit_call(&self, op: &Op, result: Result<(), &ApiError>) {
        match result {
            Err(ApiError::Validation { .. }) => {}
            Err(ApiError::Cancelled) => {
                let detail = match &op.detail {
                    Some(d) => format!("{d}; interrupted, it may or may not have happened"),
                    None => "interrupted, it may or may not have happened".into(),
                };
                self.audit(
                    op.action,
                    &op.target,
                    Err(&ApiError::Cancelled),
                    Some(detail),
                )
            }
            other => self.audit(op.action, &op.target, other, op.detail.clone()),
        }
    }

    pub fn create_account(&self, username: &str) -> Result<String, Error> {
        rules::username(username)?;
        let name = self.perform(
            Op::new("create account", username, None),
            |o| {
                o.create_account(username);
                username.to_string()
            },
            |c| async move { c.create_user(username).await },
        )?;
        let mut entry = InventoryEntry::new(&name);
        entry.source = crate::store::Source::Created;
        if self.overlay.is_none() {
            if let Err(e) = self
                .store()
                .and_then(|s| s.inventory_upsert(&entry).map_err(|e| Error::State(e.0)))
            {
                self.warn(&format!(
                    "account {name} was created but not added to the inventory: {e}"
                ));
            }
        } else if let Some(mut o) = self.overlay() {
            o.put_inventory(entry);
        }
        Ok(name)
    }

    /// Deletes an account and its data: needs `--yes` or a typed confirmation.
    pub fn delete_account(&self, username: &str) -> Result<String, Error> {
        rules::path_username(username)?;
        if !self.options.dry_run && !self.options.yes {
            let confirmed = self.options.interactive
                && crate::prompt::type_to_confirm(
                    &format!(
                        "Delete account {} and all of its data? This cannot be undone.",
                        crate::output::escape(username)
                    ),
                    username,
                );
            if !confirmed {
                return Err(Error::Confirmation(format!(
                    "deleting account {username} needs confirmation: pass --yes, or run in a terminal and type the username (nothing was deleted)"
                )));
            }
        }
        let name = self.perform(
            Op::new(
                "delete account",
                username,
                self.options
                    .dry_run
                    .then(|| "irreversible: deletes its data".to_string()),
            ),
            |o| {
                o.delete_account(username);
                username.to_string()
            },
            |c| async move { c.delete_user(username).await },
        )?;
        if let Some(mut o) = self.overlay() {
            o.remove_inventory(&name);
        } else if let Err(e) = self
            .store()
            .and_then(|s| s.inventory_remove(&name).map_err(|e| Error::State(e.0)))
        {
            self.warn(&format!(
                "account {name} was deleted but is still in the inventory: {e}"
            ));
        }
        Ok(name)
    }

    pub fn revoke_token(&self, username: &str, token_id: &str) -> Result<(), Error> {
        rules::path_username(username)?;
        rules::token_id(token_id)?;
        let target = format!("{username}/{token_id}");
        self.perform_journaled(
            Op::new("revoke token", &target, None),
            |o| o.revoke_token(username, token_id),
            |c| async move { c.delete_token(username, token_id).await },
            |store, result, record| {
                // Gone, by this call or before it: the journal's note and the
                // audit record in one commit.
                if !matches!(result, Ok(())) && !result.as_ref().is_err_and(ApiError::is_not_found)
                {
                    return false;
                }
                self.ledger.released(token_id);
                if store.audit_revoked(record, token_id).is_ok() {
                    return true;
                }
                // Each on its own, then: one failing must not lose the other.
                if let Err(e) = store.journal_revoked(token_id) {
                    self.warn(&format!(
                        "token {target} was revoked but the journal could not record it: {}",
                        e.0
                    ));
                }
                false
            },
        )
    }

    /// Replaces an account's Duckling configuration. `before`, when known,
    /// makes the plan and the audit record show the change.
    pub fn set_ducklings(
        &self,
        username: &str,
        config: &DucklingConfig,
        before: Option<&DucklingConfig>,
    ) -> Result<DucklingConfig, Error> {
        rules::path_username(username)?;
        rules::duckling_config(config)?;
        let before = match before {
            Some(b) => Some(b.clone()),
            None if self.options.dry_run => self.get_ducklings(username).ok(),
            None => None,
        };
        let detail = match &before {
            Some(b) => crate::api::diff_ducklings(b, config),
            None => serde_json::to_string(config).unwrap_or_default(),
        };
        self.perform(
            Op::new("set ducklings", username, Some(detail)),
            |o| {
                o.set_ducklings(username, config.clone());
                config.clone()
            },
            |c| async move { c.set_ducklings(username, config).await },
        )
    }

    pub fn embed_session(&self, dive_id: &str, req: &EmbedRequest) -> Result<SecretString, Error> {
        rules::dive_id(dive_id)?;
        rules::path_username(&req.username)?;
        if let Some(h) = &req.session_hint {
            rules::session_hint(h)?;
        }
        let session = self.perform(
            Op::new(
                "create embed session",
                if self.options.dry_run {
                    format!("dive {dive_id} as {}", req.username)
                } else {
                    req.username.clone()
                },
                (!self.options.dry_run).then(|| format!("dive {dive_id}")),
            ),
            |_| SecretString::new(format!("dry-run-{}", uuid::Uuid::new_v4())),
            |c| async move { c.embed_session(dive_id, req).await },
        )?;
        if !self.options.dry_run {
            crate::redact::register(session.expose());
        }
        Ok(session)
    }

    /// Adds or updates an inventory entry (local state; planned in a dry run).
    pub fn inventory_put(
        &self,
        entry: InventoryEntry,
        action: &str,
    ) -> Result<InventoryEntry, Error> {
        rules::path_username(&entry.username)?;
        if let Some(mut overlay) = self.overlay() {
            let shown = match overlay.inventory_entry(&entry.username) {
                Some(Some(mut old)) => {
                    merge_entry(&mut old, entry);
                    old
                }
                _ => match self
                    .store()
                    .ok()
                    .and_then(|s| s.inventory_get(&entry.username).ok().flatten())
                {
                    Some(mut old) => {
                        merge_entry(&mut old, entry);
                        old
                    }
                    None => entry,
                },
            };
            overlay.put_inventory(shown.clone());
            drop(overlay);
            self.plan(action, &shown.username, None);
            return Ok(shown);
        }
        self.store()?
            .inventory_upsert(&entry)
            .map_err(|e| Error::State(e.0))
    }

    /// Removes an inventory entry; whether it was there.
    pub fn inventory_remove(&self, username: &str) -> Result<bool, Error> {
        if self.options.dry_run {
            let had = self.inventory_get(username)?.is_some();
            if let Some(mut o) = self.overlay() {
                o.remove_inventory(username);
            }
            self.plan("remove from inventory", username, None);
            return Ok(had);
        }
        self.store()?
            .inventory_remove(username)
            .map_err(|e| Error::State(e.0))
    }

    /// In a dry run, what the overlay says of an account (`None` otherwise).
    pub(super) fn planned(&self, username: &str) -> Option<Known> {
        self.overlay().map(|o| o.account(username))
    }

    pub(super) fn planned_ducklings(&self, username: &str) -> Option<DucklingConfig> {
        let o = self.overlay()?;
        match o.account(username) {
            Known::Planned => Some(o.ducklings(username).unwrap_or_else(new_account_ducklings)),
            _ => o.ducklings(username),
        }
    }
}

/// The upsert rule of the store, for planned entries: given metadata replaces,
/// missing metadata stays.
fn merge_entry(old: &mut InventoryEntry, new: InventoryEntry) {
    if new.owner.is_some() {
        old.owner = new.owner;
    }
    if new.purpose.is_some() {
        old.purpose = new.purpose;
    }
    if !new.tags.is_empty() {
        old.tags = new.tags;
    }
    for (k, v) in new.extra {
        old.extra.insert(k, v);
    }
}
