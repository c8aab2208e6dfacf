//! "No orphan secret", enforced by the runtime: every token minted in a run
//! must by its end have been delivered by a sink that succeeded (and still
//! hold that place), revealed to the script (`reveal()`), or released (revoked
//! by the script). Whatever else was minted is revoked when the run or REPL
//! session ends, and reported.
//!
//! The journal makes this hold across crashes: a run is recorded, and a token
//! create is journaled as an attempt, before the request is sent. A run that
//! dies without cleaning up (SIGKILL) leaves open attempts and unsettled
//! tokens; the next run finds the run dead (its liveness lock is free) and
//! revokes what it left (the `cleanup` module does both).

use super::{Error, Runtime};
use crate::api::{CreatedToken, SecretString};
use crate::store::Store;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

type SecretKey = [u8; 32];

fn key_of(secret: &SecretString) -> SecretKey {
    Sha256::digest(secret.expose().as_bytes()).into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Delivered,
    Revealed,
    Released,
}

#[derive(Debug, Clone)]
pub(super) struct Minted {
    pub(super) username: String,
    pub(super) id: String,
    pub(super) name: Option<String>,
    state: State,
    /// Sink targets holding it now.
    targets: BTreeSet<String>,
}

/// What a sink target holds after this run wrote it.
#[derive(Debug, Clone)]
struct Held {
    secret: SecretKey,
    /// What it held before this run first wrote it: putting that back is a restore.
    original: Option<SecretKey>,
}

#[derive(Default)]
pub(super) struct Inner {
    pub(super) registered: bool,
    /// Held while the run lives: another process that can take it knows the run is dead.
    pub(super) liveness: Option<crate::store::Alive>,
    tokens: HashMap<String, Minted>,
    by_secret: HashMap<SecretKey, String>,
    targets: HashMap<String, Held>,
    /// Targets workers of this run are writing now: what they write, and
    /// how many of them (the same secret, delivered twice at once).
    writing: HashMap<String, (SecretKey, usize)>,
    pub(super) open_attempts: BTreeSet<i64>,
}

pub struct Ledger {
    run_id: String,
    inner: Mutex<Inner>,
}

/// What the clean-up did with one token.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Settled {
    pub username: String,
    pub token_id: Option<String>,
    pub name: Option<String>,
    /// `revoked`, `already gone`, or why it could not be revoked.
    pub outcome: String,
    pub revoked: bool,
}

impl Settled {
    /// `token "app.g2" (id) of tenant_a`.
    pub fn what(&self) -> String {
        let what = match (&self.name, &self.token_id) {
            (Some(n), Some(id)) => format!("token {n:?} ({id}) of {}", self.username),
            (Some(n), None) => format!("a token {n:?} of {}", self.username),
            (None, Some(id)) => format!("token {id} of {}", self.username),
            (None, None) => format!("a token of {}", self.username),
        };
        crate::output::escape(&what).into_owned()
    }

    pub fn describe(&self) -> String {
        format!("{}: {}", self.what(), self.outcome)
    }
}

