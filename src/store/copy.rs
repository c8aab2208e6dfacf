//! `mdops state migrate`: copies every table of one store into another (a
//! local SQLite file into PostgreSQL, or back), in one transaction on the
//! destination. Copying twice changes nothing the second time: rows are
//! matched by their natural keys, and a later copy only fills in what the
//! destination lacks (a delivery, a revocation).

use super::conn::Conn;
use super::db::{Row, Sql, P};
use super::{Result, Store, StoreError};
use serde::Serialize;

/// Rows the copy added to the destination, per table.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Copied {
    pub inventory: u64,
    pub token_journal: u64,
    pub runs: u64,
    pub token_attempts: u64,
    pub deliveries: u64,
    pub audit: u64,
    /// Rows read from the source, all tables.
    pub read: u64,
}

struct Table {
    name: &'static str,
    select: Sql,
    columns: &'static [&'static str],
    insert: Sql,
}

const TABLES: &[Table] = &[
    Table {
        name: "inventory",
        select: Sql::same(
            "SELECT username, owner, purpose, tags, extra, source, first_seen, last_seen FROM inventory ORDER BY first_seen, username",
        ),
        columns: &["username", "owner", "purpose", "tags", "extra", "source", "first_seen", "last_seen"],
        insert: Sql::same(
            "INSERT INTO inventory (username, owner, purpose, tags, extra, source, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (username) DO NOTHING",
        ),
    },
    Table {
        name: "token_journal",
        select: Sql::same(
            "SELECT username, token_id, name, token_type, expire_at, fingerprint, minted_at, delivered_at, verified_at, revoked_at, sink, run_id, revealed_at, delivering_to, delivering_host, delivering_shared FROM token_journal ORDER BY id",
        ),
        columns: &[
            "username", "token_id", "name", "token_type", "expire_at", "fingerprint", "minted_at",
            "delivered_at", "verified_at", "revoked_at", "sink", "run_id", "revealed_at",
            "delivering_to", "delivering_host", "delivering_shared",
        ],
        insert: Sql::same(
            "INSERT INTO token_journal (username, token_id, name, token_type, expire_at, fingerprint, minted_at,
                delivered_at, verified_at, revoked_at, sink, run_id, revealed_at, delivering_to, delivering_host,
                delivering_shared)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
             ON CONFLICT (token_id) DO UPDATE SET
                delivered_at = COALESCE(token_journal.delivered_at, excluded.delivered_at),
                verified_at = COALESCE(token_journal.verified_at, excluded.verified_at),
                revoked_at = COALESCE(token_journal.revoked_at, excluded.revoked_at),
                revealed_at = COALESCE(token_journal.revealed_at, excluded.revealed_at),
                sink = COALESCE(token_journal.sink, excluded.sink),
                delivering_to = COALESCE(token_journal.delivering_to, excluded.delivering_to),
                delivering_host = COALESCE(token_journal.delivering_host, excluded.delivering_host),
                delivering_shared = COALESCE(token_journal.delivering_shared, excluded.delivering_shared)
             WHERE token_journal.delivered_at IS NULL AND excluded.delivered_at IS NOT NULL
                OR token_journal.verified_at IS NULL AND excluded.verified_at IS NOT NULL
                OR token_journal.revoked_at IS NULL AND excluded.revoked_at IS NOT NULL
                OR token_journal.revealed_at IS NULL AND excluded.revealed_at IS NOT NULL",
        ),
    },
    Table {
        name: "runs",
        select: Sql::same(
            "SELECT run_id, pid, script, started_at, ended_at, note, api, admin FROM runs ORDER BY started_at, run_id",
        ),
        columns: &["run_id", "pid", "script", "started_at", "ended_at", "note", "api", "admin"],
        insert: Sql::same(
            "INSERT INTO runs (run_id, pid, script, started_at, ended_at, note, api, admin)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (run_id) DO UPDATE SET ended_at = excluded.ended_at, note = excluded.note
             WHERE runs.ended_at IS NULL AND excluded.ended_at IS NOT NULL",
        ),
    },
    Table {
        name: "token_attempts",
        select: Sql::same(
            "SELECT run_id, username, name, started_at, token_id, resolved_at, outcome FROM token_attempts ORDER BY id",
        ),
        columns: &["run_id", "username", "name", "started_at", "token_id", "resolved_at", "outcome"],
        insert: Sql::pg(
            "INSERT INTO token_attempts (run_id, username, name, started_at, token_id, resolved_at, outcome)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
             WHERE NOT EXISTS (SELECT 1 FROM token_attempts
                WHERE run_id = ?1 AND username = ?2 AND name = ?3 AND started_at = ?4)",
            "INSERT INTO token_attempts (run_id, username, name, started_at, token_id, resolved_at, outcome)
             SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text
             WHERE NOT EXISTS (SELECT 1 FROM token_attempts
                WHERE run_id = $1::text AND lower(username::text) = lower($2::text)
                  AND name = $3::text AND started_at = $4::text)",
        ),
    },
    Table {
        name: "deliveries",
        select: Sql::same(
            "SELECT target, username, grp, token_id, at FROM deliveries ORDER BY target",
        ),
        columns: &["target", "username", "grp", "token_id", "at"],
        insert: Sql::same(
            "INSERT INTO deliveries (target, username, grp, token_id, at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (target) DO UPDATE SET username = excluded.username, grp = excluded.grp,
                token_id = excluded.token_id, at = excluded.at
             WHERE excluded.at > deliveries.at",
        ),
    },
    Table {
        name: "audit",
        select: Sql::same(
            "SELECT at, profile, api, operation, target, outcome, status, detail FROM audit ORDER BY id",
        ),
        columns: &["at", "profile", "api", "operation", "target", "outcome", "status", "detail"],
        insert: Sql::pg(
            "INSERT INTO audit (at, profile, api, operation, target, outcome, status, detail)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8
             WHERE NOT EXISTS (SELECT 1 FROM audit
                WHERE at = ?1 AND operation = ?4 AND target = ?5 AND outcome = ?6)",
            "INSERT INTO audit (at, profile, api, operation, target, outcome, status, detail)
             SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::bigint, $8::text
             WHERE NOT EXISTS (SELECT 1 FROM audit
                WHERE at = $1::text AND operation = $4::text
                  AND lower(target::text) = lower($5::text) AND outcome = $6::text)",
        ),
    },
];

