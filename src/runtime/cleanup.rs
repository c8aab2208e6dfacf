//! The clean-up that keeps "no orphan secret" true: at the end of a run (or
//! REPL session) every token still pending in the ledger is revoked and every
//! create whose answer never came is resolved; before a run, what runs that
//! died left behind is found and revoked. Works after Ctrl-C too: it uses the
//! bridge's clean-up path, within a deadline.

use super::ledger::{Ledger, Settled};
use super::{Error, Runtime, StateLocation};
use crate::api::Token;
use crate::store::{Attempt, RunRecord, Store};
use std::time::{Duration, Instant};

impl Ledger {
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
                .attempts_open(self.run_id())
                .unwrap_or_default()
                .into_iter()
                .filter(|a| open.contains(&a.id))
                .collect();
            report.extend(resolve_attempts(rt, store, &attempts, deadline));
            let clean = report.iter().all(|s| s.revoked || s.token_id.is_none());
            // Not clean: a later run (or `mdops journal resolve`) tries again.
            let _ = store.run_end(self.run_id(), (!clean).then_some("unresolved"));
        }
        let alive = self.inner().liveness.take();
        if let (Some(store), Some(alive)) = (&store, alive) {
            store.forget_alive(self.run_id(), alive);
        }
        report
    }
}

/// How long the end-of-run clean-up may take in all (after SIGTERM, a
/// supervisor waits only so long).
const CLEANUP_TIME: Duration = Duration::from_secs(20);

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
    // A write like any other, in the run's count (the summary, `--output json`).
    rt.stats
        .writes
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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
        let Some(since) = chrono::DateTime::parse_from_rfc3339(&a.started_at)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
        else {
            continue;
        };
        let since = match rt.client() {
            Ok(c) => c.orphan_window(since),
            Err(_) => since - chrono::Duration::seconds(60),
        };
        let ours = |id: &str| !matches!(store.journal_get(id), Ok(None));
        let orphans = crate::api::orphans_of(tokens, &a.name, since, &ours);
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

/// What [`resolve_dead_runs`] did: per dead run, what was settled; and the
/// dead runs whose tokens are settled only against the API they worked on.
#[derive(Default)]
pub struct Resolution {
    pub settled: Vec<(RunRecord, Vec<Settled>)>,
    /// Each with what tells its organization from this one.
    pub elsewhere: Vec<(RunRecord, String)>,
}

/// Why a dead run of another organization is left as it is, for the
/// operator (`why`: what tells it apart, from [`RunRecord::elsewhere`]).
pub fn left_elsewhere(run: &RunRecord, why: &str) -> String {
    format!(
        "a run of {} (pid {}, started {}) on another organization ({}) has tokens only that \
         organization can settle: the next run there does; if it is this one after all (a renamed \
         proxy, a rotated admin token), `mdops journal resolve --same-org`",
        crate::output::escape(&run.script),
        run.pid,
        run.started_at,
        crate::output::escape(why)
    )
}

/// Resolves what runs that died without cleaning up left behind: their open
/// attempts and the tokens they minted and never settled. A run counts as
/// dead when its liveness lock can be taken. Only a run on the organization
/// a dead run worked on (its API and admin token) settles its tokens:
/// another does not know them, and its "not found" would pass for a
/// revocation while they live on. `same_org`: the operator says that runs
/// recorded with another API or admin token are of this organization.
pub fn resolve_dead_runs(rt: &Runtime, same_org: bool) -> Result<Resolution, Error> {
    let mut out = Resolution::default();
    if matches!(rt.state_location(), StateLocation::Memory) {
        return Ok(out);
    }
    let store = rt.store()?;
    let here = rt.org(&store);
    for run in store.runs_open().map_err(Error::state)? {
        if run.run_id == rt.ledger.run_id() {
            continue;
        }
        let Some(claim) = store.claim_dead(&run.run_id).map_err(Error::state)? else {
            continue; // alive
        };
        let left = store.run_left(&run.run_id).map_err(Error::state)?;
        if let Some(why) = run
            .elsewhere(&here)
            .filter(|_| !left.is_empty() && !same_org)
        {
            out.elsewhere.push((run, why));
            continue;
        }
        let deadline = Instant::now() + CLEANUP_TIME;
        let mut report = Vec::new();
        for j in left.interrupted {
            report.extend(interrupted_delivery(rt, &store, j, deadline));
        }
        for j in left.unsettled {
            report.push(revoke_entry(
                rt,
                j,
                deadline,
                "minted by a run that died before delivering it",
            ));
        }
        report.extend(resolve_attempts(rt, &store, &left.attempts, deadline));
        if report
            .iter()
            .all(|s| s.revoked || s.token_id.is_none() && !s.outcome.starts_with("unknown"))
        {
            let _ = store.run_resolved(
                &run.run_id,
                &format!("resolved by run {}", rt.ledger.run_id()),
            );
            claim.settled();
        }
        out.settled.push((run, report));
    }
    Ok(out)
}

