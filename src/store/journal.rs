//! The token journal: every token mdops mints, and what became of it.

use super::audit::AuditRecord;
use super::conn::Conn;
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
    /// Where its last announced delivery was going (a target id), and
    /// from which machine.
    pub delivering_to: Option<String>,
    pub delivering_host: Option<String>,
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
        delivering_to: r.opt_text("delivering_to")?,
        delivering_host: r.opt_text("delivering_host")?,
    })
}

fn rows(rows: Vec<Row>) -> Result<Vec<JournalEntry>> {
    rows.iter().map(from_row).collect()
}

/// Records that a token was revoked (or found gone), on `c`.
pub(super) fn revoked(c: &mut Conn, token_id: &str) -> Result<()> {
    c.exec(
        &Sql::pg(
            "UPDATE token_journal SET revoked_at = ?2 WHERE token_id = ?1 COLLATE NOCASE AND revoked_at IS NULL",
            "UPDATE token_journal SET revoked_at = $2 WHERE lower(token_id) = lower($1) AND revoked_at IS NULL",
        ),
        p![token_id, &now()],
    )?;
    Ok(())
}

/// A token's group: its name without a rotation generation (`app.g3` is `app`).
pub fn group_of(name: Option<&str>) -> String {
    let name = name.unwrap_or("");
    match name.rsplit_once(".g") {
        Some((base, digits))
            if !digits.is_empty()
                && digits.len() <= 9
                && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            base.to_string()
        }
        _ => name.to_string(),
    }
}

fn record_delivery(
    c: &mut Conn,
    target: &str,
    username: &str,
    group: &str,
    token_id: &str,
) -> Result<()> {
    c.exec(
        &Sql::same(
            "INSERT INTO deliveries (target, username, grp, token_id, at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (target) DO UPDATE SET username = excluded.username, grp = excluded.grp,
                token_id = excluded.token_id, at = excluded.at",
        ),
        p![target, username, group, token_id, &now()],
    )?;
    Ok(())
}

fn delivered(c: &mut Conn, fingerprint: &str, sink: &str) -> Result<Option<JournalEntry>> {
    c.exec(
        &Sql::same(
            "UPDATE token_journal SET delivered_at = ?2,
                sink = CASE WHEN sink IS NULL THEN ?3 ELSE sink || ', ' || ?3 END
             WHERE fingerprint = ?1",
        ),
        p![fingerprint, &now(), sink],
    )?;
    c.query_opt(
        &Sql::same("SELECT * FROM token_journal WHERE fingerprint = ?1"),
        p![fingerprint],
    )?
    .map(|r| from_row(&r))
    .transpose()
}

const BY_TOKEN_ID: Sql = Sql::pg(
    "SELECT * FROM token_journal WHERE token_id = ?1 COLLATE NOCASE",
    "SELECT * FROM token_journal WHERE lower(token_id) = lower($1)",
);