fn params(row: &Row, columns: &[&str]) -> Result<Vec<Owned>> {
    columns
        .iter()
        .map(|c| {
            Ok(match *c {
                "pid" | "status" => Owned::Int(row.opt_int(c)?),
                _ => Owned::Text(row.opt_text(c)?),
            })
        })
        .collect()
}

enum Owned {
    Text(Option<String>),
    Int(Option<i64>),
}

impl Owned {
    fn as_p(&self) -> P<'_> {
        match self {
            Owned::Text(t) => P::Text(t.as_deref()),
            Owned::Int(i) => P::Int(*i),
        }
    }
}

fn journal_size(c: &mut Conn) -> Result<i64> {
    c.query_opt(&Sql::same("SELECT COUNT(*) AS n FROM token_journal"), &[])?
        .map(|r| r.int("n"))
        .transpose()
        .map(|n| n.unwrap_or(0))
}

impl Store {
    /// Copies everything in this store into `to`.
    pub fn copy_into(&self, to: &Store) -> Result<Copied> {
        let mut source = Vec::new();
        {
            let mut from = self.conn();
            for t in TABLES {
                source.push(from.query(&t.select, &[])?);
            }
        }
        let mut copied = Copied::default();
        let mut dest = to.conn();
        let rekey = self.key != to.key;
        if rekey {
            // Fingerprints are keyed: the journal moves only with its key, into
            // a state (and, for a data directory, every profile's state, since
            // they share the key file) whose journal is empty.
            if journal_size(&mut dest)? > 0 || to.other_journals()? {
                return Err(StoreError(format!(
                    "{} already holds a journal kept under another key: its fingerprints and these could not be matched; \
                     copy into an empty state instead",
                    to.place
                )));
            }
            if let Some(dir) = &to.dir {
                super::write_key(dir, &super::encode_hex(&self.key))?;
            }
        }
        dest.transaction(|c| {
            if rekey && c.is_postgres() {
                c.exec(
                    &Sql::same(
                        "INSERT INTO mdops_settings (name, value) VALUES ('journal_key', ?1)
                         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    ),
                    &[P::Text(Some(&super::encode_hex(&self.key)))],
                )?;
            }
            for (t, rows) in TABLES.iter().zip(&source) {
                let mut added = 0;
                for row in rows {
                    let values = params(row, t.columns)?;
                    let ps: Vec<P> = values.iter().map(Owned::as_p).collect();
                    added += c.exec(&t.insert, &ps)?;
                }
                copied.read += rows.len() as u64;
                match t.name {
                    "inventory" => copied.inventory = added,
                    "token_journal" => copied.token_journal = added,
                    "runs" => copied.runs = added,
                    "token_attempts" => copied.token_attempts = added,
                    "deliveries" => copied.deliveries = added,
                    _ => copied.audit = added,
                }
            }
            Ok(())
        })?;
        Ok(copied)
    }

    /// Whether another profile's state in this store's data directory has a
    /// journal (it shares the key file).
    fn other_journals(&self) -> Result<bool> {
        let Some(dir) = &self.dir else {
            return Ok(false);
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(false);
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !(name.starts_with("state") && name.ends_with(".db")) || self.place.ends_with(&name)
            {
                continue;
            }
            let c = rusqlite::Connection::open_with_flags(
                e.path(),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .map_err(super::db::lite)?;
            let n: i64 = c
                .query_row("SELECT COUNT(*) FROM token_journal", [], |r| r.get(0))
                .unwrap_or(0);
            if n > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