/// Before a run: what runs that died without cleaning up left behind is
/// revoked, and reported (never silently), as is what only a run against
/// another API can settle.
pub fn settle_dead_runs(rt: &Runtime) {
    let done = match resolve_dead_runs(rt, false) {
        Ok(done) => done,
        Err(e) => return rt.warn(&format!("could not check for interrupted runs: {e}")),
    };
    for (run, settled) in done.settled {
        for s in settled
            .iter()
            .filter(|s| s.token_id.is_some() || !s.revoked)
        {
            let how = if run.ended_at.is_some() {
                "ended without being able to settle"
            } else {
                "died before settling"
            };
            rt.warn(&format!(
                "a run of {} (pid {}, started {}) {how} {}",
                run.script,
                run.pid,
                run.started_at,
                s.describe()
            ));
        }
    }
    for (run, why) in &done.elsewhere {
        rt.warn(&left_elsewhere(run, why));
    }
}

/// A token whose delivery a dead run announced and never confirmed: the run
/// died while the sink was written. A file or env file written on this
/// machine is read back: holding the token, the delivery is recorded; not
/// holding it (its directory there, the file or entry not), nobody received
/// the token, which is revoked. Any other target (a store, a command, a
/// file of another machine or in a directory that is gone) cannot be read
/// back here: the token is kept as delivered (it may be in use there) and
/// the operator is told to check.
fn interrupted_delivery(
    rt: &Runtime,
    store: &Store,
    j: crate::store::JournalEntry,
    deadline: Instant,
) -> Option<Settled> {
    let target = j
        .delivering_to
        .clone()
        .unwrap_or_else(|| "its target".into());
    let what = format!("token {} of {}", j.token_id, j.username);
    let here =
        j.delivering_host.is_some() && j.delivering_host.as_deref() == crate::store::host_name();
    let held = j
        .delivering_to
        .as_deref()
        .filter(|_| here)
        .and_then(crate::sinks::read_back);
    match held {
        Some(Ok(value)) => {
            let holds = value.is_some_and(|v| {
                store.fingerprint(&crate::api::SecretString::new(v)) == j.fingerprint
            });
            if holds {
                let owner = (j.username.clone(), j.token_id.clone(), j.name.clone());
                match store.journal_delivered_to(&j.fingerprint, &target, &target, Some(owner)) {
                    Ok(_) => rt.warn(&format!(
                        "{what}: a run that died was delivering it to {target}, which holds it: recorded as delivered"
                    )),
                    Err(e) => rt.warn(&format!(
                        "{what} is at {target}, but the journal could not record it: {}",
                        e.0
                    )),
                }
                return None;
            }
            Some(revoke_entry(
                rt,
                j,
                deadline,
                "a run that died was delivering it, and its target does not hold it",
            ))
        }
        Some(Err(e)) => Some(Settled {
            username: j.username,
            token_id: None,
            name: j.name,
            outcome: format!(
                "unknown: a run that died was delivering {what} to {target}, which cannot be read ({e}); `mdops journal resolve` tries again"
            ),
            revoked: false,
        }),
        None => {
            let note = format!("{target}, unconfirmed: the run died while writing it");
            if let Err(e) = store.journal_unconfirmed(&j.fingerprint, &note) {
                rt.warn(&format!("{what}: the journal could not record it: {}", e.0));
            }
            rt.warn(&format!(
                "{what}: a run that died was delivering it to {target}, which cannot be read back here; \
                 it is kept as delivered: if {target} does not hold it, revoke it"
            ));
            None
        }
    }
}

/// Revokes a journaled token of a dead run, and says how that went.
fn revoke_entry(
    rt: &Runtime,
    j: crate::store::JournalEntry,
    deadline: Instant,
    why: &str,
) -> Settled {
    let (outcome, gone) = revoke(rt, &j.username, &j.token_id, deadline, why);
    Settled {
        username: j.username,
        token_id: Some(j.token_id),
        name: j.name,
        outcome,
        revoked: gone,
    }
}
