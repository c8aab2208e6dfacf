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
//! revokes what it left.

use super::{Error, Runtime, StateLocation};
use crate::api::{CreatedToken, SecretString, Token};
use crate::store::{Attempt, Store};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
struct Minted {
    username: String,
    id: String,
    name: Option<String>,
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
struct Inner {
    registered: bool,
    /// Held while the run lives: another process that can take it knows the run is dead.
    liveness: Option<std::fs::File>,
    tokens: HashMap<String, Minted>,
    by_secret: HashMap<SecretKey, String>,
    targets: HashMap<String, Held>,
    open_attempts: BTreeSet<i64>,
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

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
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
        let mut inner = self.inner();
        if !inner.registered {
            if let StateLocation::Dir { dir, .. } = rt.state_location() {
                let path = liveness_path(dir, &self.run_id);
                match crate::lock::try_hold(&path) {
                    Ok(Some(file)) => inner.liveness = Some(file),
                    Ok(None) => {
                        return Err(Error::State(format!(
                            "{} is held by another process",
                            path.display()
                        )))
                    }
                    Err(e) => return Err(Error::state(e)),
                }
            }
            store
                .run_begin(&self.run_id, std::process::id(), &rt.script)
                .map_err(Error::state)?;
            inner.registered = true;
        }
        let id = store
            .attempt_begin(&self.run_id, username, name)
            .map_err(Error::state)?;
        inner.open_attempts.insert(id);
        Ok(id)
    }

    /// The create was refused: nothing was minted.
    pub fn attempt_failed(&self, store: &Store, attempt: i64) {
        if store.attempt_resolve(attempt, "failed").is_ok() {
            self.inner().open_attempts.remove(&attempt);
        }
    }

