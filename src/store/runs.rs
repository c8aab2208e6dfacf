//! Runs that mint tokens, and their token-create attempts. A run is recorded
//! before its first token create; an attempt before its request is sent. A
//! run that ends cleanly closes both. One that died (SIGKILL, a crash, power)
//! leaves them open, and the next run resolves them: it finds any token the
//! dead run minted and never settled, and revokes it.

use super::{now, sql, Result, Store};
use rusqlite::{params, Row};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub pid: i64,
    pub script: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub note: Option<String>,
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

fn run_from_row(r: &Row) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        run_id: r.get("run_id")?,
        pid: r.get("pid")?,
        script: r.get("script")?,
        started_at: r.get("started_at")?,
        ended_at: r.get("ended_at")?,
        note: r.get("note")?,
    })
}

fn attempt_from_row(r: &Row) -> rusqlite::Result<Attempt> {
    Ok(Attempt {
        id: r.get("id")?,
        run_id: r.get("run_id")?,
        username: r.get("username")?,
        name: r.get("name")?,
        started_at: r.get("started_at")?,
        token_id: r.get("token_id")?,
        resolved_at: r.get("resolved_at")?,
        outcome: r.get("outcome")?,
    })
}

impl Store {
    pub fn run_begin(&self, run_id: &str, pid: u32, script: &str) -> Result<()> {
        self.conn()
            .prepare_cached(
                "INSERT INTO runs (run_id, pid, script, started_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (run_id) DO NOTHING",
            )
            .map_err(sql)?
            .execute(params![run_id, pid, script, now()])
            .map_err(sql)?;
        Ok(())
    }

    pub fn run_end(&self, run_id: &str, note: Option<&str>) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE runs SET ended_at = ?2, note = COALESCE(?3, note) WHERE run_id = ?1 AND ended_at IS NULL",
            )
            .map_err(sql)?
            .execute(params![run_id, now(), note])
            .map_err(sql)?;
        Ok(())
    }

    /// Marks a run's leftovers resolved (by a later run).
    pub fn run_resolved(&self, run_id: &str, note: &str) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE runs SET ended_at = COALESCE(ended_at, ?2), note = ?3 WHERE run_id = ?1",
            )
            .map_err(sql)?
            .execute(params![run_id, now(), note])
            .map_err(sql)?;
        Ok(())
    }

    /// Runs with something left to settle: not ended (alive, or dead without
    /// cleaning up), or ended with tokens they could not revoke.
    pub fn runs_open(&self) -> Result<Vec<RunRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT * FROM runs WHERE ended_at IS NULL OR note = 'unresolved' ORDER BY started_at",
            )
            .map_err(sql)?;
        let rows = stmt.query_map([], run_from_row).map_err(sql)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
    }

    /// Journals a token create before its request is sent.
    pub fn attempt_begin(&self, run_id: &str, username: &str, name: &str) -> Result<i64> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO token_attempts (run_id, username, name, started_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(sql)?
        .execute(params![run_id, username, name, now()])
        .map_err(sql)?;
        Ok(conn.last_insert_rowid())
    }

    /// Closes an attempt whose outcome is known (`failed`, `revoked 1 orphan`, ...).
    pub fn attempt_resolve(&self, id: i64, outcome: &str) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE token_attempts SET resolved_at = ?2, outcome = ?3 WHERE id = ?1 AND resolved_at IS NULL",
            )
            .map_err(sql)?
            .execute(params![id, now(), outcome])
            .map_err(sql)?;
        Ok(())
    }

    /// A run's attempts whose outcome is unknown.
    pub fn attempts_open(&self, run_id: &str) -> Result<Vec<Attempt>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT * FROM token_attempts WHERE run_id = ?1 AND resolved_at IS NULL ORDER BY id",
            )
            .map_err(sql)?;
        let rows = stmt.query_map([run_id], attempt_from_row).map_err(sql)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_stay_open_until_resolved() {
        let s = Store::in_memory().unwrap();
        s.run_begin("r1", 42, "rotate-tokens").unwrap();
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
