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

fn run_from_row(r: &Row) -> Result<RunRecord> {
    Ok(RunRecord {
        run_id: r.text("run_id")?,
        pid: r.int("pid")?,
        script: r.text("script")?,
        started_at: r.text("started_at")?,
        ended_at: r.opt_text("ended_at")?,
        note: r.opt_text("note")?,
        api: r.opt_text("api")?,
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
    pub fn run_begin(&self, run_id: &str, pid: u32, script: &str, api: Option<&str>) -> Result<()> {
        self.conn().exec(
            &Sql::same(
                "INSERT INTO runs (run_id, pid, script, started_at, api) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (run_id) DO NOTHING",
            ),
            p![run_id, i64::from(pid), script, &now(), api],
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
    fn attempts_stay_open_until_resolved() {
        let s = Store::in_memory().unwrap();
        s.run_begin("r1", 42, "rotate-tokens", None).unwrap();
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
