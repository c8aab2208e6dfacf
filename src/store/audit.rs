//! The audit log: one row per mutating API call, whatever its outcome. Never
//! a secret and never a request body that could hold one.

use super::conn::Conn;
use super::db::{p, Row, Sql};
use super::{now, Result, Store};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct AuditRecord {
    pub at: String,
    pub profile: Option<String>,
    pub api: Option<String>,
    /// `create account`, `create token`, `revoke token`, `set ducklings`, ...
    pub operation: String,
    /// The account (and token id) acted on.
    pub target: String,
    /// `ok` or `error`.
    pub outcome: String,
    pub status: Option<u16>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this account (case-insensitive), tokens of it included.
    pub account: Option<String>,
    /// Only records at or after this RFC 3339 time.
    pub since: Option<String>,
    pub limit: Option<usize>,
}

fn from_row(r: &Row) -> Result<AuditRecord> {
    Ok(AuditRecord {
        at: r.text("at")?,
        profile: r.opt_text("profile")?,
        api: r.opt_text("api")?,
        operation: r.text("operation")?,
        target: r.text("target")?,
        outcome: r.text("outcome")?,
        status: r.opt_int("status")?.map(|s| s as u16),
        detail: r.opt_text("detail")?,
    })
}

/// Inserts an audit record on `c` (in whatever transaction `c` is in).
pub(super) fn insert(c: &mut Conn, rec: &AuditRecord) -> Result<()> {
    let at = if rec.at.is_empty() {
        now()
    } else {
        rec.at.clone()
    };
    c.exec(
        &Sql::same(
            "INSERT INTO audit (at, profile, api, operation, target, outcome, status, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        ),
        p![
            &at,
            &rec.profile,
            &rec.api,
            &rec.operation,
            &rec.target,
            &rec.outcome,
            rec.status.map(i64::from),
            &rec.detail
        ],
    )?;
    Ok(())
}

impl Store {
    pub fn audit(&self, rec: &AuditRecord) -> Result<()> {
        insert(&mut self.conn(), rec)
    }

    /// Matching records, oldest first (the last `limit` ones when limited).
    pub fn audit_list(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut conn = self.conn();
        // SQLite's "no limit" is -1; PostgreSQL's is NULL.
        let limit = match f.limit {
            Some(l) => Some(l as i64),
            None if conn.is_postgres() => None,
            None => Some(-1),
        };
        conn.query(
            &Sql::pg(
                "SELECT * FROM (
                    SELECT * FROM audit
                    WHERE (?1 IS NULL OR target = ?1
                           OR substr(target, 1, length(?1) + 1) = ?1 || '/' COLLATE NOCASE)
                      AND (?2 IS NULL OR at >= ?2)
                    ORDER BY at DESC, id DESC
                    LIMIT ?3
                 ) AS recent ORDER BY at, id",
                "SELECT * FROM (
                    SELECT * FROM audit
                    WHERE ($1::text IS NULL OR lower(target::text) = lower($1::text)
                           OR lower(substr(target::text, 1, length($1::text) + 1)) = lower($1::text || '/'))
                      AND ($2::text IS NULL OR at >= $2::text)
                    ORDER BY at DESC, id DESC
                    LIMIT $3::bigint
                 ) AS recent ORDER BY at, id",
            ),
            p![&f.account, &f.since, limit],
        )?
        .iter()
        .map(from_row)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_account_and_time() {
        let s = Store::in_memory().unwrap();
        for (at, target) in [
            ("2026-01-01T00:00:00.000Z", "a_one"),
            ("2026-02-01T00:00:00.000Z", "a_one/tok-1"),
            ("2026-03-01T00:00:00.000Z", "b_two"),
        ] {
            s.audit(&AuditRecord {
                at: at.into(),
                operation: "x".into(),
                target: target.into(),
                outcome: "ok".into(),
                ..Default::default()
            })
            .unwrap();
        }
        let f = |account: Option<&str>, since: Option<&str>, limit| AuditFilter {
            account: account.map(String::from),
            since: since.map(String::from),
            limit,
        };
        assert_eq!(
            s.audit_list(&f(Some("A_ONE"), None, None)).unwrap().len(),
            2
        );
        assert_eq!(
            s.audit_list(&f(None, Some("2026-02-01T00:00:00.000Z"), None))
                .unwrap()
                .len(),
            2
        );
        let last = s.audit_list(&f(None, None, Some(1))).unwrap();
        assert_eq!(last[0].target, "b_two");
    }
}