impl Store {
    /// Records a minted token and closes the attempt that minted it (and, when
    /// given, the create's audit record), in one transaction: afterwards the
    /// journal knows the token by id.
    pub fn journal_minted(
        &self,
        run_id: &str,
        attempt: Option<i64>,
        username: &str,
        token: &Token,
        fingerprint: &str,
        audit: Option<&AuditRecord>,
    ) -> Result<()> {
        let minted_at = now();
        self.conn().transaction(|c| {
            if let Some(rec) = audit {
                super::audit::insert(c, rec)?;
            }
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

    /// Records that the script took the value itself (`reveal()`).
    pub fn journal_revealed(&self, token_id: &str) -> Result<()> {
        self.conn().exec(
            &Sql::same("UPDATE token_journal SET revealed_at = ?2 WHERE token_id = ?1 AND revealed_at IS NULL"),
            p![token_id, &now()],
        )?;
        // The value is handed over next, out of the journal's sight: durably,
        // or a power loss would have the token revoked as never delivered.
        self.durable()
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

    /// Tokens of a run whose delivery was announced and never confirmed (nor
    /// revealed or revoked since): the run died while the sink was written.
    pub fn journal_interrupted(&self, run_id: &str) -> Result<Vec<JournalEntry>> {
        rows(self.conn().query(
            &Sql::same(
                "SELECT * FROM token_journal WHERE run_id = ?1 AND delivered_at IS NOT NULL
                   AND sink IS NULL AND revealed_at IS NULL AND revoked_at IS NULL ORDER BY id",
            ),
            p![run_id],
        )?)
    }

    /// A delivery cut short whose target cannot be read back: kept as
    /// delivered (it may be there), with `note` where the sink goes.
    pub fn journal_unconfirmed(&self, fingerprint: &str, note: &str) -> Result<()> {
        self.conn().exec(
            &Sql::same(
                "UPDATE token_journal SET sink = ?2 WHERE fingerprint = ?1 AND sink IS NULL",
            ),
            p![fingerprint, note],
        )?;
        Ok(())
    }

    /// Records, before a sink is written, that the token is being delivered:
    /// a run killed while the write is in flight (a store's answer pending)
    /// leaves a token that may be in its target, so the next run must treat
    /// it as delivered, to be replaced by a verified successor, never revoke
    /// it as one nobody received. Durable, as a power loss mid-write is a
    /// run killed mid-write too.
    /// `target` (its id) is kept, with this machine's name, for a run that
    /// finds the delivery cut short (see [`Store::journal_interrupted`]).
    ///
    /// Refused (nothing recorded) when another run's token is at `target`
    /// (the last delivered there) or on its way there, and that run is still
    /// open or minted it after `run_id` began: writing over it would leave
    /// it live with nobody holding it. (A file or env file of another
    /// machine is another file.) Returns that token then: `(token id,
    /// account, run id)`. The check and the record are one step: on
    /// PostgreSQL under a lock on the target, on SQLite in one write.
    pub fn journal_delivering(
        &self,
        fingerprint: &str,
        target: &str,
        run_id: &str,
    ) -> Result<Option<(String, String, String)>> {
        // Another run's token at the target, or on its way there.
        macro_rules! others {
            ($fp:literal, $target:literal, $run:literal, $host:literal) => {
                concat!(
                    "SELECT token_id, username, run_id FROM token_journal o
                     WHERE (o.delivering_to = ", $target, "
                            OR o.token_id = (SELECT d.token_id FROM deliveries d WHERE d.target = ", $target, "))
                       AND o.fingerprint <> ", $fp, " AND o.revoked_at IS NULL AND o.run_id <> ", $run, "
                       AND (", $target, " NOT LIKE 'file:%' AND ", $target, " NOT LIKE 'env-file:%'
                            OR o.delivering_host IS NULL OR o.delivering_host = ", $host, ")
                       AND (o.run_id IN (SELECT run_id FROM runs WHERE ended_at IS NULL)
                            OR o.minted_at >= (SELECT started_at FROM runs WHERE run_id = ", $run, "))"
                )
            };
        }
        const ANNOUNCE: Sql = Sql::same(concat!(
            "UPDATE token_journal SET delivered_at = COALESCE(delivered_at, ?5),
                delivering_to = ?2, delivering_host = ?4
             WHERE fingerprint = ?1 AND NOT EXISTS (",
            others!("?1", "?2", "?3", "?4"),
            ")"
        ));
        const HOLDER: Sql = Sql::same(concat!(others!("?1", "?2", "?3", "?4"), " LIMIT 1"));
        let host = super::host_name();
        let holder = self.conn().transaction(|c| {
            if c.is_postgres() {
                // Each statement sees what committed before it (the default,
                // but a server may default to a snapshot per transaction,
                // which would miss an announcement made while the lock was
                // waited for).
                c.batch("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")?;
                c.query(
                    &Sql::same("SELECT pg_advisory_xact_lock(?1)::text AS locked"),
                    &[super::db::P::Int(Some(super::pg::lock_key(
                        "target", target,
                    )))],
                )?;
            }
            if c.exec(&ANNOUNCE, p![fingerprint, target, run_id, host, &now()])? > 0 {
                return Ok(None);
            }
            c.query_opt(&HOLDER, p![fingerprint, target, run_id, host])?
                .map(|r| Ok((r.text("token_id")?, r.text("username")?, r.text("run_id")?)))
                .transpose()
        })?;
        if holder.is_some() {
            return Ok(holder);
        }
        self.durable().inspect_err(|_| {
            // Nothing is written then: the announcement is taken back.
            let _ = self.journal_not_delivered(fingerprint, target);
        })?;
        Ok(None)
    }

    /// The delivery to `target` announced by [`Store::journal_delivering`]
    /// failed: the announcement is taken back (and the token counts as
    /// delivered no more, if it was delivered nowhere before).
    pub fn journal_not_delivered(&self, fingerprint: &str, target: &str) -> Result<()> {
        self.conn().exec(
            &Sql::same(
                "UPDATE token_journal SET
                    delivered_at = CASE WHEN sink IS NULL THEN NULL ELSE delivered_at END,
                    delivering_to = NULL, delivering_host = NULL
                 WHERE fingerprint = ?1 AND delivering_to = ?2",
            ),
            p![fingerprint, target],
        )?;
        Ok(())
    }

    /// Records a delivery to `target` (labelled `sink`) and whose token the
    /// target now holds, in one transaction: `owner` when the caller knows it
    /// (`(username, token id, name)`), else the journal's entry for the secret,
    /// else nobody mdops knows (the target's record is dropped). Returns the
    /// journal's entry.
    pub fn journal_delivered_to(
        &self,
        fingerprint: &str,
        sink: &str,
        target: &str,
        owner: Option<(String, String, Option<String>)>,
    ) -> Result<Option<JournalEntry>> {
        self.conn().transaction(|c| {
            let entry = delivered(c, fingerprint, sink)?;
            let owner = owner.or_else(|| {
                entry
                    .as_ref()
                    .map(|j| (j.username.clone(), j.token_id.clone(), j.name.clone()))
            });
            match owner {
                Some((username, id, name)) => {
                    record_delivery(c, target, &username, &group_of(name.as_deref()), &id)?
                }
                None => {
                    c.exec(
                        &Sql::same("DELETE FROM deliveries WHERE target = ?1"),
                        p![target],
                    )?;
                }
            }
            Ok(entry)
        })
    }

    /// Records that the token with this secret was verified; whether the
    /// journal knows it.
    pub fn journal_verified(&self, fingerprint: &str) -> Result<bool> {
        let n = self.conn().exec(
            &Sql::same("UPDATE token_journal SET verified_at = ?2 WHERE fingerprint = ?1"),
            p![fingerprint, &now()],
        )?;
        Ok(n > 0)
    }

    /// A call's audit record and what the journal learnt from the call, in one
    /// transaction: one commit instead of two for each revoke of a rotation.
    pub fn audit_revoked(&self, rec: &AuditRecord, token_id: &str) -> Result<()> {
        self.conn().transaction(|c| {
            super::audit::insert(c, rec)?;
            revoked(c, token_id)
        })
    }

    pub fn journal_revoked(&self, token_id: &str) -> Result<()> {
        revoked(&mut self.conn(), token_id)
    }

    pub fn journal_get(&self, token_id: &str) -> Result<Option<JournalEntry>> {
        self.conn()
            .query_opt(&BY_TOKEN_ID, p![token_id])?
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SecretString;
    use crate::store::AuditFilter;

    /// A revoke's audit record and the journal's note land together; so do a
    /// delivery, the journal's note of it and whose token the target holds
    /// (the journal's entry when the caller does not know the owner).
    #[test]
    fn combined_writes_land_together() {
        let s = Store::in_memory().unwrap();
        let token: crate::api::Token = serde_json::from_value(serde_json::json!({
            "id": "t-1", "name": "app.g2", "created_ts": "2026-01-01T00:00:00Z",
            "read_only": false, "token_type": "read_write"
        }))
        .unwrap();
        let secret = SecretString::new("secret-value-1");
        let fp = s.fingerprint(&secret);
        let rec = |op: &str| AuditRecord {
            at: String::new(),
            profile: None,
            api: None,
            operation: op.into(),
            target: "acct/t-1".into(),
            outcome: "ok".into(),
            status: None,
            detail: None,
        };
        s.journal_minted("run", None, "acct", &token, &fp, Some(&rec("create token")))
            .unwrap();
        let entry = s
            .journal_delivered_to(&fp, "file:/x", "file:/x", None)
            .unwrap()
            .unwrap();
        assert_eq!(entry.sink.as_deref(), Some("file:/x"));
        assert!(entry.delivered_at.is_some());
        assert_eq!(
            s.delivery_owner("file:/x").unwrap(),
            Some(("acct".into(), "app".into(), "t-1".into()))
        );
        // A secret mdops never minted: the target's record is dropped.
        let other = s.fingerprint(&SecretString::new("not-ours-value"));
        assert_eq!(
            s.journal_delivered_to(&other, "file:/x", "file:/x", None)
                .unwrap(),
            None
        );
        assert_eq!(s.delivery_owner("file:/x").unwrap(), None);
        s.audit_revoked(&rec("revoke token"), "T-1").unwrap();
        assert!(s.journal_get("t-1").unwrap().unwrap().revoked_at.is_some());
        let ops: Vec<String> = s
            .audit_list(&AuditFilter::default())
            .unwrap()
            .into_iter()
            .map(|r| r.operation)
            .collect();
        assert_eq!(ops, ["create token", "revoke token"]);
    }
}
