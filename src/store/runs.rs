//! Runs that mint tokens, and their token-create attempts. A run is recorded
//! before its first token create; an attempt before its request is sent. A
//! run that ends cleanly closes both. One that died (SIGKILL, a crash, power)
//! leaves them open, and the next run resolves them: it finds any token the
//! dead run minted and never settled, and revokes it.

use super::db::{p, Row, Sql};
use super::{now, Result, Store};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub pid: i64,
    pub script: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub note: Option<String>,
    /// The base URL of the API the run worked on (`None` for runs recorded
    /// before mdops kept it).
    pub api: Option<String>,
    /// The journal's fingerprint of the admin token the run used (which
    /// organization: one URL serves them all).
    pub admin: Option<String>,
}

/// A token create whose request was sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub id: i64,
    pub run_id: String,
    pub username: String,
    pub name: String,
    pub started_at: String,
    pub token_id: Option<String>,
    pub resolved_at: Option<String>,
    pub outcome: Option<String>,
}

/// What a run left to settle (see [`Store::run_left`]).
pub struct Left {
    pub interrupted: Vec<super::JournalEntry>,
    pub unsettled: Vec<super::JournalEntry>,
    pub attempts: Vec<Attempt>,
}

impl Left {
    pub fn is_empty(&self) -> bool {
        self.interrupted.is_empty() && self.unsettled.is_empty() && self.attempts.is_empty()
    }
}

/// Which organization a run works on: its API's base URL and the journal's
/// fingerprint of its admin token (either unknown: `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Org {
    pub api: Option<String>,
    pub admin: Option<String>,
}

impl RunRecord {
    /// What tells this run's organization from `here`: its API, its admin
    /// token, or both; `None` when nothing does. A value the run did not
    /// record (a run from before mdops kept it), or that `here` does not
    /// know, matches.
    pub fn elsewhere(&self, here: &Org) -> Option<String> {
        let differs = |then: &Option<String>, now: &Option<String>| {
            then.is_some() && now.is_some() && then != now
        };
        let api = differs(&self.api, &here.api)
            .then(|| format!("API {}", self.api.as_deref().unwrap_or_default()));
        let admin = differs(&self.admin, &here.admin).then(|| "another admin token".to_string());
        match (api, admin) {
            (None, None) => None,
            (a, b) => Some(a.into_iter().chain(b).collect::<Vec<_>>().join(", ")),
        }
    }
}

fn run_from_row(r: &Row) -> Result<RunRecord> {
    Ok(RunRecord {
        run_id: r.text("run_id")?,
        pid: r.int("pid")?,
        script: r.text("script")?,
        started_at: r.text("started_at")?,
        ended_at: r.opt_text("ended_at")?,
        note: r.opt_text("note")?,
        api: r.opt_text("api")?,
        admin: r.opt_text("admin")?,
    })
}

fn attempt_from_row(r: &Row) -> Result<Attempt> {
    Ok(Attempt {
        id: r.int("id")?,
        run_id: r.text("run_id")?,
        username: r.text("username")?,
        name: r.text("name")?,
        started_at: r.text("started_at")?,
        token_id: r.opt_text("token_id")?,
        resolved_at: r.opt_text("resolved_at")?,
        outcome: r.opt_text("outcome")?,
    })
}

impl Store {
    pub fn run_begin(&self, run_id: &str, pid: u32, script: &str, org: &Org) -> Result<()> {
        self.conn().exec(
            &Sql::same(
                "INSERT INTO runs (run_id, pid, script, started_at, api, admin)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (run_id) DO NOTHING",
            ),
            p![
                run_id,
                i64::from(pid),
                script,
                &now(),
                org.api.as_deref(),
                org.admin.as_deref()
            ],
        )?;
        Ok(())
    }

    pub fn run_end(&self, run_id: &str, note: Option<&str>) -> Result<()> {
        self.conn().exec(
            &Sql::pg(
                "UPDATE runs SET ended_at = ?2, note = COALESCE(?3, note) WHERE run_id = ?1 AND ended_at IS NULL",
                "UPDATE runs SET ended_at = $2, note = COALESCE($3::text, note) WHERE run_id = $1 AND ended_at IS NULL",
            ),
            p![run_id, &now(), note],
        )?;
        Ok(())
    }

    /// Marks a run's leftovers resolved (by a later run).
    pub fn run_resolved(&self, run_id: &str, note: &str) -> Result<()> {
        self.conn().exec(
            &Sql::pg(
                "UPDATE runs SET ended_at = COALESCE(ended_at, ?2), note = ?3 WHERE run_id = ?1",
                "UPDATE runs SET ended_at = COALESCE(ended_at, $2::text), note = $3 WHERE run_id = $1",
            ),
            p![run_id, &now(), note],
        )?;
        Ok(())
    }

