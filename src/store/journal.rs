//! The token journal: every token mdops mints, and what became of it.

use super::{now, sql, Result, Store};
use crate::api::Token;
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JournalEntry {
    pub username: String,
    pub token_id: String,
    pub name: Option<String>,
    pub token_type: Option<String>,
    pub expire_at: Option<String>,
    /// HMAC of the secret (see [`Store::fingerprint`]).
    pub fingerprint: String,
    pub minted_at: String,
    pub delivered_at: Option<String>,
    pub verified_at: Option<String>,
    pub revoked_at: Option<String>,
    /// Where the secret went: `file:PATH`, `env-file:PATH#KEY`, `command:CMD`.
    pub sink: Option<String>,
    /// When the script took the value itself (`reveal()`).
    pub revealed_at: Option<String>,
    /// The run that minted it.
    pub run_id: Option<String>,
}

fn from_row(r: &Row) -> rusqlite::Result<JournalEntry> {
    Ok(JournalEntry {
        username: r.get("username")?,
        token_id: r.get("token_id")?,
        name: r.get("name")?,
        token_type: r.get("token_type")?,
        expire_at: r.get("expire_at")?,
        fingerprint: r.get("fingerprint")?,
        minted_at: r.get("minted_at")?,
        delivered_at: r.get("delivered_at")?,
        verified_at: r.get("verified_at")?,
        revoked_at: r.get("revoked_at")?,
        sink: r.get("sink")?,
        revealed_at: r.get("revealed_at")?,
        run_id: r.get("run_id")?,
    })
}

impl Store {
    /// Records a minted token and closes the attempt that minted it, in one
    /// transaction: afterwards the journal knows the token by id.
    pub fn journal_minted(
        &self,
        run_id: &str,
        attempt: Option<i64>,
        username: &str,
        token: &Token,
        fingerprint: &str,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql)?;
        tx.prepare_cached("INSERT INTO token_journal (username, token_id, name, token_type, expire_at, fingerprint, minted_at, run_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (token_id) DO NOTHING")
            .map_err(sql)?
            .execute(params![
                username,
                token.id,
                token.name,
                token.token_type.as_str(),
                token.expire_at,
                fingerprint,
                now(),
                run_id
            ])
            .map_err(sql)?;
        if let Some(attempt) = attempt {
            tx.prepare_cached(
                "UPDATE token_attempts SET token_id = ?2, resolved_at = ?3, outcome = 'minted' WHERE id = ?1",
            )
            .map_err(sql)?
            .execute(params![attempt, token.id, now()])
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// Who a sink target belongs to: `(username, token group, last token id)`.
    pub fn delivery_owner(&self, target: &str) -> Result<Option<(String, String, String)>> {
        self.conn()
            .prepare_cached("SELECT username, grp, token_id FROM deliveries WHERE target = ?1")
            .map_err(sql)?
            .query_row([target], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .map_err(sql)
    }

    /// The targets that hold this token, as far as deliveries tell: where it
    /// was delivered and nothing was delivered since.
    pub fn delivery_targets(&self, token_id: &str) -> Result<Vec<String>> {
        self.conn()
            .prepare_cached("SELECT target FROM deliveries WHERE token_id = ?1 ORDER BY target")
            .map_err(sql)?
            .query_map([token_id], |r| r.get(0))
            .map_err(sql)?
            .collect::<std::result::Result<Vec<String>, _>>()
            .map_err(sql)
    }

    /// Forgets what a target holds (it now holds a token mdops did not mint).
    pub fn delivery_forget(&self, target: &str) -> Result<()> {
        self.conn()
            .prepare_cached("DELETE FROM deliveries WHERE target = ?1")
            .map_err(sql)?
            .execute([target])
            .map_err(sql)?;
        Ok(())
    }

    /// Records that a target now holds this group's token.
    pub fn delivery_record(
        &self,
        target: &str,
        username: &str,
        group: &str,
        token_id: &str,
    ) -> Result<()> {
        self.conn()
            .prepare_cached(
                "INSERT INTO deliveries (target, username, grp, token_id, at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (target) DO UPDATE SET username = excluded.username, grp = excluded.grp,
                    token_id = excluded.token_id, at = excluded.at",
            )
            .map_err(sql)?
            .execute(params![target, username, group, token_id, now()])
            .map_err(sql)?;
        Ok(())
    }

    /// Records that the script took the value itself (`reveal()`).
    pub fn journal_revealed(&self, token_id: &str) -> Result<()> {
        self.conn()
            .prepare_cached("UPDATE token_journal SET revealed_at = ?2 WHERE token_id = ?1 AND revealed_at IS NULL")
            .map_err(sql)?
            .execute(params![token_id, now()])
            .map_err(sql)?;
        Ok(())
    }

    /// Tokens a run minted and never settled: not delivered, revealed or revoked.
    pub fn journal_unsettled(&self, run_id: &str) -> Result<Vec<JournalEntry>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT * FROM token_journal WHERE run_id = ?1 AND delivered_at IS NULL
                   AND revealed_at IS NULL AND revoked_at IS NULL ORDER BY id",
            )
            .map_err(sql)?;
        let rows = stmt.query_map([run_id], from_row).map_err(sql)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
    }

    /// Records a delivery; returns the token it was for, if mdops minted it.
    pub fn journal_delivered(&self, fingerprint: &str, sink: &str) -> Result<Option<JournalEntry>> {
        self.conn()
            .prepare_cached(
                "UPDATE token_journal SET delivered_at = ?2,
                    sink = CASE WHEN sink IS NULL THEN ?3 ELSE sink || ', ' || ?3 END
                 WHERE fingerprint = ?1",
            )
            .map_err(sql)?
            .execute(params![fingerprint, now(), sink])
            .map_err(sql)?;
        self.journal_by_fingerprint(fingerprint)
    }

    pub fn journal_verified(&self, fingerprint: &str) -> Result<()> {
        self.conn()
            .prepare_cached("UPDATE token_journal SET verified_at = ?2 WHERE fingerprint = ?1")
            .map_err(sql)?
            .execute(params![fingerprint, now()])
            .map_err(sql)?;
        Ok(())
    }

    pub fn journal_revoked(&self, token_id: &str) -> Result<()> {
        self.conn()
            .prepare_cached("UPDATE token_journal SET revoked_at = ?2 WHERE token_id = ?1 COLLATE NOCASE AND revoked_at IS NULL")
            .map_err(sql)?
            .execute(
                params![token_id, now()],
            )
            .map_err(sql)?;
        Ok(())
    }

    pub fn journal_get(&self, token_id: &str) -> Result<Option<JournalEntry>> {
        self.conn()
            .prepare_cached("SELECT * FROM token_journal WHERE token_id = ?1 COLLATE NOCASE")
            .map_err(sql)?
            .query_row([token_id], from_row)
            .optional()
            .map_err(sql)
    }

    pub fn journal_by_fingerprint(&self, fingerprint: &str) -> Result<Option<JournalEntry>> {
        self.conn()
            .prepare_cached("SELECT * FROM token_journal WHERE fingerprint = ?1")
            .map_err(sql)?
            .query_row([fingerprint], from_row)
            .optional()
            .map_err(sql)
    }

    /// Journal entries, newest first, optionally of one account.
    pub fn journal_list(&self, username: Option<&str>) -> Result<Vec<JournalEntry>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT * FROM token_journal WHERE (?1 IS NULL OR username = ?1) ORDER BY minted_at DESC, id DESC",
            )
            .map_err(sql)?;
        let rows = stmt.query_map([username], from_row).map_err(sql)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
    }
}