impl Default for Ledger {
    fn default() -> Self {
        Self::new()
    }
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger {
            run_id: uuid::Uuid::new_v4().simple().to_string(),
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub(super) fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the run (once) and the attempt, before a token create is sent.
    pub fn begin_attempt(
        &self,
        rt: &Runtime,
        store: &Store,
        username: &str,
        name: &str,
    ) -> Result<i64, Error> {
        {
            let mut inner = self.inner();
            if !inner.registered {
                inner.liveness = Some(store.mark_alive(&self.run_id).map_err(Error::state)?);
                store
                    .run_begin(&self.run_id, std::process::id(), &rt.script, &rt.org(store))
                    .map_err(Error::state)?;
                inner.registered = true;
            }
        }
        // Not under the ledger's lock: other workers' attempts need not wait
        // for this one's round trip to the state.
        let id = store
            .attempt_begin(&self.run_id, username, name)
            .map_err(Error::state)?;
        self.inner().open_attempts.insert(id);
        Ok(id)
    }

    /// The create was refused: nothing was minted.
    pub fn attempt_failed(&self, store: &Store, attempt: i64) {
        if store.attempt_resolve(attempt, "failed").is_ok() {
            self.inner().open_attempts.remove(&attempt);
        }
    }

    /// Journals a minted token (closing its attempt), with the create's audit
    /// record in the same commit, and holds it as pending. When that commit
    /// fails, each is tried on its own: an audit log that cannot be written
    /// must not cost a token the journal can record.
    pub fn minted(
        &self,
        rt: &Runtime,
        store: &Store,
        attempt: i64,
        username: &str,
        created: &CreatedToken,
        audit: &crate::store::AuditRecord,
    ) -> Result<(), String> {
        let fingerprint = store.fingerprint(&created.token);
        let journal = |audit| {
            store.journal_minted(
                &self.run_id,
                Some(attempt),
                username,
                &created.meta,
                &fingerprint,
                audit,
            )
        };
        if journal(Some(audit)).is_err() {
            let alone = journal(None);
            rt.store_audit(audit);
            alone.map_err(|e| e.0)?;
        }
        let mut inner = self.inner();
        inner.open_attempts.remove(&attempt);
        let id = created.meta.id.to_lowercase();
        inner.by_secret.insert(key_of(&created.token), id.clone());
        inner.tokens.insert(
            id,
            Minted {
                username: username.to_string(),
                id: created.meta.id.clone(),
                name: created.meta.name.clone(),
                state: State::Pending,
                targets: BTreeSet::new(),
            },
        );
        Ok(())
    }

    /// The account and token name of a token this run minted, by its secret.
    pub fn minted_by_secret(
        &self,
        secret: &SecretString,
    ) -> Option<(String, String, Option<String>)> {
        let inner = self.inner();
        let id = inner.by_secret.get(&key_of(secret))?;
        let t = inner.tokens.get(id)?;
        Some((t.username.clone(), t.id.clone(), t.name.clone()))
    }

    /// The token was revoked (or found gone): nothing to clean up.
    pub fn released(&self, token_id: &str) {
        if let Some(t) = self.inner().tokens.get_mut(&token_id.to_lowercase()) {
            t.state = State::Released;
        }
    }

    /// The script took the value itself. Returns the token id if this run minted it.
    pub fn revealed(&self, secret: &SecretString) -> Option<String> {
        let mut inner = self.inner();
        let id = inner.by_secret.get(&key_of(secret))?.clone();
        let t = inner.tokens.get_mut(&id)?;
        if t.state != State::Released {
            t.state = State::Revealed;
        }
        Some(t.id.clone())
    }

    /// Claims `target` for writing `secret` until the claim drops (after the
    /// delivery is recorded or has failed). Refused when the target already
    /// received another token of this run that is still live there, unless
    /// this puts back what the target held before the run; and while another
    /// worker of this run writes another secret there (checked and claimed
    /// in one step, or two workers would both pass the check and one token
    /// would be overwritten). `shared`: the place written whole that the
    /// target is part of (an AWS secret): writing the whole drops every
    /// field, and a field write drops a whole value, so those count too
    /// (fields beside each other do not: each write keeps the others).
    pub fn claim_target(
        &self,
        target: &str,
        secret: &SecretString,
        shared: Option<&str>,
    ) -> Result<TargetClaim<'_>, String> {
        let mut inner = self.inner();
        let new = key_of(secret);
        let mut places = vec![target.to_string()];
        match shared {
            Some(whole) if whole == target => {
                let field = format!("{whole}#");
                let mut parts: Vec<String> = inner
                    .targets
                    .keys()
                    .chain(inner.writing.keys())
                    .filter(|t| t.starts_with(&field))
                    .cloned()
                    .collect();
                parts.sort();
                parts.dedup();
                places.extend(parts);
            }
            Some(whole) => places.push(whole.to_string()),
            None => {}
        }
        for place in &places {
            Self::may_write(&inner, place, secret)?;
            if inner
                .writing
                .get(place)
                .is_some_and(|(other, _)| *other != new)
            {
                return Err(format!(
                    "{place} is being written with another token of this run by another worker; writing this one to {target} too would lose one of them (give each token its own target, e.g. with {{name}} in the template)"
                ));
            }
        }
        inner
            .writing
            .entry(target.to_string())
            .or_insert((new, 0))
            .1 += 1;
        Ok(TargetClaim {
            ledger: self,
            target: target.to_string(),
        })
    }

    fn may_write(inner: &Inner, target: &str, secret: &SecretString) -> Result<(), String> {
        let Some(held) = inner.targets.get(target) else {
            return Ok(());
        };
        let new = key_of(secret);
        if held.secret == new || held.original == Some(new) {
            return Ok(());
        }
        let Some(id) = inner.by_secret.get(&held.secret) else {
            return Ok(());
        };
        match inner.tokens.get(id) {
            Some(t) if t.state != State::Released => Err(format!(
                "{target} already holds token {} of {} from this run; writing another secret there would lose it (give each token its own target, e.g. with {{name}} in the template)",
                t.name.as_deref().unwrap_or(&t.id),
                t.username
            )),
            _ => Ok(()),
        }
    }

    /// A sink wrote `secret` to `target`, which held `previous` before.
    pub fn delivered(
        &self,
        target: &str,
        secret: &SecretString,
        previous: Option<&SecretString>,
    ) -> Option<String> {
        let mut inner = self.inner();
        let new = key_of(secret);
        let displaced = match inner.targets.get_mut(target) {
            Some(held) => {
                let old = std::mem::replace(&mut held.secret, new);
                (old != new).then_some(old)
            }
            None => {
                inner.targets.insert(
                    target.to_string(),
                    Held {
                        secret: new,
                        original: previous.map(key_of),
                    },
                );
                None
            }
        };
        if let Some(old) = displaced {
            if let Some(id) = inner.by_secret.get(&old).cloned() {
                if let Some(t) = inner.tokens.get_mut(&id) {
                    t.targets.remove(target);
                    if t.targets.is_empty() && t.state == State::Delivered {
                        t.state = State::Pending;
                    }
                }
            }
        }
        let id = inner.by_secret.get(&new).cloned()?;
        let t = inner.tokens.get_mut(&id)?;
        t.targets.insert(target.to_string());
        if t.state == State::Pending {
            t.state = State::Delivered;
        }
        Some(t.id.clone())
    }

    pub(super) fn pending(&self) -> Vec<Minted> {
        self.inner()
            .tokens
            .values()
            .filter(|t| t.state == State::Pending)
            .cloned()
            .collect()
    }
}

/// A worker's claim on a target it writes (see [`Ledger::claim_target`]).
pub struct TargetClaim<'a> {
    ledger: &'a Ledger,
    target: String,
}

impl Drop for TargetClaim<'_> {
    fn drop(&mut self) {
        let mut inner = self.ledger.inner();
        if let Some((_, n)) = inner.writing.get_mut(&self.target) {
            *n -= 1;
            if *n == 0 {
                inner.writing.remove(&self.target);
            }
        }
    }
}