    /// Runs with something left to settle: not ended (alive, or dead without
    /// cleaning up), or ended with tokens they could not revoke.
    pub fn runs_open(&self) -> Result<Vec<RunRecord>> {
        self.conn()
            .query(
                &Sql::same(
                    "SELECT * FROM runs WHERE ended_at IS NULL OR note = 'unresolved' ORDER BY started_at",
                ),
                &[],
            )?
            .iter()
            .map(run_from_row)
            .collect()
    }

    /// Journals a token create before its request is sent, durably: a power
    /// loss must not leave a live token no journal knows of.
    pub fn attempt_begin(&self, run_id: &str, username: &str, name: &str) -> Result<i64> {
        let id = self.conn().insert_id(
            &Sql::pg(
                "INSERT INTO token_attempts (run_id, username, name, started_at) VALUES (?1, ?2, ?3, ?4)",
                "INSERT INTO token_attempts (run_id, username, name, started_at) VALUES ($1, $2, $3, $4) RETURNING id",
            ),
            p![run_id, username, name, &now()],
        )?;
        if let Err(e) = self.durable() {
            // Never sent: say so, rather than leave it open for ever.
            let _ = self.attempt_resolve(id, "not sent: the state could not be flushed to disk");
            return Err(e);
        }
        Ok(id)
    }

    /// Closes an attempt whose outcome is known (`failed`, `revoked 1 orphan`, ...).
    pub fn attempt_resolve(&self, id: i64, outcome: &str) -> Result<()> {
        self.conn().exec(
            &Sql::same(
                "UPDATE token_attempts SET resolved_at = ?2, outcome = ?3 WHERE id = ?1 AND resolved_at IS NULL",
            ),
            p![id, &now(), outcome],
        )?;
        Ok(())
    }

    /// What a run left to settle: deliveries cut short, tokens minted and
    /// never settled, creates whose answer never came.
    pub fn run_left(&self, run_id: &str) -> Result<Left> {
        Ok(Left {
            interrupted: self.journal_interrupted(run_id)?,
            unsettled: self.journal_unsettled(run_id)?,
            attempts: self.attempts_open(run_id)?,
        })
    }

    /// A run's attempts whose outcome is unknown.
    pub fn attempts_open(&self, run_id: &str) -> Result<Vec<Attempt>> {
        self.conn()
            .query(
                &Sql::same(
                    "SELECT * FROM token_attempts WHERE run_id = ?1 AND resolved_at IS NULL ORDER BY id",
                ),
                p![run_id],
            )?
            .iter()
            .map(attempt_from_row)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_elsewhere_only_by_what_both_sides_know() {
        let org = |api: Option<&str>, admin: Option<&str>| Org {
            api: api.map(Into::into),
            admin: admin.map(Into::into),
        };
        let run = |o: Org| RunRecord {
            run_id: "r".into(),
            pid: 1,
            script: "s".into(),
            started_at: "t".into(),
            ended_at: None,
            note: None,
            api: o.api,
            admin: o.admin,
        };
        let here = org(Some("https://a"), Some("f1"));
        assert_eq!(
            run(org(Some("https://a"), Some("f1"))).elsewhere(&here),
            None
        );
        assert_eq!(
            run(org(None, None)).elsewhere(&here),
            None,
            "recorded before"
        );
        assert_eq!(
            run(org(Some("https://b"), Some("f1")))
                .elsewhere(&here)
                .as_deref(),
            Some("API https://b")
        );
        assert_eq!(
            run(org(Some("https://a"), Some("f2")))
                .elsewhere(&here)
                .as_deref(),
            Some("another admin token")
        );
        assert_eq!(
            run(org(Some("https://b"), Some("f2")))
                .elsewhere(&here)
                .as_deref(),
            Some("API https://b, another admin token")
        );
        let no_token = org(Some("https://a"), None);
        assert_eq!(
            run(org(Some("https://a"), Some("f2"))).elsewhere(&no_token),
            None
        );
    }

    #[test]
    fn attempts_stay_open_until_resolved() {
        let s = Store::in_memory().unwrap();
        s.run_begin("r1", 42, "rotate-tokens", &Org::default())
            .unwrap();
        let a = s.attempt_begin("r1", "tenant_a", "app.g1").unwrap();
        let b = s.attempt_begin("r1", "tenant_a", "app.g2").unwrap();
        assert_eq!(s.attempts_open("r1").unwrap().len(), 2);
        s.attempt_resolve(a, "failed").unwrap();
        let open = s.attempts_open("r1").unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].id, b);
        assert_eq!(s.runs_open().unwrap().len(), 1);
        s.run_end("r1", Some("clean")).unwrap();
        assert!(s.runs_open().unwrap().is_empty());
    }
}
