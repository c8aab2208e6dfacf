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

pub(super) fn rows(rows: Vec<Row>) -> Result<Vec<JournalEntry>> {
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
