//! The token journal: every token mdops mints, and what became of it.

use super::db::{p, Row, Sql};
use super::{now, Result, Store};
use crate::api::Token;
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

fn from_row(r: &Row) -> Result<JournalEntry> {
    Ok(JournalEntry {
        username: r.text("username")?,
        token_id: r.text("token_id")?,
        name: r.opt_text("name")?,
        token_type: r.opt_text("token_type")?,
        expire_at: r.opt_text("expire_at")?,
        fingerprint: r.text("fingerprint")?,
        minted_at: r.text("minted_at")?,
        delivered_at: r.opt_text("delivered_at")?,
        verified_at: r.opt_text("verified_at")?,
        revoked_at: r.opt_text("revoked_at")?,
        sink: r.opt_text("sink")?,
        revealed_at: r.opt_text("revealed_at")?,
        run_id: r.opt_text("run_id")?,
    })
}

fn rows(rows: Vec<Row>) -> Result<Vec<JournalEntry>> {
    rows.iter().map(from_row).collect()
}

const BY_TOKEN_ID: Sql = Sql::pg(
    "SELECT * FROM token_journal WHERE token_id = ?1 COLLATE NOCASE",
    "SELECT * FROM token_journal WHERE lower(token_id) = lower($1)",
);

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
        let minted_at = now();
        self.conn().transaction(|c| {
            c.exec(
                &Sql::same("INSERT INTO token_journal (username, token_id, name, token_type, expire_at, fingerprint, minted_at, run_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (token_id) DO NOTHING"),
                p![
                    username,
                    &token.id,
                    &token.name,
                    token.token_type.as_str(),
                    &token.expire_at,
                    fingerprint,
                    &minted_at,
                    run_id
                ],
            )?;
            if let Some(attempt) = attempt {
                c.exec(
                    &Sql::same("UPDATE token_attempts SET token_id = ?2, resolved_at = ?3, outcome = 'minted' WHERE id = ?1"),
                    p![attempt, &token.id, &minted_at],
                )?;
            }
            Ok(())
        })
    }

    /// Who a sink target belongs to: `(username, token group, last token id)`.
    pub fn delivery_owner(&self, target: &str) -> Result<Option<(String, String, String)>> {
        self.conn()
            .query_opt(
                &Sql::same("SELECT username, grp, token_id FROM deliveries WHERE target = ?1"),
                p![target],
            )?
            .map(|r| Ok((r.text("username")?, r.text("grp")?, r.text("token_id")?)))
            .transpose()
    }

    /// The targets that hold this token, as far as deliveries tell: where it
    /// was delivered and nothing was delivered since.
    pub fn delivery_targets(&self, token_id: &str) -> Result<Vec<String>> {
        self.conn()
            .query(
                &Sql::same("SELECT target FROM deliveries WHERE token_id = ?1 ORDER BY target"),
                p![token_id],
            )?
            .iter()
            .map(|r| r.text("target"))
            .collect()
    }

    /// Forgets what a target holds (it now holds a token mdops did not mint).
    pub fn delivery_forget(&self, target: &str) -> Result<()> {
        self.conn().exec(
            &Sql::same("DELETE FROM deliveries WHERE target = ?1"),
            p![target],
        )?;
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
        self.conn().exec(
            &Sql::same(
                "INSERT INTO deliveries (target, username, grp, token_id, at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (target) DO UPDATE SET username = excluded.username, grp = excluded.grp,
                    token_id = excluded.token_id, at = excluded.at",
            ),
            p![target, username, group, token_id, &now()],
        )?;
        Ok(())
    }

    /// Records that the script took the value itself (`reveal()`).
    pub fn journal_revealed(&self, token_id: &str) -> Result<()> {
        self.conn().exec(
            &Sql::same("UPDATE token_journal SET revealed_at = ?2 WHERE token_id = ?1 AND revealed_at IS NULL"),
            p![token_id, &now()],
        )?;
        Ok(())
    }

    /// Tokens a run minted and never settled: not delivered, revealed or revoked.
    pub fn journal_unsettled(&self, run_id: &str) -> Result<Vec<JournalEntry>> {
        rows(self.conn().query(
            &Sql::same(
                "SELECT * FROM token_journal WHERE run_id = ?1 AND delivered_at IS NULL
                   AND revealed_at IS NULL AND revoked_at IS NULL ORDER BY id",
            ),
            p![run_id],
        )?)
    }

    /// Records, before a sink is written, that the token is being delivered:
    /// a run killed while the write is in flight (a store's answer pending)
    /// leaves a token that may be in its target, so the next run must treat
    /// it as delivered, to be replaced by a verified successor, never revoke
    /// it as one nobody received.
    pub fn journal_delivering(&self, fingerprint: &str) -> Result<()> {
        self.conn().exec(
            &Sql::same(
                "UPDATE token_journal SET delivered_at = COALESCE(delivered_at, ?2) WHERE fingerprint = ?1",
            ),
            p![fingerprint, &now()],
        )?;
        Ok(())
    }

    /// The delivery announced by [`Store::journal_delivering`] failed, and
    /// the token was delivered nowhere before.
    pub fn journal_not_delivered(&self, fingerprint: &str) -> Result<()> {
        self.conn().exec(
            &Sql::same(
                "UPDATE token_journal SET delivered_at = NULL WHERE fingerprint = ?1 AND sink IS NULL",
            ),
            p![fingerprint],
        )?;
        Ok(())
    }

    /// Records a delivery; returns the token it was for, if mdops minted it.
    pub fn journal_delivered(&self, fingerprint: &str, sink: &str) -> Result<Option<JournalEntry>> {
        self.conn().exec(
            &Sql::same(
                "UPDATE token_journal SET delivered_at = ?2,
                    sink = CASE WHEN sink IS NULL THEN ?3 ELSE sink || ', ' || ?3 END
                 WHERE fingerprint = ?1",
            ),
            p![fingerprint, &now(), sink],
        )?;
        self.journal_by_fingerprint(fingerprint)
    }

    pub fn journal_verified(&self, fingerprint: &str) -> Result<()> {
        self.conn().exec(
            &Sql::same("UPDATE token_journal SET verified_at = ?2 WHERE fingerprint = ?1"),
            p![fingerprint, &now()],
        )?;
        Ok(())
    }

    pub fn journal_revoked(&self, token_id: &str) -> Result<()> {
        self.conn().exec(
            &Sql::pg(
                "UPDATE token_journal SET revoked_at = ?2 WHERE token_id = ?1 COLLATE NOCASE AND revoked_at IS NULL",
                "UPDATE token_journal SET revoked_at = $2 WHERE lower(token_id) = lower($1) AND revoked_at IS NULL",
            ),
            p![token_id, &now()],
        )?;
        Ok(())
    }

    pub fn journal_get(&self, token_id: &str) -> Result<Option<JournalEntry>> {
        self.conn()
            .query_opt(&BY_TOKEN_ID, p![token_id])?
            .map(|r| from_row(&r))
            .transpose()
    }

    pub fn journal_by_fingerprint(&self, fingerprint: &str) -> Result<Option<JournalEntry>> {
        self.conn()
            .query_opt(
                &Sql::same("SELECT * FROM token_journal WHERE fingerprint = ?1"),
                p![fingerprint],
            )?
            .map(|r| from_row(&r))
            .transpose()
    }

    /// Journal entries, newest first, optionally of one account.
    pub fn journal_list(&self, username: Option<&str>) -> Result<Vec<JournalEntry>> {
        rows(self.conn().query(
            &Sql::pg(
                "SELECT * FROM token_journal WHERE (?1 IS NULL OR username = ?1) ORDER BY minted_at DESC, id DESC",
                "SELECT * FROM token_journal WHERE ($1::text IS NULL OR lower(username::text) = lower($1::text)) ORDER BY minted_at DESC, id DESC",
            ),
            p![username],
        )?)
    }
}