    /// Journals a minted token (closing its attempt) and holds it as pending.
    pub fn minted(
        &self,
        _rt: &Runtime,
        store: &Store,
        attempt: i64,
        username: &str,
        created: &CreatedToken,
    ) -> Result<(), String> {
        let fingerprint = store.fingerprint(&created.token);
        store
            .journal_minted(
                &self.run_id,
                Some(attempt),
                username,
                &created.meta,
                &fingerprint,
            )
            .map_err(|e| e.0)?;
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

    /// Whether `secret` may be written to `target`: refused when the target
    /// already received another token of this run that is still live there,
    /// unless this puts back what the target held before the run.
    pub fn check_target(&self, target: &str, secret: &SecretString) -> Result<(), String> {
        let inner = self.inner();
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

    fn pending(&self) -> Vec<Minted> {
        self.inner()
            .tokens
            .values()
            .filter(|t| t.state == State::Pending)
            .cloned()
            .collect()
    }

    /// Ends the run: revokes every token still pending and resolves attempts
    /// whose answer never came (the request may have minted a token), then
    /// closes the run's record. Works after Ctrl-C too, within a deadline.
    pub fn settle(&self, rt: &Runtime) -> Vec<Settled> {
        let (registered, open): (bool, Vec<i64>) = {
            let inner = self.inner();
            (
                inner.registered,
                inner.open_attempts.iter().copied().collect(),
            )
        };
        if !registered {
            return Vec::new();
        }
        let mut report = Vec::new();
        let deadline = Instant::now() + CLEANUP_TIME;
        let store = rt.store().ok();
        for t in self.pending() {
            let outcome = revoke(
                rt,
                &t.username,
                &t.id,
                deadline,
                "never delivered, revealed or released",
            );
            if outcome.1 {
                self.released(&t.id);
            }
            report.push(Settled {
                username: t.username,
                token_id: Some(t.id),
                name: t.name,
                outcome: outcome.0,
                revoked: outcome.1,
            });
        }
        if let Some(store) = &store {
            let attempts: Vec<Attempt> = store
                .attempts_open(&self.run_id)
                .unwrap_or_default()
                .into_iter()
                .filter(|a| open.contains(&a.id))
                .collect();
            report.extend(resolve_attempts(rt, store, &attempts, deadline));
            let clean = report.iter().all(|s| s.revoked || s.token_id.is_none());
            if clean {
                let _ = store.run_end(&self.run_id, None);
            }
        }
        self.inner().liveness = None;
        if let StateLocation::Dir { dir, .. } = rt.state_location() {
            let _ = std::fs::remove_file(liveness_path(dir, &self.run_id));
        }
        report
    }
}

/// How long the end-of-run clean-up may take in all (after SIGTERM, a
/// supervisor waits only so long).
const CLEANUP_TIME: Duration = Duration::from_secs(20);

fn liveness_path(dir: &std::path::Path, run_id: &str) -> std::path::PathBuf {
    dir.join("runs").join(format!("{run_id}.lock"))
}

/// Revokes one token with the clean-up bridge: (outcome, now gone).
fn revoke(rt: &Runtime, username: &str, id: &str, deadline: Instant, why: &str) -> (String, bool) {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return (
            format!("not revoked: the clean-up ran out of time; revoke token {id} of {username} by hand"),
            false,
        );
    }
    let client = match rt.client() {
        Ok(c) => c,
        Err(e) => return (format!("not revoked ({e})"), false),
    };
    let result = rt
        .bridge
        .block_on_cleanup(left, async move { client.delete_token(username, id).await });
    let target = format!("{username}/{id}");
    rt.audit(
        "revoke token",
        &target,
        result.as_ref().map(|_| ()),
        Some(why.to_string()),
    );
    match result {
        Ok(()) => {
            if let Ok(s) = rt.store() {
                let _ = s.journal_revoked(id);
            }
            ("revoked".into(), true)
        }
        Err(e) if e.is_not_found() => {
            if let Ok(s) = rt.store() {
                let _ = s.journal_revoked(id);
            }
            ("already gone".into(), true)
        }
        Err(e) => (
            format!("could not be revoked ({e}): revoke token {id} of {username} by hand"),
            false,
        ),
    }
}

/// For attempts whose answer never came: a token of that name created since
/// the attempt began, and not journaled, was minted by it; revoke it.
fn resolve_attempts(
    rt: &Runtime,
    store: &Store,
    attempts: &[Attempt],
    deadline: Instant,
) -> Vec<Settled> {
    let mut report = Vec::new();
    for a in attempts {
        let left = deadline.saturating_duration_since(Instant::now());
        let listed = rt.client().and_then(|c| {
            let user = a.username.clone();
            rt.bridge
                .block_on_cleanup(left, async move { c.list_tokens(&user).await })
        });
        let tokens: Vec<Token> = match listed {
            Ok(t) => t,
            Err(e) if e.is_not_found() => {
                let _ = store.attempt_resolve(a.id, "account gone");
                continue;
            }
            Err(e) => {
                report.push(Settled {
                    username: a.username.clone(),
                    token_id: None,
                    name: Some(a.name.clone()),
                    outcome: format!("unknown: could not list the account's tokens ({e}); `mdops journal resolve` tries again"),
                    revoked: false,
                });
                continue;
            }
        };
        let since = chrono::DateTime::parse_from_rfc3339(&a.started_at)
            .map(|t| t.with_timezone(&chrono::Utc) - chrono::Duration::seconds(60))
            .ok();
        let orphans: Vec<Token> = tokens
            .into_iter()
            .filter(|t| t.name.as_deref() == Some(a.name.as_str()))
            .filter(
                |t| match (&since, chrono::DateTime::parse_from_rfc3339(&t.created_ts)) {
                    (Some(s), Ok(c)) => c >= *s,
                    _ => false,
                },
            )
            .filter(|t| matches!(store.journal_get(&t.id), Ok(None)))
            .collect();
        let mut all_gone = true;
        for t in &orphans {
            let (outcome, gone) = revoke(
                rt,
                &a.username,
                &t.id,
                deadline,
                "minted by a request whose answer was lost",
            );
            all_gone &= gone;
            report.push(Settled {
                username: a.username.clone(),
                token_id: Some(t.id.clone()),
                name: Some(a.name.clone()),
                outcome,
                revoked: gone,
            });
        }
        if all_gone {
            let outcome = if orphans.is_empty() {
                "nothing was minted".to_string()
            } else {
                format!("revoked {} orphan(s)", orphans.len())
            };
            let _ = store.attempt_resolve(a.id, &outcome);
        }
    }
    report
}

/// Resolves what runs that died without cleaning up left behind: their open
/// attempts and the tokens they minted and never settled. A run counts as
/// dead when its liveness lock can be taken. Returns what was done, per run.
pub fn resolve_dead_runs(
    rt: &Runtime,
) -> Result<Vec<(crate::store::RunRecord, Vec<Settled>)>, Error> {
    let StateLocation::Dir { dir, .. } = rt.state_location().clone() else {
        return Ok(Vec::new());
    };
    let store = rt.store()?;
    let mut out = Vec::new();
    for run in store.runs_open().map_err(Error::state)? {
        if run.run_id == rt.ledger.run_id() {
            continue;
        }
        let path = liveness_path(&dir, &run.run_id);
        let _claim = match crate::lock::try_hold(&path) {
            Ok(Some(f)) => f,
            Ok(None) => continue, // alive
            Err(e) => return Err(Error::state(e)),
        };
        let deadline = Instant::now() + CLEANUP_TIME;
        let mut report = Vec::new();
        for j in store.journal_unsettled(&run.run_id).map_err(Error::state)? {
            let (outcome, gone) = revoke(
                rt,
                &j.username,
                &j.token_id,
                deadline,
                "minted by a run that died before delivering it",
            );
            report.push(Settled {
                username: j.username,
                token_id: Some(j.token_id),
                name: j.name,
                outcome,
                revoked: gone,
            });
        }
        let attempts = store.attempts_open(&run.run_id).map_err(Error::state)?;
        report.extend(resolve_attempts(rt, &store, &attempts, deadline));
        if report
            .iter()
            .all(|s| s.revoked || s.token_id.is_none() && !s.outcome.starts_with("unknown"))
        {
            let _ = store.run_end(
                &run.run_id,
                Some(&format!("resolved by run {}", rt.ledger.run_id())),
            );
            let _ = std::fs::remove_file(&path);
        }
        out.push((run, report));
    }
    Ok(out)
}
